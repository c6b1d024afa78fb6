//! The IPC benchmark: a Call + ReplyRecv round trip between two servers, measured in the
//! client with the cycle counter, which counts instructions under `-icount shift=0` (kernel
//! included). The role is the server's manifest name: `bench-server` or `bench-client`.
#![no_std]
#![no_main]

use abi::MessageInfo;
use userlib::{println, syscall};

userlib::entry!(main);

const WARM_UP: u64 = 100;
const ROUNDS: u64 = 2000;

fn main() -> ! {
    let endpoint = userlib::cap("bench");
    if userlib::server_name() == "bench-server" {
        serve(endpoint)
    }
    let fast = measure(endpoint, 1);
    // Five words do not fit the registers: the kernel takes its full path.
    let slow = measure(endpoint, 5);
    println!("ipc round trip: {fast} instructions");
    println!("ipc round trip slow path: {slow} instructions");
    println!(
        "ipc slow/fast ratio: {}.{:02}",
        slow / fast,
        (slow % fast) * 100 / fast
    );
    userlib::system_off(0)
}

/// Answers every call with a one-word reply.
fn serve(endpoint: u64) -> ! {
    let (_, _, mut words) = syscall::recv(endpoint, abi::REPLY_SLOT);
    loop {
        words[0] = words[0].wrapping_add(1);
        let (_, _, next) =
            syscall::reply_recv(endpoint, abi::REPLY_SLOT, MessageInfo::new(0, 0, 1), words);
        words = next;
    }
}

/// Average instructions per round trip with `length`-word requests. Every reply of the warm-up
/// is checked; the timed loop only folds the replies into a checksum, checked after the clock
/// stops, so the figure is the IPC and not the checking (as sel4bench measures it).
fn measure(endpoint: u64, length: u64) -> u64 {
    let info = MessageInfo::new(0, 0, length);
    for i in 0..WARM_UP {
        check(syscall::call(endpoint, info, [i, 0, 0, 0]), i);
    }
    let (mut checksum, mut errors) = (0u64, 0u64);
    let start = syscall::cycles();
    for i in 0..ROUNDS {
        let (reply, words) = syscall::call(endpoint, info, [i, 0, 0, 0]);
        checksum = checksum.wrapping_add(words[0]);
        errors |= reply.raw() & ERROR_BIT;
    }
    let cycles = syscall::cycles() - start;
    let expected = (1..=ROUNDS).sum::<u64>();
    if checksum != expected || errors != 0 {
        println!(
            "ipc-bench: replies checksum {checksum:#x} (expected {expected:#x}), error bit {errors:#x}"
        );
        userlib::system_off(1);
    }
    cycles / ROUNDS
}

/// The message-info bit that marks a kernel error (abi::message).
const ERROR_BIT: u64 = 1 << 9;

fn check((info, words): (MessageInfo, [u64; 4]), sent: u64) {
    if info.is_error() || words[0] != sent + 1 {
        println!("ipc-bench: bad reply {info:?} {words:?} to {sent}");
        userlib::system_off(1);
    }
}
