//! A guest's initial RAM as the boot description gives it: segments of payload bytes, each copied
//! to a guest-physical address, an entry point and the value of x0 (docs/GUEST-ABI.md, "Boot
//! state"). The compiler turns every guest format into segments; the kernel only checks them
//! here, before anything is copied, and copies them at boot and, chunk by chunk, at every reset.

/// A VM's RAM window as its guest sees it: `base .. base + size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RamWindow {
    /// Guest-physical base.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
}

/// One segment: `bytes` go to guest-physical `ipa`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadSegment<'a> {
    /// What is copied.
    pub bytes: &'a [u8],
    /// Where it goes.
    pub ipa: u64,
}

/// Why a VM's load description was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// `base + size` overflows the address space.
    RamWraps,
    /// A segment does not lie wholly inside RAM (or its end overflows).
    SegmentOutsideRam { ipa: u64, len: u64 },
    /// A segment starts below the end of the VM's previous one: segments are ascending and
    /// disjoint, so every byte of RAM has at most one source and a reset step rebuilds exactly
    /// what boot built.
    SegmentOverlaps { ipa: u64, previous_end: u64 },
    /// The entry point is not inside RAM.
    EntryOutsideRam { entry: u64 },
    /// x0 is neither 0 nor inside RAM.
    X0OutsideRam { x0: u64 },
}

impl RamWindow {
    /// The window, refused when it wraps.
    pub fn new(base: u64, size: u64) -> Result<Self, LoadError> {
        base.checked_add(size).ok_or(LoadError::RamWraps)?;
        Ok(Self { base, size })
    }

    /// One past the last address (cannot overflow: checked by [`Self::new`]).
    pub const fn end(&self) -> u64 {
        self.base.wrapping_add(self.size)
    }

    /// Whether `address` is inside the window.
    pub const fn contains(&self, address: u64) -> bool {
        address >= self.base && address < self.end()
    }

    /// Checks the next segment of a VM, `len` bytes at `ipa`, given where the VM's previous
    /// segment ended (`None` for its first); returns where this one ends.
    pub fn check_segment(
        &self,
        ipa: u64,
        len: u64,
        previous_end: Option<u64>,
    ) -> Result<u64, LoadError> {
        let outside = LoadError::SegmentOutsideRam { ipa, len };
        let end = ipa.checked_add(len).ok_or(outside)?;
        if ipa < self.base || end > self.end() {
            return Err(outside);
        }
        match previous_end {
            Some(previous_end) if ipa < previous_end => {
                Err(LoadError::SegmentOverlaps { ipa, previous_end })
            }
            _ => Ok(end),
        }
    }

    /// Checks the entry point (inside RAM) and x0 (0, or inside RAM).
    pub fn check_entry(&self, entry: u64, x0: u64) -> Result<(), LoadError> {
        if !self.contains(entry) {
            return Err(LoadError::EntryOutsideRam { entry });
        }
        if x0 != 0 && !self.contains(x0) {
            return Err(LoadError::X0OutsideRam { x0 });
        }
        Ok(())
    }
}

