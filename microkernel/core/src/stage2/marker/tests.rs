//! Host tests of MMIO markers in stage-2 tables: where a walk stops, installing only over an
//! empty entry or an old marker, and zapping in bounded steps.

use super::*;
use crate::mmio::encode;
use crate::stage2::descriptor::{PageSize, block_descriptor};
use crate::stage2::prejudge::{Step, TlbOp};
use crate::stage2::{Attributes, MemoryKind, apply, map, page_descriptor};
use std::collections::BTreeMap;

#[derive(Default)]
struct Tables {
    entries: BTreeMap<(u64, usize), u64>,
    next: u64,
    limit: u64,
}

impl TableMemory for Tables {
    fn read(&self, table: u64, index: usize) -> u64 {
        self.entries.get(&(table, index)).copied().unwrap_or(0)
    }
    fn write(&mut self, table: u64, index: usize, value: u64) {
        self.entries.insert((table, index), value);
    }
    fn allocate_table(&mut self) -> Option<u64> {
        (self.next < self.limit).then(|| {
            self.next += 1;
            0x8000_0000 + self.next * PAGE_SIZE
        })
    }
}

const RAM: Attributes = Attributes {
    writable: true,
    executable: true,
    kind: MemoryKind::Normal,
};

fn tables(limit: u64) -> (Tables, u64) {
    let mut tables = Tables {
        limit: limit + 1,
        ..Default::default()
    };
    let root = tables.allocate_table().unwrap();
    (tables, root)
}

fn install(tables: &mut Tables, root: u64, ipa: u64, marker: u64) -> MarkerAction {
    let outcome = install_marker(tables, root, ipa, marker).unwrap();
    apply(&outcome.plan, tables, |_| {});
    outcome.action
}

fn map_page(tables: &mut Tables, root: u64, ipa: u64, pa: u64) {
    let outcome = map(tables, root, ipa, pa, PageSize::Size4K, RAM).unwrap();
    apply(&outcome.plan, tables, |_| {});
}

#[test]
fn the_walk_stops_at_the_first_entry_that_is_not_a_table() {
    let (mut tables, root) = tables(8);
    assert_eq!(descriptor_at(&tables, root, 0x0900_0000), (Level::One, 0));
    map_page(&mut tables, root, 0x4000_0000, 0x4000_0000);
    assert_eq!(
        descriptor_at(&tables, root, 0x4000_0000),
        (Level::Three, page_descriptor(0x4000_0000, RAM))
    );
    assert_eq!(descriptor_at(&tables, root, 0x4000_1000), (Level::Three, 0));
    assert_eq!(descriptor_at(&tables, root, 0x4020_0000), (Level::Two, 0));
    let block = map(
        &mut tables,
        root,
        0x4040_0000,
        0x5000_0000,
        PageSize::Size2M,
        RAM,
    )
    .unwrap();
    apply(&block.plan, &mut tables, |_| {});
    assert_eq!(
        descriptor_at(&tables, root, 0x4041_2345),
        (Level::Two, block_descriptor(0x5000_0000, Level::Two, RAM))
    );
    assert_eq!(
        descriptor_at(&tables, root, IPA_LIMIT),
        (Level::One, 0),
        "beyond the IPA space: never a marker, never an alias of entry 0"
    );
    tables.write(root, 0, 0xFFFF_FFFF_FFFF_FFFF);
    assert_eq!(descriptor_at(&tables, root, IPA_LIMIT), (Level::One, 0));
}

#[test]
fn a_marker_goes_into_an_empty_entry_with_its_tables_and_a_barrier() {
    let (mut tables, root) = tables(8);
    let marker = encode(2, 7);
    let outcome = install_marker(&mut tables, root, 0x0900_0000, marker).unwrap();
    assert_eq!(outcome.action, MarkerAction::Installed);
    assert_eq!(tables.next, 3, "root, level 2, level 3");
    let steps = outcome.plan.steps();
    assert_eq!(steps.len(), 2);
    assert!(matches!(steps[0], Step::Write { value, index: 0, .. } if value == marker));
    assert_eq!(steps[1], Step::Tlb(TlbOp::DsbIshst));
    assert_eq!(descriptor_at(&tables, root, 0x0900_0000), (Level::Three, 0));
    apply(&outcome.plan, &mut tables, |_| {});
    assert_eq!(
        descriptor_at(&tables, root, 0x0900_0000),
        (Level::Three, marker)
    );
    assert_eq!(
        descriptor_at(&tables, root, 0x0900_1000),
        (Level::Three, 0),
        "one page only"
    );

    let newer = encode(2, 8);
    assert_eq!(
        install(&mut tables, root, 0x0900_0000, newer),
        MarkerAction::Replaced
    );
    assert_eq!(
        descriptor_at(&tables, root, 0x0900_0000),
        (Level::Three, newer)
    );
    assert_eq!(tables.next, 3, "no new table");
}

