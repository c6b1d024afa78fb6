//! The memory-backing server's decisions (docs/DESIGN.md, "Lazily backed regions with retry"):
//! which frame backs an offset of a guest RAM region, how large a frame may be lent, and when to
//! answer `Retry`.
//!
//! Guest RAM is populated by its owner on first touch, one 2 MiB chunk at a time (the image was
//! preloaded by the kernel at boot and the rest of RAM is zero, so "populating" here is the
//! owner's bookkeeping; a device server backing a BAR-like window would fill the chunk). A
//! request for a chunk that is not populated starts its population and is answered `Retry`:
//! the region's state changed while the request was in flight, KVM's `-EAGAIN` from
//! `hva_to_pfn_remapped`. Population completes before the next request is served, so the
//! mmu-server's retry finds the chunk ready. Frames are lent as capabilities, never pinned.
//!
//! Frames are lent with rights ([`Backing::lend_rights`]): every right the region's range has
//! (read, write, execute: the guest runs from its RAM) to the VM's own mmu-server, which maps
//! guest RAM for the guest; read-only to any other client (a server inspecting guest memory),
//! so a borrower that is not the mmu-server can never map a frame writable or executable.
#![no_std]
#![forbid(unsafe_code)]

use heapless::Vec;
use memory_api::{FrameSize, MemoryError, Response};

/// Bytes per population chunk (and per large frame).
pub const CHUNK: u64 = 2 << 20;
/// Most chunks of one region (1 GiB).
pub const MAX_CHUNKS: usize = 512;
/// Most regions one server backs.
pub const MAX_REGIONS: usize = 8;

/// Population state of one chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// Never touched.
    Unpopulated,
    /// Its owner is filling it.
    Populating,
    /// Backed and lendable.
    Ready,
}

/// One guest RAM region.
#[derive(Clone, Debug)]
pub struct Region {
    /// The region's number in requests (the VM's index).
    pub number: u16,
    /// Size in bytes.
    pub size: u64,
    /// The slot of the frame-range capability over it.
    pub range_slot: u64,
    /// The badge of the VM's mmu-server, lent frames with every right.
    pub mapper: Option<u64>,
    chunks: Vec<Chunk, MAX_CHUNKS>,
}

/// The rights a frame is lent with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LendRights {
    /// The range's rights, unchanged: to the VM's mmu-server.
    Full,
    /// Read only: to anyone else.
    ReadOnly,
}

/// What to do for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Carve the frame at byte `offset` of the range in `range_slot`, `size` large, and lend it.
    Lend {
        range_slot: u64,
        offset: u64,
        size: FrameSize,
    },
    /// Answer with this response, lending nothing.
    Answer(Response),
}

/// Every region this server backs.
#[derive(Default)]
pub struct Backing {
    regions: Vec<Region, MAX_REGIONS>,
}

impl Backing {
    /// No regions yet.
    pub const fn new() -> Self {
        Self {
            regions: Vec::new(),
        }
    }

    /// Adds a region of `size` bytes (a multiple of 4 KiB, at most 1 GiB) behind `range_slot`.
    pub fn add_region(
        &mut self,
        number: u16,
        size: u64,
        range_slot: u64,
    ) -> Result<(), MemoryError> {
        let chunks = size.div_ceil(CHUNK) as usize;
        if size == 0 || !size.is_multiple_of(4096) || chunks > MAX_CHUNKS {
            return Err(MemoryError::OutOfMemory);
        }
        let mut states = Vec::new();
        states
            .resize(chunks, Chunk::Unpopulated)
            .map_err(|_| MemoryError::OutOfMemory)?;
        self.regions
            .push(Region {
                number,
                size,
                range_slot,
                mapper: None,
                chunks: states,
            })
            .map_err(|_| MemoryError::OutOfMemory)
    }

    /// Names the VM's mmu-server (the badge its calls carry) for region `number`: it is lent
    /// that region's frames with every right.
    pub fn set_mapper(&mut self, number: u16, badge: u64) {
        if let Some(region) = self.regions.iter_mut().find(|r| r.number == number) {
            region.mapper = Some(badge);
        }
    }

    /// The rights a frame of region `number` is lent with to the caller with `badge`.
    pub fn lend_rights(&self, number: u16, badge: u64) -> LendRights {
        match self.regions.iter().find(|r| r.number == number) {
            Some(region) if region.mapper == Some(badge) => LendRights::Full,
            _ => LendRights::ReadOnly,
        }
    }

