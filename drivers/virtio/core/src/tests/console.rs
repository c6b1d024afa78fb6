//! The console end to end: transmit chains to the sink, input into receive buffers (§5.3).

use super::*;
use crate::console::{RECEIVEQ, TRANSMITQ};
use crate::mmio::interrupt;

/// A running console: receiveq on ring 0, transmitq on ring 1, both of size 8.
pub fn running() -> (Console, Guest, Ring, Ring) {
    let mut console = Console {
        device: ConsoleDevice::new(Guest::window()),
        output: Vec::new(),
    };
    let mut guest = Guest::new();
    let (receive, transmit) = (Ring::new(0, 8), Ring::new(1, 8));
    start(&mut console, &mut guest, &[receive, transmit]);
    (console, guest, receive, transmit)
}

#[test]
fn the_console_is_device_3_with_two_queues_and_only_version_1() {
    let (console, _, _, _) = running();
    let transport = console.device.transport();
    assert_eq!(console.device.read(register::DEVICE_ID, 4), Some(3));
    assert_eq!(transport.device_features(), crate::mmio::feature::VERSION_1);
    assert!(transport.queue(RECEIVEQ).unwrap().is_ready());
    assert!(transport.queue(TRANSMITQ).unwrap().is_ready());
    assert!(transport.queue(2).is_none());
    assert_eq!(
        console.device.read(0x100 + 4, 4),
        Some(0),
        "max_nr_ports unused"
    );
    assert_eq!(console.device.read(0x100 + 12, 1), None);
}

#[test]
fn transmitted_chains_reach_the_sink_in_order() {
    let (mut console, mut guest, _, mut transmit) = running();
    guest.put(BUFFERS, b"hello ");
    guest.put(BUFFERS + 0x100, b"wor");
    guest.put(BUFFERS + 0x200, b"ld\n");
    let long: Vec<u8> = (0..1000u32).map(|i| b'a' + (i % 26) as u8).collect();
    guest.put(BUFFERS + 0x1000, &long);
    let first = transmit.add(&mut guest, &[readable(BUFFERS, 6)]);
    let second = transmit.add(
        &mut guest,
        &[readable(BUFFERS + 0x100, 3), readable(BUFFERS + 0x200, 3)],
    );
    let third = transmit.add(&mut guest, &[readable(BUFFERS + 0x1000, 1000)]);
    assert!(notify(&mut console, &mut guest, 1));
    let mut expected = b"hello world\n".to_vec();
    expected.extend_from_slice(&long);
    assert_eq!(console.output, expected);
    assert_eq!(transmit.used_index(&guest), 3);
    for (position, head) in [first, second, third].into_iter().enumerate() {
        assert_eq!(
            transmit.used_element(&guest, position as u16),
            (u32::from(head), 0)
        );
    }
    assert_eq!(
        acknowledge(&mut console, &mut guest),
        interrupt::USED_BUFFER
    );
}

#[test]
fn a_transmit_chain_with_writable_buffers_is_completed_unsent() {
    let (mut console, mut guest, _, mut transmit) = running();
    guest.put(BUFFERS, b"secret");
    transmit.add(
        &mut guest,
        &[readable(BUFFERS, 6), writable(BUFFERS + 0x100, 6)],
    );
    transmit.add(&mut guest, &[readable(0x10, 6)]);
    guest.put(BUFFERS + 0x200, b"ok");
    transmit.add(&mut guest, &[readable(BUFFERS + 0x200, 2)]);
    notify(&mut console, &mut guest, 1);
    assert_eq!(console.output, b"ok");
    assert_eq!(transmit.used_index(&guest), 3);
}

#[test]
fn transmit_notifications_before_driver_ok_wait_for_it() {
    let mut console = Console {
        device: ConsoleDevice::new(Guest::window()),
        output: Vec::new(),
    };
    let mut guest = Guest::new();
    let mut transmit = Ring::new(1, 8);
    write_register(&mut console, &mut guest, register::STATUS, 3);
    write_register(&mut console, &mut guest, register::DRIVER_FEATURES_SEL, 1);
    write_register(&mut console, &mut guest, register::DRIVER_FEATURES, 1);
    write_register(&mut console, &mut guest, register::STATUS, 11);
    setup_queue(&mut console, &mut guest, 1, &transmit);
    guest.put(BUFFERS, b"early");
    transmit.add(&mut guest, &[readable(BUFFERS, 5)]);
    notify(&mut console, &mut guest, 1);
    assert!(console.output.is_empty());
    write_register(&mut console, &mut guest, register::STATUS, 15);
    assert_eq!(console.output, b"early");
}

