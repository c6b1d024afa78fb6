//! The protocol of the memory-backing server, spoken by the mmu-server. Variant order is wire
//! ABI: append only.
//!
//! The memory-backing server owns the frames of guest RAM. A region is zero-filled on demand,
//! preloaded from an image in the boot payload, or populated lazily by its owner on first touch
//! (docs/DESIGN.md, "Lazily backed regions with retry"). The mmu-server asks for the frame that
//! backs a region offset; the reply carries a frame *capability*, transferred with the reply, which
//! the mmu-server maps into the guest's VSpace. Frames are lent, never pinned: the backing server
//! can revoke them, and the mapping goes with the capability.
//!
//! When the region's state changes while a request is in flight (its owner is populating it, or
//! the frame was just revoked), the answer is [`Response::Retry`]: KVM's `-EAGAIN` from
//! `hva_to_pfn_remapped`. The mmu-server retries, bounded.
#![no_std]
#![forbid(unsafe_code)]

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

/// A frame size the backing server can lend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, MaxSize)]
pub enum FrameSize {
    /// 4 KiB.
    Size4K,
    /// 2 MiB, physically contiguous and 2 MiB aligned.
    Size2M,
}

impl FrameSize {
    /// Bytes in the frame.
    pub const fn bytes(self) -> u64 {
        match self {
            FrameSize::Size4K => 4 << 10,
            FrameSize::Size2M => 2 << 20,
        }
    }
}

/// Requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum Request {
    /// The frame that backs byte `offset` of `region`, as large as `size` if the backing has a
    /// `size`-aligned, contiguous frame holding that offset, else 4 KiB. Idempotent: asking again
    /// for the same offset lends the same frame (populating it only the first time).
    FrameFor {
        /// The region, as numbered in the manifest.
        region: u16,
        /// Byte offset inside the region.
        offset: u64,
        /// The largest size wanted.
        size: FrameSize,
    },
}

/// A frame lent with the reply. The capability itself travels in the reply's capability slot;
/// this names it in the backing server's frame table, and says what it covers: the frame holds
/// the region bytes from the requested offset rounded down to `size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct Lent {
    /// The backing server's index of the frame (stable while the frame is lent).
    pub frame_index: u32,
    /// Its size: at most the size asked for.
    pub size: FrameSize,
}

/// Responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum Response {
    /// The frame, lent with this reply.
    Frame(Lent),
    /// The region's state changed under the request: ask again.
    Retry,
    /// The offset is beyond the region's end.
    OutOfRange,
    /// The request failed.
    Error(MemoryError),
}

/// Why a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum MemoryError {
    /// No region with this number.
    NoSuchRegion,
    /// The offset is not 4 KiB aligned.
    Misaligned,
    /// No free frame to fill the region with.
    OutOfMemory,
    /// The region's owner could not populate it.
    PopulateFailed,
    /// The caller may not use this region.
    NotPermitted,
}

impl core::fmt::Display for MemoryError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::NoSuchRegion => "no such memory region",
            Self::Misaligned => "offset not page aligned",
            Self::OutOfMemory => "out of frames",
            Self::PopulateFailed => "the region's owner could not populate it",
            Self::NotPermitted => "region not permitted to this client",
        })
    }
}

/// The protocol.
pub struct Memory;

impl ipc::Protocol for Memory {
    type Request = Request;
    type Response = Response;
    fn is_idempotent(request: &Request) -> bool {
        match request {
            Request::FrameFor { .. } => true,
        }
    }
}

ipc::assert_fits!(Request);
ipc::assert_fits!(Response);

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use ipc::Protocol;

    #[test]
    fn every_variant_round_trips() {
        let requests = [
            Request::FrameFor {
                region: u16::MAX,
                offset: u64::MAX,
                size: FrameSize::Size2M,
            },
            Request::FrameFor {
                region: 0,
                offset: 0x1000,
                size: FrameSize::Size4K,
            },
        ];
        for request in requests {
            let encoded = ipc::encode(&request).unwrap();
            assert_eq!(
                ipc::decode::<Request>(encoded.label, &encoded.words),
                Ok(request)
            );
            assert!(Memory::is_idempotent(&request));
        }
        let mut responses = std::vec![
            Response::Frame(Lent {
                frame_index: u32::MAX,
                size: FrameSize::Size2M,
            }),
            Response::Retry,
            Response::OutOfRange,
        ];
        for error in [
            MemoryError::NoSuchRegion,
            MemoryError::Misaligned,
            MemoryError::OutOfMemory,
            MemoryError::PopulateFailed,
            MemoryError::NotPermitted,
        ] {
            responses.push(Response::Error(error));
        }
        for response in responses {
            let encoded = ipc::encode(&response).unwrap();
            assert_eq!(
                ipc::decode::<Response>(encoded.label, &encoded.words),
                Ok(response)
            );
        }
    }

    #[test]
    fn wire_format_is_stable() {
        // Variant order is ABI: FrameFor is variant 0, sizes 0 and 1.
        let encoded = ipc::encode(&Request::FrameFor {
            region: 1,
            offset: 2,
            size: FrameSize::Size2M,
        })
        .unwrap();
        assert_eq!((encoded.label, encoded.words[0]), (4, 0x0102_0100));
        assert_eq!(ipc::encode(&Response::Retry).unwrap().words[0], 1);
        assert_eq!(FrameSize::Size2M.bytes(), 0x20_0000);
    }
}
