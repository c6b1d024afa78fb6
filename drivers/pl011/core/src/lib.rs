//! The register model of an Arm PrimeCell UART (PL011), as a guest and Linux's amba-pl011
//! driver see it: one `device_api` MMIO access in, one answer out, transmitted bytes to a sink.
//!
//! Specification: PL011 Technical Reference Manual, Arm DDI 0183, revision r1p5; section
//! numbers below are its chapter 3 ("Programmers Model"). QEMU's `hw/char/pl011.c` is the
//! behavioural reference where the TRM leaves a choice (identification values, leniency).
//!
//! | offset | register  | access | reset  | model                                               |
//! |--------|-----------|--------|--------|-----------------------------------------------------|
//! | 0x000  | UARTDR    | RW     | -      | write: transmit; read: pop the receive FIFO (0 if empty) |
//! | 0x004  | UARTRSR/ECR | RW   | 0x0    | OE sticky; any write clears                         |
//! | 0x018  | UARTFR    | RO     | 0x90   | TXFE always, TXFF/BUSY never, RXFE/RXFF live        |
//! | 0x020  | UARTILPR  | RW     | 0x00   | stored (8 bits)                                     |
//! | 0x024  | UARTIBRD  | RW     | 0x0000 | stored (16 bits); no baud rate is simulated         |
//! | 0x028  | UARTFBRD  | RW     | 0x00   | stored (6 bits)                                     |
//! | 0x02C  | UARTLCR_H | RW     | 0x00   | stored (8 bits); changing FEN empties the receive FIFO |
//! | 0x030  | UARTCR    | RW     | 0x300  | stored (0xFF87); LBE loops transmit to receive      |
//! | 0x034  | UARTIFLS  | RW     | 0x12   | stored (6 bits); RXIFLSEL sets the receive trigger  |
//! | 0x038  | UARTIMSC  | RW     | 0x000  | stored (11 bits)                                    |
//! | 0x03C  | UARTRIS   | RO     | 0x000  | TX, RX, RT, OE (modem and FE/PE/BE never raised)    |
//! | 0x040  | UARTMIS   | RO     | 0x000  | RIS & IMSC                                          |
//! | 0x044  | UARTICR   | WO     | -      | write 1 clears; reads as 0                          |
//! | 0x048  | UARTDMACR | RW     | 0x0    | stored (3 bits); no DMA requests are ever made      |
//! | 0xFE0..0xFEC | UARTPeriphID0..3 | RO | 0x11 0x10 0x14 0x00 | QEMU's values ([`registers::ID_BYTES`]) |
//! | 0xFF0..0xFFC | UARTPCellID0..3  | RO | 0x0D 0xF0 0x05 0xB1 | the PrimeCell preamble (§3.3.16) |
//!
//! Writes to read-only registers are ignored, as the PL011 ignores them (it has no way to
//! signal an error on its APB port). Every other offset, and any width other than those
//! [`registers`] accepts, is answered [`Response::BusError`].
//!
//! Transmission is lenient, as QEMU's PL011 is: a write to UARTDR transmits whether or not
//! UARTCR.UARTEN and TXE are set. The TRM says a disabled transmitter sends nothing (§3.3.8),
//! but UARTCR resets with UARTEN clear, and guests that expect firmware to have set the UART
//! up (the test guest, Linux's earlycon) never set it; under QEMU they print, so they print
//! here. [`Pl011::transmitter_enabled`] reports what a strict model would do.
//!
//! Output is immediate from the guest's point of view: the transmit FIFO is always empty, so
//! TXRIS is set after every UARTDR write (§3.4: the transmit interrupt is asserted when the
//! FIFO is at or below its trigger level). The bytes go to a [`LineBuffer`] that hands whole
//! lines to the caller's sink. [`Pl011::interrupt_line_level`] is UARTINTR (§3.4), the OR of
//! the masked interrupts, for a server that raises a virtual interrupt from it.
//!
//! All state is plain data in this struct: a device server that restarts starts from
//! [`Pl011::new`], the reset state, and bytes not yet flushed are lost. A reset of the VM
//! (`Request::Reset`, [`Pl011::reset`]) puts the model in the same state, after handing the
//! partial line of output to the sink.
#![no_std]
#![forbid(unsafe_code)]

mod line_buffer;
mod pending;
mod receive;
pub mod registers;

