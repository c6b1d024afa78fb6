//! The block device (virtio 1.2 §5.2): one request queue, requests served synchronously
//! through a [`BlockBackend`], in order.
//!
//! Offered: VIRTIO_F_VERSION_1, VIRTIO_BLK_F_SEG_MAX (so Linux sends more than one data
//! segment per request, up to [`SEG_MAX`], which with the header and status fills a chain of
//! [`QUEUE_SIZE_MAX`] descriptors), VIRTIO_BLK_F_FLUSH, and VIRTIO_BLK_F_BLK_SIZE and
//! VIRTIO_BLK_F_RO when configured. Requests: IN, OUT, FLUSH and GET_ID; any other type is
//! answered UNSUPP.
//!
//! A request is a chain whose device-readable bytes are the 16-byte header (type, reserved,
//! sector) followed, for OUT, by the data, and whose device-writable bytes are, for IN and
//! GET_ID, the data, then always one status byte, the chain's last (§5.2.6). Data lengths are
//! multiples of 512 and the sectors must lie below the capacity (§5.2.6.1). Whatever is wrong
//! with a request fails that request alone: IOERR in its status byte, or, when there is no
//! usable status byte (the chain does not end in a writable byte of RAM), it is completed with
//! nothing written. The device and its queue carry on.

use crate::memory::{GuestMemory, RamWindow};
use crate::mmio::{BusError, Event, Transport};
use crate::queue::{Chain, QUEUE_SIZE_MAX};
use device_api::{Request, Response};

/// DeviceID of a block device (§5.2.1).
pub const DEVICE_ID: u32 = 2;
/// The request queue's index (§5.2.2).
pub const REQUEST_QUEUE: u16 = 0;
/// Sector size of every request, whatever the block size (§5.2.6).
pub const SECTOR_BYTES: u32 = 512;
/// Length of the GET_ID string (VIRTIO_BLK_ID_BYTES).
pub const ID_BYTES: usize = 20;
/// Data segments per request offered in `seg_max`: a whole chain is header + data + status.
pub const SEG_MAX: u32 = QUEUE_SIZE_MAX as u32 - 2;
/// The configuration structure's size (§5.2.4, up to `secure_erase_sector_alignment`).
pub const CONFIG_BYTES: usize = 72;

/// Block feature bits (§5.2.3).
pub mod feature {
    pub const SEG_MAX: u64 = 1 << 2;
    pub const RO: u64 = 1 << 5;
    pub const BLK_SIZE: u64 = 1 << 6;
    pub const FLUSH: u64 = 1 << 9;
}

/// Request types (§5.2.6).
pub mod request_type {
    pub const IN: u32 = 0;
    pub const OUT: u32 = 1;
    pub const FLUSH: u32 = 4;
    pub const GET_ID: u32 = 8;
}

/// Status byte values (§5.2.6).
pub mod request_status {
    pub const OK: u8 = 0;
    pub const IOERR: u8 = 1;
    pub const UNSUPP: u8 = 2;
}

/// The request header's size: type u32, reserved u32, sector u64.
const HEADER_BYTES: u32 = 16;
/// Data goes between guest memory and the backend in pieces of this size (a multiple of the
/// sector size).
const BOUNCE_BYTES: usize = 4096;

/// The backend could not do the transfer; the request is answered IOERR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendError;

/// Where the sectors live. Every call is for whole sectors inside the capacity: `buffer`
/// lengths are non-zero multiples of 512 and `sector + len / 512 <= capacity`.
pub trait BlockBackend {
    /// Fills `buffer` from `sector` on.
    fn read(&mut self, sector: u64, buffer: &mut [u8]) -> Result<(), BackendError>;
    /// Writes `data` from `sector` on.
    fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), BackendError>;
    /// Makes every completed write durable.
    fn flush(&mut self) -> Result<(), BackendError>;
}

/// What the device presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockConfig {
    /// Size in 512-byte sectors.
    pub capacity_sectors: u64,
    /// VIRTIO_BLK_F_BLK_SIZE: the block size Linux takes as its logical block size.
    pub block_size: Option<u32>,
    /// VIRTIO_BLK_F_RO: every OUT is refused with IOERR and writes nothing.
    pub read_only: bool,
    /// The GET_ID answer: ASCII, NUL-padded.
    pub serial: [u8; ID_BYTES],
}

/// A [`BlockConfig`] the device cannot present.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// Not a power of two in 512..=4096: Linux's `blk_validate_block_size` refuses it (with
    /// 4 KiB pages).
    BadBlockSize(u32),
}

