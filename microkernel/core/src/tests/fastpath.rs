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
            notifications: system.notifications.iter().map(|n| format!("{n:?}")).collect(),
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
        assert_eq!(self.notifications, other.notifications, "{what}: notifications");
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
        fast.assert_same(&self.full_path(), "the fast path must leave the full path's state");
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
        after.assert_same(&self.full_path(), "fast path tried first, then the full path");
    }
}

/// The words a caller or a replying server puts in x2..x5.
const CALL_WORDS: [u64; 4] = [11, 22, 33, 44];
const REPLY_WORDS: [u64; 4] = [99, 98, 97, 96];
/// A slot the fixture leaves empty, for capabilities a case adds.
const SPARE: u64 = 6;

fn call_regs(info: u64) -> Vec<u64> {
    std::vec![EP, info, CALL_WORDS[0], CALL_WORDS[1], CALL_WORDS[2], CALL_WORDS[3]]
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
fn prepare(system: &mut System<'_>, memory: &mut MockMemory, id: TcbId, call: Syscall, regs: &[u64]) {
    super::syscall(system, memory, id, call, regs, false);
}

/// SERVER waits on the endpoint with its reply object.
fn server_waits(system: &mut System<'_>, memory: &mut MockMemory) {
    prepare(system, memory, SERVER, Syscall::Recv, &[EP, 0, 0, 0, 0, 0, REPLY_SLOT]);
}

/// SERVER has taken CLIENT's call and owes it a reply.
fn server_serves_client(system: &mut System<'_>, memory: &mut MockMemory) {
    server_waits(system, memory);
    prepare(system, memory, CLIENT, Syscall::Call, &[EP, message(1, 0)]);
}

/// OTHER, given a receive right on the endpoint, waits on it too.
fn other_waits_too(system: &mut System<'_>, memory: &mut MockMemory) {
    put_cap(system, OTHER, SPARE, endpoint_cap(0, Rights::READ));
    prepare(system, memory, OTHER, Syscall::Recv, &[SPARE, 0, 0, 0, 0, 0, REPLY_SLOT]);
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
            assert_eq!(words, CALL_WORDS, "all four registers travel, as on the full path");
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
    Case::new(SERVER, Syscall::ReplyRecv, &regs, &serving_with_other_suspended)
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
        (CLIENT, Syscall::Call, call_regs(message(7, 2)), FastpathOutcome::Switched),
        (SERVER, Syscall::ReplyRecv, reply_recv_regs(message(9, 1)), FastpathOutcome::Switched),
        (CLIENT, Syscall::Call, call_regs(message(8, 4)), FastpathOutcome::Switched),
    ];
    let (mut fast_pools, mut full_pools) = (pools(&[100, 50, 40]), pools(&[100, 50, 40]));
    let (mut fast_memory, mut full_memory) = (MockMemory::default(), MockMemory::default());
    let (mut fast, mut full) = (system(&mut fast_pools), system(&mut full_pools));
    for (thread, call, regs, outcome) in steps {
        for system in [&mut fast, &mut full] {
            assert_eq!(system.current, thread, "{call:?} is made by the current thread");
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
    assert_eq!((badge, info.label(), info.length(), words), (101, 8, 4, CALL_WORDS));
}

// ---- the fast path falls back, changes nothing, and the full path answers ----

#[test]
fn a_call_falls_back_when_a_thread_of_higher_priority_than_the_server_is_ready() {
    let regs = call_regs(message(7, 2));
    Case::new(CLIENT, Syscall::Call, &regs, &server_waits)
        .priorities([50, 100, 80])
        .falls_back(|system, _| {
            assert_eq!(system.current, OTHER, "OTHER outranks the woken server");
            assert_eq!(system.tcb(SERVER).state, ThreadState::Running);
            assert_eq!(received(system, SERVER).0, 101, "the server has the message");
            assert_eq!(system.tcb(CLIENT).state, blocked_on_reply_from_server());
        });
}

#[test]
fn a_call_falls_back_when_a_thread_of_equal_priority_was_ready_first() {
    let regs = call_regs(message(7, 2));
    Case::new(CLIENT, Syscall::Call, &regs, &server_waits)
        .priorities([50, 50, 50])
        .falls_back(|system, _| {
            assert_eq!(system.current, OTHER, "OTHER was ready first at the same level");
            assert_eq!(system.sched.highest_priority(), Some(50));
            assert_eq!(system.tcb(SERVER).state, ThreadState::Running);
        });
}

#[test]
fn a_call_falls_back_when_a_second_receiver_waits_behind_the_server() {
    let two_receivers = |system: &mut System<'_>, memory: &mut MockMemory| {
        server_waits(system, memory);
        other_waits_too(system, memory);
    };
    let regs = call_regs(message(7, 2));
    Case::new(CLIENT, Syscall::Call, &regs, &two_receivers).falls_back(|system, _| {
        assert_eq!(system.current, SERVER);
        assert_eq!(received(system, SERVER).0, 101);
        assert_eq!(system.endpoints[0].state, EndpointState::Receiving);
        let queue = system.endpoints[0].queue;
        assert_eq!((queue.head, queue.tail), (OTHER, OTHER), "OTHER still waits");
        assert!(matches!(
            system.tcb(OTHER).state,
            ThreadState::BlockedOnReceive { ep: 0, .. }
        ));
    });
}

#[test]
fn a_call_longer_than_four_words_falls_back_and_the_rest_comes_through_the_buffer() {
    for length in [5, 10, 64] {
        let with_long_message = |system: &mut System<'_>, memory: &mut MockMemory| {
            let buffer = system.tcb(CLIENT).ipc_buffer;
            for index in 4..64 {
                memory.0.insert((buffer, index), index as u64 * 1000);
            }
            server_waits(system, memory);
        };
        let regs = call_regs(message(7, length));
        Case::new(CLIENT, Syscall::Call, &regs, &with_long_message).falls_back(|system, memory| {
            let (_, info, words) = received(system, SERVER);
            assert_eq!((info.length(), words), (length as usize, CALL_WORDS));
            let buffer = system.tcb(SERVER).ipc_buffer;
            for index in 4..length as usize {
                assert_eq!(memory.0.get(&(buffer, index)), Some(&(index as u64 * 1000)));
            }
            assert_eq!(memory.0.get(&(buffer, length as usize)), None, "no more than sent");
        });
    }
}

