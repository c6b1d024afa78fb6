//! The block device end to end: a driver laying requests out in guest memory as Linux's
//! virtio_blk does (header, data segments, status), an in-memory disk behind (§5.2).

use super::*;
use crate::blk::{
    BlockConfig, ConfigError, ID_BYTES, SEG_MAX, feature, request_status, request_type,
};
use crate::mmio::{CONFIG_OFFSET, interrupt};

pub const CAPACITY: u64 = 64;
pub const SERIAL: [u8; ID_BYTES] = *b"hvdisk-0\0\0\0\0\0\0\0\0\0\0\0\0";

pub fn config() -> BlockConfig {
    BlockConfig {
        capacity_sectors: CAPACITY,
        block_size: None,
        read_only: false,
        serial: SERIAL,
    }
}

/// A running block device on ring 0 of size 16.
pub fn running(config: BlockConfig) -> (Blk, Guest, Ring) {
    let mut blk = Blk {
        device: BlockDevice::new(config, Guest::window()).unwrap(),
        disk: MemoryDisk::new(CAPACITY),
    };
    let mut guest = Guest::new();
    let ring = Ring::new(0, 16);
    start(&mut blk, &mut guest, &[ring]);
    (blk, guest, ring)
}

/// Where the request header of request `n` goes, and its status byte.
pub fn header_at(n: u64) -> u64 {
    BUFFERS + 0x100 * n
}
pub fn status_at(n: u64) -> u64 {
    header_at(n) + 0x20
}
/// Data buffers, 64 KiB from the fixture's buffer area on.
pub const DATA: u64 = BUFFERS + 0x1_0000;

/// Writes request `n`'s header and poisons its status byte.
pub fn put_header(guest: &mut Guest, n: u64, kind: u32, sector: u64) {
    let mut header = [0u8; 16];
    header[0..4].copy_from_slice(&kind.to_le_bytes());
    header[8..16].copy_from_slice(&sector.to_le_bytes());
    guest.put(header_at(n), &header);
    guest.put(status_at(n), &[0xEE]);
}

/// Adds request `n`: its header, then `data`, then its status byte.
pub fn request(
    guest: &mut Guest,
    ring: &mut Ring,
    n: u64,
    kind: u32,
    sector: u64,
    data: &[Buffer],
) -> u16 {
    put_header(guest, n, kind, sector);
    let mut buffers = vec![readable(header_at(n), 16)];
    buffers.extend_from_slice(data);
    buffers.push(writable(status_at(n), 1));
    ring.add(guest, &buffers)
}

fn status(guest: &Guest, n: u64) -> u8 {
    guest.bytes(status_at(n), 1)[0]
}

#[test]
fn configuration_presents_capacity_and_seg_max() {
    let (mut blk, mut guest, _) = running(BlockConfig {
        block_size: Some(4096),
        ..config()
    });
    let low = read_register(&mut blk, &mut guest, CONFIG_OFFSET);
    let high = read_register(&mut blk, &mut guest, CONFIG_OFFSET + 4);
    assert_eq!((low, high), (CAPACITY as u32, 0));
    assert_eq!(blk.device.read(CONFIG_OFFSET, 8), Some(CAPACITY));
    assert_eq!(
        blk.device.read(CONFIG_OFFSET + 12, 4),
        Some(u64::from(SEG_MAX))
    );
    assert_eq!(blk.device.read(CONFIG_OFFSET + 20, 4), Some(4096));
    let offered = blk.device.transport().device_features();
    assert_eq!(
        offered,
        crate::mmio::feature::VERSION_1 | feature::SEG_MAX | feature::FLUSH | feature::BLK_SIZE
    );
    assert_eq!(blk.device.transport().driver_features(), offered);
    // Nothing is written to the configuration.
    assert_eq!(
        blk.access(
            &mut guest,
            Request::Write {
                offset: CONFIG_OFFSET,
                width: 8,
                value: 1
            }
        ),
        Response::BusError
    );
    assert_eq!(blk.device.read(CONFIG_OFFSET, 8), Some(CAPACITY));
}

#[test]
fn block_sizes_linux_refuses_are_refused() {
    for size in [0, 256, 768, 8192] {
        assert_eq!(
            BlockDevice::new(
                BlockConfig {
                    block_size: Some(size),
                    ..config()
                },
                Guest::window()
            )
            .err(),
            Some(ConfigError::BadBlockSize(size))
        );
    }
}

