//! Large pages around shadowed guest tables (the step-down), and the self-mapping infinite retry.

use super::helpers::*;
use crate::shadow::pte::{RW, US};
use crate::shadow::{EmulateReason, Gpa, Hpa, PageSize};
use crate::testing::AccessResult;

const LARGE_VA: u64 = 0x40_0000_0000; // PML4 index 0, PDPT index 256

/// Regression test for KVM's infinite retry: a write through a 2 MiB guest page onto a page
/// table of the very walk that maps it. Old KVM mapped the large page, write-protected the table
/// in the same fault (dropping the mapping) and the guest faulted forever.
#[test]
fn self_mapping_write_resolves_in_bounded_faults() {
    let mut g = Guest::new();
    let pml4 = g.table(); // 0x1000
    // VA LARGE_VA maps GPA 0..2M with one 2 MiB page: that range holds every table of the walk.
    g.map(pml4, LARGE_VA, 0, PageSize::Size2M, URW);
    let pd = g.entry_gpa(pml4, LARGE_VA, 2) & !0xfff;
    let pdpt = g.entry_gpa(pml4, LARGE_VA, 3) & !0xfff;
    let mut m = g.boot::<64>(pml4);

    // Write onto the PDPT of this walk: emulated after exactly one fault, no `Fixed` loop.
    let report = m.access(LARGE_VA + pdpt + 8, WRITE, 0xdead_b000);
    assert_eq!(report.faults, 1);
    assert_eq!(
        report.result,
        AccessResult::Emulated {
            gpa: Gpa(pdpt + 8),
            reason: EmulateReason::PageTableWrite
        }
    );
    assert_eq!(
        m.mem.peek_u64(Gpa(pdpt + 8)),
        Some(0xdead_b000),
        "the write landed"
    );

    // Writes elsewhere in the same 2 MiB page get a writable 4 KiB leaf in one fault: the 2 MiB
    // region holds shadowed tables, so it cannot be mapped whole, but it is not forced read-only.
    for off in [0x10_0000u64, 0x1f_f000, 0x8000] {
        let report = m.access(LARGE_VA + off, WRITE, off);
        assert_eq!(report.fixed, 1, "{report:?}");
        let AccessResult::Done { hpa, shadow_level } = report.result else {
            panic!("{report:?}")
        };
        assert_eq!((hpa, shadow_level), (Hpa(HOST_BASE + off), 1));
        // And again: no fault at all now.
        assert_eq!(m.access(LARGE_VA + off, WRITE, off).faults, 0);
    }

    // The PDE that maps the very page being written, written through that page: emulate, and
    // the next access follows the new mapping (2 MiB at GPA 4M).
    let pde = g_entry(pd, LARGE_VA);
    let new_pde = (4 << 20) | URW | (1 << 7);
    let r = run_checked(&mut m, LARGE_VA + pde, WRITE, new_pde);
    assert!(matches!(r, AccessResult::Emulated { .. }), "{r:?}");
    let r = run_checked(&mut m, LARGE_VA + 0x5000, READ, 0);
    assert_eq!(
        r,
        AccessResult::Done {
            hpa: Hpa(HOST_BASE + (4 << 20) + 0x5000),
            shadow_level: 2
        }
    );
    for va in [LARGE_VA, LARGE_VA + 0x5000, LARGE_VA + pde] {
        check_va(&m, va).unwrap();
    }
}

fn g_entry(table: u64, va: u64) -> u64 {
    table + ((va >> 21) & 511) * 8
}

/// A recursive (self-referencing) PML4 slot: the PML4 is reached as a PDPT, PD and PT, and
/// written through itself. Every access completes with at most one `Fixed` fault.
#[test]
fn recursive_pml4_writes_are_emulated_once() {
    let mut g = Guest::new();
    let pml4 = g.table();
    g.map(pml4, 0x40_0000, 0x80_0000, PageSize::Size4K, URW);
    g.mem.poke_u64(Gpa(pml4 + 510 * 8), pml4 | URW);
    let mut m = g.boot::<64>(pml4);
    // VA with indexes 510,510,510,510 maps the PML4 itself.
    let self_va = 0xffff_ff7f_bfdf_e000u64;
    for (off, access) in [
        (0, READ),
        (8, WRITE),
        (510 * 8, READ),
        (16, WRITE),
        (24, UWRITE),
    ] {
        let r = run_checked(&mut m, self_va + off, access, 0x1234_5000 | URW);
        if access == WRITE || access == UWRITE {
            assert!(matches!(r, AccessResult::Emulated { .. }), "{r:?}");
        }
        check_va(&m, self_va).unwrap();
        check_va(&m, 0x40_0000).unwrap();
    }
}

