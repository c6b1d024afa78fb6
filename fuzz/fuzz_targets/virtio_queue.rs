//! The split virtqueue's device side (`virtio_core::queue`) over guest RAM the fuzzer writes:
//! the driver's rings, descriptors and buffers are all fuzzer bytes, and the guest may change
//! any of them between two steps. The queue is configured through the transport's registers as
//! a driver would (any size and ring addresses, valid or not). Checked:
//!
//! - never a panic, and no access outside the RAM window (`SliceMemory` refuses them, so a
//!   refused access shows up as an error, never as a read of other memory);
//! - a chain taken without error lies in RAM, has its readable buffers before its writable
//!   ones and no more descriptors than the queue's size, and its lengths add up; its readable
//!   stream reads exactly the guest bytes of its buffers, and its whole writable stream writes;
//! - each completion lands in the used ring at the device's next slot with the used index
//!   after it; a queue error stops the queue for good (until a reset); `recover` restarts both
//!   positions at the used index in RAM.
#![no_main]

use virtio_core::mmio::{register, status};
use virtio_core::{
    Chain, GuestMemory, QUEUE_SIZE_MAX, Queue, QueueError, RamWindow, SliceMemory, Transport,
};

const RAM_BASE: u64 = 0x4000_0000;
/// Small, so that fuzzed addresses land inside it often.
const RAM_BYTES: usize = 0x2000;

/// The input, read front to back (a plain layout, so seeds are easy to write by hand):
///
/// | bytes | meaning |
/// |---|---|
/// | 1 | bits 0..=2: log2 of QueueNum; bit 3: QueueNum is the next 4 bytes instead; bit 4: the three ring addresses are the next 24 bytes instead of [`LAYOUT`] |
/// | 2 | how many bytes of guest RAM follow (the rest of RAM is zero) |
/// | n | guest RAM from its base |
/// | ... | operations: one byte each (modulo 4), then its arguments |
///
/// Operations: 0 take a chain and complete it (4 bytes: how many bytes to report written, as
/// clamped by a device); 1 the same through `Transport::process_one`, the servers' path; 2 the
/// guest writes (2 bytes offset, 1 byte length, the bytes); 3 a restarted device server
/// recovers its position from RAM.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (taken, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(taken)
    }
    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

/// The rings where a driver would put them: descriptors at the base, the driver area at
/// 2 KiB, the device area at 3 KiB (room for 128 entries each).
const LAYOUT: [u64; 3] = [RAM_BASE, RAM_BASE + 0x800, RAM_BASE + 0xC00];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Input(data));
});

fn run(input: &mut Input<'_>) -> Option<()> {
    let mode = input.byte()?;
    let size = if mode & 8 == 0 {
        1u32 << (mode & 7)
    } else {
        input.u32()?
    };
    let areas = if mode & 16 == 0 {
        LAYOUT
    } else {
        [input.u64()?, input.u64()?, input.u64()?]
    };
    let mut ram = vec![0u8; RAM_BYTES];
    let filled = usize::from(input.u16()?).min(RAM_BYTES).min(input.0.len());
    ram[..filled].copy_from_slice(input.take(filled)?);
    let window = RamWindow::new(RAM_BASE, RAM_BYTES as u64).expect("the window fits");
    let mut transport = Transport::new(virtio_core::blk::DEVICE_ID, 0, 1, window);
    configure(&mut transport, size, areas);
    let mut chain = Chain::new();
    while let Some(op) = input.byte() {
        if op % 4 == 2 {
            let at = usize::from(input.u16()?) % RAM_BYTES;
            let length = usize::from(input.byte()?);
            let bytes = input.take(length.min(input.0.len()))?;
            let end = (at + bytes.len()).min(RAM_BYTES);
            ram[at..end].copy_from_slice(&bytes[..end - at]);
            continue;
        }
        let mut memory = SliceMemory::new(RAM_BASE, &mut ram).expect("RAM fits");
        match op % 4 {
            0 => {
                let written = input.u32()?;
                if let Some(queue) = transport.active_queue_mut(0) {
                    pop_push(queue, &mut memory, &mut chain, written);
                }
            }
            1 => {
                transport.process_one(0, &mut memory, &mut chain, |memory, chain| {
                    serve(memory, chain)
                });
            }
            _ => {
                if let Some(queue) = transport.active_queue_mut(0) {
                    recover(queue, &memory);
                }
            }
        }
    }
    Some(())
}

/// Both positions restart at the used index in RAM, or the queue stops.
fn recover(queue: &mut Queue, memory: &SliceMemory<'_>) {
    let used = queue.areas()[2];
    match queue.recover(memory) {
        Ok(()) => {
            let index = memory
                .read_u16(used + 2)
                .expect("a valid queue's ring is RAM");
            assert_eq!((queue.next_avail(), queue.next_used()), (index, index));
        }
        Err(_) => assert!(queue.is_broken()),
    }
}

