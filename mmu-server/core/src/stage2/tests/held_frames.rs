//! The mmu-server's ring of frame slots ([`HeldFrames`]) against the kernel itself: the same
//! invocations the server makes (CNodeDelete of the slot it takes, the frame arriving in it,
//! VSpaceMap, VSpaceUnmap) run through kernel-core's decode and perform, and after every step
//! the ring's view of each slot must be exactly the kernel's record of that capability. So the
//! server never deletes a capability whose mapping it relies on without knowing: a take that
//! says "silent" is answered with no unmap, and a retirement is answered with the unmap of
//! exactly the mapping it named.

use crate::stage2::{HeldFrames, Taken};
use abi::InvocationLabel;
use abi::vm::MapAttributes;
use kernel_core::cap::{Cap, FrameCap};
use kernel_core::endpoint::Reply;
use kernel_core::memory::VSpaceInfo;
use kernel_core::stage2::PageSize;
use kernel_core::system::{Effect, System};
use kernel_core::tcb::{SlotRange, Tcb};
use proptest::prelude::*;
use std::vec::Vec;

const RING: usize = 12;
const VSPACE_SLOT: u64 = 3;
const RANGE_SLOT: u64 = 4;
const FIRST: u64 = 5;
const PAGE: u64 = 4096;
const BLOCK: u64 = 2 << 20;
/// Guest RAM: 8 MiB at IPA 0x4000_0000, backed by physical 0x4000_0000 (region 0).
const GUEST: u64 = 0x4000_0000;
const RAM_PAGES: u32 = 2048;

struct Pools {
    tcbs: Vec<Tcb>,
    replies: Vec<Reply>,
    slots: Vec<Cap>,
    vspaces: Vec<VSpaceInfo>,
}

fn pools() -> Pools {
    let len = FIRST as u32 + RING as u32;
    let mut tcb = Tcb::new(100);
    tcb.cnode = SlotRange { base: 0, len };
    let mut slots = std::vec![Cap::Null; len as usize];
    slots[abi::CNODE_SLOT as usize] = Cap::CNode { owner: 0 };
    slots[VSPACE_SLOT as usize] = Cap::VSpace { vspace: 0 };
    slots[RANGE_SLOT as usize] = Cap::Frame(FrameCap::new(0, 0x4_0000, RAM_PAGES, false));
    Pools {
        tcbs: std::vec![tcb],
        replies: std::vec![Reply::default()],
        slots,
        vspaces: std::vec![VSpaceInfo { free_tables: 64 }],
    }
}

/// The mmu-server (thread 0) invokes its capability `cptr`: the effect, or the kernel's refusal.
fn invoke(
    system: &mut System<'_>,
    cptr: u64,
    label: InvocationLabel,
    args: [u64; 4],
) -> Result<Effect, abi::KernelError> {
    let cap = system.lookup(0, cptr)?;
    let invocation = kernel_core::invocation::decode(system, 0, cap, cptr, label as u64, args)?;
    Ok(system.perform(0, invocation))
}

/// What the kernel records for the capability in ring slot `index`.
fn kernel_record(system: &System<'_>, index: usize) -> Option<(u64, PageSize)> {
    match system.slots[FIRST as usize + index] {
        Cap::Frame(frame) => frame.mapping().map(|(_, page)| {
            let size = if frame.size() == BLOCK {
                PageSize::Size2M
            } else {
                PageSize::Size4K
            };
            (u64::from(page) * PAGE, size)
        }),
        _ => None,
    }
}

/// One thing the mmu-server does.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// A fault at RAM page `page`: take a slot, receive the frame (a 2 MiB one when `block`),
    /// map it; `refused` makes the map fail in decode (as a frame lent without the right would).
    Fault {
        page: u32,
        block: bool,
        refused: bool,
    },
    /// The backing lent nothing (Retry): the taken slot stays empty.
    NoFrame,
    /// One `VSpaceUnmap` of the 2 MiB block `block` (slot replacement or deletion).
    Unmap { block: u32 },
    /// The server restarts: its ring table is new, and it deletes every ring slot first.
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..RAM_PAGES, any::<bool>(), prop::bool::weighted(0.1))
            .prop_map(|(page, block, refused)| Step::Fault { page, block, refused }),
        1 => Just(Step::NoFrame),
        1 => (0..RAM_PAGES / 512).prop_map(|block| Step::Unmap { block }),
        1 => Just(Step::Restart),
    ]
}

/// Takes a slot the way the server does and checks the kernel agrees with what `take` said.
fn take(system: &mut System<'_>, held: &mut HeldFrames<RING>) -> Taken {
    let live = held.live();
    let taken = held.take();
    let cptr = FIRST + taken.index as u64;
    let deleted = invoke(
        system,
        abi::CNODE_SLOT,
        InvocationLabel::CNodeDelete,
        [cptr, 0, 0, 0],
    );
    let expected = match taken.retires {
        None => Effect::None,
        Some((ipa, size)) => {
            assert_eq!(
                live, RING,
                "a live mapping is retired only when every slot has one"
            );
            Effect::Unmap {
                vspace: 0,
                ipa,
                size: size.bytes(),
            }
        }
    };
    assert_eq!(deleted, Ok(expected), "take said {taken:?}");
    taken
}