    /// Decides a `FrameFor` request. Population started by an earlier request is complete now.
    pub fn frame_for(&mut self, number: u16, offset: u64, size: FrameSize) -> Decision {
        for region in self.regions.iter_mut() {
            for chunk in region.chunks.iter_mut() {
                if *chunk == Chunk::Populating {
                    *chunk = Chunk::Ready;
                }
            }
        }
        let Some(region) = self.regions.iter_mut().find(|r| r.number == number) else {
            return Decision::Answer(Response::Error(MemoryError::NoSuchRegion));
        };
        if !offset.is_multiple_of(4096) {
            return Decision::Answer(Response::Error(MemoryError::Misaligned));
        }
        if offset >= region.size {
            return Decision::Answer(Response::OutOfRange);
        }
        let index = (offset / CHUNK) as usize;
        match region.chunks[index] {
            Chunk::Ready => {}
            Chunk::Unpopulated | Chunk::Populating => {
                region.chunks[index] = Chunk::Populating;
                return Decision::Answer(Response::Retry);
            }
        }
        let chunk_start = offset & !(CHUNK - 1);
        let whole_chunk = chunk_start + CHUNK <= region.size;
        if size == FrameSize::Size2M && whole_chunk {
            Decision::Lend {
                range_slot: region.range_slot,
                offset: chunk_start,
                size: FrameSize::Size2M,
            }
        } else {
            Decision::Lend {
                range_slot: region.range_slot,
                offset,
                size: FrameSize::Size4K,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backing() -> Backing {
        let mut backing = Backing::new();
        backing.add_region(0, 5 << 20, 7).unwrap(); // 2.5 chunks
        backing
    }

    #[test]
    fn first_touch_of_a_chunk_answers_retry_then_lends() {
        let mut backing = backing();
        assert_eq!(
            backing.frame_for(0, 0x3000, FrameSize::Size2M),
            Decision::Answer(Response::Retry)
        );
        assert_eq!(
            backing.frame_for(0, 0x3000, FrameSize::Size2M),
            Decision::Lend {
                range_slot: 7,
                offset: 0,
                size: FrameSize::Size2M
            }
        );
        // Asking again lends the same frame (idempotent), without another Retry.
        assert_eq!(
            backing.frame_for(0, 0x1000, FrameSize::Size4K),
            Decision::Lend {
                range_slot: 7,
                offset: 0x1000,
                size: FrameSize::Size4K
            }
        );
    }

    #[test]
    fn a_partial_last_chunk_only_lends_pages_and_bad_requests_are_typed() {
        let mut backing = backing();
        let tail = 4 << 20; // the half chunk at the end
        assert_eq!(
            backing.frame_for(0, tail, FrameSize::Size2M),
            Decision::Answer(Response::Retry)
        );
        assert_eq!(
            backing.frame_for(0, tail + 0x2000, FrameSize::Size2M),
            Decision::Lend {
                range_slot: 7,
                offset: tail + 0x2000,
                size: FrameSize::Size4K
            }
        );
        assert_eq!(
            backing.frame_for(0, 5 << 20, FrameSize::Size4K),
            Decision::Answer(Response::OutOfRange)
        );
        assert_eq!(
            backing.frame_for(0, 0x10, FrameSize::Size4K),
            Decision::Answer(Response::Error(MemoryError::Misaligned))
        );
        assert_eq!(
            backing.frame_for(3, 0, FrameSize::Size4K),
            Decision::Answer(Response::Error(MemoryError::NoSuchRegion))
        );
    }

    #[test]
    fn only_the_vms_mmu_server_is_lent_frames_with_every_right() {
        let mut backing = backing();
        backing.add_region(1, 4096, 8).unwrap();
        assert_eq!(
            backing.lend_rights(0, 3),
            LendRights::ReadOnly,
            "no mmu named yet"
        );
        backing.set_mapper(0, 3);
        assert_eq!(backing.lend_rights(0, 3), LendRights::Full);
        assert_eq!(
            backing.lend_rights(0, 4),
            LendRights::ReadOnly,
            "another client"
        );
        assert_eq!(
            backing.lend_rights(1, 3),
            LendRights::ReadOnly,
            "another VM's RAM"
        );
        assert_eq!(
            backing.lend_rights(9, 3),
            LendRights::ReadOnly,
            "no such region"
        );
    }

    #[test]
    fn regions_are_checked_when_added() {
        let mut backing = Backing::new();
        assert_eq!(backing.add_region(0, 0, 1), Err(MemoryError::OutOfMemory));
        assert_eq!(backing.add_region(0, 100, 1), Err(MemoryError::OutOfMemory));
        assert_eq!(
            backing.add_region(0, 2 << 30, 1),
            Err(MemoryError::OutOfMemory)
        );
        assert!(backing.add_region(0, 1 << 30, 1).is_ok());
    }
}