#[test]
fn a_call_transferring_a_capability_falls_back_and_the_capability_arrives() {
    let server_accepts_a_cap = |system: &mut System<'_>, memory: &mut MockMemory| {
        let (server, client) = (system.tcb(SERVER).ipc_buffer, system.tcb(CLIENT).ipc_buffer);
        memory.0.insert((server, IPC_BUFFER_RECEIVE_SLOT), 12);
        memory.0.insert((client, IPC_BUFFER_SEND_CAP), NTFN);
        server_waits(system, memory);
    };
    // No message words at all: the capability alone must send the call to the full path.
    let regs = call_regs(MessageInfo::new(7, 1, 0).raw());
    Case::new(CLIENT, Syscall::Call, &regs, &server_accepts_a_cap).falls_back(|system, _| {
        assert_eq!(received(system, SERVER).1.extra_caps(), 1);
        assert_eq!(
            system.lookup(SERVER, 12),
            Ok(Cap::Notification {
                ntfn: 0,
                badge: 1 << CLIENT,
                rights: Rights::WRITE
            })
        );
    });
}

#[test]
fn a_call_with_a_stale_generation_falls_back_and_is_answered_restarted() {
    let server_restarted_since = |system: &mut System<'_>, memory: &mut MockMemory| {
        server_waits(system, memory);
        system.endpoints[0].generation = 1;
    };
    let regs = call_regs(message(7, 2));
    Case::new(CLIENT, Syscall::Call, &regs, &server_restarted_since).falls_back(|system, _| {
        assert_eq!(
            error_of(system, CLIENT),
            Some(KernelError::Restarted { generation: 1 })
        );
        assert!(matches!(
            system.lookup(CLIENT, EP),
            Ok(Cap::Endpoint { generation: 1, .. })
        ));
        assert_eq!(system.tcb(SERVER).state, server_receiving(), "the server still waits");
        assert_eq!(system.current, CLIENT);
    });
}

