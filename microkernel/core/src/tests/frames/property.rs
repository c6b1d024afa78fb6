//! The isolation property over random sequences of carve, copy (with rights), map, unmap and
//! delete in two VSpaces, run on in-memory stage-2 tables. Records go stale freely (no map or
//! unmap visits other capabilities), yet:
//!
//! * every leaf in the tables has a capability that still exists and whose record matches it
//!   exactly (VSpace, IPA, size, physical address), so its deletion would remove it;
//! * a deletion removes at most the deleted capability's own leaf, and only while it maps that
//!   capability's frame: never a translation of another frame, never anything else;
//! * deleting every capability (or revoking the range) leaves both VSpaces empty.
//!
//! So no mapping outlives every capability that could revoke it, whatever the order of
//! operations, and a stale record never takes away memory it does not name.

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
    /// At the place `over`'s capability records (another frame's leaf there, the record of
    /// the one it replaces stale).
    MapOver {
        slot: usize,
        over: usize,
        attributes: u64,
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

/// A page of the window, mostly one of a few, so that different frames often meet at the same
/// place (a stale record with another frame's leaf where it points).
fn page() -> impl Strategy<Value = u64> {
    const HALF: u64 = WINDOW / PAGE / 2;
    prop_oneof![
        1 => 0..(WINDOW / PAGE),
        3 => prop::sample::select(&[0, 1, HALF, HALF + 1][..]),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS_USED.len();
    prop_oneof![
        3 => (slot.clone(), any::<bool>(), page())
            .prop_map(|(slot, block, at)| Op::Carve { slot, block, at }),
        1 => (slot.clone(), slot.clone(), 0..32u8)
            .prop_map(|(from, to, rights)| Op::Copy { from, to, rights }),
        4 => (slot.clone(), 0..2u16, page(), 0..4u64, prop::bool::weighted(0.25))
            .prop_map(|(slot, vspace, at, attributes, identity)| Op::Map {
                slot, vspace, at, attributes, identity
            }),
        2 => (slot.clone(), slot.clone(), 0..4u64)
            .prop_map(|(slot, over, attributes)| Op::MapOver { slot, over, attributes }),
        1 => (0..2u16, page(), any::<bool>())
            .prop_map(|(vspace, at, block)| Op::Unmap { vspace, at, block }),
        2 => slot.prop_map(|slot| Op::Delete { slot }),
    ]
}

fn step(f: &mut Fixture, system: &mut System<'_>, op: Op) -> Result<(), TestCaseError> {
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
        Op::MapOver {
            slot,
            over,
            attributes,
        } => {
            let frame = |slot: usize| match system.lookup(SERVER, SLOTS_USED[slot]) {
                Ok(Cap::Frame(frame)) => Some(frame),
                _ => None,
            };
            let (Some(frame), Some((vspace, page))) =
                (frame(slot), frame(over).and_then(|over| over.mapping()))
            else {
                return Ok(());
            };
            let vspace_slot = if vspace == 0 { VSPACE } else { OTHER_VSPACE };
            let ipa = (u64::from(page) * PAGE) & !(frame.size() - 1);
            let args = [SLOTS_USED[slot], ipa, attributes, 0];
            f.invoke(system, vspace_slot, VSpaceMap, args)
        }
        Op::Unmap { vspace, at, block } => {
            let vspace_slot = if vspace == 0 { VSPACE } else { OTHER_VSPACE };
            let size = size_of(block);
            let ipa = (GUEST + at * PAGE) & !(size - 1);
            f.invoke(system, vspace_slot, VSpaceUnmap, [ipa, size, 0, 0])
        }
        Op::Delete { slot } => {
            let deleted = match system.lookup(SERVER, SLOTS_USED[slot]) {
                Ok(Cap::Frame(frame)) => Some(frame),
                _ => None,
            };
            let before = translations(f);
            let effect = f.delete(system, SLOTS_USED[slot]);
            let deleted: Vec<_> = deleted.into_iter().collect();
            removed_only_own_leaves(&before, &translations(f), &deleted)?;
            Ok(effect)
        }
    };
    Ok(())
}

/// Every page of the window in both VSpaces: (VSpace, IPA, what it translates to).
fn translations(f: &Fixture) -> Vec<(u16, u64, Option<u64>)> {
    let mut all = Vec::new();
    for vspace in 0..2u16 {
        for page in 0..(WINDOW / PAGE) {
            let ipa = GUEST + page * PAGE;
            all.push((vspace, ipa, f.tables.translate(vspace, ipa)));
        }
    }
    all
}

/// Between `before` and `after`, translations only went away, and each that went was part of
/// the recorded leaf of one of `removed` and mapped that capability's own frame there.
fn removed_only_own_leaves(
    before: &[(u16, u64, Option<u64>)],
    after: &[(u16, u64, Option<u64>)],
    removed: &[crate::cap::FrameCap],
) -> Result<(), TestCaseError> {
    for (&(vspace, ipa, was), &(_, _, is)) in before.iter().zip(after) {
        if was == is {
            continue;
        }
        prop_assert_eq!(
            is,
            None,
            "vspace {} {:#x} changed, not removed",
            vspace,
            ipa
        );
        let own = removed.iter().any(|frame| {
            frame.mapping().is_some_and(|(v, page)| {
                let at = u64::from(page) * PAGE;
                v == vspace
                    && at <= ipa
                    && ipa < at + frame.size()
                    && was == Some(frame.base() + (ipa - at))
            })
        });
        prop_assert!(
            own,
            "vspace {} {:#x} -> {:?} went, but no removed capability names that frame there",
            vspace,
            ipa,
            was
        );
    }
    Ok(())
}

/// Every leaf in the window has a live capability whose record matches it exactly.
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
            let Some(leaf) = f.tables.leaf(vspace, GUEST + page * PAGE) else {
                continue;
            };
            let owned = records
                .iter()
                .any(|&(v, at, size, base)| v == vspace && (at, size, base) == leaf);
            prop_assert!(
                owned,
                "vspace {} leaf {:x?} (IPA, size, PA) has no capability whose record is it",
                vspace,
                leaf
            );
        }
    }
    Ok(())
}

