//! Host tests. This file holds the fixture: guest RAM as a byte vector, a driver that lays out
//! split virtqueues in it as Linux's virtio_ring.c does, and a disk in memory. One module per
//! topic below.

extern crate std;

mod blk;
mod console;
mod mmio;
mod properties;
mod queue;
mod recovery;
mod reset;

use crate::blk::{BackendError, BlockBackend};
use crate::memory::{GuestMemory, MemoryError, RamWindow, SliceMemory};
use crate::mmio::{register, status};
use crate::queue::descriptor_flags;
use crate::{BlockDevice, ConsoleDevice, Request, Response};
use std::vec;
use std::vec::Vec;

/// Guest RAM's base, as in QEMU virt.
pub const RAM_BASE: u64 = 0x4000_0000;
/// Guest RAM's size in the fixture.
pub const RAM_BYTES: usize = 0x4_0000;

/// Guest RAM.
pub struct Guest {
    pub ram: Vec<u8>,
}

impl Guest {
    pub fn new() -> Self {
        Self {
            ram: vec![0; RAM_BYTES],
        }
    }

    pub fn window() -> RamWindow {
        RamWindow::new(RAM_BASE, RAM_BYTES as u64).unwrap()
    }

    pub fn memory(&mut self) -> SliceMemory<'_> {
        SliceMemory::new(RAM_BASE, &mut self.ram).unwrap()
    }

    pub fn bytes(&self, address: u64, length: usize) -> &[u8] {
        let start = (address - RAM_BASE) as usize;
        &self.ram[start..start + length]
    }

    pub fn put(&mut self, address: u64, bytes: &[u8]) {
        let start = (address - RAM_BASE) as usize;
        self.ram[start..start + bytes.len()].copy_from_slice(bytes);
    }

    pub fn u16_at(&self, address: u64) -> u16 {
        u16::from_le_bytes(self.bytes(address, 2).try_into().unwrap())
    }

    pub fn u32_at(&self, address: u64) -> u32 {
        u32::from_le_bytes(self.bytes(address, 4).try_into().unwrap())
    }
}

/// A buffer of a chain as the driver gives it: address, length, device-writable.
#[derive(Clone, Copy, Debug)]
pub struct Buffer {
    pub address: u64,
    pub length: u32,
    pub writable: bool,
}

pub const fn readable(address: u64, length: u32) -> Buffer {
    Buffer {
        address,
        length,
        writable: false,
    }
}

pub const fn writable(address: u64, length: u32) -> Buffer {
    Buffer {
        address,
        length,
        writable: true,
    }
}

/// The driver's side of one split virtqueue.
#[derive(Clone, Copy, Debug)]
pub struct Ring {
    pub descriptors: u64,
    pub avail: u64,
    pub used: u64,
    pub size: u16,
    /// The next descriptor index the driver hands out.
    pub next_descriptor: u16,
    /// The driver's available index.
    pub avail_index: u16,
}

impl Ring {
    /// Queue `number`'s rings, in its own 16 KiB of the fixture's RAM.
    pub const fn new(number: u64, size: u16) -> Self {
        let base = RAM_BASE + number * 0x4000;
        Self {
            descriptors: base,
            avail: base + 0x1000,
            used: base + 0x2000,
            size,
            next_descriptor: 0,
            avail_index: 0,
        }
    }

    /// Writes descriptor `index` as given.
    pub fn put_descriptor(
        &self,
        guest: &mut Guest,
        index: u16,
        address: u64,
        length: u32,
        flags: u16,
        next: u16,
    ) {
        let mut raw = [0u8; 16];
        raw[0..8].copy_from_slice(&address.to_le_bytes());
        raw[8..12].copy_from_slice(&length.to_le_bytes());
        raw[12..14].copy_from_slice(&flags.to_le_bytes());
        raw[14..16].copy_from_slice(&next.to_le_bytes());
        guest.put(self.descriptors + 16 * u64::from(index), &raw);
    }

