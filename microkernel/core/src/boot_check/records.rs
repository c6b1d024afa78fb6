//! The second pass: every record checked against its own limits, the header's counts and the
//! records before it, in memory the caller lends ([`Scratch`]).

use super::{
    At, BootError, Census, FIRST_SERVER_INTID, KERNEL_IRQS, Kind, MAX_BOOTINFO, Why, kind_of,
    reference,
};
use crate::elf;
use crate::guest_load::RamWindow;
use abi::layout::{
    ADDRESS_SPACE_END, HEAP_BASE, HEAP_END, IMAGE_BASE, IMAGE_END, PAGE_SIZE, REGION_WINDOW_BASE,
    STACK_LIMIT, STACK_TOP,
};
use bootdesc::{CapObject, Header, Record, RecordReader, RegionKind};

/// What later records are checked against about a server.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerFacts {
    slots: u16,
    /// Where its CNode starts among all servers' slots.
    slot_base: u32,
    /// The notification bound to it.
    bound_to: Option<u16>,
}

/// What later records are checked against about a region.
#[derive(Clone, Copy, Debug, Default)]
pub struct RegionFacts {
    size: u64,
    ram: bool,
}

/// What later records are checked against about a VM: its RAM window.
#[derive(Clone, Copy, Debug, Default)]
pub struct VmFacts {
    ram_base: u64,
    ram_size: u64,
}

/// One mapping, kept to find two of one server that share addresses.
#[derive(Clone, Copy, Debug, Default)]
pub struct MappedRange {
    server: u16,
    start: u64,
    end: u64,
    index: u32,
}

/// The memory [`check`] works in, each slice at least as long as [`Census::scratch_lengths`]
/// says. The kernel carves it from its free RAM and takes it back once the check is done.
pub struct Scratch<'s> {
    /// One entry per server.
    pub servers: &'s mut [ServerFacts],
    /// One per region.
    pub regions: &'s mut [RegionFacts],
    /// One per VM.
    pub vms: &'s mut [VmFacts],
    /// One bit per CNode slot of all servers: given a capability yet.
    pub slots: &'s mut [u64],
    /// One per mapping.
    pub mappings: &'s mut [MappedRange],
}

/// How long each slice of a [`Scratch`] must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScratchLengths {
    pub servers: usize,
    pub regions: usize,
    pub vms: usize,
    pub slot_words: usize,
    pub mappings: usize,
}

impl Census<'_> {
    /// What [`check`] needs to work in.
    pub fn scratch_lengths(&self) -> ScratchLengths {
        ScratchLengths {
            servers: self.header.servers.into(),
            regions: self.header.regions.into(),
            vms: self.header.vms.into(),
            slot_words: self.slots.div_ceil(64) as usize,
            mappings: self.header.mappings as usize,
        }
    }
}

/// The second pass: every record of the stream the census read, checked against its own
/// limits, the header's counts and the records before it. `payload` is the census's payload.
pub fn check(census: &Census<'_>, payload: &[u8], scratch: Scratch<'_>) -> Result<(), BootError> {
    let mut checker = Checker {
        census,
        payload,
        scratch,
        slot_base: 0,
        irq_owner: [NO_IRQ; crate::vgic::FIRST_SPECIAL_INTID as usize],
        previous_segment: None,
        mappings: 0,
    };
    let mut reader = RecordReader::new(census.description);
    let mut counters = [0u32; Kind::ALL.len()];
    let mut position = 0u32;
    loop {
        let record = match reader.next_record() {
            Ok(Some(record)) => record,
            Ok(None) => break,
            Err(_) => return Err(BootError::new(At::Record(position), Why::Undecodable)),
        };
        position = position.saturating_add(1);
        let kind = kind_of(&record);
        let index = counters[kind as usize];
        counters[kind as usize] += 1;
        checker
            .record(&record, index)
            .map_err(|why| BootError::new(At::of(kind, index), why))?;
    }
    checker.mapping_overlaps()
}

/// No irq record takes this INTID yet.
const NO_IRQ: u16 = u16::MAX;

