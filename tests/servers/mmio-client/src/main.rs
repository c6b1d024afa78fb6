//! Drives the pl011 device server end to end without a guest: the vmm's side of
//! `device_api::Mmio`, one register access per call on the `pl011` endpoint.
//!
//! It transmits `pl011 says hello\n` through UARTDR (the server prints the line on the
//! console), then checks UARTFR (TXFE set, TXFF and BUSY clear: output is immediate), the
//! identification registers (PL011 TRM, Arm DDI 0183, §3.3.15 - §3.3.16, with the PeriphID
//! values QEMU reports), UARTCR's reset value, that every answer carries the interrupt line's
//! level (UARTINTR: low with UARTIMSC at reset, high once TXIM is set after a transmit, low again
//! when UARTICR clears TXRIS), and that offset 0x800 (no register) and an 8-byte access are bus
//! errors. It prints one verdict line, `mmio-client: all N checks
//! passed` or `mmio-client: FAILED ...` per failure, and stops the system with status 0 or 1.
#![no_std]
#![no_main]

use device_api::{Mmio, Request, Response};
use userlib::println;

userlib::entry!(main);

/// UARTDR.
const DR: u32 = 0x000;
/// UARTFR and its bits (§3.3.3).
const FR: u32 = 0x018;
const FR_BUSY: u64 = 1 << 3;
const FR_TXFF: u64 = 1 << 5;
const FR_TXFE: u64 = 1 << 7;
/// UARTCR and its reset value, TXE | RXE (§3.3.8).
const CR: u32 = 0x030;
const CR_RESET: u64 = 0x300;
/// UARTPeriphID0; the eight ID registers follow one word apart.
const PERIPH_ID0: u32 = 0xFE0;
/// PeriphID0..3 (QEMU's `pl011_id_arm`) and PCellID0..3.
const ID_BYTES: [u64; 8] = [0x11, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1];
/// UARTIMSC and UARTICR, and their transmit bit (§3.3.10, §3.3.13).
const IMSC: u32 = 0x038;
const ICR: u32 = 0x044;
const TX_INTERRUPT: u64 = 1 << 5;
/// An offset inside the window with no register.
const HOLE: u32 = 0x800;

const GREETING: &[u8] = b"pl011 says hello\n";

/// Counts checks and failures; every failure is printed when it happens.
struct Checks {
    uart: abi::CPtr,
    run: u32,
    failed: u32,
}

impl Checks {
    fn access(&mut self, request: Request) -> Result<Response, ipc::CallError> {
        ipc::call::<Mmio>(&mut userlib::Kernel, self.uart, &request)
    }

    /// Sends `request` and compares the answer with `expected`.
    fn expect(&mut self, what: &str, request: Request, expected: Response) {
        self.run += 1;
        let answer = self.access(request);
        if answer != Ok(expected) {
            self.failed += 1;
            println!(
                "mmio-client: FAILED {what}: {request:?} answered {answer:?}, expected {expected:?}"
            );
        }
    }

    /// Reads `offset` and checks the value with `check`.
    fn expect_value(&mut self, what: &str, offset: u32, check: impl Fn(u64) -> bool) {
        self.run += 1;
        let request = Request::Read { offset, width: 4 };
        match self.access(request) {
            Ok(Response::ValueLine { value, line: false }) if check(value) => {}
            answer => {
                self.failed += 1;
                println!("mmio-client: FAILED {what}: {request:?} answered {answer:?}");
            }
        }
    }
}

fn main() -> ! {
    let mut checks = Checks {
        uart: userlib::cap("pl011"),
        run: 0,
        failed: 0,
    };
    for &byte in GREETING {
        let request = Request::Write {
            offset: DR,
            width: 4,
            value: u64::from(byte),
        };
        checks.expect("transmit", request, Response::DoneLine { line: false });
    }
    checks.expect_value("UARTFR: TXFE set, TXFF and BUSY clear", FR, |flags| {
        flags & (FR_TXFE | FR_TXFF | FR_BUSY) == FR_TXFE
    });
    for (index, &id) in ID_BYTES.iter().enumerate() {
        let offset = PERIPH_ID0 + 4 * index as u32;
        checks.expect_value("identification register", offset, |value| value == id);
    }
    checks.expect_value("UARTCR reset value", CR, |value| value == CR_RESET);
    // The interrupt line: TXRIS is set (the last transmit emptied the FIFO), so unmasking TXIM
    // raises UARTINTR and clearing TXRIS lowers it again.
    let write = |offset, value| Request::Write {
        offset,
        width: 4,
        value,
    };
    let raised = Response::DoneLine { line: true };
    let lowered = Response::DoneLine { line: false };
    checks.expect(
        "UARTIMSC.TXIM raises the line",
        write(IMSC, TX_INTERRUPT),
        raised,
    );
    checks.expect("UARTICR.TXIC lowers it", write(ICR, TX_INTERRUPT), lowered);
    checks.expect("UARTIMSC cleared", write(IMSC, 0), lowered);
    let hole = Request::Read {
        offset: HOLE,
        width: 4,
    };
    checks.expect("read with no register", hole, Response::BusError);
    let hole = Request::Write {
        offset: HOLE,
        width: 4,
        value: 0,
    };
    checks.expect("write with no register", hole, Response::BusError);
    let wide = Request::Read {
        offset: FR,
        width: 8,
    };
    checks.expect("8-byte access", wide, Response::BusError);

    if checks.failed == 0 {
        println!("mmio-client: all {} checks passed", checks.run);
        userlib::system_off(0)
    } else {
        println!(
            "mmio-client: {} of {} checks FAILED",
            checks.failed, checks.run
        );
        userlib::system_off(1)
    }
}
