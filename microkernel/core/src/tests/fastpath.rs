//! The IPC fast path against the full path.
//!
//! Every case is run twice from the same prepared world: once the way the kernel's exception
//! entry runs it (`System::fastpath`, and when that switches, nothing else: no scheduler pass),
//! once on the full path (`handle_syscall`, then `choose_next`). A case either *switches*: the
//! fast path must say so and leave exactly the full path's state; or *falls back*: the fast path
//! must say so and change nothing, and the full path that follows must give the right answer.
//! "State" is everything a thread or the scheduler can observe ([`Snapshot`]).

use super::{
    CLIENT, EP, MockMemory, NTFN, OTHER, SERVER, error_of, message, pools, put_cap, received,
    run_as, system,
};
use crate::TcbId;
use crate::cap::Cap;
use crate::endpoint::{EndpointState, Reply};
use crate::notification::IrqLine;
use crate::queue::{NONE, Queue};
use crate::system::{FastpathOutcome, System};
use crate::tcb::{PC, ThreadState};
use abi::message::{IPC_BUFFER_RECEIVE_SLOT, IPC_BUFFER_SEND_CAP};
use abi::{FaultInfo, FaultKind, KernelError, MessageInfo, REPLY_SLOT, Rights, Syscall};
use proptest::prelude::*;
use std::format;
use std::string::String;
use std::vec::Vec;

mod fallback;

/// Everything a thread or the scheduler can observe: every thread's whole TCB (all registers,
/// state, queue links, fault), the ready threads in the order the scheduler would run them,
/// `current`, every endpoint (queue, state, generation), reply object, notification, capability
/// slot (badges, rights, generations) and IPC-buffer word. Types without `PartialEq` are
/// compared through their `Debug` form, which prints every field.
#[derive(Debug, PartialEq)]
struct Snapshot {
    current: TcbId,
    ready_in_run_order: Vec<TcbId>,
    threads: Vec<String>,
    endpoints: Vec<String>,
    replies: Vec<Reply>,
    notifications: Vec<String>,
    slots: Vec<Cap>,
    irqs: Vec<IrqLine>,
    ipc_buffers: Vec<((u64, usize), u64)>,
}

impl Snapshot {
    fn of(system: &System<'_>, memory: &MockMemory) -> Self {
        // Popping a copy of the ready queues reads them through the priority bitmap too (a
        // stale bit shows up as a NONE entry; `take` bounds the walk).
        let (mut sched, mut tcbs) = (system.sched.clone(), system.tcbs.to_vec());
        let ready_in_run_order = core::iter::from_fn(|| sched.pop_highest(&mut tcbs))
            .take(system.tcbs.len() + 1)
            .collect();
        let mut ipc_buffers: Vec<_> = memory.0.iter().map(|(key, word)| (*key, *word)).collect();
        ipc_buffers.sort_unstable();
        Self {
            current: system.current,
            ready_in_run_order,
            threads: system.tcbs.iter().map(|t| format!("{t:?}")).collect(),
            endpoints: system.endpoints.iter().map(|e| format!("{e:?}")).collect(),
            replies: system.replies.to_vec(),
            notifications: system
                .notifications
                .iter()
                .map(|n| format!("{n:?}"))
                .collect(),
            slots: system.slots.to_vec(),
            irqs: system.irqs.to_vec(),
            ipc_buffers,
        }
    }

    /// Asserts equality part by part, so that a failure names the part that differs.
    fn assert_same(&self, other: &Self, what: &str) {
        assert_eq!(self.current, other.current, "{what}: current thread");
        let ready = (&self.ready_in_run_order, &other.ready_in_run_order);
        assert_eq!(ready.0, ready.1, "{what}: ready queues");
        for (id, (mine, theirs)) in self.threads.iter().zip(&other.threads).enumerate() {
            assert_eq!(mine, theirs, "{what}: thread {id}");
        }
        assert_eq!(self.endpoints, other.endpoints, "{what}: endpoints");
        assert_eq!(self.replies, other.replies, "{what}: reply objects");
        assert_eq!(
            self.notifications, other.notifications,
            "{what}: notifications"
        );
        assert_eq!(self.slots, other.slots, "{what}: capability slots");
        assert_eq!(self.irqs, other.irqs, "{what}: interrupt lines");
        assert_eq!(self.ipc_buffers, other.ipc_buffers, "{what}: IPC buffers");
        assert_eq!(self, other, "{what}");
    }
}