#[test]
fn a_call_without_the_write_right_falls_back_and_is_refused() {
    for rights in [Rights::READ, Rights::GRANT, Rights::NONE] {
        let read_only = |system: &mut System<'_>, memory: &mut MockMemory| {
            put_cap(system, CLIENT, EP, endpoint_cap(101, rights));
            server_waits(system, memory);
        };
        let regs = call_regs(message(7, 2));
        Case::new(CLIENT, Syscall::Call, &regs, &read_only).falls_back(|system, _| {
            assert_eq!(
                error_of(system, CLIENT),
                Some(KernelError::InsufficientRights { slot: EP })
            );
            assert_eq!(system.tcb(SERVER).state, server_receiving());
        });
    }
}

#[test]
fn a_call_to_a_server_marked_down_falls_back_and_is_answered_server_down() {
    let down = |system: &mut System<'_>, memory: &mut MockMemory| {
        server_waits(system, memory);
        system.endpoints[0].down = true;
    };
    let regs = call_regs(message(7, 2));
    Case::new(CLIENT, Syscall::Call, &regs, &down).falls_back(|system, _| {
        assert_eq!(
            error_of(system, CLIENT),
            Some(KernelError::ServerDown { generation: 0 })
        );
        assert_eq!(system.tcb(SERVER).state, server_receiving());
    });
}

#[test]
fn a_call_with_nobody_receiving_falls_back_and_queues_the_caller() {
    let other_queued_first = |system: &mut System<'_>, memory: &mut MockMemory| {
        prepare(system, memory, OTHER, Syscall::Call, &[EP, message(2, 0)]);
    };
    for (setup, queue) in [
        (&(|_: &mut System<'_>, _: &mut MockMemory| {}) as Setup<'_>, [CLIENT, CLIENT]),
        (&other_queued_first, [OTHER, CLIENT]),
    ] {
        let regs = call_regs(message(7, 2));
        Case::new(CLIENT, Syscall::Call, &regs, setup).falls_back(|system, _| {
            assert_eq!(
                system.tcb(CLIENT).state,
                ThreadState::BlockedOnSend {
                    ep: 0,
                    badge: 101,
                    is_call: true,
                    can_grant: true,
                    slot: EP as u32
                }
            );
            assert_eq!(system.endpoints[0].state, EndpointState::Sending);
            let ep_queue = system.endpoints[0].queue;
            assert_eq!([ep_queue.head, ep_queue.tail], queue);
            assert_eq!(system.current, SERVER);
        });
    }
}

#[test]
fn a_call_to_a_receiver_without_a_reply_object_falls_back_and_is_cancelled() {
    let no_reply_object = |system: &mut System<'_>, memory: &mut MockMemory| {
        prepare(system, memory, SERVER, Syscall::Recv, &[EP, 0, 0, 0, 0, 0, 0]);
    };
    let regs = call_regs(message(7, 2));
    Case::new(CLIENT, Syscall::Call, &regs, &no_reply_object).falls_back(|system, _| {
        assert_eq!(received(system, SERVER).0, 101, "the message is delivered");
        assert_eq!(error_of(system, CLIENT), Some(KernelError::Cancelled));
        assert_eq!(system.tcb(CLIENT).state, ThreadState::Running);
        assert_eq!(system.current, SERVER);
    });
}