struct Checker<'c, 'a, 's> {
    census: &'c Census<'a>,
    payload: &'c [u8],
    scratch: Scratch<'s>,
    /// Where the next server's CNode starts among all slots.
    slot_base: u32,
    /// The irq record taking each INTID.
    irq_owner: [u16; crate::vgic::FIRST_SPECIAL_INTID as usize],
    /// The VM of the previous segment record and where that segment ended.
    previous_segment: Option<(u16, u64)>,
    /// Mapping records seen.
    mappings: usize,
}

/// The facts about record `index` of `kind`.
fn fact<T>(facts: &mut [T], kind: Kind, index: u16) -> Result<&mut T, Why> {
    let position = reference(kind, index, facts.len())?;
    facts.get_mut(position).ok_or(Why::NoSuch {
        kind,
        index: index.into(),
        count: 0,
    })
}

fn priority(priority: u8) -> Result<(), Why> {
    match priority {
        1..=254 => Ok(()),
        _ => Err(Why::Priority(priority)),
    }
}

impl Checker<'_, '_, '_> {
    fn header(&self) -> &Header<'_> {
        &self.census.header
    }

    fn server_reference(&self, server: u16) -> Result<(), Why> {
        reference(Kind::Server, server, self.header().servers.into()).map(|_| ())
    }

    fn record(&mut self, record: &Record<'_>, index: u32) -> Result<(), Why> {
        // Indices of records of one kind fit in u16 wherever the format says u16.
        let small = index as u16;
        match record {
            Record::Header(_) => Ok(()),
            Record::Server(server) => self.server(server, small),
            Record::Endpoint(endpoint) => match endpoint.server {
                Some(server) => self.server_reference(server),
                None => Ok(()),
            },
            Record::Notification(notification) => self.notification(notification.bound, small),
            Record::Region(region) => self.region(region, small),
            Record::Irq(irq) => self.irq(irq, small),
            Record::Cap(cap) => self.cap(cap),
            Record::Mapping(mapping) => self.mapping(mapping, index),
            Record::Vm(vm) => self.vm(vm, small),
            Record::VmSegment(segment) => self.segment(segment),
        }
    }

    fn server(&mut self, server: &bootdesc::Server<'_>, index: u16) -> Result<(), Why> {
        let image = server.image;
        let file =
            self.census
                .payload
                .image(self.payload, image)
                .ok_or(Why::ImageOutsidePayload {
                    offset: image.offset,
                    len: image.len,
                })?;
        priority(server.priority)?;
        let stack = u64::from(server.stack_bytes);
        if stack == 0 || !stack.is_multiple_of(PAGE_SIZE) || stack > STACK_TOP - STACK_LIMIT {
            return Err(Why::Stack(server.stack_bytes));
        }
        let heap = u64::from(server.heap_bytes);
        if !heap.is_multiple_of(PAGE_SIZE) || heap > HEAP_END - HEAP_BASE {
            return Err(Why::Heap(server.heap_bytes));
        }
        if u64::from(server.cnode_slots) <= abi::FIRST_FREE_SLOT {
            return Err(Why::CnodeSlots(server.cnode_slots));
        }
        if let Some(endpoint) = server.fault_endpoint {
            reference(Kind::Endpoint, endpoint, self.header().endpoints.into())?;
        }
        if let Some(injection) = server.inject_fault {
            if !self.header().test_system {
                return Err(Why::InjectionOutsideTest);
            }
            if injection.count == 0 {
                return Err(Why::InjectionCount);
            }
        }
        if server.bootinfo.len() > MAX_BOOTINFO {
            return Err(Why::BootInfo {
                bytes: server.bootinfo.len(),
            });
        }
        elf::parse(file, IMAGE_BASE, IMAGE_END).map_err(Why::BadImage)?;
        let slot_base = self.slot_base;
        *fact(self.scratch.servers, Kind::Server, index)? = ServerFacts {
            slots: server.cnode_slots,
            slot_base,
            bound_to: None,
        };
        // At most 127 servers of 65,535 slots: far below u32::MAX.
        self.slot_base = slot_base.saturating_add(server.cnode_slots.into());
        Ok(())
    }

    fn notification(&mut self, bound: Option<u16>, index: u16) -> Result<(), Why> {
        let Some(server) = bound else {
            return Ok(());
        };
        let facts = fact(self.scratch.servers, Kind::Server, server)?;
        if let Some(notification) = facts.bound_to {
            return Err(Why::AlreadyBound {
                server,
                notification,
            });
        }
        facts.bound_to = Some(index);
        Ok(())
    }

    fn region(&mut self, region: &bootdesc::Region<'_>, index: u16) -> Result<(), Why> {
        let size = region.size;
        if size == 0 || !size.is_multiple_of(PAGE_SIZE) {
            return Err(Why::RegionSize(size));
        }
        let ram = match region.kind {
            RegionKind::Ram => true,
            RegionKind::Device { phys_base } => {
                check_device(phys_base, size)?;
                false
            }
        };
        *fact(self.scratch.regions, Kind::Region, index)? = RegionFacts { size, ram };
        Ok(())
    }

    fn irq(&mut self, irq: &bootdesc::Irq<'_>, index: u16) -> Result<(), Why> {
        let intid = irq.intid;
        let owner = self
            .irq_owner
            .get_mut(intid as usize)
            .filter(|_| intid >= FIRST_SERVER_INTID)
            .ok_or(Why::NotAnInterrupt { intid })?;
        if let Some(owned) = KERNEL_IRQS.iter().find(|owned| owned.intid == intid) {
            return Err(Why::KernelOwned {
                intid,
                what: owned.what,
            });
        }
        if *owner != NO_IRQ {
            return Err(Why::DuplicateIrq {
                intid,
                first: *owner,
            });
        }
        *owner = index;
        let notifications = self.census.header.notifications.into();
        reference(Kind::Notification, irq.notification, notifications).map(|_| ())
    }

    fn cap(&mut self, cap: &bootdesc::Cap) -> Result<(), Why> {
        let header = &self.census.header;
        let server = *fact(self.scratch.servers, Kind::Server, cap.server)?;
        if u64::from(cap.slot) < abi::FIRST_FREE_SLOT || cap.slot >= server.slots {
            return Err(Why::CapSlot {
                slot: cap.slot,
                slots: server.slots,
            });
        }
        let bit = u64::from(server.slot_base) + u64::from(cap.slot);
        let word = self
            .scratch
            .slots
            .get_mut((bit / 64) as usize)
            .ok_or(Why::CapSlot {
                slot: cap.slot,
                slots: server.slots,
            })?;
        if *word & (1 << (bit % 64)) != 0 {
            return Err(Why::SlotTaken {
                server: cap.server,
                slot: cap.slot,
            });
        }
        *word |= 1 << (bit % 64);
        let vms = header.vms.into();
        match cap.object {
            CapObject::Endpoint { index, .. } => {
                reference(Kind::Endpoint, index, header.endpoints.into())
            }
            CapObject::Notification { index, .. } => {
                reference(Kind::Notification, index, header.notifications.into())
            }
            CapObject::Tcb { server } => reference(Kind::Server, server, header.servers.into()),
            CapObject::IrqHandler { irq } => reference(Kind::Irq, irq, header.irqs.into()),
            CapObject::GuestTcb { vm } | CapObject::Vcpu { vm } | CapObject::GuestVSpace { vm } => {
                reference(Kind::Vm, vm, vms)
            }
            CapObject::Frame { region, .. } => {
                if fact(self.scratch.regions, Kind::Region, region)?.ram {
                    Ok(0)
                } else {
                    Err(Why::FrameOfDevice { region })
                }
            }
            CapObject::SystemControl
            | CapObject::DebugConsole
            | CapObject::DebugLog
            | CapObject::DebugInput => Ok(0),
        }
        .map(|_| ())
    }

    fn mapping(&mut self, mapping: &bootdesc::Mapping, index: u32) -> Result<(), Why> {
        reference(Kind::Server, mapping.server, self.scratch.servers.len())?;
        let size = fact(self.scratch.regions, Kind::Region, mapping.region)?.size;
        let va = mapping.va;
        let end = va
            .checked_add(size)
            .filter(|&end| {
                va.is_multiple_of(PAGE_SIZE) && va >= REGION_WINDOW_BASE && end <= ADDRESS_SPACE_END
            })
            .ok_or(Why::MappingOutsideWindow { va, size })?;
        let range = self
            .scratch
            .mappings
            .get_mut(self.mappings)
            .ok_or(Why::NoSuch {
                kind: Kind::Mapping,
                index,
                count: self.census.header.mappings,
            })?;
        *range = MappedRange {
            server: mapping.server,
            start: va,
            end,
            index,
        };
        self.mappings += 1;
        Ok(())
    }

    fn vm(&mut self, vm: &bootdesc::Vm<'_>, index: u16) -> Result<(), Why> {
        let region = *fact(self.scratch.regions, Kind::Region, vm.ram_region)?;
        if !region.ram {
            return Err(Why::VmRamNotRam {
                region: vm.ram_region,
            });
        }
        RamWindow::new(vm.ram_base, region.size)
            .and_then(|window| window.check_entry(vm.entry, vm.x0))
            .map_err(Why::Load)?;
        reference(
            Kind::Endpoint,
            vm.exit_endpoint,
            self.census.header.endpoints.into(),
        )?;
        priority(vm.priority)?;
        *fact(self.scratch.vms, Kind::Vm, index)? = VmFacts {
            ram_base: vm.ram_base,
            ram_size: region.size,
        };
        Ok(())
    }

    fn segment(&mut self, segment: &bootdesc::VmSegment) -> Result<(), Why> {
        let vm = *fact(self.scratch.vms, Kind::Vm, segment.vm)?;
        let previous_end = match self.previous_segment {
            Some((previous_vm, _)) if previous_vm > segment.vm => {
                return Err(Why::SegmentOrder { previous_vm });
            }
            Some((previous_vm, end)) if previous_vm == segment.vm => Some(end),
            _ => None,
        };
        let image = segment.image;
        let bytes =
            self.census
                .payload
                .image(self.payload, image)
                .ok_or(Why::ImageOutsidePayload {
                    offset: image.offset,
                    len: image.len,
                })?;
        let end = RamWindow::new(vm.ram_base, vm.ram_size)
            .and_then(|window| window.check_segment(segment.ipa, bytes.len() as u64, previous_end))
            .map_err(Why::Load)?;
        self.previous_segment = Some((segment.vm, end));
        Ok(())
    }

    /// No two mappings of one server share an address: sorted by server and start, any two
    /// that do are neighbours. The later record of the two is the one refused.
    fn mapping_overlaps(self) -> Result<(), BootError> {
        let ranges = self.scratch.mappings;
        let used = self.mappings.min(ranges.len());
        let ranges = &mut ranges[..used];
        ranges.sort_unstable_by_key(|range| (range.server, range.start));
        for pair in ranges.windows(2) {
            let (first, second) = (pair[0], pair[1]);
            if first.server == second.server && second.start < first.end {
                let (earlier, later) =
                    (first.index.min(second.index), first.index.max(second.index));
                return Err(BootError::new(
                    At::of(Kind::Mapping, later),
                    Why::MappingOverlaps {
                        server: first.server,
                        other: earlier,
                    },
                ));
            }
        }
        Ok(())
    }
}

/// A device region, as the manifest compiler checks it: page aligned, over none of the devices
/// the kernel drives itself (the GIC distributor and redistributors, its UART: a server that
/// could map those could route, mask or forge any interrupt, or write the console under the
/// kernel) nor RAM, and below RAM.
fn check_device(base: u64, size: u64) -> Result<(), Why> {
    let end = base.saturating_add(size);
    if !base.is_multiple_of(PAGE_SIZE) {
        return Err(Why::DeviceUnaligned { base });
    }
    if let Some(window) = abi::platform::kernel_owned(base, end) {
        return Err(Why::DeviceOverKernel { base, end, window });
    }
    if end > abi::platform::RAM.base {
        return Err(Why::DeviceAboveRam { base, end });
    }
    Ok(())
}
