//! The transport's register model: values, widths, feature negotiation, status rules, queue
//! configuration, notifications and interrupts (virtio 1.2 §4.2.2, §2.1, §3.1.1).

use super::*;
use crate::mmio::{BusError, CONFIG_OFFSET, Event, Transport, feature, interrupt};
use crate::queue::QUEUE_SIZE_MAX;

const CONFIG: [u8; 12] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
/// A feature the device offers besides VERSION_1.
const OFFERED: u64 = 1 << 9;

fn transport() -> Transport {
    Transport::new(2, OFFERED, 2, Guest::window())
}

fn read(transport: &Transport, offset: u32) -> u32 {
    transport
        .read(offset, 4, &CONFIG)
        .unwrap_or_else(|| panic!("read of {offset:#x} refused")) as u32
}

fn write(transport: &mut Transport, offset: u32, value: u32) -> Option<Event> {
    transport
        .write(offset, 4, u64::from(value))
        .unwrap_or_else(|_| panic!("write of {offset:#x} refused"))
}

fn write_features(transport: &mut Transport, features: u64) {
    write(transport, register::DRIVER_FEATURES_SEL, 0);
    write(transport, register::DRIVER_FEATURES, features as u32);
    write(transport, register::DRIVER_FEATURES_SEL, 1);
    write(
        transport,
        register::DRIVER_FEATURES,
        (features >> 32) as u32,
    );
}

/// ACKNOWLEDGE, DRIVER, the features, FEATURES_OK; returns the status read back.
fn negotiate(transport: &mut Transport, features: u64) -> u8 {
    write(transport, register::STATUS, 1);
    write(transport, register::STATUS, 3);
    write_features(transport, features);
    write(transport, register::STATUS, 3 | 8);
    read(transport, register::STATUS) as u8
}

/// Configures queue `index` at the fixture's ring `index` with `size`, then sets QueueReady.
fn configure_queue(transport: &mut Transport, index: u32, size: u32, ring: &Ring) {
    write(transport, register::QUEUE_SEL, index);
    write(transport, register::QUEUE_NUM, size);
    for (low, address) in [
        (register::QUEUE_DESC_LOW, ring.descriptors),
        (register::QUEUE_DRIVER_LOW, ring.avail),
        (register::QUEUE_DEVICE_LOW, ring.used),
    ] {
        write(transport, low, address as u32);
        write(transport, low + 4, (address >> 32) as u32);
    }
    write(transport, register::QUEUE_READY, 1);
}

/// A transport with both queues ready and DRIVER_OK set.
fn running() -> Transport {
    let mut transport = transport();
    assert_eq!(negotiate(&mut transport, feature::VERSION_1), 11);
    configure_queue(&mut transport, 0, 8, &Ring::new(0, 8));
    configure_queue(&mut transport, 1, 8, &Ring::new(1, 8));
    assert_eq!(
        write(&mut transport, register::STATUS, 15),
        Some(Event::DriverOk)
    );
    transport
}

#[test]
fn identification_registers_read_their_values() {
    let transport = transport();
    assert_eq!(read(&transport, register::MAGIC_VALUE), 0x7472_6976);
    assert_eq!(read(&transport, register::VERSION), 2);
    assert_eq!(read(&transport, register::DEVICE_ID), 2);
    assert_eq!(
        read(&transport, register::VENDOR_ID),
        crate::mmio::VENDOR_ID
    );
    assert_eq!(read(&transport, register::CONFIG_GENERATION), 0);
    assert_eq!(read(&transport, register::STATUS), 0);
    assert_eq!(read(&transport, register::INTERRUPT_STATUS), 0);
    assert_eq!(
        read(&transport, register::QUEUE_NUM_MAX),
        u32::from(QUEUE_SIZE_MAX)
    );
    assert_eq!(read(&transport, register::QUEUE_READY), 0);
}

