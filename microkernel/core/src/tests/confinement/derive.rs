//! No amplification: what a thread derives from a capability (a copy, a mint, a transfer in
//! IPC) can do at most what the capability itself could (`Cap::derive`: rights are intersected,
//! a badge is set once), a reply capability stays with its owner and answers one call once,
//! and a capability moves in IPC only when the sender holds GRANT, into an empty slot of the
//! receiver's own CNode that the receiver chose.

use super::super::{
    CLIENT, EP, MockMemory, NTFN, OTHER, SERVER, SLOTS, TCB_OF_SERVER, error_of, invoke, pools,
    put_cap, received, syscall, system,
};
use super::refused;
use crate::cap::{Cap, FrameCap};
use crate::system::System;
use crate::tcb::ThreadState;
use abi::InvocationLabel::{CNodeCopy, CNodeDelete, CNodeMint};
use abi::message::{IPC_BUFFER_RECEIVE_SLOT, IPC_BUFFER_SEND_CAP};
use abi::{
    CNODE_SLOT, FaultInfo, FaultKind, KernelError, MessageInfo, REPLY_SLOT, Rights, Syscall,
};
use proptest::prelude::*;
use std::vec::Vec;

/// CLIENT's capabilities in the fixture: its endpoint (WRITE | GRANT, badge 101) and its
/// notification (WRITE, badge 2).
const CLIENT_EP: Cap = Cap::Endpoint {
    ep: 0,
    badge: 101,
    rights: Rights::WRITE.union(Rights::GRANT),
    generation: 0,
};
const CLIENT_NTFN: Cap = Cap::Notification {
    ntfn: 0,
    badge: 2,
    rights: Rights::WRITE,
};

/// Rights arguments: every byte, and words whose low byte is what counts (the kernel reads the
/// argument's low byte and drops the bits no right has).
fn asked_rights() -> impl Iterator<Item = u64> {
    (0..=0xFF).chain([0x100, 0x11F, 1 << 63, u64::MAX])
}

/// What copying `source` with `asked` (the raw argument) must give, written out per kind
/// rather than through `Cap::derive`.
fn expected_copy(source: Cap, asked: u64) -> Cap {
    let asked = Rights::from_bits_truncate(asked as u8);
    match source {
        Cap::Endpoint {
            ep,
            badge,
            rights,
            generation,
        } => Cap::Endpoint {
            ep,
            badge,
            rights: rights.intersection(asked),
            generation,
        },
        Cap::Notification {
            ntfn,
            badge,
            rights,
        } => Cap::Notification {
            ntfn,
            badge,
            rights: rights.intersection(asked),
        },
        Cap::Frame(frame) => Cap::Frame(FrameCap {
            rights: frame.rights.intersection(asked),
            mapped_vspace: FrameCap::UNMAPPED,
            mapped_page: 0,
            ..frame
        }),
        other => other,
    }
}

/// `id` invokes its CNode; the error, if refused.
fn cnode(
    system: &mut System<'_>,
    memory: &mut MockMemory,
    id: crate::TcbId,
    label: abi::InvocationLabel,
    args: [u64; 4],
) -> Option<KernelError> {
    invoke(system, memory, id, CNODE_SLOT, label, args);
    error_of(system, id)
}

#[test]
fn copy_and_mint_never_add_a_right_whatever_bits_are_asked_for() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    let read_only_frame = FrameCap::new(0, 0x4_0000, 1, true).with_rights(Rights::READ);
    let mut mapped = FrameCap::new(0, 0x4_0001, 1, true);
    mapped.set_mapping(Some((0, 0x40)));
    put_cap(&mut system, CLIENT, 7, Cap::Frame(read_only_frame));
    put_cap(&mut system, CLIENT, 8, Cap::Frame(mapped));
    let receive_only = Cap::Endpoint {
        ep: 0,
        badge: 0,
        rights: Rights::READ,
        generation: 0,
    };
    put_cap(&mut system, CLIENT, 9, receive_only);
    const COPY: u64 = 10;
    for source in [EP, NTFN, TCB_OF_SERVER, CNODE_SLOT, 7, 8, 9] {
        let original = system.lookup(CLIENT, source).unwrap();
        for asked in asked_rights() {
            // A copy, and a mint that names the badge the source already has.
            let badge = match original {
                Cap::Endpoint { badge, .. } | Cap::Notification { badge, .. } => Some(badge),
                _ => None,
            };
            let mut ways = std::vec![(CNodeCopy, 0)];
            ways.extend(badge.map(|badge| (CNodeMint, badge)));
            for (label, badge) in ways {
                let error = cnode(
                    &mut system,
                    &mut memory,
                    CLIENT,
                    label,
                    [source, COPY, asked, badge],
                );
                assert_eq!(error, None, "{label:?} of slot {source} asking {asked:#x}");
                let copy = system.lookup(CLIENT, COPY).unwrap();
                assert_eq!(copy, expected_copy(original, asked), "{label:?} {asked:#x}");
                assert!(original.rights().contains(copy.rights()), "never more");
                assert_eq!(system.lookup(CLIENT, source), Ok(original), "source intact");
                let error = cnode(
                    &mut system,
                    &mut memory,
                    CLIENT,
                    CNodeDelete,
                    [COPY, 0, 0, 0],
                );
                assert_eq!(error, None);
            }
        }
    }
}