pub use device_api::{Request, Response};
pub use line_buffer::{LINE_CAPACITY, LineBuffer};
pub use pending::{PENDING_CAPACITY, PendingInput};
pub use receive::RX_FIFO_DEPTH;

use receive::ReceiveFifo;
use registers::{Register, cr, fr, int, lcr_h, rsr};

/// One emulated PL011.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pl011 {
    rsr: u32,
    ilpr: u32,
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    imsc: u32,
    ris: u32,
    dmacr: u32,
    rx: ReceiveFifo,
    output: LineBuffer,
}

impl Pl011 {
    /// A PL011 in its reset state (§3.3: each register's reset value).
    pub const fn new() -> Self {
        Self {
            rsr: 0,
            ilpr: 0,
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: registers::CR_RESET,
            ifls: registers::IFLS_RESET,
            imsc: 0,
            ris: 0,
            dmacr: 0,
            rx: ReceiveFifo::new(),
            output: LineBuffer::new(),
        }
    }

    /// Answers one MMIO access; transmitted lines go to `sink`.
    pub fn handle(&mut self, request: Request, sink: &mut impl FnMut(&[u8])) -> Response {
        match request {
            Request::Read { offset, width } => match self.read(offset, width) {
                Some(value) => Response::Value(value),
                None => Response::BusError,
            },
            Request::Write {
                offset,
                width,
                value,
            } => match self.write(offset, width, value, sink) {
                Some(()) => Response::Done,
                None => Response::BusError,
            },
            Request::Line => Response::DoneLine {
                line: self.interrupt_line_level(),
            },
            Request::Reset => {
                self.reset(sink);
                Response::DoneLine {
                    line: self.interrupt_line_level(),
                }
            }
        }
    }

    /// The UART's reset (the VM's PSCI SYSTEM_RESET, through `Request::Reset`): every register
    /// back to its reset value, the receive FIFO empty, no interrupt raised, as [`Pl011::new`]
    /// makes it. A partial line of output goes to `sink` first: it was transmitted before the
    /// reset, and kept, it would start the next boot's first line.
    pub fn reset(&mut self, sink: &mut impl FnMut(&[u8])) {
        self.flush(sink);
        *self = Self::new();
    }

    /// A read of `width` bytes at `offset`; `None` is a bus error. Reading UARTDR pops the
    /// receive FIFO.
    pub fn read(&mut self, offset: u32, width: u8) -> Option<u64> {
        let value = match Register::decode(offset, width)? {
            Register::Data => self.read_data(),
            Register::ReceiveStatus => self.rsr,
            Register::Flags => self.flags(),
            Register::IrdaLowPower => self.ilpr,
            Register::IntegerBaud => self.ibrd,
            Register::FractionalBaud => self.fbrd,
            Register::LineControl => self.lcr_h,
            Register::Control => self.cr,
            Register::FifoLevelSelect => self.ifls,
            Register::InterruptMask => self.imsc,
            Register::RawInterrupts => self.ris,
            Register::MaskedInterrupts => self.ris & self.imsc,
            Register::InterruptClear => 0,
            Register::DmaControl => self.dmacr,
            Register::Identification(index) => {
                u32::from(registers::ID_BYTES.get(index).copied().unwrap_or(0))
            }
        };
        Some(u64::from(value) & width_mask(width))
    }

    /// A write of the low `width` bytes of `value` at `offset`; `None` is a bus error.
    pub fn write(
        &mut self,
        offset: u32,
        width: u8,
        value: u64,
        sink: &mut impl FnMut(&[u8]),
    ) -> Option<()> {
        let register = Register::decode(offset, width)?;
        // Every register is at most 16 bits wide, so the low 32 bits hold all of it.
        let value = (value & width_mask(width)) as u32;
        match register {
            Register::Data => self.transmit(value as u8, sink),
            Register::ReceiveStatus => self.rsr = 0,
            Register::IrdaLowPower => self.ilpr = value & 0xFF,
            Register::IntegerBaud => self.ibrd = value & 0xFFFF,
            Register::FractionalBaud => self.fbrd = value & 0x3F,
            Register::LineControl => {
                if (self.lcr_h ^ value) & lcr_h::FEN != 0 {
                    self.rx.clear();
                    self.ris &= !(int::RX | int::RT);
                }
                self.lcr_h = value & 0xFF;
            }
            Register::Control => self.cr = value & cr::WRITABLE,
            Register::FifoLevelSelect => self.ifls = value & 0x3F,
            Register::InterruptMask => self.imsc = value & int::ALL,
            Register::InterruptClear => self.ris &= !(value & int::ALL),
            Register::DmaControl => self.dmacr = value & 0x7,
            Register::Flags
            | Register::RawInterrupts
            | Register::MaskedInterrupts
            | Register::Identification(_) => {}
        }
        Some(())
    }

