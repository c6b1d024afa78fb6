//! Class 8 of the attack: the virtio devices of the hostile manifest (a block device at
//! transport 0, a console at transport 1) driven with queues nobody meant well
//! (docs/VIRTIO.md, "Validation"), and the small driver the final check uses ([`Transport`]).
//!
//! Each operation resets the device (Status 0) first and last, so that no class-2 random write
//! ever meets a device with FEATURES_OK set, and does one of:
//!
//! - a QueueNotify before DRIVER_OK (after a reset, or with only ACKNOWLEDGE and DRIVER): ignored;
//! - a queue that must be refused: a size that is 0, not a power of two or above QueueNumMax,
//!   areas misaligned, outside RAM, across its end or at a device server's own addresses, on a
//!   queue that may not exist; then QueueReady = 1 must read back 0;
//! - a queue in the scratch block whose descriptor table is filled with hostile descriptors:
//!   addresses outside RAM, across its end, below it, at device IPAs, at the addresses of a
//!   device server's own memory (`SERVER_ADDRESSES`), in scratch; lengths 0, 1, small, a
//!   sector, huge, all ones; random flags (NEXT, WRITE, INDIRECT, unknown bits); `next` in
//!   range, pointing at itself (a loop) or past the table; for the block device also
//!   well-formed requests (header, data, status) of every type with random sectors. The
//!   available ring offers one to four heads (some past the table), or jumps more than the
//!   queue size ahead, and is notified 1 to 32 times (a doorbell burst on the fast path, some of
//!   the values other queues'). After that, the used ring must not have more entries than were
//!   made available, nor an id past the table: a difference is counted as wrong.
//!
//! The device may write only where a writable descriptor points, and those point into the
//! scratch block's DMA area or outside RAM, never at the guest's own memory (which would be the
//! guest attacking itself). Readable descriptors in RAM point at the scratch block too: what
//! the console transmits is printed, and bytes of the guest's image would put its strings on
//! the console.

use super::rng::Rng;
use super::targets::VIRTIO_STRIDE;
use super::{SCRATCH, SCRATCH_SIZE};
use crate::layout::{PL011_BASE, RAM_BASE, RAM_SIZE, VIRTIO_BASE};

/// Transport registers (virtio 1.2 §4.2.2, table 4.1).
pub mod reg {
    pub const MAGIC: u64 = 0x000;
    pub const VERSION: u64 = 0x004;
    pub const DEVICE_ID: u64 = 0x008;
    pub const DRIVER_FEATURES: u64 = 0x020;
    pub const DRIVER_FEATURES_SEL: u64 = 0x024;
    pub const QUEUE_SEL: u64 = 0x030;
    pub const QUEUE_NUM_MAX: u64 = 0x034;
    pub const QUEUE_NUM: u64 = 0x038;
    pub const QUEUE_READY: u64 = 0x044;
    pub const QUEUE_NOTIFY: u64 = 0x050;
    pub const INTERRUPT_STATUS: u64 = 0x060;
    pub const INTERRUPT_ACK: u64 = 0x064;
    pub const STATUS: u64 = 0x070;
    pub const QUEUE_DESC: u64 = 0x080;
    pub const QUEUE_DRIVER: u64 = 0x090;
    pub const QUEUE_DEVICE: u64 = 0x0a0;
}

/// Device status bits (§2.1).
const ACKNOWLEDGE: u32 = 1;
const DRIVER: u32 = 2;
const DRIVER_OK: u32 = 4;
const FEATURES_OK: u32 = 8;
/// VIRTIO_F_VERSION_1: feature bit 32, bit 0 of the second feature word.
const VERSION_1_HIGH: u32 = 1;
/// Descriptor flags (§2.7.5).
pub const NEXT: u16 = 1;
pub const WRITE: u16 = 2;
const INDIRECT: u16 = 4;

/// The scratch block's layout: the queue areas, the block request headers, text the devices
/// may read, and the DMA area writable descriptors point into.
pub const DESC: u64 = SCRATCH;
pub const AVAIL: u64 = SCRATCH + 0x4000;
pub const USED: u64 = SCRATCH + 0x8000;
pub const HEADERS: u64 = SCRATCH + 0xC000;
pub const TEXT: u64 = SCRATCH + 0x1_0000;
const TEXT_SIZE: u64 = 0x1_0000;
pub const DMA: u64 = SCRATCH + 0x2_0000;
const DMA_SIZE: u64 = SCRATCH_SIZE - 0x2_0000;

