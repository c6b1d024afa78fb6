//! Stage-2 translation tables (ARM ARM D8, VMSAv8-64 stage 2, 4 KiB granule, 39-bit IPA,
//! starting at level 1): descriptor encoding, the walks that map and unmap, and the prejudgement
//! that decides how a change to a live table is made safely (docs/DESIGN.md, "Stage-2 fault
//! prejudgement and dirty-on-success"; docs/MMU-STAGE2.md).
//!
//! Every address space in the system is one of these tables: servers' VSpaces (stage 1 off, so
//! VA = IPA) and guests' (docs/DESIGN.md, "Privilege split"). The kernel's boot-time loader
//! maps server images through [`map_page`] into fresh tables, where nothing can be cached yet.
//! Changes to live tables go through [`map`], [`unmap`], [`unmap_frame`] and [`write_protect`]:
//! each walks and decides without touching a live descriptor's TLB-visible state, and returns a
//! [`Plan`] of writes, barriers and TLB invalidations in the order the architecture requires,
//! which the kernel runs with [`apply`] (a step that cannot fail). Host tests run the same plans
//! over in-memory tables.
//!
//! Submodules: [`descriptor`] (levels, sizes, block and table descriptors, decoding),
//! [`prejudge`] (the action table and TLB plans), [`walk`] (map, unmap, write-protect),
//! [`marker`] (MMIO markers: read, install, zap; docs/MMIO.md).
//!
//! Invariants: no allocation, no `unsafe`; table pages are only ever allocated through
//! [`TableMemory::allocate_table`] and handed back to the caller for freeing, never freed here;
//! a descriptor that may be cached in a TLB is never overwritten with a different output address
//! or memory type without break-before-make (ARM ARM D8.14).

pub mod descriptor;
pub mod marker;
pub mod prejudge;
pub mod walk;

pub use descriptor::{Entry, Level, PageSize, block_descriptor, decode, leaf_descriptor};
pub use prejudge::{Action, Plan, Removed, Step, TlbOp, prejudge};
pub use walk::{
    MapOutcome, RemovedTable, UnmapOutcome, WRITE_PROTECT_BUDGET, WriteProtectOutcome, apply, map,
    tables_under, unmap, unmap_frame, write_protect, write_protect_bounded,
};

/// Bits of a stage-2 leaf descriptor (ARM ARM D8.3, "Stage 2 attributes").
mod bits {
    /// Bits [1:0] of a descriptor: valid, and table-or-page (1) versus block (0).
    pub const TYPE: u64 = 0b11;
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
    /// The permission fields: S2AP[7:6] and XN[54:53] (bit 53 is XN[0] with FEAT_XNX, RES0
    /// before). A change confined to these may be made in place (ARM ARM D8.14).
    pub const PERMISSIONS: u64 = S2AP_READ | S2AP_WRITE | (0b11 << 53);
    /// MemAttr[3:0] at [5:2].
    pub const MEMATTR: u64 = 0b1111 << 2;
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
    /// Takes back a table that was allocated but never linked into a table (a walk that ran out
    /// of memory half-way). The default keeps it allocated: a leak, harmless at boot.
    fn free_table(&mut self, table: u64) {
        let _ = table;
    }
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
    /// A larger block covers the range, and the operation would have to split it.
    WouldSplitBlock,
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
    let kind = if descriptor & bits::MEMATTR == bits::MEMATTR_NORMAL_WB {
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

/// Walks the table at `root` for `ipa`: the PA of the byte at `ipa` and the attributes of the
/// page or block that maps it.
pub fn translate(memory: &impl TableMemory, root: u64, ipa: u64) -> Option<(u64, Attributes)> {
    if ipa >= IPA_LIMIT {
        return None;
    }
    let mut table = root;
    for level in Level::ALL {
        match decode(memory.read(table, index_at(ipa, level as u32)), level) {
            Entry::Invalid => return None,
            Entry::Table(next) => table = next,
            Entry::Leaf {
                pa,
                size,
                attributes,
            } => return Some((pa + ipa % size.bytes(), attributes)),
        }
    }
    None
}

#[cfg(test)]
mod tests;
