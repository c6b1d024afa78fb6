//! Every boot check on a description built here: a good system is accepted, and each bad field
//! is refused with its typed error, naming the record.

use super::*;
use abi::Rights;
use bootdesc::{
    Cap, CapObject, Endpoint, ImageRef, Irq, Mapping, Notification, Region, RegionKind,
    RestartPolicy, Server, ServerRole, Vm, VmSegment,
};
use std::vec::Vec;

mod hostile;
mod records;
mod stream;

/// A minimal AArch64 executable: one executable segment at the image base, the entry its start.
fn server_elf() -> Vec<u8> {
    let mut elf = std::vec![0u8; 64 + 56];
    elf[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\x00");
    elf[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf[18..20].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    elf[24..32].copy_from_slice(&abi::layout::IMAGE_BASE.to_le_bytes());
    elf[32..40].copy_from_slice(&64u64.to_le_bytes());
    elf[54..56].copy_from_slice(&56u16.to_le_bytes());
    elf[56..58].copy_from_slice(&1u16.to_le_bytes());
    let header = &mut elf[64..];
    header[..4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    header[4..8].copy_from_slice(&1u32.to_le_bytes()); // PF_X
    header[8..16].copy_from_slice(&0u64.to_le_bytes());
    header[16..24].copy_from_slice(&abi::layout::IMAGE_BASE.to_le_bytes());
    header[32..40].copy_from_slice(&0x78u64.to_le_bytes());
    header[40..48].copy_from_slice(&0x1000u64.to_le_bytes());
    elf
}

/// Guest RAM's guest-physical base in the good system.
const GUEST_RAM: u64 = 0x4000_0000;

/// The images of the good system: the servers' ELF, then the guest's bytes.
fn images() -> Vec<Vec<u8>> {
    std::vec![server_elf(), std::vec![0x5A; 0x100]]
}

/// A system that uses every kind of record and every capability object: a supervisor (server
/// 0) and an application (server 1), bound to a notification an RTC interrupt signals, with a
/// device and a RAM region mapped, and one VM of two segments.
fn good() -> Vec<Record<'static>> {
    let refs = bootdesc::image_refs(&[&server_elf(), &[0x5A; 0x100]]);
    let server = |name, priority, cnode_slots, fault_endpoint| {
        Record::Server(Server {
            name,
            image: refs[0],
            priority,
            stack_bytes: 0x4000,
            heap_bytes: 0x1000,
            cnode_slots,
            restart: RestartPolicy::Always,
            role: ServerRole::Ordinary,
            fault_endpoint,
            fault_badge: 2,
            inject_fault: None,
            bootinfo: &[1, 2, 3],
        })
    };
    let cap = |server, slot, object| {
        Record::Cap(Cap {
            server,
            slot,
            object,
        })
    };
    let endpoint = |index| CapObject::Endpoint {
        index,
        badge: 1,
        rights: Rights::READ,
    };
    let mapping = |server, region, va| {
        Record::Mapping(Mapping {
            server,
            region,
            va,
            writable: true,
            executable: false,
        })
    };
    let segment = |ipa| {
        Record::VmSegment(VmSegment {
            vm: 0,
            image: refs[1],
            ipa,
        })
    };
    std::vec![
        Record::Header(Header {
            version: bootdesc::FORMAT_VERSION,
            name: "good",
            servers: 2,
            endpoints: 2,
            notifications: 1,
            regions: 3,
            irqs: 1,
            caps: 13,
            mappings: 3,
            vms: 1,
            vm_segments: 2,
            timeslice_us: 2000,
            test_system: false,
        }),
        server("supervisor", 200, 16, None),
        server("app", 100, 8, Some(1)),
        Record::Endpoint(Endpoint {
            name: "app",
            server: Some(1),
        }),
        Record::Endpoint(Endpoint {
            name: "faults",
            server: Some(0),
        }),
        Record::Notification(Notification {
            name: "events",
            bound: Some(1),
        }),
        Record::Region(Region {
            name: "rtc",
            kind: RegionKind::Device {
                phys_base: 0x0901_0000,
            },
            size: 0x1000,
        }),
        Record::Region(Region {
            name: "shared",
            kind: RegionKind::Ram,
            size: 0x2000,
        }),
        Record::Region(Region {
            name: "ram:guest",
            kind: RegionKind::Ram,
            size: 0x20_0000,
        }),
        Record::Irq(Irq {
            name: "rtc",
            intid: 34,
            notification: 0,
            badge: 1,
        }),
        cap(0, 3, endpoint(1)),
        cap(0, 4, CapObject::Tcb { server: 1 }),
        cap(0, 5, CapObject::GuestTcb { vm: 0 }),
        cap(0, 6, CapObject::Vcpu { vm: 0 }),
        cap(0, 7, CapObject::GuestVSpace { vm: 0 }),
        cap(0, 8, CapObject::SystemControl),
        cap(0, 9, CapObject::DebugLog),
        cap(0, 15, CapObject::DebugInput),
        cap(1, 3, endpoint(0)),
        cap(
            1,
            4,
            CapObject::Notification {
                index: 0,
                badge: 0,
                rights: Rights::READ,
            },
        ),
        cap(1, 5, CapObject::IrqHandler { irq: 0 }),
        cap(
            1,
            6,
            CapObject::Frame {
                region: 1,
                rights: Rights::READ,
            },
        ),
        cap(1, 7, CapObject::DebugConsole),
        mapping(1, 0, 0x4000_0000),
        mapping(1, 1, 0x4000_1000),
        // The same addresses in another server's address space.
        mapping(0, 1, 0x4000_0000),
        Record::Vm(Vm {
            name: "guest",
            ram_base: GUEST_RAM,
            ram_region: 2,
            priority: 50,
            exit_endpoint: 0,
            exit_badge: 1,
            entry: GUEST_RAM,
            x0: 0,
            mmio_markers: true,
        }),
        segment(GUEST_RAM),
        segment(GUEST_RAM + 0x1000),
    ]
}

/// Both passes over `payload`, in scratch memory of the lengths the census asks for.
fn check_payload(payload: &[u8]) -> Result<(), BootError> {
    let census = census(payload)?;
    let lengths = census.scratch_lengths();
    let mut servers = std::vec![ServerFacts::default(); lengths.servers];
    let mut regions = std::vec![RegionFacts::default(); lengths.regions];
    let mut vms = std::vec![VmFacts::default(); lengths.vms];
    let mut slots = std::vec![0u64; lengths.slot_words];
    let mut mappings = std::vec![MappedRange::default(); lengths.mappings];
    let scratch = Scratch {
        servers: &mut servers,
        regions: &mut regions,
        vms: &mut vms,
        slots: &mut slots,
        mappings: &mut mappings,
    };
    check(&census, payload, scratch)
}

fn payload_of(records: &[Record<'_>]) -> Vec<u8> {
    let images = images();
    let images: Vec<&[u8]> = images.iter().map(Vec::as_slice).collect();
    bootdesc::build_payload(records, &images).expect("records encode")
}

/// The good system with `change` applied, checked.
fn checked(change: impl FnOnce(&mut Vec<Record<'static>>)) -> Result<(), BootError> {
    let mut records = good();
    change(&mut records);
    check_payload(&payload_of(&records))
}

/// The error the good system with `change` applied is refused with.
fn refused(change: impl FnOnce(&mut Vec<Record<'static>>)) -> BootError {
    match checked(change) {
        Ok(()) => panic!("accepted"),
        Err(error) => error,
    }
}

/// The `n`-th record of `variant` (counted among its kind), to change.
macro_rules! edit {
    ($records:expr, $variant:ident, $n:expr, |$record:ident| $body:expr) => {
        match $records
            .iter_mut()
            .filter(|record| matches!(record, Record::$variant(_)))
            .nth($n)
        {
            Some(Record::$variant($record)) => $body,
            _ => panic!("no {} record {}", stringify!($variant), $n),
        }
    };
}
use edit;

/// Adds `record` after the last record of its kind and counts it in the header.
fn add(records: &mut Vec<Record<'static>>, record: Record<'static>) {
    let kind = kind_of(&record);
    let at = records
        .iter()
        .position(|other| kind_of(other) > kind)
        .unwrap_or(records.len());
    records.insert(at, record);
    edit!(records, Header, 0, |header| match kind {
        Kind::Server => header.servers += 1,
        Kind::Endpoint => header.endpoints += 1,
        Kind::Notification => header.notifications += 1,
        Kind::Region => header.regions += 1,
        Kind::Irq => header.irqs += 1,
        Kind::Cap => header.caps += 1,
        Kind::Mapping => header.mappings += 1,
        Kind::Vm => header.vms += 1,
        Kind::VmSegment => header.vm_segments += 1,
        Kind::Header => panic!("a second header"),
    });
}

fn at(kind: Kind, index: u32, why: Why) -> BootError {
    BootError::new(At::of(kind, index), why)
}

fn no_such(kind: Kind, index: u32, count: u32) -> Why {
    Why::NoSuch { kind, index, count }
}

#[test]
fn the_good_system_is_accepted() {
    assert_eq!(checked(|_| {}), Ok(()));
    let payload = payload_of(&good());
    let census = census(&payload).expect("a good census");
    assert_eq!(census.slots, 16 + 8);
    assert_eq!(
        census.scratch_lengths(),
        ScratchLengths {
            servers: 2,
            regions: 3,
            vms: 1,
            slot_words: 1,
            mappings: 3,
        }
    );
}

#[test]
fn refusals_print_as_the_record_and_what_was_wrong() {
    let lines = [
        (
            at(
                Kind::Irq,
                0,
                Why::KernelOwned {
                    intid: 27,
                    what: KERNEL_IRQS[2].what,
                },
            ),
            "irq 0: intid 27 is the kernel's own: the EL1 virtual timer (PPI 11), forwarded to \
             the running guest",
        ),
        (
            at(Kind::Server, 127, Why::TooManyForVmids { limit: 127 }),
            "server 127: no VMID left: only 127 fit (servers get VMIDs 1..=127, guests 128..=255)",
        ),
        (
            at(Kind::Cap, 4, no_such(Kind::Endpoint, 9, 2)),
            "cap 4: names endpoint 9, and there are 2",
        ),
        (
            at(
                Kind::Region,
                2,
                Why::OutOfMemory {
                    needed: 512,
                    free: 100,
                },
            ),
            "region 2: out of memory: needs 512 pages, and 100 are free",
        ),
        (
            at(Kind::VmSegment, 1, Why::SegmentOrder { previous_vm: 1 }),
            "vm segment 1: follows a segment of vm 1: segments come grouped by VM, in VM order",
        ),
        (
            BootError::new(At::HEADER, Why::Version { found: 5 }),
            "header: format version 5, and this kernel reads 7",
        ),
        (
            BootError::new(At::Record(3), Why::Undecodable),
            "record 3: does not decode",
        ),
        (
            BootError::new(At::Payload, Why::Payload(bootdesc::PayloadError::BadMagic)),
            "payload: no `HVBOOT01` magic: was this kernel built by `cargo xtask build`?",
        ),
    ];
    for (error, line) in lines {
        assert_eq!(std::format!("{error}"), line);
    }
}

#[test]
fn the_kernels_interrupts_are_the_platform_tables() {
    let intids: Vec<u32> = KERNEL_IRQS.iter().map(|owned| owned.intid).collect();
    assert_eq!(intids, [25, 26, 27, 33]);
    assert_eq!(crate::vgic::MAINTENANCE_INTID, 25);
    assert_eq!(crate::vgic::VTIMER_INTID, 27);
}

#[test]
fn an_image_reference_is_checked_against_the_payload() {
    let outside = ImageRef {
        offset: 0x10_0000,
        len: 1,
    };
    assert_eq!(
        refused(|r| edit!(r, Server, 1, |s| s.image = outside)),
        at(
            Kind::Server,
            1,
            Why::ImageOutsidePayload {
                offset: 0x10_0000,
                len: 1
            }
        )
    );
}