/// One virtio-mmio transport's registers, 32-bit accesses through the identity map.
#[derive(Clone, Copy)]
pub struct Transport(pub u64);

impl Transport {
    /// Transport `n` (0: the block device, 1: the console).
    pub fn nth(n: u64) -> Self {
        Self(VIRTIO_BASE + n * VIRTIO_STRIDE)
    }

    pub fn read(self, offset: u64) -> u32 {
        let address = (self.0 + offset) as *const u32;
        // SAFETY: a register of a virtio transport, in the Device block mmu.rs maps; an
        // aligned 32-bit load that returns a value or takes an injected abort (trap.rs).
        unsafe { address.read_volatile() }
    }

    pub fn write(self, offset: u64, value: u32) {
        let address = (self.0 + offset) as *mut u32;
        // SAFETY: as in `read`; callers give queue addresses in scratch or outside RAM only.
        unsafe { address.write_volatile(value) }
    }

    fn write64(self, offset: u64, value: u64) {
        self.write(offset, value as u32);
        self.write(offset + 4, (value >> 32) as u32);
    }

    /// Reset, ACKNOWLEDGE, DRIVER, VERSION_1 accepted, FEATURES_OK: the Status read back.
    pub fn negotiate(self) -> u32 {
        self.write(reg::STATUS, 0);
        self.write(reg::STATUS, ACKNOWLEDGE);
        self.write(reg::STATUS, ACKNOWLEDGE | DRIVER);
        self.write(reg::DRIVER_FEATURES_SEL, 1);
        self.write(reg::DRIVER_FEATURES, VERSION_1_HIGH);
        self.write(reg::DRIVER_FEATURES_SEL, 0);
        self.write(reg::DRIVER_FEATURES, 0);
        self.write(reg::STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
        self.read(reg::STATUS)
    }

    /// Configures queue `queue` with `size` entries at `desc`, `avail`, `used` and asks for it
    /// to be ready; whether it is.
    pub fn queue(self, queue: u32, size: u32, desc: u64, avail: u64, used: u64) -> bool {
        self.write(reg::QUEUE_SEL, queue);
        self.write(reg::QUEUE_NUM, size);
        self.write64(reg::QUEUE_DESC, desc);
        self.write64(reg::QUEUE_DRIVER, avail);
        self.write64(reg::QUEUE_DEVICE, used);
        self.write(reg::QUEUE_READY, 1);
        self.read(reg::QUEUE_READY) == 1
    }

    /// Sets DRIVER_OK (after [`Self::negotiate`] and the queues).
    pub fn driver_ok(self) {
        self.write(reg::STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
    }

    /// Reads and acknowledges the interrupt status.
    pub fn acknowledge(self) -> u32 {
        let status = self.read(reg::INTERRUPT_STATUS);
        self.write(reg::INTERRUPT_ACK, status);
        status
    }
}

/// Whether `address..address + size` lies in the scratch block.
fn in_scratch(address: u64, size: usize) -> bool {
    address >= SCRATCH && address.saturating_add(size as u64) <= SCRATCH + SCRATCH_SIZE
}

/// A plain store to the scratch block (mapped read-write by the identity map; no Rust object
/// lives there); an address outside it is ignored.
pub fn poke<T: Copy>(address: u64, value: T) {
    if in_scratch(address, size_of::<T>()) && address.is_multiple_of(align_of::<T>() as u64) {
        // SAFETY: checked just above: inside the scratch block and aligned for T.
        unsafe { (address as *mut T).write_volatile(value) }
    }
}

/// A plain load from the scratch block; an address outside it reads as `T::default()`.
pub fn peek<T: Copy + Default>(address: u64) -> T {
    if in_scratch(address, size_of::<T>()) && address.is_multiple_of(align_of::<T>() as u64) {
        // SAFETY: as in `poke`.
        unsafe { (address as *const T).read_volatile() }
    } else {
        T::default()
    }
}

/// Orders the ring stores before the notify (and the device's stores before our reads).
pub fn barrier() {
    // SAFETY: a barrier.
    unsafe { core::arch::asm!("dsb sy", options(nostack)) };
}

/// Writes descriptor `index` of the table at `table`.
pub fn descriptor(table: u64, index: u64, address: u64, len: u32, flags: u16, next: u16) {
    let entry = table + 16 * index;
    poke(entry, address);
    poke(entry + 8, len);
    poke(entry + 12, flags);
    poke(entry + 14, next);
}

/// What class 8 found.
#[derive(Clone, Copy, Default)]
pub struct Virtio {
    pub operations: u64,
    pub chains: u64,
    pub wrong: u64,
}

/// Fills the text area the devices may read (once).
pub fn prepare() {
    for offset in (0..TEXT_SIZE).step_by(8) {
        poke::<u64>(TEXT + offset, u64::from_le_bytes(*b"........"));
    }
}

/// Where a device server has memory of its own, as guest-physical addresses: its boot info,
/// IPC buffer, stack, image and heap (abi::layout), the block server's window of the physical
/// driver's data (`WINDOW_VA`), its state page (the last page of a 39-bit space). To the guest
/// they are holes; a device that took them for its own addresses would hand the guest a server.
const SERVER_ADDRESSES: [u64; 7] = [
    0x0010_0000,
    0x0010_1000,
    0x001F_F000,
    0x0020_0000,
    0x1000_0000,
    0x40_0000_0000,
    (1 << 39) - 4096,
];

/// A buffer address for a descriptor (see the module comment for the rules).
fn buffer(rng: &mut Rng, writable: bool) -> u64 {
    let ram_end = RAM_BASE + RAM_SIZE;
    match rng.below(8) {
        0 => rng.next(),
        1 => ram_end - rng.below(64),
        2 => RAM_BASE - 1 - rng.below(64),
        3 => [0, PL011_BASE, VIRTIO_BASE, 0x2000_0000][rng.below(4) as usize],
        4 => rng.pick(&SERVER_ADDRESSES) + rng.below(4096),
        _ if writable => DMA + rng.below(DMA_SIZE),
        _ => TEXT + rng.below(TEXT_SIZE / 2),
    }
}

fn length(rng: &mut Rng) -> u32 {
    match rng.below(8) {
        0 => 0,
        1 => 1,
        2 => 1 + rng.below(64) as u32,
        3 => 512,
        4 => 512 * (1 + rng.below(8) as u32),
        5 => u32::MAX,
        6 => rng.next() as u32,
        _ => rng.below(1 << 16) as u32,
    }
}

/// A hostile descriptor table of `size` entries; for the console (`prints`), readable buffers
/// that lie in RAM are in the text area and short.
fn hostile_table(rng: &mut Rng, size: u64, prints: bool) {
    for index in 0..size {
        let mut flags = 0;
        if rng.one_in(2) {
            flags |= NEXT;
        }
        if rng.one_in(2) {
            flags |= WRITE;
        }
        if rng.one_in(16) {
            flags |= INDIRECT;
        }
        if rng.one_in(32) {
            flags |= rng.next() as u16;
        }
        let next = match rng.below(4) {
            0 => index as u16,
            1 => rng.next() as u16,
            _ => rng.below(size) as u16,
        };
        let mut address = buffer(rng, flags & WRITE != 0);
        // Never the guest's own memory (a random address could land there).
        if (RAM_BASE..SCRATCH).contains(&address) {
            address = if flags & WRITE != 0 { DMA } else { TEXT };
        }
        let mut len = length(rng);
        let in_ram =
            address >= RAM_BASE && address.saturating_add(u64::from(len)) <= RAM_BASE + RAM_SIZE;
        if prints && flags & WRITE == 0 && in_ram {
            // What the console would print: dots, at most 64 of them.
            address = TEXT + address % (TEXT_SIZE / 2);
            len %= 65;
        }
        descriptor(DESC, index, address, len, flags, next);
    }
}

/// A well-formed block request at `head`, `head + 1`, `head + 2`: header, data, status.
fn block_request(rng: &mut Rng, size: u64, head: u64) {
    let header = HEADERS + 16 * (head % 64);
    poke::<u32>(
        header,
        [0, 1, 4, 8, rng.next() as u32][rng.below(5) as usize],
    );
    poke::<u32>(header + 4, 0);
    poke::<u64>(
        header + 8,
        if rng.one_in(2) {
            rng.below(4096)
        } else {
            rng.next()
        },
    );
    let (data, status) = ((head + 1) % size, (head + 2) % size);
    descriptor(DESC, head, header, 16, NEXT, data as u16);
    let data_flags = if rng.one_in(2) { WRITE | NEXT } else { NEXT };
    let data_len = 512 * (1 + rng.below(8) as u32);
    descriptor(
        DESC,
        data,
        DMA + rng.below(DMA_SIZE / 2),
        data_len,
        data_flags,
        status as u16,
    );
    descriptor(
        DESC,
        status,
        DMA + DMA_SIZE / 2 + rng.below(4096),
        1,
        WRITE,
        0,
    );
}

/// Class 8: one operation on a random device.
pub fn attack(rng: &mut Rng, found: &mut Virtio) {
    found.operations += 1;
    let device = Transport::nth(rng.below(2));
    if device.read(reg::MAGIC) != u32::from_le_bytes(*b"virt") {
        found.wrong += 1;
    }
    match rng.below(4) {
        0 => {
            device.write(reg::STATUS, 0);
            if rng.one_in(2) {
                device.write(reg::STATUS, ACKNOWLEDGE | DRIVER);
            }
            device.write(reg::QUEUE_NOTIFY, rng.below(4) as u32);
            device.acknowledge();
        }
        1 => refused_queue(rng, device, found),
        _ => hostile_queue(rng, device, found),
    }
    device.write(reg::STATUS, 0);
}

fn refused_queue(rng: &mut Rng, device: Transport, found: &mut Virtio) {
    device.negotiate();
    let max = device.read(reg::QUEUE_NUM_MAX);
    let size = match rng.below(4) {
        0 => 0,
        1 => 3 + 2 * rng.below(60) as u32,
        2 => max.wrapping_mul(2).max(256),
        _ => match rng.next() as u32 {
            // The rare random size that is valid: make it bad.
            random if random.is_power_of_two() && random <= max => 0,
            random => random,
        },
    };
    let ram_end = RAM_BASE + RAM_SIZE;
    let (desc, avail, used) = match rng.below(4) {
        0 => (DESC + 8, AVAIL + 1, USED + 2),
        1 => (ram_end - 16, ram_end - 4, ram_end - 8),
        2 => (rng.next() | 1 << 40, 0, PL011_BASE),
        _ => (
            rng.pick(&SERVER_ADDRESSES),
            rng.pick(&SERVER_ADDRESSES),
            rng.pick(&SERVER_ADDRESSES),
        ),
    };
    // A valid size with bad areas, or a bad size with good areas: either must be refused.
    let (size, desc, avail, used) = if rng.one_in(2) {
        (1 << rng.below(8), desc, avail, used)
    } else {
        (size, DESC, AVAIL, USED)
    };
    let queue = rng.below(3) as u32;
    if device.queue(queue, size, desc, avail, used) {
        found.wrong += 1;
    }
}

fn hostile_queue(rng: &mut Rng, device: Transport, found: &mut Virtio) {
    device.negotiate();
    let is_block = device.read(reg::DEVICE_ID) == 2;
    let queue = if is_block { 0 } else { rng.below(2) as u32 };
    let max = u64::from(device.read(reg::QUEUE_NUM_MAX).clamp(1, 128));
    let size = 1u64 << rng.below(u64::from(max.ilog2()) + 1);
    hostile_table(rng, size, !is_block);
    let heads = 1 + rng.below(4);
    for slot in 0..heads {
        let head = if rng.one_in(16) {
            rng.next() as u16 as u64
        } else {
            rng.below(size)
        };
        if is_block && size >= 4 && rng.one_in(2) {
            block_request(rng, size, head % size);
        }
        poke::<u16>(AVAIL + 4 + 2 * (slot % size), head as u16);
    }
    poke::<u16>(AVAIL, 0);
    poke::<u64>(USED, 0);
    let offered = if rng.one_in(16) {
        heads + size + rng.below(1000)
    } else {
        heads
    };
    poke::<u16>(AVAIL + 2, offered as u16);
    if !device.queue(queue, size as u32, DESC, AVAIL, USED) {
        found.wrong += 1;
        return;
    }
    device.driver_ok();
    barrier();
    // A burst of notifications: on the fast path each is a doorbell signal.
    for _ in 0..1 + rng.below(32) {
        let notify = if rng.one_in(8) {
            rng.next() as u32
        } else {
            queue
        };
        device.write(reg::QUEUE_NOTIFY, notify);
    }
    device.acknowledge();
    barrier();
    let used = u64::from(peek::<u16>(USED + 2));
    found.chains += used;
    let bad_id = (0..used.min(size)).any(|i| u64::from(peek::<u32>(USED + 4 + 8 * i)) >= size);
    if used > offered || bad_id {
        found.wrong += 1;
    }
}
