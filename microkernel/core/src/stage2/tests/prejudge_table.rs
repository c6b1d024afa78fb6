//! The prejudgement's action table, row by row, with the exact TLB maintenance each row needs, and
//! the same changes made through `map` over in-memory tables.

use super::*;
use crate::stage2::prejudge::Removed;
use std::vec;
use std::vec::Vec;

/// One row of the prejudgement's table: the existing and wanted descriptor at a level, the action,
/// and the exact TLB maintenance.
struct Row {
    name: &'static str,
    existing: u64,
    wanted: u64,
    level: Level,
    action: Action,
    tlb: Vec<TlbOp>,
}

#[test]
fn the_prejudgement_table() {
    const IPA: u64 = 0x4020_3000;
    let page = |pa, a| page_descriptor(pa, a);
    let block = |pa, a| block_descriptor(pa, Level::Two, a);
    let leaf_bbm = |level: Level| {
        vec![
            DsbIsh,
            by_ipa(IPA & !(level_bytes(level) - 1), level),
            DsbIsh,
            Vmalle1is,
            DsbIsh,
            DsbIshst,
        ]
    };
    let tighten = |level: Level| {
        vec![
            DsbIsh,
            by_ipa(IPA & !(level_bytes(level) - 1), level),
            DsbIsh,
            Vmalle1is,
            DsbIsh,
        ]
    };
    let rows = [
        Row {
            name: "install into an invalid entry",
            existing: 0,
            wanted: page(0x1000, RW_DATA),
            level: Level::Three,
            action: Action::Install,
            tlb: vec![DsbIshst],
        },
        Row {
            name: "install over an MMIO marker (invalid, software bits)",
            existing: 0x0780_0000_0000_0000,
            wanted: page(0x1000, RW_DATA),
            level: Level::Three,
            action: Action::Install,
            tlb: vec![DsbIshst],
        },
        Row {
            name: "same page again",
            existing: page(0x1000, RW_DATA),
            wanted: page(0x1000, RW_DATA),
            level: Level::Three,
            action: Action::NoOp,
            tlb: vec![],
        },
        Row {
            name: "relax: read-only to writable",
            existing: page(0x1000, RO_DATA),
            wanted: page(0x1000, RW_DATA),
            level: Level::Three,
            action: Action::UpdateInPlace { tightened: false },
            tlb: vec![DsbIshst],
        },
        Row {
            name: "relax: gain execute",
            existing: page(0x1000, RW_DATA),
            wanted: page(0x1000, RWX),
            level: Level::Three,
            action: Action::UpdateInPlace { tightened: false },
            tlb: vec![DsbIshst],
        },
        Row {
            name: "tighten: writable to read-only",
            existing: page(0x1000, RW_DATA),
            wanted: page(0x1000, RO_DATA),
            level: Level::Three,
            action: Action::UpdateInPlace { tightened: true },
            tlb: tighten(Level::Three),
        },
        Row {
            name: "tighten: lose execute",
            existing: page(0x1000, RWX),
            wanted: page(0x1000, RW_DATA),
            level: Level::Three,
            action: Action::UpdateInPlace { tightened: true },
            tlb: tighten(Level::Three),
        },
        Row {
            name: "mixed: gain write, lose execute, counts as tightening",
            existing: page(0x1000, CODE),
            wanted: page(0x1000, RW_DATA),
            level: Level::Three,
            action: Action::UpdateInPlace { tightened: true },
            tlb: tighten(Level::Three),
        },
        Row {
            name: "remap to a different frame",
            existing: page(0x1000, RW_DATA),
            wanted: page(0x2000, RW_DATA),
            level: Level::Three,
            action: Action::BreakBeforeMake {
                removes: Removed::Leaf,
            },
            tlb: leaf_bbm(Level::Three),
        },
        Row {
            name: "memory type change",
            existing: page(0x1000, RW_DATA),
            wanted: page(
                0x1000,
                Attributes {
                    kind: MemoryKind::Device,
                    ..RW_DATA
                },
            ),
            level: Level::Three,
            action: Action::BreakBeforeMake {
                removes: Removed::Leaf,
            },
            tlb: leaf_bbm(Level::Three),
        },
        Row {
            name: "same block again",
            existing: block(0x4020_0000, RW_DATA),
            wanted: block(0x4020_0000, RW_DATA),
            level: Level::Two,
            action: Action::NoOp,
            tlb: vec![],
        },
        Row {
            name: "block: tighten in place",
            existing: block(0x4020_0000, RW_DATA),
            wanted: block(0x4020_0000, RO_DATA),
            level: Level::Two,
            action: Action::UpdateInPlace { tightened: true },
            tlb: tighten(Level::Two),
        },
        Row {
            name: "block: different frame",
            existing: block(0x4020_0000, RW_DATA),
            wanted: block(0x4060_0000, RW_DATA),
            level: Level::Two,
            action: Action::BreakBeforeMake {
                removes: Removed::Leaf,
            },
            tlb: leaf_bbm(Level::Two),
        },
        Row {
            name: "a table (for a page) replaces a block",
            existing: block(0x4020_0000, RW_DATA),
            wanted: 0x9000_0003,
            level: Level::Two,
            action: Action::BreakBeforeMake {
                removes: Removed::Leaf,
            },
            tlb: leaf_bbm(Level::Two),
        },
        Row {
            name: "a block replaces a table",
            existing: 0x9000_0003,
            wanted: block(0x4020_0000, RW_DATA),
            level: Level::Two,
            action: Action::BreakBeforeMake {
                removes: Removed::Table,
            },
            tlb: vec![DsbIsh, Vmalls12e1is, DsbIsh, DsbIshst],
        },
    ];
    for row in rows {
        assert_eq!(
            prejudge(row.existing, row.wanted, row.level),
            row.action,
            "{}",
            row.name
        );
        let plan = Plan::for_action(
            row.action,
            0x9100_0000,
            row.level.index(IPA),
            row.wanted,
            IPA,
            row.level,
        );
        assert_eq!(plan.tlb_ops().collect::<Vec<_>>(), row.tlb, "{}", row.name);
    }
}

