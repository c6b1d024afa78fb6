//! Walks over in-memory tables: blocks replacing tables and pages replacing blocks, running out
//! of tables half-way, address checks, unmap, and write-protecting a range.

use super::*;
use crate::stage2::prejudge::Removed;
use crate::stage2::walk::RemovedTable;
use std::vec;
use std::vec::Vec;

#[test]
fn blocks_and_pages_replace_each_other_with_break_before_make() {
    let (mut tables, root) = tables();
    let base = 0x4020_0000;
    // Pages first: one level-3 table under the 2 MiB entry.
    map_now(
        &mut tables,
        root,
        base,
        0x10_0000,
        PageSize::Size4K,
        RW_DATA,
    );
    map_now(
        &mut tables,
        root,
        base + 0x1000,
        0x10_1000,
        PageSize::Size4K,
        RW_DATA,
    );
    // A block replaces the table: the whole VMID is invalidated, the table comes back to free.
    let (block, ops) = map_now(
        &mut tables,
        root,
        base,
        0x8020_0000,
        PageSize::Size2M,
        RW_DATA,
    );
    assert_eq!(
        block.action,
        Action::BreakBeforeMake {
            removes: Removed::Table
        }
    );
    assert_eq!(ops, vec![DsbIsh, Vmalls12e1is, DsbIsh, DsbIshst]);
    let removed = block.removed_table.expect("the level-3 table");
    assert_eq!(removed.level, Level::Three);
    let mut listed = Vec::new();
    tables_under(&tables, removed, &mut |table| listed.push(table));
    assert_eq!(listed, vec![removed.table]);
    assert_eq!(
        translate(&tables, root, base + 0x1234),
        Some((0x8020_1234, RW_DATA))
    );
    // A page the block already maps exactly so: the block stays.
    let (same, ops) = map_now(
        &mut tables,
        root,
        base + 0x5000,
        0x8020_5000,
        PageSize::Size4K,
        RW_DATA,
    );
    assert_eq!(
        (same.action, same.level, ops),
        (Action::NoOp, Level::Two, vec![])
    );
    assert_eq!(
        translate(&tables, root, base + 0x1F_F000),
        Some((0x801F_F000 + 0x20_0000, RW_DATA))
    );
    // A page inside the block: the block is broken (one TLBI for its base, at level 2) and
    // replaced by a new table holding only the page.
    let (page, ops) = map_now(
        &mut tables,
        root,
        base + 0x3000,
        0x7000,
        PageSize::Size4K,
        RO_DATA,
    );
    assert_eq!(
        page.action,
        Action::BreakBeforeMake {
            removes: Removed::Leaf
        }
    );
    assert_eq!(page.level, Level::Two);
    assert_eq!(
        ops,
        vec![
            DsbIsh,
            by_ipa(base, Level::Two),
            DsbIsh,
            Vmalle1is,
            DsbIsh,
            DsbIshst
        ]
    );
    assert_eq!(
        translate(&tables, root, base + 0x3010),
        Some((0x7010, RO_DATA))
    );
    assert_eq!(
        translate(&tables, root, base),
        None,
        "the rest of the block faults again"
    );
    assert_eq!(page.removed_table, None);
}

#[test]
fn a_page_under_a_gigabyte_block_builds_two_tables_or_none() {
    let (mut tables, root) = tables();
    map_now(
        &mut tables,
        root,
        0x4000_0000,
        0x8000_0000,
        PageSize::Size1G,
        RWX,
    );
    assert_eq!(
        translate(&tables, root, 0x7FFF_F008),
        Some((0xBFFF_F008, RWX))
    );
    let used = tables.next;
    tables.limit = used + 1; // room for one table, not two
    assert_eq!(
        map(
            &mut tables,
            root,
            0x4000_1000,
            0x1000,
            PageSize::Size4K,
            RW_DATA
        ),
        Err(MapError::OutOfTables)
    );
    assert_eq!(tables.freed.len(), 1, "the unlinked table is given back");
    assert_eq!(
        translate(&tables, root, 0x4000_1000),
        Some((0x8000_1000, RWX)),
        "block intact"
    );
    tables.limit = 64;
    let (page, ops) = map_now(
        &mut tables,
        root,
        0x4000_1000,
        0x1000,
        PageSize::Size4K,
        RW_DATA,
    );
    assert_eq!(page.level, Level::One);
    assert_eq!(
        ops,
        vec![
            DsbIsh,
            by_ipa(0x4000_0000, Level::One),
            DsbIsh,
            Vmalle1is,
            DsbIsh,
            DsbIshst
        ]
    );
    assert_eq!(
        translate(&tables, root, 0x4000_1FF8),
        Some((0x1FF8, RW_DATA))
    );
    assert_eq!(translate(&tables, root, 0x4000_2000), None);
}

#[test]
fn map_refuses_misaligned_and_out_of_range_addresses() {
    let (mut tables, root) = tables();
    for (ipa, pa, size) in [
        (0x4020_1000, 0x8020_0000, PageSize::Size2M),
        (0x4020_0000, 0x8020_1000, PageSize::Size2M),
        (IPA_LIMIT - MIB2, 0x1_0000_0000_0000, PageSize::Size2M),
        (IPA_LIMIT, 0, PageSize::Size4K),
        (0x4000_0000, 0x4020_0000, PageSize::Size1G),
    ] {
        assert_eq!(
            map(&mut tables, root, ipa, pa, size, RW_DATA),
            Err(MapError::BadAddress)
        );
    }
    assert_eq!(tables.next, 1, "nothing allocated");
}

