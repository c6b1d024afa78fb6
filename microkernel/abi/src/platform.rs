//! The physical memory map of the one platform: QEMU's `virt` board (GICv3, one CPU) as this
//! system uses it. The manifest compiler (`manifest::platform`) refuses device regions over the
//! windows the kernel owns, and the kernel refuses them again at boot: both read this table.
//!
//! Every address is QEMU's `base_memmap` in hw/arm/virt.c (checked against QEMU 7.2):
//!
//! ```text
//! [VIRT_GIC_DIST]   = { 0x08000000, 0x00010000 }   GICv3 distributor
//! [VIRT_GIC_REDIST] = { 0x080A0000, 0x00F60000 }   GICv3 redistributors (up to 123 CPUs)
//! [VIRT_UART]       = { 0x09000000, 0x00001000 }   PL011, the kernel's console
//! [VIRT_RTC]        = { 0x09010000, 0x00001000 }   PL031 (SPI 2 = INTID 34): grantable
//! [VIRT_MEM]        = { GiB, LEGACY_RAMLIMIT_BYTES }  RAM from 1 GiB, populated to `-m`
//! ```
//!
//! Devices live below RAM ("low memory map"); xtask runs QEMU with `-m 1G`, so RAM is
//! 0x4000_0000..0x8000_0000. The kernel's own copy of these addresses
//! (`kernel::plat::layout`) is checked against this table at compile time.

/// A named window of physical addresses, `base..base + size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// How error messages name it ("the GIC distributor").
    pub name: &'static str,
    /// The first byte.
    pub base: u64,
    /// Its length in bytes.
    pub size: u64,
}

impl Window {
    /// The first byte past the window.
    pub const fn end(&self) -> u64 {
        self.base + self.size
    }

    /// Whether `start..end` shares a byte with the window.
    pub const fn overlaps(&self, start: u64, end: u64) -> bool {
        start < self.end() && self.base < end
    }
}

/// The GICv3 distributor: the kernel routes, enables and masks every interrupt through it.
pub const GIC_DISTRIBUTOR: Window = Window {
    name: "the GIC distributor",
    base: 0x0800_0000,
    size: 0x1_0000,
};

/// The GICv3 redistributor space, to its end at the UART (QEMU reserves it for 123 CPUs; CPU 0's
/// RD_base and SGI_base frames are its first 128 KiB).
pub const GIC_REDISTRIBUTORS: Window = Window {
    name: "the GIC redistributors",
    base: 0x080A_0000,
    size: 0x00F6_0000,
};

/// The PL011 UART the kernel prints its console on.
pub const KERNEL_UART: Window = Window {
    name: "the kernel's PL011 UART",
    base: 0x0900_0000,
    size: 0x1000,
};

/// The devices the kernel drives itself; no server may map them.
pub const KERNEL_DEVICES: [Window; 3] = [GIC_DISTRIBUTOR, GIC_REDISTRIBUTORS, KERNEL_UART];

/// RAM: the kernel image, the boot payload, then everything the kernel allocates (its objects,
/// page tables, server images, RAM regions). Servers get RAM only through RAM regions.
pub const RAM: Window = Window {
    name: "RAM",
    base: 0x4000_0000,
    size: 0x4000_0000,
};

/// The kernel-owned device window, or RAM, that `start..end` overlaps, if any. A device region
/// must overlap none of them and end at or below `RAM.base`: the kernel maps devices only from
/// the low device space below RAM.
pub fn kernel_owned(start: u64, end: u64) -> Option<Window> {
    KERNEL_DEVICES
        .into_iter()
        .chain([RAM])
        .find(|window| window.overlaps(start, end))
}
