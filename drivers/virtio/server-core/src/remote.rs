//! The block device's backend: the physical driver, a `block_api::Block` server
//! (docs/VIRTIO.md, "Physical virtio-blk driver"), whose data goes through a RAM window it
//! shares with this client. Each transfer the device asks for is cut into pieces of at most
//! the window, each piece copied into the window and written, or read and copied out, one call
//! per piece. Every failure — the driver's typed error, a failed or refused call, an answer of
//! the wrong shape — is [`BackendError`], which the device answers IOERR.

use block_api::{BlockError, Reply, Request, SECTOR_SIZE};
use virtio_core::{BackendError, BlockBackend};

/// What the backend needs of the server: a call to the physical driver and the shared window.
pub trait BlockClient {
    /// Sends `request` to the driver: its answer, or `None` when the call failed (the driver
    /// is gone, the message was refused).
    fn call(&mut self, request: &Request) -> Option<Result<Reply, BlockError>>;
    /// Copies `bytes` into the window at `offset`; an error when they do not fit in it.
    fn copy_into_window(&mut self, offset: u64, bytes: &[u8]) -> Result<(), BackendError>;
    /// Copies the window's bytes at `offset` into `buffer`; an error when they are not all
    /// inside it.
    fn copy_out_of_window(&mut self, offset: u64, buffer: &mut [u8]) -> Result<(), BackendError>;
}

/// The disk as the driver describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disk {
    /// Its size in sectors.
    pub sectors: u64,
    /// It refuses writes.
    pub read_only: bool,
    /// The bytes one transfer may move: the window, in whole sectors (0: no transfers).
    pub piece_bytes: u64,
}

/// Asks the driver for the disk's size and the window's.
pub fn query(client: &mut impl BlockClient) -> Result<Disk, Option<BlockError>> {
    match client.call(&Request::Capacity) {
        Some(Ok(Reply::Capacity {
            sectors,
            read_only,
            window_bytes,
        })) => Ok(Disk {
            sectors,
            read_only,
            piece_bytes: window_bytes - window_bytes % SECTOR_SIZE,
        }),
        Some(Err(error)) => Err(Some(error)),
        Some(Ok(_)) | None => Err(None),
    }
}

/// [`BlockBackend`] over the driver.
#[derive(Debug)]
pub struct Remote<C> {
    client: C,
    disk: Disk,
}

impl<C: BlockClient> Remote<C> {
    /// The backend of `disk` (from [`query`]) through `client`.
    pub const fn new(client: C, disk: Disk) -> Self {
        Self { client, disk }
    }

    /// The disk.
    pub const fn disk(&self) -> Disk {
        self.disk
    }

    /// The client (for tests).
    pub fn client(&mut self) -> &mut C {
        &mut self.client
    }

    /// Moves `length` bytes from `sector` on, a piece at a time; `each` does one piece at
    /// `(sector, byte offset in the transfer, length)`.
    fn pieces(
        &mut self,
        sector: u64,
        length: usize,
        mut each: impl FnMut(&mut C, u64, usize, usize) -> Result<(), BackendError>,
    ) -> Result<(), BackendError> {
        let piece = usize::try_from(self.disk.piece_bytes).map_err(|_| BackendError)?;
        if piece == 0 || !(length as u64).is_multiple_of(SECTOR_SIZE) {
            return Err(BackendError);
        }
        let mut done = 0;
        while done < length {
            let size = piece.min(length - done);
            let at = sector
                .checked_add((done as u64) / SECTOR_SIZE)
                .ok_or(BackendError)?;
            each(&mut self.client, at, done, size)?;
            done += size;
        }
        Ok(())
    }
}

/// The driver's answer to a transfer or a flush: `Done`, or the request failed.
fn done(answer: Option<Result<Reply, BlockError>>) -> Result<(), BackendError> {
    match answer {
        Some(Ok(Reply::Done)) => Ok(()),
        _ => Err(BackendError),
    }
}

