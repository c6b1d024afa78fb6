//! Host tests of the stage-2 tables: descriptor encoding at every level, the prejudgement's action
//! table with its exact TLB plans, map / unmap / write-protect over in-memory tables.

use super::*;
use std::collections::HashMap;

#[derive(Default)]
struct Tables {
    entries: HashMap<(u64, usize), u64>,
    next: u64,
    limit: u64,
    freed: std::vec::Vec<u64>,
}

impl TableMemory for Tables {
    fn read(&self, table: u64, index: usize) -> u64 {
        self.entries.get(&(table, index)).copied().unwrap_or(0)
    }
    fn write(&mut self, table: u64, index: usize, value: u64) {
        self.entries.insert((table, index), value);
    }
    fn allocate_table(&mut self) -> Option<u64> {
        (self.next < self.limit).then(|| {
            self.next += 1;
            0x8000_0000 + self.next * PAGE_SIZE
        })
    }
    fn free_table(&mut self, table: u64) {
        self.freed.push(table);
    }
}

const RW_DATA: Attributes = Attributes {
    writable: true,
    executable: false,
    kind: MemoryKind::Normal,
};
const CODE: Attributes = Attributes {
    writable: false,
    executable: true,
    kind: MemoryKind::Normal,
};
const DEVICE: Attributes = Attributes {
    writable: true,
    executable: true,
    kind: MemoryKind::Device,
};

#[test]
fn descriptors_encode_the_architected_bits() {
    // Normal RW data: valid page, MemAttr 1111, S2AP 11, SH 11, AF, XN.
    assert_eq!(page_descriptor(0x4123_4000, RW_DATA), 0x0040_0000_4123_47FF);
    // Code: read-only, executable.
    assert_eq!(page_descriptor(0x4000_0000, CODE), 0x0000_0000_4000_077F);
    // Device: MemAttr 0001, never executable, not shareable-encoded.
    assert_eq!(page_descriptor(0x0900_0000, DEVICE), 0x0040_0000_0900_04C7);
    for attributes in [
        RW_DATA,
        CODE,
        Attributes {
            executable: false,
            ..DEVICE
        },
    ] {
        assert_eq!(
            decode_page(page_descriptor(0x1000, attributes)),
            Some((0x1000, attributes))
        );
    }
}

#[test]
fn map_then_translate_and_refuse_conflicts() {
    let mut tables = Tables {
        limit: 8,
        ..Default::default()
    };
    let root = tables.allocate_table().unwrap();
    map_page(&mut tables, root, 0x20_0000, 0x4100_0000, CODE).unwrap();
    map_page(&mut tables, root, 0x20_1000, 0x4100_5000, RW_DATA).unwrap();
    assert_eq!(
        translate(&tables, root, 0x20_0123),
        Some((0x4100_0123, CODE))
    );
    assert_eq!(
        translate(&tables, root, 0x20_1008),
        Some((0x4100_5008, RW_DATA))
    );
    assert_eq!(translate(&tables, root, 0x20_2000), None);
    assert_eq!(
        map_page(&mut tables, root, 0x20_0000, 0x4100_0000, CODE),
        Ok(()),
        "same mapping again"
    );
    assert_eq!(
        map_page(&mut tables, root, 0x20_0000, 0x4100_1000, CODE),
        Err(MapError::AlreadyMapped)
    );
    assert_eq!(
        map_page(&mut tables, root, 0x20_0800, 0x4100_1000, CODE),
        Err(MapError::BadAddress)
    );
    assert_eq!(
        map_page(&mut tables, root, IPA_LIMIT, 0x4100_1000, CODE),
        Err(MapError::BadAddress)
    );
    // one root + one L2 + one L3 so far; a far IPA needs two more tables
    map_page(&mut tables, root, 0x40_0000_0000, 0x4200_0000, RW_DATA).unwrap();
    assert_eq!(tables.next, 5);
    let mut exhausted = Tables {
        limit: 1,
        ..Default::default()
    };
    let root = exhausted.allocate_table().unwrap();
    assert_eq!(
        map_page(&mut exhausted, root, 0, 0, CODE),
        Err(MapError::OutOfTables)
    );
}