#[test]
fn a_call_through_anything_but_an_endpoint_falls_back() {
    for (slot, error) in [
        (NTFN, KernelError::IllegalOperation { label: 7 }),
        (9, KernelError::InvalidCapability { slot: 9 }),
        (99, KernelError::InvalidCapability { slot: 99 }),
    ] {
        let mut regs = call_regs(message(7, 2));
        regs[0] = slot;
        Case::new(CLIENT, Syscall::Call, &regs, &server_waits).falls_back(|system, _| {
            assert_eq!(error_of(system, CLIENT), Some(error));
            assert_eq!(system.tcb(SERVER).state, server_receiving());
        });
    }
}

/// The receiver's reply object still names a caller: no system call sequence leaves it so
/// (a receive cancels a stale caller before blocking), but the fast path must not overwrite it.
#[test]
fn a_call_falls_back_when_the_receivers_reply_object_is_still_owed() {
    let reply_owed = |system: &mut System<'_>, memory: &mut MockMemory| {
        server_waits(system, memory);
        system.replies[usize::from(SERVER)].caller = Some(OTHER);
    };
    let regs = call_regs(message(7, 2));
    Case::new(CLIENT, Syscall::Call, &regs, &reply_owed).falls_back(|_, _| {});
}

#[test]
fn a_reply_recv_falls_back_when_a_thread_of_higher_priority_than_the_caller_is_ready() {
    let regs = reply_recv_regs(message(9, 1));
    Case::new(SERVER, Syscall::ReplyRecv, &regs, &server_serves_client)
        .priorities([100, 50, 80])
        .falls_back(|system, _| {
            assert_eq!(system.current, OTHER);
            assert_eq!(received(system, CLIENT), (0, MessageInfo::new(9, 0, 1), REPLY_WORDS));
            assert_eq!(system.tcb(CLIENT).state, ThreadState::Running);
            assert_eq!(system.tcb(SERVER).state, server_receiving());
        });
}

#[test]
fn a_reply_recv_falls_back_when_a_thread_of_equal_priority_was_ready_first() {
    let regs = reply_recv_regs(message(9, 1));
    Case::new(SERVER, Syscall::ReplyRecv, &regs, &server_serves_client)
        .priorities([100, 50, 50])
        .falls_back(|system, _| {
            assert_eq!(system.current, OTHER, "OTHER was ready first at the same level");
            assert_eq!(system.tcb(CLIENT).state, ThreadState::Running);
        });
}

#[test]
fn a_reply_recv_falls_back_when_a_sender_is_queued_and_takes_its_message_at_once() {
    let other_queued = |system: &mut System<'_>, memory: &mut MockMemory| {
        server_serves_client(system, memory);
        prepare(system, memory, OTHER, Syscall::Call, &[EP, message(2, 1), 5]);
    };
    let regs = reply_recv_regs(message(9, 1));
    Case::new(SERVER, Syscall::ReplyRecv, &regs, &other_queued).falls_back(|system, _| {
        assert_eq!(received(system, CLIENT), (0, MessageInfo::new(9, 0, 1), REPLY_WORDS));
        assert_eq!(system.current, SERVER, "the server goes on with OTHER's call");
        let (badge, info, words) = received(system, SERVER);
        assert_eq!((badge, info.label(), words[0]), (102, 2, 5));
        assert_eq!(
            system.tcb(OTHER).state,
            ThreadState::BlockedOnReply {
                reply: SERVER,
                ep: 0,
                slot: EP as u32
            }
        );
        assert_eq!(system.endpoints[0].state, EndpointState::Idle);
    });
}

#[test]
fn a_reply_recv_falls_back_when_another_receiver_waits_and_queues_behind_it() {
    let other_receiving = |system: &mut System<'_>, memory: &mut MockMemory| {
        server_serves_client(system, memory);
        other_waits_too(system, memory);
    };
    let regs = reply_recv_regs(message(9, 1));
    Case::new(SERVER, Syscall::ReplyRecv, &regs, &other_receiving).falls_back(|system, _| {
        assert_eq!(system.current, CLIENT);
        assert_eq!(system.tcb(SERVER).state, server_receiving());
        let queue = system.endpoints[0].queue;
        assert_eq!((queue.head, queue.tail), (OTHER, SERVER));
    });
}

