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
//! `Restarted` to the vmm (device_api marks no access idempotent); a guest driver that
//! programmed the UART will not notice the reset until it reads a register back. A polled
//! transmitter, which needs no configuration, carries on unaffected.
//!
//! VM reset. The vmm sends `Request::Reset` when the guest asks PSCI SYSTEM_RESET, with the
//! VCPU stopped: the partial line of output is printed, the model goes back to
//! [`Pl011::new`] (registers at their reset values, receive FIFO empty) and the answer says
//! the line is low, which is what the vmm's reset vGIC believes too. Console input the server
//! holds back (below) is kept: it was typed for the VM, not for one boot of it, and enters the
//! new boot's receive FIFO from the guest's first access on, as input that arrives while the
//! guest boots does. (A server shared by two VMs, whose registers are shared, resets for both.)
//!
//! Input (when the manifest gives it `debug = ["input"]`, a notification `pl011-events` bound to
//! it, and a signal capability `vmm-events` to its vmm's bound notification): the server asks
//! the kernel for console input (`DebugInputBind`), takes the bytes the kernel buffered when it
//! signals (`DebugInputRead`), puts them in the model's receive FIFO and signals the vmm, which
//! asks for the interrupt line's level (`Request::Line`) and raises INTID 33 for the guest. A
//! partial line of output (a shell prompt) is printed when the guest's driver ends a burst of
//! output: Linux's amba-pl011 writes UARTIMSC (clearing TXIM) at the end of every tty write and
//! UARTCR at the end of every console write, so either write flushes the line buffer.

#![no_std]
#![no_main]

use abi::message::{BOUND_NOTIFICATION_LABEL, CONSOLE_INPUT_BADGE};
use abi::mmio::{MMIO_MESSAGE_WORDS, MmioAnswer, MmioMessage};
use abi::{CPtr, FaultKind, MessageInfo, REPLY_SLOT};
use core::fmt;
use device_api::fast;
use device_api::{Request, Response};
use drv_pl011_core::registers::{CR, IMSC};
use drv_pl011_core::{PendingInput, Pl011};
use userlib::{println, syscall};

userlib::entry!(main);

/// Where console input comes from.
struct Input {
    /// `debug:input`.
    console: CPtr,
}

fn main() -> ! {
    // `pl011`, or the endpoint named after this server (`pl011-left`: one device server per
    // VM, as endpoint names are global).
    let Some(endpoint) =
        userlib::caps::try_cap("pl011").or_else(|| userlib::caps::try_cap(userlib::server_name()))
    else {
        panic!("no `pl011` or `{}` capability", userlib::server_name());
    };
    let input = bind_input();
    // What the vmm knows of the interrupt line; `vmm-events` tells it more.
    let mut report = fast::LineReport::new();
    let vmm = userlib::caps::try_cap("vmm-events");
    let mut uart = Pl011::new();
    let mut pending = PendingInput::new();
    defmt::info!("pl011: serving MMIO");
    let (mut badge, mut info, mut words) = syscall::recv(endpoint, REPLY_SLOT);
    loop {
        if info.label() == BOUND_NOTIFICATION_LABEL && !info.is_error() {
            if let Some(input) = &input
                && badge & CONSOLE_INPUT_BADGE != 0
            {
                // Input past what is held back is dropped (a real UART overruns).
                userlib::console::read_input(input.console, |bytes| {
                    let _dropped = pending.push(bytes);
                });
                pending.feed(&mut uart);
                syscall::signal_if(
                    vmm,
                    report.changed_behind_its_back(uart.interrupt_line_level()),
                );
            }
            (badge, info, words) = syscall::recv(endpoint, REPLY_SLOT);
            continue;
        }
        if !info.is_error() && info.label() == FaultKind::Mmio as u64 {
            // A guest access straight from the kernel's MMIO fast path (docs/MMIO.md).
            let (label, value) = fast_access(&mut uart, &mut pending, words);
            syscall::signal_if(
                vmm,
                report.changed_behind_its_back(uart.interrupt_line_level()),
            );
            let reply = MessageInfo::new(label, 0, 1);
            (badge, info, words) =
                syscall::reply_recv(endpoint, REPLY_SLOT, reply, [value, 0, 0, 0]);
            continue;
        }
        let request = if info.is_error() {
            None
        } else {
            let mut all = [0u64; abi::message::MAX_MESSAGE_WORDS];
            for (index, word) in all.iter_mut().enumerate().take(info.length()) {
                *word = match words.get(index) {
                    Some(&register) => register,
                    None => userlib::ipc_buffer::read(index),
                };
            }
            ipc::decode::<Request>(info.label(), &all[..info.length()]).ok()
        };
        let Some(request) = request else {
            // Malformed: answered as such, and the server keeps serving.
            defmt::debug!("pl011: malformed request (label {=u64})", info.label());
            let reply = MessageInfo::new(ipc::LABEL_MALFORMED, 0, 0);
            (badge, info, words) = syscall::reply_recv(endpoint, REPLY_SLOT, reply, [0; 4]);
            continue;
        };
        let response = answer(&mut uart, &mut pending, request);
        report.told(&response);
        let Ok(encoded) = ipc::encode(&response) else {
            unreachable!("every Response fits a message (ipc::assert_fits!)");
        };
        let registers = [
            encoded.words[0],
            encoded.words[1],
            encoded.words[2],
            encoded.words[3],
        ];
        for index in 4..encoded.length {
            userlib::ipc_buffer::write(index, encoded.words[index]);
        }
        (badge, info, words) = syscall::reply_recv(endpoint, REPLY_SLOT, encoded.info(), registers);
    }
}