#[test]
fn queue_registers_of_a_queue_that_does_not_exist_read_zero_and_ignore_writes() {
    let mut transport = transport();
    negotiate(&mut transport, feature::VERSION_1);
    for select in [2, 0xFFFF, 0x1_0000, u32::MAX] {
        write(&mut transport, register::QUEUE_SEL, select);
        assert_eq!(
            read(&transport, register::QUEUE_NUM_MAX),
            0,
            "queue {select}"
        );
        write(&mut transport, register::QUEUE_NUM, 8);
        write(&mut transport, register::QUEUE_READY, 1);
        assert_eq!(read(&transport, register::QUEUE_READY), 0);
    }
    // Writing QueueReady for a queue that does not exist is no error of the device's.
    assert_eq!(read(&transport, register::STATUS), 11);
}

#[test]
fn device_features_are_paged_by_the_selector() {
    let mut transport = transport();
    write(&mut transport, register::DEVICE_FEATURES_SEL, 0);
    assert_eq!(read(&transport, register::DEVICE_FEATURES), OFFERED as u32);
    write(&mut transport, register::DEVICE_FEATURES_SEL, 1);
    assert_eq!(
        read(&transport, register::DEVICE_FEATURES),
        1,
        "VERSION_1 is bit 32"
    );
    write(&mut transport, register::DEVICE_FEATURES_SEL, 2);
    assert_eq!(read(&transport, register::DEVICE_FEATURES), 0);
}

#[test]
fn registers_take_only_aligned_32_bit_accesses() {
    let mut transport = transport();
    for width in [1, 2, 8, 3, 0] {
        assert_eq!(transport.read(register::MAGIC_VALUE, width, &CONFIG), None);
        assert_eq!(
            transport.write(register::STATUS, width, 1),
            Err(BusError),
            "width {width}"
        );
    }
    assert_eq!(transport.read(register::MAGIC_VALUE + 1, 4, &CONFIG), None);
    assert_eq!(transport.write(register::STATUS + 2, 4, 1), Err(BusError));
    assert_eq!(
        read(&transport, register::STATUS),
        0,
        "no write got through"
    );
}

#[test]
fn offsets_without_a_register_and_wrong_directions_are_bus_errors() {
    let mut transport = transport();
    // Holes, the shared-memory and QueueReset registers (features not offered), and the
    // legacy GuestPageSize.
    for offset in [0x018, 0x028, 0x03c, 0x0ac, 0x0b0, 0x0c0, 0x0f8] {
        assert_eq!(transport.read(offset, 4, &CONFIG), None, "{offset:#x}");
        assert_eq!(transport.write(offset, 4, 0), Err(BusError), "{offset:#x}");
    }
    // Write-only registers do not read.
    for offset in [
        register::DEVICE_FEATURES_SEL,
        register::DRIVER_FEATURES,
        register::DRIVER_FEATURES_SEL,
        register::QUEUE_SEL,
        register::QUEUE_NUM,
        register::QUEUE_NOTIFY,
        register::INTERRUPT_ACK,
        register::QUEUE_DESC_LOW,
        register::QUEUE_DEVICE_HIGH,
    ] {
        assert_eq!(transport.read(offset, 4, &CONFIG), None, "{offset:#x}");
    }
    // Read-only registers do not write.
    for offset in [
        register::MAGIC_VALUE,
        register::VERSION,
        register::DEVICE_ID,
        register::VENDOR_ID,
        register::DEVICE_FEATURES,
        register::QUEUE_NUM_MAX,
        register::INTERRUPT_STATUS,
        register::CONFIG_GENERATION,
    ] {
        assert_eq!(transport.write(offset, 4, 0), Err(BusError), "{offset:#x}");
    }
    assert_eq!(read(&transport, register::MAGIC_VALUE), 0x7472_6976);
}

