//! The boot description checked whole before the kernel builds anything from it
//! (docs/ARCHITECTURE.md, "Boot errors"): validate first, then perform a build step that cannot
//! fail on the description.
//!
//! Two passes over the record stream, neither with a side effect. [`census`] checks the payload's
//! header, that every record decodes, the order of the kinds, the header's counts and limits;
//! its [`Census`] says how much scratch memory the second pass needs. [`check`] then checks
//! every record: each field, each index against the records it names, and what a record may
//! not share with an earlier one (a capability slot, an interrupt, a server's addresses, a
//! bound server). What is left to the build is what only the allocation can tell: whether the
//! kernel's free RAM holds it all ([`Why::OutOfMemory`]).
//!
//! The manifest compiler refuses the same things earlier, at the manifest's line
//! (manifests/src/platform.rs restates these limits); this is the check of a payload made or
//! changed by hand.

mod census;
mod error;
mod records;
#[cfg(test)]
mod tests;

pub use census::{Census, census};
pub use error::{At, BootError, Kind, Why};
pub use records::{MappedRange, RegionFacts, Scratch, ScratchLengths, ServerFacts, VmFacts, check};

use abi::layout::PAGE_SIZE;
use bootdesc::{Header, Record};
use core::ops::RangeInclusive;

/// The most servers: each runs under its own VMID, 1..=127 (VMID 0 is the kernel's).
pub const MAX_SERVERS: u16 = 127;
/// The most VMs: guests get VMIDs 128..=255 (the VMID's bit 7 marks a guest).
pub const MAX_VMS: u16 = 128;
/// The round-robin time slices the kernel runs with, in microseconds (below it the preemption
/// tick would take the CPU from every thread as soon as it runs; the compiler's own range).
pub const TIMESLICE_US: RangeInclusive<u32> = 100..=1_000_000;
/// The largest boot-info blob: the kernel gives a server one page of boot info and stores the
/// blob's length in its first four bytes.
pub const MAX_BOOTINFO: usize = PAGE_SIZE as usize - 4;
/// The first INTID a server may take: SGIs (0..=15) are for signalling between CPUs.
pub const FIRST_SERVER_INTID: u32 = 16;
/// The EL2 physical timer's INTID (PPI 10): the kernel's preemption tick.
pub const HYP_TIMER_INTID: u32 = 26;
/// The INTID of the kernel's own PL011 (QEMU virt's SPI 1): its console input.
pub const CONSOLE_UART_INTID: u32 = 33;

/// An interrupt the kernel takes for itself: a server's irq record on it would fight the kernel
/// (the kernel takes it before any server's line is looked at, and unmasking it at boot would
/// let it in before the kernel wants it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnedIrq {
    /// The GIC INTID.
    pub intid: u32,
    /// What it is, for messages.
    pub what: &'static str,
}

/// The interrupts the kernel owns.
pub const KERNEL_IRQS: [OwnedIrq; 4] = [
    OwnedIrq {
        intid: crate::vgic::MAINTENANCE_INTID,
        what: "the GIC maintenance interrupt (PPI 9)",
    },
    OwnedIrq {
        intid: HYP_TIMER_INTID,
        what: "the EL2 physical timer (PPI 10), the preemption tick",
    },
    OwnedIrq {
        intid: crate::vgic::VTIMER_INTID,
        what: "the EL1 virtual timer (PPI 11), forwarded to the running guest",
    },
    OwnedIrq {
        intid: CONSOLE_UART_INTID,
        what: "the kernel's PL011 UART (SPI 1), its console input",
    },
];

/// The kind of a record.
pub const fn kind_of(record: &Record<'_>) -> Kind {
    match record {
        Record::Header(_) => Kind::Header,
        Record::Server(_) => Kind::Server,
        Record::Endpoint(_) => Kind::Endpoint,
        Record::Notification(_) => Kind::Notification,
        Record::Region(_) => Kind::Region,
        Record::Irq(_) => Kind::Irq,
        Record::Cap(_) => Kind::Cap,
        Record::Mapping(_) => Kind::Mapping,
        Record::Vm(_) => Kind::Vm,
        Record::VmSegment(_) => Kind::VmSegment,
    }
}

/// How many records of `kind` the header announces.
pub fn announced(header: &Header<'_>, kind: Kind) -> u64 {
    match kind {
        Kind::Header => 1,
        Kind::Server => header.servers.into(),
        Kind::Endpoint => header.endpoints.into(),
        Kind::Notification => header.notifications.into(),
        Kind::Region => header.regions.into(),
        Kind::Irq => header.irqs.into(),
        Kind::Cap => header.caps.into(),
        Kind::Mapping => header.mappings.into(),
        Kind::Vm => header.vms.into(),
        Kind::VmSegment => header.vm_segments.into(),
    }
}

/// `index` as a reference to a record of `kind`, of which there are `count`.
pub fn reference(kind: Kind, index: u16, count: usize) -> Result<usize, Why> {
    let value = usize::from(index);
    if value < count {
        Ok(value)
    } else {
        Err(Why::NoSuch {
            kind,
            index: index.into(),
            count: count as u32,
        })
    }
}
