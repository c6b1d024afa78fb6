//! Write-protection of guest tables: partial and misaligned writes, flood zapping, INVLPG,
//! flushes, slot removal and pool exhaustion.

use super::helpers::*;
use crate::shadow::pte::{A, D, P, RW};
use crate::shadow::{FLOOD_WRITES, Gpa, Gva, Hpa, PageSize, SlotChange};
use crate::testing::AccessResult;

const VA: u64 = 0x20_0000;
/// Where the guest maps its page table (through other tables, as Linux's direct map does).
const TABLE_VA: u64 = 0x4000_0000;

/// A guest with one page table mapping VA+0..VA+8 pages to GPA 0x100_0000 + i pages, with the
/// page table itself mapped at `TABLE_VA` so the guest can write it.
fn guest() -> (Guest, u64, u64) {
    let mut g = Guest::new();
    let pml4 = g.table();
    for i in 0..8 {
        g.map(
            pml4,
            VA + i * 0x1000,
            0x100_0000 + i * 0x1000,
            PageSize::Size4K,
            URW | A | D,
        );
    }
    let pt = g.entry_gpa(pml4, VA, 1) & !0xfff;
    g.map(pml4, TABLE_VA, pt, PageSize::Size4K, URW);
    (g, pml4, pt)
}

fn hpa_of(gpa: u64) -> Hpa {
    Hpa(HOST_BASE + gpa)
}

#[test]
fn partial_and_misaligned_writes_update_exactly_the_entries_touched() {
    let (g, pml4, pt) = guest();
    let mut m = g.boot::<64>(pml4);
    for i in 0..4 {
        run_checked(&mut m, VA + i * 0x1000, WRITE, 0);
    }
    // 4-byte write of the low half of PTE 0: new frame, same flags. The shadow follows without
    // a fault (the level-1 entry is recomputed in place).
    let pte0 = m.mem.peek_u64(Gpa(pt)).unwrap();
    let new0 = (pte0 & !0xffff_f000) | 0x300_0000;
    let low = (new0 as u32).to_le_bytes();
    let out = m.mmu.guest_write(&mut m.mem, &mut m.store, Gpa(pt), &low);
    assert_eq!((out.tables_updated, out.entries_updated), (1, 1));
    let hw = m.hw_translate(VA, READ).unwrap();
    assert_eq!(Hpa(hw.pa), hpa_of(0x300_0000));

    // 8 bytes at offset 12: the high half of PTE 1 and the low half of PTE 2. Clear P of PTE 2.
    let pte2 = m.mem.peek_u64(Gpa(pt + 16)).unwrap();
    let mut bytes = [0u8; 8];
    bytes[..4].copy_from_slice(&m.mem.peek_u64(Gpa(pt + 8)).unwrap().to_le_bytes()[4..]);
    bytes[4..].copy_from_slice(&((pte2 & !P) as u32).to_le_bytes());
    let out = m
        .mmu
        .guest_write(&mut m.mem, &mut m.store, Gpa(pt + 12), &bytes);
    assert_eq!(out.entries_updated, 2);
    assert!(
        m.hw_translate(VA + 0x1000, READ).is_ok(),
        "PTE 1 unchanged, still mapped"
    );
    assert!(
        m.hw_translate(VA + 0x2000, READ).is_err(),
        "PTE 2 now not present"
    );
    assert_eq!(
        run_checked(&mut m, VA + 0x2000, READ, 0),
        AccessResult::Injected { error_code: 0 }
    );

    // A 1-byte write clearing RW of PTE 3: the writable shadow leaf loses RW at once.
    assert!(m.hw_translate(VA + 0x3000, WRITE).is_ok());
    let b = (m.mem.peek_u64(Gpa(pt + 24)).unwrap() & !RW) as u8;
    m.mmu
        .guest_write(&mut m.mem, &mut m.store, Gpa(pt + 24), &[b]);
    assert!(m.hw_translate(VA + 0x3000, WRITE).is_err());
    assert!(m.mmu.take_tlb_flush());
    for i in 0..8 {
        check_va(&m, VA + i * 0x1000).unwrap();
    }
}

#[test]
fn clearing_accessed_or_dirty_bits_is_seen_by_the_next_access() {
    let (g, pml4, pt) = guest();
    let mut m = g.boot::<64>(pml4);
    run_checked(&mut m, VA, WRITE, 0);
    let pte = m.mem.peek_u64(Gpa(pt)).unwrap();
    // The guest clears D (e.g. after writing the page back): the shadow must stop allowing
    // writes so that the next write sets D again.
    m.mmu
        .guest_write(&mut m.mem, &mut m.store, Gpa(pt), &(pte & !D).to_le_bytes());
    assert!(m.hw_translate(VA, WRITE).is_err());
    assert!(m.hw_translate(VA, READ).is_ok());
    run_checked(&mut m, VA, WRITE, 0);
    assert_ne!(m.mem.peek_u64(Gpa(pt)).unwrap() & D, 0, "D set again");
    // Clearing A drops the entry; the next access sets A.
    m.mmu.guest_write(
        &mut m.mem,
        &mut m.store,
        Gpa(pt),
        &(pte & !(A | D)).to_le_bytes(),
    );
    assert!(m.hw_translate(VA, READ).is_err());
    run_checked(&mut m, VA, READ, 0);
    assert_ne!(m.mem.peek_u64(Gpa(pt)).unwrap() & A, 0, "A set again");
    check_va(&m, VA).unwrap();
}

