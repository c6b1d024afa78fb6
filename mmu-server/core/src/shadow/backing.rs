//! What the port provides: guest memory through memory slots, and storage for shadow tables.
//!
//! The engine owns neither guest memory nor the pages its shadow tables live in. The VMX port
//! implements [`GuestMemory`] over its memory-slot table and the guest-memory window, and
//! [`ShadowTableStore`] over a pool of host pages it lends to the engine; host tests and the
//! benchmark use the in-memory fakes in `crate::testing`.
//!
//! Contracts the port must keep:
//! * Every write to guest memory that does not go through the shadow tables (device emulation,
//!   DMA, the VMM) is made with [`crate::shadow::ShadowMmu::guest_write`] so the engine sees
//!   writes to guest page tables. The engine's own accessed/dirty updates are the exception.
//! * The memory-slot generation only grows; it carries an "update in progress" flag while slots
//!   are being changed, and the engine is told of removed or moved slots
//!   ([`crate::shadow::SlotChange`]).
//! * Store tables are zero when first handed over; the engine keeps them zero when it frees them.

use super::addr::{Gfn, Gpa, Hpa, PAGE_SHIFT};

/// One memory slot: a run of guest frames backed by a run of host frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotMapping {
    /// First guest frame of the slot.
    pub base: Gfn,
    /// Number of 4 KiB frames.
    pub frames: u64,
    /// Host address of the first frame; the slot is host-contiguous.
    pub host_base: Hpa,
    /// Read-only slot (ROM): writes are MMIO exits.
    pub readonly: bool,
}

impl SlotMapping {
    /// Host address of `gfn`, which must lie inside the slot.
    pub const fn hpa_of(&self, gfn: Gfn) -> Hpa {
        Hpa(self.host_base.0 + ((gfn.0 - self.base.0) << PAGE_SHIFT))
    }

    /// Does the slot contain all of `frames` frames starting at `first`?
    pub const fn contains_range(&self, first: Gfn, frames: u64) -> bool {
        first.0 >= self.base.0 && first.0 + frames <= self.base.0 + self.frames
    }
}

/// The memory-slot generation (KVM's `memslots->generation`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemslotGeneration {
    /// Grows by at least one for every completed change of the slot table.
    pub value: u64,
    /// Set while a change is being made: nothing derived from the slots may be cached.
    pub update_in_progress: bool,
}

/// Guest physical memory as seen through the memory slots.
pub trait GuestMemory {
    /// The slot containing `gfn`, or `None` when the frame is MMIO. This is the "slot search" that
    /// the MMIO spte cache avoids.
    fn lookup_slot(&self, gfn: Gfn) -> Option<SlotMapping>;

    /// Read the little-endian 8-byte value at an 8-aligned `gpa`; `None` outside all slots.
    fn read_u64(&self, gpa: Gpa) -> Option<u64>;

    /// Write the 8-byte value at an 8-aligned `gpa`; false outside all slots or in a read-only slot.
    fn write_u64(&mut self, gpa: Gpa, value: u64) -> bool;

    /// Write `bytes` at `gpa` (any alignment, may cross pages); false if any byte is outside a
    /// writable slot, in which case nothing is written.
    fn write_bytes(&mut self, gpa: Gpa, bytes: &[u8]) -> bool;

    /// The current memory-slot generation.
    fn memslot_generation(&self) -> MemslotGeneration;
}

/// An index into the shadow-table pool, `0..capacity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TableId(pub u16);

/// The pages shadow tables live in: a fixed pool of 4 KiB host pages of 512 entries each.
pub trait ShadowTableStore {
    /// Number of tables in the pool.
    fn capacity(&self) -> usize;

    /// The host physical address of table `id` (what shadow entries and CR3 point at).
    fn table_hpa(&self, id: TableId) -> Hpa;

    /// Read entry `index` (0..512) of table `id`.
    fn read_entry(&self, id: TableId, index: usize) -> u64;

    /// Write entry `index` (0..512) of table `id`. On hardware this must be a single 8-byte store.
    fn write_entry(&mut self, id: TableId, index: usize, value: u64);
}