fn empty(f: &Fixture) -> bool {
    translations(f).iter().all(|&(_, _, pa)| pa.is_none())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

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
            step(&mut f, &mut system, op)?;
            check(&f, &system)?;
        }
        if revoke {
            // The owner takes everything back: the kernel unmaps each revoked frame's recorded
            // leaf if it still maps that frame.
            let Ok(Effect::Revoke { region, first_page, pages }) =
                f.invoke(&mut system, RANGE, FrameRevoke, [0; 4])
            else {
                panic!("revoke has an effect");
            };
            let revoked: Vec<crate::cap::FrameCap> = SLOTS_USED
                .iter()
                .filter_map(|&slot| match system.lookup(SERVER, slot) {
                    Ok(Cap::Frame(frame)) => Some(frame),
                    _ => None,
                })
                .collect();
            let before = translations(&f);
            let mut unmaps = Vec::new();
            system.revoke_frames(region, first_page, pages, |v, ipa, size, pa| {
                unmaps.push((v, ipa, size, pa))
            });
            for (vspace, ipa, size, pa) in unmaps {
                f.tables.unmap_frame(vspace, ipa, size, pa);
            }
            removed_only_own_leaves(&before, &translations(&f), &revoked)?;
        } else {
            for slot in 0..SLOTS_USED.len() {
                step(&mut f, &mut system, Op::Delete { slot })?;
                check(&f, &system)?;
            }
        }
        prop_assert!(empty(&f), "a mapping outlived every capability");
        prop_assert_eq!(recorded_mappings(&system), []);
    }
}