/// A 1 GiB guest page over the guest's own tables gets 2 MiB shadow leaves wherever a 2 MiB
/// region avoids the tables, and 4 KiB leaves only in the region that holds them.
#[test]
fn one_gib_page_steps_down_to_two_mib_not_four_kib() {
    let mut g = Guest::new();
    let pml4 = g.table(); // tables in GPA [0, 2M)
    g.map(pml4, LARGE_VA, 0, PageSize::Size1G, URW);
    g.map(pml4, 2 * LARGE_VA, 1 << 30, PageSize::Size1G, URW); // GPA [1G, 2G): no tables
    let mut m = g.boot::<64>(pml4);

    let level_of = |r: AccessResult| match r {
        AccessResult::Done { shadow_level, .. } => shadow_level,
        other => panic!("{other:?}"),
    };
    // Region 0 (holds the tables): 4 KiB. Regions 1, 2 and 511: 2 MiB.
    assert_eq!(
        level_of(run_checked(&mut m, LARGE_VA + 0x7000, WRITE, 1)),
        1
    );
    for region in [1u64, 2, 511] {
        let va = LARGE_VA + (region << 21) + 0x3000;
        assert_eq!(
            level_of(run_checked(&mut m, va, WRITE, 2)),
            2,
            "region {region}"
        );
    }
    // The table-free gigabyte is mapped whole.
    assert_eq!(
        level_of(run_checked(&mut m, 2 * LARGE_VA + 0x1234_5000, READ, 0)),
        3
    );

    // A guest table appears inside region 2 (a new root placed there): the 2 MiB shadow leaf
    // covering it is dropped and region 2 steps down to 4 KiB, in one fault.
    let new_root = (2 << 21) + 0x5000;
    for i in 0..512u64 {
        let v = m.mem.peek_u64(Gpa(pml4 + i * 8)).unwrap();
        m.mem.poke_u64(Gpa(new_root + i * 8), v);
    }
    let load = m.set_root(new_root, m.mode).unwrap();
    assert_eq!(load, crate::shadow::RootLoad::Miss);
    assert!(m.mmu.is_write_protected(Hpa(HOST_BASE + new_root)));
    let va = LARGE_VA + (2 << 21) + 0x3000;
    assert_eq!(level_of(run_checked(&mut m, va, WRITE, 3)), 1);
    // The new root's frame itself is only ever mapped read-only, writes are emulated.
    let r = run_checked(&mut m, LARGE_VA + new_root, WRITE, 0);
    assert!(matches!(r, AccessResult::Emulated { .. }), "{r:?}");
    for va in [
        LARGE_VA + 0x7000,
        LARGE_VA + (1 << 21),
        va,
        LARGE_VA + new_root,
    ] {
        check_va(&m, va).unwrap();
    }
}

/// The host side limits large leaves too: a slot boundary or host misalignment inside the
/// guest's large page makes the shadow step down.
#[test]
fn host_backing_limits_the_leaf_size() {
    let mut g = Guest::new();
    let pml4 = g.table();
    // A second slot at 4G..4G+3M, host-aligned to 4 KiB only.
    g.mem.add_slot(
        Gpa(4 << 30),
        3 << 20,
        Hpa(HOST_BASE + (8 << 30) + 0x1000),
        false,
    );
    g.map(pml4, LARGE_VA, 4 << 30, PageSize::Size2M, URW | RW | US);
    g.map(
        pml4,
        LARGE_VA + (2 << 20),
        (4 << 30) + (2 << 20),
        PageSize::Size2M,
        URW,
    );
    let mut m = g.boot::<64>(pml4);
    let r = run_checked(&mut m, LARGE_VA + 0x1000, READ, 0);
    assert!(
        matches!(
            r,
            AccessResult::Done {
                shadow_level: 1,
                ..
            }
        ),
        "{r:?}"
    );
    // Second 2 MiB: half of it lies outside the slot; the part inside is mapped 4 KiB,
    // the part outside is MMIO.
    let r = run_checked(&mut m, LARGE_VA + (2 << 20) + 0x1000, READ, 0);
    assert!(
        matches!(
            r,
            AccessResult::Done {
                shadow_level: 1,
                ..
            }
        ),
        "{r:?}"
    );
    let r = run_checked(&mut m, LARGE_VA + (3 << 20) + 0x1000, READ, 0);
    assert!(
        matches!(r, AccessResult::Mmio { cached: false, .. }),
        "{r:?}"
    );
}
