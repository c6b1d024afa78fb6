//! The QEMU `virt` board, as this kernel uses it (checked against QEMU 7.2 hw/arm/virt.c).
//!
//! ```text
//! 0x0800_0000  GICv3 distributor (64 KiB)
//! 0x080A_0000  GICv3 redistributor of CPU 0 (RD_base, then SGI_base at +64 KiB)
//! 0x0900_0000  PL011 UART (SPI 1 = INTID 33)
//! 0x0A00_0000  32 virtio-mmio transports, 0x200 apart (SPIs 16..47)
//! 0x4000_0000  RAM (1 GiB: xtask runs QEMU with -m 1G)
//! 0x4010_0000  the kernel image (kernel.ld), then the boot payload in .rodata, bss, stack
//! __kernel_end free RAM: kernel objects, page tables and server frames, allocated at boot
//! 0x8000_0000  end of RAM
//! ```

/// GICv3 distributor.
pub const GICD_BASE: usize = 0x0800_0000;
/// GICv3 redistributor of CPU 0.
pub const GICR_BASE: usize = 0x080A_0000;
/// PL011 UART.
pub const UART_BASE: usize = 0x0900_0000;
/// Start of RAM.
pub const RAM_BASE: u64 = 0x4000_0000;
/// Size of RAM.
pub const RAM_SIZE: u64 = 0x4000_0000;
/// End of RAM.
pub const RAM_END: u64 = RAM_BASE + RAM_SIZE;
/// The EL2 physical timer's interrupt (PPI 10 = INTID 26), the kernel's preemption tick.
pub const HYP_TIMER_INTID: u32 = 26;
/// The EL1 virtual timer's interrupt (PPI 11 = INTID 27): the loaded guest's timer.
pub const GUEST_TIMER_INTID: u32 = 27;
/// The PL011's interrupt (SPI 1 = INTID 33): the kernel takes console input with it.
pub const UART_INTID: u32 = 33;