impl LoadSegment<'_> {
    /// The part of this segment that lands in guest addresses `[chunk_start, chunk_end)`:
    /// `(offset into bytes, guest address, length)`, or `None` when none does. Rebuilding RAM
    /// chunk by chunk, each chunk zeroed first, copies every byte exactly once.
    pub fn part_in(&self, chunk_start: u64, chunk_end: u64) -> Option<(usize, u64, usize)> {
        let segment_end = self.ipa.saturating_add(self.bytes.len() as u64);
        let start = self.ipa.max(chunk_start);
        let end = segment_end.min(chunk_end);
        // Both differences are at most the segment's length, a usize.
        (start < end).then(|| ((start - self.ipa) as usize, start, (end - start) as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    const RAM: RamWindow = RamWindow {
        base: 0x4000_0000,
        size: 0x400_0000,
    };

    #[test]
    fn segments_inside_ram_in_ascending_order_are_accepted_to_the_last_byte() {
        assert_eq!(
            RAM.check_segment(0x4000_0000, 0x1000, None),
            Ok(0x4000_1000)
        );
        // Touching the previous segment is fine; ending exactly at the end of RAM is fine.
        assert_eq!(
            RAM.check_segment(0x4000_1000, 0x10, Some(0x4000_1000)),
            Ok(0x4000_1010)
        );
        assert_eq!(
            RAM.check_segment(0x43ff_f000, 0x1000, Some(0x4000_1010)),
            Ok(0x4400_0000)
        );
        // An empty segment at the very end is inside.
        assert_eq!(RAM.check_segment(0x4400_0000, 0, None), Ok(0x4400_0000));
    }

    #[test]
    fn segments_outside_ram_overlapping_or_wrapping_are_refused() {
        let outside = |ipa, len| LoadError::SegmentOutsideRam { ipa, len };
        assert_eq!(
            RAM.check_segment(0x3fff_ffff, 2, None),
            Err(outside(0x3fff_ffff, 2))
        );
        assert_eq!(
            RAM.check_segment(0x43ff_f000, 0x1001, None),
            Err(outside(0x43ff_f000, 0x1001))
        );
        assert_eq!(
            RAM.check_segment(0x4400_0000, 1, None),
            Err(outside(0x4400_0000, 1))
        );
        assert_eq!(
            RAM.check_segment(0x4000_0000, u64::MAX, None),
            Err(outside(0x4000_0000, u64::MAX))
        );
        assert_eq!(
            RAM.check_segment(0x4000_0fff, 1, Some(0x4000_1000)),
            Err(LoadError::SegmentOverlaps {
                ipa: 0x4000_0fff,
                previous_end: 0x4000_1000
            })
        );
        assert_eq!(
            RamWindow::new(u64::MAX - 0xfff, 0x1000),
            Err(LoadError::RamWraps)
        );
        assert_eq!(
            RamWindow::new(u64::MAX - 0x1000, 0x1000).map(|w| w.end()),
            Ok(u64::MAX)
        );
    }

    #[test]
    fn entry_must_be_in_ram_and_x0_in_ram_or_zero() {
        assert_eq!(RAM.check_entry(0x4000_0000, 0), Ok(()));
        assert_eq!(RAM.check_entry(0x43ff_ffff, 0x43ff_fff8), Ok(()));
        assert_eq!(
            RAM.check_entry(0x4400_0000, 0),
            Err(LoadError::EntryOutsideRam { entry: 0x4400_0000 })
        );
        assert_eq!(
            RAM.check_entry(0x3fff_fffc, 0),
            Err(LoadError::EntryOutsideRam { entry: 0x3fff_fffc })
        );
        assert_eq!(
            RAM.check_entry(0x4000_0000, 0x4400_0000),
            Err(LoadError::X0OutsideRam { x0: 0x4400_0000 })
        );
        assert_eq!(
            RAM.check_entry(0x4000_0000, 8),
            Err(LoadError::X0OutsideRam { x0: 8 })
        );
    }

    #[test]
    fn chunks_see_exactly_their_part_of_a_segment() {
        let bytes: Vec<u8> = (0..0x2800u32).map(|i| i as u8).collect();
        let segment = LoadSegment {
            bytes: &bytes,
            ipa: 0x4008_0000,
        };
        assert_eq!(
            segment.part_in(0x4000_0000, 0x4008_1000),
            Some((0, 0x4008_0000, 0x1000))
        );
        assert_eq!(
            segment.part_in(0x4008_1000, 0x4008_2000),
            Some((0x1000, 0x4008_1000, 0x1000))
        );
        assert_eq!(
            segment.part_in(0x4008_2000, 0x4008_4000),
            Some((0x2000, 0x4008_2000, 0x800))
        );
        assert_eq!(segment.part_in(0x4008_2800, 0x4008_4000), None);
        assert_eq!(segment.part_in(0x4000_0000, 0x4008_0000), None);
        // Rebuilt over any chunking, every byte lands once, at its own place.
        for chunk in [0x100u64, 0x1000, 0x1234, 0x20_0000] {
            let mut ram = std::vec![0u8; 0x10_0000];
            let mut copied = 0;
            let mut at = 0x4000_0000;
            while at < 0x4010_0000 {
                if let Some((offset, address, len)) = segment.part_in(at, at + chunk) {
                    let target = (address - 0x4000_0000) as usize;
                    ram[target..target + len].copy_from_slice(&bytes[offset..offset + len]);
                    copied += len;
                }
                at += chunk;
            }
            assert_eq!(copied, bytes.len(), "chunk {chunk:#x}");
            assert_eq!(&ram[0x8_0000..0x8_2800], &bytes[..], "chunk {chunk:#x}");
        }
    }
}
