//! Bound notifications (seL4's): a server bound to a notification waits for requests on its
//! endpoint and for signals at once; a signal ends its receive, a pending one is received first.

use super::{
    CLIENT, EP, MockMemory, NTFN, SERVER, pools, received, run_as, server_waits, syscall, system,
};
use crate::endpoint::EndpointState;
use crate::system::{FastpathOutcome, System};
use crate::tcb::ThreadState;
use abi::message::BOUND_NOTIFICATION_LABEL;
use abi::{REPLY_SLOT, Syscall};

fn bind(system: &mut System<'_>) {
    system.tcb_mut(SERVER).bound_notification = Some(0);
    system.notifications[0].bound = Some(SERVER);
}

#[test]
fn a_signal_ends_the_bound_servers_receive_with_the_word() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    bind(&mut system);
    server_waits(&mut system, &mut memory, false);
    assert!(matches!(
        system.tcb(SERVER).state,
        ThreadState::BlockedOnReceive { .. }
    ));
    assert_eq!(system.endpoints[0].state, EndpointState::Receiving);

    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Signal,
        &[NTFN],
        false,
    );
    assert_eq!(system.tcb(SERVER).state, ThreadState::Running, "woken");
    let (word, info, _) = received(&system, SERVER);
    assert_eq!(word, 1 << CLIENT, "the client's badge");
    assert_eq!((info.label(), info.length()), (BOUND_NOTIFICATION_LABEL, 0));
    assert!(!info.is_error());
    assert_eq!(system.notifications[0].word, 0, "taken");
    assert_eq!(
        system.endpoints[0].state,
        EndpointState::Idle,
        "left the endpoint"
    );
    assert!(system.endpoints[0].queue.is_empty());
}

#[test]
fn a_pending_signal_is_received_before_blocking_and_unbound_servers_are_unaffected() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    // Unbound: the signal waits in the word and the receive blocks as ever.
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Signal,
        &[NTFN],
        false,
    );
    server_waits(&mut system, &mut memory, false);
    assert!(matches!(
        system.tcb(SERVER).state,
        ThreadState::BlockedOnReceive { .. }
    ));
    assert_eq!(system.notifications[0].word, 1 << CLIENT);

    let mut pools = super::pools(&[100, 50, 40]);
    let mut system = super::system(&mut pools);
    bind(&mut system);
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Signal,
        &[NTFN],
        false,
    );
    syscall(
        &mut system,
        &mut memory,
        super::OTHER,
        Syscall::Signal,
        &[NTFN],
        false,
    );
    server_waits(&mut system, &mut memory, false);
    assert_eq!(
        system.tcb(SERVER).state,
        ThreadState::Running,
        "did not block"
    );
    let (word, info, _) = received(&system, SERVER);
    assert_eq!(
        word,
        (1 << CLIENT) | (1 << super::OTHER),
        "both signals, ORed"
    );
    assert_eq!(info.label(), BOUND_NOTIFICATION_LABEL);
    assert_eq!(system.endpoints[0].state, EndpointState::Idle);
}

#[test]
fn a_request_still_arrives_normally_and_the_fast_path_defers_to_a_pending_signal() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    bind(&mut system);
    server_waits(&mut system, &mut memory, false);
    // A call reaches the bound server as usual.
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Call,
        &[EP, 0, 7, 0, 0, 0],
        false,
    );
    assert_eq!(system.tcb(SERVER).state, ThreadState::Running);
    let (badge, info, words) = received(&system, SERVER);
    assert_eq!((badge, words[0]), (100 + u64::from(CLIENT), 7));
    assert_ne!(info.label(), BOUND_NOTIFICATION_LABEL);
    // A signal arrives while it serves; its ReplyRecv must not take the fast path into a
    // receive that would sleep over the signal.
    syscall(
        &mut system,
        &mut memory,
        super::OTHER,
        Syscall::Signal,
        &[NTFN],
        false,
    );
    run_as(&mut system, SERVER);
    let context = &mut system.tcb_mut(SERVER).context;
    for (register, value) in [EP, 0, 1, 0, 0, 0, REPLY_SLOT].iter().enumerate() {
        context.set_x(register, *value);
    }
    context.set_x(7, Syscall::ReplyRecv as u64);
    assert_eq!(
        system.fastpath(Syscall::ReplyRecv as u64),
        FastpathOutcome::Fallback
    );
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::ReplyRecv,
        &[EP, 0, 1, 0, 0, 0, REPLY_SLOT],
        false,
    );
    assert_eq!(system.tcb(CLIENT).state, ThreadState::Running, "answered");
    assert_eq!(
        system.tcb(SERVER).state,
        ThreadState::Running,
        "took the signal"
    );
    let (word, info, _) = received(&system, SERVER);
    assert_eq!(
        (word, info.label()),
        (1 << super::OTHER, BOUND_NOTIFICATION_LABEL)
    );
}