#[test]
fn flooded_table_is_zapped_and_unprotected_then_reprotected_on_use() {
    let (g, pml4, pt) = guest();
    let mut m = g.boot::<64>(pml4);
    run_checked(&mut m, VA, READ, 0);
    assert!(m.mmu.is_write_protected(hpa_of(pt)));
    // The guest writes its page table through the mapping at VA + 1 MiB.
    let table_va = TABLE_VA + 8 * 100; // entry 100, unused by the walks
    for i in 0..u64::from(FLOOD_WRITES) {
        let r = run_checked(&mut m, table_va, WRITE, i);
        assert!(
            matches!(r, AccessResult::Emulated { .. }),
            "write {i}: {r:?}"
        );
    }
    assert_eq!(m.mmu.stats().flood_zaps, 1);
    assert!(!m.mmu.is_write_protected(hpa_of(pt)));
    // Further writes run at full speed through a writable mapping.
    let r = run_checked(&mut m, table_va, WRITE, 0x55);
    assert!(matches!(r, AccessResult::Done { .. }), "{r:?}");
    assert_eq!(m.access(table_va, WRITE, 0x66).faults, 0);
    // A walk through the table shadows and protects it again (dropping that writable mapping).
    run_checked(&mut m, VA + 0x4000, READ, 0);
    assert!(m.mmu.is_write_protected(hpa_of(pt)));
    assert!(m.hw_translate(table_va, WRITE).is_err());
    for va in [VA, VA + 0x4000, table_va] {
        check_va(&m, va).unwrap();
    }
}

#[test]
fn interleaved_walks_keep_the_table_protected() {
    let (g, pml4, pt) = guest();
    let mut m = g.boot::<64>(pml4);
    let table_va = TABLE_VA + 8 * 100;
    for i in 0..10u64 {
        // Each fault through the table resets its flood count; writes stay emulated.
        m.mmu.invlpg(&mut m.store, Gva(VA));
        run_checked(&mut m, VA, READ, 0);
        let r = run_checked(&mut m, table_va, WRITE, i);
        assert!(matches!(r, AccessResult::Emulated { .. }), "{i}: {r:?}");
    }
    assert_eq!(m.mmu.stats().flood_zaps, 0);
    assert!(m.mmu.is_write_protected(hpa_of(pt)));
}

#[test]
fn invlpg_flush_and_slot_removal() {
    let (g, pml4, _) = guest();
    let mut m = g.boot::<64>(pml4);
    run_checked(&mut m, VA, READ, 0);
    assert_eq!(m.access(VA, READ, 0).faults, 0);
    m.mmu.invlpg(&mut m.store, Gva(VA));
    assert_eq!(m.access(VA, READ, 0).faults, 1);
    m.mmu.flush_all(&mut m.store);
    assert_eq!(m.mmu.pages_in_use(), 1, "only the (empty) root stays");
    assert_eq!(m.store.nonzero_entries(), 0);
    assert_eq!(m.access(VA, READ, 0).faults, 1);
    // Remove the RAM slot and re-add it elsewhere in host memory: everything is dropped, and
    // the next access maps the new backing.
    m.mem.remove_slot(Gpa(0));
    m.mem
        .add_slot(Gpa(0), RAM_BYTES, Hpa(HOST_BASE + (16 << 30)), false);
    m.mmu
        .memslots_changed(&mut m.mem, &mut m.store, SlotChange::RemovedOrMoved);
    assert!(m.mmu.is_write_protected(Hpa(HOST_BASE + (16 << 30) + pml4)));
    // (The new backing is empty memory: the guest's tables are gone, so this faults in the guest.)
    assert_eq!(
        run_checked(&mut m, VA, READ, 0),
        AccessResult::Injected { error_code: 0 }
    );
}

#[test]
fn tiny_pool_evicts_instead_of_failing() {
    // 40 page tables, 8 shadow pages: every access still resolves correctly in one fault.
    let mut g = Guest::new();
    let pml4 = g.table();
    let vas: alloc::vec::Vec<u64> = (0..40u64).map(|i| (i << 30) | (i << 21) | 0x3000).collect();
    for (i, &va) in vas.iter().enumerate() {
        g.map(
            pml4,
            va,
            0x100_0000 + ((i as u64) << 12),
            PageSize::Size4K,
            URW,
        );
    }
    let mut m = g.boot::<8>(pml4);
    for round in 0..3 {
        for &va in &vas {
            let r = run_checked(&mut m, va, if round == 1 { WRITE } else { READ }, 0);
            assert!(matches!(r, AccessResult::Done { .. }), "{r:?}");
        }
    }
    assert!(m.mmu.stats().evictions > 0);
    assert!(m.mmu.pages_in_use() <= 8);
    for &va in &vas {
        check_va(&m, va).unwrap();
    }
}
