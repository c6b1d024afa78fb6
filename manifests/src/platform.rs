//! The one platform table the checks read: what QEMU `virt` (as xtask runs it) has and what of
//! it the kernel keeps for itself.
//!
//! | fact | value | from |
//! |---|---|---|
//! | the GIC distributor | `0x0800_0000..0x0801_0000` | hw/arm/virt.c `VIRT_GIC_DIST` |
//! | the GIC redistributors | `0x080A_0000..0x0900_0000` | `VIRT_GIC_REDIST` |
//! | the kernel's PL011 UART | `0x0900_0000..0x0900_1000` | `VIRT_UART` |
//! | RAM | `0x4000_0000..0x8000_0000` | `VIRT_MEM`, `-m 1G` (xtask/src/qemu.rs) |
//! | where the kernel loads | [`KERNEL_LOAD`] `0x4010_0000` | microkernel/kernel/kernel.ld |
//! | interrupts the kernel owns | INTIDs 25, 26, 27, 33 ([`KERNEL_IRQS`]) | kernel_core::vgic, kernel `plat::layout` |
//! | the GIC's interrupts | INTIDs 16..=[`LAST_INTID`] | virt.h `NUM_IRQS` = 256 SPIs |
//! | VMIDs | [`MAX_SERVERS`] servers (1..=127), [`MAX_VMS`] VMs (128..=255) | kernel `vspace.rs`, `boot.rs` census |
//! | a server's boot info | at most [`MAX_BOOTINFO`] bytes | kernel `loader.rs` (one page, less its length word) |
//! | a guest's device windows | the vGIC, the PL011, the virtio-mmio transports ([`GUEST_DEVICES`]) | vmm_core::layout, QEMU virt's |
//!
//! Device regions must lie below RAM, off the kernel's devices ([`refuse_device`]): the kernel
//! maps devices only from the low device space (`0x0..0x4000_0000`: flash, GIC, UART, RTC,
//! virtio-mmio, PCIe windows). The physical windows themselves are [`abi::platform`], which the
//! kernel reads too when it checks the same at boot; the rest the kernel keeps in its own
//! crates, which the manifest compiler cannot depend on, so they are restated here with where
//! they come from (and the kernel still stops the boot on them: see each constant).

use abi::layout::PAGE_SIZE;
pub use abi::platform::{
    GIC_DISTRIBUTOR, GIC_REDISTRIBUTORS, KERNEL_DEVICES, KERNEL_UART, RAM, Window, kernel_owned,
};

/// Where QEMU loads the kernel image (microkernel/kernel/kernel.ld: `. = 0x40100000`). RAM below
/// it is never allocated; everything the kernel allocates comes after its image, whose
/// read-only data holds the whole boot payload.
pub const KERNEL_LOAD: u64 = 0x4010_0000;

/// The kernel's boot stack and its guard page (kernel.ld `.stack`: 0x1000 + 0x10000 bytes), part
/// of the kernel image whatever else it holds.
pub const KERNEL_STACK: u64 = 0x1_1000;

/// An interrupt the kernel takes for itself: a server's `irqs` entry on it would either be
/// refused at boot or fight the kernel for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnedIrq {
    /// The GIC INTID.
    pub intid: u32,
    /// What it is and what the kernel does with it, for messages.
    pub what: &'static str,
}

/// The interrupts the kernel owns.
pub const KERNEL_IRQS: [OwnedIrq; 4] = [
    OwnedIrq {
        intid: kernel_core::vgic::MAINTENANCE_INTID,
        what: "the GIC maintenance interrupt (PPI 9), with which the kernel tends the guests' \
               list registers",
    },
    OwnedIrq {
        // microkernel/kernel/src/plat/qemu_virt/layout.rs `HYP_TIMER_INTID`.
        intid: 26,
        what: "the EL2 physical timer (PPI 10), the kernel's preemption tick",
    },
    OwnedIrq {
        intid: kernel_core::vgic::VTIMER_INTID,
        what: "the EL1 virtual timer (PPI 11), which the kernel forwards to the running guest",
    },
    OwnedIrq {
        // microkernel/kernel/src/plat/qemu_virt/layout.rs `UART_INTID`.
        intid: 33,
        what: "the kernel's PL011 UART (SPI 1), its console input",
    },
];

