//! The split virtqueue against hostile descriptors and indices (virtio 1.2 §2.7).

use super::*;
use crate::queue::{AVAIL_F_NO_INTERRUPT, Chain, ChainError, Queue, QueueError};
use descriptor_flags::{INDIRECT, NEXT, WRITE};

/// A ready queue on `ring`.
fn ready(ring: &Ring, window: RamWindow) -> Queue {
    let mut queue = Queue::new();
    queue.set_size(u32::from(ring.size));
    for (area, address) in [ring.descriptors, ring.avail, ring.used]
        .into_iter()
        .enumerate()
    {
        queue.set_area_half(area, false, address as u32);
        queue.set_area_half(area, true, (address >> 32) as u32);
    }
    queue.enable(window).expect("the fixture's queue is valid");
    queue
}

/// Takes the next chain, which must be there.
fn take(queue: &mut Queue, guest: &mut Guest, chain: &mut Chain) {
    assert_eq!(queue.pop(&guest.memory(), chain), Ok(true));
}

#[test]
fn a_chain_reads_and_writes_as_two_streams_across_descriptors() {
    let mut guest = Guest::new();
    let mut ring = Ring::new(0, 8);
    let mut queue = ready(&ring, Guest::window());
    guest.put(BUFFERS, b"hello, ");
    guest.put(BUFFERS + 0x100, b"world");
    let head = ring.add(
        &mut guest,
        &[
            readable(BUFFERS, 7),
            readable(BUFFERS + 0x100, 5),
            writable(BUFFERS + 0x200, 3),
            writable(BUFFERS + 0x300, 0),
            writable(BUFFERS + 0x400, 4),
        ],
    );
    let mut chain = Chain::new();
    take(&mut queue, &mut guest, &mut chain);
    assert_eq!(chain.head(), head);
    assert_eq!(chain.error(), None);
    assert_eq!((chain.readable_len(), chain.writable_len()), (12, 7));
    assert_eq!(chain.descriptors().len(), 5);

    let mut text = [0u8; 12];
    chain.read(&guest.memory(), 0, &mut text).unwrap();
    assert_eq!(&text, b"hello, world");
    let mut middle = [0u8; 4];
    chain.read(&guest.memory(), 5, &mut middle).unwrap();
    assert_eq!(&middle, b", wo");
    chain.write(&mut guest.memory(), 1, b"abcde").unwrap();
    assert_eq!(guest.bytes(BUFFERS + 0x200, 3), b"\0ab");
    assert_eq!(guest.bytes(BUFFERS + 0x400, 4), b"cde\0");

    assert_eq!(
        chain.read(&guest.memory(), 10, &mut middle),
        Err(ChainError::BeyondChain)
    );
    assert_eq!(
        chain.write(&mut guest.memory(), 7, b"x"),
        Err(ChainError::BeyondChain)
    );
    assert_eq!(
        chain.read(&guest.memory(), u32::MAX, &mut middle),
        Err(ChainError::BeyondChain)
    );

    queue.push_used(&mut guest.memory(), head, 7).unwrap();
    assert_eq!(ring.used_index(&guest), 1);
    assert_eq!(ring.used_element(&guest, 0), (u32::from(head), 7));
    assert_eq!(queue.pop(&guest.memory(), &mut chain), Ok(false));
}

/// Adds a one-descriptor chain `(address, length, flags)` at descriptor 0 and takes it.
fn take_single(address: u64, length: u32, flags: u16) -> Chain {
    let mut guest = Guest::new();
    let mut ring = Ring::new(0, 8);
    let mut queue = ready(&ring, Guest::window());
    ring.put_descriptor(&mut guest, 0, address, length, flags, 0);
    ring.publish(&mut guest, 0);
    let mut chain = Chain::new();
    take(&mut queue, &mut guest, &mut chain);
    chain
}

