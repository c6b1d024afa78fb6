//! What a thread may name: only the slots of its own CNode that hold a capability, of the kind
//! the call needs, with the right the call uses. The lookup (`cnode::lookup`) checks the slot
//! against the CNode's size before it touches the pool, so a slot past the caller's CNode never
//! reaches the neighbour's slots that follow it in the pool.

use super::super::{CLIENT, EP, MockMemory, NTFN, OTHER, SERVER, SLOTS, pools, put_cap, system};
use super::refused;
use crate::TcbId;
use crate::cap::{Cap, FrameCap};
use crate::system::System;
use abi::InvocationLabel::{self, *};
use abi::{KernelError, MessageInfo, REPLY_SLOT, Rights, Syscall};

/// Slots the caller does not hold: the null slot, empty slots inside its CNode, the first slots
/// past it (which, in the pool, are the next thread's null, reply and endpoint slots), the
/// neighbour's endpoint after that, a slot whose low 32 bits name a held one, and the largest.
const NOT_HELD: [u64; 9] = [
    0,
    6,
    SLOTS as u64 - 1,
    SLOTS as u64,
    SLOTS as u64 + REPLY_SLOT,
    SLOTS as u64 + EP,
    2 * SLOTS as u64 + EP,
    (1 << 32) | EP,
    u64::MAX,
];

/// Every label the ABI defines, and a few it does not (up to the largest a message info holds).
fn labels() -> impl Iterator<Item = u64> {
    (0..=26).chain([99, u64::from(u32::MAX), (1 << 52) - 1])
}

/// Every system call that takes a capability in `x0`.
const TAKES_A_CAPABILITY: [Syscall; 10] = [
    Syscall::Call,
    Syscall::ReplyRecv,
    Syscall::Send,
    Syscall::NBSend,
    Syscall::Recv,
    Syscall::Signal,
    Syscall::Wait,
    Syscall::Poll,
    Syscall::DebugWrite,
    Syscall::DebugLog,
];

fn message(label: u64, words: u64) -> u64 {
    MessageInfo::new(label, 0, words).raw()
}

#[test]
fn no_system_call_reaches_a_slot_the_caller_does_not_hold() {
    for fast in [true, false] {
        for caller in [SERVER, CLIENT, OTHER] {
            let mut pools = pools(&[100, 50, 40]);
            let mut memory = MockMemory::default();
            let mut system = system(&mut pools);
            for slot in NOT_HELD {
                for call in TAKES_A_CAPABILITY {
                    // The reply half of a ReplyRecv on an idle reply object does nothing; the
                    // receive half then looks `x0` up.
                    let regs = [slot, message(0, 4), 1, 2, 3, 4, REPLY_SLOT];
                    let error = refused(&mut system, &mut memory, caller, call as u64, &regs, fast);
                    assert_eq!(
                        error,
                        KernelError::InvalidCapability { slot },
                        "{call:?} through slot {slot:#x} by thread {caller}"
                    );
                }
                for label in labels() {
                    for call in [Syscall::Call, Syscall::Send] {
                        let regs = [slot, message(label, 4), 1, 2, 3, 4];
                        let error =
                            refused(&mut system, &mut memory, caller, call as u64, &regs, fast);
                        assert_eq!(error, KernelError::InvalidCapability { slot });
                    }
                }
            }
        }
    }
}

#[test]
fn a_reply_object_the_caller_does_not_hold_is_refused_before_anything_happens() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    for reply in NOT_HELD.into_iter().filter(|slot| *slot != 0) {
        // SERVER may receive on EP: only the reply object is wrong.
        let regs = [EP, 0, 0, 0, 0, 0, reply];
        for call in [Syscall::Recv, Syscall::ReplyRecv] {
            let error = refused(&mut system, &mut memory, SERVER, call as u64, &regs, true);
            assert_eq!(
                error,
                KernelError::InvalidCapability { slot: reply },
                "{call:?}"
            );
        }
    }
    // A ReplyRecv's reply half needs one even with slot 0 (a Recv without one is allowed).
    let regs = [EP, 0, 0, 0, 0, 0, 0];
    let error = refused(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::ReplyRecv as u64,
        &regs,
        true,
    );
    assert_eq!(error, KernelError::InvalidCapability { slot: 0 });
}

