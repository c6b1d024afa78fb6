//! Instantiating the system from the boot description: every thread, CNode, endpoint,
//! notification, region, interrupt and capability the manifest named.
//!
//! Two passes over the record stream: the first checks the order and counts and sizes the
//! pools, the second builds. Every index in a record is checked; a payload the kernel cannot
//! fully validate stops the boot with the reason (nothing half-valid runs).

use crate::arch::{Arch, Current};
use crate::boot_alloc::BootAllocator;
use crate::loader::{self, ServerImage};
use crate::state::Kernel;
use crate::vspace::GuestVSpace;
use abi::layout::{PAGE_SIZE, REGION_WINDOW_BASE, STACK_TOP};
use abi::{CNODE_SLOT, REPLY_SLOT};
use bootdesc::{CapObject, Header, PayloadHeader, Record, RecordReader, RegionKind};
use kernel_core::cap::{Cap, FrameCap};
use kernel_core::endpoint::{Endpoint, Reply};
use kernel_core::guest_load::{LoadSegment, RamWindow};
use kernel_core::notification::{IrqLine, Notification};
use kernel_core::stage2::{Attributes, MemoryKind};
use kernel_core::system::System;
use kernel_core::tcb::{SlotRange, Tcb, UserContext};

/// The boot payload, produced by `cargo xtask build` from a manifest.
static PAYLOAD: &[u8] = include_bytes!(env!("HV_BOOT_PAYLOAD"));

fn fail(what: core::fmt::Arguments<'_>) -> ! {
    panic!("boot description: {what}")
}

/// Sizes every pool: the header's counts, checked against the records actually present.
struct Census<'a> {
    header: Header<'a>,
    slots: u64,
}

