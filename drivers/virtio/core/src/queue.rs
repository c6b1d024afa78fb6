//! The split virtqueue (virtio 1.2 §2.7), device side: take descriptor chains from the driver
//! area (the available ring), complete them in the device area (the used ring).
//!
//! Every value read from guest memory is untrusted. The rules this module enforces:
//!
//! - The queue's size is a power of two in `1..=QUEUE_SIZE_MAX` and its three areas are
//!   aligned (§2.7, "Virtqueue Part Alignment": 16, 2, 4) and inside guest RAM, or it never
//!   becomes ready ([`Queue::validate`]).
//! - The available index may run ahead of the device by at most the queue size
//!   (§2.7.6: the ring holds `size` entries); more means a broken driver, and the queue stops.
//!   So does a head index outside the descriptor table. A stopped ("broken") queue is not
//!   touched again until the device is reset; the transport sets DEVICE_NEEDS_RESET (§2.1.2).
//! - A chain is walked through at most `size` descriptors: a longer chain revisits one, a loop
//!   (§2.7.5.2: "loops in the descriptor chain are forbidden"). Each descriptor's buffer must be
//!   inside RAM (zero-length ones are never accessed and not checked), device-writable
//!   descriptors must follow all device-readable ones (§2.7.4.2), the chain's total length must
//!   fit in 32 bits (§2.7.5.2), and VIRTQ_DESC_F_INDIRECT is refused since
//!   VIRTIO_F_INDIRECT_DESC is never offered. A chain breaking these rules is taken and must be
//!   completed like any other (with nothing or just an error status written), so the device
//!   keeps its place in the ring and the queue goes on.
//! - Completions are in order, one used-ring entry per chain taken, each published with its
//!   used index before the next chain is taken: [`Queue::recover`] relies on that.
//!
//! VIRTIO_F_EVENT_IDX is not offered, so VIRTQ_AVAIL_F_NO_INTERRUPT in the available ring's
//! flags is the driver's only suppression hint (§2.7.7), and the device never suppresses the
//! driver's notifications (the used ring's flags stay 0).

use crate::memory::{GuestMemory, MemoryError, RamWindow};
use core::sync::atomic::{Ordering, fence};

/// The largest queue size the device offers (QueueNumMax). Linux takes it as its ring size.
/// It is also the longest chain a [`Chain`] holds: a longer one would be a loop.
pub const QUEUE_SIZE_MAX: u16 = 128;

/// Descriptor flags (§2.7.5).
pub mod descriptor_flags {
    /// The buffer continues in the descriptor named by `next`.
    pub const NEXT: u16 = 1;
    /// The buffer is device-writable (otherwise device-readable).
    pub const WRITE: u16 = 2;
    /// The buffer is a table of indirect descriptors (not offered here).
    pub const INDIRECT: u16 = 4;
}

/// VIRTQ_AVAIL_F_NO_INTERRUPT (§2.7.6): the driver would rather not be interrupted.
pub const AVAIL_F_NO_INTERRUPT: u16 = 1;

/// One descriptor table entry's size (§2.7.5: addr u64, len u32, flags u16, next u16).
const DESCRIPTOR_BYTES: u64 = 16;
/// One used-ring element's size (§2.7.8: id u32, len u32).
const USED_ELEMENT_BYTES: u64 = 8;

/// A queue that cannot be used as configured, or the ways a driver breaks a ready one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueError {
    /// QueueNum is not a power of two in `1..=QUEUE_SIZE_MAX`.
    BadSize { size: u32 },
    /// An area is not aligned as §2.7 requires.
    Misaligned { address: u64 },
    /// An area is not entirely inside guest RAM.
    OutsideRam(MemoryError),
    /// The queue is not ready (QueueReady is 0).
    NotReady,
    /// The queue stopped after an earlier error; only a device reset clears that.
    Broken,
    /// The available index ran more than the queue size ahead of the device.
    AvailIndexJump { avail_index: u16, next_avail: u16 },
    /// The available ring named a descriptor outside the table.
    HeadOutOfRange { head: u16 },
    /// A ring access failed.
    Memory(MemoryError),
}

/// Why one chain cannot be used as it stands. The chain is still taken and completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainError {
    /// More descriptors than the queue size: a loop.
    TooLong,
    /// A `next` index outside the descriptor table.
    NextOutOfRange { index: u16 },
    /// The descriptor table entry itself could not be read.
    DescriptorUnreadable(MemoryError),
    /// VIRTQ_DESC_F_INDIRECT, without VIRTIO_F_INDIRECT_DESC negotiated.
    Indirect,
    /// A descriptor's buffer is not entirely RAM.
    OutsideRam(MemoryError),
    /// A device-readable descriptor after a device-writable one.
    ReadableAfterWritable,
    /// The buffers add up to more than `u32::MAX` bytes.
    TooManyBytes,
    /// An access past the chain's readable or writable bytes.
    BeyondChain,
    /// A buffer access failed at use.
    Memory(MemoryError),
}