/// `size` bytes as a sector count (a piece is at most the window, far below 2^41 bytes).
fn count(size: usize) -> Result<u32, BackendError> {
    u32::try_from(size as u64 / SECTOR_SIZE).map_err(|_| BackendError)
}

impl<C: BlockClient> BlockBackend for Remote<C> {
    fn read(&mut self, sector: u64, buffer: &mut [u8]) -> Result<(), BackendError> {
        self.pieces(sector, buffer.len(), |client, sector, at, size| {
            let request = Request::Read {
                sector,
                count: count(size)?,
                offset: 0,
            };
            done(client.call(&request))?;
            client.copy_out_of_window(0, &mut buffer[at..at + size])
        })
    }

    fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), BackendError> {
        if self.disk.read_only {
            return Err(BackendError);
        }
        self.pieces(sector, data.len(), |client, sector, at, size| {
            client.copy_into_window(0, &data[at..at + size])?;
            let request = Request::Write {
                sector,
                count: count(size)?,
                offset: 0,
            };
            done(client.call(&request))
        })
    }

    fn flush(&mut self) -> Result<(), BackendError> {
        done(self.client.call(&Request::Flush))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// A driver with a disk in memory and a window, checking requests as the real one does.
    struct FakeDriver {
        disk: Vec<u8>,
        window: Vec<u8>,
        read_only: bool,
        calls: Vec<Request>,
        /// Answer the n-th call (from 0) with an IPC failure.
        fail_call: Option<usize>,
    }

    impl FakeDriver {
        fn new(sectors: usize, window: usize) -> Self {
            Self {
                disk: (0..sectors * 512).map(|i| (i % 253) as u8).collect(),
                window: vec![0; window],
                read_only: false,
                calls: Vec::new(),
                fail_call: None,
            }
        }

        fn range(
            &self,
            sector: u64,
            count: u32,
            offset: u64,
        ) -> Result<(usize, usize, usize), BlockError> {
            let bytes = count as usize * 512;
            let start = sector as usize * 512;
            if count == 0 {
                return Err(BlockError::EmptyTransfer);
            }
            if start + bytes > self.disk.len() {
                return Err(BlockError::OutOfRange {
                    capacity: self.disk.len() as u64 / 512,
                });
            }
            if offset as usize + bytes > self.window.len() {
                return Err(BlockError::BadOffset {
                    window_bytes: self.window.len() as u64,
                });
            }
            Ok((start, offset as usize, bytes))
        }
    }

    impl BlockClient for FakeDriver {
        fn call(&mut self, request: &Request) -> Option<Result<Reply, BlockError>> {
            let index = self.calls.len();
            self.calls.push(*request);
            if self.fail_call == Some(index) {
                return None;
            }
            Some(match *request {
                Request::Capacity => Ok(Reply::Capacity {
                    sectors: self.disk.len() as u64 / 512,
                    read_only: self.read_only,
                    window_bytes: self.window.len() as u64,
                }),
                Request::Read {
                    sector,
                    count,
                    offset,
                } => self
                    .range(sector, count, offset)
                    .map(|(start, offset, bytes)| {
                        self.window[offset..offset + bytes]
                            .copy_from_slice(&self.disk[start..start + bytes]);
                        Reply::Done
                    }),
                Request::Write {
                    sector,
                    count,
                    offset,
                } => {
                    if self.read_only {
                        return Some(Err(BlockError::ReadOnly));
                    }
                    self.range(sector, count, offset)
                        .map(|(start, offset, bytes)| {
                            self.disk[start..start + bytes]
                                .copy_from_slice(&self.window[offset..offset + bytes]);
                            Reply::Done
                        })
                }
                Request::Flush => Ok(Reply::Done),
            })
        }

        fn copy_into_window(&mut self, offset: u64, bytes: &[u8]) -> Result<(), BackendError> {
            let offset = offset as usize;
            let target = self.window.get_mut(offset..offset + bytes.len());
            target.ok_or(BackendError)?.copy_from_slice(bytes);
            Ok(())
        }

        fn copy_out_of_window(
            &mut self,
            offset: u64,
            buffer: &mut [u8],
        ) -> Result<(), BackendError> {
            let offset = offset as usize;
            let source = self.window.get(offset..offset + buffer.len());
            buffer.copy_from_slice(source.ok_or(BackendError)?);
            Ok(())
        }
    }

    fn remote(sectors: usize, window: usize) -> Remote<FakeDriver> {
        let mut driver = FakeDriver::new(sectors, window);
        let disk = query(&mut driver).unwrap();
        Remote::new(driver, disk)
    }

    #[test]
    fn the_capacity_gives_the_disk_and_whole_sectors_of_window() {
        let mut driver = FakeDriver::new(8192, 0x10000 + 100);
        assert_eq!(
            query(&mut driver),
            Ok(Disk {
                sectors: 8192,
                read_only: false,
                piece_bytes: 0x10000
            })
        );
        driver.fail_call = Some(1);
        assert_eq!(query(&mut driver), Err(None));
    }

    #[test]
    fn transfers_larger_than_the_window_go_in_window_sized_pieces() {
        // A 1 KiB window: a 4 KiB write is four calls of two sectors each.
        let mut backend = remote(64, 1024);
        let data: Vec<u8> = (0..4096).map(|i| (i * 7 % 256) as u8).collect();
        backend.write(10, &data).unwrap();
        let writes: Vec<(u64, u32)> = backend
            .client()
            .calls
            .iter()
            .filter_map(|call| match *call {
                Request::Write { sector, count, .. } => Some((sector, count)),
                _ => None,
            })
            .collect();
        assert_eq!(writes, [(10, 2), (12, 2), (14, 2), (16, 2)]);
        assert_eq!(backend.client().disk[10 * 512..18 * 512], data[..]);
        let mut back = vec![0u8; 4096 + 512];
        backend.read(9, &mut back).unwrap();
        assert_eq!(back[512..], data[..]);
        assert_eq!(back[..512], FakeDriver::new(64, 1).disk[9 * 512..10 * 512]);
        backend.flush().unwrap();
        assert_eq!(backend.client().calls.last(), Some(&Request::Flush));
    }

    #[test]
    fn every_failure_is_a_backend_error() {
        let mut backend = remote(16, 4096);
        let mut buffer = vec![0u8; 1024];
        assert_eq!(
            backend.read(15, &mut buffer),
            Err(BackendError),
            "past the end"
        );
        assert_eq!(
            backend.read(0, &mut buffer[..100]),
            Err(BackendError),
            "not whole sectors"
        );
        backend.client().fail_call = Some(backend.client().calls.len());
        assert_eq!(
            backend.write(0, &buffer),
            Err(BackendError),
            "the call failed"
        );
        assert_eq!(
            backend.client().disk[..1024],
            FakeDriver::new(16, 1).disk[..1024]
        );
        backend.client().fail_call = Some(backend.client().calls.len());
        assert_eq!(backend.flush(), Err(BackendError));
        assert!(backend.flush().is_ok());
        let mut read_only = FakeDriver::new(16, 4096);
        read_only.read_only = true;
        let disk = query(&mut read_only).unwrap();
        let mut backend = Remote::new(read_only, disk);
        let calls = backend.client().calls.len();
        assert_eq!(backend.write(0, &buffer), Err(BackendError));
        assert_eq!(backend.client().calls.len(), calls, "not even sent");
        // No window: no transfer at all.
        let mut windowless = remote(16, 100);
        assert_eq!(windowless.disk().piece_bytes, 0);
        assert_eq!(windowless.read(0, &mut buffer), Err(BackendError));
    }
}
