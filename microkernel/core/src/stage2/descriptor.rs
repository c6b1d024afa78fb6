//! Stage-2 descriptors at every level: levels, mapping sizes, block and table descriptors, and
//! one decoder that says what an entry is (ARM ARM D8.3, "Translation table descriptor formats").
//!
//! With a 4 KiB granule and a walk starting at level 1, bits [1:0] of an entry are: `0b00` or
//! `0b10` invalid (the rest is ignored by hardware and free for software: where the stage-2
//! MMIO markers live, [`crate::mmio`], docs/MMIO.md); `0b11` a
//! table at levels 1 and 2 and a page at level 3; `0b01` a block at levels 1 (1 GiB) and 2
//! (2 MiB), and reserved (treated as invalid) at level 3.
//! A leaf's attributes are encoded the same way at every level.

use super::{Attributes, ENTRIES, MemoryKind, bits, page_descriptor};

/// A level of the walk (the root is level 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// 1 GiB per entry; entries are tables or 1 GiB blocks.
    One = 1,
    /// 2 MiB per entry; entries are tables or 2 MiB blocks.
    Two = 2,
    /// 4 KiB per entry; entries are pages.
    Three = 3,
}

impl Level {
    /// The levels in walk order.
    pub const ALL: [Level; 3] = [Level::One, Level::Two, Level::Three];

    /// Bytes one entry at this level covers.
    pub const fn entry_bytes(self) -> u64 {
        1 << self.shift()
    }

    /// log2 of [`Level::entry_bytes`].
    pub const fn shift(self) -> u32 {
        12 + 9 * (3 - self as u32)
    }

    /// The next level down, or `None` at level 3.
    pub const fn next(self) -> Option<Level> {
        match self {
            Level::One => Some(Level::Two),
            Level::Two => Some(Level::Three),
            Level::Three => None,
        }
    }

    /// The index of `ipa`'s entry in a table at this level.
    pub const fn index(self, ipa: u64) -> usize {
        ((ipa >> self.shift()) & (ENTRIES as u64 - 1)) as usize
    }
}

/// The size of a leaf mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PageSize {
    /// A level-3 page.
    Size4K,
    /// A level-2 block.
    Size2M,
    /// A level-1 block.
    Size1G,
}

impl PageSize {
    /// Bytes mapped.
    pub const fn bytes(self) -> u64 {
        self.level().entry_bytes()
    }

    /// The level whose entry maps this size.
    pub const fn level(self) -> Level {
        match self {
            PageSize::Size4K => Level::Three,
            PageSize::Size2M => Level::Two,
            PageSize::Size1G => Level::One,
        }
    }

    /// The size a leaf at `level` maps.
    pub const fn at(level: Level) -> PageSize {
        match level {
            Level::One => PageSize::Size1G,
            Level::Two => PageSize::Size2M,
            Level::Three => PageSize::Size4K,
        }
    }
}

/// What an entry is, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// Not valid: never cached by a TLB or walk cache (software bits may be set).
    Invalid,
    /// A table at the next level, at this physical address.
    Table(u64),
    /// A page or block.
    Leaf {
        /// Output address (aligned to `size`).
        pa: u64,
        /// Size mapped.
        size: PageSize,
        /// Access and memory type.
        attributes: Attributes,
    },
}

/// Encodes a block descriptor (level 1 or 2; `pa` is aligned down to the block size).
pub const fn block_descriptor(pa: u64, level: Level, attributes: Attributes) -> u64 {
    let page = page_descriptor(pa, attributes);
    let mask = !(level.entry_bytes() - 1);
    (page & !bits::TABLE_OR_PAGE & !bits::ADDRESS) | (pa & bits::ADDRESS & mask)
}

/// Encodes a leaf of `size` mapping `pa` (a page at level 3, a block above).
pub const fn leaf_descriptor(pa: u64, size: PageSize, attributes: Attributes) -> u64 {
    match size {
        PageSize::Size4K => page_descriptor(pa, attributes),
        PageSize::Size2M | PageSize::Size1G => block_descriptor(pa, size.level(), attributes),
    }
}

/// Encodes a table descriptor pointing at the table at `table`.
pub const fn table_descriptor(table: u64) -> u64 {
    (table & bits::ADDRESS) | bits::VALID | bits::TABLE_OR_PAGE
}

/// Decodes an entry found at `level`.
pub const fn decode(descriptor: u64, level: Level) -> Entry {
    let address = descriptor & bits::ADDRESS;
    let leaf_size = match (descriptor & bits::TYPE, level) {
        (0b11, Level::Three) => PageSize::Size4K,
        (0b11, _) => return Entry::Table(address),
        (0b01, Level::One) => PageSize::Size1G,
        (0b01, Level::Two) => PageSize::Size2M,
        _ => return Entry::Invalid,
    };
    let kind = if descriptor & bits::MEMATTR == bits::MEMATTR_NORMAL_WB {
        MemoryKind::Normal
    } else {
        MemoryKind::Device
    };
    Entry::Leaf {
        pa: address & !(leaf_size.bytes() - 1),
        size: leaf_size,
        attributes: Attributes {
            writable: descriptor & bits::S2AP_WRITE != 0,
            executable: descriptor & bits::XN == 0,
            kind,
        },
    }
}

/// The descriptor with its write permission removed (S2AP[1] cleared).
pub const fn without_write(descriptor: u64) -> u64 {
    descriptor & !bits::S2AP_WRITE
}

/// Whether `descriptor` is a valid leaf at `level` (a page, or a block above level 3).
pub const fn is_leaf(descriptor: u64, level: Level) -> bool {
    matches!(decode(descriptor, level), Entry::Leaf { .. })
}