#[test]
fn a_marker_never_replaces_a_mapping() {
    let (mut tables, root) = tables(8);
    map_page(&mut tables, root, 0x4000_0000, 0x4100_0000);
    let outcome = install_marker(&mut tables, root, 0x4000_0000, encode(0, 0)).unwrap();
    assert_eq!(outcome.action, MarkerAction::Occupied);
    assert!(outcome.plan.is_empty());
    let block = map(
        &mut tables,
        root,
        0x4040_0000,
        0x5000_0000,
        PageSize::Size2M,
        RAM,
    )
    .unwrap();
    apply(&block.plan, &mut tables, |_| {});
    let before = tables.next;
    let outcome = install_marker(&mut tables, root, 0x4041_0000, encode(0, 0)).unwrap();
    assert_eq!(outcome.action, MarkerAction::Block);
    assert!(outcome.plan.is_empty());
    assert_eq!(tables.next, before, "no table allocated under a block");
    // An invalid entry that is neither empty nor a marker is left alone too.
    let l3 = match descriptor_at(&tables, root, 0x4000_0000) {
        (Level::Three, _) => {
            let l1 = tables.read(root, Level::One.index(0x4000_0000)) & 0x0000_FFFF_FFFF_F000;
            tables.read(l1, Level::Two.index(0x4000_0000)) & 0x0000_FFFF_FFFF_F000
        }
        other => panic!("{other:?}"),
    };
    tables.write(l3, 5, 0b10);
    let outcome = install_marker(&mut tables, root, 0x4000_5000, encode(0, 0)).unwrap();
    assert_eq!(outcome.action, MarkerAction::Occupied);
}

#[test]
fn a_mapping_replaces_a_marker_as_it_would_an_empty_entry() {
    let (mut tables, root) = tables(8);
    install(&mut tables, root, 0x4000_0000, encode(1, 1));
    let outcome = map(
        &mut tables,
        root,
        0x4000_0000,
        0x4100_0000,
        PageSize::Size4K,
        RAM,
    )
    .unwrap();
    assert_eq!(outcome.action, crate::stage2::Action::Install);
    apply(&outcome.plan, &mut tables, |_| {});
    assert_eq!(
        descriptor_at(&tables, root, 0x4000_0000),
        (Level::Three, page_descriptor(0x4100_0000, RAM))
    );
}

#[test]
fn bad_requests_are_refused_and_a_lack_of_tables_is_reported() {
    let (mut tables, root) = tables(8);
    for (ipa, marker) in [
        (0x0900_0010, encode(0, 0)),
        (IPA_LIMIT, encode(0, 0)),
        (0x0900_0000, 0),
        (0x0900_0000, page_descriptor(0x0900_0000, RAM)),
    ] {
        assert_eq!(
            install_marker(&mut tables, root, ipa, marker),
            Err(MapError::BadAddress),
            "{ipa:#x} {marker:#x}"
        );
    }
    assert_eq!(tables.next, 1, "nothing allocated");
    let (mut starved, root) = self::tables(1);
    assert_eq!(
        install_marker(&mut starved, root, 0x0900_0000, encode(0, 0)),
        Err(MapError::OutOfTables)
    );
}

/// A budget far above the entries of [`populated`]'s tables (so one call does it all), yet
/// finite: a broken walk ends instead of hanging.
const PLENTY: u64 = 1 << 20;

/// Markers in several level-2 ranges and three level-1 ranges, and RAM pages between them.
fn populated() -> (Tables, u64, std::vec::Vec<u64>, std::vec::Vec<u64>) {
    let (mut tables, root) = tables(32);
    let markers = std::vec![
        0,
        0x0900_0000,
        0x0900_1000,
        0x0900_2000,
        0x0A00_0000,
        0x0A00_0FFF & !0xFFF,
        0x0A1F_F000,
        // The first page after a level-3 table swept to its end.
        0x0A20_0000,
        0x1_0000_0000,
        0x7F_FFFF_F000,
    ];
    let pages = std::vec![0x0900_3000, 0x0A00_1000, 0x4000_0000, 0x1_0000_1000];
    for (index, ipa) in markers.iter().enumerate() {
        let action = install(&mut tables, root, *ipa, encode(index as u8, 5));
        assert!(matches!(
            action,
            MarkerAction::Installed | MarkerAction::Replaced
        ));
    }
    for ipa in &pages {
        map_page(&mut tables, root, *ipa, *ipa);
    }
    (tables, root, markers, pages)
}