/// One validated descriptor: a guest buffer and its direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Descriptor {
    /// Guest-physical address of the buffer.
    pub address: u64,
    /// Its length in bytes.
    pub length: u32,
    /// Device-writable (VIRTQ_DESC_F_WRITE) rather than device-readable.
    pub writable: bool,
}

/// A descriptor chain taken from the ring, copied out of guest memory once so the guest cannot
/// change it under the device. Its device-readable buffers read as one byte stream, its
/// device-writable buffers write as another (§2.7.4: the device must not assume any particular
/// split of a request into descriptors).
#[derive(Clone, Debug)]
pub struct Chain {
    head: u16,
    descriptors: [Descriptor; QUEUE_SIZE_MAX as usize],
    count: usize,
    readable: u32,
    writable: u32,
    complete: bool,
    error: Option<ChainError>,
}

impl Default for Chain {
    fn default() -> Self {
        Self::new()
    }
}

impl Chain {
    /// An empty chain, to be filled by [`Queue::pop`]. It is 2 KiB: keep one per device rather
    /// than on a small stack.
    pub const fn new() -> Self {
        Self {
            head: 0,
            descriptors: [Descriptor {
                address: 0,
                length: 0,
                writable: false,
            }; QUEUE_SIZE_MAX as usize],
            count: 0,
            readable: 0,
            writable: 0,
            complete: false,
            error: None,
        }
    }

    /// The head descriptor's index: the id its completion carries.
    pub const fn head(&self) -> u16 {
        self.head
    }

    /// The first rule the chain breaks, if any. A chain with an error can be neither read nor
    /// written; only [`Chain::last_writable_byte`] still answers.
    pub const fn error(&self) -> Option<ChainError> {
        self.error
    }

    /// The descriptors walked, in chain order (all of them only when the chain is complete).
    pub fn descriptors(&self) -> &[Descriptor] {
        self.descriptors.get(..self.count).unwrap_or(&[])
    }

    /// Total bytes of the device-readable buffers.
    pub const fn readable_len(&self) -> u32 {
        self.readable
    }

    /// Total bytes of the device-writable buffers.
    pub const fn writable_len(&self) -> u32 {
        self.writable
    }

    /// The guest address of the chain's last byte when the walk reached the chain's end and
    /// that end is a non-empty device-writable buffer, even if the chain is otherwise
    /// malformed: where a block request's status byte goes (§5.2.6), so a bad request can
    /// still be answered with an error. Writing there still goes through the memory checks.
    pub fn last_writable_byte(&self) -> Option<u64> {
        if !self.complete {
            return None;
        }
        let last = self.descriptors().last()?;
        if !last.writable || last.length == 0 {
            return None;
        }
        last.address.checked_add(u64::from(last.length) - 1)
    }

    /// Reads `buffer.len()` bytes of the readable stream from `offset`.
    pub fn read(
        &self,
        memory: &impl GuestMemory,
        offset: u32,
        buffer: &mut [u8],
    ) -> Result<(), ChainError> {
        self.pieces(false, offset, buffer.len(), |address, range| {
            let part = buffer.get_mut(range).ok_or(ChainError::BeyondChain)?;
            memory.read(address, part).map_err(ChainError::Memory)
        })
    }

    /// Writes `bytes` into the writable stream from `offset`.
    pub fn write(
        &self,
        memory: &mut impl GuestMemory,
        offset: u32,
        bytes: &[u8],
    ) -> Result<(), ChainError> {
        self.pieces(true, offset, bytes.len(), |address, range| {
            let part = bytes.get(range).ok_or(ChainError::BeyondChain)?;
            memory.write(address, part).map_err(ChainError::Memory)
        })
    }

