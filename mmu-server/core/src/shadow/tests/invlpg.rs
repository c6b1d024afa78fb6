//! INVLPG drops exactly the shadow entry that translates its address, at whatever level the
//! shadow walk ends (a 2 MiB leaf, a 4 KiB leaf, an MMIO entry), and nothing else; for an
//! address the shadow does not map it drops nothing.

use super::helpers::*;
use crate::shadow::pte::{A, D};
use crate::shadow::{Gva, PageSize};
use crate::testing::{AccessResult, Machine};

/// PML4 0, PDPT 1, PD 0: a 2 MiB page.
const LARGE: u64 = 0x4000_0000;
/// PML4 0, PDPT 0: a 4 KiB page.
const SMALL: u64 = 0x20_0000;
/// Next to `SMALL`, in the same page table: MMIO.
const DEVICE: u64 = SMALL + 0x1000;
/// PML4 5, every lower index 0: nothing mapped.
const UNMAPPED: u64 = 5 << 39;

fn machine() -> Machine<64> {
    let mut g = Guest::new();
    let pml4 = g.table();
    g.map(pml4, LARGE, 0x40_0000, PageSize::Size2M, URW | A | D);
    g.map(pml4, SMALL, 0x30_0000, PageSize::Size4K, URW | A | D);
    g.map(pml4, DEVICE, MMIO_GPA, PageSize::Size4K, URW | A | D);
    let mut m = g.boot::<64>(pml4);
    for va in [LARGE, SMALL, DEVICE] {
        run_checked(&mut m, va, READ, 0);
    }
    m
}

fn faults(m: &mut Machine<64>, va: u64) -> u32 {
    m.access(va, READ, 0).faults
}

#[test]
fn invlpg_inside_a_2mib_leaf_drops_that_leaf_only() {
    let mut m = machine();
    m.mmu.invlpg(&mut m.store, Gva(LARGE + 0x1_2345));
    assert_eq!(
        faults(&mut m, LARGE + 0x5000),
        1,
        "the whole 2 MiB leaf went"
    );
    assert_eq!(faults(&mut m, SMALL), 0);
    assert_eq!(
        faults(&mut m, LARGE + 0x1_2345),
        0,
        "one fault mapped it back"
    );
}

#[test]
fn invlpg_of_a_page_or_an_mmio_entry_drops_that_entry_only() {
    let mut m = machine();
    m.mmu.invlpg(&mut m.store, Gva(SMALL));
    assert_eq!(faults(&mut m, SMALL), 1);
    assert_eq!(faults(&mut m, LARGE), 0);
    assert!(matches!(
        m.access(DEVICE, READ, 0).result,
        AccessResult::Mmio { cached: true, .. }
    ));
    m.mmu.invlpg(&mut m.store, Gva(DEVICE));
    assert!(matches!(
        m.access(DEVICE, READ, 0).result,
        AccessResult::Mmio { cached: false, .. }
    ));
}

#[test]
fn invlpg_of_an_unmapped_address_drops_nothing() {
    let mut m = machine();
    m.mmu.invlpg(&mut m.store, Gva(UNMAPPED));
    for va in [LARGE, SMALL] {
        assert_eq!(faults(&mut m, va), 0, "{va:#x}");
    }
    assert!(matches!(
        m.access(DEVICE, READ, 0).result,
        AccessResult::Mmio { cached: true, .. }
    ));
}