#[test]
fn a_write_then_a_read_round_trip_through_the_disk() {
    let (mut blk, mut guest, mut ring) = running(config());
    // 3 segments, 5 KiB + 512 + 2.5 KiB = 16 sectors: more than one bounce piece, pieces
    // spanning segments.
    let segments = [(DATA, 5120u32), (DATA + 0x2000, 512), (DATA + 0x3000, 2560)];
    let mut pattern = Vec::new();
    for (i, &(address, length)) in segments.iter().enumerate() {
        let bytes: Vec<u8> = (0..length).map(|b| (b as u8) ^ (i as u8 * 0x55)).collect();
        guest.put(address, &bytes);
        pattern.extend_from_slice(&bytes);
    }
    let data: Vec<Buffer> = segments.iter().map(|&(a, l)| readable(a, l)).collect();
    let head = request(&mut guest, &mut ring, 0, request_type::OUT, 8, &data);
    assert!(notify(&mut blk, &mut guest, 0), "the line rises");
    assert_eq!(status(&guest, 0), request_status::OK);
    assert_eq!(ring.used_index(&guest), 1);
    assert_eq!(ring.used_element(&guest, 0), (u32::from(head), 1));
    assert_eq!(&blk.disk.bytes[8 * 512..24 * 512], &pattern[..]);
    assert_eq!(acknowledge(&mut blk, &mut guest), interrupt::USED_BUFFER);

    // Read it back into other buffers, split differently.
    let targets = [(DATA + 0x8000, 4096u32), (DATA + 0xA000, 4096)];
    let data: Vec<Buffer> = targets.iter().map(|&(a, l)| writable(a, l)).collect();
    let head = request(&mut guest, &mut ring, 1, request_type::IN, 8, &data);
    assert!(notify(&mut blk, &mut guest, 0));
    assert_eq!(status(&guest, 1), request_status::OK);
    assert_eq!(ring.used_element(&guest, 1), (u32::from(head), 8192 + 1));
    let mut read_back = guest.bytes(DATA + 0x8000, 4096).to_vec();
    read_back.extend_from_slice(guest.bytes(DATA + 0xA000, 4096));
    assert_eq!(read_back, pattern);
    assert_eq!(
        blk.disk.log,
        [
            DiskCall::Write {
                sector: 8,
                bytes: 4096
            },
            DiskCall::Write {
                sector: 16,
                bytes: 4096
            },
            DiskCall::Read {
                sector: 8,
                bytes: 4096
            },
            DiskCall::Read {
                sector: 16,
                bytes: 4096
            },
        ]
    );
}

#[test]
fn the_last_sectors_are_in_range_and_one_past_is_not() {
    let (mut blk, mut guest, mut ring) = running(config());
    request(
        &mut guest,
        &mut ring,
        0,
        request_type::IN,
        CAPACITY - 2,
        &[writable(DATA, 1024)],
    );
    request(
        &mut guest,
        &mut ring,
        1,
        request_type::IN,
        CAPACITY - 1,
        &[writable(DATA, 1024)],
    );
    request(
        &mut guest,
        &mut ring,
        2,
        request_type::OUT,
        CAPACITY,
        &[readable(DATA, 512)],
    );
    request(
        &mut guest,
        &mut ring,
        3,
        request_type::OUT,
        u64::MAX,
        &[readable(DATA, 512)],
    );
    request(
        &mut guest,
        &mut ring,
        4,
        request_type::IN,
        u64::MAX - 1,
        &[writable(DATA, 1024)],
    );
    notify(&mut blk, &mut guest, 0);
    assert_eq!(status(&guest, 0), request_status::OK);
    for n in 1..5 {
        assert_eq!(status(&guest, n), request_status::IOERR, "request {n}");
    }
    // A write's status is its only writable byte; a failed read leaves its data unwritten,
    // so the used length cannot count the status byte after it.
    let lengths: Vec<u32> = (1..5).map(|n| ring.used_element(&guest, n).1).collect();
    assert_eq!(lengths, [0, 1, 1, 0]);
    assert_eq!(
        blk.disk.log,
        [DiskCall::Read {
            sector: CAPACITY - 2,
            bytes: 1024
        }]
    );
}

#[test]
fn data_that_is_not_whole_sectors_is_an_error() {
    let (mut blk, mut guest, mut ring) = running(config());
    request(
        &mut guest,
        &mut ring,
        0,
        request_type::IN,
        0,
        &[writable(DATA, 511)],
    );
    request(
        &mut guest,
        &mut ring,
        1,
        request_type::OUT,
        0,
        &[readable(DATA, 513)],
    );
    notify(&mut blk, &mut guest, 0);
    assert_eq!(status(&guest, 0), request_status::IOERR);
    assert_eq!(status(&guest, 1), request_status::IOERR);
    assert!(blk.disk.log.is_empty());
}

