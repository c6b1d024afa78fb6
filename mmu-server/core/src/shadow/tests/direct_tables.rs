//! Direct shadow tables (a guest large page mapped with smaller shadow leaves, or paging off):
//! keyed by the first frame of the range and the leaf's rights, shared by every page of the
//! range, never confused with a table of other rights, and never write-protecting anything.

use super::helpers::*;
use crate::shadow::pte::{A, D};
use crate::shadow::{Config, CpuMode, Gpa, Hpa, PageSize, SlotChange};
use crate::testing::{AccessResult, Machine};

const LARGE_VA: u64 = 0x4000_0000;
const LARGE_GPA: u64 = 0x40_0000;

/// A guest mapping one 2 MiB page with `flags` on a host that maps 4 KiB leaves only, so the
/// page is split into a direct table. Returns the machine and the guest PDE's address.
fn split_guest(flags: u64) -> (Machine<64>, u64) {
    let mut g = Guest::new();
    let pml4 = g.table();
    g.map(pml4, LARGE_VA, LARGE_GPA, PageSize::Size2M, flags);
    let pde = g.entry_gpa(pml4, LARGE_VA, 2);
    let config = Config {
        host_max_page: PageSize::Size4K,
        ..Config::default()
    };
    (
        g.boot_with::<64, 4>(pml4, CpuMode::long_mode(), config),
        pde,
    )
}

fn done(r: AccessResult) -> (Hpa, u8) {
    match r {
        AccessResult::Done { hpa, shadow_level } => (hpa, shadow_level),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_page_of_a_split_large_page_shares_one_direct_table() {
    let (mut m, _) = split_guest(URW | A | D);
    for page in [1u64, 2, 511] {
        let r = run_checked(&mut m, LARGE_VA + page * 0x1000, READ, 0);
        assert_eq!(done(r), (Hpa(HOST_BASE + LARGE_GPA + page * 0x1000), 1));
    }
    assert_eq!(
        m.mmu.pages_in_use(),
        4,
        "root, PDPT and PD shadows and one direct table"
    );
    for page in [1u64, 2, 511] {
        assert_eq!(
            m.access(LARGE_VA + page * 0x1000, READ, 0).faults,
            0,
            "page {page} still mapped"
        );
    }
}

#[test]
fn a_direct_table_of_other_rights_is_not_reused_for_a_writable_leaf() {
    // Clean page: the first read's direct table holds read-only leaves (rights without W).
    let (mut m, pde) = split_guest(URW | A);
    run_checked(&mut m, LARGE_VA + 0x1000, READ, 0);
    // The write dirties the guest PDE; its writable leaf needs a table keyed with W.
    run_checked(&mut m, LARGE_VA + 0x2000, WRITE, 5);
    check_va(&m, LARGE_VA + 0x2000).unwrap();
    // The guest cleans the PDE again, then reads the first page: the read-only table is found
    // by its key and linked again. It must not hold the writable leaf of the second page.
    let clean = m.mem.peek_u64(Gpa(pde)).unwrap() & !D;
    m.mmu
        .guest_write(&mut m.mem, &mut m.store, Gpa(pde), &clean.to_le_bytes());
    run_checked(&mut m, LARGE_VA + 0x1000, READ, 0);
    assert!(
        m.hw_translate(LARGE_VA + 0x2000, WRITE).is_err(),
        "a write must fault to set D again"
    );
    for page in [1u64, 2] {
        check_va(&m, LARGE_VA + page * 0x1000).unwrap();
    }
    assert_eq!(m.access(LARGE_VA + 0x2000, WRITE, 6).fixed, 1);
    assert_ne!(m.mem.peek_u64(Gpa(pde)).unwrap() & D, 0, "D set again");
}

#[test]
fn a_new_slot_does_not_write_protect_what_a_direct_root_maps() {
    // Paging off: the root is a direct table; GPA 0 is mapped by a 1 GiB leaf.
    let g = Guest::new();
    let mut m = g.boot_with::<64, 4>(0, CpuMode::paging_off(), Config::default());
    let r = run_checked(&mut m, 0x10, WRITE, 1);
    assert_eq!(done(r), (Hpa(HOST_BASE + 0x10), 3));
    m.mem.add_slot(Gpa(8 << 30), 1 << 30, Hpa(128 << 30), false);
    m.mmu
        .memslots_changed(&mut m.mem, &mut m.store, SlotChange::Created);
    assert!(
        !m.mmu.is_write_protected(Hpa(HOST_BASE)),
        "GPA 0 is no guest table"
    );
    let again = m.access(0x10, WRITE, 2);
    assert_eq!((again.faults, again.result), (0, r), "the 1 GiB leaf stays");
    check_va(&m, 0x10).unwrap();
}
