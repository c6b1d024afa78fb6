//! Why a boot description was refused: which record, and what about it was wrong.
//!
//! The kernel prints a refusal as one line, `kernel: boot error: <record> <n>: <what>`
//! ([`BootError`]'s `Display`), and stops the machine with its boot-error status.

use super::{MAX_BOOTINFO, TIMESLICE_US};
use crate::elf::ElfError;
use crate::guest_load::LoadError;
use crate::stage2::MapError;
use abi::layout::{ADDRESS_SPACE_END, HEAP_BASE, HEAP_END, REGION_WINDOW_BASE, STACK_LIMIT};
use abi::platform::{RAM, Window};
use bootdesc::PayloadError;
use core::fmt;

/// The kinds of record, in the order the stream must give them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Header,
    Server,
    Endpoint,
    Notification,
    Region,
    Irq,
    Cap,
    Mapping,
    Vm,
    VmSegment,
}

impl Kind {
    /// Every kind, in stream order.
    pub const ALL: [Kind; 10] = [
        Kind::Header,
        Kind::Server,
        Kind::Endpoint,
        Kind::Notification,
        Kind::Region,
        Kind::Irq,
        Kind::Cap,
        Kind::Mapping,
        Kind::Vm,
        Kind::VmSegment,
    ];

    /// How messages name one record of the kind.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Header => "header",
            Kind::Server => "server",
            Kind::Endpoint => "endpoint",
            Kind::Notification => "notification",
            Kind::Region => "region",
            Kind::Irq => "irq",
            Kind::Cap => "cap",
            Kind::Mapping => "mapping",
            Kind::Vm => "vm",
            Kind::VmSegment => "vm segment",
        }
    }
}

/// The record a refusal is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// The payload's fixed header, before any record.
    Payload,
    /// The record at this position of the stream (0 is the header's), when the stream itself
    /// is wrong (it does not decode, or a record is out of place).
    Record(u32),
    /// The `index`-th record of its kind (counted from 0 among records of that kind, as the
    /// indices inside records count).
    Kind { kind: Kind, index: u32 },
}

impl At {
    /// The description's header record.
    pub const HEADER: At = At::Kind {
        kind: Kind::Header,
        index: 0,
    };

    /// Record `index` of `kind`.
    pub const fn of(kind: Kind, index: u32) -> At {
        At::Kind { kind, index }
    }
}

