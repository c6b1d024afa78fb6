//! The bounded write-protect walk: a range done in several calls ends exactly like one call,
//! every call makes progress, and `next` says where to continue.

use super::*;
use crate::stage2::walk::write_protect_bounded;

/// 600 writable 4 KiB pages from `base`: more leaves than one small budget covers.
fn many_pages(tables: &mut Tables, root: u64, base: u64) {
    for page in 0..600u64 {
        map_now(
            tables,
            root,
            base + page * 0x1000,
            0x10_0000 + page * 0x1000,
            PageSize::Size4K,
            RW_DATA,
        );
    }
}

#[test]
fn a_range_done_in_bounded_steps_ends_as_one_call_does() {
    let (mut tables, root) = tables();
    let base = 0x4000_0000;
    let len = 0x80_0000;
    many_pages(&mut tables, root, base);
    let (mut at, mut calls, mut protected) = (base, 0, 0);
    while at < base + len {
        let step = write_protect_bounded(&mut tables, root, at, base + len - at, 100).unwrap();
        assert!(step.next > at, "call {calls} made no progress at {at:#x}");
        assert!(step.next <= base + len);
        protected += step.protected;
        at = step.next;
        calls += 1;
    }
    assert_eq!(protected, 600, "every leaf protected exactly once");
    assert!(
        calls > 1,
        "a budget of 100 entries cannot cover 600 pages in one call"
    );
    for page in 0..600u64 {
        let ipa = base + page * 0x1000;
        assert!(
            !translate(&tables, root, ipa).unwrap().1.writable,
            "{ipa:#x}"
        );
    }
    let again = write_protect(&mut tables, root, base, len).unwrap();
    assert_eq!((again.protected, again.next), (0, base + len));
}

#[test]
fn a_bounded_call_stops_between_entries_and_says_where() {
    let (mut tables, root) = tables();
    let base = 0x4000_0000;
    many_pages(&mut tables, root, base);
    // Each page costs three visits (level 1, 2, 3): a budget of 30 protects 10 pages.
    let step = write_protect_bounded(&mut tables, root, base, 0x80_0000, 30).unwrap();
    assert_eq!((step.protected, step.next), (10, base + 10 * 0x1000));
    assert!(
        !translate(&tables, root, base + 9 * 0x1000)
            .unwrap()
            .1
            .writable
    );
    assert!(
        translate(&tables, root, base + 10 * 0x1000)
            .unwrap()
            .1
            .writable
    );
    // A zero budget still does one entry: every call makes progress.
    let step = write_protect_bounded(&mut tables, root, step.next, 0x1000, 0).unwrap();
    assert_eq!(step.next, base + 11 * 0x1000);
}

#[test]
fn holes_cost_one_visit_per_empty_entry_and_next_never_passes_the_end() {
    let (mut tables, root) = tables();
    // Nothing mapped: a 1 GiB hole is one level-1 visit.
    let step = write_protect_bounded(&mut tables, root, 0x4000_0000, 0x4000_0000, 1).unwrap();
    assert_eq!((step.protected, step.next), (0, 0x8000_0000));
    // A range ending inside an empty 1 GiB entry stops at its end, not the entry's.
    let step = write_protect_bounded(&mut tables, root, 0x4000_0000, 0x1000, 5).unwrap();
    assert_eq!(step.next, 0x4000_1000);
}
