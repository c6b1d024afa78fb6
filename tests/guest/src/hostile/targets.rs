//! Where the attack's accesses go: random IPAs that are never the guest's own RAM.
//!
//! The VM's memory map (docs/GUEST-ABI.md, `layout.rs`) has RAM at 0x4000_0000 and devices
//! below it; everything else up to the top of the 39-bit IPA space is a hole, and past it the
//! VM has no IPAs at all. A store into RAM would only corrupt the guest itself, so a choice that
//! lands in RAM is moved past its end (still a hole).
//!
//! | kind | IPAs |
//! |---|---|
//! | [`Kind::Hole`] | uniform in the first 4 GiB; near the devices; just below and above RAM; the ABI's hole page; the virtio transports no device has (2..31) |
//! | [`Kind::Device`] | a page of the PL011, the GIC distributor or redistributor, or a present virtio transport |
//! | [`Kind::Top`] | the last 64 pages below 2^39, the top of the VM's IPA space |
//! | [`Kind::Beyond`] | 2^39 up to the CPU's PA size (stage 2 sees an IPA the VM does not have), and past the PA size (stage 1 answers with an address size fault, never reaching the hypervisor) |

use super::rng::Rng;
use super::window;
use crate::layout::{GICD_BASE, GICR_BASE, HOLE, PL011_BASE, RAM_BASE, RAM_SIZE, VIRTIO_BASE};

/// The end of the VM's IPA space (docs/GUEST-ABI.md: a 39-bit IPA).
pub const IPA_END: u64 = 1 << 39;
/// A page.
pub const PAGE: u64 = 4096;
/// The virtio transports the hostile manifest gives the VM: the block device, then the console.
pub const VIRTIO_PRESENT: u64 = 2;
/// The stride of the virtio transports (docs/VIRTIO.md: one page each).
pub const VIRTIO_STRIDE: u64 = 0x1000;

/// What kind of IPA a target is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Hole,
    Device,
    Top,
    Beyond,
}

impl Kind {
    /// Its index in the report's table of kinds.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The device pages, in 4 KiB pages: PL011, the distributor's 16, the redistributor's 32, the
/// present virtio transports.
fn device_page(rng: &mut Rng) -> u64 {
    match rng.below(4) {
        0 => PL011_BASE,
        1 => GICD_BASE + rng.below(16) * PAGE,
        2 => GICR_BASE + rng.below(32) * PAGE,
        _ => VIRTIO_BASE + rng.below(VIRTIO_PRESENT) * VIRTIO_STRIDE,
    }
}

/// A hole page (see the table).
fn hole_page(rng: &mut Rng) -> u64 {
    let ram_end = RAM_BASE + RAM_SIZE;
    let ipa = match rng.below(7) {
        0 => rng.below(1 << 32),
        // Between and around the devices: 0x0800_0000..0x0B00_0000.
        1 => GICD_BASE + rng.below(0x0300_0000),
        2 => RAM_BASE - PAGE * (1 + rng.below(256)),
        3 => ram_end + PAGE * rng.below(256),
        4 => HOLE + PAGE * rng.below(16),
        5 => VIRTIO_BASE + VIRTIO_STRIDE * (VIRTIO_PRESENT + rng.below(32 - VIRTIO_PRESENT)),
        _ => rng.below(IPA_END),
    };
    outside_ram(ipa)
}

/// `ipa` itself, or a hole past RAM's end if it lies in RAM. Device pages below RAM stay.
pub fn outside_ram(ipa: u64) -> u64 {
    let ram_end = RAM_BASE + RAM_SIZE;
    if (RAM_BASE..ram_end).contains(&ipa) {
        ram_end + (ipa - RAM_BASE)
    } else {
        ipa
    }
}

/// A random target page of `kind`.
pub fn page_of(rng: &mut Rng, kind: Kind) -> u64 {
    let page = match kind {
        Kind::Hole => hole_page(rng),
        Kind::Device => device_page(rng),
        Kind::Top => IPA_END - PAGE * (1 + rng.below(64)),
        Kind::Beyond => {
            let pa_end = 1u64 << window::pa_bits();
            if rng.one_in(4) || pa_end <= IPA_END {
                pa_end + rng.below((1 << 48) - pa_end)
            } else {
                IPA_END + rng.below(pa_end - IPA_END)
            }
        }
    };
    page & !(PAGE - 1)
}

/// A random kind: devices and holes most often, the top and beyond less.
pub fn kind(rng: &mut Rng) -> Kind {
    match rng.below(8) {
        0..=2 => Kind::Hole,
        3..=5 => Kind::Device,
        6 => Kind::Top,
        _ => Kind::Beyond,
    }
}