/// `regs` for a `Call` of `label` on `id`'s CNode with `args`.
fn cnode_regs(label: abi::InvocationLabel, args: [u64; 4]) -> [u64; 6] {
    let info = MessageInfo::new(label as u64, 0, 4).raw();
    [CNODE_SLOT, info, args[0], args[1], args[2], args[3]]
}

#[test]
fn a_copy_cannot_do_what_its_original_could_not() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    let all = u64::MAX;
    // CLIENT: a send-only endpoint and a signal-only notification, copied asking for every
    // right, and the copy copied again.
    for (from, to) in [(EP, 10), (NTFN, 11), (10, 12), (11, 13)] {
        assert_eq!(
            cnode(
                &mut system,
                &mut memory,
                CLIENT,
                CNodeCopy,
                [from, to, all, 0]
            ),
            None
        );
    }
    // SERVER: a receive-only endpoint and a wait-only notification, the same way.
    for (from, to) in [(EP, 10), (NTFN, 11)] {
        assert_eq!(
            cnode(
                &mut system,
                &mut memory,
                SERVER,
                CNodeCopy,
                [from, to, all, 0]
            ),
            None
        );
    }
    let cases = [
        (CLIENT, Syscall::Recv, 10),
        (CLIENT, Syscall::ReplyRecv, 10),
        (CLIENT, Syscall::Recv, 12),
        (CLIENT, Syscall::Wait, 11),
        (CLIENT, Syscall::Poll, 13),
        (CLIENT, Syscall::Recv, 11),
        (SERVER, Syscall::Call, 10),
        (SERVER, Syscall::Send, 10),
        (SERVER, Syscall::NBSend, 10),
        (SERVER, Syscall::Signal, 11),
        (SERVER, Syscall::Send, 11),
    ];
    for (id, call, slot) in cases {
        let regs = [
            slot,
            MessageInfo::new(1, 0, 0).raw(),
            0,
            0,
            0,
            0,
            REPLY_SLOT,
        ];
        let error = refused(&mut system, &mut memory, id, call as u64, &regs, true);
        assert_eq!(
            error,
            KernelError::InsufficientRights { slot },
            "{call:?} through the copy in slot {slot} by thread {id}"
        );
    }
}

