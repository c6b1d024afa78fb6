//! The PL011 device server: emulates the UART a guest finds at 0x0900_0000
//! (docs/GUEST-ABI.md) and forwards what the guest transmits to the real console.
//!
//! It serves `device_api::Mmio` on the endpoint its manifest calls `pl011` (or, with one device
//! server per VM, the endpoint named after the server itself, e.g. `pl011-left`): each request
//! is one guest access to the 4 KiB register window, answered by `drv_pl011_core::Pl011`, the
//! register model of the PL011 TRM (Arm DDI 0183, r1p5, chapter 3). All the device logic is
//! there and host-tested; this file only adapts IPC to it and prints. One model serves every
//! client, so a server shared by two VMs would share its registers and its line buffer.
//!
//! Output. The model buffers transmitted bytes per line and hands over a line at its `\n` or
//! when 256 bytes are waiting; each line is printed as-is with `userlib::print!`, one
//! DebugWrite per line, with no prefix, so a guest's `guest: ...` lines appear verbatim (a
//! `\r` the guest sends before `\n` is passed through too). A partial line (a prompt without
//! a newline) stays buffered until its line ends. Bytes that are not UTF-8 print as U+FFFD.
//!
//! Restart. The supervisor restarts this server by policy (the manifest's `restart`); the
//! kernel reloads its memory from the pristine image, and the model lives in that memory, so
//! a restarted UART is a UART in its reset state: guest-visible configuration (UARTLCR_H,
//! UARTCR, UARTIMSC, baud divisors, interrupt status) reads as its reset value again, anything
//! in the receive FIFO is gone, and transmitted bytes not yet flushed (the current partial
//! line) are lost. The access that was in flight when the server died is answered
//! `Restarted` to the vmm (device_api marks no request idempotent); a guest driver that
//! programmed the UART will not notice the reset until it reads a register back. A polled
//! transmitter, which needs no configuration, carries on unaffected.
//!
//! Fault injection (test systems only): with `inject_fault_at_request = N` in its manifest
//! entry, the server prints `pl011: injected fault at request N` and touches an unmapped
//! address while serving its N-th request, counted afresh after each restart.
#![no_std]
#![no_main]

use core::fmt;
use device_api::{Mmio, Request, Response};
use drv_pl011_core::Pl011;
use userlib::println;

userlib::entry!(main);

fn main() -> ! {
    // `pl011`, or the endpoint named after this server (`pl011-left`: one device server per
    // VM, as endpoint names are global).
    let Some(endpoint) =
        userlib::caps::try_cap("pl011").or_else(|| userlib::caps::try_cap(userlib::server_name()))
    else {
        panic!("no `pl011` or `{}` capability", userlib::server_name());
    };
    let crash_at = userlib::caps::inject_fault_at_request();
    let mut uart = Pl011::new();
    let mut served = 0u32;
    defmt::info!("pl011: serving MMIO");
    ipc::serve::<Mmio>(&mut userlib::Kernel, endpoint, |_badge, request| {
        served = served.wrapping_add(1);
        if crash_at == Some(served) {
            println!(
                "{}: injected fault at request {served}",
                userlib::server_name()
            );
            userlib::crash_with_bad_access();
        }
        let response = uart.handle(request, &mut print_line);
        // UARTINTR after the access: the vmm raises or lowers INTID 33 from it.
        let line = uart.interrupt_line_level();
        let response = match response {
            Response::Value(value) => Response::ValueLine { value, line },
            Response::Done => Response::DoneLine { line },
            other => other,
        };
        if response == Response::BusError {
            let (offset, width) = match request {
                Request::Read { offset, width } | Request::Write { offset, width, .. } => {
                    (offset, width)
                }
            };
            defmt::debug!("pl011: bus error at {=u32:#x}, width {=u8}", offset, width);
        }
        response
    })
}

/// Prints one flushed line of guest output, exactly as transmitted.
fn print_line(line: &[u8]) {
    userlib::print!("{}", Lossy(line));
}

/// Bytes as text: valid UTF-8 as-is, each invalid sequence as U+FFFD.
struct Lossy<'a>(&'a [u8]);

impl fmt::Display for Lossy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{FFFD}")?;
            }
        }
        Ok(())
    }
}
