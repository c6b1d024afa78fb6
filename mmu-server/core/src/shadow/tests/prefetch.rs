//! What an emulated write to a shadowed page table does to the shadow entry it changes: the
//! level-1 leaf is recomputed at once (a prefetch), never writable onto ROM or onto a guest
//! table; and what it reports, including the flood zap on the third write without a walk.

use super::helpers::*;
use crate::shadow::pte::{A, D};
use crate::shadow::{FLOOD_WRITES, Gpa, Hpa, PageSize, WriteOutcome};
use crate::testing::{AccessResult, Machine};

const VA: u64 = 0x20_0000;
/// A read-only slot (ROM), outside RAM.
const ROM_GPA: u64 = 0x2_0000_0000;

/// A guest whose page table for `VA` is shadowed (after one access); returns the machine and the
/// page table's GPA.
fn shadowed_table() -> (Machine<64>, u64) {
    let mut g = Guest::new();
    g.mem
        .add_slot(Gpa(ROM_GPA), 1 << 20, Hpa(HOST_BASE + (32 << 30)), true);
    let pml4 = g.table();
    g.map(pml4, VA, 0x100_0000, PageSize::Size4K, URW | A | D);
    let pt = g.entry_gpa(pml4, VA, 1) & !0xfff;
    let mut m = g.boot::<64>(pml4);
    run_checked(&mut m, VA, READ, 0);
    assert!(m.mmu.is_write_protected(Hpa(HOST_BASE + pt)));
    (m, pt)
}

fn write_pte(m: &mut Machine<64>, pt: u64, index: u64, value: u64) -> WriteOutcome {
    m.mmu.guest_write(
        &mut m.mem,
        &mut m.store,
        Gpa(pt + 8 * index),
        &value.to_le_bytes(),
    )
}

#[test]
fn a_dirty_writable_pte_onto_rom_or_a_page_table_is_prefetched_read_only() {
    let (mut m, pt) = shadowed_table();
    let (onto_table, onto_rom) = (VA + 0x1000, VA + 0x2000);
    write_pte(&mut m, pt, 1, pt | URW | A | D);
    write_pte(&mut m, pt, 2, ROM_GPA | URW | A | D);
    for (va, host) in [
        (onto_table, HOST_BASE + pt),
        (onto_rom, HOST_BASE + (32 << 30)),
    ] {
        let read = m.access(va, READ, 0);
        assert_eq!(
            (read.faults, read.result),
            (
                0,
                AccessResult::Done {
                    hpa: Hpa(host),
                    shadow_level: 1
                }
            ),
            "{va:#x}: prefetched, readable"
        );
        assert!(m.hw_translate(va, WRITE).is_err(), "{va:#x}: not writable");
        check_va(&m, va).unwrap();
    }
}

#[test]
fn the_write_that_floods_a_table_reports_the_zap() {
    let (mut m, pt) = shadowed_table();
    let entry = m.mem.peek_u64(Gpa(pt)).unwrap();
    for n in 1..FLOOD_WRITES {
        let out = write_pte(&mut m, pt, 0, entry);
        assert_eq!(
            out,
            WriteOutcome {
                written: true,
                tables_updated: 1,
                entries_updated: 1,
                flood_zapped: 0
            },
            "write {n}"
        );
    }
    let out = write_pte(&mut m, pt, 0, entry);
    assert_eq!(
        out,
        WriteOutcome {
            written: true,
            tables_updated: 0,
            entries_updated: 0,
            flood_zapped: 1
        }
    );
    assert_eq!(m.mmu.stats().flood_zaps, 1);
}