#[test]
fn a_badge_is_set_once() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    let all = u64::from(Rights::ALL.bits());
    // A badged capability takes no other badge, 0 included.
    for (source, own) in [(EP, 101), (NTFN, 2)] {
        for badge in [0, 1, 100, 102, 0xFFFF, u64::MAX] {
            if badge == own {
                continue;
            }
            let regs = cnode_regs(CNodeMint, [source, 10, all, badge]);
            let error = refused(
                &mut system,
                &mut memory,
                CLIENT,
                Syscall::Call as u64,
                &regs,
                true,
            );
            assert_eq!(
                error,
                KernelError::InvalidArgument { index: 3 },
                "badge {badge}"
            );
        }
        // Its own badge is no change.
        assert_eq!(
            cnode(
                &mut system,
                &mut memory,
                CLIENT,
                CNodeMint,
                [source, 10, all, own]
            ),
            None
        );
        assert_eq!(system.lookup(CLIENT, 10), system.lookup(CLIENT, source));
        cnode(&mut system, &mut memory, CLIENT, CNodeDelete, [10, 0, 0, 0]);
    }
    // An unbadged one takes a badge once; what is derived from it keeps that badge.
    assert_eq!(
        cnode(
            &mut system,
            &mut memory,
            SERVER,
            CNodeMint,
            [EP, 10, all, 7]
        ),
        None
    );
    let regs = cnode_regs(CNodeMint, [10, 11, all, 8]);
    let error = refused(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::Call as u64,
        &regs,
        true,
    );
    assert_eq!(error, KernelError::InvalidArgument { index: 3 });
    assert_eq!(
        cnode(
            &mut system,
            &mut memory,
            SERVER,
            CNodeCopy,
            [10, 11, all, 0]
        ),
        None
    );
    assert!(matches!(
        system.lookup(SERVER, 11),
        Ok(Cap::Endpoint { badge: 7, .. })
    ));
    // Capabilities that carry no badge take none, not even 0.
    for (slot, cap) in [
        (TCB_OF_SERVER, None),
        (CNODE_SLOT, None),
        (9, Some(Cap::Frame(FrameCap::new(0, 0x4_0000, 1, true)))),
        (9, Some(Cap::IrqHandler { irq: 0 })),
        (9, Some(Cap::SystemControl)),
        (9, Some(Cap::Vcpu { vcpu: 0 })),
        (9, Some(Cap::VSpace { vspace: 0 })),
        (9, Some(Cap::DebugConsole)),
        (9, Some(Cap::DebugInput)),
    ] {
        if let Some(cap) = cap {
            put_cap(&mut system, CLIENT, slot, cap);
        }
        for badge in [0, 5] {
            let regs = cnode_regs(CNodeMint, [slot, 10, all, badge]);
            let error = refused(
                &mut system,
                &mut memory,
                CLIENT,
                Syscall::Call as u64,
                &regs,
                true,
            );
            assert_eq!(
                error,
                KernelError::InvalidArgument { index: 0 },
                "slot {slot}"
            );
        }
    }
}

/// SERVER waits on EP with its reply object, accepting one capability into `receive`.
fn server_waits(system: &mut System<'_>, memory: &mut MockMemory, receive: u64) {
    let buffer = system.tcb(SERVER).ipc_buffer;
    memory.0.insert((buffer, IPC_BUFFER_RECEIVE_SLOT), receive);
    super::super::server_waits(system, memory, true);
    assert!(matches!(
        system.tcb(SERVER).state,
        ThreadState::BlockedOnReceive { .. }
    ));
}

/// The IPC-buffer word of `id` that names the capability it sends.
fn offer(system: &System<'_>, memory: &mut MockMemory, id: crate::TcbId, slot: u64) {
    memory
        .0
        .insert((system.tcb(id).ipc_buffer, IPC_BUFFER_SEND_CAP), slot);
}

#[test]
fn a_reply_capability_is_never_copied_minted_transferred_or_deleted_by_its_owner() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    let all = u64::from(Rights::ALL.bits());
    for (label, args, index) in [
        (CNodeCopy, [REPLY_SLOT, 10, all, 0], 0),
        (CNodeMint, [REPLY_SLOT, 10, all, 0], 0),
        (CNodeDelete, [REPLY_SLOT, 0, 0, 0], 0),
    ] {
        let regs = cnode_regs(label, args);
        let error = refused(
            &mut system,
            &mut memory,
            CLIENT,
            Syscall::Call as u64,
            &regs,
            true,
        );
        assert_eq!(error, KernelError::InvalidArgument { index }, "{label:?}");
    }
    // Offered in a message from a sender that may grant: the message goes, the reply stays.
    server_waits(&mut system, &mut memory, 12);
    offer(&system, &mut memory, CLIENT, REPLY_SLOT);
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Call,
        &[EP, MessageInfo::new(3, 1, 0).raw()],
        true,
    );
    assert_eq!(received(&system, SERVER).1, MessageInfo::new(3, 0, 0));
    assert!(system.lookup(SERVER, 12).is_err(), "nothing arrived");
    assert_eq!(
        system.lookup(CLIENT, REPLY_SLOT),
        Ok(Cap::Reply { reply: CLIENT })
    );
}

