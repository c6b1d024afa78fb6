//! The per-table counters of the pool (non-zero entries, writable leaves, large leaves, MMIO
//! entries; shadow/pages.rs) follow every change to a table: leaves and links made by faults,
//! a leaf dropped by INVLPG, RW removed and a large leaf dropped when a frame becomes a guest
//! table, MMIO entries zapped at a generation wrap, everything cleared by a full flush.
//! Write-protection and the wrap skip the tables these counters call empty (shadow/table_ops.rs).

use super::helpers::*;
use crate::shadow::mmio::GEN_BITS;
use crate::shadow::pte::{A, D};
use crate::shadow::{Gva, Hpa, PageSize, RootLoad, SlotChange};
use crate::testing::{AccessResult, Machine};

/// A 4 KiB page, dirty: its leaf is writable.
const DIRTY: u64 = 0x20_0000;
/// Next to `DIRTY` in the same page table, clean: its leaf is read-only.
const CLEAN: u64 = DIRTY + 0x1000;
/// Next again: MMIO.
const DEVICE: u64 = DIRTY + 0x2000;
/// A 2 MiB page in the page directory that links to `DIRTY`'s page table.
const LARGE: u64 = 0x40_0000;
/// The guest frames behind them.
const DIRTY_FRAME: u64 = 0x30_0000;
const LARGE_FRAME: u64 = 0x80_0000;

/// (non-zero, writable leaves, large leaves, MMIO) of the shadow table holding the entry that
/// ends the shadow walk for `va`, as the pool keeps them.
fn counters_at(m: &Machine<64>, va: u64) -> (u16, u16, u16, u16) {
    let (page, _, _) = m.mmu.shadow_terminal(&m.store, Gva(va));
    let meta = m
        .mmu
        .pool
        .get(page)
        .expect("the walk ends in a page in use");
    (
        meta.nonzero,
        meta.writable_leaves,
        meta.large_leaves,
        meta.mmio,
    )
}

fn checked(m: &Machine<64>) {
    if let Err(e) = check_pool_counters(m) {
        panic!("{e}");
    }
}

fn machine() -> Machine<64> {
    let mut g = Guest::new();
    let pml4 = g.table();
    g.map(pml4, DIRTY, DIRTY_FRAME, PageSize::Size4K, URW | A | D);
    g.map(pml4, CLEAN, DIRTY_FRAME + 0x1000, PageSize::Size4K, URW | A);
    g.map(pml4, DEVICE, MMIO_GPA, PageSize::Size4K, URW | A | D);
    g.map(pml4, LARGE, LARGE_FRAME, PageSize::Size2M, URW | A | D);
    g.boot::<64>(pml4)
}

#[test]
fn counters_follow_leaves_links_and_mmio_entries_as_faults_make_them() {
    let mut m = machine();
    checked(&m);
    run_checked(&mut m, DIRTY, WRITE, 1);
    run_checked(&mut m, CLEAN, READ, 0);
    run_checked(&mut m, DEVICE, READ, 0);
    let large = run_checked(&mut m, LARGE + 0x1234, READ, 0);
    assert!(matches!(
        large,
        AccessResult::Done {
            shadow_level: 2,
            ..
        }
    ));
    checked(&m);
    assert_eq!(
        counters_at(&m, DIRTY),
        (3, 1, 0, 1),
        "page table: writable leaf, read-only leaf, MMIO entry"
    );
    assert_eq!(
        counters_at(&m, LARGE),
        (2, 1, 1, 0),
        "page directory: the link (not a leaf) and the writable 2 MiB leaf"
    );
}

#[test]
fn counters_go_down_with_invlpg_write_protection_and_the_generation_wrap() {
    let mut m = machine();
    for (va, access) in [(DIRTY, WRITE), (CLEAN, READ), (DEVICE, READ), (LARGE, READ)] {
        run_checked(&mut m, va, access, 1);
    }

    m.mmu.invlpg(&mut m.store, Gva(DIRTY));
    checked(&m);
    assert_eq!(
        counters_at(&m, CLEAN),
        (2, 0, 0, 1),
        "the writable leaf went"
    );
    run_checked(&mut m, DIRTY, WRITE, 2);
    assert_eq!(counters_at(&m, DIRTY), (3, 1, 0, 1));

    // The dirty page and a frame inside the large page become guest tables (loaded as roots
    // of other address spaces): the 4 KiB leaf loses RW, the 2 MiB leaf goes.
    let (home, mode) = (m.cr3, m.mode);
    for frame in [DIRTY_FRAME, LARGE_FRAME + 0x5000] {
        assert_eq!(m.set_root(frame, mode), Ok(RootLoad::Miss));
        assert!(m.mmu.is_write_protected(Hpa(HOST_BASE + frame)));
    }
    assert_eq!(m.set_root(home, mode), Ok(RootLoad::CacheHit));
    checked(&m);
    assert_eq!(
        counters_at(&m, DIRTY),
        (3, 0, 0, 1),
        "RW removed, leaf kept"
    );
    assert_eq!(
        counters_at(&m, LARGE),
        (1, 0, 0, 0),
        "page directory: only the link"
    );

    // A generation wrap zaps the MMIO entry.
    m.mem.set_generation(1 << GEN_BITS);
    m.mmu
        .memslots_changed(&mut m.mem, &mut m.store, SlotChange::Created);
    checked(&m);
    assert_eq!(counters_at(&m, DIRTY), (2, 0, 0, 0));

    m.mmu.flush_all(&mut m.store);
    checked(&m);
    assert_eq!(counters_at(&m, DIRTY), (0, 0, 0, 0), "the emptied root");
}
