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
    chunks: Vec<Chunk, MAX_CHUNKS>,
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
                chunks: states,
            })
            .map_err(|_| MemoryError::OutOfMemory)
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
