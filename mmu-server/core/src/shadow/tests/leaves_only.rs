//! Write-protecting a host frame changes shadow *leaves* only. A link's address field names a
//! pool table and an MMIO entry's upper bits hold a guest frame and a generation; neither is a
//! mapping, so neither may be dropped or edited because those bits happen to fall on (or around)
//! the frame being protected. Both tests place host memory so that they do.

use super::helpers::*;
use crate::shadow::pte::{A, D};
use crate::shadow::{Gpa, Hpa, PageSize, ShadowTableStore, TableId};
use crate::testing::{AccessResult, FakeTableStore};

/// Guest RAM at GPA 0 (4 GiB) backed from `host` instead of the helpers' default.
fn guest_backed_at(host: u64) -> Guest {
    let mut g = Guest::new();
    g.mem.remove_slot(Gpa(0));
    g.mem.add_slot(Gpa(0), RAM_BYTES, Hpa(host), false);
    g
}

#[test]
fn links_are_kept_when_guest_tables_lie_near_the_shadow_pool() {
    // Guest RAM 2 MiB above the pool: the same 1 GiB and 512 GiB regions as the tables the
    // PML4 and PDPT links point at.
    let pool = FakeTableStore::new(1).table_hpa(TableId(0)).0;
    let mut g = guest_backed_at(pool + (2 << 20));
    let pml4 = g.table();
    let vas = [0x40_0000u64, 0x80_0000_0000, 0x1_4000_0000];
    for (i, &va) in vas.iter().enumerate() {
        g.map(
            pml4,
            va,
            0x100_0000 + (i as u64) * 0x1000,
            PageSize::Size4K,
            URW | A | D,
        );
    }
    let mut m = g.boot::<64>(pml4);
    for &va in &vas {
        // `run_checked` fails if the access needs more than one `Fixed` fault: a link of the
        // walk dropped while the fault made the next table of the same walk.
        let r = run_checked(&mut m, va, WRITE, 1);
        assert!(matches!(r, AccessResult::Done { .. }), "{va:#x}: {r:?}");
    }
    for &va in &vas {
        assert_eq!(m.access(va, READ, 0).faults, 0, "{va:#x} still mapped");
        check_va(&m, va).unwrap();
    }
}

#[test]
fn an_mmio_entry_whose_bits_spell_a_protected_frame_is_left_alone() {
    // An MMIO entry holds its guest frame in bits 63:24 and the generation's low bits from bit 5
    // up: with a small generation, bits 51:12 read as `gfn << 12`, i.e. host address
    // `gfn << 24`. Back RAM at 16 TiB so that the frame after RAM (GPA 4 GiB + 4 KiB, MMIO)
    // spells the host address of GPA 16 MiB, a RAM page that later becomes a guest table.
    let host = 1u64 << 44;
    let table_gpa = 0x100_0000u64;
    let mmio_gpa = ((host + table_gpa) >> 24) << 12;
    assert_eq!(mmio_gpa, RAM_BYTES + 0x1000);
    let mut g = guest_backed_at(host);
    let pml4 = g.table();
    let va = 0x7000_0000u64;
    g.map(pml4, va, mmio_gpa, PageSize::Size4K, URW | A | D);
    let mut m = g.boot::<64>(pml4);
    assert!(matches!(
        run_checked(&mut m, va, READ, 0),
        AccessResult::Mmio { cached: false, .. }
    ));
    // A second address space whose root lives at `table_gpa`: switching to it protects it.
    for i in 0..512u64 {
        let entry = m.mem.peek_u64(Gpa(pml4 + i * 8)).unwrap();
        m.mem.poke_u64(Gpa(table_gpa + i * 8), entry);
    }
    let mode = m.mode;
    m.set_root(table_gpa, mode).unwrap();
    assert!(m.mmu.is_write_protected(Hpa(host + table_gpa)));
    m.set_root(pml4, mode).unwrap();
    assert_eq!(
        run_checked(&mut m, va, READ, 0),
        AccessResult::Mmio {
            gpa: Gpa(mmio_gpa),
            cached: true
        },
        "the MMIO entry survived"
    );
}
