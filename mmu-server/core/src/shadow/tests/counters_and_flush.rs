//! What the engine reports besides fault outcomes: the `Stats` counters, the number of pool
//! pages in use, and the TLB-flush request the port acts on (raised only when a present shadow
//! entry changed, cleared by taking it).

use super::helpers::*;
use crate::shadow::pte::{A, D};
use crate::shadow::{Gva, PageSize, Stats};
use crate::testing::{AccessResult, Machine};

const VA: u64 = 0x20_0000;
/// Not mapped in the guest (same page table as `VA`).
const HOLE: u64 = VA + 0x1000;
/// Mapped to MMIO (same page table as `VA`).
const DEVICE: u64 = VA + 0x2000;

/// A guest with one RAM page, one hole and one MMIO page under a single page table, and a
/// second address space `other` mapping nothing.
fn guest() -> (Machine<64>, u64, u64) {
    let mut g = Guest::new();
    let pml4 = g.table();
    let other = g.table();
    g.map(pml4, VA, 0x100_0000, PageSize::Size4K, URW | A | D);
    g.map(pml4, DEVICE, MMIO_GPA, PageSize::Size4K, URW | A | D);
    (g.boot::<64>(pml4), pml4, other)
}

#[test]
fn stats_count_faults_walks_injections_mmio_tables_and_root_switches() {
    let (mut m, pml4, other) = guest();
    assert_eq!(m.mmu.pages_in_use(), 1, "the root");
    assert!(matches!(
        run_checked(&mut m, VA, READ, 0),
        AccessResult::Done { .. }
    ));
    assert_eq!(m.mmu.pages_in_use(), 4, "root, PDPT, PD and PT shadows");
    assert_eq!(
        run_checked(&mut m, HOLE, READ, 0),
        AccessResult::Injected { error_code: 0 }
    );
    assert!(matches!(
        run_checked(&mut m, DEVICE, WRITE, 1),
        AccessResult::Mmio { cached: false, .. }
    ));
    assert!(matches!(
        run_checked(&mut m, DEVICE, READ, 0),
        AccessResult::Mmio { cached: true, .. }
    ));
    let mode = m.mode;
    m.set_root(other, mode).unwrap();
    m.set_root(pml4, mode).unwrap();
    assert_eq!(
        *m.mmu.stats(),
        Stats {
            faults: 4,
            guest_walks: 3,
            mmio_cached: 1,
            mmio_slow: 1,
            injected: 1,
            // Root, PDPT, PD, PT, then the second root.
            pages_created: 5,
            evictions: 0,
            flood_zaps: 0,
            write_protects: 5,
            root_hits: 1,
            root_misses: 1,
            mmio_wraps: 0,
        }
    );
    assert_eq!(m.mmu.pages_in_use(), 5);
    m.mmu.flush_all(&mut m.store);
    assert_eq!(m.mmu.pages_in_use(), 1);
}

#[test]
fn filling_empty_entries_requests_no_tlb_flush_and_taking_clears_the_request() {
    let (mut m, _, _) = guest();
    assert!(m.mmu.take_tlb_flush(), "a new engine asks for one flush");
    assert!(!m.mmu.take_tlb_flush(), "taken: cleared");
    // The first fault builds the path and the leaf in empty entries: nothing cached to remove.
    run_checked(&mut m, VA, READ, 0);
    assert!(!m.mmu.take_tlb_flush());
    // A second fault through the same path reuses its links as they are.
    run_checked(&mut m, HOLE, READ, 0);
    run_checked(&mut m, DEVICE, READ, 0);
    assert!(!m.mmu.take_tlb_flush(), "links and leaves untouched");
    // Removing a present entry does need one, once.
    m.mmu.invlpg(&mut m.store, Gva(VA));
    assert!(m.mmu.take_tlb_flush());
    assert!(!m.mmu.take_tlb_flush());
    check_va(&m, VA).unwrap();
}