#[test]
fn buffers_outside_ram_fail_the_chain() {
    let end = RAM_BASE + RAM_BYTES as u64;
    for (address, length) in [
        (RAM_BASE - 4, 8),                // straddling the start
        (end - 4, 8),                     // straddling the end
        (end, 1),                         // just past it
        (0, 16),                          // unset
        (u64::MAX - 2, 16),               // wrapping
        (RAM_BASE, u32::MAX),             // huge
        (RAM_BASE + 1, RAM_BYTES as u32), // one byte too many
    ] {
        let chain = take_single(address, length, WRITE);
        assert!(
            matches!(chain.error(), Some(ChainError::OutsideRam(_))),
            "{address:#x}+{length:#x}: {:?}",
            chain.error()
        );
        let mut guest = Guest::new();
        assert!(chain.write(&mut guest.memory(), 0, &[1]).is_err());
    }
    // All of RAM is one fine buffer.
    let chain = take_single(RAM_BASE, RAM_BYTES as u32, WRITE);
    assert_eq!(chain.error(), None);
    assert_eq!(chain.writable_len(), RAM_BYTES as u32);
}

#[test]
fn zero_length_buffers_are_never_checked_nor_touched() {
    let chain = take_single(u64::MAX, 0, WRITE);
    assert_eq!(chain.error(), None);
    assert_eq!(chain.writable_len(), 0);
    let mut guest = Guest::new();
    assert_eq!(chain.write(&mut guest.memory(), 0, &[]), Ok(()));
    assert_eq!(chain.last_writable_byte(), None, "no status byte in it");
}

#[test]
fn chains_adding_up_past_four_gibibytes_fail() {
    // Two buffers of 3 GiB each inside a 16 GiB RAM that is never touched.
    let mut memory = SparseMemory::new(0x1_0000_0000, 0x4_0000_0000);
    let ring = Ring {
        descriptors: 0x1_0000_0000,
        avail: 0x1_0000_1000,
        used: 0x1_0000_2000,
        size: 8,
        next_descriptor: 0,
        avail_index: 0,
    };
    let mut queue = ready(&ring, memory.window);
    let three_gib = 0xC000_0000u32;
    let descriptor =
        |memory: &mut SparseMemory, index: u64, address: u64, flags: u16, next: u16| {
            let mut raw = [0u8; 16];
            raw[0..8].copy_from_slice(&address.to_le_bytes());
            raw[8..12].copy_from_slice(&three_gib.to_le_bytes());
            raw[12..14].copy_from_slice(&flags.to_le_bytes());
            raw[14..16].copy_from_slice(&next.to_le_bytes());
            memory.write(ring.descriptors + 16 * index, &raw).unwrap();
        };
    descriptor(&mut memory, 0, 0x2_0000_0000, NEXT, 1);
    descriptor(&mut memory, 1, 0x3_0000_0000, WRITE, 0);
    memory.write_u16(ring.avail + 4, 0).unwrap();
    memory.write_u16(ring.avail + 2, 1).unwrap();
    let mut chain = Chain::new();
    assert_eq!(queue.pop(&memory, &mut chain), Ok(true));
    assert_eq!(chain.error(), Some(ChainError::TooManyBytes));
    // One of them alone is fine.
    descriptor(&mut memory, 0, 0x2_0000_0000, WRITE, 0);
    memory.write_u16(ring.avail + 6, 0).unwrap();
    memory.write_u16(ring.avail + 2, 2).unwrap();
    queue.push_used(&mut memory, 0, 0).unwrap();
    assert_eq!(queue.pop(&memory, &mut chain), Ok(true));
    assert_eq!(chain.error(), None);
    assert_eq!(chain.writable_len(), three_gib);
}

#[test]
fn a_loop_is_cut_after_the_queue_size() {
    let mut guest = Guest::new();
    let mut ring = Ring::new(0, 4);
    let mut queue = ready(&ring, Guest::window());
    for index in 0..4 {
        ring.put_descriptor(&mut guest, index, BUFFERS, 1, NEXT, (index + 1) % 4);
    }
    ring.publish(&mut guest, 2);
    let mut chain = Chain::new();
    take(&mut queue, &mut guest, &mut chain);
    assert_eq!(chain.error(), Some(ChainError::TooLong));
    assert_eq!(chain.descriptors().len(), 4);
    assert_eq!(chain.last_writable_byte(), None);
    // A self-loop too.
    queue
        .push_used(&mut guest.memory(), chain.head(), 0)
        .unwrap();
    ring.put_descriptor(&mut guest, 1, BUFFERS, 1, NEXT | WRITE, 1);
    ring.publish(&mut guest, 1);
    take(&mut queue, &mut guest, &mut chain);
    assert_eq!(chain.error(), Some(ChainError::TooLong));
}

