//! The fakes and the machine model (`crate::testing`) do what the other tests take for granted:
//! a write the shadow allows lands in guest memory at the translated address, the counters
//! count, a slot ends at its end, and the store answers only for its own tables.

use super::helpers::*;
use crate::shadow::pte::{A, D};
use crate::shadow::{Gfn, Gpa, Hpa, PageSize, ShadowTableStore, TableId};
use crate::testing::FakeTableStore;

#[test]
fn a_write_through_the_shadow_lands_at_the_translated_address() {
    let mut g = Guest::new();
    let pml4 = g.table();
    g.map(pml4, 0x10_0000, 0x20_0000, PageSize::Size4K, URW | A | D);
    let mut m = g.boot::<64>(pml4);
    run_checked(&mut m, 0x10_0000, READ, 0);
    // An unaligned address: the model stores the 8 bytes of the aligned word holding it.
    assert_eq!(m.access(0x10_0123, WRITE, 0x1122_3344).faults, 0);
    assert_eq!(m.mem.peek_u64(Gpa(0x20_0120)), Some(0x1122_3344));
    assert_eq!(m.mem.peek_u64(Gpa(0x20_0000)), Some(0), "nothing elsewhere");
}

#[test]
fn the_fake_memory_counts_reads_and_ends_each_slot_at_its_end() {
    let mut g = Guest::new();
    let pml4 = g.table();
    g.map(pml4, 0x10_0000, 0x20_0000, PageSize::Size4K, URW | A | D);
    let mut m = g.boot::<64>(pml4);
    let reads = m.mem.reads();
    run_checked(&mut m, 0x10_0000, READ, 0);
    assert_eq!(m.mem.reads() - reads, 4, "one guest entry per level");
    assert_eq!(m.mem.slots().len(), 1);
    let last = Gfn((RAM_BYTES >> 12) - 1);
    assert!(m.mem.slot_of(last).is_some());
    assert_eq!(m.mem.slot_of(Gfn(RAM_BYTES >> 12)), None);
    assert_eq!(m.mem.translate(Gpa(RAM_BYTES)), None);
}

#[test]
fn the_fake_store_answers_for_its_own_tables_only() {
    let mut store = FakeTableStore::new(2);
    let first = store.table_hpa(TableId(0));
    let past = store.table_hpa(TableId(2));
    assert_eq!(store.id_of(store.table_hpa(TableId(1))), Some(TableId(1)));
    assert_eq!(store.id_of(past), None, "one past the last table");
    assert_eq!(store.id_of(Hpa(first.0 + 8)), None, "not a table's start");
    assert_eq!(store.read_phys(past.0), None);
    assert_eq!(store.nonzero_entries(), 0);
    store.write_entry(TableId(1), 5, 0x55);
    assert_eq!(
        store.read_phys(store.table_hpa(TableId(1)).0 + 40),
        Some(0x55)
    );
    assert_eq!(store.nonzero_entries(), 1);
}