    /// Makes `head` available and publishes the new available index.
    pub fn publish(&mut self, guest: &mut Guest, head: u16) {
        let slot = u64::from(self.avail_index % self.size);
        guest.put(self.avail + 4 + 2 * slot, &head.to_le_bytes());
        self.avail_index = self.avail_index.wrapping_add(1);
        self.set_avail_index(guest, self.avail_index);
    }

    pub fn set_avail_index(&self, guest: &mut Guest, index: u16) {
        guest.put(self.avail + 2, &index.to_le_bytes());
    }

    pub fn set_avail_flags(&self, guest: &mut Guest, flags: u16) {
        guest.put(self.avail, &flags.to_le_bytes());
    }

    /// Adds a chain of `buffers` on fresh descriptors and publishes it; returns its head.
    pub fn add(&mut self, guest: &mut Guest, buffers: &[Buffer]) -> u16 {
        let head = self.next_descriptor;
        for (position, buffer) in buffers.iter().enumerate() {
            let index = self.next_descriptor;
            let next = (index + 1) % self.size;
            let mut flags = if buffer.writable {
                descriptor_flags::WRITE
            } else {
                0
            };
            if position + 1 < buffers.len() {
                flags |= descriptor_flags::NEXT;
            }
            self.put_descriptor(guest, index, buffer.address, buffer.length, flags, next);
            self.next_descriptor = next;
        }
        self.publish(guest, head);
        head
    }

    pub fn used_index(&self, guest: &Guest) -> u16 {
        guest.u16_at(self.used + 2)
    }

    /// The used element at ring position `position`: (id, len).
    pub fn used_element(&self, guest: &Guest, position: u16) -> (u32, u32) {
        let slot = u64::from(position % self.size);
        let address = self.used + 4 + 8 * slot;
        (guest.u32_at(address), guest.u32_at(address + 4))
    }
}

/// Where data buffers go in the fixture's RAM: after the rings of two queues.
pub const BUFFERS: u64 = RAM_BASE + 0x8000;

/// An in-memory disk that checks the [`BlockBackend`] contract on every call and logs them.
pub struct MemoryDisk {
    pub bytes: Vec<u8>,
    pub log: Vec<DiskCall>,
    pub fail: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskCall {
    Read { sector: u64, bytes: usize },
    Write { sector: u64, bytes: usize },
    Flush,
}

impl MemoryDisk {
    pub fn new(sectors: u64) -> Self {
        Self {
            bytes: vec![0; sectors as usize * 512],
            log: Vec::new(),
            fail: false,
        }
    }

    fn range(&self, sector: u64, length: usize) -> core::ops::Range<usize> {
        assert!(
            length > 0 && length.is_multiple_of(512),
            "backend called with {length} bytes"
        );
        let start = sector as usize * 512;
        assert!(
            start + length <= self.bytes.len(),
            "backend called past the capacity: sector {sector}, {length} bytes"
        );
        start..start + length
    }
}

impl BlockBackend for MemoryDisk {
    fn read(&mut self, sector: u64, buffer: &mut [u8]) -> Result<(), BackendError> {
        let range = self.range(sector, buffer.len());
        self.log.push(DiskCall::Read {
            sector,
            bytes: buffer.len(),
        });
        if self.fail {
            return Err(BackendError);
        }
        buffer.copy_from_slice(&self.bytes[range]);
        Ok(())
    }

    fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), BackendError> {
        let range = self.range(sector, data.len());
        self.log.push(DiskCall::Write {
            sector,
            bytes: data.len(),
        });
        if self.fail {
            return Err(BackendError);
        }
        self.bytes[range].copy_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BackendError> {
        self.log.push(DiskCall::Flush);
        if self.fail {
            return Err(BackendError);
        }
        Ok(())
    }
}

/// A device on the bus, with whatever stands behind it.
pub trait Bus {
    fn access(&mut self, guest: &mut Guest, request: Request) -> Response;
}

/// A block device and its disk.
pub struct Blk {
    pub device: BlockDevice,
    pub disk: MemoryDisk,
}

impl Bus for Blk {
    fn access(&mut self, guest: &mut Guest, request: Request) -> Response {
        self.device
            .handle(request, &mut guest.memory(), &mut self.disk)
    }
}

/// A console and what it printed.
pub struct Console {
    pub device: ConsoleDevice,
    pub output: Vec<u8>,
}

impl Bus for Console {
    fn access(&mut self, guest: &mut Guest, request: Request) -> Response {
        let output = &mut self.output;
        self.device
            .handle(request, &mut guest.memory(), &mut |bytes: &[u8]| {
                output.extend_from_slice(bytes)
            })
    }
}

/// A 32-bit register read that must succeed.
pub fn read_register(bus: &mut impl Bus, guest: &mut Guest, offset: u32) -> u32 {
    match bus.access(guest, Request::Read { offset, width: 4 }) {
        Response::ValueLine { value, .. } => value as u32,
        other => panic!("read of {offset:#x} answered {other:?}"),
    }
}

/// A 32-bit register write that must succeed; returns the line after it.
pub fn write_register(bus: &mut impl Bus, guest: &mut Guest, offset: u32, value: u32) -> bool {
    match bus.access(
        guest,
        Request::Write {
            offset,
            width: 4,
            value: u64::from(value),
        },
    ) {
        Response::DoneLine { line } => line,
        other => panic!("write of {value:#x} to {offset:#x} answered {other:?}"),
    }
}

/// Linux's virtio_mmio probe and virtio_dev_probe, then `vm_setup_vq` for each ring, then
/// DRIVER_OK: the whole of §3.1.1. Accepts every offered feature.
pub fn start(bus: &mut impl Bus, guest: &mut Guest, rings: &[Ring]) {
    assert_eq!(
        read_register(bus, guest, register::MAGIC_VALUE),
        0x7472_6976
    );
    assert_eq!(read_register(bus, guest, register::VERSION), 2);
    write_register(bus, guest, register::STATUS, 0);
    write_register(bus, guest, register::STATUS, u32::from(status::ACKNOWLEDGE));
    let mut driver = status::ACKNOWLEDGE | status::DRIVER;
    write_register(bus, guest, register::STATUS, u32::from(driver));
    for select in 0..2 {
        write_register(bus, guest, register::DEVICE_FEATURES_SEL, select);
        let features = read_register(bus, guest, register::DEVICE_FEATURES);
        write_register(bus, guest, register::DRIVER_FEATURES_SEL, select);
        write_register(bus, guest, register::DRIVER_FEATURES, features);
    }
    driver |= status::FEATURES_OK;
    write_register(bus, guest, register::STATUS, u32::from(driver));
    assert_eq!(
        read_register(bus, guest, register::STATUS) as u8,
        driver,
        "FEATURES_OK refused"
    );
    for (index, ring) in rings.iter().enumerate() {
        setup_queue(bus, guest, index as u32, ring);
        assert_eq!(read_register(bus, guest, register::QUEUE_READY), 1);
    }
    driver |= status::DRIVER_OK;
    write_register(bus, guest, register::STATUS, u32::from(driver));
    assert_eq!(read_register(bus, guest, register::STATUS) as u8, driver);
}

/// `vm_setup_vq` for version 2.
pub fn setup_queue(bus: &mut impl Bus, guest: &mut Guest, index: u32, ring: &Ring) {
    write_register(bus, guest, register::QUEUE_SEL, index);
    assert_eq!(read_register(bus, guest, register::QUEUE_READY), 0);
    assert!(read_register(bus, guest, register::QUEUE_NUM_MAX) >= u32::from(ring.size));
    write_register(bus, guest, register::QUEUE_NUM, u32::from(ring.size));
    for (low, address) in [
        (register::QUEUE_DESC_LOW, ring.descriptors),
        (register::QUEUE_DRIVER_LOW, ring.avail),
        (register::QUEUE_DEVICE_LOW, ring.used),
    ] {
        write_register(bus, guest, low, address as u32);
        write_register(bus, guest, low + 4, (address >> 32) as u32);
    }
    write_register(bus, guest, register::QUEUE_READY, 1);
}

/// `vm_notify`: returns the interrupt line after it.
pub fn notify(bus: &mut impl Bus, guest: &mut Guest, queue: u32) -> bool {
    write_register(bus, guest, register::QUEUE_NOTIFY, queue)
}

/// `vm_interrupt`: reads InterruptStatus and acknowledges it; returns what was read.
pub fn acknowledge(bus: &mut impl Bus, guest: &mut Guest) -> u32 {
    let pending = read_register(bus, guest, register::INTERRUPT_STATUS);
    let line = write_register(bus, guest, register::INTERRUPT_ACK, pending);
    assert!(!line, "the line stays up after acknowledging {pending:#x}");
    pending
}

/// Guest memory with a huge window and no backing beyond a small store: reads of bytes never
/// written are zero. For buffers of gigabytes that are never touched.
pub struct SparseMemory {
    pub window: RamWindow,
    pub store: std::collections::BTreeMap<u64, u8>,
}

impl SparseMemory {
    pub fn new(base: u64, size: u64) -> Self {
        Self {
            window: RamWindow::new(base, size).unwrap(),
            store: Default::default(),
        }
    }
}

impl GuestMemory for SparseMemory {
    fn window(&self) -> RamWindow {
        self.window
    }

