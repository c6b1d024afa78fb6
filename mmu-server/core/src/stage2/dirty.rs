//! Dirty logging: which guest pages were written since logging was enabled or last read.
//!
//! A logged range (a *window*: up to 256 pages, 1 MiB, inside one slot; docs/GUEST-ABI.md) starts
//! write-protected and clean. The first write to a page takes a permission fault; the planner maps
//! the page writable and, **only after the mapping call succeeded**, sets its bit
//! (dirty-on-success, docs/DESIGN.md "Stage-2 fault prejudgement and dirty-on-success": a page
//! whose mapping failed was not written, and marking it would report a write that never happened).
//! Get-and-clear hands the bits out, clears them and write-protects the range again, so the next
//! write is seen.
//!
//! Invariant (checked by the property test): inside a window, a page is mapped writable only if
//! its bit is set. Hence no write is lost: every page written since the last get has its bit set.
//! To keep it when write-protecting fails, get-and-clear puts the bits back and reports the
//! error: a page is then reported twice rather than never.
//!
//! Windows are a resource of the VM, bounded twice: the array of `W` holds at most
//! [`MAX_WINDOWS`] in the server (no heap), and each VM may use only its manifest's
//! `dirty_log_windows` of them ([`DirtyLog::set_limit`]). An enable past the limit is refused
//! with `DirtyLogWindowsExhausted` and changes nothing; [`DirtyLog::disable`] gives a window
//! back. Logging degrades only the 2 MiB blocks a window touches: elsewhere faults map blocks
//! ([`DirtyLog::overlaps`], used by the planner), and a disabled window's blocks are unmapped so
//! the next touch maps a block again (x86 KVM's `kvm_mmu_zap_collapsible_sptes` after logging
//! stops, done eagerly here: at most two blocks per window).

use super::fault::{Stage2Mapper, refused};
use super::slots::{Slot, Slots};
use kernel_core::stage2::{PAGE_SIZE, PageSize};
use mmu_api::{DIRTY_LOG_PAGES, DIRTY_LOG_WORDS, MmuError};

/// The largest range of one window or one get-and-clear, in bytes.
pub const MAX_LOG_BYTES: u64 = DIRTY_LOG_PAGES as u64 * PAGE_SIZE;

/// The most dirty-log windows an mmu-server holds for its VM: the largest
/// `[vms.<name>] dirty_log_windows` the manifest compiler accepts. Each costs 64 bytes of the
/// server's state and two comparisons per fault.
pub const MAX_WINDOWS: usize = 16;

/// A VM's windows when its manifest does not say (the capacity before the key existed).
pub const DEFAULT_WINDOWS: u16 = 4;

/// The bytes of a 2 MiB block.
const BLOCK: u64 = PageSize::Size2M.bytes();

/// A bitmap of up to 256 pages: bit `n` of word `w` is page `64 w + n`.
pub type Bitmap = [u64; DIRTY_LOG_WORDS];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Window {
    slot: u8,
    ipa: u64,
    len: u64,
    bits: Bitmap,
}

impl Window {
    const fn end(&self) -> u64 {
        self.ipa + self.len
    }

    const fn contains(&self, ipa: u64, len: u64) -> bool {
        ipa >= self.ipa && ipa + len <= self.end()
    }

    /// Word and mask of the page at `ipa` (inside the window).
    const fn bit(&self, ipa: u64) -> (usize, u64) {
        let page = (ipa - self.ipa) / PAGE_SIZE;
        ((page / 64) as usize, 1 << (page % 64))
    }
}

/// The dirty logs of all slots: at most `W` windows, of which the VM may use `limit`.
#[derive(Clone, Debug)]
pub struct DirtyLog<const W: usize> {
    windows: [Option<Window>; W],
    limit: u16,
}

impl<const W: usize> Default for DirtyLog<W> {
    fn default() -> Self {
        Self::new()
    }
}

fn check(ipa: u64, len: u64) -> Result<(), MmuError> {
    let aligned = ipa.is_multiple_of(PAGE_SIZE) && len.is_multiple_of(PAGE_SIZE);
    if !aligned || len == 0 || len > MAX_LOG_BYTES || ipa.checked_add(len).is_none() {
        return Err(MmuError::BadRange);
    }
    Ok(())
}

