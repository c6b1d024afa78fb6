//! Kernel-made fault injection (`system::inject`): each point fires at its N-th arrival and
//! not before, the call it fires in does not happen, the fault reaches the handler as any
//! fault does, the fast paths step aside for an armed thread, and a restart counts afresh.

use super::{
    CLIENT, EP, MockMemory, NTFN, OTHER, SERVER, error_of, message, pools, put_cap, received,
    run_as, server_replies, server_waits, syscall, system,
};
use crate::cap::Cap;
use crate::system::{Effect, System};
use crate::tcb::{Injection, ThreadState};
use abi::{FaultKind, InjectAt, KernelError, REPLY_SLOT, Rights, Syscall};

/// OTHER's slot for the fault endpoint (endpoint 1), which it receives on as the handler.
const FAULTS: u64 = 6;
const SERVER_BADGE: u64 = 0xF0;
const CLIENT_BADGE: u64 = 0xF1;

/// SERVER and CLIENT fault to endpoint 1, where OTHER (the supervisor here) waits.
fn with_handler(system: &mut System<'_>, memory: &mut MockMemory) {
    system.tcb_mut(SERVER).fault_handler = Some((1, SERVER_BADGE));
    system.tcb_mut(CLIENT).fault_handler = Some((1, CLIENT_BADGE));
    put_cap(
        system,
        OTHER,
        FAULTS,
        Cap::Endpoint {
            ep: 1,
            badge: 0,
            rights: Rights::READ,
            generation: 0,
        },
    );
    handler_waits(system, memory);
}

fn handler_waits(system: &mut System<'_>, memory: &mut MockMemory) {
    syscall(
        system,
        memory,
        OTHER,
        Syscall::Recv,
        &[FAULTS, 0, 0, 0, 0, 0, REPLY_SLOT],
        false,
    );
}

fn arm(system: &mut System<'_>, id: crate::TcbId, at: InjectAt, count: u32) {
    system.arm_injection(id, at, count);
    assert_eq!(
        system.tcb(id).injection,
        Some(Injection { at, count, seen: 0 })
    );
}

/// What the handler received: the badge, the fault kind, and `[pc, count, point]`.
fn handler_got(system: &System<'_>) -> (u64, Option<FaultKind>, [u64; 2]) {
    let (badge, info, words) = received(system, OTHER);
    (
        badge,
        FaultKind::from_raw(info.label()),
        [words[1], words[2]],
    )
}

fn client_calls(system: &mut System<'_>, memory: &mut MockMemory, value: u64) {
    syscall(
        system,
        memory,
        CLIENT,
        Syscall::Call,
        &[EP, message(7, 1), value],
        true,
    );
}

