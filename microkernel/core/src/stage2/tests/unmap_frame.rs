//! `unmap_frame`, the unmap of a frame capability's deletion: it removes the leaf at the
//! recorded place only when that leaf maps exactly this frame (same size, same output address),
//! and leaves everything else as it is: nothing there, another frame, a table that split the
//! block, a larger block over a page's place. When it removes, the plan is `unmap`'s.

use super::*;
use crate::stage2::prejudge::Removed;

const BASE: u64 = 0x4020_0000;
const PA: u64 = 0x8020_0000;
const PAGE: u64 = 0x1000;

fn removes(outcome: &UnmapOutcome) -> bool {
    outcome.action
        == Action::BreakBeforeMake {
            removes: Removed::Leaf,
        }
}

/// Every entry of the tables, to see that a refused `unmap_frame` planned nothing at all.
fn snapshot(tables: &Tables) -> std::collections::BTreeMap<(u64, usize), u64> {
    tables.entries.iter().map(|(k, v)| (*k, *v)).collect()
}

#[test]
fn the_frames_own_page_or_block_is_removed_with_unmaps_plan_whatever_its_permissions() {
    for (size, attributes) in [
        (PageSize::Size4K, RW_DATA),
        (PageSize::Size4K, CODE),
        (PageSize::Size2M, RO_DATA),
        (PageSize::Size2M, RWX),
    ] {
        let (mut tables, root) = tables();
        map_now(&mut tables, root, BASE, PA, size, attributes);
        let expected = unmap(&tables, root, BASE, size).unwrap();
        let outcome = unmap_frame(&tables, root, BASE, PA, size).unwrap();
        assert!(removes(&outcome), "{size:?}");
        assert_eq!(outcome.plan, expected.plan, "the same break as `unmap`");
        assert_eq!(outcome.level, size.level());
        assert_eq!(outcome.removed_table, None);
        run(&mut tables, &outcome.plan);
        assert_eq!(translate(&tables, root, BASE), None);
        assert_eq!(translate(&tables, root, BASE + size.bytes() - PAGE), None);
    }
}

#[test]
fn anything_but_the_frames_own_leaf_is_left_alone() {
    let leave = |tables: &Tables, root, ipa, pa, size, why: &str| {
        let before = snapshot(tables);
        let outcome = unmap_frame(tables, root, ipa, pa, size).unwrap();
        assert_eq!(outcome.action, Action::NoOp, "{why}");
        assert!(outcome.plan.is_empty(), "{why}: nothing to run");
        assert_eq!(outcome.removed_table, None, "{why}");
        assert_eq!(snapshot(tables), before, "{why}: nothing written");
    };

    let (mut tables, root) = tables();
    leave(&tables, root, BASE, PA, PageSize::Size4K, "an empty table");
    leave(&tables, root, BASE, PA, PageSize::Size2M, "an empty table");

    // A page of another frame where the frame's page was.
    map_now(
        &mut tables,
        root,
        BASE,
        PA + PAGE,
        PageSize::Size4K,
        RW_DATA,
    );
    leave(
        &tables,
        root,
        BASE,
        PA,
        PageSize::Size4K,
        "another frame's page",
    );
    // The block's place holds the table of that page (a page over the block split it).
    leave(
        &tables,
        root,
        BASE,
        PA,
        PageSize::Size2M,
        "a table, not the block",
    );
    assert_eq!(translate(&tables, root, BASE), Some((PA + PAGE, RW_DATA)));

    // A block over the page's place: the page's frame is inside it, but the leaf is not a
    // page of that frame (it is the block's capability's), so the page's deletion keeps it.
    let (mut tables, root) = super::tables();
    map_now(&mut tables, root, BASE, PA, PageSize::Size2M, RW_DATA);
    leave(
        &tables,
        root,
        BASE,
        PA,
        PageSize::Size4K,
        "a block at the page's base",
    );
    leave(
        &tables,
        root,
        BASE + 3 * PAGE,
        PA + 3 * PAGE,
        PageSize::Size4K,
        "inside a block",
    );
    leave(
        &tables,
        root,
        BASE,
        PA + MIB2,
        PageSize::Size2M,
        "another frame's block",
    );
    assert_eq!(
        translate(&tables, root, BASE + 3 * PAGE),
        Some((PA + 3 * PAGE, RW_DATA))
    );

    // A 1 GiB block over a 2 MiB frame's place.
    let (mut tables, root) = super::tables();
    let gib = PageSize::Size1G.bytes();
    map_now(&mut tables, root, 0, 0, PageSize::Size1G, RW_DATA);
    leave(
        &tables,
        root,
        MIB2,
        MIB2,
        PageSize::Size2M,
        "inside a 1 GiB block",
    );
    assert_eq!(
        translate(&tables, root, gib - PAGE),
        Some((gib - PAGE, RW_DATA))
    );
}

#[test]
fn misaligned_or_out_of_range_addresses_are_refused() {
    let (tables, root) = tables();
    for (ipa, pa, size) in [
        (BASE + 0x800, PA, PageSize::Size4K),
        (BASE, PA + 0x800, PageSize::Size4K),
        (BASE + PAGE, PA, PageSize::Size2M),
        (BASE, PA + PAGE, PageSize::Size2M),
        (IPA_LIMIT, PA, PageSize::Size4K),
    ] {
        assert_eq!(
            unmap_frame(&tables, root, ipa, pa, size),
            Err(MapError::BadAddress),
            "{ipa:#x} {pa:#x} {size:?}"
        );
    }
}
