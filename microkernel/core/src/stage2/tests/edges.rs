//! Edges of the walks: a block is kept for a page only when it maps that page exactly so (same
//! frame, same attributes); write-protect stops at the end of its range and moves on from an
//! address inside a block or a hole to the next entry; `is_leaf` and `Plan::is_empty` say what
//! they claim.

use super::*;
use crate::stage2::descriptor::is_leaf;
use crate::stage2::prejudge::Removed;
use crate::stage2::walk::write_protect_bounded;

/// A 2 MiB RW block at `BASE` mapping `BLOCK_PA`.
const BASE: u64 = 0x4020_0000;
const BLOCK_PA: u64 = 0x8020_0000;

fn with_block() -> (Tables, u64) {
    let (mut tables, root) = tables();
    map_now(&mut tables, root, BASE, BLOCK_PA, PageSize::Size2M, RW_DATA);
    (tables, root)
}

#[test]
fn a_page_the_block_maps_with_other_attributes_breaks_the_block() {
    let (mut tables, root) = with_block();
    let (outcome, _) = map_now(
        &mut tables,
        root,
        BASE + 0x3000,
        BLOCK_PA + 0x3000,
        PageSize::Size4K,
        RO_DATA,
    );
    assert_eq!(
        outcome.action,
        Action::BreakBeforeMake {
            removes: Removed::Leaf
        },
        "same frame, narrower access: not a no-op"
    );
    assert_eq!(
        translate(&tables, root, BASE + 0x3000),
        Some((BLOCK_PA + 0x3000, RO_DATA))
    );
}

#[test]
fn a_page_the_block_maps_elsewhere_with_the_same_attributes_breaks_the_block() {
    let (mut tables, root) = with_block();
    let (outcome, _) = map_now(
        &mut tables,
        root,
        BASE + 0x3000,
        0x7000,
        PageSize::Size4K,
        RW_DATA,
    );
    assert_eq!(
        outcome.action,
        Action::BreakBeforeMake {
            removes: Removed::Leaf
        },
        "another frame: not a no-op"
    );
    assert_eq!(
        translate(&tables, root, BASE + 0x3000),
        Some((0x7000, RW_DATA))
    );
}

#[test]
fn is_leaf_is_true_for_pages_and_blocks_only() {
    let page = page_descriptor(0x4000_0000, RW_DATA);
    let block = block_descriptor(0x4000_0000, Level::Two, RW_DATA);
    let table = 0x4100_0003;
    assert!(is_leaf(page, Level::Three));
    assert!(is_leaf(block, Level::Two));
    assert!(is_leaf(
        block_descriptor(0x4000_0000, Level::One, CODE),
        Level::One
    ));
    assert!(!is_leaf(table, Level::Two), "a table");
    assert!(!is_leaf(block, Level::Three), "reserved at level 3");
    assert!(!is_leaf(0, Level::Three), "invalid");
}

#[test]
fn only_the_no_op_plan_is_empty() {
    assert!(Plan::EMPTY.is_empty());
    let (mut tables, root) = tables();
    let install = map(&mut tables, root, BASE, BLOCK_PA, PageSize::Size2M, RW_DATA).unwrap();
    assert!(!install.plan.is_empty());
    run(&mut tables, &install.plan);
    let again = map(&mut tables, root, BASE, BLOCK_PA, PageSize::Size2M, RW_DATA).unwrap();
    assert_eq!(again.action, Action::NoOp);
    assert!(again.plan.is_empty());
}

#[test]
fn write_protect_stops_at_the_end_of_its_range() {
    let (mut tables, root) = tables();
    for page in 0..2 {
        let (ipa, pa) = (BASE + page * 0x1000, 0x10_0000 + page * 0x1000);
        map_now(&mut tables, root, ipa, pa, PageSize::Size4K, RW_DATA);
    }
    let outcome = write_protect(&mut tables, root, BASE, 0x1000).unwrap();
    assert_eq!((outcome.protected, outcome.next), (1, BASE + 0x1000));
    let writable = |ipa| translate(&tables, root, ipa).unwrap().1.writable;
    assert!(!writable(BASE));
    assert!(
        writable(BASE + 0x1000),
        "the page after the range keeps its write right"
    );
}

#[test]
fn write_protect_from_inside_a_block_or_a_hole_goes_on_at_the_next_entry() {
    // From inside a 2 MiB block: the block is protected whole, the walk goes on after it.
    let (mut tables, root) = with_block();
    let step = write_protect_bounded(&mut tables, root, BASE + 0x3000, 0x20_0000, 2).unwrap();
    assert_eq!((step.protected, step.next), (1, BASE + 0x20_0000));
    assert!(!translate(&tables, root, BASE).unwrap().1.writable);
    // From inside an empty 1 GiB entry: on at the next gigabyte.
    let (mut empty, root) = super::tables();
    let step = write_protect_bounded(&mut empty, root, 0x4020_0000, 0x4000_0000, 1).unwrap();
    assert_eq!((step.protected, step.next), (0, 0x8000_0000));
}
