//! The IPC benchmark: Call + ReplyRecv round trips between two servers (fast path, and the full
//! path both ways), measured in the client, and one-way Calls (short and 10-word), measured
//! from the client's counter reading before `svc` to the server's after its receive. The
//! counter is PMCCNTR_EL0, which counts instructions (kernel included) under `-icount
//! shift=0`. The role is the server's manifest name: `bench-server` or `bench-client`.
#![no_std]
#![no_main]

use abi::MessageInfo;
use userlib::{println, syscall};

userlib::entry!(main);

const WARM_UP: u64 = 100;
const ROUNDS: u64 = 2000;

fn main() -> ! {
    match userlib::server_name() {
        "bench-server" => serve(userlib::cap("bench")),
        "bench-timer" => serve_one_way(userlib::cap("one-way")),
        _ => {}
    }
    let endpoint = userlib::cap("bench");
    // Every figure is in counter ticks: PMCCNTR_EL0 cycles, which are exactly instructions
    // only under `-icount shift=0` (`cargo xtask bench` says so when it prints them).
    let fast = round_trip(endpoint, 1);
    // Five words do not fit the registers: Call and the equally long reply both take the
    // kernel's full path.
    let full = round_trip(endpoint, 5);
    // One way, as sel4bench's "Call with 10 message words": from before the client's `svc` to
    // the server's first instruction after its receive returned.
    let timer = userlib::cap("one-way");
    let one_way_short = one_way(timer, 1);
    let one_way_long = one_way(timer, 10);
    println!("ipc round trip: {fast} ticks");
    println!("ipc round trip full path both ways (5 words): {full} ticks");
    println!("ipc call one way (1 word, fast path): {one_way_short} ticks");
    println!("ipc call one way (10 words, full path): {one_way_long} ticks");
    println!(
        "ipc full/fast ratio: {}.{:02}",
        full / fast,
        (full % fast) * 100 / fast
    );
    userlib::system_off(0)
}

/// Answers every call with its first word plus one, in a reply as long as the request (so a
/// long request gets a long reply, on the same path).
#[inline(never)]
fn serve(endpoint: u64) -> ! {
    let (_, mut info, mut words) = syscall::recv(endpoint, abi::REPLY_SLOT);
    loop {
        words[0] = words[0].wrapping_add(1);
        let reply = MessageInfo::new(0, 0, info.length() as u64);
        (_, info, words) = syscall::reply_recv(endpoint, abi::REPLY_SLOT, reply, words);
    }
}

/// Answers every call with the counter ticks since the time its first word carries, read as
/// soon as the receive returned; a server of its own so that the round-trip server's loop
/// pays for no timing.
#[inline(never)]
fn serve_one_way(endpoint: u64) -> ! {
    let (_, _, mut words) = syscall::recv(endpoint, abi::REPLY_SLOT);
    loop {
        words[0] = syscall::cycles().wrapping_sub(words[0]);
        let reply = MessageInfo::new(0, 0, 1);
        (_, _, words) = syscall::reply_recv(endpoint, abi::REPLY_SLOT, reply, words);
    }
}

/// Average ticks from the client's call to the server's receipt of a `length`-word message.
#[inline(never)]
fn one_way(endpoint: u64, length: u64) -> u64 {
    let info = MessageInfo::new(0, 0, length);
    let mut total = 0u64;
    for round in 0..WARM_UP + ROUNDS {
        let (reply, words) = syscall::call(endpoint, info, [syscall::cycles(), 0, 0, 0]);
        if reply.is_error() {
            println!("ipc-bench: one-way call failed: {reply:?}");
            userlib::system_off(1);
        }
        if round >= WARM_UP {
            total += words[0];
        }
    }
    total / ROUNDS
}

/// Average ticks per round trip with `length`-word requests and replies. Every reply of the warm-up
/// is checked; the timed loop only folds the replies into a checksum, checked after the clock
/// stops, so the figure is the IPC and not the checking (as sel4bench measures it).
#[inline(never)]
fn round_trip(endpoint: u64, length: u64) -> u64 {
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
