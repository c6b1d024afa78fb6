//! Request validation: every `Read` and `Write` is checked before anything reaches the device,
//! so the device is only ever given sectors that exist and window bytes the client owns.
//!
//! Checks, in this order (the first that fails is the answer): `count` is not 0
//! ([`BlockError::EmptyTransfer`]); the server has a window ([`BlockError::NoWindow`]);
//! `offset + count * 512` lies inside the window ([`BlockError::BadOffset`]); `sector + count`
//! lies inside the disk ([`BlockError::OutOfRange`]); a write goes to a writable device
//! ([`BlockError::ReadOnly`]). All arithmetic is checked, so no value of the three fields
//! overflows into a valid-looking range.

use block_api::{BlockError, Request, SECTOR_SIZE};

/// The largest window a transfer may use: virtio's descriptor length is 32 bits
/// (`struct virtq_desc.len`, virtio 1.1 §2.6.5), and one transfer is one descriptor, rounded
/// down to whole sectors.
pub const MAX_WINDOW_BYTES: u64 = (u32::MAX as u64 / SECTOR_SIZE) * SECTOR_SIZE;

/// What a request is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// The disk's size in sectors.
    pub capacity: u64,
    /// The device refuses writes.
    pub read_only: bool,
    /// The window's usable size in bytes (at most [`MAX_WINDOW_BYTES`]), `None` without one.
    pub window_bytes: Option<u64>,
}

impl Geometry {
    /// The geometry of a disk of `capacity` sectors and a window of `window_bytes` bytes
    /// (clamped to [`MAX_WINDOW_BYTES`]).
    pub fn new(capacity: u64, read_only: bool, window_bytes: Option<u64>) -> Self {
        Self {
            capacity,
            read_only,
            window_bytes: window_bytes.map(|bytes| bytes.min(MAX_WINDOW_BYTES)),
        }
    }
}

/// Which way the data goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Disk to window.
    Read,
    /// Window to disk.
    Write,
}

/// A checked transfer: `bytes` bytes between sector `sector` and the window at `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// Which way.
    pub direction: Direction,
    /// The first sector.
    pub sector: u64,
    /// Byte offset in the window.
    pub offset: u64,
    /// Length in bytes: a non-zero multiple of the sector size, at most the window's size.
    pub bytes: u64,
}

/// A request after validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checked {
    /// Answer the geometry.
    Capacity,
    /// Move data.
    Transfer(Transfer),
    /// Flush the device's write cache.
    Flush,
}

