//! The block protocol: what a block-device server (the physical virtio-blk driver,
//! docs/VIRTIO.md "Physical virtio-blk driver") answers its clients. Variant order is wire ABI:
//! append only.
//!
//! Data does not travel in messages. Each client shares one RAM region with the server, its
//! *window*, mapped into both (the manifest's `[regions.<name>] map`, with `frames` giving the
//! server the frame capability it asks the physical address of, so the device reads and writes
//! the window directly). `Read` and `Write` name sectors on the disk and a byte `offset` into the
//! window: `count` sectors of [`SECTOR_SIZE`] bytes from `offset`, all of which must lie inside
//! the window. A reply comes only when the device has finished with the window, so the client
//! may reuse it as soon as its call returns.
//!
//! Restart contract (Hubris's rule: server death is part of every protocol): every request is
//! idempotent, and `ipc::call` sends it again after a restart.
//! - `Capacity` and `Flush` change nothing a repeat could change.
//! - `Read` writes the same sectors' contents into the same window bytes again. The client is
//!   blocked in its call until the retry has answered, so nothing of its own can run between the
//!   two and see the window half-filled.
//! - `Write` of the same bytes to the same sectors leaves the disk as one write would. The data
//!   comes from the client's window, which it does not touch while its call is outstanding, so
//!   the repeat writes the same bytes. Where another client writes the same sectors meanwhile,
//!   the repeat may land after that write: that is the ordering any disk gives two overlapping
//!   writes neither of which has completed (a virtio device may use buffers in any order unless
//!   it offers `VIRTIO_F_IN_ORDER`, virtio 1.1 §6 "Reserved Feature Bits"), and a write that
//!   was never acknowledged has not completed.
#![no_std]
#![forbid(unsafe_code)]

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

/// Bytes in a sector: the unit of `sector` and `count` (virtio 1.1 §5.2.6: a request's sector
/// number is its offset multiplied by 512, whatever the disk's block size).
pub const SECTOR_SIZE: u64 = 512;

/// Requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum Request {
    /// The disk's size and whether it takes writes, and the size of the caller's window.
    Capacity,
    /// Read `count` sectors from `sector` into the window at byte `offset`.
    Read {
        /// The first sector.
        sector: u64,
        /// How many sectors (at least 1).
        count: u32,
        /// Where in the window the first sector's bytes go.
        offset: u64,
    },
    /// Write `count` sectors from the window at byte `offset` to the disk from `sector`.
    Write {
        /// The first sector.
        sector: u64,
        /// How many sectors (at least 1).
        count: u32,
        /// Where in the window the first sector's bytes are.
        offset: u64,
    },
    /// Make every write acknowledged so far durable (virtio's `VIRTIO_BLK_T_FLUSH`; done at
    /// once when the device has no write cache to flush).
    Flush,
}

/// Successful replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum Reply {
    /// The answer to `Capacity`.
    Capacity {
        /// The disk's size in sectors.
        sectors: u64,
        /// The device refuses writes (`VIRTIO_BLK_F_RO`).
        read_only: bool,
        /// The caller's window in bytes: the bound of `offset + count * SECTOR_SIZE`.
        window_bytes: u64,
    },
    /// The read, write or flush completed.
    Done,
}

/// Why a request failed. Nothing was transferred unless the error says the device failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum BlockError {
    /// `count` is 0.
    EmptyTransfer,
    /// `sector + count` is past the end of the disk.
    OutOfRange {
        /// The disk's size in sectors.
        capacity: u64,
    },
    /// `offset + count * SECTOR_SIZE` is past the end of the caller's window.
    BadOffset {
        /// The window's size in bytes.
        window_bytes: u64,
    },
    /// A write to a read-only device.
    ReadOnly,
    /// The device answered the request with an error (`VIRTIO_BLK_S_IOERR` or
    /// `VIRTIO_BLK_S_UNSUPP`), or refused it: the window's bytes are unspecified for a read, the
    /// sectors' contents for a write.
    DeviceError,
    /// The server has no device: none was found, or it did not initialise.
    NoDevice,
    /// The server has no window for this caller (its manifest maps none).
    NoWindow,
}