#[test]
fn configuration_space_reads_little_endian_at_its_fields_widths() {
    let transport = transport();
    let at = |offset: u32, width: u8| transport.read(CONFIG_OFFSET + offset, width, &CONFIG);
    assert_eq!(at(0, 1), Some(1));
    assert_eq!(at(3, 1), Some(4));
    assert_eq!(at(2, 2), Some(0x0403));
    assert_eq!(at(4, 4), Some(0x0807_0605));
    assert_eq!(at(0, 8), Some(0x0807_0605_0403_0201));
    assert_eq!(at(11, 1), Some(12));
    // Unaligned, past the structure, odd widths.
    assert_eq!(at(1, 2), None);
    assert_eq!(at(2, 4), None);
    assert_eq!(at(4, 8), None);
    assert_eq!(at(12, 1), None);
    assert_eq!(at(8, 8), None);
    assert_eq!(at(0, 3), None);
    // A structure larger than the window is cut at the window's end.
    let large = [0xAAu8; 0x300];
    assert_eq!(transport.read(0x1FC, 4, &large), Some(0xAAAA_AAAA));
    assert_eq!(transport.read(0x200, 4, &large), None);
    assert_eq!(transport.read(u32::MAX, 1, &large), None);
}

#[test]
fn configuration_writes_are_bus_errors() {
    let mut transport = transport();
    for width in [1, 2, 4, 8] {
        assert_eq!(transport.write(CONFIG_OFFSET, width, 0), Err(BusError));
    }
}

#[test]
fn features_ok_sticks_for_an_offered_subset_with_version_1() {
    let mut transport = transport();
    assert_eq!(negotiate(&mut transport, feature::VERSION_1 | OFFERED), 11);
    assert_eq!(transport.driver_features(), feature::VERSION_1 | OFFERED);
}

#[test]
fn features_ok_is_refused_without_version_1() {
    let mut transport = transport();
    assert_eq!(negotiate(&mut transport, OFFERED), 3);
}

#[test]
fn features_ok_is_refused_for_a_feature_not_offered() {
    let mut transport = transport();
    assert_eq!(negotiate(&mut transport, feature::VERSION_1 | 1 << 28), 3);
    // The driver may try again with a subset (§3.1.1 leaves the retry to it).
    write_features(&mut transport, feature::VERSION_1);
    write(&mut transport, register::STATUS, 11);
    assert_eq!(read(&transport, register::STATUS), 11);
}

#[test]
fn features_ok_is_refused_before_acknowledge_and_driver() {
    let mut transport = transport();
    write_features(&mut transport, feature::VERSION_1);
    write(&mut transport, register::STATUS, 8);
    assert_eq!(read(&transport, register::STATUS), 0);
    write(&mut transport, register::STATUS, 1 | 8);
    assert_eq!(read(&transport, register::STATUS), 1);
    write(&mut transport, register::STATUS, 1 | 2 | 8);
    assert_eq!(read(&transport, register::STATUS), 11);
}

#[test]
fn driver_features_are_frozen_once_features_ok_is_set() {
    let mut transport = transport();
    negotiate(&mut transport, feature::VERSION_1);
    write_features(&mut transport, feature::VERSION_1 | OFFERED | 1 << 40);
    assert_eq!(transport.driver_features(), feature::VERSION_1);
}

#[test]
fn driver_ok_sticks_only_after_features_ok() {
    let mut transport = transport();
    write(&mut transport, register::STATUS, 1 | 2);
    assert_eq!(write(&mut transport, register::STATUS, 1 | 2 | 4), None);
    assert_eq!(read(&transport, register::STATUS), 3);
    assert_eq!(negotiate(&mut transport, feature::VERSION_1), 11);
    assert_eq!(
        write(&mut transport, register::STATUS, 15),
        Some(Event::DriverOk)
    );
    // Writing it again is no new event.
    assert_eq!(write(&mut transport, register::STATUS, 15), None);
    assert_eq!(read(&transport, register::STATUS), 15);
}

#[test]
fn status_bits_are_never_cleared_except_by_reset() {
    let mut transport = running();
    write(&mut transport, register::STATUS, 1);
    assert_eq!(read(&transport, register::STATUS), 15);
    // The driver may add FAILED; it cannot set DEVICE_NEEDS_RESET or unknown bits.
    write(
        &mut transport,
        register::STATUS,
        15 | 0x40 | 0x20 | 0x10 | 0x80,
    );
    assert_eq!(read(&transport, register::STATUS), 0x8F);
    assert_eq!(
        transport.active_queue_mut(0),
        None,
        "FAILED stops the queues"
    );
}