#[test]
fn unmap_breaks_only_and_reports_what_it_removed() {
    let (mut tables, root) = tables();
    let base = 0x4020_0000;
    assert_eq!(
        unmap(&tables, root, base, PageSize::Size4K).unwrap().action,
        Action::NoOp
    );
    map_now(&mut tables, root, base, 0x1000, PageSize::Size4K, RW_DATA);
    let page = unmap(&tables, root, base, PageSize::Size4K).unwrap();
    assert_eq!(
        page.action,
        Action::BreakBeforeMake {
            removes: Removed::Leaf
        }
    );
    assert_eq!(
        run(&mut tables, &page.plan),
        vec![
            DsbIsh,
            by_ipa(base, Level::Three),
            DsbIsh,
            Vmalle1is,
            DsbIsh
        ]
    );
    assert_eq!(translate(&tables, root, base), None);
    // The 2 MiB entry still holds the (now empty) level-3 table: unmapping at 2 MiB removes it.
    let table = unmap(&tables, root, base, PageSize::Size2M).unwrap();
    assert_eq!(
        table.action,
        Action::BreakBeforeMake {
            removes: Removed::Table
        }
    );
    assert!(matches!(
        table.removed_table,
        Some(RemovedTable {
            level: Level::Three,
            ..
        })
    ));
    assert_eq!(
        run(&mut tables, &table.plan),
        vec![DsbIsh, Vmalls12e1is, DsbIsh]
    );
    // A page inside a block cannot be unmapped without splitting it.
    map_now(
        &mut tables,
        root,
        base,
        0x8020_0000,
        PageSize::Size2M,
        RW_DATA,
    );
    assert_eq!(
        unmap(&tables, root, base + 0x1000, PageSize::Size4K),
        Err(MapError::WouldSplitBlock)
    );
    let block = unmap(&tables, root, base, PageSize::Size2M).unwrap();
    assert_eq!(
        run(&mut tables, &block.plan),
        vec![DsbIsh, by_ipa(base, Level::Two), DsbIsh, Vmalle1is, DsbIsh]
    );
    assert_eq!(translate(&tables, root, base + 0x1000), None);
}

#[test]
fn write_protect_walks_the_whole_range_through_holes_and_blocks() {
    let (mut tables, root) = tables();
    let base = 0x4000_0000;
    map_now(&mut tables, root, base, 0x1000, PageSize::Size4K, RW_DATA);
    map_now(
        &mut tables,
        root,
        base + 0x2000,
        0x2000,
        PageSize::Size4K,
        RO_DATA,
    ); // already RO
    map_now(
        &mut tables,
        root,
        base + 0x5000,
        0x5000,
        PageSize::Size4K,
        RWX,
    );
    map_now(
        &mut tables,
        root,
        base + 0x40_0000,
        0x8040_0000,
        PageSize::Size2M,
        RW_DATA,
    );
    map_now(
        &mut tables,
        root,
        base + 0x80_0000,
        0x8080_0000,
        PageSize::Size2M,
        RW_DATA,
    ); // outside
    // The range ends inside the first block: it is protected whole.
    let outcome = write_protect(&mut tables, root, base, 0x40_1000).unwrap();
    assert_eq!(outcome.protected, 3);
    assert_eq!(
        run(&mut tables, &outcome.plan),
        vec![DsbIsh, Vmalls12e1is, DsbIsh]
    );
    for (ipa, expected) in [
        (base, false),
        (base + 0x5000, false),
        (base + 0x5F_F000, false),
        (base + 0x80_0000, true),
    ] {
        assert_eq!(
            translate(&tables, root, ipa).unwrap().1.writable,
            expected,
            "{ipa:#x}"
        );
    }
    assert_eq!(
        translate(&tables, root, base + 0x5000).unwrap().1,
        CODE,
        "only write is removed"
    );
    let again = write_protect(&mut tables, root, base, 0x40_1000).unwrap();
    assert_eq!((again.protected, again.plan.is_empty()), (0, true));
    // One entry: invalidated by address.
    map_now(
        &mut tables,
        root,
        base + 0x1000,
        0x9000,
        PageSize::Size4K,
        RW_DATA,
    );
    let one = write_protect(&mut tables, root, base, 0x10_0000).unwrap();
    assert_eq!(one.protected, 1);
    assert_eq!(
        one.plan.tlb_ops().collect::<Vec<_>>(),
        vec![
            DsbIsh,
            by_ipa(base + 0x1000, Level::Three),
            DsbIsh,
            Vmalle1is,
            DsbIsh
        ]
    );
    assert_eq!(
        write_protect(&mut tables, root, base + 1, 0x1000),
        Err(MapError::BadAddress)
    );
    assert_eq!(
        write_protect(&mut tables, root, base, 0x800),
        Err(MapError::BadAddress)
    );
}

#[test]
fn map_page_still_refuses_to_replace_a_live_mapping() {
    // The boot loader's path: fresh tables only, so anything but install or no-op is an error.
    let (mut tables, root) = tables();
    map_now(
        &mut tables,
        root,
        0x20_0000,
        0x4000_0000,
        PageSize::Size2M,
        RW_DATA,
    );
    assert_eq!(
        map_page(&mut tables, root, 0x20_1000, 0x1000, RW_DATA),
        Err(MapError::AlreadyMapped)
    );
    assert_eq!(
        translate(&tables, root, 0x20_1000),
        Some((0x4000_1000, RW_DATA))
    );
}