// ---- blocks, prejudgement, map / unmap / write-protect ----

use std::vec::Vec;

mod bounded;
mod edges;
mod prejudge_table;
mod unmap_frame;
mod walks;

const MIB2: u64 = 2 << 20;
const RO_DATA: Attributes = Attributes {
    writable: false,
    executable: false,
    kind: MemoryKind::Normal,
};
const RWX: Attributes = Attributes {
    writable: true,
    executable: true,
    kind: MemoryKind::Normal,
};

fn tables() -> (Tables, u64) {
    let mut tables = Tables {
        limit: 64,
        ..Default::default()
    };
    let root = tables.allocate_table().unwrap();
    (tables, root)
}

/// Runs a plan over the tables; returns the TLB operations executed, in order.
fn run(tables: &mut Tables, plan: &Plan) -> Vec<TlbOp> {
    let mut ops = Vec::new();
    apply(plan, tables, |op| ops.push(op));
    ops
}

fn map_now(
    tables: &mut Tables,
    root: u64,
    ipa: u64,
    pa: u64,
    size: PageSize,
    a: Attributes,
) -> (MapOutcome, Vec<TlbOp>) {
    let outcome = map(tables, root, ipa, pa, size, a).unwrap();
    let ops = run(tables, &outcome.plan);
    (outcome, ops)
}

use TlbOp::{DsbIsh, DsbIshst, Ipas2e1is, Vmalle1is, Vmalls12e1is};

fn by_ipa(ipa: u64, level: Level) -> TlbOp {
    Ipas2e1is { ipa, level }
}

#[test]
fn block_descriptors_encode_and_decode_at_levels_one_and_two() {
    // A 2 MiB block: the page bits with bit 1 clear.
    let block = block_descriptor(0x4020_0000, Level::Two, RW_DATA);
    assert_eq!(block, 0x0040_0000_4020_07FD);
    assert_eq!(
        leaf_descriptor(0x4020_0000, PageSize::Size2M, RW_DATA),
        block
    );
    assert_eq!(
        decode(block, Level::Two),
        Entry::Leaf {
            pa: 0x4020_0000,
            size: PageSize::Size2M,
            attributes: RW_DATA
        }
    );
    // Address bits below the block size are not part of the output address.
    assert_eq!(block_descriptor(0x4020_1000, Level::Two, RW_DATA), block);
    let giant = block_descriptor(0x8000_0000, Level::One, CODE);
    assert_eq!(giant, 0x0000_0000_8000_077D);
    assert_eq!(
        decode(giant, Level::One),
        Entry::Leaf {
            pa: 0x8000_0000,
            size: PageSize::Size1G,
            attributes: CODE
        }
    );
    // Bits [1:0] = 0b01 at level 3 is reserved: invalid. 0b11 above level 3 is a table.
    assert_eq!(decode(block, Level::Three), Entry::Invalid);
    assert_eq!(decode(0x4100_0003, Level::Two), Entry::Table(0x4100_0000));
    assert_eq!(decode(0x4100_0003, Level::One), Entry::Table(0x4100_0000));
    assert_eq!(
        decode(0xABC0_0000_0000_0000, Level::Three),
        Entry::Invalid,
        "software bits, not valid"
    );
    for size in [PageSize::Size4K, PageSize::Size2M, PageSize::Size1G] {
        assert_eq!(PageSize::at(size.level()), size);
        let descriptor = leaf_descriptor(0x4000_0000, size, DEVICE);
        assert!(
            matches!(decode(descriptor, size.level()), Entry::Leaf { size: s, .. } if s == size)
        );
    }
    assert_eq!(Level::Two.index(0x4020_0000), 1);
    assert_eq!(Level::One.index(0x4020_0000), 1);
}