#[test]
fn a_receive_injection_fires_on_taking_the_nth_message_and_the_restart_answers_its_caller() {
    let mut pools = pools(&[100, 50, 200]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    with_handler(&mut system, &mut memory);
    arm(&mut system, SERVER, InjectAt::Receive, 2);
    server_waits(&mut system, &mut memory, true);

    client_calls(&mut system, &mut memory, 1);
    assert_eq!(
        received(&system, SERVER).2[0],
        1,
        "the first message arrives"
    );
    assert_eq!(system.tcb(SERVER).state, ThreadState::Running);
    server_replies(&mut system, &mut memory, 0, [0x77, 0, 0, 0], true);
    assert_eq!(received(&system, CLIENT).2[0], 0x77);

    client_calls(&mut system, &mut memory, 2);
    assert_eq!(
        handler_got(&system),
        (
            SERVER_BADGE,
            Some(FaultKind::Injected),
            [2, InjectAt::Receive as u64]
        )
    );
    assert!(matches!(
        system.tcb(SERVER).state,
        ThreadState::BlockedOnReply { .. }
    ));
    assert_eq!(system.replies[usize::from(SERVER)].caller, Some(CLIENT));

    // The supervisor restarts it: the caller is answered, and the count starts again.
    system.restart(SERVER, true);
    assert!(matches!(
        error_of(&system, CLIENT),
        Some(KernelError::Restarted { .. })
    ));
    assert_eq!(system.tcb(SERVER).injection.map(|plan| plan.seen), Some(0));
}

#[test]
fn a_reply_injection_fires_instead_of_the_nth_reply() {
    let mut pools = pools(&[100, 50, 200]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    with_handler(&mut system, &mut memory);
    arm(&mut system, SERVER, InjectAt::Reply, 2);
    server_waits(&mut system, &mut memory, true);
    client_calls(&mut system, &mut memory, 1);
    server_replies(&mut system, &mut memory, 0, [0x77, 0, 0, 0], true);
    assert_eq!(received(&system, CLIENT).2[0], 0x77, "reply 1 goes out");

    client_calls(&mut system, &mut memory, 2);
    assert_eq!(received(&system, SERVER).2[0], 2, "request 2 was taken");
    server_replies(&mut system, &mut memory, 0, [0x77, 0, 0, 0], true);
    assert_eq!(
        handler_got(&system),
        (
            SERVER_BADGE,
            Some(FaultKind::Injected),
            [2, InjectAt::Reply as u64]
        )
    );
    assert!(
        matches!(system.tcb(CLIENT).state, ThreadState::BlockedOnReply { .. }),
        "reply 2 never went out"
    );
    assert_eq!(system.replies[usize::from(SERVER)].caller, Some(CLIENT));
}

#[test]
fn a_call_injection_fires_before_the_nth_call_on_an_endpoint_and_invocations_do_not_count() {
    let mut pools = pools(&[100, 50, 200]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    with_handler(&mut system, &mut memory);
    arm(&mut system, CLIENT, InjectAt::Call, 2);
    server_waits(&mut system, &mut memory, true);
    client_calls(&mut system, &mut memory, 1);
    server_replies(&mut system, &mut memory, 0, [0x77, 0, 0, 0], true);
    // A Call that is a kernel invocation (its TCB capability of SERVER) is not a call to a peer.
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Call,
        &[super::TCB_OF_SERVER, message(0xFFFF, 0)],
        false,
    );
    assert_eq!(system.tcb(CLIENT).injection.map(|plan| plan.seen), Some(1));

    client_calls(&mut system, &mut memory, 2);
    assert_eq!(
        handler_got(&system),
        (
            CLIENT_BADGE,
            Some(FaultKind::Injected),
            [2, InjectAt::Call as u64]
        )
    );
    assert!(
        matches!(
            system.tcb(SERVER).state,
            ThreadState::BlockedOnReceive { .. }
        ),
        "the call never reached the server"
    );
}

#[test]
fn a_signal_injection_fires_instead_of_the_signal() {
    let mut pools = pools(&[100, 50, 200]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    with_handler(&mut system, &mut memory);
    arm(&mut system, CLIENT, InjectAt::Signal, 1);
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Signal,
        &[NTFN],
        false,
    );
    assert_eq!(
        handler_got(&system),
        (
            CLIENT_BADGE,
            Some(FaultKind::Injected),
            [1, InjectAt::Signal as u64]
        )
    );
    assert_eq!(system.notifications[0].word, 0, "nothing was signalled");
}

#[test]
fn points_other_than_the_armed_one_never_count() {
    let mut pools = pools(&[100, 50, 200]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    with_handler(&mut system, &mut memory);
    arm(&mut system, SERVER, InjectAt::Signal, 1);
    arm(&mut system, CLIENT, InjectAt::Reply, 1);
    server_waits(&mut system, &mut memory, true);
    for value in 1..=3 {
        client_calls(&mut system, &mut memory, value);
        server_replies(&mut system, &mut memory, 0, [0x77, 0, 0, 0], true);
        assert_eq!(received(&system, CLIENT).2[0], 0x77);
    }
    assert_eq!(system.tcb(SERVER).injection.map(|plan| plan.seen), Some(0));
    assert_eq!(system.tcb(CLIENT).injection.map(|plan| plan.seen), Some(0));
    assert_eq!(received(&system, OTHER).1.length(), 0, "no fault was sent");
}

#[test]
fn a_receive_injection_into_a_thread_with_no_handler_stops_the_system() {
    let mut pools = pools(&[100, 50, 200]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    arm(&mut system, SERVER, InjectAt::Receive, 1);
    server_waits(&mut system, &mut memory, true);
    assert_eq!(system.take_stop(), None);
    client_calls(&mut system, &mut memory, 1);
    assert_eq!(
        system.take_stop(),
        Some(Effect::UnhandledFault { tcb: SERVER })
    );
    assert_eq!(system.take_stop(), None, "once");
    assert_eq!(system.tcb(SERVER).state, ThreadState::Inactive);
    assert_eq!(
        system.tcb(SERVER).fault.map(|fault| fault.kind),
        Some(FaultKind::Injected)
    );
}

#[test]
fn a_bound_signal_taken_through_a_receive_counts_as_a_receive() {
    let mut pools = pools(&[100, 50, 200]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    with_handler(&mut system, &mut memory);
    system.tcb_mut(SERVER).bound_notification = Some(0);
    system.notifications[0].bound = Some(SERVER);
    arm(&mut system, SERVER, InjectAt::Receive, 1);
    server_waits(&mut system, &mut memory, true);
    run_as(&mut system, CLIENT);
    system.signal(0, 1);
    system.choose_next();
    assert_eq!(
        handler_got(&system),
        (
            SERVER_BADGE,
            Some(FaultKind::Injected),
            [1, InjectAt::Receive as u64]
        )
    );
}
