//! The frame capabilities the mmu-server holds, one per slot of a ring in its CNode, and which
//! live mapping each one is the capability of.
//!
//! The kernel's rule (kernel-core `memory.rs`, seL4's): a mapping belongs to the frame
//! capability that made it and deleting that capability unmaps it; a map takes over the record
//! of every other capability whose mapping it overlaps (in the same VSpace), and an unmap
//! clears the records it overlaps. [`HeldFrames`] follows the same rule for the server's own
//! slots, so the server knows, before it reuses a slot for the next lent frame, whether
//! deleting what the slot holds is silent (it maps nothing: empty, never mapped, refused,
//! superseded by a later map, or unmapped) or takes a page away from the guest.
//!
//! [`HeldFrames::take`] reuses a silent slot whenever there is one. Only when every slot holds
//! the capability of a live mapping does it retire one, deliberately and said so: the slot taken
//! longest ago, whose deletion unmaps that page (the guest faults it in again, like a page KVM's
//! MMU notifier took away). A fresh table knows nothing of what its slots held, so a (re)started
//! server deletes every ring slot before it serves: each deletion unmaps what a capability from
//! before the restart still mapped, and the guest faults those pages back in.
//!
//! Storage: one `u32` per slot (the IPA page number, a block bit, or free); no heap.

use kernel_core::stage2::{PAGE_SIZE, PageSize};

/// What one slot's capability maps: `FREE`, or IPA page number | `BLOCK`.
const FREE: u32 = u32::MAX;
/// The mapping is a 2 MiB block (else a 4 KiB page).
const BLOCK: u32 = 1 << 31;

/// A slot handed out by [`HeldFrames::take`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Taken {
    /// The ring index to receive the next frame in (delete what it holds first).
    pub index: usize,
    /// The live mapping whose capability it held: deleting it unmaps this (IPA, size). `None`
    /// when the deletion is silent.
    pub retires: Option<(u64, PageSize)>,
}

/// The ring of `N` frame slots and the mapping each slot's capability owns.
#[derive(Clone, Debug)]
pub struct HeldFrames<const N: usize> {
    entries: [u32; N],
    next: usize,
}

impl<const N: usize> Default for HeldFrames<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> HeldFrames<N> {
    /// Every slot free.
    pub const fn new() -> Self {
        Self {
            entries: [FREE; N],
            next: 0,
        }
    }

    /// A slot for the next lent frame: the first silent one from where the last take stopped,
    /// else the slot there, whose live mapping is retired. The slot is free afterwards (its old
    /// capability is to be deleted) until [`HeldFrames::mapped`] records the new one.
    pub fn take(&mut self) -> Taken {
        let start = self.next;
        let silent = (0..N)
            .map(|step| (start + step) % N)
            .find(|&index| self.entries[index] == FREE);
        let index = silent.unwrap_or(start);
        let retires = decode(self.entries[index]);
        self.entries[index] = FREE;
        self.next = (index + 1) % N;
        Taken { index, retires }
    }

    /// The capability in `index` now maps `ipa` with a leaf of `size`: every other slot whose
    /// mapping overlaps it lost its record to it (the kernel moved it), so it is silent now.
    pub fn mapped(&mut self, index: usize, ipa: u64, size: PageSize) {
        if index >= N {
            return;
        }
        self.forget(ipa, size.bytes());
        let block = if size == PageSize::Size4K { 0 } else { BLOCK };
        self.entries[index] = (ipa / PAGE_SIZE) as u32 | block;
    }

    /// The capability in `index` maps nothing (no frame came, or the kernel refused the map).
    pub fn released(&mut self, index: usize) {
        if let Some(entry) = self.entries.get_mut(index) {
            *entry = FREE;
        }
    }

    /// The kernel unmapped `ipa .. ipa + len` (one `VSpaceUnmap`): the records it overlaps
    /// are cleared, so those slots are silent.
    pub fn unmapped(&mut self, ipa: u64, len: u64) {
        self.forget(ipa, len);
    }

    /// What the capability in `index` maps, if anything.
    pub fn mapping(&self, index: usize) -> Option<(u64, PageSize)> {
        self.entries.get(index).copied().and_then(decode)
    }

    /// How many slots hold the capability of a live mapping.
    pub fn live(&self) -> usize {
        self.entries.iter().filter(|&&entry| entry != FREE).count()
    }

    fn forget(&mut self, ipa: u64, len: u64) {
        let end = ipa.saturating_add(len);
        for entry in self.entries.iter_mut() {
            if let Some((at, size)) = decode(*entry)
                && at < end
                && at + size.bytes() > ipa
            {
                *entry = FREE;
            }
        }
    }
}

fn decode(entry: u32) -> Option<(u64, PageSize)> {
    if entry == FREE {
        return None;
    }
    let size = if entry & BLOCK != 0 {
        PageSize::Size2M
    } else {
        PageSize::Size4K
    };
    Some((u64::from(entry & !BLOCK) * PAGE_SIZE, size))
}