fn census(description: &'static [u8]) -> Census<'static> {
    let mut reader = RecordReader::new(description);
    let header = match reader.next_record() {
        Ok(Some(Record::Header(header))) => header,
        other => fail(format_args!(
            "expected a header record first, found {other:?}"
        )),
    };
    if header.version != bootdesc::FORMAT_VERSION {
        fail(format_args!(
            "format version {} (this kernel reads {})",
            header.version,
            bootdesc::FORMAT_VERSION
        ));
    }
    let expected = [
        u64::from(header.servers),
        u64::from(header.endpoints),
        u64::from(header.notifications),
        u64::from(header.regions),
        u64::from(header.irqs),
        u64::from(header.caps),
        u64::from(header.mappings),
        u64::from(header.vms),
        u64::from(header.vm_segments),
    ];
    let mut seen = [0u64; 9];
    let mut kind_so_far = 0;
    let mut slots = 0u64;
    loop {
        let record = match reader.next_record() {
            Ok(Some(record)) => record,
            Ok(None) => break,
            Err(error) => fail(format_args!("undecodable record: {error:?}")),
        };
        let kind = match &record {
            Record::Header(_) => fail(format_args!("a second header")),
            Record::Server(server) => {
                slots += u64::from(server.cnode_slots);
                0
            }
            Record::Endpoint(_) => 1,
            Record::Notification(_) => 2,
            Record::Region(_) => 3,
            Record::Irq(_) => 4,
            Record::Cap(_) => 5,
            Record::Mapping(_) => 6,
            Record::Vm(_) => 7,
            Record::VmSegment(_) => 8,
        };
        if kind < kind_so_far {
            fail(format_args!("records out of order: {record:?}"));
        }
        kind_so_far = kind;
        seen[kind] += 1;
    }
    if seen != expected {
        fail(format_args!(
            "record counts {seen:?} differ from the header's {expected:?}"
        ));
    }
    if header.servers == 0 || header.servers > 127 || header.vms > 128 {
        fail(format_args!(
            "{} servers and {} VMs (VMIDs: 1..=127 for servers, 128..=255 for guests)",
            header.servers, header.vms
        ));
    }
    Census { header, slots }
}

fn index(value: u16, count: usize, what: &str) -> usize {
    let value = usize::from(value);
    if value >= count {
        fail(format_args!(
            "{what} index {value} out of range (there are {count})"
        ));
    }
    value
}

// The kernel drives the GIC and the UART at these addresses; `abi::platform`, which the
// manifest compiler checks device regions against, must name the same windows.
const _: () = {
    use crate::plat::layout;
    use abi::platform::{GIC_DISTRIBUTOR, GIC_REDISTRIBUTORS, KERNEL_UART, RAM};
    assert!(GIC_DISTRIBUTOR.base == layout::GICD_BASE as u64);
    assert!(GIC_REDISTRIBUTORS.base == layout::GICR_BASE as u64);
    assert!(KERNEL_UART.base == layout::UART_BASE as u64);
    assert!(RAM.base == layout::RAM_BASE && RAM.size == layout::RAM_SIZE);
};

/// A device region's record, checked before anything is built from it, as the manifest compiler
/// checks it: page aligned, over none of the devices the kernel drives itself (the GIC
/// distributor and redistributors, its UART: a server that could map those could route, mask or
/// forge any interrupt, or write the console under the kernel) nor RAM, and below RAM.
fn check_device_region(name: &str, base: u64, size: u64) {
    let end = base.saturating_add(size);
    if !base.is_multiple_of(PAGE_SIZE) {
        fail(format_args!(
            "region `{name}`: device base {base:#x} is not page aligned"
        ));
    }
    if let Some(window) = abi::platform::kernel_owned(base, end) {
        fail(format_args!(
            "region `{name}`: device region {base:#x}..{end:#x} overlaps {} ({:#x}..{:#x}), \
             which the kernel owns",
            window.name,
            window.base,
            window.end()
        ));
    }
    if end > abi::platform::RAM.base {
        fail(format_args!(
            "region `{name}`: device region {base:#x}..{end:#x} lies above RAM; the kernel \
             maps devices only from below {:#x}",
            abi::platform::RAM.base
        ));
    }
}

/// Builds the whole system. Returns the kernel state, every server ready to run.
pub fn instantiate(memory: &mut BootAllocator) -> Kernel {
    let payload_header = PayloadHeader::parse(PAYLOAD).unwrap_or_else(|error| {
        fail(format_args!(
            "payload rejected ({error:?}); was this kernel built by `cargo xtask build`?"
        ))
    });
    let description = payload_header.description(PAYLOAD);
    let Census { header, slots } = census(description);
    let servers = usize::from(header.servers);

    let vms = usize::from(header.vms);
    let tcbs = memory.array(servers + vms, |_| Tcb::new(1));
    let replies = memory.array(servers + vms, |_| Reply::default());
    let vcpus = memory.array(vms, |_| Current::new_vcpu_state());
    // Each VCPU's virtual counter starts at the physical count of its creation, just now
    // (CNTVOFF_EL2, `Arch::new_vcpu_state`); `cargo xtask bench boot` adds it back to what a
    // guest reads to learn how far from reset the guest got.
    let vm_counter_start = Current::counter_now();
    let guest_spaces = memory.array(vms, |_| None::<GuestVSpace>);
    let vm_names = memory.array(vms, |_| "");
    // Each VM's `mmio_markers` (its manifest's), for its MMIO state below.
    let vm_mmio_markers = memory.array(vms, |_| true);
    let vm_images = memory.array(vms, |_| crate::guest::VmImage {
        segments: &[],
        entry: 0,
        x0: 0,
        ram_base: 0,
        ram: (0, 0),
        region: 0,
        reset_done: 0,
    });
    let endpoints = memory.array(usize::from(header.endpoints), |_| Endpoint::new(None));
    let notifications = memory.array(usize::from(header.notifications), |_| {
        Notification::default()
    });
    let irqs = memory.array(usize::from(header.irqs), |_| IrqLine {
        intid: 0,
        notification: 0,
        badge: 0,
    });
    let slot_pool = memory.array(slots as usize, |_| Cap::Null);
    let server_images = memory.array(servers, |_| None::<ServerImage>);
    let regions = memory.array(usize::from(header.regions), |_| {
        (0u64, 0u64, MemoryKind::Normal)
    });
    let segments = memory.array(header.vm_segments as usize, |_| LoadSegment {
        bytes: &[],
        ipa: 0,
    });
    // Each VM's segments: (first, count) in `segments`.
    let vm_segments = memory.array(vms, |_| (0usize, 0usize));

    let mut reader = RecordReader::new(description);
    let _ = reader.next_record();
    let (mut server_index, mut endpoint_index, mut ntfn_index, mut region_index, mut irq_index) =
        (0, 0, 0, 0, 0);
    let mut slot_base = 0u32;
    let mut vm_index = 0usize;
    let mut segment_index = 0usize;
    // The VM of the previous segment record and where that segment ended.
    let mut previous_segment: Option<(usize, u64)> = None;
    while let Ok(Some(record)) = reader.next_record() {
        match record {
            Record::Header(_) => {}
            Record::Vm(vm) => {
                let id = servers + vm_index;
                let (ram, ram_size, kind) =
                    regions[index(vm.ram_region, regions.len(), "vm ram region")];
                if kind != MemoryKind::Normal {
                    fail(format_args!(
                        "vm `{}`: RAM region {} is a device region",
                        vm.name, vm.ram_region
                    ));
                }
                let window = RamWindow::new(vm.ram_base, ram_size)
                    .and_then(|window| window.check_entry(vm.entry, vm.x0).map(|()| window))
                    .unwrap_or_else(|error| fail(format_args!("vm `{}`: {error:?}", vm.name)));
                let exit_endpoint = index(
                    vm.exit_endpoint,
                    usize::from(header.endpoints),
                    "vm exit endpoint",
                ) as u16;
                if !(1..=254).contains(&vm.priority) {
                    fail(format_args!("vm `{}`: priority {}", vm.name, vm.priority));
                }
                let space = GuestVSpace::new(
                    memory,
                    crate::vspace::FIRST_GUEST_VMID + vm_index as u16,
                    crate::guest::tables_for(ram_size),
                );
                let tcb = &mut tcbs[id];
                tcb.priority = vm.priority;
                tcb.vspace_root = space.vttbr;
                tcb.vcpu = Some(vm_index as u16);
                tcb.fault_handler = Some((exit_endpoint, vm.exit_badge));
                guest_spaces[vm_index] = Some(space);
                vm_names[vm_index] = vm.name;
                vm_mmio_markers[vm_index] = vm.mmio_markers;
                vm_images[vm_index] = crate::guest::VmImage {
                    segments: &[],
                    entry: vm.entry,
                    x0: vm.x0,
                    ram_base: window.base,
                    ram: (ram, ram_size),
                    region: vm.ram_region,
                    reset_done: 0,
                };
                vm_index += 1;
            }
            Record::VmSegment(segment) => {
                // Every `Vm` record came before (the census checked the order).
                let vm = index(segment.vm, vm_index, "vm segment vm");
                let name = vm_names[vm];
                let previous_end = match previous_segment {
                    Some((previous, _)) if previous > vm => fail(format_args!(
                        "vm `{name}`: segment record {segment_index} follows one of a later VM"
                    )),
                    Some((previous, end)) if previous == vm => Some(end),
                    _ => None,
                };
                let bytes = payload_header
                    .image(PAYLOAD, segment.image)
                    .unwrap_or_else(|| {
                        fail(format_args!(
                            "vm `{name}`: segment record {segment_index} ({:?}) outside the \
                             payload",
                            segment.image
                        ))
                    });
                let image = &vm_images[vm];
                let end = RamWindow::new(image.ram_base, image.ram.1)
                    .and_then(|window| {
                        window.check_segment(segment.ipa, bytes.len() as u64, previous_end)
                    })
                    .unwrap_or_else(|error| {
                        fail(format_args!(
                            "vm `{name}`: segment record {segment_index}: {error:?}"
                        ))
                    });
                segments[segment_index] = LoadSegment {
                    bytes,
                    ipa: segment.ipa,
                };
                let (first, count) = &mut vm_segments[vm];
                if *count == 0 {
                    *first = segment_index;
                }
                *count += 1;
                previous_segment = Some((vm, end));
                segment_index += 1;
            }
            Record::Server(server) => {
                let id = server_index;
                server_index += 1;
                let file = payload_header
                    .image(PAYLOAD, server.image)
                    .unwrap_or_else(|| {
                        fail(format_args!(
                            "server `{}`: image outside the payload",
                            server.name
                        ))
                    });
                if !(1..=254).contains(&server.priority) {
                    fail(format_args!(
                        "server `{}`: priority {} outside 1..=254",
                        server.name, server.priority
                    ));
                }
                let stack = u64::from(server.stack_bytes);
                if stack == 0
                    || stack % PAGE_SIZE != 0
                    || stack > STACK_TOP - abi::layout::STACK_LIMIT
                {
                    fail(format_args!(
                        "server `{}`: stack size {stack:#x}",
                        server.name
                    ));
                }
                if u64::from(server.cnode_slots) <= abi::FIRST_FREE_SLOT {
                    fail(format_args!(
                        "server `{}`: CNode of {} slots",
                        server.name, server.cnode_slots
                    ));
                }
                let image = loader::load(
                    memory,
                    server.name,
                    file,
                    id as u16 + 1,
                    stack,
                    u64::from(server.heap_bytes),
                    server.bootinfo,
                );
                let tcb = &mut tcbs[id];
                tcb.priority = server.priority;
                tcb.context = UserContext::new(image.entry(), STACK_TOP);
                tcb.vspace_root = image.vttbr;
                tcb.ipc_buffer = image.ipc_buffer;
                tcb.cnode = SlotRange {
                    base: slot_base,
                    len: u32::from(server.cnode_slots),
                };
                tcb.fault_handler = server.fault_endpoint.map(|ep| {
                    (
                        index(ep, usize::from(header.endpoints), "fault endpoint") as u16,
                        server.fault_badge,
                    )
                });
                slot_pool[slot_base as usize + REPLY_SLOT as usize] =
                    Cap::Reply { reply: id as u16 };
                slot_pool[slot_base as usize + CNODE_SLOT as usize] =
                    Cap::CNode { owner: id as u16 };
                slot_base += u32::from(server.cnode_slots);
                server_images[id] = Some(image);
            }
            Record::Endpoint(endpoint) => {
                let server = endpoint
                    .server
                    .map(|s| index(s, servers, "endpoint server") as u16);
                endpoints[endpoint_index] = Endpoint::new(server);
                endpoint_index += 1;
            }
            Record::Notification(notification) => {
                if let Some(server) = notification.bound {
                    let server = index(server, servers, "notification bound server");
                    if tcbs[server].bound_notification.is_some() {
                        fail(format_args!(
                            "notification `{}`: its server is already bound to another",
                            notification.name
                        ));
                    }
                    tcbs[server].bound_notification = Some(ntfn_index as u16);
                    notifications[ntfn_index].bound = Some(server as u16);
                }
                ntfn_index += 1;
            }
            Record::Region(region) => {
                if region.size == 0 || region.size % PAGE_SIZE != 0 {
                    fail(format_args!(
                        "region `{}`: size {:#x}",
                        region.name, region.size
                    ));
                }
                regions[region_index] = match region.kind {
                    RegionKind::Device { phys_base } => {
                        check_device_region(region.name, phys_base, region.size);
                        (phys_base, region.size, MemoryKind::Device)
                    }
                    RegionKind::Ram => (
                        memory.pages_aligned(region.size / PAGE_SIZE, 2 << 20),
                        region.size,
                        MemoryKind::Normal,
                    ),
                };
                region_index += 1;
            }
            Record::Irq(irq) => {
                if !(16..1020).contains(&irq.intid)
                    || irq.intid == crate::plat::layout::HYP_TIMER_INTID
                {
                    fail(format_args!("irq `{}`: intid {}", irq.name, irq.intid));
                }
                let notification = index(
                    irq.notification,
                    usize::from(header.notifications),
                    "irq notification",
                ) as u16;
                irqs[irq_index] = IrqLine {
                    intid: irq.intid,
                    notification,
                    badge: irq.badge,
                };
                irq_index += 1;
            }
            Record::Cap(cap) => {
                let owner = index(cap.server, servers, "cap server");
                let cnode = tcbs[owner].cnode;
                if u64::from(cap.slot) < abi::FIRST_FREE_SLOT || u32::from(cap.slot) >= cnode.len {
                    fail(format_args!(
                        "cap slot {} outside server {owner}'s CNode",
                        cap.slot
                    ));
                }
                let slot = &mut slot_pool[(cnode.base + u32::from(cap.slot)) as usize];
                if !slot.is_null() {
                    fail(format_args!(
                        "cap slot {} of server {owner} given twice",
                        cap.slot
                    ));
                }
                *slot = match cap.object {
                    CapObject::Endpoint {
                        index: ep,
                        badge,
                        rights,
                    } => Cap::Endpoint {
                        ep: index(ep, endpoints.len(), "endpoint") as u16,
                        badge,
                        rights,
                        generation: 0,
                    },
                    CapObject::Notification {
                        index: n,
                        badge,
                        rights,
                    } => Cap::Notification {
                        ntfn: index(n, notifications.len(), "notification") as u16,
                        badge,
                        rights,
                    },
                    CapObject::Tcb { server } => Cap::Tcb {
                        tcb: index(server, servers, "tcb") as u16,
                    },
                    CapObject::IrqHandler { irq } => Cap::IrqHandler {
                        irq: index(irq, irqs.len(), "irq") as u16,
                    },
                    CapObject::SystemControl => Cap::SystemControl,
                    CapObject::DebugConsole => Cap::DebugConsole,
                    CapObject::DebugLog => Cap::DebugLog,
                    CapObject::DebugInput => Cap::DebugInput,
                    CapObject::GuestTcb { vm } => Cap::Tcb {
                        tcb: (servers + index(vm, vms, "vm")) as u16,
                    },
                    CapObject::Vcpu { vm } => Cap::Vcpu {
                        vcpu: index(vm, vms, "vm") as u16,
                    },
                    CapObject::GuestVSpace { vm } => Cap::VSpace {
                        vspace: index(vm, vms, "vm") as u16,
                    },
                    CapObject::Frame { region, rights } => {
                        let (base, size, kind) =
                            regions[index(region, regions.len(), "frame region")];
                        if kind != MemoryKind::Normal {
                            fail(format_args!("frame capability to device region {region}"));
                        }
                        let pages = ((base >> 12) as u32, (size >> 12) as u32);
                        Cap::Frame(
                            FrameCap::new(region, pages.0, pages.1, false).with_rights(rights),
                        )
                    }
                };
            }
            Record::Mapping(mapping) => {
                let owner = index(mapping.server, servers, "mapping server");
                let (base, size, kind) =
                    regions[index(mapping.region, regions.len(), "mapping region")];
                if mapping.va % PAGE_SIZE != 0
                    || mapping.va < REGION_WINDOW_BASE
                    || mapping.va + size > abi::layout::ADDRESS_SPACE_END
                {
                    fail(format_args!(
                        "mapping at {:#x} outside the region window",
                        mapping.va
                    ));
                }
                let attributes = Attributes {
                    writable: mapping.writable,
                    executable: mapping.executable && kind == MemoryKind::Normal,
                    kind,
                };
                let root = tcbs[owner].vspace_root & 0x0000_FFFF_FFFF_F000;
                loader::map_range(memory, root, mapping.va, base, size / PAGE_SIZE, attributes);
            }
        }
    }
    let _ = ntfn_index;
    if vm_index != vms {
        fail(format_args!("{vm_index} VM records for {vms} VMs"));
    }
    for name in vm_names.iter() {
        crate::kprintln!(
            "kernel: vm `{name}`: virtual counter starts at physical tick {vm_counter_start}"
        );
    }
    // Every segment of every VM is checked: only now is anything copied into guest RAM.
    let segments: &'static [LoadSegment<'static>] = segments;
    for (vm, image) in vm_images.iter_mut().enumerate() {
        let (first, count) = vm_segments[vm];
        image.segments = &segments[first..first + count];
        crate::guest::preload(image);
        tcbs[servers + vm].context = crate::guest::entry_context(image);
    }

    let vspaces = memory.array(vms, |vm| {
        guest_spaces[vm]
            .take()
            .unwrap_or_else(|| fail(format_args!("vm {vm} missing")))
    });
    let vspace_info = memory.array(vms, |vm| kernel_core::memory::VSpaceInfo {
        free_tables: vspaces[vm].free_tables,
    });
    let mut system = System::new(tcbs, endpoints, notifications, replies, slot_pool, irqs);
    system.vspaces = vspace_info;
    // Each VM's MMIO routes and generation (docs/MMIO.md); markers on unless its manifest turns
    // them off (`mmio_markers = false`, the slow-path benchmark).
    system.mmio = memory.array(vms, |vm| {
        kernel_core::mmio::MmioState::new(vm_mmio_markers[vm])
    });
    for (name, &markers) in vm_names.iter().zip(vm_mmio_markers.iter()) {
        if !markers {
            crate::kprintln!(
                "kernel: vm `{name}`: MMIO markers off, every MMIO access exits to the vmm"
            );
        }
    }
    for id in 0..(servers + vms) as u16 {
        system.tcb_mut(id).timeslice_left = 1;
        system.make_runnable(id);
    }
    let images = memory.array(servers, |id| {
        server_images[id]
            .take()
            .unwrap_or_else(|| fail(format_args!("server {id} missing")))
    });
    let mut kernel = Kernel::new(system, images, header.name, u64::from(header.timeslice_us));
    kernel.vcpus = vcpus;
    kernel.vspaces = vspaces;
    kernel.vm_names = vm_names;
    kernel.vm_images = vm_images;
    kernel
}