fn level_bytes(level: Level) -> u64 {
    level.entry_bytes()
}

#[test]
fn break_before_make_writes_invalid_first_and_the_new_descriptor_last() {
    let wanted = page_descriptor(0x2000, RW_DATA);
    let action = Action::BreakBeforeMake {
        removes: Removed::Leaf,
    };
    let plan = Plan::for_action(action, 0x9100_0000, 7, wanted, 0x7000, Level::Three);
    let write = |value| Step::Write {
        table: 0x9100_0000,
        index: 7,
        value,
    };
    assert_eq!(
        plan.steps(),
        &[
            write(0),
            Step::Tlb(DsbIsh),
            Step::Tlb(by_ipa(0x7000, Level::Three)),
            Step::Tlb(DsbIsh),
            Step::Tlb(Vmalle1is),
            Step::Tlb(DsbIsh),
            write(wanted),
            Step::Tlb(DsbIshst),
        ]
    );
    let removal = Plan::for_removal(Removed::Leaf, 0x9100_0000, 7, 0x7000, Level::Three);
    assert_eq!(removal.steps(), &plan.steps()[..6]);
}

#[test]
fn map_plans_by_the_table_and_changes_nothing_before_the_plan_runs() {
    let (mut tables, root) = tables();
    let ipa = 0x4020_3000;
    let (first, ops) = map_now(&mut tables, root, ipa, 0x1000, PageSize::Size4K, RO_DATA);
    assert_eq!((first.action, ops), (Action::Install, vec![DsbIshst]));
    assert_eq!(tables.next, 3, "root + level-2 + level-3 tables");
    // Same again: nothing at all.
    let (again, ops) = map_now(&mut tables, root, ipa, 0x1000, PageSize::Size4K, RO_DATA);
    assert_eq!(
        (again.action, again.plan.is_empty(), ops),
        (Action::NoOp, true, vec![])
    );
    // Relax in place.
    let (relax, ops) = map_now(&mut tables, root, ipa, 0x1000, PageSize::Size4K, RW_DATA);
    assert_eq!(
        (relax.action, ops),
        (Action::UpdateInPlace { tightened: false }, vec![DsbIshst])
    );
    assert_eq!(translate(&tables, root, ipa + 8), Some((0x1008, RW_DATA)));
    // Tighten in place: invalidate after.
    let (tight, ops) = map_now(&mut tables, root, ipa, 0x1000, PageSize::Size4K, RO_DATA);
    assert_eq!(tight.action, Action::UpdateInPlace { tightened: true });
    assert_eq!(
        ops,
        vec![DsbIsh, by_ipa(ipa, Level::Three), DsbIsh, Vmalle1is, DsbIsh]
    );
    // A different frame: planned, but the old translation stands until the plan runs.
    let remap = map(&mut tables, root, ipa, 0x5000, PageSize::Size4K, RO_DATA).unwrap();
    assert_eq!(
        remap.action,
        Action::BreakBeforeMake {
            removes: Removed::Leaf
        }
    );
    assert_eq!(translate(&tables, root, ipa), Some((0x1000, RO_DATA)));
    let ops = run(&mut tables, &remap.plan);
    assert_eq!(
        ops,
        vec![
            DsbIsh,
            by_ipa(ipa, Level::Three),
            DsbIsh,
            Vmalle1is,
            DsbIsh,
            DsbIshst
        ]
    );
    assert_eq!(translate(&tables, root, ipa), Some((0x5000, RO_DATA)));
}