#[test]
fn a_reply_object_answers_its_caller_once() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    // CLIENT also receives on endpoint 1 (no server behind it), so it can wait somewhere.
    let elsewhere = Cap::Endpoint {
        ep: 1,
        badge: 0,
        rights: Rights::READ,
        generation: 0,
    };
    put_cap(&mut system, CLIENT, 9, elsewhere);
    server_waits(&mut system, &mut memory, 0);
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Call,
        &[EP, MessageInfo::new(1, 0, 0).raw()],
        true,
    );
    // SERVER answers, and waits on its notification instead of the endpoint.
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::ReplyRecv,
        &[
            NTFN,
            MessageInfo::new(7, 0, 1).raw(),
            70,
            0,
            0,
            0,
            REPLY_SLOT,
        ],
        true,
    );
    assert_eq!(received(&system, CLIENT).1.label(), 7);
    assert_eq!(system.replies[usize::from(SERVER)].caller, None);
    // CLIENT goes on to wait on endpoint 1; OTHER's signal wakes SERVER.
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Recv,
        &[9, 0, 0, 0, 0, 0, REPLY_SLOT],
        true,
    );
    syscall(
        &mut system,
        &mut memory,
        OTHER,
        Syscall::Signal,
        &[NTFN],
        true,
    );
    assert_eq!(system.current, SERVER);
    let waiting = system.tcb(CLIENT).context;
    // A second reply through the same object reaches nobody.
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::ReplyRecv,
        &[
            NTFN,
            MessageInfo::new(99, 0, 4).raw(),
            1,
            2,
            3,
            4,
            REPLY_SLOT,
        ],
        true,
    );
    assert_eq!(
        system.tcb(CLIENT).context,
        waiting,
        "no answer reached CLIENT"
    );
    assert_eq!(
        system.tcb(CLIENT).state,
        ThreadState::BlockedOnReceive {
            ep: 1,
            reply: Some(CLIENT)
        }
    );
}

#[test]
fn a_reply_object_taken_by_a_new_receive_cancels_the_caller_it_owed() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    server_waits(&mut system, &mut memory, 0);
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Call,
        &[EP, MessageInfo::new(1, 0, 0).raw()],
        true,
    );
    // SERVER receives again with the same reply object, without answering CLIENT.
    server_waits(&mut system, &mut memory, 0);
    assert_eq!(error_of(&system, CLIENT), Some(KernelError::Cancelled));
    assert_eq!(system.tcb(CLIENT).state, ThreadState::Running);
    syscall(
        &mut system,
        &mut memory,
        OTHER,
        Syscall::Call,
        &[EP, MessageInfo::new(2, 0, 0).raw()],
        true,
    );
    let client = (system.tcb(CLIENT).context, system.tcb(CLIENT).state);
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::ReplyRecv,
        &[EP, MessageInfo::new(5, 0, 0).raw(), 0, 0, 0, 0, REPLY_SLOT],
        true,
    );
    assert_eq!(
        received(&system, OTHER).1.label(),
        5,
        "the reply goes to OTHER"
    );
    assert_eq!(
        (system.tcb(CLIENT).context, system.tcb(CLIENT).state),
        client,
        "and never to the caller it was taken from"
    );
}

/// What happens to an offered capability: CLIENT, holding `rights` on EP, offers the
/// capability in its `send` slot through `call`; SERVER accepts one into `receive`. Returns
/// the number of capabilities the message says arrived, and SERVER's CNode afterwards.
fn offered(rights: Rights, call: Syscall, send: u64, receive: u64) -> (usize, Vec<Cap>) {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    let mut cap = CLIENT_EP;
    if let Cap::Endpoint { rights: held, .. } = &mut cap {
        *held = rights;
    }
    put_cap(&mut system, CLIENT, EP, cap);
    server_waits(&mut system, &mut memory, receive);
    offer(&system, &mut memory, CLIENT, send);
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        call,
        &[EP, MessageInfo::new(3, 1, 1).raw(), 33],
        true,
    );
    let (badge, info, words) = received(&system, SERVER);
    assert_eq!(
        (badge, info.label(), words[0]),
        (101, 3, 33),
        "the message goes through whatever happens to the capability"
    );
    let base = usize::from(SERVER) * SLOTS as usize;
    let cnode = system.slots[base..base + SLOTS as usize].to_vec();
    (info.extra_caps(), cnode)
}

