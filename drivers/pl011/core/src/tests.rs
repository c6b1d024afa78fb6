//! Host tests of the register model: reset values, read-back, flags, identification, and the
//! accesses that must be bus errors. Interrupts, output and the VM's reset have their own files.

extern crate std;

mod interrupts;
mod output;
mod pending;
mod reset;

use super::*;
use registers::*;
use std::vec::Vec;

/// A 32-bit read that must succeed.
fn read(uart: &mut Pl011, offset: u32) -> u64 {
    match uart.handle(Request::Read { offset, width: 4 }, &mut no_output) {
        Response::Value(value) => value,
        other => panic!("read of {offset:#x} answered {other:?}"),
    }
}

/// A 32-bit write that must succeed and print nothing.
fn write(uart: &mut Pl011, offset: u32, value: u64) {
    let response = uart.handle(
        Request::Write {
            offset,
            width: 4,
            value,
        },
        &mut no_output,
    );
    assert_eq!(
        response,
        Response::Done,
        "write of {value:#x} to {offset:#x}"
    );
}

fn no_output(line: &[u8]) {
    panic!("unexpected output {line:?}");
}

/// Transmits `bytes` with 32-bit writes to UARTDR; returns the lines handed to the sink.
fn transmit(uart: &mut Pl011, bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    for &byte in bytes {
        let request = Request::Write {
            offset: DR,
            width: 4,
            value: u64::from(byte),
        };
        let response = uart.handle(request, &mut |line: &[u8]| lines.push(line.to_vec()));
        assert_eq!(response, Response::Done);
    }
    lines
}

#[test]
fn every_register_reads_its_reset_value() {
    let mut uart = Pl011::new();
    let expected = [
        (DR, 0),
        (RSR_ECR, 0),
        (FR, 0x90),
        (ILPR, 0),
        (IBRD, 0),
        (FBRD, 0),
        (LCR_H, 0),
        (CR, 0x300),
        (IFLS, 0x12),
        (IMSC, 0),
        (RIS, 0),
        (MIS, 0),
        (ICR, 0),
        (DMACR, 0),
    ];
    for (offset, value) in expected {
        assert_eq!(read(&mut uart, offset), value, "register at {offset:#x}");
    }
    assert!(!uart.interrupt_line_level());
    assert!(uart.pending_output().is_empty());
}

#[test]
fn writable_registers_read_back_within_their_fields() {
    let mut uart = Pl011::new();
    // (register, a value to write, what reads back; all-ones, masked to the TRM's fields)
    let cases = [
        (ILPR, 0xFFFF_FFFF, 0xFF),
        (IBRD, 0xFFFF_FFFF, 0xFFFF),
        (FBRD, 0xFFFF_FFFF, 0x3F),
        (LCR_H, 0xFFFF_FFFF, 0xFF),
        (CR, 0xFFFF_FFFF, 0xFF87),
        (IFLS, 0xFFFF_FFFF, 0x3F),
        (IMSC, 0xFFFF_FFFF, 0x7FF),
        (DMACR, 0xFFFF_FFFF, 0x7),
        (ILPR, 0x5A, 0x5A),
        (IBRD, 0x27, 0x27),
        (FBRD, 0x04, 0x04),
        (LCR_H, 0x70, 0x70),
        (CR, 0x301, 0x301),
        (IFLS, 0x09, 0x09),
        (IMSC, 0x50, 0x50),
        (DMACR, 0, 0),
    ];
    for (offset, value, back) in cases {
        write(&mut uart, offset, value);
        assert_eq!(read(&mut uart, offset), back, "register at {offset:#x}");
    }
}

#[test]
fn flags_show_an_always_empty_transmitter() {
    let mut uart = Pl011::new();
    assert_eq!(read(&mut uart, FR), u64::from(fr::TXFE | fr::RXFE));
    transmit(&mut uart, b"abc");
    let flags = read(&mut uart, FR) as u32;
    assert_ne!(flags & fr::TXFE, 0);
    assert_eq!(flags & (fr::TXFF | fr::BUSY), 0);
}

#[test]
fn flags_track_the_receive_fifo() {
    let mut uart = Pl011::new();
    write(&mut uart, LCR_H, u64::from(lcr_h::FEN));
    uart.receive(b"x");
    assert_eq!(read(&mut uart, FR), u64::from(fr::TXFE));
    uart.receive(&[b'y'; RX_FIFO_DEPTH - 1]);
    assert_eq!(read(&mut uart, FR), u64::from(fr::TXFE | fr::RXFF));
    assert_eq!(read(&mut uart, DR), u64::from(b'x'));
    assert_eq!(read(&mut uart, FR), u64::from(fr::TXFE));
    for _ in 1..RX_FIFO_DEPTH {
        assert_eq!(read(&mut uart, DR), u64::from(b'y'));
    }
    assert_eq!(read(&mut uart, FR), u64::from(fr::TXFE | fr::RXFE));
    // An empty FIFO reads as 0.
    assert_eq!(read(&mut uart, DR), 0);
}