/// What was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// There is no payload at all (a kernel built by plain `cargo build`).
    NoPayload,
    /// The payload's fixed header is wrong.
    Payload(PayloadError),
    /// The record does not decode.
    Undecodable,
    /// The description does not start with a header (`None`: it is empty).
    NotAHeader { found: Option<Kind> },
    /// A second header.
    SecondHeader,
    /// A record of `kind` after the records of a later kind.
    OutOfOrder { kind: Kind, after: Kind },
    /// The header's format version is not this kernel's.
    Version { found: u16 },
    /// The header counts `header` records of `kind`; the stream has `found`.
    Count { kind: Kind, header: u64, found: u64 },
    /// The system has no server.
    NoServers,
    /// Only `limit` records of this kind get a VMID (servers 1..=127, guests 128..=255).
    TooManyForVmids { limit: u32 },
    /// The round-robin time slice is outside [`TIMESLICE_US`].
    Timeslice { us: u32 },
    /// An index names record `index` of `kind`, of which there are `count`.
    NoSuch { kind: Kind, index: u32, count: u32 },
    /// An image reference points outside the payload.
    ImageOutsidePayload { offset: u32, len: u32 },
    /// The server's ELF image is refused.
    BadImage(ElfError),
    /// A priority outside 1..=254.
    Priority(u8),
    /// A stack size that is zero, not a page multiple, or larger than the stack window.
    Stack(u32),
    /// A heap size that is not a page multiple or larger than the heap window.
    Heap(u32),
    /// A CNode with no slot beyond the fixed ones.
    CnodeSlots(u16),
    /// A boot-info blob larger than its page holds.
    BootInfo { bytes: usize },
    /// A kernel-made fault in a system that is not a test system.
    InjectionOutsideTest,
    /// A kernel-made fault at occurrence 0, which never comes.
    InjectionCount,
    /// The notification's server is already bound to another notification.
    AlreadyBound { server: u16, notification: u16 },
    /// A region size that is zero or not a page multiple.
    RegionSize(u64),
    /// A device region's base is not page aligned.
    DeviceUnaligned { base: u64 },
    /// A device region over a window the kernel owns (its GIC and UART, or RAM).
    DeviceOverKernel { base: u64, end: u64, window: Window },
    /// A device region above RAM's start: the kernel maps devices only below it.
    DeviceAboveRam { base: u64, end: u64 },
    /// An INTID no server can take: an SGI (0..=15), or past the last interrupt (1019).
    NotAnInterrupt { intid: u32 },
    /// An INTID the kernel takes for itself.
    KernelOwned { intid: u32, what: &'static str },
    /// An INTID an earlier irq record already takes.
    DuplicateIrq { intid: u32, first: u16 },
    /// A capability slot outside the server's CNode (or one of its fixed slots).
    CapSlot { slot: u16, slots: u16 },
    /// A capability slot given twice.
    SlotTaken { server: u16, slot: u16 },
    /// A frame capability to a device region.
    FrameOfDevice { region: u16 },
    /// A mapping outside the region window, not page aligned, or wrapping.
    MappingOutsideWindow { va: u64, size: u64 },
    /// A mapping sharing addresses with another mapping of the same server.
    MappingOverlaps { server: u16, other: u32 },
    /// A VM whose RAM region is a device region.
    VmRamNotRam { region: u16 },
    /// The VM's load description is refused (`kernel_core::guest_load`).
    Load(LoadError),
    /// A segment of an earlier VM after the segments of a later one.
    SegmentOrder { previous_vm: u16 },
    /// The kernel's free RAM cannot hold what the record asks for (in pages).
    OutOfMemory { needed: u64, free: u64 },
    /// A mapping the description asked for could not be made (the checks before the build rule
    /// this out; kept typed all the same).
    CannotMap { va: u64, error: MapError },
}

/// A boot description refused: where, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootError {
    /// The record.
    pub at: At,
    /// What was wrong with it.
    pub why: Why,
}

