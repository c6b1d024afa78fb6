//! The protocol between the vmm-server and the mmu-server: stage-2 faults, memory slots, dirty
//! logging and fault counters. Variant order is wire ABI: append only.
//!
//! The vmm-server receives a guest's stage-2 abort, asks the mmu-server to resolve it, and either
//! resumes the guest (`Mapped`) or treats the access as MMIO (`NotMemory`: no memory slot covers
//! the address, or a write hit a read-only slot). Dirty logging and the counters back the
//! hypercalls of docs/GUEST-ABI.md.
//!
//! Restart contract (Hubris's rule: server death is part of every protocol): every request but
//! `GetAndClearDirtyLog` is idempotent and retried by `ipc::call` after a restart. A fault handled
//! twice maps the same frame again, which the kernel's prejudgement makes a no-op.
//! `GetAndClearDirtyLog` is not: repeating it would drop the bitmap the first call cleared. A
//! restarted mmu-server has lost its slots and dirty logs; the vmm learns of it through
//! `CallError::Restarted` and sets them again.
#![no_std]
#![forbid(unsafe_code)]

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

/// Pages one dirty-log call covers: 256 pages of 4 KiB, 1 MiB.
pub const DIRTY_LOG_PAGES: usize = 256;
/// Words of a dirty bitmap.
pub const DIRTY_LOG_WORDS: usize = DIRTY_LOG_PAGES / 64;

/// The size a fault was resolved with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum MappedSize {
    /// A 4 KiB page.
    Size4K,
    /// A 2 MiB block.
    Size2M,
}

/// How a memory slot may be used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct SlotFlags {
    /// Mapped read-only; a write is reported as `NotMemory` (ROM: the vmm emulates it).
    pub read_only: bool,
    /// 2 MiB blocks may be used where the slot and the backing allow.
    pub allow_blocks: bool,
}

/// A memory slot: guest IPAs `[ipa, ipa + len)` backed by `region` from byte `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct SlotSpec {
    /// First IPA (4 KiB aligned).
    pub ipa: u64,
    /// Length in bytes (a multiple of 4 KiB, not zero).
    pub len: u64,
    /// The memory-backing server's region.
    pub region: u16,
    /// Byte offset of `ipa` inside the region (4 KiB aligned).
    pub offset: u64,
    /// Flags.
    pub flags: SlotFlags,
}

/// Requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum Request {
    /// Resolve a stage-2 fault at `ipa`. `permission` is set for a permission fault (the IPA was
    /// mapped without the access), clear for a translation or access-flag fault.
    HandleStage2Fault {
        /// The faulting IPA (`HPFAR_EL2` page + the offset from `FAR_EL2`).
        ipa: u64,
        /// A write (`ESR_EL2.ISS.WnR`, or a cache maintenance that counts as one).
        write: bool,
        /// An instruction fetch.
        exec: bool,
        /// A permission fault (`ESR_EL2` DFSC/IFSC `0b0011xx`).
        permission: bool,
    },
    /// Start dirty logging on `[ipa, ipa + len)` (page aligned, at most 1 MiB, inside one slot):
    /// the range is write-protected and starts clean, a window of its own (the same range again
    /// reuses its window). A new range while the VM has all its windows (its boot info's
    /// `dirty_log_windows`) is `DirtyLogWindowsExhausted`.
    EnableDirtyLog {
        /// First IPA.
        ipa: u64,
        /// Length in bytes.
        len: u64,
    },
    /// The pages written in `[ipa, ipa + len)` since enable or the last call; clears them and
    /// write-protects them again. Not idempotent.
    GetAndClearDirtyLog {
        /// First IPA (inside a logged range).
        ipa: u64,
        /// Length in bytes (at most 1 MiB).
        len: u64,
    },
    /// The fault counters.
    Counters,
    /// Define memory slot `slot` (replacing the slot of that number; the old range is unmapped).
    SetSlot {
        /// The slot number.
        slot: u8,
        /// What it maps.
        spec: SlotSpec,
    },
    /// Remove memory slot `slot` and unmap its range.
    DeleteSlot {
        /// The slot number.
        slot: u8,
    },
    /// Stop dirty logging on `[ipa, ipa + len)` (the range rules of `EnableDirtyLog`): the
    /// window enabled with exactly this range is forgotten, its slot again, and the 2 MiB
    /// blocks it touched are unmapped so the next fault there maps a block again. A range no
    /// window overlaps is already not logged (`Done`: a repeat after a restart answers the
    /// same); one that overlaps a window without being it is `BadRange`.
    DisableDirtyLog {
        /// First IPA.
        ipa: u64,
        /// Length in bytes.
        len: u64,
    },
}

