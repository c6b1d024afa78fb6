//! The root cache hits for equal roles and misses for every role change.

use super::helpers::*;
use crate::shadow::role::{ROLE_BITS, Role};
use crate::shadow::{CpuMode, PageSize, RootLoad};
use crate::testing::{AccessResult, Machine};

/// Two guest address spaces with different mappings for one VA.
fn two_spaces() -> (Guest, u64, u64) {
    let mut g = Guest::new();
    let a = g.table();
    let b = g.table();
    g.map(a, 0x40_0000, 0x100_0000, PageSize::Size4K, URW | (1 << 6));
    g.map(b, 0x40_0000, 0x200_0000, PageSize::Size4K, URW | (1 << 6));
    (g, a, b)
}

fn done_at(m: &mut Machine<64>, va: u64) -> (u64, u32) {
    let report = m.access(va, READ, 0);
    match report.result {
        AccessResult::Done { hpa, .. } => (hpa.0 - HOST_BASE, report.faults),
        other => panic!("{other:?}"),
    }
}

#[test]
fn equal_configurations_hit_and_keep_their_shadow() {
    let (g, a, b) = two_spaces();
    let mut m = g.boot::<64>(a);
    assert_eq!(done_at(&mut m, 0x40_0000), (0x100_0000, 1));
    assert_eq!(m.set_root(b, m.mode), Ok(RootLoad::Miss));
    assert_eq!(done_at(&mut m, 0x40_0000), (0x200_0000, 1));
    // Back to A: a hit, and its shadow is intact (no fault).
    assert_eq!(m.set_root(a, m.mode), Ok(RootLoad::CacheHit));
    assert_eq!(done_at(&mut m, 0x40_0000), (0x100_0000, 0));
    assert_eq!(m.set_root(b, m.mode), Ok(RootLoad::CacheHit));
    assert_eq!(done_at(&mut m, 0x40_0000), (0x200_0000, 0));
    // Same root again: a TLB flush for the guest, nothing for us.
    assert_eq!(m.set_root(b, m.mode), Ok(RootLoad::Current));
    // Bits outside the canonical role: CR3.PWT/PCD and, in 4-level paging, CR4.PSE.
    assert_eq!(m.set_root(b | 0x18, m.mode), Ok(RootLoad::Current));
    let mut pse = m.mode;
    pse.cr4_pse = !pse.cr4_pse;
    assert_eq!(m.set_root(a, pse), Ok(RootLoad::CacheHit));
    assert_eq!(m.mmu.stats().root_hits, 3);
}

#[test]
fn every_role_bit_change_misses() {
    type Flip = (&'static str, fn(&mut CpuMode));
    let flips: [Flip; 5] = [
        ("CR0.WP", |m| m.cr0_wp = !m.cr0_wp),
        ("CR4.SMEP", |m| m.cr4_smep = !m.cr4_smep),
        ("CR4.SMAP", |m| m.cr4_smap = !m.cr4_smap),
        ("EFER.NXE", |m| m.efer_nxe = !m.efer_nxe),
        ("CR0.PG", |m| m.cr0_pg = !m.cr0_pg),
    ];
    for (name, flip) in flips {
        let (g, a, _) = two_spaces();
        let mut m = g.boot::<64>(a);
        done_at(&mut m, 0x40_0000);
        let base = m.mode;
        let mut changed = base;
        flip(&mut changed);
        assert_eq!(m.set_root(a, changed), Ok(RootLoad::Miss), "{name}");
        assert_ne!(m.mmu.root_key().role, Role::root(&base).unwrap(), "{name}");
        // The new context builds its own shadow, which is right for it.
        check_va(&m, 0x40_0000).unwrap();
        for access in ALL_ACCESSES {
            run_checked(&mut m, 0x40_0000, access, 0);
        }
        // Flipping back finds the old root.
        assert_eq!(m.set_root(a, base), Ok(RootLoad::CacheHit), "{name}");
    }
}

#[test]
fn each_role_word_bit_is_part_of_the_key() {
    // The cache compares whole words: a root whose role differs in any single bit is another
    // root. (Mode-level flips above show the canonical mapping from control bits to words.)
    let (g, a, _) = two_spaces();
    let m = g.boot::<64>(a);
    let key = m.mmu.root_key();
    for bit in 0..ROLE_BITS {
        let other = Role::from_bits(key.role.bits() ^ (1 << bit));
        assert_ne!(other, key.role, "bit {bit}");
    }
}

#[test]
fn lru_keeps_three_previous_roots() {
    let mut g = Guest::new();
    let roots: [u64; 5] = core::array::from_fn(|_| g.table());
    for (i, &r) in roots.iter().enumerate() {
        g.map(
            r,
            0x40_0000,
            0x100_0000 * (i as u64 + 1),
            PageSize::Size4K,
            URW,
        );
    }
    let mut m = g.boot::<64>(roots[0]);
    let mode = m.mode;
    for &r in &roots[1..4] {
        assert_eq!(m.set_root(r, mode), Ok(RootLoad::Miss));
    }
    // Current roots[3]; cached 2, 1, 0. All three hit, most recent first.
    for &r in &[roots[2], roots[1], roots[0]] {
        assert_eq!(m.set_root(r, mode), Ok(RootLoad::CacheHit));
    }
    // Now current 0, cached 1, 2, 3. A fifth root pushes out the least recent (3).
    assert_eq!(m.set_root(roots[4], mode), Ok(RootLoad::Miss));
    assert_eq!(m.mmu.cached_roots().count(), 3);
    assert_eq!(m.set_root(roots[3], mode), Ok(RootLoad::Miss));
    assert_eq!(m.set_root(roots[1], mode), Ok(RootLoad::CacheHit));
    check_va(&m, 0x40_0000).unwrap();
}
