//! Answers the test protocol on its `pong` endpoint, through the serve loop of
//! `userlib::server` (which also injects the manifest's faults).
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};
use test_api::{COUNTER_START, Request, Response, Test};
use userlib::println;
use userlib::server::{Caller, Reply};

userlib::entry!(main);

/// Lives in `.data`: a restart must put it back to its initial value.
static COUNTER: AtomicU64 = AtomicU64::new(COUNTER_START);

/// This server's EL0 thread pointer: each request checks it is still there, so a kernel that
/// let a client's TPIDR_EL0 reach it crashes the server (and fails the client's test).
const THREAD_POINTER: u64 = 0x7e57_5e4e_0000_0001;

struct Hello;

impl userlib::server::Server for Hello {
    type Protocol = Test;
    const ENDPOINT: &'static str = "pong";

    fn start() -> Self {
        userlib::syscall::set_thread_pointer(THREAD_POINTER);
        Hello
    }

    fn handle(&mut self, _caller: Caller, request: Request) -> Reply<Response> {
        let found = userlib::syscall::thread_pointer();
        if found != THREAD_POINTER {
            println!(
                "{}: TPIDR_EL0 is {found:#x}, not its own",
                userlib::server_name()
            );
            userlib::crash_with_bad_access();
        }
        match request {
            Request::Add { a, b } => Response::Sum(a.wrapping_add(b)),
            Request::Increment => Response::Count(COUNTER.fetch_add(1, Ordering::Relaxed) + 1),
            Request::Crash => userlib::crash_with_bad_access(),
        }
        .into()
    }
}

fn main() -> ! {
    userlib::server::run::<Hello>()
}
