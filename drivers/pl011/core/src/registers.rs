//! The PL011 register map: offsets, bit fields, reset values and which accesses decode.
//!
//! Offsets and fields are those of the PL011 TRM (Arm DDI 0183, r1p5), §3.2 "Summary of
//! registers" and §3.3 "Register descriptions". Decoding is pure: [`Register::decode`] turns an
//! (offset, width) pair into a register or `None`, and the device answers `None` with
//! `device_api::Response::BusError`.
//!
//! Access widths. Every register sits at a word-aligned offset and is at most 16 bits wide
//! (§3.3), and the TRM's programmer's model is in 32-bit words. Two narrower forms are in real
//! use and are accepted, always at the register's own (aligned) offset:
//!
//! - 16-bit on every register: Linux's amba-pl011 driver uses `readw`/`writew` for all
//!   registers unless the port is `UPIO_MEM32` (SBSA UARTs), which Arm's PL011 is not;
//! - 8-bit on UARTDR: the data is 8 bits (§3.3.1) and Linux's pl011 earlycon writes it with
//!   `writeb`.
//!
//! Anything else (8-byte, 8-bit on another register, an offset inside a register, an offset
//! with no register, the test registers at 0x080..0x08C) does not decode. QEMU widens every
//! access to 32 bits and answers unknown offsets with 0; a bus error is stricter and tells a
//! guest (or a test) early that it strayed.

/// UARTDR, data register (§3.3.1).
pub const DR: u32 = 0x000;
/// UARTRSR (read) / UARTECR (write), receive status and error clear (§3.3.2).
pub const RSR_ECR: u32 = 0x004;
/// UARTFR, flag register (§3.3.3).
pub const FR: u32 = 0x018;
/// UARTILPR, IrDA low-power counter (§3.3.4).
pub const ILPR: u32 = 0x020;
/// UARTIBRD, integer baud rate divisor (§3.3.5).
pub const IBRD: u32 = 0x024;
/// UARTFBRD, fractional baud rate divisor (§3.3.6).
pub const FBRD: u32 = 0x028;
/// UARTLCR_H, line control (§3.3.7).
pub const LCR_H: u32 = 0x02C;
/// UARTCR, control (§3.3.8).
pub const CR: u32 = 0x030;
/// UARTIFLS, interrupt FIFO level select (§3.3.9).
pub const IFLS: u32 = 0x034;
/// UARTIMSC, interrupt mask set/clear (§3.3.10).
pub const IMSC: u32 = 0x038;
/// UARTRIS, raw interrupt status (§3.3.11).
pub const RIS: u32 = 0x03C;
/// UARTMIS, masked interrupt status (§3.3.12).
pub const MIS: u32 = 0x040;
/// UARTICR, interrupt clear (§3.3.13).
pub const ICR: u32 = 0x044;
/// UARTDMACR, DMA control (§3.3.14).
pub const DMACR: u32 = 0x048;
/// UARTPeriphID0; PeriphID1..3 and PCellID0..3 follow one word apart up to 0xFFC (§3.3.15,
/// §3.3.16).
pub const PERIPH_ID0: u32 = 0xFE0;

/// UARTFR bits (§3.3.3).
pub mod fr {
    /// Transmit FIFO (or holding register) empty.
    pub const TXFE: u32 = 1 << 7;
    /// Receive FIFO (or holding register) full.
    pub const RXFF: u32 = 1 << 6;
    /// Transmit FIFO (or holding register) full.
    pub const TXFF: u32 = 1 << 5;
    /// Receive FIFO (or holding register) empty.
    pub const RXFE: u32 = 1 << 4;
    /// UART busy transmitting.
    pub const BUSY: u32 = 1 << 3;
}

/// UARTLCR_H bits (§3.3.7).
pub mod lcr_h {
    /// FIFOs enabled; clear means 1-byte holding registers ("character mode").
    pub const FEN: u32 = 1 << 4;
}

/// UARTCR bits (§3.3.8).
pub mod cr {
    /// UART enable.
    pub const UARTEN: u32 = 1 << 0;
    /// Loopback: the transmitter feeds the receiver.
    pub const LBE: u32 = 1 << 7;
    /// Transmit enable.
    pub const TXE: u32 = 1 << 8;
    /// Receive enable.
    pub const RXE: u32 = 1 << 9;
    /// The bits that exist: 15..7 and 2..0 (6..3 are reserved).
    pub const WRITABLE: u32 = 0xFF87;
}