#[test]
fn flush_reaches_the_backend() {
    let (mut blk, mut guest, mut ring) = running(config());
    request(&mut guest, &mut ring, 0, request_type::FLUSH, 0, &[]);
    notify(&mut blk, &mut guest, 0);
    assert_eq!(status(&guest, 0), request_status::OK);
    assert_eq!(ring.used_element(&guest, 0).1, 1);
    assert_eq!(blk.disk.log, [DiskCall::Flush]);
}

#[test]
fn get_id_answers_the_serial() {
    let (mut blk, mut guest, mut ring) = running(config());
    guest.put(DATA, &[0xFF; 32]);
    request(
        &mut guest,
        &mut ring,
        0,
        request_type::GET_ID,
        0,
        &[writable(DATA, 20)],
    );
    notify(&mut blk, &mut guest, 0);
    assert_eq!(status(&guest, 0), request_status::OK);
    assert_eq!(guest.bytes(DATA, 20), &SERIAL);
    assert_eq!(ring.used_element(&guest, 0).1, 21);
    assert_eq!(guest.bytes(DATA + 20, 1), [0xFF]);
}

#[test]
fn unknown_request_types_are_unsupported() {
    let (mut blk, mut guest, mut ring) = running(config());
    for (n, kind) in [2u32, 10, 11, 13, 14, 0xFFFF_FFFF].into_iter().enumerate() {
        // Header and status only: six requests of two descriptors fit in the table.
        request(&mut guest, &mut ring, n as u64, kind, 0, &[]);
    }
    notify(&mut blk, &mut guest, 0);
    for n in 0..6 {
        assert_eq!(status(&guest, n), request_status::UNSUPP, "request {n}");
    }
    assert!(blk.disk.log.is_empty());
}

#[test]
fn a_request_without_a_writable_status_byte_is_dropped_and_the_next_served() {
    let (mut blk, mut guest, mut ring) = running(config());
    put_header(&mut guest, 0, request_type::FLUSH, 0);
    let dropped = ring.add(
        &mut guest,
        &[readable(header_at(0), 16), readable(status_at(0), 1)],
    );
    // A status descriptor outside RAM is no better.
    put_header(&mut guest, 1, request_type::FLUSH, 0);
    let outside = ring.add(
        &mut guest,
        &[readable(header_at(1), 16), writable(0x1000, 1)],
    );
    let served = request(&mut guest, &mut ring, 2, request_type::FLUSH, 0, &[]);
    notify(&mut blk, &mut guest, 0);
    assert_eq!(ring.used_index(&guest), 3);
    assert_eq!(ring.used_element(&guest, 0), (u32::from(dropped), 0));
    assert_eq!(
        status(&guest, 0),
        0xEE,
        "a device-readable byte is never written"
    );
    assert_eq!(ring.used_element(&guest, 1), (u32::from(outside), 0));
    assert_eq!(ring.used_element(&guest, 2), (u32::from(served), 1));
    assert_eq!(status(&guest, 2), request_status::OK);
    assert_eq!(blk.disk.log, [DiskCall::Flush]);
    assert_eq!(
        blk.device.transport().status() & crate::mmio::status::DEVICE_NEEDS_RESET,
        0,
        "bad requests do not stop the device"
    );
}

#[test]
fn a_data_buffer_outside_ram_fails_the_request_with_ioerr() {
    let (mut blk, mut guest, mut ring) = running(config());
    request(
        &mut guest,
        &mut ring,
        0,
        request_type::IN,
        0,
        &[writable(0x2000_0000, 512)],
    );
    request(
        &mut guest,
        &mut ring,
        1,
        request_type::OUT,
        0,
        &[readable(u64::MAX - 100, 512)],
    );
    notify(&mut blk, &mut guest, 0);
    assert_eq!(status(&guest, 0), request_status::IOERR);
    assert_eq!(status(&guest, 1), request_status::IOERR);
    assert!(blk.disk.log.is_empty());
}

#[test]
fn misshapen_requests_fail_with_ioerr() {
    let (mut blk, mut guest, mut ring) = running(config());
    // A header of 8 bytes.
    put_header(&mut guest, 0, request_type::IN, 0);
    ring.add(
        &mut guest,
        &[readable(header_at(0), 8), writable(status_at(0), 1)],
    );
    // A read with device-readable data, a write with device-writable data, a flush with data.
    request(
        &mut guest,
        &mut ring,
        1,
        request_type::IN,
        0,
        &[readable(DATA, 512)],
    );
    request(
        &mut guest,
        &mut ring,
        2,
        request_type::OUT,
        0,
        &[writable(DATA, 512)],
    );
    request(
        &mut guest,
        &mut ring,
        3,
        request_type::FLUSH,
        0,
        &[writable(DATA, 512)],
    );
    notify(&mut blk, &mut guest, 0);
    for n in 0..4 {
        assert_eq!(status(&guest, n), request_status::IOERR, "request {n}");
    }
    assert!(blk.disk.log.is_empty());
}