#[test]
fn input_fills_receive_buffers_one_after_another() {
    let (mut console, mut guest, mut receive, _) = running();
    let first = receive.add(&mut guest, &[writable(BUFFERS, 4)]);
    let second = receive.add(
        &mut guest,
        &[writable(BUFFERS + 0x100, 2), writable(BUFFERS + 0x200, 8)],
    );
    let delivered = console.device.push_input(&mut guest.memory(), b"abcdefghi");
    assert_eq!(delivered, 9);
    assert!(console.device.interrupt_line());
    assert_eq!(guest.bytes(BUFFERS, 4), b"abcd");
    assert_eq!(guest.bytes(BUFFERS + 0x100, 2), b"ef");
    assert_eq!(guest.bytes(BUFFERS + 0x200, 3), b"ghi");
    assert_eq!(receive.used_element(&guest, 0), (u32::from(first), 4));
    assert_eq!(receive.used_element(&guest, 1), (u32::from(second), 5));
    // No buffer left: nothing is delivered, and the caller keeps the bytes.
    assert_eq!(console.device.push_input(&mut guest.memory(), b"j"), 0);
    assert_eq!(receive.used_index(&guest), 2);
}

#[test]
fn input_beyond_the_buffers_is_left_to_the_caller() {
    let (mut console, mut guest, mut receive, _) = running();
    receive.add(&mut guest, &[writable(BUFFERS, 3)]);
    assert_eq!(console.device.push_input(&mut guest.memory(), b"abcdef"), 3);
    receive.add(&mut guest, &[writable(BUFFERS + 0x100, 16)]);
    // The driver's notification of the new buffer is the caller's cue.
    assert_eq!(
        console.device.write(
            register::QUEUE_NOTIFY,
            4,
            u64::from(RECEIVEQ),
            &mut guest.memory(),
            &mut |_: &[u8]| {}
        ),
        Ok(Some(crate::Event::Notify(RECEIVEQ)))
    );
    assert_eq!(console.device.push_input(&mut guest.memory(), b"def"), 3);
    assert_eq!(guest.bytes(BUFFERS + 0x100, 3), b"def");
}

#[test]
fn a_readable_receive_buffer_is_given_back_empty() {
    let (mut console, mut guest, mut receive, _) = running();
    let bad = receive.add(&mut guest, &[readable(BUFFERS, 4)]);
    let good = receive.add(&mut guest, &[writable(BUFFERS + 0x100, 4)]);
    assert_eq!(console.device.push_input(&mut guest.memory(), b"xy"), 2);
    assert_eq!(guest.bytes(BUFFERS, 2), [0, 0]);
    assert_eq!(receive.used_element(&guest, 0), (u32::from(bad), 0));
    assert_eq!(receive.used_element(&guest, 1), (u32::from(good), 2));
}

#[test]
fn no_input_is_delivered_before_driver_ok() {
    let mut console = ConsoleDevice::new(Guest::window());
    let mut guest = Guest::new();
    assert_eq!(console.push_input(&mut guest.memory(), b"x"), 0);
    assert!(!console.interrupt_line());
}

#[test]
fn empty_receive_buffers_cannot_hold_the_device() {
    let (mut console, mut guest, mut receive, _) = running();
    for _ in 0..8 {
        receive.add(&mut guest, &[writable(BUFFERS, 0)]);
    }
    // Every buffer taken and given back empty, then the loop ends.
    assert_eq!(console.device.push_input(&mut guest.memory(), b"x"), 0);
    assert_eq!(receive.used_index(&guest), 8);
}

#[test]
fn a_driver_refilling_the_receive_ring_cannot_keep_the_device_busy() {
    let (mut console, mut guest, mut receive, _) = running();
    // Every slot of the ring names the same empty buffer.
    for _ in 0..8 {
        receive.add(&mut guest, &[writable(BUFFERS, 0)]);
    }
    receive.set_avail_index(&mut guest, 0);
    let mut memory = RefillingMemory {
        inner: guest.memory(),
        index_address: receive.avail + 2,
        reads: Default::default(),
        limit: 1000,
    };
    assert_eq!(console.device.push_input(&mut memory, b"x"), 0);
    assert_eq!(memory.reads.get(), 8, "one pass over the ring");
}
