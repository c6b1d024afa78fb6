//! The isolation property over random sequences of carve, copy (with rights), map, unmap and
//! delete in two VSpaces, run on in-memory stage-2 tables: every translation in the tables is
//! owned by a capability that still exists (some recorded mapping overlaps its entry), every
//! record claims only its own frame's memory, and deleting every capability (or revoking the
//! range) leaves both VSpaces empty. So no mapping outlives every capability that could revoke
//! it, whatever the order of operations.

use super::*;
use abi::InvocationLabel::{FrameRevoke, VSpaceUnmap};
use abi::Rights;
use proptest::prelude::*;

/// The slots the random steps use (SERVER's free ones).
const SLOTS_USED: [u64; 6] = [6, 10, 11, 12, 13, 14];
/// The IPA window the steps map in: two blocks of guest RAM, in each VSpace.
const WINDOW: u64 = 2 * BLOCK;

#[derive(Clone, Copy, Debug)]
enum Op {
    Carve {
        slot: usize,
        block: bool,
        at: u64,
    },
    Copy {
        from: usize,
        to: usize,
        rights: u8,
    },
    /// `identity`: at the IPA mirroring the frame's physical address (so a page can land
    /// inside a block that already maps it, the case where the block stays).
    Map {
        slot: usize,
        vspace: u16,
        at: u64,
        attributes: u64,
        identity: bool,
    },
    Unmap {
        vspace: u16,
        at: u64,
        block: bool,
    },
    Delete {
        slot: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS_USED.len();
    prop_oneof![
        3 => (slot.clone(), any::<bool>(), 0..(WINDOW / PAGE))
            .prop_map(|(slot, block, at)| Op::Carve { slot, block, at }),
        1 => (slot.clone(), slot.clone(), 0..32u8)
            .prop_map(|(from, to, rights)| Op::Copy { from, to, rights }),
        4 => (slot.clone(), 0..2u16, 0..(WINDOW / PAGE), 0..4u64, any::<bool>())
            .prop_map(|(slot, vspace, at, attributes, identity)| Op::Map {
                slot, vspace, at, attributes, identity
            }),
        1 => (0..2u16, 0..(WINDOW / PAGE), any::<bool>())
            .prop_map(|(vspace, at, block)| Op::Unmap { vspace, at, block }),
        2 => slot.prop_map(|slot| Op::Delete { slot }),
    ]
}

fn step(f: &mut Fixture, system: &mut System<'_>, op: Op) {
    let size_of = |block: bool| if block { BLOCK } else { PAGE };
    // Refusals are part of the game: they must change nothing, which the checks see.
    let _ = match op {
        Op::Carve { slot, block, at } => {
            let size = size_of(block);
            let offset = (at * PAGE) & !(size - 1);
            let args = [offset, size, SLOTS_USED[slot], 0];
            f.invoke(system, RANGE, FrameCarve, args)
        }
        Op::Copy { from, to, rights } => {
            let rights = Rights::from_bits_truncate(rights);
            f.copy(system, SLOTS_USED[from], SLOTS_USED[to], rights)
        }
        Op::Map {
            slot,
            vspace,
            at,
            attributes,
            identity,
        } => {
            let vspace_slot = if vspace == 0 { VSPACE } else { OTHER_VSPACE };
            let (size, base) = match system.lookup(SERVER, SLOTS_USED[slot]) {
                Ok(Cap::Frame(frame)) => (frame.size(), frame.base()),
                _ => (PAGE, RAM),
            };
            let ipa = if identity {
                GUEST + (base - RAM)
            } else {
                (GUEST + at * PAGE) & !(size - 1)
            };
            f.map(
                system,
                vspace_slot,
                SLOTS_USED[slot],
                ipa,
                MapAttributes(attributes),
            )
        }
        Op::Unmap { vspace, at, block } => {
            let vspace_slot = if vspace == 0 { VSPACE } else { OTHER_VSPACE };
            let size = size_of(block);
            let ipa = (GUEST + at * PAGE) & !(size - 1);
            f.invoke(system, vspace_slot, VSpaceUnmap, [ipa, size, 0, 0])
        }
        Op::Delete { slot } => Ok(f.delete(system, SLOTS_USED[slot])),
    };
}

/// Every translation in the window is owned by a live record; every record claims only its own
/// frame's memory.
fn check(f: &Fixture, system: &System<'_>) -> Result<(), TestCaseError> {
    let records: Vec<(u16, u64, u64, u64)> = system
        .slots
        .iter()
        .filter_map(|cap| match cap {
            Cap::Frame(frame) => frame
                .mapping()
                .map(|(v, page)| (v, u64::from(page) * PAGE, frame.size(), frame.base())),
            _ => None,
        })
        .collect();
    for vspace in 0..2u16 {
        for page in 0..(WINDOW / PAGE) {
            let ipa = GUEST + page * PAGE;
            let Some(pa) = f.tables.translate(vspace, ipa) else {
                continue;
            };
            // The leaf holding `ipa`: a block if the translation runs on across the 2 MiB.
            let block = ipa & !(BLOCK - 1);
            let leaf_is_block = f.tables.translate(vspace, block) == Some(pa - (ipa - block))
                && f.tables.translate(vspace, block + BLOCK - PAGE)
                    == Some(pa - (ipa - block) + BLOCK - PAGE);
            let (leaf, leaf_size) = if leaf_is_block {
                (block, BLOCK)
            } else {
                (ipa, PAGE)
            };
            let owned = records
                .iter()
                .any(|&(v, at, size, _)| v == vspace && at < leaf + leaf_size && at + size > leaf);
            prop_assert!(
                owned,
                "vspace {vspace} {ipa:#x} -> {pa:#x} has no capability"
            );
        }
    }
    for &(vspace, at, size, base) in &records {
        for offset in (0..size).step_by(PAGE as usize) {
            if let Some(pa) = f.tables.translate(vspace, at + offset) {
                prop_assert_eq!(pa, base + offset, "a record claims another frame's memory");
            }
        }
    }
    Ok(())
}

fn empty(f: &Fixture) -> bool {
    (0..2u16).all(|vspace| {
        (0..(WINDOW / PAGE)).all(|page| f.tables.translate(vspace, GUEST + page * PAGE).is_none())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn no_mapping_outlives_every_capability_that_could_revoke_it(
        ops in prop::collection::vec(op(), 1..40),
        revoke in any::<bool>(),
    ) {
        let mut pools = pools(&[100, 50, 40]);
        let mut vspaces = vspaces();
        let mut system = system(&mut pools);
        system.vspaces = &mut vspaces;
        let mut f = fixture(&mut system);
        for op in ops {
            step(&mut f, &mut system, op);
            check(&f, &system)?;
        }
        if revoke {
            // The owner takes everything back: the kernel unmaps what each revoked frame maps.
            let Ok(Effect::Revoke { region, first_page, pages }) =
                f.invoke(&mut system, RANGE, FrameRevoke, [0; 4])
            else {
                panic!("revoke has an effect");
            };
            let mut unmaps = Vec::new();
            system.revoke_frames(region, first_page, pages, |v, ipa, size| {
                unmaps.push((v, ipa, size))
            });
            for (vspace, ipa, size) in unmaps {
                f.tables.unmap(vspace, ipa, size);
            }
        } else {
            for slot in SLOTS_USED {
                f.delete(&mut system, slot);
                check(&f, &system)?;
            }
        }
        prop_assert!(empty(&f), "a mapping outlived every capability");
        prop_assert_eq!(recorded_mappings(&system), []);
    }
}