#[test]
fn a_header_split_across_descriptors_is_understood() {
    let (mut blk, mut guest, mut ring) = running(config());
    put_header(&mut guest, 0, request_type::OUT, 3);
    guest.put(DATA, &[0x5A; 512]);
    ring.add(
        &mut guest,
        &[
            readable(header_at(0), 5),
            readable(header_at(0) + 5, 11),
            readable(DATA, 512),
            writable(status_at(0), 1),
        ],
    );
    notify(&mut blk, &mut guest, 0);
    assert_eq!(status(&guest, 0), request_status::OK);
    assert_eq!(&blk.disk.bytes[3 * 512..4 * 512], &[0x5A; 512][..]);
}

#[test]
fn backend_failures_are_ioerr() {
    let (mut blk, mut guest, mut ring) = running(config());
    blk.disk.fail = true;
    request(
        &mut guest,
        &mut ring,
        0,
        request_type::IN,
        0,
        &[writable(DATA, 512)],
    );
    request(
        &mut guest,
        &mut ring,
        1,
        request_type::OUT,
        0,
        &[readable(DATA, 512)],
    );
    request(&mut guest, &mut ring, 2, request_type::FLUSH, 0, &[]);
    notify(&mut blk, &mut guest, 0);
    for n in 0..3 {
        assert_eq!(status(&guest, n), request_status::IOERR, "request {n}");
    }
}

#[test]
fn a_read_only_disk_refuses_writes_and_serves_reads() {
    let (mut blk, mut guest, mut ring) = running(BlockConfig {
        read_only: true,
        ..config()
    });
    assert_ne!(blk.device.transport().driver_features() & feature::RO, 0);
    blk.disk.bytes[..512].fill(7);
    request(
        &mut guest,
        &mut ring,
        0,
        request_type::OUT,
        0,
        &[readable(DATA, 512)],
    );
    request(
        &mut guest,
        &mut ring,
        1,
        request_type::IN,
        0,
        &[writable(DATA, 512)],
    );
    notify(&mut blk, &mut guest, 0);
    assert_eq!(status(&guest, 0), request_status::IOERR);
    assert_eq!(status(&guest, 1), request_status::OK);
    assert_eq!(guest.bytes(DATA, 512), &[7; 512][..]);
    assert_eq!(
        blk.disk.log,
        [DiskCall::Read {
            sector: 0,
            bytes: 512
        }]
    );
}

#[test]
fn requests_made_available_before_driver_ok_are_served_at_driver_ok() {
    let mut blk = Blk {
        device: BlockDevice::new(config(), Guest::window()).unwrap(),
        disk: MemoryDisk::new(CAPACITY),
    };
    let mut guest = Guest::new();
    let mut ring = Ring::new(0, 16);
    write_register(&mut blk, &mut guest, register::STATUS, 3);
    write_register(&mut blk, &mut guest, register::DRIVER_FEATURES_SEL, 1);
    write_register(&mut blk, &mut guest, register::DRIVER_FEATURES, 1);
    write_register(&mut blk, &mut guest, register::STATUS, 11);
    setup_queue(&mut blk, &mut guest, 0, &ring);
    request(&mut guest, &mut ring, 0, request_type::FLUSH, 0, &[]);
    assert!(!notify(&mut blk, &mut guest, 0), "ignored before DRIVER_OK");
    assert_eq!(ring.used_index(&guest), 0);
    assert!(write_register(&mut blk, &mut guest, register::STATUS, 15));
    assert_eq!(ring.used_index(&guest), 1);
    assert_eq!(status(&guest, 0), request_status::OK);
}

#[test]
fn no_interrupt_while_the_driver_suppresses_it() {
    let (mut blk, mut guest, mut ring) = running(config());
    ring.set_avail_flags(&mut guest, crate::queue::AVAIL_F_NO_INTERRUPT);
    request(&mut guest, &mut ring, 0, request_type::FLUSH, 0, &[]);
    assert!(!notify(&mut blk, &mut guest, 0));
    assert_eq!(ring.used_index(&guest), 1, "served all the same");
    ring.set_avail_flags(&mut guest, 0);
    request(&mut guest, &mut ring, 1, request_type::FLUSH, 0, &[]);
    assert!(notify(&mut blk, &mut guest, 0));
}

