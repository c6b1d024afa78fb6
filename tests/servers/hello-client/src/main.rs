//! 10,000 typed request/reply round trips; every answer is checked.
#![no_std]
#![no_main]

use test_api::{Request, Response, Test};
use userlib::println;

userlib::entry!(main);

const ROUND_TRIPS: u64 = 10_000;

fn main() -> ! {
    let pong = userlib::cap("pong");
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
    userlib::system_off(0)
}