#[test]
fn a_system_call_number_that_does_not_exist_is_refused() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    for number in [11, 12, 255, 1 << 32, u64::MAX] {
        for fast in [true, false] {
            let regs = [EP, message(0, 0)];
            let error = refused(&mut system, &mut memory, CLIENT, number, &regs, fast);
            assert_eq!(error, KernelError::InvalidSyscall { number });
        }
    }
}

/// One capability of each kind that is not an endpoint, with the invocation labels it has.
fn objects() -> [(Cap, &'static [InvocationLabel]); 13] {
    let range = FrameCap::new(0, 0x4_0000, 1024, false);
    let carved = FrameCap::new(0, 0x4_0000, 1, true);
    [
        (
            Cap::Notification {
                ntfn: 0,
                badge: 1,
                rights: Rights::ALL,
            },
            &[],
        ),
        (Cap::Reply { reply: CLIENT }, &[]),
        (
            Cap::Tcb { tcb: OTHER },
            &[TcbSuspend, TcbResume, TcbRestart, TcbReadState],
        ),
        (
            Cap::CNode { owner: CLIENT },
            &[CNodeCopy, CNodeMint, CNodeDelete],
        ),
        (Cap::IrqHandler { irq: 0 }, &[IrqAck]),
        (Cap::SystemControl, &[SystemOff]),
        (
            Cap::Vcpu { vcpu: 0 },
            &[
                VcpuInjectIrq,
                VcpuSetVtimer,
                VcpuListRegisters,
                VcpuSetMmioRoute,
                VcpuClearMmioRoute,
                VcpuSetDoorbell,
            ],
        ),
        (
            Cap::VSpace { vspace: 0 },
            &[
                VSpaceMap,
                VSpaceUnmap,
                VSpaceWriteProtect,
                VSpaceMapMmio,
                VSpaceMmioUpdate,
            ],
        ),
        (
            Cap::Frame(range),
            &[FrameCarve, FrameRevoke, FrameGetAddress],
        ),
        // A carved frame is not a range: it can be neither carved from nor revoked.
        (Cap::Frame(carved), &[FrameGetAddress]),
        (Cap::DebugConsole, &[]),
        (Cap::DebugLog, &[]),
        (Cap::DebugInput, &[DebugInputBind, DebugInputRead]),
    ]
}

const HELD: u64 = 9;

/// A system with `cap` in CLIENT's slot [`HELD`] (and SERVER's, for receives).
fn holding(pools: &mut super::super::Pools, cap: Cap) -> System<'_> {
    let mut system = system(pools);
    put_cap(&mut system, CLIENT, HELD, cap);
    put_cap(&mut system, SERVER, HELD, cap);
    system
}

#[test]
fn an_operation_the_object_does_not_have_is_an_illegal_operation() {
    for (cap, own) in objects() {
        for fast in [true, false] {
            let mut pools = pools(&[100, 50, 40]);
            let mut memory = MockMemory::default();
            let mut system = holding(&mut pools, cap);
            for label in labels() {
                if own.iter().any(|op| *op as u64 == label) {
                    continue;
                }
                // A Send that names no endpoint or notification is an invocation whose answer
                // is dropped; a Call on a notification is an invocation too.
                let calls: &[Syscall] = match cap {
                    Cap::Notification { .. } => &[Syscall::Call],
                    _ => &[Syscall::Call, Syscall::Send],
                };
                for call in calls {
                    let regs = [HELD, message(label, 4), 0, 0, 0, 0];
                    let error =
                        refused(&mut system, &mut memory, CLIENT, *call as u64, &regs, fast);
                    assert_eq!(
                        error,
                        KernelError::IllegalOperation { label },
                        "{call:?} of label {label} on {cap:?}"
                    );
                }
            }
        }
    }
}

/// The answer each system call gets on an object of the wrong kind: `None` when the kind is
/// right for it (an operation of its own, tested elsewhere).
fn wrong_kind(call: Syscall, cap: Cap) -> Option<KernelError> {
    let wrong = Some(KernelError::WrongObjectType { slot: HELD });
    let kind_fits = match call {
        Syscall::Signal | Syscall::Wait | Syscall::Poll => {
            matches!(cap, Cap::Notification { .. })
        }
        Syscall::Recv => matches!(cap, Cap::Endpoint { .. } | Cap::Notification { .. }),
        // Send and Call on other kinds are invocations (above).
        Syscall::NBSend => matches!(cap, Cap::Endpoint { .. } | Cap::Notification { .. }),
        Syscall::DebugWrite => cap == Cap::DebugConsole,
        Syscall::DebugLog => cap == Cap::DebugLog,
        _ => true,
    };
    if kind_fits { None } else { wrong }
}

