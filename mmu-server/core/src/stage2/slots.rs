//! Memory slots: which guest IPA ranges are RAM, and which memory-backing region backs them.
//!
//! A slot maps `[ipa, ipa + len)` to the bytes `[offset, offset + len)` of a region of the
//! memory-backing server. Slots never overlap; an IPA in no slot is not memory (MMIO or a hole,
//! for the vmm to decide). Every change (set, delete, a dirty-logging flag) bumps the memslot
//! generation, which anything derived from the slots keys on (the planned stage-2 MMIO cache:
//! docs/DESIGN.md, "MMIO caching with generations").
//!
//! Storage is a fixed array of `N` slots, numbered by the vmm; no heap.

use kernel_core::stage2::{IPA_LIMIT, PAGE_SIZE, PageSize};
use mmu_api::{MmuError, SlotSpec};

/// One memory slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// First IPA (page aligned).
    pub ipa: u64,
    /// Length in bytes (page multiple, not zero).
    pub len: u64,
    /// The backing region.
    pub region: u16,
    /// Offset of `ipa` in the region (page aligned).
    pub offset: u64,
    /// Mapped read-only; writes are not memory.
    pub read_only: bool,
    /// 2 MiB blocks allowed.
    pub allow_blocks: bool,
    /// Dirty logging is on for some range of the slot: map 4 KiB pages only.
    pub dirty_logging: bool,
}

impl Slot {
    /// A slot from its wire description, checked: aligned, not empty, inside the IPA space, and
    /// the region range does not wrap.
    pub fn from_spec(spec: SlotSpec) -> Result<Slot, MmuError> {
        let aligned = [spec.ipa, spec.len, spec.offset]
            .iter()
            .all(|value| value.is_multiple_of(PAGE_SIZE));
        let ipa_end = spec.ipa.checked_add(spec.len);
        let fits = ipa_end.is_some_and(|end| end <= IPA_LIMIT)
            && spec.offset.checked_add(spec.len).is_some();
        if !aligned || spec.len == 0 || !fits {
            return Err(MmuError::BadRange);
        }
        Ok(Slot {
            ipa: spec.ipa,
            len: spec.len,
            region: spec.region,
            offset: spec.offset,
            read_only: spec.flags.read_only,
            allow_blocks: spec.flags.allow_blocks,
            dirty_logging: false,
        })
    }

    /// One past the last IPA.
    pub const fn end(&self) -> u64 {
        self.ipa + self.len
    }

    /// Whether `ipa` is inside.
    pub const fn contains(&self, ipa: u64) -> bool {
        ipa >= self.ipa && ipa < self.end()
    }

    /// Whether all of `[ipa, ipa + len)` is inside.
    pub const fn contains_range(&self, ipa: u64, len: u64) -> bool {
        match ipa.checked_add(len) {
            Some(end) => ipa >= self.ipa && end <= self.end(),
            None => false,
        }
    }

    /// The region offset backing `ipa` (which must be inside).
    pub const fn offset_of(&self, ipa: u64) -> u64 {
        self.offset + (ipa - self.ipa)
    }

    /// Whether a leaf of `size` around `ipa` could map this slot: the aligned range lies wholly
    /// inside, and IPA and region offset are congruent modulo the size, so one aligned frame of
    /// the region maps one aligned IPA block (KVM's `fault_supports_stage2_huge_mapping`).
    pub const fn fits_leaf(&self, ipa: u64, size: PageSize) -> bool {
        let bytes = size.bytes();
        let base = ipa & !(bytes - 1);
        self.contains_range(base, bytes) && (self.ipa % bytes) == (self.offset % bytes)
    }

    const fn overlaps(&self, other: &Slot) -> bool {
        self.ipa < other.end() && other.ipa < self.end()
    }
}

/// The slot table: `N` numbered slots and the memslot generation.
#[derive(Clone, Debug)]
pub struct Slots<const N: usize> {
    slots: [Option<Slot>; N],
    generation: u64,
}

impl<const N: usize> Default for Slots<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Slots<N> {
    /// No slots, generation 0.
    pub const fn new() -> Self {
        Self {
            slots: [None; N],
            generation: 0,
        }
    }

    /// The memslot generation: grows by one on every change.
    pub const fn generation(&self) -> u64 {
        self.generation
    }

    /// Sets slot `number` (replacing what it held); returns the slot it replaced. Refused when
    /// the number is out of range or the range overlaps another slot.
    pub fn set(&mut self, number: u8, spec: SlotSpec) -> Result<Option<Slot>, MmuError> {
        let slot = Slot::from_spec(spec)?;
        let index = usize::from(number);
        if index >= N {
            return Err(MmuError::BadRange);
        }
        let overlapping = self
            .iter()
            .any(|(other, existing)| other != number && existing.overlaps(&slot));
        if overlapping {
            return Err(MmuError::BadRange);
        }
        let previous = self
            .slots
            .get_mut(index)
            .and_then(|entry| entry.replace(slot));
        self.generation += 1;
        Ok(previous)
    }