    /// Splits `[offset, offset + length)` of one stream into per-descriptor pieces: `visit`
    /// gets each piece's guest address and its range within the caller's buffer.
    fn pieces(
        &self,
        writable: bool,
        offset: u32,
        length: usize,
        mut visit: impl FnMut(u64, core::ops::Range<usize>) -> Result<(), ChainError>,
    ) -> Result<(), ChainError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let total = u64::from(if writable {
            self.writable
        } else {
            self.readable
        });
        let start = u64::from(offset);
        let end = u64::try_from(length)
            .ok()
            .and_then(|length| start.checked_add(length))
            .filter(|&end| end <= total)
            .ok_or(ChainError::BeyondChain)?;
        let mut cursor = start;
        let mut stream = 0u64;
        for descriptor in self.descriptors().iter() {
            if descriptor.writable != writable {
                continue;
            }
            if cursor >= end {
                break;
            }
            let descriptor_end = stream + u64::from(descriptor.length);
            if cursor < descriptor_end {
                let take = descriptor_end.min(end) - cursor;
                // Both fit in usize: they are at most `length`.
                let from = (cursor - start) as usize;
                visit(
                    descriptor.address + (cursor - stream),
                    from..from + take as usize,
                )?;
                cursor += take;
            }
            stream = descriptor_end;
        }
        Ok(())
    }

    /// Empties the chain for the walk starting at `head`.
    fn reset(&mut self, head: u16) {
        self.head = head;
        self.count = 0;
        self.readable = 0;
        self.writable = 0;
        self.complete = false;
        self.error = None;
    }

    /// Records the first rule broken.
    fn fail(&mut self, error: ChainError) {
        self.error.get_or_insert(error);
    }
}

/// One split virtqueue's configuration (the transport's queue registers) and the device's
/// position in it. Plain data: a server may keep a copy where a restart finds it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Queue {
    size: u32,
    ready: bool,
    descriptor_area: u64,
    driver_area: u64,
    device_area: u64,
    next_avail: u16,
    next_used: u16,
    broken: bool,
}

impl Queue {
    /// A queue in its reset state: not ready, size 0, no addresses.
    pub const fn new() -> Self {
        Self {
            size: 0,
            ready: false,
            descriptor_area: 0,
            driver_area: 0,
            device_area: 0,
            next_avail: 0,
            next_used: 0,
            broken: false,
        }
    }

    /// QueueReady.
    pub const fn is_ready(&self) -> bool {
        self.ready
    }

    /// Stopped by an error until the next device reset.
    pub const fn is_broken(&self) -> bool {
        self.broken
    }

    /// QueueNum, as the driver wrote it.
    pub const fn size(&self) -> u32 {
        self.size
    }

    /// The available-ring index of the next chain the device will take.
    pub const fn next_avail(&self) -> u16 {
        self.next_avail
    }

    /// The used-ring index the device will publish next.
    pub const fn next_used(&self) -> u16 {
        self.next_used
    }

    /// The guest addresses of the descriptor table, driver area and device area.
    pub const fn areas(&self) -> [u64; 3] {
        [self.descriptor_area, self.driver_area, self.device_area]
    }

    pub(crate) fn set_size(&mut self, size: u32) {
        self.size = size;
    }

    pub(crate) fn set_area_half(&mut self, area: usize, high: bool, value: u32) {
        let field = match area {
            0 => &mut self.descriptor_area,
            1 => &mut self.driver_area,
            _ => &mut self.device_area,
        };
        *field = if high {
            (*field & 0xFFFF_FFFF) | (u64::from(value) << 32)
        } else {
            (*field & !0xFFFF_FFFF) | u64::from(value)
        };
    }

    /// Makes the queue ready, at the start of its rings (the driver zeroed them, §4.2.3.2
    /// step 4), when [`Queue::validate`] accepts it.
    pub(crate) fn enable(&mut self, ram: RamWindow) -> Result<(), QueueError> {
        self.validate(ram)?;
        self.ready = true;
        self.broken = false;
        self.next_avail = 0;
        self.next_used = 0;
        Ok(())
    }

    pub(crate) fn disable(&mut self) {
        self.ready = false;
    }

    /// The size as a ring length, when it is a valid one.
    fn ring_size(&self) -> Result<u16, QueueError> {
        match u16::try_from(self.size) {
            Ok(size) if size.is_power_of_two() && size <= QUEUE_SIZE_MAX => Ok(size),
            _ => Err(QueueError::BadSize { size: self.size }),
        }
    }

    /// Whether the configuration can be used: the size a power of two up to
    /// [`QUEUE_SIZE_MAX`], each area aligned and all of it inside `ram`.
    pub fn validate(&self, ram: RamWindow) -> Result<(), QueueError> {
        let size = u64::from(self.ring_size()?);
        let areas = [
            (
                self.descriptor_area,
                DESCRIPTOR_BYTES,
                DESCRIPTOR_BYTES * size,
            ),
            // flags, idx, ring[size], used_event (§2.7.6)
            (self.driver_area, 2, 6 + 2 * size),
            // flags, idx, ring[size], avail_event (§2.7.8)
            (self.device_area, 4, 6 + USED_ELEMENT_BYTES * size),
        ];
        for (address, alignment, length) in areas {
            if !address.is_multiple_of(alignment) {
                return Err(QueueError::Misaligned { address });
            }
            ram.offset_of(address, length)
                .map_err(QueueError::OutsideRam)?;
        }
        Ok(())
    }

