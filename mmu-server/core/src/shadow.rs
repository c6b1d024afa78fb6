//! Shadow paging for x86-64 guests: the engine the VMX port runs when EPT is off.
//!
//! Without EPT the processor walks one set of page tables, so the hypervisor builds *shadow*
//! tables that translate guest virtual addresses straight to host physical addresses, combining
//! the guest's tables (guest virtual → guest physical, Intel SDM Vol. 3 §4.5) with the memory
//! slots (guest physical → host physical). This module is that engine, as portable logic with no
//! heap and no unsafe code, driven through a small interface:
//!
//! | event in the guest            | call                                 |
//! |-------------------------------|--------------------------------------|
//! | #PF on the shadow tables      | [`ShadowMmu::page_fault`]            |
//! | emulated / device write       | [`ShadowMmu::guest_write`]           |
//! | CR3 load, paging-bit change   | [`ShadowMmu::set_root`]              |
//! | INVLPG                        | [`ShadowMmu::invlpg`]                |
//! | full TLB flush request        | [`ShadowMmu::flush_all`]             |
//! | memory slots changed          | [`ShadowMmu::memslots_changed`]      |
//!
//! The engine borrows the port's guest memory and shadow-table pages through the traits in
//! [`backing`]. Files, one concept each: `addr` (address types), `pte` (entry bits), `mode`
//! (controls and permission rules), `role` (the role word), `walk` (guest walker), `pages` (pool
//! bookkeeping), `table_ops` (shadow-entry primitives and write-protection), `fault` (fault
//! path and page-size step-down), `track` (emulated writes and flood zapping), `mmio` (MMIO
//! entries and generations), `roots` (root cache), `engine` (the object and the other calls).
//!
//! Invariants, relied on throughout and checked by the property tests:
//! 1. **Never more than the guest allows**: a shadow leaf grants at most the guest's effective
//!    rights of the current guest tables, maps the frame the guest tables name, and exists only
//!    if every guest entry on the walk has A=1 (and D=1 if the leaf is writable).
//! 2. **Write-protection**: a host frame holding a guest table that some shadow page mirrors is
//!    never mapped writable, nor covered by a large shadow leaf.
//! 3. **Bounded faults**: after a fault returns [`FaultOutcome::Fixed`], the retried access
//!    succeeds; every access completes after at most one `Fixed` fault.
//! 4. **No panics on guest input**: malformed guest entries become guest page faults with the
//!    SDM's error code; capacity exhaustion evicts or zaps.
//!
//! `docs/SHADOW.md` describes the design as a whole.

pub mod addr;
pub mod backing;
mod engine;
mod fault;
pub mod mmio;
pub mod mode;
mod pages;
pub mod pte;
pub mod role;
mod roots;
mod table_ops;
mod track;
pub mod walk;

#[cfg(test)]
mod tests;

pub use addr::{Gfn, Gpa, Gva, Hpa, PageSize};
pub use backing::{GuestMemory, MemslotGeneration, ShadowTableStore, SlotMapping, TableId};
pub use engine::{Config, EmulateReason, FaultOutcome, NewError, ShadowMmu, SlotChange, Stats};
pub use mode::{AccessKind, CpuMode, MemAccess, ModeError, PagingMode, PfErrorCode};
pub use role::Role;
pub use roots::{PREV_ROOTS, RootKey, RootLoad};
pub use track::{FLOOD_WRITES, WriteOutcome};
pub use walk::GuestCpu;
