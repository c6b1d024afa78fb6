//! The kernel console: the PL011 (Arm PrimeCell UART PL011 TRM, DDI 0183). QEMU's PL011 needs
//! no baud-rate setup. The kernel writes bytes; once a server asks for console input
//! (`DebugInputBind`) it also takes the receive and receive-timeout interrupts and drains the
//! receive FIFO into the kernel's input buffer (console.rs).

use crate::plat::layout::UART_BASE;

const DR: usize = 0x00;
const FR: usize = 0x18;
const FR_TXFF: u32 = 1 << 5;
const FR_RXFE: u32 = 1 << 4;
/// UARTIMSC and UARTICR (§3.3.10, §3.3.13): RXIM / RXIC (bit 4) and RTIM / RTIC (bit 6).
const IMSC: usize = 0x38;
const ICR: usize = 0x44;
const RECEIVE_INTERRUPTS: u32 = (1 << 4) | (1 << 6);

fn read(offset: usize) -> u32 {
    // SAFETY: UART_BASE + offset is a PL011 register in the Device window of the kernel's
    // identity map; register accesses have no memory-safety effect.
    unsafe { core::ptr::read_volatile((UART_BASE + offset) as *const u32) }
}

fn write_register(offset: usize, value: u32) {
    // SAFETY: as in `read`.
    unsafe { core::ptr::write_volatile((UART_BASE + offset) as *mut u32, value) }
}

/// Unmasks the receive interrupts at the UART (the GIC line is unmasked by the caller).
pub fn enable_receive() {
    write_register(IMSC, read(IMSC) | RECEIVE_INTERRUPTS);
}

/// Moves received bytes to `sink` until the receive FIFO is empty, then clears the receive
/// interrupts (the line drops until more input arrives).
pub fn drain_receive(mut sink: impl FnMut(u8)) {
    while read(FR) & FR_RXFE == 0 {
        sink(read(DR) as u8);
    }
    write_register(ICR, RECEIVE_INTERRUPTS);
}

/// Writes bytes, waiting while the transmit FIFO is full.
pub fn write(bytes: &[u8]) {
    for &byte in bytes {
        // SAFETY: UART_BASE + FR is the PL011 flag register in the Device window of the
        // kernel's identity map; reading it has no memory-safety effect.
        while unsafe { core::ptr::read_volatile((UART_BASE + FR) as *const u32) } & FR_TXFF != 0 {}
        // SAFETY: as above, for the data register.
        unsafe { core::ptr::write_volatile((UART_BASE + DR) as *mut u32, u32::from(byte)) };
    }
}