/// The driver's setup (virtio 1.2 §3.1.1) with the given queue size and ring addresses.
fn configure(transport: &mut Transport, size: u32, areas: [u64; 3]) {
    let mut write = |offset: u32, value: u64| {
        let _ = transport.write(offset, 4, value);
    };
    let driver = status::ACKNOWLEDGE | status::DRIVER;
    write(register::STATUS, u64::from(driver));
    write(register::DRIVER_FEATURES_SEL, 1);
    write(register::DRIVER_FEATURES, 1); // VIRTIO_F_VERSION_1, bit 32
    write(register::STATUS, u64::from(driver | status::FEATURES_OK));
    write(register::QUEUE_SEL, 0);
    write(register::QUEUE_NUM, u64::from(size));
    let registers = [
        (register::QUEUE_DESC_LOW, register::QUEUE_DESC_HIGH),
        (register::QUEUE_DRIVER_LOW, register::QUEUE_DRIVER_HIGH),
        (register::QUEUE_DEVICE_LOW, register::QUEUE_DEVICE_HIGH),
    ];
    for ((low, high), address) in registers.into_iter().zip(areas) {
        write(low, address & 0xFFFF_FFFF);
        write(high, address >> 32);
    }
    write(register::QUEUE_READY, 1);
    write(
        register::STATUS,
        u64::from(driver | status::FEATURES_OK | status::DRIVER_OK),
    );
    if let Some(queue) = transport.queue(0)
        && queue.is_ready()
    {
        assert!(queue.size().is_power_of_two() && queue.size() <= u32::from(QUEUE_SIZE_MAX));
    }
}

/// Takes a chain, checks it against guest memory, completes it.
fn pop_push(queue: &mut Queue, memory: &mut SliceMemory<'_>, chain: &mut Chain, written: u32) {
    match queue.pop(memory, chain) {
        Ok(false) => {}
        Ok(true) => {
            let written = serve(memory, chain).min(written).min(chain.writable_len());
            let slot = queue.next_used() % queue.size() as u16;
            match queue.push_used(memory, chain.head(), written) {
                Ok(()) => {
                    let used = queue.areas()[2];
                    let index = memory
                        .read_u16(used + 2)
                        .expect("a valid queue's ring is RAM");
                    assert_eq!(index, queue.next_used());
                    let element = used + 4 + 8 * u64::from(slot);
                    let id = memory.read_u32(element).expect("the used element is RAM");
                    let length = memory
                        .read_u32(element + 4)
                        .expect("the used element is RAM");
                    assert_eq!((id, length), (u32::from(chain.head()), written));
                }
                Err(error) => stopped(queue, memory, error),
            }
        }
        Err(error) => stopped(queue, memory, error),
    }
}

/// A queue error other than "not ready" stops the queue, and it stays stopped.
fn stopped(queue: &mut Queue, memory: &SliceMemory<'_>, error: QueueError) {
    if !matches!(error, QueueError::NotReady) {
        assert!(queue.is_broken(), "{error:?} left the queue running");
        let mut chain = Chain::new();
        assert_eq!(queue.pop(memory, &mut chain), Err(QueueError::Broken));
    }
}

/// What a device does with a chain: checks it, reads all it may read, writes all it may
/// write. Returns the bytes written.
fn serve(memory: &mut impl GuestMemory, chain: &Chain) -> u32 {
    let descriptors = chain.descriptors();
    assert!(descriptors.len() <= usize::from(QUEUE_SIZE_MAX));
    if chain.error().is_some() {
        let mut byte = [0u8];
        assert!(chain.read(memory, 0, &mut byte).is_err());
        assert!(chain.write(memory, 0, &byte).is_err());
        return 0;
    }
    let mut readable = 0u64;
    let mut writable = 0u64;
    let mut seen_writable = false;
    for descriptor in descriptors {
        if descriptor.length > 0 {
            assert!(
                memory
                    .check(descriptor.address, u64::from(descriptor.length))
                    .is_ok()
            );
        }
        if descriptor.writable {
            seen_writable = true;
            writable += u64::from(descriptor.length);
        } else {
            assert!(!seen_writable, "a readable buffer after a writable one");
            readable += u64::from(descriptor.length);
        }
    }
    assert_eq!(readable, u64::from(chain.readable_len()));
    assert_eq!(writable, u64::from(chain.writable_len()));
    // Read the whole readable stream (bounded, to keep each run short) and compare it with
    // the guest's bytes, buffer by buffer.
    let take = readable.min(4096) as usize;
    let mut stream = vec![0u8; take];
    chain
        .read(memory, 0, &mut stream)
        .expect("a valid chain's readable bytes read");
    let mut expected = Vec::with_capacity(take);
    // Empty buffers are never accessed, whatever their address.
    for descriptor in descriptors.iter().filter(|d| !d.writable && d.length > 0) {
        let room = take - expected.len();
        let length = (descriptor.length as usize).min(room);
        let mut bytes = vec![0u8; length];
        memory
            .read(descriptor.address, &mut bytes)
            .expect("checked above");
        expected.extend_from_slice(&bytes);
    }
    assert_eq!(stream, expected);
    let mut beyond = [0u8];
    assert!(
        chain
            .read(memory, chain.readable_len(), &mut beyond)
            .is_err()
    );
    let fill = writable.min(4096) as usize;
    chain
        .write(memory, 0, &vec![0xA5; fill])
        .expect("a valid chain's writable bytes write");
    assert!(chain.write(memory, chain.writable_len(), &beyond).is_err());
    fill as u32
}