#[test]
fn a_reply_recv_longer_than_four_words_falls_back_and_the_rest_comes_through_the_buffer() {
    let with_long_reply = |system: &mut System<'_>, memory: &mut MockMemory| {
        let buffer = system.tcb(SERVER).ipc_buffer;
        for index in 4..8 {
            memory.0.insert((buffer, index), index as u64 * 7);
        }
        server_serves_client(system, memory);
    };
    let regs = reply_recv_regs(message(9, 8));
    Case::new(SERVER, Syscall::ReplyRecv, &regs, &with_long_reply).falls_back(|system, memory| {
        assert_eq!(received(system, CLIENT), (0, MessageInfo::new(9, 0, 8), REPLY_WORDS));
        let buffer = system.tcb(CLIENT).ipc_buffer;
        let tail: Vec<_> = (4..8).map(|index| memory.0.get(&(buffer, index)).copied()).collect();
        assert_eq!(tail, [Some(28), Some(35), Some(42), Some(49)]);
    });
}

#[test]
fn a_reply_recv_lending_a_capability_falls_back_and_the_capability_arrives() {
    let client_accepts_a_cap = |system: &mut System<'_>, memory: &mut MockMemory| {
        let (server, client) = (system.tcb(SERVER).ipc_buffer, system.tcb(CLIENT).ipc_buffer);
        memory.0.insert((client, IPC_BUFFER_RECEIVE_SLOT), 13);
        memory.0.insert((server, IPC_BUFFER_SEND_CAP), NTFN);
        server_serves_client(system, memory);
    };
    let regs = reply_recv_regs(MessageInfo::new(9, 1, 0).raw());
    Case::new(SERVER, Syscall::ReplyRecv, &regs, &client_accepts_a_cap).falls_back(|system, _| {
        assert_eq!(received(system, CLIENT).1, MessageInfo::new(9, 1, 0));
        assert_eq!(
            system.lookup(CLIENT, 13),
            Ok(Cap::Notification {
                ntfn: 0,
                badge: 1 << SERVER,
                rights: Rights::READ
            })
        );
    });
}

#[test]
fn a_reply_recv_without_the_read_right_falls_back_answers_and_is_refused() {
    let write_only = |system: &mut System<'_>, memory: &mut MockMemory| {
        put_cap(system, SERVER, SPARE, endpoint_cap(0, Rights::WRITE));
        server_serves_client(system, memory);
    };
    let mut regs = reply_recv_regs(message(9, 1));
    regs[0] = SPARE;
    Case::new(SERVER, Syscall::ReplyRecv, &regs, &write_only).falls_back(|system, _| {
        assert_eq!(received(system, CLIENT), (0, MessageInfo::new(9, 0, 1), REPLY_WORDS));
        assert_eq!(
            error_of(system, SERVER),
            Some(KernelError::InsufficientRights { slot: SPARE })
        );
        assert_eq!(system.current, SERVER, "the server goes on after the error");
    });
}

#[test]
fn a_reply_recv_to_a_faulted_thread_falls_back_and_resumes_it_untouched() {
    let client_faulted = |system: &mut System<'_>, memory: &mut MockMemory| {
        server_waits(system, memory);
        system.tcb_mut(CLIENT).fault_handler = Some((0, 0xF1));
        run_as(system, CLIENT);
        system.tcb_mut(CLIENT).context.regs[..6].copy_from_slice(&[1, 2, 3, 4, 5, 6]);
        system.tcb_mut(CLIENT).context.regs[PC] = 0x20_0040;
        let fault = FaultInfo {
            kind: FaultKind::DataAbort,
            pc: 0x20_0040,
            address: 0xdead_0000,
            syndrome: 0x9200_0007,
        };
        system.handle_fault(memory, fault);
        system.choose_next();
    };
    let regs = reply_recv_regs(message(0, 0));
    Case::new(SERVER, Syscall::ReplyRecv, &regs, &client_faulted).falls_back(|system, _| {
        let client = system.tcb(CLIENT);
        assert_eq!((client.state, client.fault), (ThreadState::Running, None));
        assert_eq!(client.context.regs[..6], [1, 2, 3, 4, 5, 6], "registers untouched");
        assert_eq!(client.context.regs[PC], 0x20_0040);
    });
}

