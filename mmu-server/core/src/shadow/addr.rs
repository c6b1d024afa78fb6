//! Address newtypes and page sizes for x86-64 4-level paging.
//!
//! Three address spaces meet in a shadow MMU and mixing them up is the classic bug: the guest's
//! virtual addresses ([`Gva`]), the guest's physical addresses ([`Gpa`], frames [`Gfn`]) and the
//! host's physical addresses ([`Hpa`]) that shadow entries point at. Each gets its own type, and
//! conversions between them exist only where the hardware defines one (an offset split, a frame
//! number), never between spaces.
//!
//! Levels are numbered as in the Intel SDM Vol. 3 §4.5: 4 = PML4, 3 = PDPT, 2 = PD, 1 = PT. A
//! leaf at level 3 maps 1 GiB, at level 2 maps 2 MiB, at level 1 maps 4 KiB.

/// log2 of the base page size.
pub const PAGE_SHIFT: u32 = 12;
/// The base page size, 4 KiB.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// Entries in one paging structure (a 4 KiB table of 8-byte entries).
pub const ENTRIES: usize = 512;

/// A guest virtual (linear) address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gva(pub u64);

/// A guest physical address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gpa(pub u64);

/// A guest physical frame number (a [`Gpa`] shifted right by 12).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gfn(pub u64);

/// A host physical address: what shadow entries point at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hpa(pub u64);

impl Gva {
    /// The 9-bit table index this address selects at `level` (1..=4), SDM §4.5.4.
    pub const fn index(self, level: u8) -> usize {
        ((self.0 >> (PAGE_SHIFT + 9 * (level as u32 - 1))) & 0x1ff) as usize
    }
}

impl Gpa {
    /// The frame containing this address.
    pub const fn gfn(self) -> Gfn {
        Gfn(self.0 >> PAGE_SHIFT)
    }
    /// The byte offset inside the 4 KiB frame.
    pub const fn page_offset(self) -> u64 {
        self.0 & (PAGE_SIZE - 1)
    }
}

impl Gfn {
    /// The first byte of this frame.
    pub const fn gpa(self) -> Gpa {
        Gpa(self.0 << PAGE_SHIFT)
    }
}

impl Hpa {
    /// The host frame number.
    pub const fn frame(self) -> u64 {
        self.0 >> PAGE_SHIFT
    }
}

/// A page size the walk can end in (SDM §4.5.4, Table 4-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PageSize {
    /// 4 KiB, a PTE.
    Size4K,
    /// 2 MiB, a PDE with PS=1.
    Size2M,
    /// 1 GiB, a PDPTE with PS=1.
    Size1G,
}

impl PageSize {
    /// The paging level whose leaf maps this size.
    pub const fn level(self) -> u8 {
        match self {
            PageSize::Size4K => 1,
            PageSize::Size2M => 2,
            PageSize::Size1G => 3,
        }
    }

    /// The size mapped by a leaf at `level`, if such a leaf exists.
    pub const fn from_level(level: u8) -> Option<PageSize> {
        match level {
            1 => Some(PageSize::Size4K),
            2 => Some(PageSize::Size2M),
            3 => Some(PageSize::Size1G),
            _ => None,
        }
    }

    /// Size in bytes.
    pub const fn bytes(self) -> u64 {
        level_bytes(self.level())
    }
}

/// Bytes covered by one entry at `level` (1 → 4 KiB, 2 → 2 MiB, 3 → 1 GiB, 4 → 512 GiB).
pub const fn level_bytes(level: u8) -> u64 {
    PAGE_SIZE << (9 * (level as u32 - 1))
}

/// 4 KiB frames covered by one entry at `level`.
pub const fn level_frames(level: u8) -> u64 {
    1 << (9 * (level as u32 - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_follow_the_sdm_bit_ranges() {
        // PML4 index = bits 47:39, PDPT 38:30, PD 29:21, PT 20:12.
        let gva = Gva((5 << 39) | (6 << 30) | (7 << 21) | (8 << 12) | 0x123);
        assert_eq!(
            [gva.index(4), gva.index(3), gva.index(2), gva.index(1)],
            [5, 6, 7, 8]
        );
        assert_eq!(level_bytes(2), 2 << 20);
        assert_eq!(level_frames(3), 1 << 18);
        assert_eq!(PageSize::from_level(2), Some(PageSize::Size2M));
        assert_eq!(PageSize::from_level(4), None);
    }
}