#[test]
fn writing_zero_to_status_resets_everything_but_the_identity() {
    let mut transport = running();
    transport.set_needs_reset();
    write(&mut transport, register::DEVICE_FEATURES_SEL, 1);
    write(&mut transport, register::QUEUE_SEL, 1);
    assert!(transport.interrupt_line());
    assert_eq!(
        write(&mut transport, register::STATUS, 0),
        Some(Event::Reset)
    );
    assert_eq!(transport, Transport::new(2, OFFERED, 2, Guest::window()));
    assert_eq!(read(&transport, register::STATUS), 0);
    assert_eq!(read(&transport, register::INTERRUPT_STATUS), 0);
    assert!(!transport.interrupt_line());
    for index in 0..2 {
        write(&mut transport, register::QUEUE_SEL, index);
        assert_eq!(read(&transport, register::QUEUE_READY), 0);
    }
    assert_eq!(transport.driver_features(), 0);
}

#[test]
fn a_queue_becomes_ready_only_after_features_ok() {
    let mut transport = transport();
    write(&mut transport, register::STATUS, 3);
    configure_queue(&mut transport, 0, 8, &Ring::new(0, 8));
    assert_eq!(read(&transport, register::QUEUE_READY), 0);
    assert_eq!(
        read(&transport, register::STATUS),
        3 | 0x40,
        "DEVICE_NEEDS_RESET"
    );
    assert!(!transport.interrupt_line(), "no interrupt before DRIVER_OK");
}

#[test]
fn a_queue_of_a_bad_size_never_becomes_ready() {
    for size in [0, 3, 12, u32::from(QUEUE_SIZE_MAX) * 2, 0x1_0000, u32::MAX] {
        let mut transport = transport();
        negotiate(&mut transport, feature::VERSION_1);
        configure_queue(&mut transport, 0, size, &Ring::new(0, 8));
        assert_eq!(read(&transport, register::QUEUE_READY), 0, "size {size}");
        assert_eq!(read(&transport, register::STATUS), 11 | 0x40, "size {size}");
    }
    for size in [1, 2, u32::from(QUEUE_SIZE_MAX)] {
        let mut transport = transport();
        negotiate(&mut transport, feature::VERSION_1);
        configure_queue(&mut transport, 0, size, &Ring::new(0, 8));
        assert_eq!(read(&transport, register::QUEUE_READY), 1, "size {size}");
    }
}

#[test]
fn a_queue_with_misaligned_or_outside_areas_never_becomes_ready() {
    let good = Ring::new(0, 8);
    let end = RAM_BASE + RAM_BYTES as u64;
    let cases = [
        Ring {
            descriptors: good.descriptors + 8,
            ..good
        },
        Ring {
            avail: good.avail + 1,
            ..good
        },
        Ring {
            used: good.used + 2,
            ..good
        },
        // Unset addresses: 0 is not RAM here.
        Ring {
            descriptors: 0,
            avail: 0,
            used: 0,
            ..good
        },
        // Straddling RAM's end: 6 + 8 * 8 bytes of used ring do not fit in the last 64.
        Ring {
            used: end - 64,
            ..good
        },
        Ring {
            descriptors: end,
            ..good
        },
        Ring {
            avail: RAM_BASE - 0x1000,
            ..good
        },
        Ring {
            descriptors: u64::MAX - 15,
            ..good
        },
    ];
    for ring in cases {
        let mut transport = transport();
        negotiate(&mut transport, feature::VERSION_1);
        configure_queue(&mut transport, 0, 8, &ring);
        assert_eq!(read(&transport, register::QUEUE_READY), 0, "{ring:x?}");
        assert_ne!(read(&transport, register::STATUS) & 0x40, 0, "{ring:x?}");
    }
    // The last bytes of RAM are fine.
    let mut transport = transport();
    negotiate(&mut transport, feature::VERSION_1);
    configure_queue(
        &mut transport,
        0,
        8,
        &Ring {
            used: end - 72,
            ..good
        },
    );
    assert_eq!(read(&transport, register::QUEUE_READY), 1);
}

