//! The kernel console: transmit-only use of the PL011 (Arm PrimeCell UART PL011 TRM, DDI 0183).
//! QEMU's PL011 needs no baud-rate setup; the kernel only writes bytes.

use crate::plat::layout::UART_BASE;

const DR: usize = 0x00;
const FR: usize = 0x18;
const FR_TXFF: u32 = 1 << 5;

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