type Setup<'s> = &'s dyn Fn(&mut System<'_>, &mut MockMemory);

/// One system call, made by `thread` with `regs` loaded, in a world prepared by `setup` from the
/// standard fixture (SERVER, CLIENT, OTHER with `priorities`).
struct Case<'s> {
    priorities: [u8; 3],
    setup: Setup<'s>,
    thread: TcbId,
    number: u64,
    regs: Vec<u64>,
}

impl<'s> Case<'s> {
    fn new(thread: TcbId, syscall: Syscall, regs: &[u64], setup: Setup<'s>) -> Self {
        Self {
            priorities: [100, 50, 40],
            setup,
            thread,
            number: syscall as u64,
            regs: regs.to_vec(),
        }
    }

    fn priorities(self, priorities: [u8; 3]) -> Self {
        Self { priorities, ..self }
    }

    /// Builds the world and hands it to `body` just before the call.
    fn run<R>(&self, body: impl FnOnce(&mut System<'_>, &mut MockMemory) -> R) -> R {
        let mut pools = pools(&self.priorities);
        let mut memory = MockMemory::default();
        let mut system = system(&mut pools);
        (self.setup)(&mut system, &mut memory);
        run_as(&mut system, self.thread);
        let context = &mut system.tcb_mut(self.thread).context;
        for (index, value) in self.regs.iter().enumerate() {
            context.set_x(index, *value);
        }
        context.set_x(7, self.number);
        body(&mut system, &mut memory)
    }

    /// The state the full path leaves: the system call, then a scheduler pass.
    fn full_path(&self) -> Snapshot {
        self.run(|system, memory| {
            system.handle_syscall(memory, self.number);
            system.choose_next();
            Snapshot::of(system, memory)
        })
    }

    /// Asserts that the fast path takes the call and leaves exactly the full path's state, and
    /// runs `expect` on that state.
    fn switches(&self, expect: impl FnOnce(&System<'_>, &MockMemory)) {
        let fast = self.run(|system, memory| {
            assert_eq!(
                system.fastpath(self.number),
                FastpathOutcome::Switched,
                "this call must take the fast path"
            );
            expect(system, memory);
            Snapshot::of(system, memory)
        });
        fast.assert_same(
            &self.full_path(),
            "the fast path must leave the full path's state",
        );
    }

    /// Asserts that the fast path refuses the call without changing anything, then runs the full
    /// path as the kernel does after a fallback and checks its result with `expect`.
    fn falls_back(&self, expect: impl FnOnce(&System<'_>, &MockMemory)) {
        let after = self.run(|system, memory| {
            let before = Snapshot::of(system, memory);
            assert_eq!(
                system.fastpath(self.number),
                FastpathOutcome::Fallback,
                "this call must fall back to the full path"
            );
            Snapshot::of(system, memory).assert_same(&before, "a fallback changes nothing");
            system.handle_syscall(memory, self.number);
            system.choose_next();
            expect(system, memory);
            Snapshot::of(system, memory)
        });
        // Also catches a change the snapshot cannot see (the scheduler's private rotate flag):
        // it would make the scheduler pass differ from a full path that never tried the fast one.
        after.assert_same(
            &self.full_path(),
            "fast path tried first, then the full path",
        );
    }
}

/// The words a caller or a replying server puts in x2..x5.
const CALL_WORDS: [u64; 4] = [11, 22, 33, 44];
const REPLY_WORDS: [u64; 4] = [99, 98, 97, 96];
/// A slot the fixture leaves empty, for capabilities a case adds.
const SPARE: u64 = 6;

fn call_regs(info: u64) -> Vec<u64> {
    std::vec![
        EP,
        info,
        CALL_WORDS[0],
        CALL_WORDS[1],
        CALL_WORDS[2],
        CALL_WORDS[3]
    ]
}

fn reply_recv_regs(info: u64) -> Vec<u64> {
    let [a, b, c, d] = REPLY_WORDS;
    std::vec![EP, info, a, b, c, d, REPLY_SLOT]
}

fn endpoint_cap(badge: u64, rights: Rights) -> Cap {
    Cap::Endpoint {
        ep: 0,
        badge,
        rights,
        generation: 0,
    }
}

/// Full-path system call made while preparing a world.
fn prepare(
    system: &mut System<'_>,
    memory: &mut MockMemory,
    id: TcbId,
    call: Syscall,
    regs: &[u64],
) {
    super::syscall(system, memory, id, call, regs, false);
}

/// SERVER waits on the endpoint with its reply object.
fn server_waits(system: &mut System<'_>, memory: &mut MockMemory) {
    prepare(
        system,
        memory,
        SERVER,
        Syscall::Recv,
        &[EP, 0, 0, 0, 0, 0, REPLY_SLOT],
    );
}

/// SERVER has taken CLIENT's call and owes it a reply.
fn server_serves_client(system: &mut System<'_>, memory: &mut MockMemory) {
    server_waits(system, memory);
    prepare(system, memory, CLIENT, Syscall::Call, &[EP, message(1, 0)]);
}

/// OTHER, given a receive right on the endpoint, waits on it too.
fn other_waits_too(system: &mut System<'_>, memory: &mut MockMemory) {
    put_cap(system, OTHER, SPARE, endpoint_cap(0, Rights::READ));
    prepare(
        system,
        memory,
        OTHER,
        Syscall::Recv,
        &[SPARE, 0, 0, 0, 0, 0, REPLY_SLOT],
    );
}

fn blocked_on_reply_from_server() -> ThreadState {
    ThreadState::BlockedOnReply {
        reply: SERVER,
        ep: 0,
        slot: EP as u32,
    }
}

fn server_receiving() -> ThreadState {
    ThreadState::BlockedOnReceive {
        ep: 0,
        reply: Some(SERVER),
    }
}

// ---- the fast path switches, and leaves what the full path leaves ----

#[test]
fn a_call_of_up_to_four_words_switches_to_the_waiting_server() {
    for length in 0..=4 {
        let regs = call_regs(message(7, length));
        Case::new(CLIENT, Syscall::Call, &regs, &server_waits).switches(|system, _| {
            assert_eq!(system.current, SERVER);
            let (badge, info, words) = received(system, SERVER);
            assert_eq!(
                (badge, info.label(), info.length(), info.extra_caps()),
                (101, 7, length as usize, 0)
            );
            assert_eq!(
                words, CALL_WORDS,
                "all four registers travel, as on the full path"
            );
            assert_eq!(system.tcb(SERVER).state, ThreadState::Running);
            assert_eq!(system.tcb(CLIENT).state, blocked_on_reply_from_server());
            assert_eq!(system.replies[usize::from(SERVER)].caller, Some(CLIENT));
            assert_eq!(system.endpoints[0].state, EndpointState::Idle);
            assert_eq!(system.endpoints[0].queue, Queue::EMPTY);
        });
    }
}

#[test]
fn a_reply_recv_of_up_to_four_words_answers_the_caller_and_waits_again() {
    for length in 0..=4 {
        let regs = reply_recv_regs(message(9, length));
        Case::new(SERVER, Syscall::ReplyRecv, &regs, &server_serves_client).switches(
            |system, _| {
                assert_eq!(system.current, CLIENT);
                let (badge, info, words) = received(system, CLIENT);
                assert_eq!(
                    (badge, info.label(), info.length(), info.is_error()),
                    (0, 9, length as usize, false)
                );
                assert_eq!(words, REPLY_WORDS);
                assert_eq!(system.tcb(CLIENT).state, ThreadState::Running);
                assert_eq!(system.tcb(SERVER).state, server_receiving());
                assert_eq!(system.replies[usize::from(SERVER)].caller, None);
                assert_eq!(system.endpoints[0].state, EndpointState::Receiving);
                let queue = system.endpoints[0].queue;
                assert_eq!((queue.head, queue.tail), (SERVER, SERVER));
            },
        );
    }
}

#[test]
fn equal_priorities_switch_when_no_other_thread_is_ready() {
    let other_suspended = |system: &mut System<'_>, memory: &mut MockMemory| {
        system.suspend(OTHER);
        server_waits(system, memory);
    };
    let regs = call_regs(message(7, 1));
    Case::new(CLIENT, Syscall::Call, &regs, &other_suspended)
        .priorities([50, 50, 50])
        .switches(|system, _| assert_eq!(system.current, SERVER));

    let serving_with_other_suspended = |system: &mut System<'_>, memory: &mut MockMemory| {
        system.suspend(OTHER);
        server_serves_client(system, memory);
    };
    let regs = reply_recv_regs(message(9, 1));
    Case::new(
        SERVER,
        Syscall::ReplyRecv,
        &regs,
        &serving_with_other_suspended,
    )
    .priorities([50, 50, 50])
    .switches(|system, _| assert_eq!(system.current, CLIENT));
}

/// The original round trip, step by step as the kernel runs it: whoever is current makes the
/// next call, the fast path is tried first, and only a fallback runs the full path.
#[test]
fn a_round_trip_takes_the_fast_path_twice_and_ends_like_the_full_path() {
    let steps: [(TcbId, Syscall, Vec<u64>, FastpathOutcome); 4] = [
        (
            SERVER,
            Syscall::Recv,
            std::vec![EP, 0, 0, 0, 0, 0, REPLY_SLOT],
            FastpathOutcome::Fallback,
        ),
        (
            CLIENT,
            Syscall::Call,
            call_regs(message(7, 2)),
            FastpathOutcome::Switched,
        ),
        (
            SERVER,
            Syscall::ReplyRecv,
            reply_recv_regs(message(9, 1)),
            FastpathOutcome::Switched,
        ),
        (
            CLIENT,
            Syscall::Call,
            call_regs(message(8, 4)),
            FastpathOutcome::Switched,
        ),
    ];
    let (mut fast_pools, mut full_pools) = (pools(&[100, 50, 40]), pools(&[100, 50, 40]));
    let (mut fast_memory, mut full_memory) = (MockMemory::default(), MockMemory::default());
    let (mut fast, mut full) = (system(&mut fast_pools), system(&mut full_pools));
    for (thread, call, regs, outcome) in steps {
        for system in [&mut fast, &mut full] {
            assert_eq!(
                system.current, thread,
                "{call:?} is made by the current thread"
            );
            for (index, value) in regs.iter().enumerate() {
                system.tcb_mut(thread).context.set_x(index, *value);
            }
        }
        assert_eq!(fast.fastpath(call as u64), outcome, "{call:?}");
        if outcome == FastpathOutcome::Fallback {
            fast.handle_syscall(&mut fast_memory, call as u64);
            fast.choose_next();
        }
        full.handle_syscall(&mut full_memory, call as u64);
        full.choose_next();
        let after = std::format!("after {call:?}");
        Snapshot::of(&fast, &fast_memory).assert_same(&Snapshot::of(&full, &full_memory), &after);
    }
    let (badge, info, words) = received(&fast, SERVER);
    assert_eq!(
        (badge, info.label(), info.length(), words),
        (101, 8, 4, CALL_WORDS)
    );
}

// ---- whatever the fast path decides, it agrees with the full path ----

/// What else is going on when the call is made.
#[derive(Clone, Copy, Debug)]
enum Other {
    Ready,
    Suspended,
    Receiving,
    Calling,
}

fn other_does(other: Other, system: &mut System<'_>, memory: &mut MockMemory) {
    match other {
        Other::Ready => {}
        Other::Suspended => system.suspend(OTHER),
        Other::Receiving => other_waits_too(system, memory),
        Other::Calling => prepare(
            system,
            memory,
            OTHER,
            Syscall::Call,
            &[EP, message(2, 1), 5],
        ),
    }
}

fn any_other() -> impl Strategy<Value = Other> {
    prop_oneof![
        Just(Other::Ready),
        Just(Other::Suspended),
        Just(Other::Receiving),
        Just(Other::Calling)
    ]
}

proptest! {
    #[test]
    fn a_call_either_switches_to_the_full_paths_state_or_changes_nothing(
        priorities in prop::array::uniform3(1u8..=3),
        other in any_other(),
        other_first in any::<bool>(),
        length in 0u64..=6,
        caps in 0u64..=1,
    ) {
        let setup = |system: &mut System<'_>, memory: &mut MockMemory| {
            if other_first {
                other_does(other, system, memory);
                server_waits(system, memory);
            } else {
                server_waits(system, memory);
                other_does(other, system, memory);
            }
        };
        let regs = call_regs(MessageInfo::new(7, caps, length).raw());
        let case = Case::new(CLIENT, Syscall::Call, &regs, &setup)
            .priorities(priorities.map(|p| p * 10));
        agrees_with_the_full_path(&case);
    }

    #[test]
    fn a_reply_recv_either_switches_to_the_full_paths_state_or_changes_nothing(
        priorities in prop::array::uniform3(1u8..=3),
        other in any_other(),
        length in 0u64..=6,
        caps in 0u64..=1,
    ) {
        let setup = |system: &mut System<'_>, memory: &mut MockMemory| {
            server_serves_client(system, memory);
            other_does(other, system, memory);
        };
        let regs = reply_recv_regs(MessageInfo::new(9, caps, length).raw());
        let case = Case::new(SERVER, Syscall::ReplyRecv, &regs, &setup)
            .priorities(priorities.map(|p| p * 10));
        agrees_with_the_full_path(&case);
    }
}

/// Runs the fast path and checks whichever contract its answer promises.
fn agrees_with_the_full_path(case: &Case<'_>) {
    let outcome = case.run(|system, _| system.fastpath(case.number));
    match outcome {
        FastpathOutcome::Switched => case.switches(|_, _| {}),
        FastpathOutcome::Fallback => case.falls_back(|_, _| {}),
    }
}