/// Checks `request` against `geometry`.
pub fn check(request: &Request, geometry: &Geometry) -> Result<Checked, BlockError> {
    let (direction, sector, count, offset) = match *request {
        Request::Capacity => return Ok(Checked::Capacity),
        Request::Flush => return Ok(Checked::Flush),
        Request::Read {
            sector,
            count,
            offset,
        } => (Direction::Read, sector, count, offset),
        Request::Write {
            sector,
            count,
            offset,
        } => (Direction::Write, sector, count, offset),
    };
    if count == 0 {
        return Err(BlockError::EmptyTransfer);
    }
    let window_bytes = geometry.window_bytes.ok_or(BlockError::NoWindow)?;
    // At most u32::MAX * 512: no overflow in u64.
    let bytes = u64::from(count) * SECTOR_SIZE;
    if offset
        .checked_add(bytes)
        .is_none_or(|end| end > window_bytes)
    {
        return Err(BlockError::BadOffset { window_bytes });
    }
    if sector
        .checked_add(u64::from(count))
        .is_none_or(|end| end > geometry.capacity)
    {
        return Err(BlockError::OutOfRange {
            capacity: geometry.capacity,
        });
    }
    if direction == Direction::Write && geometry.read_only {
        return Err(BlockError::ReadOnly);
    }
    Ok(Checked::Transfer(Transfer {
        direction,
        sector,
        offset,
        bytes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A 1 MiB disk (2048 sectors) and a 64 KiB window.
    const DISK: Geometry = Geometry {
        capacity: 2048,
        read_only: false,
        window_bytes: Some(0x10000),
    };

    fn read(sector: u64, count: u32, offset: u64) -> Request {
        Request::Read {
            sector,
            count,
            offset,
        }
    }

    fn write(sector: u64, count: u32, offset: u64) -> Request {
        Request::Write {
            sector,
            count,
            offset,
        }
    }

    #[test]
    fn transfers_inside_the_disk_and_the_window_pass() {
        assert_eq!(
            check(&read(0, 1, 0), &DISK),
            Ok(Checked::Transfer(Transfer {
                direction: Direction::Read,
                sector: 0,
                offset: 0,
                bytes: 512
            }))
        );
        // The last sector, into the last 512 bytes of the window; the window's whole length.
        assert_eq!(
            check(&write(2047, 1, 0xFE00), &DISK),
            Ok(Checked::Transfer(Transfer {
                direction: Direction::Write,
                sector: 2047,
                offset: 0xFE00,
                bytes: 512
            }))
        );
        let whole = check(&read(2048 - 128, 128, 0), &DISK);
        assert!(matches!(whole, Ok(Checked::Transfer(t)) if t.bytes == 0x10000));
        // An offset need not be sector aligned: the device takes any buffer address.
        assert!(check(&read(0, 1, 3), &DISK).is_ok());
        assert_eq!(check(&Request::Capacity, &DISK), Ok(Checked::Capacity));
        assert_eq!(check(&Request::Flush, &DISK), Ok(Checked::Flush));
    }

    #[test]
    fn each_bound_is_refused_one_past_it() {
        assert_eq!(
            check(&read(2048, 1, 0), &DISK),
            Err(BlockError::OutOfRange { capacity: 2048 })
        );
        assert_eq!(
            check(&read(2047, 2, 0), &DISK),
            Err(BlockError::OutOfRange { capacity: 2048 })
        );
        assert_eq!(
            check(&write(0, 1, 0xFE01), &DISK),
            Err(BlockError::BadOffset {
                window_bytes: 0x10000
            })
        );
        assert_eq!(
            check(&read(0, 129, 0), &DISK),
            Err(BlockError::BadOffset {
                window_bytes: 0x10000
            }),
            "more sectors than the window holds"
        );
        assert_eq!(check(&read(0, 0, 0), &DISK), Err(BlockError::EmptyTransfer));
    }

    #[test]
    fn overflowing_fields_are_refused_not_wrapped() {
        assert_eq!(
            check(&read(u64::MAX, 1, 0), &DISK),
            Err(BlockError::OutOfRange { capacity: 2048 })
        );
        assert_eq!(
            check(&read(0, 1, u64::MAX - 100), &DISK),
            Err(BlockError::BadOffset {
                window_bytes: 0x10000
            })
        );
        let huge = Geometry::new(u64::MAX, false, Some(u64::MAX));
        assert_eq!(huge.window_bytes, Some(MAX_WINDOW_BYTES));
        assert_eq!(
            check(&read(u64::MAX, 1, 0), &huge),
            Err(BlockError::OutOfRange { capacity: u64::MAX })
        );
        assert_eq!(
            check(&read(0, u32::MAX, 0), &huge),
            Err(BlockError::BadOffset {
                window_bytes: MAX_WINDOW_BYTES
            }),
            "u32::MAX sectors do not fit one descriptor"
        );
    }

    #[test]
    fn writes_to_a_read_only_disk_and_transfers_without_a_window_are_refused() {
        let read_only = Geometry {
            read_only: true,
            ..DISK
        };
        assert_eq!(
            check(&write(0, 1, 0), &read_only),
            Err(BlockError::ReadOnly)
        );
        assert!(check(&read(0, 1, 0), &read_only).is_ok());
        let windowless = Geometry::new(2048, false, None);
        assert_eq!(
            check(&read(0, 1, 0), &windowless),
            Err(BlockError::NoWindow)
        );
        assert_eq!(
            check(&Request::Capacity, &windowless),
            Ok(Checked::Capacity)
        );
    }

    proptest! {
        /// Whatever the fields, an accepted transfer lies inside the disk and the window.
        #[test]
        fn accepted_transfers_stay_inside(
            sector in any::<u64>(),
            count in any::<u32>(),
            offset in any::<u64>(),
            capacity in any::<u64>(),
            window in any::<u64>(),
            is_write in any::<bool>(),
        ) {
            let geometry = Geometry::new(capacity, false, Some(window));
            let request = if is_write { write(sector, count, offset) } else { read(sector, count, offset) };
            if let Ok(Checked::Transfer(t)) = check(&request, &geometry) {
                prop_assert!(t.bytes > 0 && t.bytes % SECTOR_SIZE == 0);
                prop_assert!(t.offset as u128 + t.bytes as u128 <= geometry.window_bytes.unwrap_or(0) as u128);
                prop_assert!(t.sector as u128 + (t.bytes / SECTOR_SIZE) as u128 <= capacity as u128);
                prop_assert!(t.bytes <= u64::from(u32::MAX));
            }
        }
    }
}
