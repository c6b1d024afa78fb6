//! A device server restarting under a running driver: the transport state comes back from a
//! saved copy (possibly stale), the queue position from guest memory (`Queue::recover`).

use super::blk::{CAPACITY, config, header_at, put_header, status_at};
use super::*;
use crate::blk::{request_status, request_type};
use crate::mmio::{Transport, interrupt, status};
use crate::queue::Chain;

/// Adds a one-sector write of `fill` to `sector` as request `n`.
fn write_request(guest: &mut Guest, ring: &mut Ring, n: u64, sector: u64, fill: u8) -> u16 {
    let data = BUFFERS + 0x1_0000 + 512 * n;
    guest.put(data, &[fill; 512]);
    put_header(guest, n, request_type::OUT, sector);
    ring.add(
        guest,
        &[
            readable(header_at(n), 16),
            readable(data, 512),
            writable(status_at(n), 1),
        ],
    )
}

/// The server's restart: a fresh device given the saved transport, then `recover`.
fn restart(saved: Transport, guest: &mut Guest, disk: MemoryDisk) -> Blk {
    let mut blk = Blk {
        device: BlockDevice::new(config(), Guest::window()).unwrap(),
        disk,
    };
    *blk.device.transport_mut() = saved;
    blk.device.recover(&mut guest.memory(), &mut blk.disk);
    blk
}

#[test]
fn a_request_completed_before_the_crash_is_not_redone_and_one_in_flight_is() {
    let (mut blk, mut guest, mut ring) = super::blk::running(config());
    // The copy the server saved: taken at DRIVER_OK, before any request (its position is 0).
    let saved = blk.device.transport().clone();

    let completed = write_request(&mut guest, &mut ring, 0, 0, b'A');
    notify(&mut blk, &mut guest, 0);
    assert_eq!(guest.bytes(status_at(0), 1), [request_status::OK]);
    acknowledge(&mut blk, &mut guest);

    // The second request is taken, then the server dies before completing it.
    let in_flight = write_request(&mut guest, &mut ring, 1, 1, b'B');
    let mut chain = Chain::new();
    let queue = blk.device.transport_mut().active_queue_mut(0).unwrap();
    assert_eq!(queue.pop(&guest.memory(), &mut chain), Ok(true));
    assert_eq!(chain.head(), in_flight);
    let mut disk = blk.disk;
    disk.log.clear();

    let blk = restart(saved, &mut guest, disk);
    assert_eq!(
        blk.disk.log,
        [DiskCall::Write {
            sector: 1,
            bytes: 512
        }],
        "only the request in flight is redone"
    );
    assert_eq!(ring.used_index(&guest), 2);
    assert_eq!(ring.used_element(&guest, 0), (u32::from(completed), 1));
    assert_eq!(ring.used_element(&guest, 1), (u32::from(in_flight), 1));
    assert_eq!(guest.bytes(status_at(1), 1), [request_status::OK]);
    assert_eq!(&blk.disk.bytes[..512], &[b'A'; 512][..]);
    assert_eq!(&blk.disk.bytes[512..1024], &[b'B'; 512][..]);
    assert!(blk.device.interrupt_line());
    let queue = blk.device.transport().queue(0).unwrap();
    assert_eq!((queue.next_avail(), queue.next_used()), (2, 2));
}

#[test]
fn a_completion_published_just_before_the_crash_is_signalled_after_it() {
    let (mut blk, mut guest, mut ring) = super::blk::running(config());
    write_request(&mut guest, &mut ring, 0, 0, b'A');
    notify(&mut blk, &mut guest, 0);
    // Saved after the completion, but the interrupt never reached the driver.
    let saved = blk.device.transport().clone();
    let mut disk = blk.disk;
    disk.log.clear();
    let blk = restart(saved, &mut guest, disk);
    assert!(blk.disk.log.is_empty(), "nothing to redo");
    assert_eq!(ring.used_index(&guest), 1);
    assert_eq!(
        blk.device.read(crate::mmio::register::INTERRUPT_STATUS, 4),
        Some(u64::from(interrupt::USED_BUFFER))
    );
}

#[test]
fn requests_made_available_while_the_server_was_down_are_served_on_recovery() {
    let (mut blk, mut guest, mut ring) = super::blk::running(config());
    let saved = blk.device.transport().clone();
    // The notifications of these went to a dead server.
    write_request(&mut guest, &mut ring, 0, 5, b'x');
    write_request(&mut guest, &mut ring, 1, 6, b'y');
    let mut disk = std::mem::replace(&mut blk.disk, MemoryDisk::new(CAPACITY));
    disk.log.clear();
    let blk = restart(saved, &mut guest, disk);
    assert_eq!(ring.used_index(&guest), 2);
    assert_eq!(blk.disk.log.len(), 2);
}

#[test]
fn a_scribbled_used_index_stops_the_queue_instead_of_replaying_the_ring() {
    let (mut blk, mut guest, mut ring) = super::blk::running(config());
    let saved = blk.device.transport().clone();
    for n in 0..3 {
        write_request(&mut guest, &mut ring, n, n, b'z');
    }
    notify(&mut blk, &mut guest, 0);
    // The guest moves the used index back by more than the queue size.
    guest.put(ring.used + 2, &(3u16.wrapping_sub(100)).to_le_bytes());
    let mut disk = blk.disk;
    disk.log.clear();
    let blk = restart(saved, &mut guest, disk);
    assert!(blk.disk.log.is_empty());
    assert_ne!(
        blk.device.transport().status() & status::DEVICE_NEEDS_RESET,
        0
    );
}

#[test]
fn recovery_before_driver_ok_changes_nothing() {
    let mut device = BlockDevice::new(config(), Guest::window()).unwrap();
    let mut guest = Guest::new();
    let mut disk = MemoryDisk::new(CAPACITY);
    let before = device.transport().clone();
    device.recover(&mut guest.memory(), &mut disk);
    assert_eq!(device.transport(), &before);
    assert!(!device.interrupt_line());
}

#[test]
fn a_console_line_in_flight_is_sent_again_and_a_sent_one_is_not() {
    let (mut console, mut guest, _, mut transmit) = super::console::running();
    let saved = console.device.transport().clone();
    guest.put(BUFFERS, b"sent\n");
    guest.put(BUFFERS + 0x100, b"in flight\n");
    transmit.add(&mut guest, &[readable(BUFFERS, 5)]);
    notify(&mut console, &mut guest, 1);
    transmit.add(&mut guest, &[readable(BUFFERS + 0x100, 10)]);
    let mut chain = Chain::new();
    let queue = console
        .device
        .transport_mut()
        .active_queue_mut(crate::console::TRANSMITQ)
        .unwrap();
    assert_eq!(queue.pop(&guest.memory(), &mut chain), Ok(true));

    let mut restarted = ConsoleDevice::new(Guest::window());
    *restarted.transport_mut() = saved;
    let mut output = Vec::new();
    restarted.recover(&mut guest.memory(), &mut |bytes: &[u8]| {
        output.extend_from_slice(bytes)
    });
    assert_eq!(output, b"in flight\n");
    assert_eq!(transmit.used_index(&guest), 2);
}

#[test]
fn the_transport_state_survives_postcard() {
    let (blk, _, _) = super::blk::running(config());
    let saved = blk.device.transport().clone();
    let mut buffer = [0u8; 256];
    let bytes = postcard::to_slice(&saved, &mut buffer).unwrap();
    let restored: Transport = postcard::from_bytes(bytes).unwrap();
    assert_eq!(restored, saved);
}