    /// A size to use, or why the queue must not be touched. The configuration is checked
    /// again at every use, so no ring address below can overflow or leave `ram`, whatever
    /// state the queue was restored from.
    fn usable_size(&self, ram: RamWindow) -> Result<u16, QueueError> {
        if !self.ready {
            return Err(QueueError::NotReady);
        }
        if self.broken {
            return Err(QueueError::Broken);
        }
        self.validate(ram)?;
        self.ring_size()
    }

    /// Marks the queue broken for driver errors (not for "not ready" or "already broken").
    fn stop_on<T>(&mut self, result: Result<T, QueueError>) -> Result<T, QueueError> {
        if let Err(error) = result
            && !matches!(error, QueueError::NotReady | QueueError::Broken)
        {
            self.broken = true;
        }
        result
    }

    /// Takes the next available chain into `chain`: `Ok(false)` when there is none. A taken
    /// chain must be completed with [`Queue::push_used`] before the next one is taken, even
    /// when [`Chain::error`] says it is malformed. An `Err` other than `NotReady` stops the
    /// queue.
    pub fn pop(
        &mut self,
        memory: &impl GuestMemory,
        chain: &mut Chain,
    ) -> Result<bool, QueueError> {
        let result = self.take(memory, chain);
        self.stop_on(result)
    }

    fn take(&mut self, memory: &impl GuestMemory, chain: &mut Chain) -> Result<bool, QueueError> {
        let size = self.usable_size(memory.window())?;
        let avail_index = memory
            .read_u16(self.driver_area + 2)
            .map_err(QueueError::Memory)?;
        let pending = avail_index.wrapping_sub(self.next_avail);
        if pending > size {
            return Err(QueueError::AvailIndexJump {
                avail_index,
                next_avail: self.next_avail,
            });
        }
        if pending == 0 {
            return Ok(false);
        }
        // The ring entry and descriptors were written before the index (§2.7.13.3.1).
        fence(Ordering::Acquire);
        let slot = u64::from(self.next_avail % size);
        let head = memory
            .read_u16(self.driver_area + 4 + 2 * slot)
            .map_err(QueueError::Memory)?;
        if head >= size {
            return Err(QueueError::HeadOutOfRange { head });
        }
        self.next_avail = self.next_avail.wrapping_add(1);
        self.walk(memory, head, size, chain);
        Ok(true)
    }

    /// Copies the chain from `head` into `chain`, recording the first rule it breaks.
    fn walk(&self, memory: &impl GuestMemory, head: u16, size: u16, chain: &mut Chain) {
        chain.reset(head);
        let mut index = head;
        let mut total_bytes = 0u32;
        let mut seen_writable = false;
        loop {
            if chain.count >= usize::from(size) {
                chain.fail(ChainError::TooLong);
                return;
            }
            let mut raw = [0u8; DESCRIPTOR_BYTES as usize];
            let entry = self.descriptor_area + DESCRIPTOR_BYTES * u64::from(index);
            if let Err(error) = memory.read(entry, &mut raw) {
                chain.fail(ChainError::DescriptorUnreadable(error));
                return;
            }
            let [
                a0,
                a1,
                a2,
                a3,
                a4,
                a5,
                a6,
                a7,
                l0,
                l1,
                l2,
                l3,
                f0,
                f1,
                n0,
                n1,
            ] = raw;
            let address = u64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]);
            let length = u32::from_le_bytes([l0, l1, l2, l3]);
            let flags = u16::from_le_bytes([f0, f1]);
            let next = u16::from_le_bytes([n0, n1]);
            let writable = flags & descriptor_flags::WRITE != 0;

