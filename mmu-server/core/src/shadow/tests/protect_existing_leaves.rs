//! When a host frame *becomes* a shadowed guest table, the leaves made before that point are
//! brought in line: every writable 4 KiB leaf onto it loses RW (and stays readable), every large
//! leaf covering it (writable or not) is dropped; leaves of other frames and large leaves of
//! neighbouring regions are left as they are. The frame becomes a table here by the guest
//! loading it into CR3 (a new address space); the old address space is then switched back to.

use super::helpers::*;
use crate::shadow::pte::{A, D, P, US};
use crate::shadow::{EmulateReason, Gpa, Hpa, PageSize, RootLoad};
use crate::testing::{AccessResult, Machine};

fn protect_by_loading_as_root<const N: usize>(m: &mut Machine<N>, frames: &[u64]) {
    let (home, mode) = (m.cr3, m.mode);
    for &frame in frames {
        assert_eq!(m.set_root(frame, mode), Ok(RootLoad::Miss));
        assert!(m.mmu.is_write_protected(Hpa(HOST_BASE + frame)));
    }
    assert_eq!(m.set_root(home, mode), Ok(RootLoad::CacheHit));
}

#[test]
fn a_writable_page_onto_a_new_table_becomes_read_only_and_others_stay_writable() {
    let mut g = Guest::new();
    let pml4 = g.table();
    // The frame that becomes a table has bit 12 set (an odd frame number).
    let (data, other) = (0x30_1000u64, 0x30_3000u64);
    g.map(pml4, 0x10_0000, data, PageSize::Size4K, URW | A | D);
    g.map(pml4, 0x10_1000, other, PageSize::Size4K, URW | A | D);
    let mut m = g.boot::<64>(pml4);
    run_checked(&mut m, 0x10_0000, WRITE, 1);
    run_checked(&mut m, 0x10_1000, WRITE, 2);
    protect_by_loading_as_root(&mut m, &[data]);
    assert!(
        m.hw_translate(0x10_0000, WRITE).is_err(),
        "no writable leaf onto a table"
    );
    let read = m.access(0x10_0000, READ, 0);
    assert_eq!(
        (read.faults, read.result),
        (
            0,
            AccessResult::Done {
                hpa: Hpa(HOST_BASE + data),
                shadow_level: 1
            }
        ),
        "RW removed, the leaf kept"
    );
    assert_eq!(
        m.access(0x10_1000, WRITE, 3).faults,
        0,
        "other frame: still writable"
    );
    let write = m.access(0x10_0008, WRITE, 4);
    assert_eq!(
        write.result,
        AccessResult::Emulated {
            gpa: Gpa(data + 8),
            reason: EmulateReason::PageTableWrite
        }
    );
    assert_eq!(m.mem.peek_u64(Gpa(data + 8)), Some(4));
    for va in [0x10_0000, 0x10_1000] {
        check_va(&m, va).unwrap();
    }
}

#[test]
fn large_leaves_over_a_new_table_are_dropped_writable_or_not_and_neighbours_stay() {
    let mut g = Guest::new();
    let pml4 = g.table();
    // Writable 2 MiB at an odd 2 MiB index; read-only 2 MiB under another PD (so its shadow
    // table holds no writable leaf); a third whose region ends where a table will start.
    let (rw_va, rw_gpa) = (0x4000_0000u64, 0x60_0000u64);
    let (ro_va, ro_gpa) = (0x8000_0000u64, 0x80_0000u64);
    let (next_va, next_gpa) = (0xc000_0000u64, 0xa0_0000u64);
    g.map(pml4, rw_va, rw_gpa, PageSize::Size2M, URW | A | D);
    g.map(pml4, ro_va, ro_gpa, PageSize::Size2M, P | US | A);
    g.map(pml4, next_va, next_gpa, PageSize::Size2M, URW | A | D);
    let mut m = g.boot::<64>(pml4);
    for va in [rw_va, ro_va, next_va] {
        let r = run_checked(&mut m, va + 0x8000, READ, 0);
        assert!(
            matches!(
                r,
                AccessResult::Done {
                    shadow_level: 2,
                    ..
                }
            ),
            "{r:?}"
        );
    }
    let mapped = |m: &Machine<64>, va: u64| m.hw_translate(va + 0x8000, READ).is_ok();
    // One table at a time, so that each drop is the doing of that table alone.
    protect_by_loading_as_root(&mut m, &[rw_gpa + 0x5000]);
    assert!(
        !mapped(&m, rw_va),
        "the writable leaf over the table is dropped"
    );
    assert!(mapped(&m, ro_va) && mapped(&m, next_va), "the others stay");
    protect_by_loading_as_root(&mut m, &[ro_gpa + 0x7000]);
    assert!(
        !mapped(&m, ro_va),
        "the read-only leaf over the table is dropped"
    );
    assert!(mapped(&m, next_va));
    protect_by_loading_as_root(&mut m, &[next_gpa + (2 << 20)]);
    assert!(
        mapped(&m, next_va),
        "a table just past the region drops nothing"
    );
    for va in [rw_va, ro_va] {
        let r = run_checked(&mut m, va + 0x8000, READ, 0);
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
    }
    let next = m.access(next_va + 0x8000, WRITE, 1);
    assert_eq!(
        next.faults, 0,
        "the region before the table keeps its 2 MiB leaf"
    );
    for va in [rw_va, ro_va, next_va] {
        check_va(&m, va + 0x8000).unwrap();
    }
}