/// One virtio block device: transport, configuration and scratch space.
#[derive(Clone, Debug)]
pub struct BlockDevice {
    transport: Transport,
    config: BlockConfig,
    config_space: [u8; CONFIG_BYTES],
    chain: Chain,
    bounce: [u8; BOUNCE_BYTES],
}

impl BlockDevice {
    /// A device in its reset state, for a guest whose RAM is `ram`. About 6.5 KiB: keep it
    /// in a static.
    pub fn new(config: BlockConfig, ram: RamWindow) -> Result<Self, ConfigError> {
        if let Some(size) = config.block_size
            && !(size.is_power_of_two() && (512..=4096).contains(&size))
        {
            return Err(ConfigError::BadBlockSize(size));
        }
        let mut features = feature::SEG_MAX | feature::FLUSH;
        if config.read_only {
            features |= feature::RO;
        }
        let mut config_space = [0u8; CONFIG_BYTES];
        config_space[0..8].copy_from_slice(&config.capacity_sectors.to_le_bytes());
        config_space[12..16].copy_from_slice(&SEG_MAX.to_le_bytes());
        if let Some(size) = config.block_size {
            features |= feature::BLK_SIZE;
            config_space[20..24].copy_from_slice(&size.to_le_bytes());
        }
        Ok(Self {
            transport: Transport::new(DEVICE_ID, features, 1, ram),
            config,
            config_space,
            chain: Chain::new(),
            bounce: [0; BOUNCE_BYTES],
        })
    }

    /// One MMIO access from the vmm, answered with the interrupt line after it.
    pub fn handle(
        &mut self,
        request: Request,
        memory: &mut impl GuestMemory,
        backend: &mut impl BlockBackend,
    ) -> Response {
        let outcome = match request {
            Request::Read { offset, width } => self.read(offset, width).map(Some),
            Request::Write {
                offset,
                width,
                value,
            } => self
                .write(offset, width, value, memory, backend)
                .ok()
                .map(|_| None),
            // `Request::Line` asks for the line's level alone.
            Request::Line => Some(None),
            // Answered with the line, low after the reset.
            Request::Reset => {
                self.reset();
                Some(None)
            }
        };
        crate::mmio::respond(outcome, self.interrupt_line())
    }

    /// A register or configuration read; `None` is a bus error.
    pub fn read(&self, offset: u32, width: u8) -> Option<u64> {
        self.transport.read(offset, width, &self.config_space)
    }

    /// The VM's reset (`Request::Reset`): the transport and its queue go back to their reset
    /// state, as a driver's write of 0 to Status puts them, so nothing of the old guest's
    /// rings is touched again. The configuration (capacity, block size, serial) is what the
    /// device is and stays. The backend is not involved: requests are served synchronously, so
    /// every write the device completed was handed to it before its completion was published.
    pub fn reset(&mut self) {
        self.transport.reset();
    }

    /// A register write; a notification (or DRIVER_OK) serves the request queue at once.
    pub fn write(
        &mut self,
        offset: u32,
        width: u8,
        value: u64,
        memory: &mut impl GuestMemory,
        backend: &mut impl BlockBackend,
    ) -> Result<Option<Event>, BusError> {
        let event = self.transport.write(offset, width, value)?;
        if matches!(event, Some(Event::Notify(REQUEST_QUEUE) | Event::DriverOk)) {
            self.process(memory, backend);
        }
        Ok(event)
    }

    /// Serves every available request; returns how many were completed.
    pub fn process(
        &mut self,
        memory: &mut impl GuestMemory,
        backend: &mut impl BlockBackend,
    ) -> usize {
        // FLUSH offered but not accepted: every write must be stable when it completes
        // (§5.2.6.2, first case of "stable").
        let device = Device {
            config: &self.config,
            write_through: self.transport.driver_features() & feature::FLUSH == 0,
        };
        let bounce = &mut self.bounce;
        self.transport
            .process(REQUEST_QUEUE, memory, &mut self.chain, |memory, chain| {
                serve(&device, bounce, memory, backend, chain)
            })
    }

    /// After a restart with the transport state restored ([`BlockDevice::transport_mut`]):
    /// recovers the queue position from guest memory and serves what is pending.
    pub fn recover(&mut self, memory: &mut impl GuestMemory, backend: &mut impl BlockBackend) {
        self.transport.recover(memory);
        self.process(memory, backend);
    }

    /// The interrupt line's level.
    pub const fn interrupt_line(&self) -> bool {
        self.transport.interrupt_line()
    }