#[test]
fn a_zap_clears_every_marker_and_nothing_else() {
    let (mut tables, root, markers, pages) = populated();
    let outcome = zap_markers(&mut tables, root, 0, PLENTY);
    assert_eq!(outcome.next, IPA_LIMIT);
    assert_eq!(
        outcome.zapped,
        markers.len() as u64 - 1,
        "two ipas share a page"
    );
    for ipa in markers {
        assert_eq!(
            descriptor_at(&tables, root, ipa),
            (Level::Three, 0),
            "{ipa:#x}"
        );
    }
    for ipa in pages {
        assert_eq!(
            descriptor_at(&tables, root, ipa),
            (Level::Three, page_descriptor(ipa, RAM)),
            "{ipa:#x}"
        );
    }
    assert_eq!(zap_markers(&mut tables, root, 0, PLENTY).zapped, 0);
}

#[test]
fn a_bounded_zap_reads_at_most_its_budget_and_always_makes_progress() {
    for budget in [0, 1, 2, 3, 7, 512, 600, ZAP_BUDGET] {
        let (mut tables, root, markers, pages) = populated();
        let mut from = 0;
        let mut zapped = 0;
        let mut calls = 0;
        while from < IPA_LIMIT {
            let outcome = zap_markers(&mut tables, root, from, budget);
            assert!(outcome.next > from, "budget {budget}: stuck at {from:#x}");
            from = outcome.next;
            zapped += outcome.zapped;
            calls += 1;
            assert!(calls < 100_000, "budget {budget}: no end");
        }
        assert_eq!(zapped, markers.len() as u64 - 1, "budget {budget}");
        for ipa in &pages {
            assert_ne!(descriptor_at(&tables, root, *ipa).1, 0);
        }
    }
}

/// The walk down to a level-3 table reads two entries and the first level-3 entry is always
/// done, so a budget below three still reads three.
#[test]
fn a_zap_reads_no_more_entries_than_its_budget() {
    /// Counts reads through a shared cell.
    struct Reads<'a>(&'a Tables, &'a core::cell::Cell<u64>);
    impl TableMemory for Reads<'_> {
        fn read(&self, table: u64, index: usize) -> u64 {
            self.1.set(self.1.get() + 1);
            self.0.read(table, index)
        }
        fn write(&mut self, _: u64, _: usize, _: u64) {}
        fn allocate_table(&mut self) -> Option<u64> {
            None
        }
    }
    let (tables, root, _, _) = populated();
    for budget in [0, 1, 2, 3, 10, 100, 513, ZAP_BUDGET] {
        let reads = core::cell::Cell::new(0);
        let (mut from, mut calls) = (0, 0);
        while from < IPA_LIMIT {
            reads.set(0);
            let next = zap_markers(&mut Reads(&tables, &reads), root, from, budget).next;
            assert!(next > from, "budget {budget}: stuck at {from:#x}");
            from = next;
            calls += 1;
            assert!(calls < 100_000, "budget {budget}: no end");
            let most = budget.max(3);
            assert!(
                reads.get() <= most,
                "budget {budget}: {} reads",
                reads.get()
            );
        }
    }
}

#[test]
fn a_zap_resumed_from_the_middle_leaves_what_lies_before() {
    let (mut tables, root, _, _) = populated();
    let outcome = zap_markers(&mut tables, root, 0x0A00_0000, PLENTY);
    assert_eq!(outcome.zapped, 5);
    assert_eq!(outcome.next, IPA_LIMIT);
    for ipa in [0, 0x0900_2000] {
        let (_, descriptor) = descriptor_at(&tables, root, ipa);
        assert!(
            crate::mmio::is_marker(descriptor),
            "{ipa:#x}: not past the end"
        );
    }
    assert_eq!(descriptor_at(&tables, root, 0x0A00_0000).1, 0);
    let outcome = zap_markers(&mut tables, root, 0x0900_2FFF, 1);
    assert_eq!(
        outcome.zapped, 1,
        "the page holding `from` is the first one done"
    );
    assert_eq!(outcome.next, 0x0900_3000);
    assert_eq!(
        zap_markers(&mut tables, root, IPA_LIMIT, 5),
        ZapOutcome {
            zapped: 0,
            next: IPA_LIMIT
        }
    );
}

#[test]
fn a_zap_from_inside_a_hole_goes_on_past_it() {
    let (mut tables, root, markers, _) = populated();
    // 0x0800_1000 lies in an empty level-2 entry, one page past its base.
    let (mut from, mut zapped, mut calls) = (0x0800_1000, 0, 0);
    while from < IPA_LIMIT {
        let outcome = zap_markers(&mut tables, root, from, 64);
        assert!(outcome.next > from, "stuck at {from:#x}");
        from = outcome.next;
        zapped += outcome.zapped;
        calls += 1;
        assert!(calls < 10_000, "no end");
    }
    assert_eq!(
        zapped,
        markers.len() as u64 - 2,
        "all but the one at 0 (and one is twice)"
    );
    assert!(crate::mmio::is_marker(descriptor_at(&tables, root, 0).1));
}