/// Faults resolved since the mmu-server started, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct FaultCounters {
    /// Translation faults resolved with a 4 KiB page.
    pub pages_4k: u64,
    /// Translation faults resolved with a 2 MiB block.
    pub blocks_2m: u64,
    /// Permission faults resolved (dirty logging).
    pub permission: u64,
}

/// Successful replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum Reply {
    /// The fault is resolved; resume the guest.
    Mapped {
        /// The size mapped.
        size: MappedSize,
    },
    /// Not memory: no slot covers the IPA (MMIO or a hole), or a write hit a read-only slot.
    /// The vmm decides (device route, or an abort injected into the guest).
    NotMemory,
    /// Done (dirty log enabled or disabled, slot set or deleted).
    Done,
    /// The dirty bitmap: bit `n` of word `w` is page `64 w + n` from the requested IPA.
    DirtyBitmap {
        /// The bits.
        words: [u64; DIRTY_LOG_WORDS],
    },
    /// The counters.
    Counters(FaultCounters),
}

/// Why a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum MmuError {
    /// No memory slot covers the range (dirty logging outside RAM).
    NoSlot,
    /// Misaligned, empty, too long, overlapping another slot, or crossing a slot's end.
    BadRange,
    /// The memory-backing server answered `Retry` this many times in a row.
    BackingRetriesExhausted {
        /// Attempts made.
        attempts: u8,
    },
    /// The memory-backing server refused or failed (no such region, populate failed, offset
    /// beyond the region).
    BackingFailed,
    /// Out of memory: frames or page tables.
    OutOfMemory,
    /// The kernel refused the mapping (a revoked frame, a bad capability).
    MappingRefused,
    /// `EnableDirtyLog` of a new range while the VM already has `limit` windows (its manifest's
    /// `dirty_log_windows`): disable one first. Nothing changed; the VM's faults are resolved
    /// as before.
    DirtyLogWindowsExhausted {
        /// The VM's number of windows.
        limit: u16,
    },
}

impl core::fmt::Display for MmuError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoSlot => f.write_str("no memory slot covers the range"),
            Self::BadRange => f.write_str("bad range"),
            Self::BackingRetriesExhausted { attempts } => write!(
                f,
                "memory-backing server still answered retry after {attempts} attempts"
            ),
            Self::BackingFailed => f.write_str("memory-backing server failed"),
            Self::OutOfMemory => f.write_str("out of memory"),
            Self::MappingRefused => f.write_str("kernel refused the stage-2 mapping"),
            Self::DirtyLogWindowsExhausted { limit } => write!(
                f,
                "every dirty-log window of the VM is in use ({limit}, its manifest's \
                 dirty_log_windows)"
            ),
        }
    }
}

/// A reply: the result of the request.
pub type Response = Result<Reply, MmuError>;

/// The protocol.
pub struct Mmu;

impl ipc::Protocol for Mmu {
    type Request = Request;
    type Response = Response;
    fn is_idempotent(request: &Request) -> bool {
        !matches!(request, Request::GetAndClearDirtyLog { .. })
    }
}

ipc::assert_fits!(Request);
ipc::assert_fits!(Response);

#[cfg(test)]
mod tests;