#[test]
fn a_broken_ring_stops_the_queue_with_needs_reset_and_a_reset_recovers() {
    let (mut blk, mut guest, ring) = running(config());
    ring.set_avail_index(&mut guest, 17);
    assert!(
        notify(&mut blk, &mut guest, 0),
        "the configuration interrupt"
    );
    assert_eq!(
        read_register(&mut blk, &mut guest, register::INTERRUPT_STATUS),
        interrupt::CONFIG_CHANGE
    );
    assert_ne!(
        read_register(&mut blk, &mut guest, register::STATUS) as u8
            & crate::mmio::status::DEVICE_NEEDS_RESET,
        0
    );
    // The driver resets and starts again on zeroed rings.
    guest.ram.fill(0);
    let mut ring = Ring::new(0, 16);
    start(&mut blk, &mut guest, &[ring]);
    request(&mut guest, &mut ring, 0, request_type::FLUSH, 0, &[]);
    assert!(notify(&mut blk, &mut guest, 0));
    assert_eq!(status(&guest, 0), request_status::OK);
}

#[test]
fn many_requests_wrap_the_descriptor_table_and_both_rings() {
    let (mut blk, mut guest, mut ring) = running(config());
    for n in 0..40 {
        let sector = n % CAPACITY;
        blk.disk.bytes[sector as usize * 512] = n as u8;
        request(
            &mut guest,
            &mut ring,
            n,
            request_type::IN,
            sector,
            &[writable(DATA + 512 * n, 512)],
        );
        // Three descriptors a request: five fit in the table of 16 at once.
        if n % 5 == 4 {
            notify(&mut blk, &mut guest, 0);
        }
    }
    assert_eq!(ring.used_index(&guest), 40);
    for n in 0..40 {
        assert_eq!(status(&guest, n), request_status::OK, "request {n}");
        assert_eq!(guest.bytes(DATA + 512 * n, 1), [n as u8], "request {n}");
    }
}

#[test]
fn a_driver_refilling_the_ring_cannot_keep_the_device_busy() {
    let (mut blk, mut guest, mut ring) = running(config());
    for n in 0..8 {
        request(&mut guest, &mut ring, n, request_type::FLUSH, 0, &[]);
    }
    ring.set_avail_index(&mut guest, 0);
    let mut memory = RefillingMemory {
        inner: guest.memory(),
        index_address: ring.avail + 2,
        reads: Default::default(),
        limit: 1000,
    };
    assert_eq!(blk.device.process(&mut memory, &mut blk.disk), 16);
    assert_eq!(blk.disk.log.len(), 16);
}

#[test]
fn a_driver_that_declines_flush_gets_every_write_flushed_before_completion() {
    let mut blk = Blk {
        device: BlockDevice::new(config(), Guest::window()).unwrap(),
        disk: MemoryDisk::new(CAPACITY),
    };
    let mut guest = Guest::new();
    let mut ring = Ring::new(0, 16);
    // VERSION_1 alone: FLUSH offered, not accepted (§5.2.6.2: writes are then stable at
    // completion).
    write_register(&mut blk, &mut guest, register::STATUS, 3);
    write_register(&mut blk, &mut guest, register::DRIVER_FEATURES_SEL, 1);
    write_register(&mut blk, &mut guest, register::DRIVER_FEATURES, 1);
    write_register(&mut blk, &mut guest, register::STATUS, 11);
    setup_queue(&mut blk, &mut guest, 0, &ring);
    write_register(&mut blk, &mut guest, register::STATUS, 15);
    request(
        &mut guest,
        &mut ring,
        0,
        request_type::OUT,
        0,
        &[readable(DATA, 512)],
    );
    request(
        &mut guest,
        &mut ring,
        1,
        request_type::IN,
        0,
        &[writable(DATA, 512)],
    );
    notify(&mut blk, &mut guest, 0);
    assert_eq!(
        blk.disk.log,
        [
            DiskCall::Write {
                sector: 0,
                bytes: 512
            },
            DiskCall::Flush,
            DiskCall::Read {
                sector: 0,
                bytes: 512
            },
        ]
    );
    // With FLUSH accepted (the fixture's `start`), writes are not flushed one by one.
    let (mut blk, mut guest, mut ring) = running(config());
    request(
        &mut guest,
        &mut ring,
        0,
        request_type::OUT,
        0,
        &[readable(DATA, 512)],
    );
    notify(&mut blk, &mut guest, 0);
    assert_eq!(
        blk.disk.log,
        [DiskCall::Write {
            sector: 0,
            bytes: 512
        }]
    );
}
