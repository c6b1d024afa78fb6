//! The bits of the shadow leaves themselves, which the reference walker does not look at: the
//! guest leaf's memory type (PWT, PCD, PAT; PAT moves between bit 12 and bit 7 when the leaf
//! size changes), PS only on large leaves, A preset, D preset exactly when writable.

use super::helpers::*;
use crate::shadow::pte::ADDR_MASK;
use crate::shadow::{Config, CpuMode, PageSize};
use crate::testing::Machine;

// The entry bits, written out from the SDM (Vol. 3 §4.5, Tables 4-19 and 4-20) rather than
// taken from `pte`, so that a wrong constant there cannot agree with itself here.
const P: u64 = 1 << 0;
const RW: u64 = 1 << 1;
const US: u64 = 1 << 2;
const PWT: u64 = 1 << 3;
const PCD: u64 = 1 << 4;
const A: u64 = 1 << 5;
const D: u64 = 1 << 6;
const PS: u64 = 1 << 7;
const PAT_4K: u64 = 1 << 7;
const PAT_LARGE: u64 = 1 << 12;

/// Every bit of a leaf but its frame number (bit 12 is PAT in a large leaf).
const FLAGS: u64 = !ADDR_MASK | PAT_LARGE;

/// The shadow leaf the processor would use for `va` (read from the pool like a page walk).
fn shadow_leaf<const N: usize>(m: &Machine<N>, va: u64) -> (u8, u64) {
    let mut table = m.mmu.root_hpa(&m.store).0;
    for level in (1..=4u8).rev() {
        let index = (va >> (12 + 9 * (u32::from(level) - 1))) & 511;
        let e = m.store.read_phys(table + index * 8).expect("in the pool");
        if level == 1 || e & PS != 0 {
            return (level, e);
        }
        table = e & ADDR_MASK;
    }
    unreachable!()
}

#[test]
fn four_kib_leaves_keep_pwt_pcd_and_pat_at_bit_7() {
    let mut g = Guest::new();
    let pml4 = g.table();
    // PAT on a frame whose bit 12 is clear; no PAT on a frame whose bit 12 is set.
    g.map(
        pml4,
        0x10_0000,
        0x20_0000,
        PageSize::Size4K,
        URW | PWT | PCD | PAT_4K | A | D,
    );
    g.map(pml4, 0x10_1000, 0x20_1000, PageSize::Size4K, URW | PCD | A);
    let mut m = g.boot::<64>(pml4);
    run_checked(&mut m, 0x10_0000, READ, 0);
    run_checked(&mut m, 0x10_1000, READ, 0);
    let (level, e) = shadow_leaf(&m, 0x10_0000);
    assert_eq!(level, 1);
    assert_eq!(e & ADDR_MASK, HOST_BASE + 0x20_0000);
    assert_eq!(
        e & (PWT | PCD | PAT_4K | A | D | RW),
        PWT | PCD | PAT_4K | A | D | RW
    );
    let (_, e) = shadow_leaf(&m, 0x10_1000);
    assert_eq!(e & ADDR_MASK, HOST_BASE + 0x20_1000);
    assert_eq!(
        e & (PWT | PCD | PAT_4K | A | D | RW),
        PCD | A,
        "clean: read-only, D clear; no PAT although address bit 12 is set"
    );
}

#[test]
fn large_leaves_keep_pat_at_bit_12_and_split_ones_move_it_to_bit_7() {
    let mut g = Guest::new();
    let pml4 = g.table();
    let with_pat = URW | PWT | PAT_LARGE | A | D;
    g.map(pml4, 0x4000_0000, 0x40_0000, PageSize::Size2M, with_pat);
    g.map(
        pml4,
        0x4020_0000,
        0x60_0000,
        PageSize::Size2M,
        URW | PCD | A | D,
    );
    let mut m = g.boot::<64>(pml4);
    run_checked(&mut m, 0x4000_3000, READ, 0);
    run_checked(&mut m, 0x4020_3000, READ, 0);
    let (level, e) = shadow_leaf(&m, 0x4000_3000);
    assert_eq!(
        (level, e & ADDR_MASK & !PAT_LARGE),
        (2, HOST_BASE + 0x40_0000)
    );
    assert_eq!(e & FLAGS, P | RW | US | PWT | A | D | PS | PAT_LARGE);
    let (level, e) = shadow_leaf(&m, 0x4020_3000);
    assert_eq!((level, e & ADDR_MASK), (2, HOST_BASE + 0x60_0000));
    assert_eq!(e & (PAT_LARGE | PAT_4K | PWT | PCD), PCD | PS, "no PAT");

    // The same guest page split into 4 KiB shadow leaves (the host maps 4 KiB only).
    let mut g = Guest::new();
    let pml4 = g.table();
    g.map(pml4, 0x4000_0000, 0x40_0000, PageSize::Size2M, with_pat);
    let config = Config {
        host_max_page: PageSize::Size4K,
        ..Config::default()
    };
    let mut m = g.boot_with::<64, 4>(pml4, CpuMode::long_mode(), config);
    run_checked(&mut m, 0x4000_3000, READ, 0);
    let (level, e) = shadow_leaf(&m, 0x4000_3000);
    assert_eq!((level, e & ADDR_MASK), (1, HOST_BASE + 0x40_3000));
    assert_eq!(e & (PAT_4K | PWT | PCD), PWT | PAT_4K, "PAT at bit 7");
}
