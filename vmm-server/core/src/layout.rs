//! The guest-physical memory map the vmm emulates (docs/GUEST-ABI.md): where each emulated
//! device's window is. RAM is the mmu-server's business (the manifest's `ram_base` /
//! `ram_size`); the vmm only sees the IPAs the mmu-server says are not memory.
//!
//! ```text
//! IPA                         what                             who answers a fault there
//! 0x0000_0000 .. 0x0900_0000  nothing                          vmm: abort injected
//! 0x0900_0000 .. 0x0900_1000  PL011 UART                       the `pl011` device server
//! 0x0900_1000 .. 0x0A00_0000  nothing                          vmm: abort injected
//! 0x0A00_0000 .. 0x0A00_4000  32 virtio-mmio transports, 0x200  the device server of each
//!                             each (the VM's `devices`)         device the manifest gives
//! 0x0A00_4000 .. 0x4000_0000  nothing (0x2000_0000: "the hole") vmm: abort injected
//! 0x4000_0000 .. + ram_size   RAM (default base)               mmu-server: mapped
//! .. 1 << 39                  nothing                          vmm: abort injected
//! ```
//!
//! The addresses are QEMU `virt`'s (QEMU's `hw/arm/virt.c`), so a guest written for that board
//! finds its UART where it expects it.

/// An IPA window `[base, base + size)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Window {
    /// First IPA.
    pub base: u64,
    /// Length in bytes (> 0).
    pub size: u64,
}

impl Window {
    /// The first IPA past the window, or `None` when it would wrap.
    pub const fn end(&self) -> Option<u64> {
        self.base.checked_add(self.size)
    }

    /// Whether `[ipa, ipa + len)` lies entirely inside the window.
    pub const fn contains(&self, ipa: u64, len: u64) -> bool {
        match (self.end(), ipa.checked_add(len)) {
            (Some(end), Some(last)) => ipa >= self.base && last <= end,
            _ => false,
        }
    }

    /// Whether the two windows share at least one byte.
    pub const fn overlaps(&self, other: &Window) -> bool {
        let (Some(a_end), Some(b_end)) = (self.end(), other.end()) else {
            return true;
        };
        self.base < b_end && other.base < a_end
    }
}

/// The PL011 UART's register window (PL011 TRM DDI 0183: 4 KiB of registers).
pub const PL011: Window = Window {
    base: 0x0900_0000,
    size: 0x1000,
};

/// The devices every VM gets when the vmm holds a capability of that name: `(cap name,
/// window, the INTID its line drives)`. The device server behind the cap answers `device_api::Mmio` at offsets from the
/// window's base.
pub const STANDARD_DEVICES: &[(&str, Window, Option<u32>)] = &[("pl011", PL011, Some(PL011_INTID))];

/// The virtio-mmio transports a VM's `devices` take (at QEMU virt's `VIRT_MMIO` base and
/// SPIs, one page apart): the n-th device's window is [`VIRTIO_TRANSPORT_BYTES`] at
/// `VIRTIO_MMIO.base + n * VIRTIO_TRANSPORT_STRIDE`, its interrupt INTID
/// `VIRTIO_FIRST_INTID + n` (SPI 16 + n, edge-rising in the device tree). A page each gives
/// each device a stage-2 page of its own, which the kernel's page-granular MMIO routes need
/// (docs/MMIO.md).
pub const VIRTIO_MMIO: Window = Window {
    base: 0x0A00_0000,
    size: VIRTIO_TRANSPORTS as u64 * VIRTIO_TRANSPORT_STRIDE,
};

/// One transport's register window (virtio 1.2 section 4.2.2: registers up to 0x100, then the
/// device's configuration).
pub const VIRTIO_TRANSPORT_BYTES: u64 = 0x200;

/// From one transport's window to the next: a page.
pub const VIRTIO_TRANSPORT_STRIDE: u64 = 0x1000;

/// The QueueNotify register of a transport (virtio 1.2 section 4.2.2): the offset its route's
/// doorbell is set at.
pub const VIRTIO_QUEUE_NOTIFY: u64 = 0x050;

/// How many transports there are.
pub const VIRTIO_TRANSPORTS: usize = 32;