#[test]
fn a_reply_recv_with_nobody_to_answer_falls_back_and_just_waits() {
    let regs = reply_recv_regs(message(9, 1));
    Case::new(SERVER, Syscall::ReplyRecv, &regs, &|_, _| {}).falls_back(|system, _| {
        assert_eq!(system.tcb(SERVER).state, server_receiving());
        assert_eq!(system.current, CLIENT);
    });
}

#[test]
fn a_reply_recv_with_a_bad_reply_capability_falls_back_and_is_refused() {
    for (slot, error) in [
        (EP, KernelError::WrongObjectType { slot: EP }),
        (0, KernelError::InvalidCapability { slot: 0 }),
        (99, KernelError::InvalidCapability { slot: 99 }),
    ] {
        let mut regs = reply_recv_regs(message(9, 1));
        regs[6] = slot;
        Case::new(SERVER, Syscall::ReplyRecv, &regs, &server_serves_client).falls_back(
            |system, _| {
                assert_eq!(error_of(system, SERVER), Some(error));
                assert_eq!(system.tcb(CLIENT).state, blocked_on_reply_from_server());
                assert_eq!(system.current, SERVER);
            },
        );
    }
}

#[test]
fn a_reply_recv_on_a_notification_falls_back_answers_and_waits_on_it() {
    let mut regs = reply_recv_regs(message(9, 1));
    regs[0] = NTFN;
    Case::new(SERVER, Syscall::ReplyRecv, &regs, &server_serves_client).falls_back(|system, _| {
        assert_eq!(received(system, CLIENT), (0, MessageInfo::new(9, 0, 1), REPLY_WORDS));
        assert_eq!(
            system.tcb(SERVER).state,
            ThreadState::BlockedOnNotification { ntfn: 0 }
        );
    });
}

#[test]
fn only_call_and_reply_recv_take_the_fast_path() {
    let others = [
        Syscall::Send,
        Syscall::NBSend,
        Syscall::Recv,
        Syscall::Signal,
        Syscall::Wait,
        Syscall::Yield,
        Syscall::Poll,
        Syscall::DebugWrite,
        Syscall::DebugLog,
    ]
    .map(|call| call as u64);
    let numbers = others.iter().copied().chain([11, 999, u64::MAX]);
    // Registers and state that would qualify for the Call fast path, then for ReplyRecv's.
    let qualifying: [(TcbId, Vec<u64>, Setup<'_>); 2] = [
        (CLIENT, call_regs(message(7, 1)), &server_waits),
        (SERVER, reply_recv_regs(message(9, 1)), &server_serves_client),
    ];
    for number in numbers {
        for (thread, regs, setup) in &qualifying {
            let case = Case {
                number,
                ..Case::new(*thread, Syscall::Call, regs, *setup)
            };
            case.falls_back(|_, _| {});
        }
    }
}

#[test]
fn no_current_thread_means_no_fast_path() {
    let mut pools = pools(&[100, 50, 40]);
    let mut system = system(&mut pools);
    system.current = NONE;
    for call in [Syscall::Call, Syscall::ReplyRecv] {
        assert_eq!(system.fastpath(call as u64), FastpathOutcome::Fallback);
    }
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
        Other::Calling => prepare(system, memory, OTHER, Syscall::Call, &[EP, message(2, 1), 5]),
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