/// The first INTID a server may take: SGIs (0..=15) are for signalling between CPUs.
pub const FIRST_INTID: u32 = 16;

/// The last INTID QEMU virt's GIC has: 32 private interrupts and `NUM_IRQS` = 256 SPIs
/// (hw/arm/virt.h; virt.c creates the GIC with `num-irq` = NUM_IRQS + 32). An INTID above it
/// does not exist on this machine, so its handler would never fire.
pub const LAST_INTID: u32 = 32 + 256 - 1;

/// The most servers a system may have: each runs under its own VMID, 1..=127 (VMID 0 is the
/// kernel's; the kernel's census, microkernel/kernel/src/boot.rs, stops the boot beyond).
pub const MAX_SERVERS: usize = 127;

/// The most VMs a system may have: guests get VMIDs 128..=255 (`vspace::FIRST_GUEST_VMID`, the
/// VMID's bit 7 marks a guest; boot.rs's census stops the boot beyond).
pub const MAX_VMS: usize = 128;

/// The largest boot-info blob: the kernel gives a server one page of boot info and stores the
/// blob's length in its first four bytes (microkernel/kernel/src/loader.rs `load` stops the boot
/// beyond).
pub const MAX_BOOTINFO: usize = PAGE_SIZE as usize - 4;

/// The guest-physical windows every VM's devices take: the vGIC (whose list registers the kernel
/// drives and whose distributor and redistributor the vmm emulates) and the PL011 the vmm
/// routes to its device server, at QEMU virt's addresses (vmm_core::layout; a Linux VM's device
/// tree says the same). Guest RAM over one of them would hide the device: the guest's accesses
/// would reach RAM, and, for the PL011, the guest would print nothing at all.
pub const GUEST_DEVICES: [Window; 3] = [
    Window {
        name: "the guest's GIC distributor",
        base: crate::fdt::GUEST_GIC_DISTRIBUTOR.0,
        size: crate::fdt::GUEST_GIC_DISTRIBUTOR.1,
    },
    Window {
        name: "the guest's GIC redistributor",
        base: crate::fdt::GUEST_GIC_REDISTRIBUTOR.0,
        size: crate::fdt::GUEST_GIC_REDISTRIBUTOR.1,
    },
    Window {
        name: "the guest's PL011 UART",
        base: 0x0900_0000,
        size: crate::fdt::PL011_SIZE,
    },
];

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

/// Why a server may not take interrupt `intid`, if it may not.
pub(crate) fn refuse_irq(intid: i64) -> Option<String> {
    if let Some(owned) = KERNEL_IRQS
        .iter()
        .find(|owned| i64::from(owned.intid) == intid)
    {
        return Some(format!(
            "intid {intid} is {}; the kernel owns it, so no server may take it",
            owned.what
        ));
    }
    if !(i64::from(FIRST_INTID)..=i64::from(LAST_INTID)).contains(&intid) {
        return Some(format!(
            "intid {intid} is not an interrupt a server can take: QEMU virt's GIC has PPIs \
             {FIRST_INTID}..=31 and SPIs 32..={LAST_INTID} (0..=15 are SGIs)"
        ));
    }
    None
}

/// The first guest device window `start..end` (a VM's RAM) covers: the vGIC and PL011
/// ([`GUEST_DEVICES`]), then the virtio-mmio transports of the VM's `devices` devices.
pub(crate) fn guest_device_under(start: u64, end: u64, devices: usize) -> Option<Window> {
    guest_windows(devices).find(|window| window.overlaps(start, end))
}

/// A VM's device windows: [`GUEST_DEVICES`], then its `devices` virtio-mmio transports.
fn guest_windows(devices: usize) -> impl Iterator<Item = Window> + Clone {
    let transports = (0..devices).map(|n| {
        let (base, _) = crate::devices::transport(n);
        Window {
            name: "a virtio-mmio transport of its `devices`",
            base,
            size: crate::devices::TRANSPORT_STRIDE,
        }
    });
    GUEST_DEVICES.into_iter().chain(transports)
}

