//! Drives one fault-injection scenario against `hello-server`; the scenario is this server's
//! manifest name (`restart-client`, `budget-client`, `badcap-client`, `malformed-client`,
//! `lost-reply-client`).
//! Every step prints what it observed; any surprise stops the system with status 1.
#![no_std]
#![no_main]

use abi::{InvocationLabel, KernelError, MessageInfo};
use ipc::CallError;
use test_api::{COUNTER_START, Request, Response, Test};
use userlib::{println, syscall};

userlib::entry!(main);

fn call(pong: u64, request: Request) -> Result<Response, CallError> {
    ipc::call::<Test>(&mut userlib::Kernel, pong, &request)
}

fn expect<T: core::fmt::Debug + PartialEq>(step: &str, got: T, wanted: T) {
    if got == wanted {
        println!("{}: {step}: {got:?}", userlib::server_name());
    } else {
        println!(
            "{}: FAILED {step}: got {got:?}, wanted {wanted:?}",
            userlib::server_name()
        );
        userlib::system_off(1);
    }
}

fn main() -> ! {
    let pong = userlib::cap("pong");
    match userlib::server_name() {
        "restart-client" => restart(pong),
        "budget-client" => budget(pong),
        "badcap-client" => bad_capability(pong),
        "malformed-client" => malformed(pong),
        "lost-reply-client" => lost_reply(pong),
        other => println!("fault-client: no scenario called `{other}`"),
    }
    userlib::system_off(if userlib::server_name().ends_with("-client") {
        0
    } else {
        1
    })
}

/// A crash resets the server's memory: the client sees `Restarted { generation: 1 }` and then
/// a counter that starts over.
fn restart(pong: u64) {
    for n in 1..=3 {
        expect(
            "increment",
            call(pong, Request::Increment),
            Ok(Response::Count(COUNTER_START + n)),
        );
    }
    expect(
        "crash the server",
        call(pong, Request::Crash),
        Err(CallError::Restarted { generation: 1 }),
    );
    expect(
        "counter after restart",
        call(pong, Request::Increment),
        Ok(Response::Count(COUNTER_START + 1)),
    );
    expect(
        "served again",
        call(pong, Request::Add { a: 2, b: 3 }),
        Ok(Response::Sum(5)),
    );
}

/// A budget of two restarts: the third crash leaves the server down for good.
fn budget(pong: u64) {
    expect(
        "first crash",
        call(pong, Request::Crash),
        Err(CallError::Restarted { generation: 1 }),
    );
    expect(
        "second crash",
        call(pong, Request::Crash),
        Err(CallError::Restarted { generation: 2 }),
    );
    expect(
        "third crash",
        call(pong, Request::Crash),
        Err(CallError::ServerDown { generation: 3 }),
    );
    expect(
        "after the budget",
        call(pong, Request::Add { a: 1, b: 1 }),
        Err(CallError::ServerDown { generation: 3 }),
    );
}

/// Capabilities the server does not hold, or holds for something else, give typed errors and
/// the server goes on.
fn bad_capability(pong: u64) {
    let (info, mr) = syscall::call(200, MessageInfo::new(0, 0, 0), [0; 4]);
    let error = KernelError::decode(info.label(), [mr[0], mr[1], mr[2]]);
    expect(
        "call through slot 200",
        (info.is_error(), error),
        (true, Some(KernelError::InvalidCapability { slot: 200 })),
    );
    let (_, info, mr) = syscall::recv(pong, abi::REPLY_SLOT);
    let error = KernelError::decode(info.label(), [mr[0], mr[1], mr[2]]);
    expect(
        "receive on a send-only endpoint cap",
        error,
        Some(KernelError::InsufficientRights { slot: pong }),
    );
    let (info, mr) = syscall::invoke(abi::REPLY_SLOT, InvocationLabel::TcbRestart, [1, 0, 0, 0]);
    let error = KernelError::decode(info.label(), [mr[0], mr[1], mr[2]]);
    expect(
        "restart through the reply cap",
        error,
        Some(KernelError::IllegalOperation {
            label: InvocationLabel::TcbRestart as u64,
        }),
    );
    expect(
        "served afterwards",
        call(pong, Request::Add { a: 20, b: 22 }),
        Ok(Response::Sum(42)),
    );
}

/// Bytes that are not a request get a typed rejection, and the server keeps serving.
fn malformed(pong: u64) {
    let (info, _) = syscall::call(pong, MessageInfo::new(30, 0, 4), [u64::MAX; 4]);
    expect(
        "garbage request",
        ipc::interpret::<Response>(info, &[0; 4]),
        Err(CallError::Rejected),
    );
    let (info, _) = syscall::call(pong, MessageInfo::new(9999, 0, 0), [0; 4]);
    expect(
        "impossible length",
        ipc::interpret::<Response>(info, &[0; 4]),
        Err(CallError::Rejected),
    );
    expect(
        "served afterwards",
        call(pong, Request::Add { a: 1, b: 2 }),
        Ok(Response::Sum(3)),
    );
}

/// Against a server that crashes after handling its second request, before replying
/// (`inject_fault_after_request = 2`): the request was carried out, its reply is lost, and the
/// caller sees `Restarted`; the restarted server counts afresh, so its second request is lost
/// too, and an idempotent one is retried by `ipc::call` until a fresh life answers it.
fn lost_reply(pong: u64) {
    expect(
        "first increment",
        call(pong, Request::Increment),
        Ok(Response::Count(COUNTER_START + 1)),
    );
    expect(
        "second increment, handled and not answered",
        call(pong, Request::Increment),
        Err(CallError::Restarted { generation: 1 }),
    );
    expect(
        "increment after the restart",
        call(pong, Request::Increment),
        Ok(Response::Count(COUNTER_START + 1)),
    );
    expect(
        "idempotent request whose reply is lost, retried",
        call(pong, Request::Add { a: 2, b: 3 }),
        Ok(Response::Sum(5)),
    );
}