#[test]
fn a_chain_of_exactly_the_queue_size_is_fine() {
    let mut guest = Guest::new();
    let mut ring = Ring::new(0, 4);
    let mut queue = ready(&ring, Guest::window());
    let head = ring.add(
        &mut guest,
        &[
            readable(BUFFERS, 1),
            readable(BUFFERS + 1, 1),
            writable(BUFFERS + 2, 1),
            writable(BUFFERS + 3, 1),
        ],
    );
    let mut chain = Chain::new();
    take(&mut queue, &mut guest, &mut chain);
    assert_eq!((chain.head(), chain.error()), (head, None));
    assert_eq!(chain.descriptors().len(), 4);
    assert_eq!(chain.last_writable_byte(), Some(BUFFERS + 3));
}

#[test]
fn a_next_index_outside_the_table_fails_the_chain() {
    let mut guest = Guest::new();
    let mut ring = Ring::new(0, 8);
    let mut queue = ready(&ring, Guest::window());
    ring.put_descriptor(&mut guest, 0, BUFFERS, 16, NEXT, 8);
    ring.publish(&mut guest, 0);
    let mut chain = Chain::new();
    take(&mut queue, &mut guest, &mut chain);
    assert_eq!(chain.error(), Some(ChainError::NextOutOfRange { index: 8 }));
}

#[test]
fn readable_after_writable_and_indirect_fail_the_chain() {
    let mut guest = Guest::new();
    let mut ring = Ring::new(0, 8);
    let mut queue = ready(&ring, Guest::window());
    ring.add(
        &mut guest,
        &[
            readable(BUFFERS, 16),
            writable(BUFFERS + 16, 16),
            readable(BUFFERS + 32, 16),
            writable(BUFFERS + 48, 1),
        ],
    );
    let mut chain = Chain::new();
    take(&mut queue, &mut guest, &mut chain);
    assert_eq!(chain.error(), Some(ChainError::ReadableAfterWritable));
    // Reads and writes are refused; the status byte is still found.
    assert_eq!(
        chain.read(&guest.memory(), 0, &mut [0; 4]),
        Err(ChainError::ReadableAfterWritable)
    );
    assert_eq!(chain.last_writable_byte(), Some(BUFFERS + 48));
    queue
        .push_used(&mut guest.memory(), chain.head(), 0)
        .unwrap();

    let chain = take_single(BUFFERS, 16, INDIRECT);
    assert_eq!(chain.error(), Some(ChainError::Indirect));
}

#[test]
fn the_status_byte_of_a_chain_with_a_bad_buffer_is_still_found() {
    let mut guest = Guest::new();
    let mut ring = Ring::new(0, 8);
    let mut queue = ready(&ring, Guest::window());
    ring.add(
        &mut guest,
        &[
            readable(BUFFERS, 16),
            writable(0x10, 512),
            writable(BUFFERS + 16, 1),
        ],
    );
    let mut chain = Chain::new();
    take(&mut queue, &mut guest, &mut chain);
    assert!(matches!(chain.error(), Some(ChainError::OutsideRam(_))));
    assert_eq!(chain.last_writable_byte(), Some(BUFFERS + 16));
    // A readable last descriptor has no status byte.
    let chain = take_single(BUFFERS, 16, 0);
    assert_eq!(chain.last_writable_byte(), None);
}

#[test]
fn an_available_index_jumping_past_the_queue_size_stops_the_queue() {
    let mut guest = Guest::new();
    let ring = Ring::new(0, 8);
    let mut queue = ready(&ring, Guest::window());
    ring.set_avail_index(&mut guest, 9);
    let mut chain = Chain::new();
    assert_eq!(
        queue.pop(&guest.memory(), &mut chain),
        Err(QueueError::AvailIndexJump {
            avail_index: 9,
            next_avail: 0
        })
    );
    assert!(queue.is_broken());
    ring.set_avail_index(&mut guest, 1);
    assert_eq!(
        queue.pop(&guest.memory(), &mut chain),
        Err(QueueError::Broken)
    );
    assert_eq!(
        queue.push_used(&mut guest.memory(), 0, 0),
        Err(QueueError::Broken)
    );
    assert_eq!(ring.used_index(&guest), 0, "a broken queue is not written");

    // Exactly the queue size pending is fine.
    let mut queue = ready(&ring, Guest::window());
    ring.set_avail_index(&mut guest, 8);
    assert_eq!(queue.pop(&guest.memory(), &mut chain), Ok(true));
    // Going backwards looks like a jump of almost 65536.
    let mut queue = ready(&ring, Guest::window());
    ring.set_avail_index(&mut guest, 0xFFFF);
    assert!(matches!(
        queue.pop(&guest.memory(), &mut chain),
        Err(QueueError::AvailIndexJump { .. })
    ));
}