fn run(steps: &[Step]) {
    let mut pools = pools();
    let mut system = System::new(
        &mut pools.tcbs,
        &mut [],
        &mut [],
        &mut pools.replies,
        &mut pools.slots,
        &mut [],
    );
    system.vspaces = &mut pools.vspaces;
    let mut held = HeldFrames::<RING>::new();
    for (number, step) in steps.iter().enumerate() {
        match *step {
            Step::Fault {
                page,
                block,
                refused,
            } => {
                let taken = take(&mut system, &mut held);
                let cptr = FIRST + taken.index as u64;
                let size = if block { BLOCK } else { PAGE };
                let offset = (u64::from(page) * PAGE) & !(size - 1);
                let carve = [offset, size, cptr, 0];
                let carved = invoke(&mut system, RANGE_SLOT, InvocationLabel::FrameCarve, carve);
                assert_eq!(carved, Ok(Effect::None));
                let ipa = GUEST + offset;
                // A refusal: an IPA the kernel does not take for this frame.
                let at = if refused { ipa + 1 } else { ipa };
                let args = [cptr, at, MapAttributes::WRITE.0, 0];
                match invoke(&mut system, VSPACE_SLOT, InvocationLabel::VSpaceMap, args) {
                    Ok(Effect::Map { .. }) => {
                        let size = if block {
                            PageSize::Size2M
                        } else {
                            PageSize::Size4K
                        };
                        held.mapped(taken.index, ipa, size);
                    }
                    Err(_) => held.released(taken.index),
                    Ok(other) => panic!("map answered {other:?}"),
                }
            }
            Step::NoFrame => {
                let taken = take(&mut system, &mut held);
                held.released(taken.index);
            }
            Step::Unmap { block } => {
                let at = GUEST + u64::from(block) * BLOCK;
                let args = [at, BLOCK, 0, 0];
                let unmapped = invoke(&mut system, VSPACE_SLOT, InvocationLabel::VSpaceUnmap, args);
                assert!(unmapped.is_ok());
                held.unmapped(at, BLOCK);
            }
            Step::Restart => {
                held = HeldFrames::new();
                for index in 0..RING as u64 {
                    let args = [FIRST + index, 0, 0, 0];
                    let deleted = invoke(
                        &mut system,
                        abi::CNODE_SLOT,
                        InvocationLabel::CNodeDelete,
                        args,
                    );
                    assert!(matches!(deleted, Ok(Effect::None | Effect::Unmap { .. })));
                }
                let left = system.slots.iter().filter(|cap| match cap {
                    Cap::Frame(frame) => frame.mapping().is_some(),
                    _ => false,
                });
                assert_eq!(
                    left.count(),
                    0,
                    "nothing from before the restart maps anything"
                );
            }
        }
        for index in 0..RING {
            assert_eq!(
                held.mapping(index),
                kernel_record(&system, index),
                "ring slot {index} after step {number} {step:?}"
            );
        }
    }
}

#[test]
fn silent_slots_are_reused_first_and_a_live_mapping_is_retired_only_when_all_are_live() {
    let mut held = HeldFrames::<4>::new();
    let taken: Vec<usize> = (0..4).map(|_| held.take().index).collect();
    assert_eq!(taken, [0, 1, 2, 3]);
    for (index, page) in [(0, 0), (1, 1), (2, 2), (3, 3)] {
        held.mapped(index, GUEST + page * PAGE, PageSize::Size4K);
    }
    assert_eq!(held.live(), 4);
    // Every slot is live: the one taken longest ago is retired, and said so.
    assert_eq!(
        held.take(),
        Taken {
            index: 0,
            retires: Some((GUEST, PageSize::Size4K))
        }
    );
    held.mapped(0, GUEST + 8 * PAGE, PageSize::Size4K);
    // A page mapped again through a fresh copy supersedes the old slot: that one is silent.
    let again = held.take();
    assert_eq!(again.retires, Some((GUEST + PAGE, PageSize::Size4K)));
    held.mapped(again.index, GUEST + 2 * PAGE, PageSize::Size4K);
    assert_eq!(
        held.mapping(2),
        None,
        "slot 2's page now belongs to slot {}",
        again.index
    );
    assert_eq!(
        held.take(),
        Taken {
            index: 2,
            retires: None
        }
    );
    // A block over pages supersedes every page under it; an unmap clears what it covers.
    held.mapped(2, GUEST, PageSize::Size2M);
    assert_eq!(held.live(), 1, "only the block is live");
    held.unmapped(GUEST, BLOCK);
    assert_eq!(held.live(), 0);
    held.mapped(3, GUEST + BLOCK, PageSize::Size4K);
    held.released(3);
    assert_eq!(held.mapping(3), None);
}

#[test]
fn the_ring_agrees_with_the_kernel_through_wraps_pages_over_blocks_and_a_restart() {
    // More faults than slots: the ring wraps, pages are mapped over blocks and back.
    let mut steps = Vec::new();
    for round in 0..3u32 {
        for page in 0..(RING as u32 + 4) {
            steps.push(Step::Fault {
                page: (page * 37 + round) % RAM_PAGES,
                block: page % 3 == 0,
                refused: page % 7 == 6,
            });
        }
        steps.push(Step::Unmap { block: round });
        steps.push(Step::NoFrame);
        if round == 1 {
            steps.push(Step::Restart);
        }
    }
    run(&steps);
}

proptest! {
    #[test]
    fn the_ring_agrees_with_the_kernel_over_random_server_runs(
        steps in prop::collection::vec(step(), 1..80)
    ) {
        run(&steps);
    }
}
