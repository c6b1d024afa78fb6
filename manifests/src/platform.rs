//! The platform facts the compiler checks device regions against: QEMU `virt`'s kernel-owned
//! device windows and RAM (hw/arm/virt.c `base_memmap`; xtask runs QEMU with `-m 1G`).
//!
//! | window | physical range | why servers may not have it |
//! |---|---|---|
//! | the GIC distributor | `0x0800_0000..0x0801_0000` | the kernel routes and masks every interrupt |
//! | the GIC redistributors | `0x080A_0000..0x0900_0000` | per-CPU interrupt state, the kernel's |
//! | the kernel's PL011 UART | `0x0900_0000..0x0900_1000` | the kernel's console |
//! | RAM | `0x4000_0000..0x8000_0000` | the kernel allocates it; servers get RAM regions |
//!
//! Device regions must also lie below RAM: the kernel maps devices only from the low device
//! space (`0x0..0x4000_0000`: flash, GIC, UART, RTC, virtio-mmio, PCIe windows). The table
//! itself is [`abi::platform`], which the kernel reads too when it checks the same at boot.

pub use abi::platform::{
    GIC_DISTRIBUTOR, GIC_REDISTRIBUTORS, KERNEL_DEVICES, KERNEL_UART, RAM, Window, kernel_owned,
};

/// Why the kernel would refuse device region `name` over `start..end`, if it would.
pub(crate) fn refuse_device(name: &str, start: u64, end: u64) -> Option<String> {
    let region = format!("device region `{name}` ({start:#x}..{end:#x})");
    if let Some(window) = kernel_owned(start, end) {
        let Window { name: owner, .. } = window;
        return Some(format!(
            "{region} overlaps {owner} ({:#x}..{:#x}), which the kernel owns",
            window.base,
            window.end()
        ));
    }
    (end > RAM.base).then(|| {
        format!(
            "{region} lies above RAM ({:#x}..{:#x}); device regions must lie below it, in QEMU \
             virt's low device space (0x0..{:#x})",
            RAM.base,
            RAM.end(),
            RAM.base
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_qemu_virts_low_memory_map() {
        // The redistributor space runs up to the UART, and every kernel device is below RAM.
        assert_eq!(GIC_REDISTRIBUTORS.end(), KERNEL_UART.base);
        assert!(KERNEL_DEVICES.iter().all(|w| w.end() <= RAM.base));
        assert_eq!((RAM.base, RAM.end()), (1 << 30, 2 << 30));
        // Windows are half-open: each one's first and last page are owned, the pages around
        // the GIC and UART block are free (the GIC CPU interface, the ITS, the RTC).
        for window in KERNEL_DEVICES.into_iter().chain([RAM]) {
            assert_eq!(kernel_owned(window.base, window.base + 1), Some(window));
            assert_eq!(kernel_owned(window.end() - 1, window.end()), Some(window));
        }
        for free in [
            0x07FF_F000,
            0x0801_0000,
            0x0809_F000,
            0x0900_1000,
            0x3FFF_F000,
        ] {
            assert_eq!(refuse_device("d", free, free + 0x1000), None, "{free:#x}");
        }
        assert!(refuse_device("d", RAM.end(), RAM.end() + 0x1000).is_some());
    }
}
