//! Stage-2 translation tables (ARM ARM D8, VMSAv8-64 stage 2, 4 KiB granule, 39-bit IPA,
//! starting at level 1): descriptor encoding and the page-mapping walk, over a trait that gives
//! access to table memory so the logic is host-tested.
//!
//! Every address space in the system is one of these tables: servers' VSpaces (stage 1 off, so
//! VA = IPA) and, later, guests' (DESIGN §3). The kernel's boot-time loader maps server images
//! through [`map_page`]; the mmu-server's fault path will use the same encoder.

/// Bits of a stage-2 leaf descriptor (ARM ARM D8.3, "Stage 2 attributes").
mod bits {
    pub const VALID: u64 = 1 << 0;
    /// Table descriptor at levels 0-2, page descriptor at level 3.
    pub const TABLE_OR_PAGE: u64 = 1 << 1;
    /// MemAttr[3:0] at [5:2]: 0b1111 Normal, Inner+Outer Write-Back cacheable.
    pub const MEMATTR_NORMAL_WB: u64 = 0b1111 << 2;
    /// MemAttr 0b0001: Device-nGnRE.
    pub const MEMATTR_DEVICE_NGNRE: u64 = 0b0001 << 2;
    /// S2AP[1:0] at [7:6]: bit 6 = readable, bit 7 = writable.
    pub const S2AP_READ: u64 = 1 << 6;
    pub const S2AP_WRITE: u64 = 1 << 7;
    /// SH[1:0] at [9:8]: 0b11 Inner Shareable.
    pub const SH_INNER: u64 = 0b11 << 8;
    /// Access flag: set, so no access-flag faults.
    pub const AF: u64 = 1 << 10;
    /// XN (stage 2, ARMv8.0: bit 54): not executable.
    pub const XN: u64 = 1 << 54;
    /// Output address bits [47:12].
    pub const ADDRESS: u64 = 0x0000_FFFF_FFFF_F000;
}

/// Bytes mapped by one level-3 entry.
pub const PAGE_SIZE: u64 = 4096;
/// Entries per table.
pub const ENTRIES: usize = 512;
/// The end of the IPA space (39 bits).
pub const IPA_LIMIT: u64 = 1 << 39;

/// What kind of memory a mapping is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryKind {
    /// Normal write-back cacheable RAM.
    Normal,
    /// Device registers (Device-nGnRE): no speculation, no merging.
    Device,
}

/// Access and memory type of a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attributes {
    /// Writable.
    pub writable: bool,
    /// Executable.
    pub executable: bool,
    /// Memory type.
    pub kind: MemoryKind,
}

/// Table memory: the kernel reaches tables through its identity map, host tests through a map.
pub trait TableMemory {
    /// Reads entry `index` of the table at physical address `table`.
    fn read(&self, table: u64, index: usize) -> u64;
    /// Writes entry `index` of the table at `table`.
    fn write(&mut self, table: u64, index: usize, value: u64);
    /// A zeroed, page-aligned table, or `None` when memory is exhausted.
    fn allocate_table(&mut self) -> Option<u64>;
}

/// Why a mapping could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// The IPA or PA is not page aligned, or the IPA is beyond the 39-bit space.
    BadAddress,
    /// No memory for an intermediate table.
    OutOfTables,
    /// Something else is already mapped there.
    AlreadyMapped,
}

/// Encodes a level-3 page descriptor.
pub const fn page_descriptor(pa: u64, attributes: Attributes) -> u64 {
    let mut descriptor =
        (pa & bits::ADDRESS) | bits::VALID | bits::TABLE_OR_PAGE | bits::AF | bits::S2AP_READ;
    descriptor |= match attributes.kind {
        MemoryKind::Normal => bits::MEMATTR_NORMAL_WB | bits::SH_INNER,
        MemoryKind::Device => bits::MEMATTR_DEVICE_NGNRE,
    };
    if attributes.writable {
        descriptor |= bits::S2AP_WRITE;
    }
    if !attributes.executable || matches!(attributes.kind, MemoryKind::Device) {
        descriptor |= bits::XN;
    }
    descriptor
}

/// Decodes a valid level-3 page descriptor into (PA, attributes).
pub const fn decode_page(descriptor: u64) -> Option<(u64, Attributes)> {
    if descriptor & (bits::VALID | bits::TABLE_OR_PAGE) != (bits::VALID | bits::TABLE_OR_PAGE) {
        return None;
    }
    let kind = if descriptor & (0b1111 << 2) == bits::MEMATTR_NORMAL_WB {
        MemoryKind::Normal
    } else {
        MemoryKind::Device
    };
    Some((
        descriptor & bits::ADDRESS,
        Attributes {
            writable: descriptor & bits::S2AP_WRITE != 0,
            executable: descriptor & bits::XN == 0,
            kind,
        },
    ))
}

fn index_at(ipa: u64, level: u32) -> usize {
    ((ipa >> (12 + 9 * (3 - level))) & (ENTRIES as u64 - 1)) as usize
}

/// Maps the page at `ipa` to `pa` in the table rooted at `root` (a level-1 table), creating
/// intermediate tables as needed. Mapping the same page the same way again is a no-op.
pub fn map_page(
    memory: &mut impl TableMemory,
    root: u64,
    ipa: u64,
    pa: u64,
    attributes: Attributes,
) -> Result<(), MapError> {
    if !ipa.is_multiple_of(PAGE_SIZE) || !pa.is_multiple_of(PAGE_SIZE) || ipa >= IPA_LIMIT {
        return Err(MapError::BadAddress);
    }
    let mut table = root;
    for level in 1..3 {
        let index = index_at(ipa, level);
        let entry = memory.read(table, index);
        table = if entry & bits::VALID == 0 {
            let next = memory.allocate_table().ok_or(MapError::OutOfTables)?;
            memory.write(table, index, next | bits::VALID | bits::TABLE_OR_PAGE);
            next
        } else if entry & bits::TABLE_OR_PAGE == 0 {
            return Err(MapError::AlreadyMapped); // a block covers this page
        } else {
            entry & bits::ADDRESS
        };
    }
    let index = index_at(ipa, 3);
    let wanted = page_descriptor(pa, attributes);
    match memory.read(table, index) {
        0 => {
            memory.write(table, index, wanted);
            Ok(())
        }
        existing if existing == wanted => Ok(()),
        _ => Err(MapError::AlreadyMapped),
    }
}

/// Walks the table at `root` for `ipa`: the PA of the page and its attributes.
pub fn translate(memory: &impl TableMemory, root: u64, ipa: u64) -> Option<(u64, Attributes)> {
    if ipa >= IPA_LIMIT {
        return None;
    }
    let mut table = root;
    for level in 1..3 {
        let entry = memory.read(table, index_at(ipa, level));
        if entry & (bits::VALID | bits::TABLE_OR_PAGE) != (bits::VALID | bits::TABLE_OR_PAGE) {
            return None;
        }
        table = entry & bits::ADDRESS;
    }
    decode_page(memory.read(table, index_at(ipa, 3)))
        .map(|(pa, attributes)| (pa + ipa % PAGE_SIZE, attributes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Tables {
        entries: HashMap<(u64, usize), u64>,
        next: u64,
        limit: u64,
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
}