/// The guest-physical span from the first to the end of the last device window of a VM with
/// `devices` virtio-mmio devices.
pub(crate) fn guest_device_span(devices: usize) -> (u64, u64) {
    let windows = guest_windows(devices);
    let start = windows.clone().map(|w| w.base).min().unwrap_or(0);
    let end = windows.map(|w| w.end()).max().unwrap_or(0);
    (start, end)
}

/// The page-table pages the kernel sets aside for a guest VSpace of `ram_size` bytes besides its
/// root (microkernel/kernel/src/guest.rs `tables_for`).
pub(crate) fn guest_tables(ram_size: u64) -> u64 {
    ram_size.div_ceil(512 * PAGE_SIZE) + ram_size.div_ceil(1 << 30) + 1 + 8
}

/// The pages the kernel allocates for every server whatever its image: the IPC buffer, the
/// boot-info page, and the stage-2 root with at least one level-2 and one level-3 table under it
/// (microkernel/kernel/src/loader.rs `load`).
pub(crate) const SERVER_FIXED_PAGES: u64 = 5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_qemu_virts_low_memory_map() {
        // The redistributor space runs up to the UART, and every kernel device is below RAM.
        assert_eq!(GIC_REDISTRIBUTORS.end(), KERNEL_UART.base);
        assert!(KERNEL_DEVICES.iter().all(|w| w.end() <= RAM.base));
        assert_eq!((RAM.base, RAM.end()), (1 << 30, 2 << 30));
        assert!(RAM.base < KERNEL_LOAD && KERNEL_LOAD < RAM.end());
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

    #[test]
    fn the_kernels_interrupts_and_the_gics_bounds_are_refused() {
        for intid in [25, 26, 27, 33] {
            let why = refuse_irq(intid).unwrap_or_default();
            assert!(why.contains("the kernel owns it"), "{intid}: {why}");
        }
        for intid in [
            i64::MIN,
            -1,
            0,
            15,
            288,
            1019,
            1023,
            i64::from(u32::MAX) + 27,
        ] {
            let why = refuse_irq(intid).unwrap_or_default();
            assert!(why.contains("is not an interrupt"), "{intid}: {why}");
        }
        for intid in [16, 24, 28, 30, 31, 32, 34, 48, 287] {
            assert_eq!(refuse_irq(intid), None, "{intid}");
        }
    }

    #[test]
    fn guest_ram_may_not_hide_a_device() {
        let pl011 = GUEST_DEVICES[2];
        assert_eq!(
            crate::linux::GUEST_PL011,
            crate::GuestDevice::Pl011 {
                base: pl011.base,
                spi: 1
            }
        );
        assert_eq!(guest_device_under(0x0900_0000, 0x0920_0000, 0), Some(pl011));
        assert_eq!(
            guest_device_under(0, 0x4000_0000, 0).map(|w| w.name),
            Some("the guest's GIC distributor")
        );
        // The transports count only when the VM has devices.
        assert_eq!(guest_device_under(0x0A00_0000, 0x0A20_0000, 0), None);
        assert!(guest_device_under(0x0A00_0000, 0x0A20_0000, 1).is_some());
        assert_eq!(guest_device_under(0x4000_0000, 0x8000_0000, 32), None);
        assert_eq!(guest_device_span(0), (0x0800_0000, 0x0900_1000));
        let (_, end) = guest_device_span(2);
        assert_eq!(end, crate::TRANSPORT_BASE + 2 * crate::TRANSPORT_STRIDE);
    }

    #[test]
    fn guest_tables_match_the_kernels_count() {
        // 64 MiB: 32 level-3 tables, one level-2 table and its spare, 8 more.
        assert_eq!(guest_tables(0x400_0000), 32 + 2 + 8);
        assert_eq!(guest_tables(0x4000_0000), 512 + 2 + 8);
    }
}