impl core::fmt::Display for BlockError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::EmptyTransfer => f.write_str("a transfer of no sectors"),
            Self::OutOfRange { capacity } => {
                write!(f, "past the end of the disk ({capacity} sectors)")
            }
            Self::BadOffset { window_bytes } => {
                write!(f, "past the end of the window ({window_bytes} bytes)")
            }
            Self::ReadOnly => f.write_str("the device is read-only"),
            Self::DeviceError => f.write_str("the device failed the request"),
            Self::NoDevice => f.write_str("no block device"),
            Self::NoWindow => f.write_str("no shared window for this client"),
        }
    }
}

/// A reply: the result of the request.
pub type Response = Result<Reply, BlockError>;

/// The protocol.
pub struct Block;

impl ipc::Protocol for Block {
    type Request = Request;
    type Response = Response;
    /// Every request (see the crate documentation for why reads and writes are).
    fn is_idempotent(_: &Request) -> bool {
        true
    }
}

ipc::assert_fits!(Request);
ipc::assert_fits!(Response);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_round_trips() {
        let requests = [
            Request::Capacity,
            Request::Read {
                sector: u64::MAX,
                count: u32::MAX,
                offset: u64::MAX,
            },
            Request::Write {
                sector: 7,
                count: 1,
                offset: 512,
            },
            Request::Flush,
        ];
        for request in requests {
            let encoded = ipc::encode(&request).unwrap();
            assert_eq!(
                ipc::decode::<Request>(encoded.label, &encoded.words),
                Ok(request)
            );
        }
        let responses: [Response; 10] = [
            Ok(Reply::Capacity {
                sectors: 2048,
                read_only: true,
                window_bytes: 0x10000,
            }),
            Ok(Reply::Done),
            Err(BlockError::EmptyTransfer),
            Err(BlockError::OutOfRange { capacity: u64::MAX }),
            Err(BlockError::BadOffset { window_bytes: 4096 }),
            Err(BlockError::ReadOnly),
            Err(BlockError::DeviceError),
            Err(BlockError::NoDevice),
            Err(BlockError::NoWindow),
            Ok(Reply::Done),
        ];
        for response in responses {
            let encoded = ipc::encode(&response).unwrap();
            assert_eq!(
                ipc::decode::<Response>(encoded.label, &encoded.words),
                Ok(response)
            );
        }
    }

    #[test]
    fn the_wire_order_of_requests_is_fixed() {
        // Variant indices are the first byte: appending keeps old clients working, reordering
        // would not.
        let first_byte = |request: Request| ipc::encode(&request).unwrap().words[0] as u8;
        assert_eq!(first_byte(Request::Capacity), 0);
        let read = Request::Read {
            sector: 0,
            count: 1,
            offset: 0,
        };
        assert_eq!(first_byte(read), 1);
        let write = Request::Write {
            sector: 0,
            count: 1,
            offset: 0,
        };
        assert_eq!(first_byte(write), 2);
        assert_eq!(first_byte(Request::Flush), 3);
    }

    #[test]
    fn every_request_is_retried_after_a_restart() {
        use ipc::Protocol;
        assert!(Block::is_idempotent(&Request::Capacity));
        assert!(Block::is_idempotent(&Request::Flush));
        assert!(Block::is_idempotent(&Request::Read {
            sector: 0,
            count: 8,
            offset: 0
        }));
        assert!(Block::is_idempotent(&Request::Write {
            sector: 0,
            count: 8,
            offset: 0
        }));
    }

    #[test]
    fn garbage_does_not_decode() {
        // Variant index 4 does not exist.
        assert!(ipc::decode::<Request>(1, &[4]).is_err());
        // A read cut short.
        assert!(ipc::decode::<Request>(2, &[0x0101]).is_err());
    }
}
