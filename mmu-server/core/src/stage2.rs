//! Stage-2 memory management for aarch64 guests (and any port with hardware second-stage
//! tables): memory slots, fault resolution with page-size choice, dirty logging, counters.
//! docs/DESIGN.md, "Stage-2 fault prejudgement and dirty-on-success" and "Lazily backed regions
//! with retry"; docs/MMU-STAGE2.md.
//!
//! The mmu-server holds a [`Stage2`] per VM and answers the vmm's [`mmu_api::Request`]s with
//! [`Stage2::handle`]. The world outside is two traits, so all of this is host-tested:
//! [`Backing`] (the memory-backing server, over IPC) lends frames, [`Stage2Mapper`] (kernel
//! VSpace invocations) maps them. The kernel's side of a mapping, the prejudgement and TLB
//! maintenance, lives in `kernel_core::stage2`.
//!
//! * [`slots`]: IPA ranges → backing region, non-overlapping, with a memslot generation.
//! * [`fault`]: the planner (not memory / page / block, permissions, dirty marking) and its
//!   execution, with the dirty bit and the counter set only after the mapping succeeded.
//! * [`retry`]: bounded retry of the backing's `Retry` answer.
//! * [`dirty`]: dirty-log windows (a bounded resource of the VM), enable, get-and-clear and
//!   disable.
//!
//! Invariants: no heap, no unsafe; a page inside a dirty-log window is writable in stage 2 only
//! if its dirty bit is set; the backing is asked at most `retry::MAX_ATTEMPTS` times per fault.

pub mod dirty;
pub mod fault;
pub mod retry;
pub mod slots;

pub use dirty::{
    DEFAULT_WINDOWS as DEFAULT_DIRTY_LOG_WINDOWS, DirtyLog, MAX_WINDOWS as MAX_DIRTY_LOG_WINDOWS,
};
pub use fault::{
    Backing, BackingError, Decision, Fault, Frame, MapPlan, Resolution, Stage2Mapper, plan_fault,
};
pub use slots::{Slot, Slots};

use kernel_core::stage2::PageSize;
use mmu_api::{FaultCounters, MappedSize, MmuError, Reply, Request, Response, SlotSpec};

/// The stage-2 state of one VM: `S` memory slots and `W` dirty-log windows.
#[derive(Clone, Debug, Default)]
pub struct Stage2<const S: usize, const W: usize> {
    slots: Slots<S>,
    dirty: DirtyLog<W>,
    counters: FaultCounters,
}

impl<const S: usize, const W: usize> Stage2<S, W> {
    /// No slots, no logging, counters at zero.
    pub const fn new() -> Self {
        Self {
            slots: Slots::new(),
            dirty: DirtyLog::new(),
            counters: FaultCounters {
                pages_4k: 0,
                blocks_2m: 0,
                permission: 0,
            },
        }
    }

    /// The memory slots.
    pub const fn slots(&self) -> &Slots<S> {
        &self.slots
    }

    /// The dirty logs.
    pub const fn dirty(&self) -> &DirtyLog<W> {
        &self.dirty
    }

    /// Faults resolved so far.
    pub const fn counters(&self) -> FaultCounters {
        self.counters
    }

    /// Resolves a stage-2 fault.
    pub fn handle_fault(
        &mut self,
        fault: Fault,
        backing: &mut impl Backing,
        mapper: &mut impl Stage2Mapper,
    ) -> Result<Resolution, MmuError> {
        match plan_fault(&self.slots, &self.dirty, fault) {
            Decision::NotMemory => {
                if !fault.exec {
                    mapper.cache_mmio(fault.ipa & !(PageSize::Size4K.bytes() - 1));
                }
                Ok(Resolution::NotMemory)
            }
            Decision::Map(plan) => fault::resolve(
                plan,
                fault,
                backing,
                mapper,
                &mut self.dirty,
                &mut self.counters,
            )
            .map(Resolution::Mapped),
        }
    }

    /// Starts dirty logging on `[ipa, ipa + len)`.
    pub fn enable_dirty_log(
        &mut self,
        ipa: u64,
        len: u64,
        mapper: &mut impl Stage2Mapper,
    ) -> Result<(), MmuError> {
        self.dirty.enable(&mut self.slots, ipa, len, mapper)
    }

    /// Lets the VM use at most `limit` dirty-log windows (its manifest's `dirty_log_windows`,
    /// at most `W`); returns the limit in force.
    pub fn set_dirty_log_limit(&mut self, limit: u16) -> u16 {
        self.dirty.set_limit(limit)
    }

    /// Stops dirty logging on `[ipa, ipa + len)` and frees its window; its blocks are mapped as
    /// blocks again from the next fault on.
    pub fn disable_dirty_log(
        &mut self,
        ipa: u64,
        len: u64,
        mapper: &mut impl Stage2Mapper,
    ) -> Result<(), MmuError> {
        self.dirty.disable(&mut self.slots, ipa, len, mapper)
    }