    fn read(&self, address: u64, buffer: &mut [u8]) -> Result<(), MemoryError> {
        self.window.offset_of(address, buffer.len() as u64)?;
        for (i, byte) in buffer.iter_mut().enumerate() {
            *byte = self.store.get(&(address + i as u64)).copied().unwrap_or(0);
        }
        Ok(())
    }

    fn write(&mut self, address: u64, bytes: &[u8]) -> Result<(), MemoryError> {
        self.window.offset_of(address, bytes.len() as u64)?;
        for (i, byte) in bytes.iter().enumerate() {
            self.store.insert(address + i as u64, *byte);
        }
        Ok(())
    }
}

#[test]
fn slice_memory_refuses_everything_outside_its_window() {
    let mut guest = Guest::new();
    let mut memory = guest.memory();
    let end = RAM_BASE + RAM_BYTES as u64;
    let mut four = [0u8; 4];
    assert_eq!(memory.write(end - 4, &[1, 2, 3, 4]), Ok(()));
    assert_eq!(memory.read(end - 4, &mut four), Ok(()));
    assert_eq!(four, [1, 2, 3, 4]);
    assert_eq!(
        memory.read(end - 2, &mut four),
        Err(MemoryError::OutsideRam {
            address: end - 2,
            length: 4
        })
    );
    assert_eq!(
        memory.write(RAM_BASE - 1, &[0]),
        Err(MemoryError::OutsideRam {
            address: RAM_BASE - 1,
            length: 1
        })
    );
    assert_eq!(
        memory.read(u64::MAX - 1, &mut four),
        Err(MemoryError::Overflow {
            address: u64::MAX - 1,
            length: 4
        })
    );
    assert_eq!(memory.check(end, 0), Ok(()));
    assert!(memory.check(end, 1).is_err());
    assert!(RamWindow::new(u64::MAX, 2).is_none());
    assert!(SliceMemory::new(u64::MAX, &mut [0u8; 2]).is_none());
}

/// Guest memory whose driver refills a ring as fast as the device takes from it: every read
/// of the available index at `index_address` shows one more chain. Panics past `limit`
/// reads, so a device that does not bound its work fails instead of hanging.
pub struct RefillingMemory<'a> {
    pub inner: SliceMemory<'a>,
    pub index_address: u64,
    pub reads: core::cell::Cell<u32>,
    pub limit: u32,
}

impl GuestMemory for RefillingMemory<'_> {
    fn window(&self) -> RamWindow {
        self.inner.window()
    }

    fn read(&self, address: u64, buffer: &mut [u8]) -> Result<(), MemoryError> {
        if address != self.index_address {
            return self.inner.read(address, buffer);
        }
        let reads = self.reads.get() + 1;
        assert!(reads <= self.limit, "the device kept taking chains");
        self.reads.set(reads);
        buffer.copy_from_slice(&(reads as u16).to_le_bytes()[..buffer.len()]);
        Ok(())
    }

    fn write(&mut self, address: u64, bytes: &[u8]) -> Result<(), MemoryError> {
        self.inner.write(address, bytes)
    }
}