/// One MMIO access (or line query) through the model, with the line level after it (held-back
/// input fed in first, where the access made room).
fn answer(uart: &mut Pl011, pending: &mut PendingInput, request: Request) -> Response {
    if request == Request::Reset {
        // Answered as the model answers it (the line, low): nothing is fed in, so until the
        // guest's first access the UART reads exactly as a fresh one.
        return uart.handle(request, &mut print_line);
    }
    let response = uart.handle(request, &mut print_line);
    pending.feed(uart);
    if let Request::Write { offset, .. } = request
        && (offset == IMSC || offset == CR)
    {
        // The driver's end of a burst of output: print a partial line (a prompt) now.
        uart.flush(&mut print_line);
    }
    // UARTINTR after the access: the vmm raises or lowers INTID 33 from it.
    let line = uart.interrupt_line_level();
    match response {
        Response::Value(value) => Response::ValueLine { value, line },
        Response::Done => Response::DoneLine { line },
        Response::BusError => {
            if let Request::Read { offset, width } | Request::Write { offset, width, .. } = request
            {
                defmt::debug!("pl011: bus error at {=u32:#x}, width {=u8}", offset, width);
            }
            Response::BusError
        }
        other => other,
    }
}

/// One fast-path access: the reply label and, for a read, the value.
fn fast_access(uart: &mut Pl011, pending: &mut PendingInput, words: [u64; 4]) -> (u64, u64) {
    let mut message = [0u64; MMIO_MESSAGE_WORDS];
    message.copy_from_slice(&words[..MMIO_MESSAGE_WORDS]);
    let request = MmioMessage::from_words(message).and_then(|access| fast::request_of(&access));
    let answer = match request {
        Some(request) => fast::answer_of(answer(uart, pending, request)),
        None => MmioAnswer::BusError,
    };
    answer.reply()
}

/// Asks the kernel for console input when the manifest gives this server the means.
fn bind_input() -> Option<Input> {
    let console = userlib::caps::try_cap("debug:input")?;
    let Some(events) = userlib::caps::try_cap("pl011-events") else {
        println!("pl011: `debug:input` without a bound `pl011-events` notification: no input");
        return None;
    };
    let (info, _) = syscall::invoke(
        console,
        abi::InvocationLabel::DebugInputBind,
        [events, 0, 0, 0],
    );
    if info.is_error() {
        println!(
            "pl011: console input refused (kernel error {})",
            info.label()
        );
        return None;
    }
    Some(Input { console })
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