    /// The pages written in `[ipa, ipa + len)` since the last call; clears and re-protects them.
    pub fn get_and_clear_dirty_log(
        &mut self,
        ipa: u64,
        len: u64,
        mapper: &mut impl Stage2Mapper,
    ) -> Result<dirty::Bitmap, MmuError> {
        self.dirty.get_and_clear(ipa, len, mapper)
    }

    /// Sets slot `number`. A slot it replaces is unmapped first, so no mapping of the old
    /// backing outlives it; if unmapping fails nothing changes.
    pub fn set_slot(
        &mut self,
        number: u8,
        spec: SlotSpec,
        mapper: &mut impl Stage2Mapper,
    ) -> Result<(), MmuError> {
        mapper.memory_map_update(true);
        let result = self.set_slot_inner(number, spec, mapper);
        mapper.memory_map_update(false);
        result
    }

    fn set_slot_inner(
        &mut self,
        number: u8,
        spec: SlotSpec,
        mapper: &mut impl Stage2Mapper,
    ) -> Result<(), MmuError> {
        let mut next = self.slots.clone();
        if let Some(old) = next.set(number, spec)? {
            mapper.unmap(old.ipa, old.len).map_err(fault::refused)?;
            self.dirty.forget_slot(number);
        }
        self.slots = next;
        Ok(())
    }

    /// Removes slot `number` and unmaps its range (nothing changes if unmapping fails).
    pub fn delete_slot(
        &mut self,
        number: u8,
        mapper: &mut impl Stage2Mapper,
    ) -> Result<(), MmuError> {
        let old = self.slots.get(number).ok_or(MmuError::NoSlot)?;
        mapper.memory_map_update(true);
        let unmapped = mapper.unmap(old.ipa, old.len).map_err(fault::refused);
        if unmapped.is_ok() {
            self.slots.remove(number);
            self.dirty.forget_slot(number);
        }
        mapper.memory_map_update(false);
        unmapped
    }

    /// Answers one request of the vmm (the server binary's whole handler).
    pub fn handle(
        &mut self,
        request: Request,
        backing: &mut impl Backing,
        mapper: &mut impl Stage2Mapper,
    ) -> Response {
        match request {
            Request::HandleStage2Fault {
                ipa,
                write,
                exec,
                permission,
            } => {
                let fault = Fault {
                    ipa,
                    write,
                    exec,
                    permission,
                };
                self.handle_fault(fault, backing, mapper)
                    .map(|resolution| match resolution {
                        Resolution::NotMemory => Reply::NotMemory,
                        Resolution::Mapped(size) => Reply::Mapped {
                            size: if size == PageSize::Size4K {
                                MappedSize::Size4K
                            } else {
                                MappedSize::Size2M
                            },
                        },
                    })
            }
            Request::EnableDirtyLog { ipa, len } => self
                .enable_dirty_log(ipa, len, mapper)
                .map(|()| Reply::Done),
            Request::GetAndClearDirtyLog { ipa, len } => self
                .get_and_clear_dirty_log(ipa, len, mapper)
                .map(|words| Reply::DirtyBitmap { words }),
            Request::Counters => Ok(Reply::Counters(self.counters)),
            Request::SetSlot { slot, spec } => {
                self.set_slot(slot, spec, mapper).map(|()| Reply::Done)
            }
            Request::DeleteSlot { slot } => self.delete_slot(slot, mapper).map(|()| Reply::Done),
            Request::DisableDirtyLog { ipa, len } => self
                .disable_dirty_log(ipa, len, mapper)
                .map(|()| Reply::Done),
        }
    }
}

/// Converts the memory-backing server's answer into what [`Backing::frame_for`] returns.
pub fn frame_from_response(response: memory_api::Response) -> Result<Frame, BackingError> {
    use memory_api::{FrameSize, Response as R};
    match response {
        R::Frame(lent) => Ok(Frame {
            index: lent.frame_index,
            size: match lent.size {
                FrameSize::Size4K => PageSize::Size4K,
                FrameSize::Size2M => PageSize::Size2M,
            },
        }),
        R::Retry => Err(BackingError::Retry),
        R::OutOfRange => Err(BackingError::OutOfRange),
        R::Error(_) => Err(BackingError::Failed),
    }
}

/// The memory-backing request for a frame of at most `size` (1 GiB is asked as 2 MiB).
pub const fn frame_request(region: u16, offset: u64, size: PageSize) -> memory_api::Request {
    memory_api::Request::FrameFor {
        region,
        offset,
        size: match size {
            PageSize::Size4K => memory_api::FrameSize::Size4K,
            PageSize::Size2M | PageSize::Size1G => memory_api::FrameSize::Size2M,
        },
    }
}

#[cfg(test)]
mod tests;
