//! The leaf a CR0.WP=0 supervisor write to a read-only page gets: writable and supervisor-only,
//! executable unless SMEP is on and the page was a user page, and emulated only when SMAP is on
//! and the page was a user page.

use super::helpers::*;
use crate::shadow::pte::{P, US};
use crate::shadow::{AccessKind, Config, CpuMode, PageSize};
use crate::testing::{AccessResult, Machine};

const VA: u64 = 0x30_0000;
const SUPERVISOR_FETCH: crate::shadow::MemAccess = acc(AccessKind::Fetch, false);

fn wp0_guest(flags: u64, smep: bool, smap: bool) -> Machine<64> {
    let mut g = Guest::new();
    let pml4 = g.table();
    g.map(pml4, VA, 0x60_0000, PageSize::Size4K, flags);
    let mode = CpuMode {
        cr0_wp: false,
        cr4_smep: smep,
        cr4_smap: smap,
        ..CpuMode::long_mode()
    };
    g.boot_with::<64, 4>(pml4, mode, Config::default())
}

#[test]
fn supervisor_page_under_smep_and_smap_is_mapped_writable_and_stays_executable() {
    // A read-only supervisor page: SMAP does not concern it, so the write is mapped, not
    // emulated; SMEP does not concern it either, so the new leaf still allows fetches.
    let mut m = wp0_guest(P, true, true);
    let r = run_checked(&mut m, VA, WRITE, 1);
    assert!(matches!(r, AccessResult::Done { .. }), "{r:?}");
    let fetch = m.access(VA, SUPERVISOR_FETCH, 0);
    assert_eq!(
        (fetch.faults, fetch.result),
        (0, r),
        "fetch through the written leaf"
    );
    check_va(&m, VA).unwrap();
}

#[test]
fn user_page_without_smep_keeps_supervisor_fetches_on_the_written_leaf() {
    let mut m = wp0_guest(P | US, false, false);
    let r = run_checked(&mut m, VA, WRITE, 1);
    assert!(matches!(r, AccessResult::Done { .. }), "{r:?}");
    assert_eq!(m.access(VA, SUPERVISOR_FETCH, 0).faults, 0);
    // The user is shut out of that leaf (it is supervisor-only) and gets the page back read-only.
    assert_eq!(m.access(VA, UREAD, 0).fixed, 1);
    check_va(&m, VA).unwrap();
}

#[test]
fn user_page_under_smep_loses_execute_on_the_written_leaf() {
    let mut m = wp0_guest(P | US, true, false);
    let r = run_checked(&mut m, VA, WRITE, 1);
    assert!(matches!(r, AccessResult::Done { .. }), "{r:?}");
    assert!(m.hw_translate(VA, SUPERVISOR_FETCH).is_err());
    // (The guest itself refuses that fetch under SMEP: the fault is reflected.)
    assert_eq!(
        run_checked(&mut m, VA, SUPERVISOR_FETCH, 0),
        AccessResult::Injected { error_code: 0x11 }
    );
    check_va(&m, VA).unwrap();
}