    /// The transport state (to save a copy).
    pub const fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The transport state (to restore a saved copy before [`BlockDevice::recover`]).
    pub fn transport_mut(&mut self) -> &mut Transport {
        &mut self.transport
    }
}

/// What a request is served against.
struct Device<'a> {
    config: &'a BlockConfig,
    /// Flush after every write, before completing it.
    write_through: bool,
}

/// Serves one chain; returns the used length: the bytes written into it from its first
/// writable byte on without a gap (§2.7.8.2 lets it be an underestimate, never more).
fn serve(
    device: &Device<'_>,
    bounce: &mut [u8; BOUNCE_BYTES],
    memory: &mut impl GuestMemory,
    backend: &mut impl BlockBackend,
    chain: &Chain,
) -> u32 {
    let Some(status_address) = chain.last_writable_byte() else {
        // No status byte to answer in: the request is dropped (completed with nothing).
        return 0;
    };
    let (status, data_written) = match chain.error() {
        Some(_) => (request_status::IOERR, 0),
        None => execute(device, bounce, memory, backend, chain),
    };
    let status_written = memory.write(status_address, &[status]).is_ok();
    // The status byte is the last writable byte: it extends the written run only when the
    // data before it was all written.
    if status_written && chain.error().is_none() && data_written + 1 == chain.writable_len() {
        data_written + 1
    } else {
        data_written
    }
}

/// Carries out a well-formed chain's request: the status and the data bytes written.
fn execute(
    device: &Device<'_>,
    bounce: &mut [u8; BOUNCE_BYTES],
    memory: &mut impl GuestMemory,
    backend: &mut impl BlockBackend,
    chain: &Chain,
) -> (u8, u32) {
    const FAILED: (u8, u32) = (request_status::IOERR, 0);
    let config = device.config;
    let mut header = [0u8; HEADER_BYTES as usize];
    if chain.readable_len() < HEADER_BYTES || chain.read(memory, 0, &mut header).is_err() {
        return FAILED;
    }
    let [t0, t1, t2, t3, _, _, _, _, s0, s1, s2, s3, s4, s5, s6, s7] = header;
    let kind = u32::from_le_bytes([t0, t1, t2, t3]);
    let sector = u64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]);
    // `last_writable_byte` found a status byte, so there is at least one writable byte.
    let data_in = chain.writable_len().saturating_sub(1);
    let data_out = chain.readable_len() - HEADER_BYTES;
    match kind {
        request_type::IN if data_out == 0 && in_range(config, sector, data_in) => {
            let mut done = 0;
            while done < data_in {
                let piece = &mut bounce[..chunk(data_in - done)];
                let at = sector + u64::from(done / SECTOR_BYTES);
                if backend.read(at, piece).is_err() || chain.write(memory, done, piece).is_err() {
                    return (request_status::IOERR, done);
                }
                done += piece.len() as u32;
            }
            (request_status::OK, done)
        }
        request_type::OUT
            if data_in == 0 && !config.read_only && in_range(config, sector, data_out) =>
        {
            let mut done = 0;
            while done < data_out {
                let piece = &mut bounce[..chunk(data_out - done)];
                let at = sector + u64::from(done / SECTOR_BYTES);
                if chain.read(memory, HEADER_BYTES + done, piece).is_err()
                    || backend.write(at, piece).is_err()
                {
                    return FAILED;
                }
                done += piece.len() as u32;
            }
            if device.write_through && backend.flush().is_err() {
                return FAILED;
            }
            (request_status::OK, 0)
        }
        request_type::FLUSH if data_in == 0 && data_out == 0 => match backend.flush() {
            Ok(()) => (request_status::OK, 0),
            Err(BackendError) => FAILED,
        },
        request_type::GET_ID if data_out == 0 => {
            let length = (data_in as usize).min(ID_BYTES);
            match chain.write(memory, 0, &config.serial[..length]) {
                Ok(()) => (request_status::OK, length as u32),
                Err(_) => FAILED,
            }
        }
        request_type::IN | request_type::OUT | request_type::FLUSH | request_type::GET_ID => FAILED,
        _ => (request_status::UNSUPP, 0),
    }
}

/// Whether `bytes` is whole sectors from `sector` on, all below the capacity.
fn in_range(config: &BlockConfig, sector: u64, bytes: u32) -> bool {
    bytes.is_multiple_of(SECTOR_BYTES)
        && sector
            .checked_add(u64::from(bytes / SECTOR_BYTES))
            .is_some_and(|end| end <= config.capacity_sectors)
}

/// The next piece of a transfer with `remaining` bytes left.
fn chunk(remaining: u32) -> usize {
    (remaining as usize).min(BOUNCE_BYTES)
}