            if flags & descriptor_flags::INDIRECT != 0 {
                chain.fail(ChainError::Indirect);
            }
            if writable {
                seen_writable = true;
            } else if seen_writable {
                chain.fail(ChainError::ReadableAfterWritable);
            }
            if length != 0
                && let Err(error) = memory.check(address, u64::from(length))
            {
                chain.fail(ChainError::OutsideRam(error));
            }
            match total_bytes.checked_add(length) {
                Some(sum) => total_bytes = sum,
                None => chain.fail(ChainError::TooManyBytes),
            }
            let descriptor = Descriptor {
                address,
                length,
                writable,
            };
            if let Some(place) = chain.descriptors.get_mut(chain.count) {
                *place = descriptor;
                chain.count += 1;
            } else {
                chain.fail(ChainError::TooLong);
                return;
            }
            if chain.error.is_none() {
                // Only sums of a well-formed prefix count; they cannot overflow (checked above).
                if writable {
                    chain.writable += length;
                } else {
                    chain.readable += length;
                }
            }
            if flags & descriptor_flags::NEXT == 0 {
                chain.complete = true;
                return;
            }
            if next >= size {
                chain.fail(ChainError::NextOutOfRange { index: next });
                return;
            }
            index = next;
        }
    }

    /// Completes the chain at `head`: `written` bytes were written into its writable buffers
    /// (§2.7.8). The element is visible before the used index that publishes it.
    pub fn push_used(
        &mut self,
        memory: &mut impl GuestMemory,
        head: u16,
        written: u32,
    ) -> Result<(), QueueError> {
        let result = self.publish(memory, head, written);
        self.stop_on(result)
    }

    fn publish(
        &mut self,
        memory: &mut impl GuestMemory,
        head: u16,
        written: u32,
    ) -> Result<(), QueueError> {
        let size = self.usable_size(memory.window())?;
        if head >= size {
            return Err(QueueError::HeadOutOfRange { head });
        }
        let slot = u64::from(self.next_used % size);
        let mut element = [0u8; USED_ELEMENT_BYTES as usize];
        element[..4].copy_from_slice(&u32::from(head).to_le_bytes());
        element[4..].copy_from_slice(&written.to_le_bytes());
        memory
            .write(self.device_area + 4 + USED_ELEMENT_BYTES * slot, &element)
            .map_err(QueueError::Memory)?;
        // The element, and the buffer contents before it, precede the index (§2.7.8.2).
        fence(Ordering::Release);
        let next_used = self.next_used.wrapping_add(1);
        memory
            .write_u16(self.device_area + 2, next_used)
            .map_err(QueueError::Memory)?;
        self.next_used = next_used;
        Ok(())
    }

    /// Whether the driver wants a used-buffer notification now (§2.7.7.2, without event idx:
    /// unless VIRTQ_AVAIL_F_NO_INTERRUPT is set). Unreadable flags count as "yes": a spurious
    /// interrupt costs the driver a look at the ring, a missed one hangs it.
    pub fn wants_interrupt(&self, memory: &impl GuestMemory) -> bool {
        // The used index is published before the flags are looked at (§2.7.7.2, as QEMU's
        // virtio_should_notify orders them).
        fence(Ordering::SeqCst);
        match memory.read_u16(self.driver_area) {
            Ok(flags) => flags & AVAIL_F_NO_INTERRUPT == 0,
            Err(_) => true,
        }
    }

    /// Picks the device's position up from guest memory after the device server restarted
    /// with this queue's configuration but not its position: both the next chain to take and
    /// the next used slot become the used ring's `idx`.
    ///
    /// Why this neither completes a request twice nor loses one: the device completes chains
    /// in the order it takes them, one at a time, and publishes each completion by writing
    /// the used index (after the element) before it takes the next chain. So at any instant
    /// the used index in guest memory counts exactly the chains completed, and at most one
    /// more chain — the one at available position `idx` — has been taken without being
    /// completed. Restarting at `idx` therefore skips every completed chain (none is
    /// completed twice: its used slot and index were written once, before the crash) and
    /// takes again the one in flight, whose completion the driver never saw. The driver
    /// cannot have reused that chain's buffers, as it does not own them until completion, so
    /// redoing the request is redoing the same request: a block read or write of the same
    /// sectors with the same data. Every later available entry is still ahead of `idx` and
    /// is taken in turn. The only cost is a redone side effect (a console line written
    /// twice, a block write repeated), never a lost or doubled completion. A guest that
    /// scribbled over its used index only misleads itself, and an index that leaves more
    /// than `size` chains pending stops the queue at the next [`Queue::pop`].
    pub fn recover(&mut self, memory: &impl GuestMemory) -> Result<(), QueueError> {
        let result = self.find_position(memory);
        self.stop_on(result)
    }

    fn find_position(&mut self, memory: &impl GuestMemory) -> Result<(), QueueError> {
        self.usable_size(memory.window())?;
        let used_index = memory
            .read_u16(self.device_area + 2)
            .map_err(QueueError::Memory)?;
        self.next_avail = used_index;
        self.next_used = used_index;
        Ok(())
    }
}