#[test]
fn character_mode_holds_one_character() {
    let mut uart = Pl011::new();
    uart.receive(b"k");
    assert_eq!(read(&mut uart, FR), u64::from(fr::TXFE | fr::RXFF));
    assert_eq!(read(&mut uart, DR), u64::from(b'k'));
    assert_eq!(read(&mut uart, FR), u64::from(fr::TXFE | fr::RXFE));
}

#[test]
fn changing_fen_empties_the_receive_fifo() {
    let mut uart = Pl011::new();
    write(&mut uart, LCR_H, u64::from(lcr_h::FEN));
    uart.receive(b"abc");
    write(&mut uart, LCR_H, u64::from(lcr_h::FEN) | 0x60);
    assert_eq!(read(&mut uart, FR) as u32 & fr::RXFE, 0, "same FEN: kept");
    write(&mut uart, LCR_H, 0x60);
    assert_eq!(read(&mut uart, FR), u64::from(fr::TXFE | fr::RXFE));
}

#[test]
fn identification_registers_are_qemus() {
    let mut uart = Pl011::new();
    let expected = [0x11, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1];
    for (index, value) in expected.into_iter().enumerate() {
        let offset = PERIPH_ID0 + 4 * index as u32;
        assert_eq!(read(&mut uart, offset), value, "ID register at {offset:#x}");
        // Read-only: a write is ignored.
        write(&mut uart, offset, 0xFF);
        assert_eq!(read(&mut uart, offset), value);
    }
}

#[test]
fn read_only_registers_ignore_writes() {
    let mut uart = Pl011::new();
    for offset in [FR, RIS, MIS] {
        let before = read(&mut uart, offset);
        write(&mut uart, offset, 0xFFFF);
        assert_eq!(read(&mut uart, offset), before, "register at {offset:#x}");
    }
}

#[test]
fn offsets_with_no_register_are_bus_errors() {
    let mut uart = Pl011::new();
    let holes = [
        0x002,
        0x008,
        0x00C,
        0x010,
        0x014,
        0x01C,
        0x01A,
        0x04C,
        0x080,
        0x08C,
        0x800,
        0xFDC,
        0xFE1,
        0x1000,
        0xFFFF_FFFC,
    ];
    for offset in holes {
        let read = uart.handle(Request::Read { offset, width: 4 }, &mut no_output);
        assert_eq!(read, Response::BusError, "read at {offset:#x}");
        let write = Request::Write {
            offset,
            width: 4,
            value: 0x41,
        };
        assert_eq!(uart.handle(write, &mut no_output), Response::BusError);
    }
    assert!(uart.pending_output().is_empty());
}

#[test]
fn widths_the_registers_do_not_take_are_bus_errors() {
    let mut uart = Pl011::new();
    for (offset, width) in [
        (DR, 8),
        (DR, 3),
        (DR, 0),
        (FR, 1),
        (CR, 1),
        (FR, 8),
        (0xFE0, 1),
    ] {
        let read = uart.handle(Request::Read { offset, width }, &mut no_output);
        assert_eq!(read, Response::BusError, "{width}-byte read at {offset:#x}");
        let write = Request::Write {
            offset,
            width,
            value: 0x41,
        };
        assert_eq!(uart.handle(write, &mut no_output), Response::BusError);
    }
    assert_eq!(
        read(&mut uart, CR),
        0x300,
        "a refused write changes nothing"
    );
    assert!(uart.pending_output().is_empty());
}

#[test]
fn halfword_accesses_reach_every_register() {
    // Linux's amba-pl011 uses readw/writew unless the port is 32-bit only.
    let mut uart = Pl011::new();
    let write = Request::Write {
        offset: CR,
        width: 2,
        value: 0x1_0301,
    };
    assert_eq!(uart.handle(write, &mut no_output), Response::Done);
    let read = Request::Read {
        offset: CR,
        width: 2,
    };
    assert_eq!(uart.handle(read, &mut no_output), Response::Value(0x301));
    let read = Request::Read {
        offset: 0xFE8,
        width: 2,
    };
    assert_eq!(uart.handle(read, &mut no_output), Response::Value(0x14));
}
