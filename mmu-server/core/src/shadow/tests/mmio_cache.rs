//! MMIO shadow entries, their generation, and the slot searches they save.

use super::helpers::*;
use crate::shadow::mmio::GEN_BITS;
use crate::shadow::pte::{P, RW};
use crate::shadow::{Config, CpuMode, Gpa, GuestMemory, Hpa, PageSize, SlotChange};
use crate::testing::AccessResult;

const VA: u64 = 0x7000_0000;

fn mmio_guest() -> (Guest, u64) {
    let mut g = Guest::new();
    let pml4 = g.table();
    g.map(pml4, VA, MMIO_GPA, PageSize::Size4K, URW);
    g.map(
        pml4,
        VA + 0x1000,
        MMIO_GPA + 0x1000,
        PageSize::Size4K,
        P | RW,
    ); // supervisor only
    (g, pml4)
}

fn mmio(cached: bool, off: u64) -> AccessResult {
    AccessResult::Mmio {
        gpa: Gpa(MMIO_GPA + off),
        cached,
    }
}

#[test]
fn second_fault_is_recognised_without_walk_or_slot_search() {
    let (g, pml4) = mmio_guest();
    let mut m = g.boot::<64>(pml4);
    assert_eq!(run_checked(&mut m, VA + 0x10, WRITE, 7), mmio(false, 0x10));
    let (searches, reads, walks) = (m.mem.searches(), m.mem.reads(), m.mmu.stats().guest_walks);
    for i in 0..10 {
        assert_eq!(run_checked(&mut m, VA + 8 * i, READ, 0), mmio(true, 8 * i));
    }
    assert_eq!(
        m.mem.searches(),
        searches,
        "no slot search on a cached MMIO fault"
    );
    assert_eq!(
        m.mem.reads(),
        reads,
        "no guest table read on a cached MMIO fault"
    );
    assert_eq!(m.mmu.stats().guest_walks, walks);
    assert_eq!(m.mmu.stats().mmio_cached, 10);

    // The cached rights still apply: a user access to the supervisor-only MMIO page takes the
    // slow path and gets the guest's page fault, even once an entry is cached for it.
    assert_eq!(
        run_checked(&mut m, VA + 0x1000, READ, 0),
        mmio(false, 0x1000)
    );
    let r = run_checked(&mut m, VA + 0x1000, UREAD, 0);
    assert!(
        matches!(r, AccessResult::Injected { error_code: 5 }),
        "{r:?}"
    );
}

#[test]
fn without_the_cache_every_mmio_fault_searches() {
    let (g, pml4) = mmio_guest();
    let config = Config {
        mmio_cache: false,
        ..Config::default()
    };
    let mut m = g.boot_with::<64, 4>(pml4, CpuMode::long_mode(), config);
    for _ in 0..3 {
        let before = m.mem.searches();
        assert_eq!(run_checked(&mut m, VA, READ, 0), mmio(false, 0));
        assert!(m.mem.searches() > before);
    }
}

#[test]
fn generation_bump_in_progress_and_wrap() {
    let (g, pml4) = mmio_guest();
    let mut m = g.boot::<64>(pml4);
    assert_eq!(run_checked(&mut m, VA, READ, 0), mmio(false, 0));
    assert_eq!(run_checked(&mut m, VA, READ, 0), mmio(true, 0));

    // A slot change elsewhere bumps the generation: the entry is stale, one slow fault
    // re-caches it.
    m.mem
        .add_slot(Gpa(0x20_0000_0000), 1 << 20, Hpa(0x30_0000_0000), false);
    m.mmu
        .memslots_changed(&mut m.mem, &mut m.store, SlotChange::Created);
    assert_eq!(run_checked(&mut m, VA, READ, 0), mmio(false, 0));
    assert_eq!(run_checked(&mut m, VA, READ, 0), mmio(true, 0));

    // While an update is in progress nothing matches and nothing is stored.
    m.mem.begin_update();
    assert_eq!(run_checked(&mut m, VA, READ, 0), mmio(false, 0));
    assert_eq!(run_checked(&mut m, VA, READ, 0), mmio(false, 0));
    m.mem.end_update();
    assert_eq!(run_checked(&mut m, VA, READ, 0), mmio(false, 0));
    assert_eq!(run_checked(&mut m, VA, READ, 0), mmio(true, 0));

    // Wrap: the generation advances by exactly 2^GEN_BITS, so the stored low bits match again.
    // The epoch change zaps every MMIO entry before anything is trusted.
    let now = m.mem.memslot_generation().value;
    m.mem.set_generation(now + (1 << GEN_BITS));
    assert_eq!(run_checked(&mut m, VA, READ, 0), mmio(false, 0));
    assert_eq!(m.mmu.stats().mmio_wraps, 1);
    assert_eq!(run_checked(&mut m, VA, READ, 0), mmio(true, 0));
}

#[test]
fn a_new_slot_over_a_cached_mmio_address_becomes_ram() {
    let (g, pml4) = mmio_guest();
    let mut m = g.boot::<64>(pml4);
    assert_eq!(run_checked(&mut m, VA, READ, 0), mmio(false, 0));
    assert_eq!(run_checked(&mut m, VA, READ, 0), mmio(true, 0));
    m.mem
        .add_slot(Gpa(MMIO_GPA), 1 << 20, Hpa(0x31_0000_0000), false);
    m.mmu
        .memslots_changed(&mut m.mem, &mut m.store, SlotChange::Created);
    let r = run_checked(&mut m, VA + 8, WRITE, 0);
    assert_eq!(
        r,
        AccessResult::Done {
            hpa: Hpa(0x31_0000_0008),
            shadow_level: 1
        }
    );
}

#[test]
fn read_only_slot_writes_exit_as_mmio() {
    let mut g = Guest::new();
    let pml4 = g.table();
    g.mem
        .add_slot(Gpa(0x10_0000_0000), 1 << 20, Hpa(0x32_0000_0000), true);
    g.map(pml4, VA, 0x10_0000_0000, PageSize::Size4K, URW | (1 << 6));
    let mut m = g.boot::<64>(pml4);
    let r = run_checked(&mut m, VA, READ, 0);
    assert!(matches!(r, AccessResult::Done { .. }), "{r:?}");
    let r = run_checked(&mut m, VA, WRITE, 0);
    assert_eq!(
        r,
        AccessResult::Mmio {
            gpa: Gpa(0x10_0000_0000),
            cached: false
        }
    );
    check_va(&m, VA).unwrap();
}
