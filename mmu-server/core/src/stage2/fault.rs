//! The stage-2 fault planner: from a guest's fault and the memory slots, what to map, how large,
//! with which permissions, and whether the page becomes dirty.
//!
//! Decision (pure, [`plan_fault`]):
//! * no slot holds the IPA, or a write hits a read-only slot: `NotMemory` (the vmm decides);
//! * a page inside a dirty-logged range is mapped writable only by a write fault, which marks it
//!   dirty, so every first write after enable or get-and-clear is seen;
//! * otherwise the largest size that fits: a 2 MiB block when the slot allows blocks, the aligned
//!   block lies wholly inside the slot (with congruent region offset), and no dirty-log window
//!   overlaps the block (the rest of the slot keeps its blocks while a window is logged); else
//!   4 KiB. The backing server has the last word: it lends a 2 MiB frame only where it holds
//!   2 MiB contiguous, else a 4 KiB one, and the mapping follows the frame.
//!
//! Execution ([`resolve`]) asks the backing (bounded retry), maps through the kernel, and only
//! after the mapping call succeeded marks the page dirty and counts the fault (dirty-on-success:
//! KVM's `user_mem_abort` marks dirty only when the fault was handled).
//!
//! Guest RAM is mapped Normal and executable: the guest's own stage 1 decides execute rights.

use super::dirty::DirtyLog;
use super::retry::frame_with_retry;
use super::slots::Slots;
use kernel_core::stage2::{Attributes, MapError, MemoryKind, PAGE_SIZE, PageSize};
use mmu_api::{FaultCounters, MmuError};

/// A frame lent by the memory-backing server: its index there and its size. The region bytes it
/// holds start at the requested offset rounded down to `size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The backing server's frame index (the server binary holds the capability).
    pub index: u32,
    /// 4 KiB or 2 MiB.
    pub size: PageSize,
}

/// Why the backing server gave no frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackingError {
    /// The region changed under the request: ask again.
    Retry,
    /// The offset is beyond the region.
    OutOfRange,
    /// Anything else (no such region, population failed, IPC failed).
    Failed,
}

/// The memory-backing server, as the planner needs it (IPC in the server binary, fakes in tests).
pub trait Backing {
    /// The frame holding byte `offset` of `region`, of `size` if the backing has one that
    /// large and aligned, else smaller.
    fn frame_for(
        &mut self,
        region: u16,
        offset: u64,
        size: PageSize,
    ) -> Result<Frame, BackingError>;

    /// Called between a `Retry` and the next attempt (`attempt` = attempts made so far); the
    /// server binary yields so the backing's owner can make progress. Default: nothing.
    fn before_retry(&mut self, attempt: u8) {
        let _ = attempt;
    }
}

/// The guest's stage-2 table, as the planner needs it (kernel VSpace invocations in the server
/// binary, `kernel_core::stage2` over in-memory tables in tests).
pub trait Stage2Mapper {
    /// Maps `frame` at `ipa` (aligned to `size`) with `attributes`; the kernel prejudges the
    /// change.
    fn map(
        &mut self,
        ipa: u64,
        frame: Frame,
        size: PageSize,
        attributes: Attributes,
    ) -> Result<(), MapError>;
    /// Removes write permission from every leaf mapping part of `[ipa, ipa + len)`.
    fn write_protect(&mut self, ipa: u64, len: u64) -> Result<(), MapError>;
    /// Unmaps everything in `[ipa, ipa + len)`.
    fn unmap(&mut self, ipa: u64, len: u64) -> Result<(), MapError>;
    /// The page at `page` is no memory: ask the kernel to cache it as MMIO (a stage-2 marker,
    /// docs/MMIO.md), so the next access there goes straight to its device server. Best
    /// effort: the kernel refuses where no route covers the page, and the slow path still works.
    fn cache_mmio(&mut self, _page: u64) {}
    /// The memory map is about to change (`true`) or has changed (`false`): the kernel's MMIO
    /// generation brackets the change, so no marker installed before it matches after it.
    fn memory_map_update(&mut self, _begin: bool) {}
}

/// A stage-2 fault as the vmm reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The faulting IPA.
    pub ipa: u64,
    /// A write.
    pub write: bool,
    /// An instruction fetch.
    pub exec: bool,
    /// A permission fault (as opposed to a translation or access-flag fault).
    pub permission: bool,
}

/// How a fault was resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Mapped with a leaf of this size.
    Mapped(PageSize),
    /// Not memory: the vmm decides.
    NotMemory,
}

/// What the planner decided for a memory fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapPlan {
    /// The faulting page (4 KiB aligned).
    pub page: u64,
    /// The backing region and the offset of `page` in it.
    pub region: u16,
    /// Offset of `page` in the region.
    pub offset: u64,
    /// The largest leaf the slot allows here.
    pub max_size: PageSize,
    /// Access and memory type.
    pub attributes: Attributes,
    /// Mark the page dirty once mapped.
    pub mark_dirty: bool,
}

/// The planner's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No slot, or a write to a read-only slot.
    NotMemory,
    /// Map.
    Map(MapPlan),
}

/// Decides what to do for `fault`, touching nothing.
pub fn plan_fault<const S: usize, const W: usize>(
    slots: &Slots<S>,
    dirty: &DirtyLog<W>,
    fault: Fault,
) -> Decision {
    let Some((_, slot)) = slots.lookup(fault.ipa) else {
        return Decision::NotMemory;
    };
    if fault.write && slot.read_only {
        return Decision::NotMemory;
    }
    let page = fault.ipa & !(PAGE_SIZE - 1);
    let logged = dirty.covers(page);
    let block = PageSize::Size2M.bytes();
    let blocks = slot.allow_blocks
        && slot.fits_leaf(page, PageSize::Size2M)
        && !dirty.overlaps(page & !(block - 1), block);
    Decision::Map(MapPlan {
        page,
        region: slot.region,
        offset: slot.offset_of(page),
        max_size: if blocks {
            PageSize::Size2M
        } else {
            PageSize::Size4K
        },
        attributes: Attributes {
            writable: !slot.read_only && (!logged || fault.write),
            executable: true,
            kind: MemoryKind::Normal,
        },
        mark_dirty: logged && fault.write,
    })
}

/// Carries out a plan: the frame (bounded retry), the mapping, then (only on success) the dirty
/// bit and the counter. Returns the size mapped.
pub fn resolve<const W: usize>(
    plan: MapPlan,
    fault: Fault,
    backing: &mut impl Backing,
    mapper: &mut impl Stage2Mapper,
    dirty: &mut DirtyLog<W>,
    counters: &mut FaultCounters,
) -> Result<PageSize, MmuError> {
    let frame = frame_with_retry(backing, plan.region, plan.offset, plan.max_size)?;
    let ipa = plan.page & !(frame.size.bytes() - 1);
    mapper
        .map(ipa, frame, frame.size, plan.attributes)
        .map_err(refused)?;
    if plan.mark_dirty {
        dirty.mark(plan.page);
    }
    count(counters, fault, frame.size);
    Ok(frame.size)
}

/// The protocol's error for a refused kernel mapping.
pub fn refused(error: MapError) -> MmuError {
    match error {
        MapError::OutOfTables => MmuError::OutOfMemory,
        _ => MmuError::MappingRefused,
    }
}

fn count(counters: &mut FaultCounters, fault: Fault, size: PageSize) {
    let counter = if fault.permission {
        &mut counters.permission
    } else if size == PageSize::Size2M {
        &mut counters.blocks_2m
    } else {
        &mut counters.pages_4k
    };
    *counter = counter.saturating_add(1);
}