/// The first transport's INTID.
pub const VIRTIO_FIRST_INTID: u32 = 48;

/// The transport whose INTID is `intid`, if it is one's.
pub const fn virtio_transport_of(intid: u32) -> Option<usize> {
    match intid.checked_sub(VIRTIO_FIRST_INTID) {
        Some(n) if (n as usize) < VIRTIO_TRANSPORTS => Some(n as usize),
        _ => None,
    }
}

/// The window and INTID of transport `n`, if there is one.
pub const fn virtio_transport(n: usize) -> Option<(Window, u32)> {
    if n >= VIRTIO_TRANSPORTS {
        return None;
    }
    let window = Window {
        base: VIRTIO_MMIO.base + n as u64 * VIRTIO_TRANSPORT_STRIDE,
        size: VIRTIO_TRANSPORT_BYTES,
    };
    Some((window, VIRTIO_FIRST_INTID + n as u32))
}

/// The virtual GIC distributor's window (GICv3: 64 KiB), where QEMU virt puts the GIC.
pub const VGIC_DISTRIBUTOR: Window = Window {
    base: 0x0800_0000,
    size: 0x1_0000,
};

/// The one redistributor's window: RD frame and SGI/PPI frame, 64 KiB each.
pub const VGIC_REDISTRIBUTOR: Window = Window {
    base: 0x080A_0000,
    size: 0x2_0000,
};

/// Whether `ipa` lies in one of the virtual GIC's windows.
pub const fn in_vgic(ipa: u64) -> bool {
    VGIC_DISTRIBUTOR.contains(ipa, 1) || VGIC_REDISTRIBUTOR.contains(ipa, 1)
}

/// The PL011's interrupt: SPI 1, INTID 33, level-sensitive (QEMU virt's `VIRT_UART`).
pub const PL011_INTID: u32 = 33;

/// The end of the guest-physical address space (39-bit IPA, as the manifest's `IPA_END`).
pub const IPA_END: u64 = 1 << 39;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containment_is_exact_at_both_ends() {
        assert!(PL011.contains(0x0900_0000, 4));
        assert!(PL011.contains(0x0900_0FFC, 4));
        assert!(!PL011.contains(0x0900_0FFD, 4), "straddles the end");
        assert!(!PL011.contains(0x08FF_FFFF, 2), "starts before the base");
        assert!(!PL011.contains(u64::MAX, 8), "wraps");
    }

    #[test]
    fn the_transports_tile_the_virtio_window_clear_of_the_other_devices() {
        let (first, first_intid) = virtio_transport(0).unwrap();
        let (last, last_intid) = virtio_transport(VIRTIO_TRANSPORTS - 1).unwrap();
        assert_eq!((first.base, first_intid), (0x0A00_0000, 48));
        assert_eq!((last.base, last.size, last_intid), (0x0A01_F000, 0x200, 79));
        assert_eq!(
            last.base + VIRTIO_TRANSPORT_STRIDE,
            VIRTIO_MMIO.base + VIRTIO_MMIO.size
        );
        assert_eq!(virtio_transport(VIRTIO_TRANSPORTS), None);
        assert_eq!(virtio_transport_of(48), Some(0));
        assert_eq!(virtio_transport_of(79), Some(31));
        assert_eq!(virtio_transport_of(80), None);
        assert_eq!(virtio_transport_of(33), None, "the PL011's");
        for window in [PL011, VGIC_DISTRIBUTOR, VGIC_REDISTRIBUTOR] {
            assert!(!VIRTIO_MMIO.overlaps(&window));
        }
        assert!(!in_vgic(VIRTIO_MMIO.base));
    }

    #[test]
    fn overlap_is_symmetric_and_touching_is_not_overlap() {
        let next = Window {
            base: 0x0900_1000,
            size: 0x1000,
        };
        assert!(!PL011.overlaps(&next) && !next.overlaps(&PL011));
        let inside = Window {
            base: 0x0900_0800,
            size: 0x10,
        };
        assert!(PL011.overlaps(&inside) && inside.overlaps(&PL011));
        let wrapping = Window {
            base: u64::MAX,
            size: 2,
        };
        assert!(
            wrapping.overlaps(&PL011),
            "a wrapping window is refused as overlapping"
        );
    }
}