/// Interrupt bits, shared by UARTIMSC, UARTRIS, UARTMIS and UARTICR (§3.3.10 - §3.3.13).
pub mod int {
    /// Overrun error.
    pub const OE: u32 = 1 << 10;
    /// Break error.
    pub const BE: u32 = 1 << 9;
    /// Parity error.
    pub const PE: u32 = 1 << 8;
    /// Framing error.
    pub const FE: u32 = 1 << 7;
    /// Receive timeout.
    pub const RT: u32 = 1 << 6;
    /// Transmit.
    pub const TX: u32 = 1 << 5;
    /// Receive.
    pub const RX: u32 = 1 << 4;
    /// All eleven bits (modem status bits 3..0 included).
    pub const ALL: u32 = 0x7FF;
}

/// UARTRSR / DR error bits (§3.3.2; in UARTDR they sit 8 bits higher).
pub mod rsr {
    /// Overrun error.
    pub const OE: u32 = 1 << 3;
}

/// Reset value of UARTFR with the FIFOs empty and no modem inputs (§3.3.3: `0b-10010---`).
pub const FR_RESET: u32 = fr::TXFE | fr::RXFE;
/// Reset value of UARTCR: TXE and RXE set, UART disabled (§3.3.8).
pub const CR_RESET: u32 = cr::TXE | cr::RXE;
/// Reset value of UARTIFLS: both trigger levels at half full (§3.3.9).
pub const IFLS_RESET: u32 = 0x12;

/// PeriphID0..3 then PCellID0..3, the bytes at 0xFE0..0xFFC. These are the values QEMU's
/// `hw/char/pl011.c` reports (`pl011_id_arm`), so a guest sees the same UART under both: part
/// number 0x011, designer 0x41 (Arm), revision 1. The r1p5 TRM's own PeriphID2 is 0x34
/// (revision 3, §3.3.15); Linux's amba bus matches the PL011 on `0x00041011` under mask
/// `0x000fffff`, which ignores the revision, so either value probes the same driver.
pub const ID_BYTES: [u8; 8] = [0x11, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1];

/// One decoded register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Register {
    /// UARTDR.
    Data,
    /// UARTRSR / UARTECR.
    ReceiveStatus,
    /// UARTFR (read-only).
    Flags,
    /// UARTILPR.
    IrdaLowPower,
    /// UARTIBRD.
    IntegerBaud,
    /// UARTFBRD.
    FractionalBaud,
    /// UARTLCR_H.
    LineControl,
    /// UARTCR.
    Control,
    /// UARTIFLS.
    FifoLevelSelect,
    /// UARTIMSC.
    InterruptMask,
    /// UARTRIS (read-only).
    RawInterrupts,
    /// UARTMIS (read-only).
    MaskedInterrupts,
    /// UARTICR (write-only).
    InterruptClear,
    /// UARTDMACR.
    DmaControl,
    /// PeriphID0..3 / PCellID0..3: index 0..8 into [`ID_BYTES`] (read-only).
    Identification(usize),
}

impl Register {
    /// The register an access of `width` bytes at `offset` reaches, or `None` (a bus error).
    pub fn decode(offset: u32, width: u8) -> Option<Self> {
        if !offset.is_multiple_of(4) {
            return None;
        }
        let register = match offset {
            DR => Self::Data,
            RSR_ECR => Self::ReceiveStatus,
            FR => Self::Flags,
            ILPR => Self::IrdaLowPower,
            IBRD => Self::IntegerBaud,
            FBRD => Self::FractionalBaud,
            LCR_H => Self::LineControl,
            CR => Self::Control,
            IFLS => Self::FifoLevelSelect,
            IMSC => Self::InterruptMask,
            RIS => Self::RawInterrupts,
            MIS => Self::MaskedInterrupts,
            ICR => Self::InterruptClear,
            DMACR => Self::DmaControl,
            PERIPH_ID0..=0xFFC => Self::Identification(((offset - PERIPH_ID0) / 4) as usize),
            _ => return None,
        };
        let width_ok = match width {
            4 | 2 => true,
            1 => register == Self::Data,
            _ => false,
        };
        width_ok.then_some(register)
    }
}