impl BootError {
    /// Refuses the record at `at` for `why`.
    pub const fn new(at: At, why: Why) -> Self {
        Self { at, why }
    }
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            At::Payload => f.write_str("payload"),
            At::Record(position) => write!(f, "record {position}"),
            At::Kind {
                kind: Kind::Header, ..
            } => f.write_str("header"),
            At::Kind { kind, index } => write!(f, "{} {index}", kind.name()),
        }
    }
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.why)
    }
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Why::NoPayload => f.write_str(
                "empty: this kernel was built without one (`cargo xtask build` builds it around \
                 a manifest's)",
            ),
            Why::Payload(PayloadError::BadMagic) => {
                f.write_str("no `HVBOOT01` magic: was this kernel built by `cargo xtask build`?")
            }
            Why::Payload(PayloadError::Truncated) => {
                f.write_str("truncated: its header's lengths point past its end")
            }
            Why::Payload(error) => write!(f, "refused ({error:?})"),
            Why::Undecodable => f.write_str("does not decode"),
            Why::NotAHeader { found: None } => f.write_str("the description is empty"),
            Why::NotAHeader { found: Some(kind) } => write!(
                f,
                "the description starts with a {} record, not a header",
                kind.name()
            ),
            Why::SecondHeader => f.write_str("a second header"),
            Why::OutOfOrder { kind, after } => write!(
                f,
                "a {} record after the {} records (records come header, servers, endpoints, \
                 notifications, regions, irqs, caps, mappings, vms, vm segments)",
                kind.name(),
                after.name()
            ),
            Why::Version { found } => write!(
                f,
                "format version {found}, and this kernel reads {}",
                bootdesc::FORMAT_VERSION
            ),
            Why::Count {
                kind,
                header,
                found,
            } => write!(
                f,
                "counts {header} {} records, and the description has {found}",
                kind.name()
            ),
            Why::NoServers => f.write_str("no servers"),
            Why::TooManyForVmids { limit } => write!(
                f,
                "no VMID left: only {limit} fit (servers get VMIDs 1..=127, guests 128..=255)"
            ),
            Why::Timeslice { us } => write!(
                f,
                "time slice of {us} us, outside {}..={} us",
                TIMESLICE_US.start(),
                TIMESLICE_US.end()
            ),
            Why::NoSuch { kind, index, count } => {
                write!(f, "names {} {index}, and there are {count}", kind.name())
            }
            Why::ImageOutsidePayload { offset, len } => write!(
                f,
                "its image ({len:#x} bytes at {offset:#x} of the image area) lies outside the \
                 payload"
            ),
            Why::BadImage(error) => write!(f, "bad ELF image ({error:?})"),
            Why::Priority(priority) => write!(f, "priority {priority} outside 1..=254"),
            Why::Stack(bytes) => write!(
                f,
                "stack of {bytes:#x} bytes (a non-zero multiple of the page size, at most {:#x})",
                abi::layout::STACK_TOP - STACK_LIMIT
            ),
            Why::Heap(bytes) => write!(
                f,
                "heap of {bytes:#x} bytes (a multiple of the page size, at most {:#x})",
                HEAP_END - HEAP_BASE
            ),
            Why::CnodeSlots(slots) => write!(
                f,
                "a CNode of {slots} slots, and the first {} are fixed",
                abi::FIRST_FREE_SLOT
            ),
            Why::BootInfo { bytes } => write!(
                f,
                "boot info of {bytes} bytes, and its page holds {MAX_BOOTINFO}"
            ),
            Why::InjectionOutsideTest => {
                write!(f, "an injected fault, and this is not a test system")
            }
            Why::InjectionCount => {
                write!(f, "an injected fault at occurrence 0 (counts start at 1)")
            }
            Why::AlreadyBound {
                server,
                notification,
            } => write!(
                f,
                "binds server {server}, which notification {notification} is already bound to"
            ),
            Why::RegionSize(size) => {
                write!(
                    f,
                    "size {size:#x} is not a non-zero multiple of the page size"
                )
            }
            Why::DeviceUnaligned { base } => {
                write!(f, "device base {base:#x} is not page aligned")
            }
            Why::DeviceOverKernel { base, end, window } => write!(
                f,
                "device region {base:#x}..{end:#x} overlaps {} ({:#x}..{:#x}), which the kernel \
                 owns",
                window.name,
                window.base,
                window.end()
            ),
            Why::DeviceAboveRam { base, end } => write!(
                f,
                "device region {base:#x}..{end:#x} lies above RAM; the kernel maps devices only \
                 from below {:#x}",
                RAM.base
            ),
            Why::NotAnInterrupt { intid } => write!(
                f,
                "intid {intid} is not an interrupt a server can take (PPIs 16..=31, SPIs \
                 32..=1019)"
            ),
            Why::KernelOwned { intid, what } => {
                write!(f, "intid {intid} is the kernel's own: {what}")
            }
            Why::DuplicateIrq { intid, first } => {
                write!(f, "intid {intid} is already irq {first}'s")
            }
            Why::CapSlot { slot, slots } => write!(
                f,
                "slot {slot} outside the free slots {}..{slots} of its server's CNode",
                abi::FIRST_FREE_SLOT
            ),
            Why::SlotTaken { server, slot } => {
                write!(f, "slot {slot} of server {server} is given twice")
            }
            Why::FrameOfDevice { region } => write!(
                f,
                "a frame capability to region {region}, which is a device region"
            ),
            Why::MappingOutsideWindow { va, size } => write!(
                f,
                "{size:#x} bytes at {va:#x}, outside the region window {REGION_WINDOW_BASE:#x}..\
                 {ADDRESS_SPACE_END:#x} or not page aligned"
            ),
            Why::MappingOverlaps { server, other } => write!(
                f,
                "overlaps mapping {other} in server {server}'s address space"
            ),
            Why::VmRamNotRam { region } => {
                write!(f, "its RAM region {region} is a device region")
            }
            Why::Load(error) => write!(f, "refused load description ({error:?})"),
            Why::SegmentOrder { previous_vm } => write!(
                f,
                "follows a segment of vm {previous_vm}: segments come grouped by VM, in VM order"
            ),
            Why::OutOfMemory { needed, free } => write!(
                f,
                "out of memory: needs {needed} pages, and {free} are free"
            ),
            Why::CannotMap { va, error } => write!(f, "cannot map {va:#x} ({error:?})"),
        }
    }
}