    /// How many received characters the receive FIFO (or, with FIFOs off, the holding
    /// register) can take now without an overrun: a server holding more input feeds it in as
    /// the guest reads, instead of overrunning the UART as a too-fast line would.
    pub fn receive_room(&self) -> usize {
        let depth = if self.fifo_enabled() {
            RX_FIFO_DEPTH
        } else {
            1
        };
        depth.saturating_sub(self.rx.len())
    }

    /// Input from outside arriving on the receive line, as one burst: each byte enters the
    /// receive FIFO (or overruns it), then the line is idle. Ignored in loopback, where the
    /// receiver listens to the transmitter only (§3.3.8, LBE).
    pub fn receive(&mut self, bytes: &[u8]) {
        if self.cr & cr::LBE != 0 {
            return;
        }
        for &byte in bytes {
            self.enqueue(byte);
        }
        self.line_idle();
    }

    /// Hands any partial line still buffered to `sink`.
    pub fn flush(&mut self, sink: &mut impl FnMut(&[u8])) {
        self.output.flush(sink);
    }

    /// Transmitted bytes not yet handed to the sink.
    pub fn pending_output(&self) -> &[u8] {
        self.output.pending()
    }

    /// UARTINTR, the combined interrupt output (§3.4): set while any unmasked interrupt is
    /// raised. The server can drive a virtual interrupt line from it.
    pub const fn interrupt_line_level(&self) -> bool {
        self.ris & self.imsc != 0
    }

    /// Whether a strict PL011 would transmit now (UARTCR.UARTEN and TXE, §3.3.8). This model
    /// transmits regardless, as QEMU's does.
    pub const fn transmitter_enabled(&self) -> bool {
        self.cr & (cr::UARTEN | cr::TXE) == cr::UARTEN | cr::TXE
    }

    const fn fifo_enabled(&self) -> bool {
        self.lcr_h & lcr_h::FEN != 0
    }

    /// UARTFR (§3.3.3): the transmitter is always idle and empty; the receive flags are live;
    /// the modem inputs (CTS, DSR, DCD, RI) read as deasserted.
    fn flags(&self) -> u32 {
        let mut flags = fr::TXFE;
        if self.rx.is_empty() {
            flags |= fr::RXFE;
        }
        if self.rx.is_full(self.fifo_enabled()) {
            flags |= fr::RXFF;
        }
        flags
    }

    fn transmit(&mut self, byte: u8, sink: &mut impl FnMut(&[u8])) {
        if self.cr & cr::LBE != 0 {
            // Loopback: the transmitter's output goes to the receiver, not to the console.
            self.enqueue(byte);
            self.line_idle();
        } else {
            self.output.push(byte, sink);
        }
        // The transmit FIFO drained at once, through its trigger level (§3.4).
        self.ris |= int::TX;
    }

    fn read_data(&mut self) -> u32 {
        let Some(entry) = self.rx.pop() else {
            return 0;
        };
        let trigger = receive::trigger_level(self.ifls, self.fifo_enabled());
        self.ris &= !receive::lowered_by_read(self.rx.len(), trigger);
        u32::from(entry)
    }

    fn enqueue(&mut self, byte: u8) {
        let arrival = self.rx.push(byte, self.fifo_enabled());
        let trigger = receive::trigger_level(self.ifls, self.fifo_enabled());
        let raised = receive::raised_by(arrival, trigger);
        if raised & int::OE != 0 {
            self.rsr |= rsr::OE;
        }
        self.ris |= raised;
    }

    /// The receive line went idle: data waiting in the FIFO times out (§3.4).
    fn line_idle(&mut self) {
        if !self.rx.is_empty() {
            self.ris |= int::RT;
        }
    }
}

impl Default for Pl011 {
    fn default() -> Self {
        Self::new()
    }
}

/// The low `width` bytes.
const fn width_mask(width: u8) -> u64 {
    match width {
        1 => 0xFF,
        2 => 0xFFFF,
        4 => 0xFFFF_FFFF,
        _ => u64::MAX,
    }
}

#[cfg(test)]
mod tests;
