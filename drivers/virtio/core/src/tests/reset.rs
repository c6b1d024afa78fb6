//! The VM's reset (`Request::Reset`): a device a running driver left with ready queues, a
//! raised interrupt and chains in flight reads afterwards exactly as a fresh one, takes nothing
//! more from the old rings, and starts again for the next boot's driver.

use super::*;
use crate::blk::request_type;
use crate::console::TRANSMITQ;
use crate::mmio::{CONFIG_OFFSET, Transport, WINDOW_BYTES};

/// Every value a driver can read from the window, for each queue selection (0, 1 and one that
/// does not exist) and each feature page, configuration bytes included. Selecting writes the
/// selectors, so it is done on a copy of the device.
fn readable_state<B: Bus + Clone>(bus: &B, guest: &mut Guest) -> Vec<(u32, u32, Option<u64>)> {
    let mut bus = bus.clone();
    let mut values = Vec::new();
    for select in 0..3 {
        write_register(&mut bus, guest, register::QUEUE_SEL, select);
        write_register(&mut bus, guest, register::DEVICE_FEATURES_SEL, select);
        for offset in (0..WINDOW_BYTES).step_by(4) {
            let value = match bus.access(guest, Request::Read { offset, width: 4 }) {
                Response::ValueLine { value, .. } => Some(value),
                _ => None,
            };
            values.push((select, offset, value));
        }
    }
    values
}

impl Clone for Blk {
    fn clone(&self) -> Self {
        Self {
            device: self.device.clone(),
            disk: MemoryDisk::new(0),
        }
    }
}

impl Clone for Console {
    fn clone(&self) -> Self {
        Self {
            device: self.device.clone(),
            output: Vec::new(),
        }
    }
}

fn fresh_blk() -> Blk {
    Blk {
        device: BlockDevice::new(super::blk::config(), Guest::window()).unwrap(),
        disk: MemoryDisk::new(super::blk::CAPACITY),
    }
}

/// A block device as a running Linux leaves it at `reboot -f`: one request completed with its
/// interrupt not yet acknowledged, one more made available and not notified, and selectors away
/// from 0.
fn used_blk() -> (Blk, Guest, Ring) {
    let (mut blk, mut guest, mut ring) = super::blk::running(super::blk::config());
    super::blk::request(
        &mut guest,
        &mut ring,
        0,
        request_type::OUT,
        3,
        &[readable(super::blk::DATA, 512)],
    );
    assert!(
        notify(&mut blk, &mut guest, 0),
        "the completion raises the line"
    );
    super::blk::request(
        &mut guest,
        &mut ring,
        1,
        request_type::IN,
        3,
        &[writable(super::blk::DATA, 512)],
    );
    write_register(&mut blk, &mut guest, register::QUEUE_SEL, 1);
    write_register(&mut blk, &mut guest, register::DEVICE_FEATURES_SEL, 1);
    (blk, guest, ring)
}

#[test]
fn a_reset_block_device_reads_as_a_fresh_one() {
    let (mut blk, mut guest, _) = used_blk();
    let fresh = fresh_blk();
    assert_ne!(
        readable_state(&blk, &mut guest),
        readable_state(&fresh, &mut guest),
        "the used device must differ, or the test proves nothing"
    );

    assert_eq!(
        blk.access(&mut guest, Request::Reset),
        Response::DoneLine { line: false }
    );

    assert_eq!(
        readable_state(&blk, &mut guest),
        readable_state(&fresh, &mut guest)
    );
    assert_eq!(blk.device.transport(), fresh.device.transport());
    assert!(!blk.device.interrupt_line());
    // The configuration is what the device is: still there.
    assert_eq!(
        blk.device.read(CONFIG_OFFSET, 8),
        Some(super::blk::CAPACITY)
    );
}

#[test]
fn a_reset_console_reads_as_a_fresh_one() {
    let (mut console, mut guest, _, mut transmit) = super::console::running();
    guest.put(BUFFERS, b"reboot\n");
    transmit.add(&mut guest, &[readable(BUFFERS, 7)]);
    assert!(notify(&mut console, &mut guest, u32::from(TRANSMITQ)));
    write_register(&mut console, &mut guest, register::QUEUE_SEL, 1);
    let fresh = Console {
        device: ConsoleDevice::new(Guest::window()),
        output: Vec::new(),
    };
    assert_ne!(
        readable_state(&console, &mut guest),
        readable_state(&fresh, &mut guest)
    );

    assert_eq!(
        console.access(&mut guest, Request::Reset),
        Response::DoneLine { line: false }
    );

    assert_eq!(
        readable_state(&console, &mut guest),
        readable_state(&fresh, &mut guest)
    );
    assert_eq!(console.device.transport(), fresh.device.transport());
}

#[test]
fn a_reset_is_what_a_write_of_zero_to_status_does() {
    let (mut by_request, mut guest, _) = used_blk();
    let mut by_status = by_request.clone();
    by_request.access(&mut guest, Request::Reset);
    write_register(&mut by_status, &mut guest, register::STATUS, 0);
    assert_eq!(by_request.device.transport(), by_status.device.transport());
    let (mut console, mut guest, _, _) = super::console::running();
    let mut by_status = console.clone();
    console.access(&mut guest, Request::Reset);
    write_register(&mut by_status, &mut guest, register::STATUS, 0);
    assert_eq!(console.device.transport(), by_status.device.transport());
    assert_eq!(
        *console.device.transport(),
        Transport::new(crate::console::DEVICE_ID, 0, 2, Guest::window())
    );
}

#[test]
fn after_a_reset_the_old_rings_are_left_alone() {
    let (mut blk, mut guest, ring) = used_blk();
    blk.access(&mut guest, Request::Reset);
    let disk_calls = blk.disk.log.len();
    let used_before = ring.used_index(&guest);
    // The old driver's notification, or DRIVER_OK without a new negotiation: nothing is taken.
    assert!(!notify(&mut blk, &mut guest, 0));
    write_register(&mut blk, &mut guest, register::STATUS, 15);
    let running = u32::from(status::FEATURES_OK | status::DRIVER_OK);
    assert_eq!(
        read_register(&mut blk, &mut guest, register::STATUS) & running,
        0,
        "the reset forgot the negotiated features, so neither sticks"
    );
    assert_eq!(blk.disk.log.len(), disk_calls, "no request served");
    assert_eq!(ring.used_index(&guest), used_before);

    let (mut console, mut guest, _, mut transmit) = super::console::running();
    guest.put(BUFFERS, b"old boot\n");
    transmit.add(&mut guest, &[readable(BUFFERS, 9)]);
    console.access(&mut guest, Request::Reset);
    assert!(!notify(&mut console, &mut guest, u32::from(TRANSMITQ)));
    assert!(console.output.is_empty(), "nothing sent from the old ring");
    assert_eq!(transmit.used_index(&guest), 0);
}

#[test]
fn the_next_boots_driver_starts_the_device_again() {
    let (mut blk, _, _) = used_blk();
    let mut guest = Guest::new();
    blk.access(&mut guest, Request::Reset);
    let mut ring = Ring::new(0, 8);
    start(&mut blk, &mut guest, &[ring]);
    super::blk::request(
        &mut guest,
        &mut ring,
        0,
        request_type::IN,
        3,
        &[writable(super::blk::DATA, 512)],
    );
    assert!(notify(&mut blk, &mut guest, 0));
    assert_eq!(
        ring.used_index(&guest),
        1,
        "served from the new ring's start"
    );
    assert_eq!(
        guest.bytes(super::blk::status_at(0), 1)[0],
        crate::blk::request_status::OK
    );
}
