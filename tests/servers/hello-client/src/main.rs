//! 10,000 typed request/reply round trips; every answer is checked.
#![no_std]
#![no_main]

use test_api::{Request, Response, Test};
use userlib::println;

userlib::entry!(main);

const ROUND_TRIPS: u64 = 10_000;

/// This client's EL0 thread pointer, different from the server's: TPIDR_EL0 is per thread.
const THREAD_POINTER: u64 = 0x7e57_c11e_0000_0002;

fn main() -> ! {
    let pong = userlib::cap("pong");
    userlib::syscall::set_thread_pointer(THREAD_POINTER);
    for i in 0..ROUND_TRIPS {
        match ipc::call::<Test>(&mut userlib::Kernel, pong, &Request::Add { a: i, b: i + 1 }) {
            Ok(Response::Sum(sum)) if sum == 2 * i + 1 => {}
            other => {
                println!(
                    "ping: round trip {i} got {other:?}, expected Sum({})",
                    2 * i + 1
                );
                userlib::system_off(1);
            }
        }
    }
    println!("ping: {ROUND_TRIPS} round trips ok");
    let found = userlib::syscall::thread_pointer();
    if found != THREAD_POINTER {
        println!("ping: TPIDR_EL0 is {found:#x} after the round trips, not {THREAD_POINTER:#x}");
        userlib::system_off(1);
    }
    println!("ping: TPIDR_EL0 stayed its own across {ROUND_TRIPS} round trips");
    userlib::system_off(0)
}
