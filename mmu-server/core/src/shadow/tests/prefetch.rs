//! What an emulated write to a shadowed page table does to the shadow entry it changes: the
//! level-1 leaf is recomputed at once (a prefetch), never writable onto ROM or onto a guest
//! table, with bit 63 read as XD under EFER.NXE and as a reserved bit without it; and what the
//! write reports, including the flood zap on the third write without a walk.

use super::helpers::*;
use crate::shadow::pte::{A, D, XD};
use crate::shadow::{AccessKind, Config, CpuMode, FLOOD_WRITES, Gpa, Hpa, PageSize, WriteOutcome};
use crate::testing::{AccessResult, Machine};

const VA: u64 = 0x20_0000;
/// A read-only slot (ROM), outside RAM.
const ROM_GPA: u64 = 0x2_0000_0000;

/// A guest whose page table for `VA` is shadowed (after one access); returns the machine and the
/// page table's GPA.
fn shadowed_table() -> (Machine<64>, u64) {
    shadowed_table_in(CpuMode::long_mode())
}

fn shadowed_table_in(mode: CpuMode) -> (Machine<64>, u64) {
    let mut g = Guest::new();
    g.mem
        .add_slot(Gpa(ROM_GPA), 1 << 20, Hpa(HOST_BASE + (32 << 30)), true);
    let pml4 = g.table();
    g.map(pml4, VA, 0x100_0000, PageSize::Size4K, URW | A | D);
    let pt = g.entry_gpa(pml4, VA, 1) & !0xfff;
    let mut m = g.boot_with::<64, 4>(pml4, mode, Config::default());
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
fn bit_63_is_execute_disable_with_nxe_and_reserved_without() {
    let fetch = acc(AccessKind::Fetch, false);
    // NXE on: prefetched, readable, not executable.
    let (mut m, pt) = shadowed_table();
    write_pte(&mut m, pt, 1, 0x300_0000 | XD | URW | A | D);
    assert_eq!(m.access(VA + 0x1000, READ, 0).faults, 0, "prefetched");
    assert!(m.hw_translate(VA + 0x1000, fetch).is_err());
    check_va(&m, VA + 0x1000).unwrap();
    // NXE off: a reserved bit. Nothing is prefetched; the access faults with P and RSVD.
    let no_nxe = CpuMode {
        efer_nxe: false,
        ..CpuMode::long_mode()
    };
    let (mut m, pt) = shadowed_table_in(no_nxe);
    write_pte(&mut m, pt, 1, 0x300_0000 | XD | URW | A | D);
    assert!(m.hw_translate(VA + 0x1000, READ).is_err(), "not prefetched");
    assert_eq!(
        run_checked(&mut m, VA + 0x1000, READ, 0),
        AccessResult::Injected { error_code: 0b1001 }
    );
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