    /// Removes slot `number`; returns it.
    pub fn remove(&mut self, number: u8) -> Option<Slot> {
        let removed = self
            .slots
            .get_mut(usize::from(number))
            .and_then(Option::take);
        if removed.is_some() {
            self.generation += 1;
        }
        removed
    }

    /// The slot holding `ipa`, with its number.
    pub fn lookup(&self, ipa: u64) -> Option<(u8, Slot)> {
        self.iter().find(|(_, slot)| slot.contains(ipa))
    }

    /// Slot `number`.
    pub fn get(&self, number: u8) -> Option<Slot> {
        self.slots.get(usize::from(number)).copied().flatten()
    }

    /// Turns the dirty-logging flag of slot `number` on or off (a change: the generation grows).
    pub fn set_dirty_logging(&mut self, number: u8, on: bool) {
        if let Some(Some(slot)) = self.slots.get_mut(usize::from(number))
            && slot.dirty_logging != on
        {
            slot.dirty_logging = on;
            self.generation += 1;
        }
    }

    /// Every slot with its number.
    pub fn iter(&self) -> impl Iterator<Item = (u8, Slot)> + '_ {
        (0..=u8::MAX)
            .zip(self.slots.iter())
            .filter_map(|(number, slot)| slot.map(|slot| (number, slot)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmu_api::SlotFlags;

    const MIB: u64 = 1 << 20;

    fn spec(ipa: u64, len: u64, offset: u64) -> SlotSpec {
        SlotSpec {
            ipa,
            len,
            region: 7,
            offset,
            flags: SlotFlags {
                read_only: false,
                allow_blocks: true,
            },
        }
    }

    #[test]
    fn slots_do_not_overlap_and_every_change_bumps_the_generation() {
        let mut slots = Slots::<4>::new();
        assert_eq!(slots.set(0, spec(0x4000_0000, 64 * MIB, 0)), Ok(None));
        assert_eq!(slots.generation(), 1);
        for bad in [
            spec(0x43FF_F000, 2 * 4096, 0),           // overlaps the end
            spec(0x3FFF_F000, 2 * 4096, 0),           // overlaps the start
            spec(0x4000_0800, 4096, 0),               // misaligned
            spec(0x5000_0000, 0, 0),                  // empty
            spec(IPA_LIMIT - 4096, 8192, 0),          // beyond the IPA space
            spec(0x5000_0000, 4096, u64::MAX - 4095), // region range wraps
        ] {
            assert_eq!(slots.set(1, bad), Err(MmuError::BadRange), "{bad:?}");
        }
        assert_eq!(
            slots.set(4, spec(0x5000_0000, 4096, 0)),
            Err(MmuError::BadRange)
        );
        assert_eq!(slots.generation(), 1, "refusals change nothing");
        slots.set(1, spec(0x4400_0000, 4096, 0)).unwrap();
        // Replacing a slot by itself, moved, is allowed (it does not overlap itself).
        let old = slots.set(0, spec(0x4000_1000, 4096, 0)).unwrap();
        assert_eq!(old.map(|slot| slot.len), Some(64 * MIB));
        assert_eq!(slots.lookup(0x4000_1FFF).map(|(n, _)| n), Some(0));
        assert_eq!(slots.lookup(0x4000_0000), None);
        assert_eq!(slots.lookup(0x4400_0000).map(|(n, _)| n), Some(1));
        slots.set_dirty_logging(1, true);
        slots.set_dirty_logging(1, true);
        assert_eq!(slots.generation(), 4);
        assert!(slots.get(1).unwrap().dirty_logging);
        assert!(slots.remove(1).is_some());
        assert!(slots.remove(1).is_none());
        assert_eq!(slots.generation(), 5);
    }

    #[test]
    fn blocks_fit_only_aligned_congruent_ranges_inside_the_slot() {
        let slot = Slot::from_spec(spec(0x4000_0000, 5 * MIB, 0x20_0000)).unwrap();
        assert!(slot.fits_leaf(0x4000_1000, PageSize::Size2M));
        assert!(slot.fits_leaf(0x403F_F000, PageSize::Size2M));
        assert!(
            !slot.fits_leaf(0x4040_0000, PageSize::Size2M),
            "the block would pass the end"
        );
        assert!(slot.fits_leaf(0x404F_F000, PageSize::Size4K));
        let skewed = Slot::from_spec(spec(0x4000_0000, 8 * MIB, 0x1000)).unwrap();
        assert!(
            !skewed.fits_leaf(0x4020_0000, PageSize::Size2M),
            "offset not congruent"
        );
        assert_eq!(skewed.offset_of(0x4020_0000), 0x20_1000);
    }
}