#[test]
fn a_system_call_on_an_object_of_the_wrong_kind_is_the_wrong_object_type() {
    let endpoint = Cap::Endpoint {
        ep: 0,
        badge: 5,
        rights: Rights::ALL,
        generation: 0,
    };
    let kinds = objects().map(|(cap, _)| cap);
    for cap in kinds.iter().copied().chain([endpoint]) {
        let mut pools = pools(&[100, 50, 40]);
        let mut memory = MockMemory::default();
        let mut system = holding(&mut pools, cap);
        for call in [
            Syscall::Signal,
            Syscall::Wait,
            Syscall::Poll,
            Syscall::Recv,
            Syscall::NBSend,
            Syscall::DebugWrite,
            Syscall::DebugLog,
        ] {
            let Some(expected) = wrong_kind(call, cap) else {
                continue;
            };
            let regs = [HELD, message(0, 0), 0, 0, 0, 0, 0];
            let error = refused(&mut system, &mut memory, CLIENT, call as u64, &regs, true);
            assert_eq!(error, expected, "{call:?} on {cap:?}");
        }
        // A reply object of the wrong kind, in both calls that name one.
        if !matches!(cap, Cap::Reply { .. }) {
            let regs = [EP, 0, 0, 0, 0, 0, HELD];
            for (call, who) in [(Syscall::ReplyRecv, CLIENT), (Syscall::Recv, SERVER)] {
                let error = refused(&mut system, &mut memory, who, call as u64, &regs, true);
                assert_eq!(
                    error,
                    KernelError::WrongObjectType { slot: HELD },
                    "{call:?} with {cap:?} as its reply object"
                );
            }
        }
    }
}

/// A call that needs a right the capability lacks: (caller, call, slot).
const WITHOUT_THE_RIGHT: [(TcbId, Syscall, u64); 10] = [
    // CLIENT's endpoint capability is WRITE | GRANT, SERVER's READ.
    (CLIENT, Syscall::Recv, EP),
    (CLIENT, Syscall::ReplyRecv, EP),
    (SERVER, Syscall::Call, EP),
    (SERVER, Syscall::Send, EP),
    (SERVER, Syscall::NBSend, EP),
    // CLIENT's notification capability is WRITE, SERVER's READ.
    (CLIENT, Syscall::Wait, NTFN),
    (CLIENT, Syscall::Poll, NTFN),
    (CLIENT, Syscall::Recv, NTFN),
    (SERVER, Syscall::Signal, NTFN),
    (SERVER, Syscall::Send, NTFN),
];

#[test]
fn an_operation_needs_the_right_it_uses() {
    for (caller, call, slot) in WITHOUT_THE_RIGHT {
        for fast in [true, false] {
            let mut pools = pools(&[100, 50, 40]);
            let mut memory = MockMemory::default();
            let mut system = system(&mut pools);
            let regs = [slot, message(1, 1), 7, 0, 0, 0, REPLY_SLOT];
            let error = refused(&mut system, &mut memory, caller, call as u64, &regs, fast);
            assert_eq!(
                error,
                KernelError::InsufficientRights { slot },
                "{call:?} through slot {slot} by thread {caller}"
            );
        }
    }
    // With no right at all, nothing goes through either object.
    for cap in [
        Cap::Endpoint {
            ep: 0,
            badge: 9,
            rights: Rights::NONE,
            generation: 0,
        },
        Cap::Notification {
            ntfn: 0,
            badge: 9,
            rights: Rights::NONE,
        },
    ] {
        let mut pools = pools(&[100, 50, 40]);
        let mut memory = MockMemory::default();
        let mut system = holding(&mut pools, cap);
        let calls: &[Syscall] = match cap {
            Cap::Endpoint { .. } => &[Syscall::Call, Syscall::Send, Syscall::NBSend, Syscall::Recv],
            _ => &[
                Syscall::Send,
                Syscall::NBSend,
                Syscall::Signal,
                Syscall::Wait,
                Syscall::Poll,
                Syscall::Recv,
            ],
        };
        for call in calls {
            let regs = [HELD, message(0, 0), 0, 0, 0, 0, REPLY_SLOT];
            let error = refused(&mut system, &mut memory, CLIENT, *call as u64, &regs, true);
            assert_eq!(
                error,
                KernelError::InsufficientRights { slot: HELD },
                "{call:?} on {cap:?}"
            );
        }
    }
}