impl<const W: usize> DirtyLog<W> {
    /// No logging; every one of the `W` windows may be used.
    pub const fn new() -> Self {
        Self {
            windows: [None; W],
            limit: if W > u16::MAX as usize {
                u16::MAX
            } else {
                W as u16
            },
        }
    }

    /// Lets the VM use at most `limit` windows (its manifest's `dirty_log_windows`), no more
    /// than the `W` there are; returns the limit now in force. Windows already enabled stay.
    pub fn set_limit(&mut self, limit: u16) -> u16 {
        self.limit = limit.min(Self::new().limit);
        self.limit
    }

    /// How many windows the VM may use.
    pub const fn limit(&self) -> u16 {
        self.limit
    }

    /// How many windows are enabled.
    pub fn in_use(&self) -> usize {
        self.windows.iter().flatten().count()
    }

    fn window(&self, ipa: u64, len: u64) -> Option<&Window> {
        self.windows.iter().flatten().find(|w| w.contains(ipa, len))
    }

    /// Whether any window overlaps `[ipa, ipa + len)`: the planner maps no 2 MiB block there,
    /// since a writable block would let the guest write a logged page unseen.
    pub fn overlaps(&self, ipa: u64, len: u64) -> bool {
        let end = ipa.saturating_add(len);
        self.windows
            .iter()
            .flatten()
            .any(|w| w.ipa < end && ipa < w.end())
    }

    /// Whether the page at `ipa` is being logged.
    pub fn covers(&self, ipa: u64) -> bool {
        self.window(ipa, 1).is_some()
    }

    /// Whether the page at `ipa` is logged and dirty.
    pub fn is_dirty(&self, ipa: u64) -> bool {
        self.window(ipa, 1).is_some_and(|w| {
            let (word, mask) = w.bit(ipa);
            w.bits.get(word).is_some_and(|bits| bits & mask != 0)
        })
    }

    /// Marks the page at `ipa` dirty, if it is logged. Call only after its writable mapping was
    /// made.
    pub fn mark(&mut self, ipa: u64) {
        for window in self.windows.iter_mut().flatten() {
            if window.contains(ipa, 1) {
                let (word, mask) = window.bit(ipa);
                if let Some(bits) = window.bits.get_mut(word) {
                    *bits |= mask;
                }
            }
        }
    }

    /// Starts logging `[ipa, ipa + len)`: write-protects it (through `mapper`), then records it
    /// clean and turns the slot's dirty-logging flag on (from now on the 2 MiB blocks the window
    /// touches are mapped as 4 KiB pages). Enabling the same range again starts it clean again
    /// and takes no new window; a new range past the limit is `DirtyLogWindowsExhausted`.
    pub fn enable<const S: usize>(
        &mut self,
        slots: &mut Slots<S>,
        ipa: u64,
        len: u64,
        mapper: &mut impl Stage2Mapper,
    ) -> Result<(), MmuError> {
        check(ipa, len)?;
        let (number, slot) = slots.lookup(ipa).ok_or(MmuError::NoSlot)?;
        if !slot.contains_range(ipa, len) {
            return Err(MmuError::BadRange);
        }
        let same = |w: &Window| w.ipa == ipa && w.len == len;
        let overlaps = |w: &Window| w.ipa < ipa + len && ipa < w.end() && !same(w);
        if self.windows.iter().flatten().any(overlaps) {
            return Err(MmuError::BadRange);
        }
        let exhausted = MmuError::DirtyLogWindowsExhausted { limit: self.limit };
        let index = match self
            .windows
            .iter()
            .position(|w| w.as_ref().is_some_and(same))
        {
            Some(index) => index,
            None if self.in_use() >= usize::from(self.limit) => return Err(exhausted),
            None => self
                .windows
                .iter()
                .position(Option::is_none)
                .ok_or(exhausted)?,
        };
        mapper.write_protect(ipa, len).map_err(refused)?;
        if let Some(entry) = self.windows.get_mut(index) {
            *entry = Some(Window {
                slot: number,
                ipa,
                len,
                bits: [0; DIRTY_LOG_WORDS],
            });
        }
        slots.set_dirty_logging(number, true);
        Ok(())
    }

