//! Console output through the PL011 at `layout::PL011_BASE`.
//!
//! Under our hypervisor the UART is emulated by the pl011 device server. The console keeps to
//! two registers, with 32-bit accesses only (PL011 TRM, DDI 0183, §3.3): it waits while
//! FR.TXFF (transmit FIFO full) is set, then writes the byte to DR. No initialisation: QEMU's
//! PL011 and the emulated one transmit from reset. Besides, the benchmark writes ILPR (no
//! effect), and the device-interrupt check (`interrupts.rs`) uses the transmit interrupt:
//! IMSC.TXIM unmasks it, MIS shows it, ICR clears it (§3.3.10-§3.3.13); UARTINTR, the OR of the
//! masked interrupts, is INTID 33 at the GIC.
//!
//! Printing works with the MMU off (the UART page is Device memory either way) and from the
//! exception handler, which may also interrupt a print to touch the interrupt registers; there
//! is one CPU and those registers are independent of DR and FR, so no lock is needed.

use core::fmt;

use crate::layout::PL011_BASE;

/// Data register: a write transmits the low 8 bits.
const DR: usize = 0x00;
/// Flag register.
const FR: usize = 0x18;
/// IrDA low-power counter register: stored and otherwise without effect (the benchmark's MMIO
/// write).
const ILPR: usize = 0x20;
/// Interrupt mask set/clear register: a set bit lets that raw interrupt drive UARTINTR.
const IMSC: usize = 0x038;
/// Masked interrupt status: raw status AND mask.
const MIS: usize = 0x040;
/// Interrupt clear register: a written 1 clears that raw interrupt.
const ICR: usize = 0x044;
/// FR.TXFF: the transmit FIFO is full.
const FR_TXFF: u32 = 1 << 5;
/// The transmit interrupt's bit in IMSC, RIS, MIS and ICR (TXIM, TXRIS, TXMIS, TXIC).
pub const INT_TX: u32 = 1 << 5;

/// The PL011's register block. Construction is the only unsafe step.
pub struct Pl011 {
    base: *mut u32,
}

impl Pl011 {
    /// The register block at `base`.
    ///
    /// # Safety
    ///
    /// 1. `base` is the address of a PL011 register block (or an emulation of one) that is
    ///    mapped as Device memory, or the MMU is off.
    /// 2. Nothing else uses that block in a way that conflicts with DR/FR accesses.
    pub const unsafe fn new(base: *mut u32) -> Self {
        Self { base }
    }

    /// The board's UART.
    pub fn console() -> Self {
        // SAFETY: PL011_BASE is the UART of the VM memory map (layout.rs, GUEST-ABI.md); mmu.rs
        // maps it Device-nGnRE before the caches go on, and with the MMU off every access is
        // Device. The guest is its only user: one CPU, and the IRQ handler touches only the
        // interrupt registers, which the interrupted code touches only with IRQs masked.
        unsafe { Self::new(PL011_BASE as *mut u32) }
    }

    fn read(&self, offset: usize) -> u32 {
        // SAFETY: `offset` is one of the register offsets above, inside the 4 KiB block that
        // `new`'s caller vouched for; the access is 32-bit and aligned.
        unsafe { self.base.wrapping_byte_add(offset).read_volatile() }
    }

    fn write(&self, offset: usize, value: u32) {
        // SAFETY: as in `read`: a register of the block, an aligned 32-bit access.
        unsafe { self.base.wrapping_byte_add(offset).write_volatile(value) }
    }

    /// Reads the flag register (the benchmark's MMIO read).
    pub fn flags(&self) -> u32 {
        self.read(FR)
    }

    /// Writes the IrDA low-power counter, which has no effect on transmission (the benchmark's
    /// MMIO write).
    pub fn write_low_power_counter(&self, value: u32) {
        self.write(ILPR, value);
    }

    /// UARTMIS: the raw interrupts that are unmasked.
    pub fn masked_interrupts(&self) -> u32 {
        self.read(MIS)
    }

    /// Clears the raw interrupts of `bits` (UARTICR).
    pub fn clear_interrupts(&self, bits: u32) {
        self.write(ICR, bits);
    }

    /// Unmasks the interrupts of `bits` in UARTIMSC, keeping the others.
    pub fn unmask_interrupts(&self, bits: u32) {
        self.write(IMSC, self.read(IMSC) | bits);
    }

    /// Masks the interrupts of `bits` in UARTIMSC, keeping the others.
    pub fn mask_interrupts(&self, bits: u32) {
        self.write(IMSC, self.read(IMSC) & !bits);
    }

    /// Sends one byte, waiting while the transmit FIFO is full.
    pub fn put_byte(&self, byte: u8) {
        while self.read(FR) & FR_TXFF != 0 {
            core::hint::spin_loop();
        }
        self.write(DR, u32::from(byte));
    }
}

impl fmt::Write for Pl011 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            if byte == b'\n' {
                self.put_byte(b'\r');
            }
            self.put_byte(byte);
        }
        Ok(())
    }
}

/// Formats `args` to the console; used by [`println!`].
pub fn print(args: fmt::Arguments<'_>) {
    // The PL011 writer never returns an error.
    let _ = fmt::Write::write_fmt(&mut Pl011::console(), args);
}

/// Prints a line on the console (`\n` becomes `\r\n`).
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::uart::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// A `u64` printed as `0x` and 16 hex digits: for register values, where a fixed width reads
/// better than `{:#x}`.
#[derive(Clone, Copy)]
pub struct Hex(pub u64);

impl fmt::Display for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}

/// A dirty-log bitmap (bit *n* of word *w* = page `64w + n`) printed as the list of its pages,
/// e.g. `{0, 3, 64, 255}`.
#[derive(Clone, Copy)]
pub struct Bitmap(pub [u64; 4]);

impl fmt::Display for Bitmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        let mut first = true;
        for (word_index, &word) in (0u64..).zip(self.0.iter()) {
            for bit in (0..64).filter(|bit| word & (1 << bit) != 0) {
                let separator = if first { "" } else { ", " };
                write!(f, "{separator}{}", word_index * 64 + bit)?;
                first = false;
            }
        }
        f.write_str("}")
    }
}