#[test]
fn a_capability_moves_in_ipc_only_from_a_sender_holding_grant() {
    let untouched = {
        let mut pools = pools(&[100, 50, 40]);
        let system = system(&mut pools);
        system.slots[..SLOTS as usize].to_vec()
    };
    for call in [Syscall::Call, Syscall::Send, Syscall::NBSend] {
        for rights in [Rights::WRITE, Rights::WRITE.union(Rights::GRANT_REPLY)] {
            let (caps, cnode) = offered(rights, call, NTFN, 12);
            assert_eq!((caps, &cnode), (0, &untouched), "{call:?} with {rights:?}");
        }
        let (caps, cnode) = offered(Rights::WRITE.union(Rights::GRANT), call, NTFN, 12);
        assert_eq!(caps, 1);
        assert_eq!(
            cnode[12], CLIENT_NTFN,
            "the sender's rights and badge, no more"
        );
    }
}

#[test]
fn a_copy_asking_for_every_right_of_a_send_only_capability_cannot_grant() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    let send_only = Cap::Endpoint {
        ep: 0,
        badge: 101,
        rights: Rights::WRITE,
        generation: 0,
    };
    put_cap(&mut system, CLIENT, EP, send_only);
    let error = cnode(
        &mut system,
        &mut memory,
        CLIENT,
        CNodeCopy,
        [EP, 10, u64::MAX, 0],
    );
    assert_eq!(error, None);
    server_waits(&mut system, &mut memory, 12);
    offer(&system, &mut memory, CLIENT, NTFN);
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Call,
        &[10, MessageInfo::new(3, 1, 0).raw()],
        true,
    );
    assert_eq!(received(&system, SERVER).1, MessageInfo::new(3, 0, 0));
    assert!(system.lookup(SERVER, 12).is_err());
}

#[test]
fn an_offered_capability_lands_only_in_an_empty_slot_of_the_receivers_own_cnode() {
    let grant = Rights::WRITE.union(Rights::GRANT);
    let untouched = {
        let mut pools = pools(&[100, 50, 40]);
        let system = system(&mut pools);
        system.slots[..SLOTS as usize].to_vec()
    };
    // The sender names nothing it holds: an empty slot, or a slot past its CNode (in the pool,
    // OTHER's notification and endpoint follow CLIENT's slots), or the largest.
    for send in [0, 6, SLOTS as u64 + NTFN, SLOTS as u64 + EP, u64::MAX] {
        let (caps, cnode) = offered(grant, Syscall::Call, send, 12);
        assert_eq!((caps, &cnode), (0, &untouched), "offered slot {send:#x}");
    }
    // The receiver names no empty slot of its own: none (0), an occupied one, one past its
    // CNode (in the pool, CLIENT's empty slot 6), the largest.
    for receive in [0, EP, NTFN, SLOTS as u64 + 6, u64::MAX] {
        let (caps, cnode) = offered(grant, Syscall::Call, NTFN, receive);
        assert_eq!((caps, &cnode), (0, &untouched), "receive slot {receive:#x}");
    }
}

#[test]
fn a_reply_carries_a_capability_only_into_the_slot_its_caller_named() {
    for receive in [0, 12] {
        let mut pools = pools(&[100, 50, 40]);
        let mut memory = MockMemory::default();
        let mut system = system(&mut pools);
        server_waits(&mut system, &mut memory, 0);
        memory.0.insert(
            (system.tcb(CLIENT).ipc_buffer, IPC_BUFFER_RECEIVE_SLOT),
            receive,
        );
        syscall(
            &mut system,
            &mut memory,
            CLIENT,
            Syscall::Call,
            &[EP, MessageInfo::new(1, 0, 0).raw()],
            true,
        );
        // SERVER holds no GRANT on anything: a reply needs none (the caller's named slot is its
        // consent; `Rights::GRANT_REPLY` is not checked), and it offers its own notification.
        offer(&system, &mut memory, SERVER, NTFN);
        syscall(
            &mut system,
            &mut memory,
            SERVER,
            Syscall::ReplyRecv,
            &[EP, MessageInfo::new(0, 1, 0).raw(), 0, 0, 0, 0, REPLY_SLOT],
            true,
        );
        let (caps, arrived) = (
            received(&system, CLIENT).1.extra_caps(),
            system.lookup(CLIENT, 12),
        );
        if receive == 0 {
            assert_eq!(caps, 0);
            assert!(arrived.is_err(), "a caller that named no slot gets nothing");
        } else {
            assert_eq!(caps, 1);
            assert_eq!(
                arrived,
                Ok(Cap::Notification {
                    ntfn: 0,
                    badge: 1,
                    rights: Rights::READ
                }),
                "the replier's own rights, no more"
            );
        }
    }
}