#[test]
fn a_head_outside_the_table_stops_the_queue() {
    let mut guest = Guest::new();
    let mut ring = Ring::new(0, 8);
    let mut queue = ready(&ring, Guest::window());
    ring.publish(&mut guest, 8);
    let mut chain = Chain::new();
    assert_eq!(
        queue.pop(&guest.memory(), &mut chain),
        Err(QueueError::HeadOutOfRange { head: 8 })
    );
    assert!(queue.is_broken());
}

#[test]
fn a_queue_not_ready_is_not_read() {
    let mut guest = Guest::new();
    let mut ring = Ring::new(0, 8);
    let mut queue = ready(&ring, Guest::window());
    ring.add(&mut guest, &[writable(BUFFERS, 1)]);
    queue.disable();
    let mut chain = Chain::new();
    assert_eq!(
        queue.pop(&guest.memory(), &mut chain),
        Err(QueueError::NotReady)
    );
    assert!(!queue.is_broken(), "not ready is no driver error");
}

#[test]
fn indices_wrap_at_65536() {
    let mut guest = Guest::new();
    let mut ring = Ring::new(0, 8);
    let mut queue = ready(&ring, Guest::window());
    // As if 65534 chains had been completed before.
    guest.put(ring.used + 2, &0xFFFEu16.to_le_bytes());
    ring.avail_index = 0xFFFE;
    queue.recover(&guest.memory()).unwrap();
    let mut chain = Chain::new();
    for round in 0..4u16 {
        let head = ring.add(&mut guest, &[writable(BUFFERS, 1)]);
        take(&mut queue, &mut guest, &mut chain);
        assert_eq!(chain.head(), head);
        queue.push_used(&mut guest.memory(), head, 1).unwrap();
        assert_eq!(ring.used_index(&guest), 0xFFFFu16.wrapping_add(round));
        assert_eq!(
            ring.used_element(&guest, 0xFFFEu16.wrapping_add(round)),
            (u32::from(head), 1)
        );
    }
    assert_eq!(queue.pop(&guest.memory(), &mut chain), Ok(false));
}

#[test]
fn no_interrupt_is_wanted_while_the_driver_says_so() {
    let mut guest = Guest::new();
    let ring = Ring::new(0, 8);
    let queue = ready(&ring, Guest::window());
    assert!(queue.wants_interrupt(&guest.memory()));
    ring.set_avail_flags(&mut guest, AVAIL_F_NO_INTERRUPT);
    assert!(!queue.wants_interrupt(&guest.memory()));
}

#[test]
fn the_used_length_is_what_the_device_says_it_wrote() {
    let mut guest = Guest::new();
    let mut ring = Ring::new(0, 8);
    let mut queue = ready(&ring, Guest::window());
    let first = ring.add(&mut guest, &[readable(BUFFERS, 8)]);
    let second = ring.add(
        &mut guest,
        &[writable(BUFFERS, 8), writable(BUFFERS + 8, 8)],
    );
    let mut chain = Chain::new();
    take(&mut queue, &mut guest, &mut chain);
    queue.push_used(&mut guest.memory(), first, 0).unwrap();
    take(&mut queue, &mut guest, &mut chain);
    assert_eq!(chain.head(), second);
    queue.push_used(&mut guest.memory(), second, 12).unwrap();
    assert_eq!(ring.used_element(&guest, 0), (u32::from(first), 0));
    assert_eq!(ring.used_element(&guest, 1), (u32::from(second), 12));
    assert_eq!(ring.used_index(&guest), 2);
    assert_eq!((queue.next_avail(), queue.next_used()), (2, 2));
}