#[test]
fn a_ready_queue_ignores_configuration_writes() {
    let mut transport = running();
    write(&mut transport, register::QUEUE_SEL, 0);
    write(&mut transport, register::QUEUE_NUM, 4);
    write(&mut transport, register::QUEUE_DESC_LOW, 0);
    write(&mut transport, register::QUEUE_DEVICE_HIGH, 7);
    let queue = transport.queue(0).unwrap();
    assert_eq!(queue.size(), 8);
    let ring = Ring::new(0, 8);
    assert_eq!(queue.areas(), [ring.descriptors, ring.avail, ring.used]);
}

#[test]
fn queue_ready_zero_stops_a_queue_and_one_again_restarts_it_at_its_start() {
    let mut transport = running();
    let mut guest = Guest::new();
    let mut ring = Ring::new(0, 8);
    ring.add(&mut guest, &[writable(BUFFERS, 4)]);
    let mut chain = crate::Chain::new();
    assert!(transport.process_one(0, &mut guest.memory(), &mut chain, |_, _| 0));
    // Setting 1 on a ready queue changes nothing.
    write(&mut transport, register::QUEUE_SEL, 0);
    write(&mut transport, register::QUEUE_READY, 1);
    assert_eq!(transport.queue(0).unwrap().next_avail(), 1);
    write(&mut transport, register::QUEUE_READY, 0);
    assert_eq!(read(&transport, register::QUEUE_READY), 0);
    assert_eq!(write(&mut transport, register::QUEUE_NOTIFY, 0), None);
    assert!(transport.active_queue_mut(0).is_none());
    write(&mut transport, register::QUEUE_READY, 1);
    assert_eq!(read(&transport, register::QUEUE_READY), 1);
    assert_eq!(transport.queue(0).unwrap().next_avail(), 0);
}

#[test]
fn notifications_count_only_for_ready_queues_after_driver_ok() {
    let mut transport = transport();
    negotiate(&mut transport, feature::VERSION_1);
    configure_queue(&mut transport, 0, 8, &Ring::new(0, 8));
    assert_eq!(write(&mut transport, register::QUEUE_NOTIFY, 0), None);
    write(&mut transport, register::STATUS, 15);
    assert_eq!(
        write(&mut transport, register::QUEUE_NOTIFY, 0),
        Some(Event::Notify(0))
    );
    // Queue 1 exists but is not ready; 2 and beyond do not exist.
    for queue in [1, 2, 0x1_0000, u32::MAX] {
        assert_eq!(write(&mut transport, register::QUEUE_NOTIFY, queue), None);
    }
    transport.set_needs_reset();
    assert_eq!(write(&mut transport, register::QUEUE_NOTIFY, 0), None);
}

#[test]
fn the_line_follows_interrupt_status_until_acknowledged() {
    let mut transport = running();
    transport.set_needs_reset();
    assert_eq!(
        read(&transport, register::INTERRUPT_STATUS),
        interrupt::CONFIG_CHANGE
    );
    assert!(transport.interrupt_line());
    write(
        &mut transport,
        register::INTERRUPT_ACK,
        interrupt::USED_BUFFER,
    );
    assert!(
        transport.interrupt_line(),
        "only the bits written are cleared"
    );
    write(
        &mut transport,
        register::INTERRUPT_ACK,
        interrupt::CONFIG_CHANGE,
    );
    assert!(!transport.interrupt_line());
    assert_eq!(read(&transport, register::INTERRUPT_STATUS), 0);
}

#[test]
fn a_queue_refused_after_driver_ok_announces_needs_reset() {
    let mut transport = running();
    write(&mut transport, register::INTERRUPT_ACK, 3);
    let ring = Ring {
        avail: 1,
        ..Ring::new(1, 8)
    };
    write(&mut transport, register::QUEUE_SEL, 1);
    write(&mut transport, register::QUEUE_READY, 0);
    configure_queue(&mut transport, 1, 8, &ring);
    assert_eq!(read(&transport, register::QUEUE_READY), 0);
    assert_eq!(read(&transport, register::STATUS), 15 | 0x40);
    assert_eq!(
        read(&transport, register::INTERRUPT_STATUS),
        interrupt::CONFIG_CHANGE
    );
}