#[test]
fn a_fault_message_carries_no_capability() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    system.tcb_mut(CLIENT).fault_handler = Some((0, 55));
    server_waits(&mut system, &mut memory, 12);
    offer(&system, &mut memory, CLIENT, NTFN);
    super::super::run_as(&mut system, CLIENT);
    // The faulting thread's registers say "one capability": they are not a message.
    system
        .tcb_mut(CLIENT)
        .context
        .set_x(1, MessageInfo::new(3, 1, 0).raw());
    let fault = FaultInfo {
        kind: FaultKind::DataAbort,
        pc: 0x20_0000,
        address: 0x4000_0000,
        syndrome: 0x9200_0007,
    };
    system.handle_fault(&mut memory, fault);
    system.choose_next();
    let (badge, info, _) = received(&system, SERVER);
    assert_eq!((badge, info.extra_caps()), (55, 0));
    assert!(system.lookup(SERVER, 12).is_err());
}

/// A step of the property below: CLIENT invokes its CNode.
#[derive(Clone, Copy, Debug)]
enum Step {
    Copy {
        from: u64,
        to: u64,
        rights: u64,
    },
    Mint {
        from: u64,
        to: u64,
        rights: u64,
        badge: u64,
    },
    Delete {
        slot: u64,
    },
}

fn slot() -> impl Strategy<Value = u64> {
    prop_oneof![8 => 0..SLOTS as u64, 1 => SLOTS as u64..3 * SLOTS as u64, 1 => Just(u64::MAX)]
}

fn step() -> impl Strategy<Value = Step> {
    let rights = prop_oneof![0..=0xFFu64, any::<u64>()];
    let badge = prop_oneof![Just(0u64), Just(2), Just(101), any::<u64>()];
    prop_oneof![
        3 => (slot(), slot(), rights.clone()).prop_map(|(from, to, rights)| Step::Copy { from, to, rights }),
        3 => (slot(), slot(), rights, badge)
            .prop_map(|(from, to, rights, badge)| Step::Mint { from, to, rights, badge }),
        1 => slot().prop_map(|slot| Step::Delete { slot }),
    ]
}

proptest! {
    /// Whatever CLIENT does with its CNode, each capability in it can do at most what the one
    /// it came from could: its endpoint capabilities send (and grant) with badge 101 and never
    /// receive, its notification capabilities signal with badge 2 and never wait, its only
    /// reply capability is its own in slot 1, its CNode and thread capabilities name what they
    /// named; and no slot outside its CNode changes.
    #[test]
    fn no_sequence_of_copies_mints_and_deletions_amplifies_a_capability(
        steps in prop::collection::vec(step(), 1..48)
    ) {
        let mut pools = pools(&[100, 50, 40]);
        let mut memory = MockMemory::default();
        let mut system = system(&mut pools);
        let others = |system: &System<'_>| {
            let mut slots = system.slots.to_vec();
            let base = usize::from(CLIENT) * SLOTS as usize;
            slots.drain(base..base + SLOTS as usize);
            slots
        };
        let before = others(&system);
        for step in steps {
            let (label, args) = match step {
                Step::Copy { from, to, rights } => (CNodeCopy, [from, to, rights, 0]),
                Step::Mint { from, to, rights, badge } => (CNodeMint, [from, to, rights, badge]),
                Step::Delete { slot } => (CNodeDelete, [slot, 0, 0, 0]),
            };
            invoke(&mut system, &mut memory, CLIENT, CNODE_SLOT, label, args);
            prop_assert_eq!(others(&system), before.clone(), "{:?} changed another CNode", step);
            for slot in 0..SLOTS as u64 {
                let Ok(cap) = system.lookup(CLIENT, slot) else { continue };
                let allowed = match cap {
                    Cap::Endpoint { ep: 0, badge: 101, rights, generation: 0 } => {
                        Rights::WRITE.union(Rights::GRANT).contains(rights)
                    }
                    Cap::Notification { ntfn: 0, badge: 2, rights } => {
                        Rights::WRITE.contains(rights)
                    }
                    Cap::Reply { reply } => reply == CLIENT && slot == REPLY_SLOT,
                    Cap::CNode { owner } => owner == CLIENT,
                    Cap::Tcb { tcb } => tcb == SERVER,
                    _ => false,
                };
                prop_assert!(allowed, "after {:?}: slot {} holds {:?}", step, slot, cap);
            }
        }
    }
}