    /// The pages written in `[ipa, ipa + len)` (inside one window) since enable or the last get:
    /// clears their bits and write-protects the range again. If write-protecting fails, the bits
    /// are put back and the error returned.
    pub fn get_and_clear(
        &mut self,
        ipa: u64,
        len: u64,
        mapper: &mut impl Stage2Mapper,
    ) -> Result<Bitmap, MmuError> {
        check(ipa, len)?;
        let window = self
            .windows
            .iter_mut()
            .flatten()
            .find(|w| w.contains(ipa, len))
            .ok_or(MmuError::BadRange)?;
        let mut taken = [0; DIRTY_LOG_WORDS];
        let mut any = false;
        let mut page = ipa;
        for index in 0..len / PAGE_SIZE {
            let (word, mask) = window.bit(page);
            if let Some(bits) = window.bits.get_mut(word)
                && *bits & mask != 0
            {
                *bits &= !mask;
                any = true;
                if let Some(out) = taken.get_mut((index / 64) as usize) {
                    *out |= 1 << (index % 64);
                }
            }
            page += PAGE_SIZE;
        }
        if any && let Err(error) = mapper.write_protect(ipa, len) {
            for (index, page) in (0..len / PAGE_SIZE).map(|i| (i, ipa + i * PAGE_SIZE)) {
                let word = taken.get((index / 64) as usize).copied().unwrap_or(0);
                if word & (1 << (index % 64)) != 0 {
                    let (at, mask) = window.bit(page);
                    if let Some(bits) = window.bits.get_mut(at) {
                        *bits |= mask;
                    }
                }
            }
            return Err(refused(error));
        }
        Ok(taken)
    }

    /// Stops logging `[ipa, ipa + len)` (the range rules of [`DirtyLog::enable`]): the window
    /// enabled with exactly this range is forgotten and its place freed. First the 2 MiB blocks
    /// it touches that could be blocks again (the slot allows blocks there, no other window
    /// overlaps them) are unmapped, so the next fault there maps a block instead of leaving the
    /// window's 4 KiB pages for good; if unmapping fails the window stays and the error is
    /// returned (unmapped pages of a logged window are harmless: they refault). A range no
    /// window overlaps is not logged: `Ok` and nothing changes, so a repeat (after an
    /// mmu-server restart lost its windows) answers the same. A range overlapping a window
    /// without being it is `BadRange`.
    pub fn disable<const S: usize>(
        &mut self,
        slots: &mut Slots<S>,
        ipa: u64,
        len: u64,
        mapper: &mut impl Stage2Mapper,
    ) -> Result<(), MmuError> {
        check(ipa, len)?;
        let (number, slot) = slots.lookup(ipa).ok_or(MmuError::NoSlot)?;
        if !slot.contains_range(ipa, len) {
            return Err(MmuError::BadRange);
        }
        let Some(index) = self
            .windows
            .iter()
            .position(|w| w.is_some_and(|w| w.ipa == ipa && w.len == len))
        else {
            return if self.overlaps(ipa, len) {
                Err(MmuError::BadRange)
            } else {
                Ok(())
            };
        };
        let first = ipa & !(BLOCK - 1);
        let last = (ipa + len - 1) & !(BLOCK - 1);
        let blocks = core::iter::successors(Some(first), |&block| {
            (block < last).then_some(block + BLOCK)
        });
        for block in blocks {
            if self.block_frees_up(index, &slot, block) {
                mapper.unmap(block, BLOCK).map_err(refused)?;
            }
        }
        if let Some(entry) = self.windows.get_mut(index) {
            *entry = None;
        }
        if !self.windows.iter().flatten().any(|w| w.slot == number) {
            slots.set_dirty_logging(number, false);
        }
        Ok(())
    }

    /// Whether the 2 MiB block at `block` can be mapped as a block once window `index` is gone.
    fn block_frees_up(&self, index: usize, slot: &Slot, block: u64) -> bool {
        let others = (0..).zip(&self.windows).any(|(other, w)| {
            other != index && w.is_some_and(|w| w.ipa < block + BLOCK && block < w.end())
        });
        slot.allow_blocks && slot.fits_leaf(block, PageSize::Size2M) && !others
    }

    /// Drops every window of slot `number` (the slot was removed or replaced).
    pub fn forget_slot(&mut self, number: u8) {
        for entry in &mut self.windows {
            if entry.is_some_and(|w| w.slot == number) {
                *entry = None;
            }
        }
    }
}
