//! A block is kept for a page only when it maps that page exactly so (same frame, same
//! attributes); `is_leaf` and `Plan::is_empty` say what they claim.

use super::*;
use crate::stage2::descriptor::is_leaf;
use crate::stage2::prejudge::Removed;

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
