//! Instantiating the system from the boot description: every thread, CNode, endpoint,
//! notification, region, interrupt and capability the manifest named.
//!
//! Validate first, then build (docs/ARCHITECTURE.md, "Boot errors"): `kernel_core::boot_check`
//! reads the whole description twice, with no side effect but scratch memory it gives back, and
//! refuses it naming the record; only then is anything built, in a pass whose one remaining
//! refusal is running out of RAM. A refusal prints `kernel: boot error: <record> <n>: <what>`
//! and stops the machine with [`STATUS_BOOT_ERROR`]: nothing half-valid runs, and nothing in a
//! payload makes the kernel panic.

use crate::arch::{Arch, Current};
use crate::boot_alloc::BootAllocator;
use crate::loader::{self, ServerImage};
use crate::state::Kernel;
use crate::vspace::GuestVSpace;
use abi::layout::{PAGE_SIZE, STACK_TOP};
use abi::{CNODE_SLOT, REPLY_SLOT};
use bootdesc::{CapObject, Record, RecordReader, RegionKind};
use kernel_core::boot_check::{
    self, At, BootError, Census, Kind, MappedRange, RegionFacts, Scratch, ServerFacts, VmFacts,
    Why, reference,
};
use kernel_core::cap::{Cap, FrameCap};
use kernel_core::endpoint::{Endpoint, Reply};
use kernel_core::guest_load::LoadSegment;
use kernel_core::notification::{IrqLine, Notification};
use kernel_core::stage2::{Attributes, MemoryKind};
use kernel_core::system::System;
use kernel_core::tcb::{SlotRange, Tcb, UserContext};

/// The boot payload, produced by `cargo xtask build` from a manifest.
static PAYLOAD: &[u8] = include_bytes!(env!("HV_BOOT_PAYLOAD"));

/// The exit status when the kernel refuses its boot description (0xB0: "boot"); a test of a
/// hand-made payload expects it (tests/qemu-tests.toml, `boot-error-kernel-irq`).
pub const STATUS_BOOT_ERROR: u64 = 0xB0;

// The kernel drives the GIC and the UART at these addresses, and takes these interrupts;
// `abi::platform` and `kernel_core::boot_check`, which the boot checks and the manifest compiler
// read, must name the same.
const _: () = {
    use crate::plat::layout;
    use abi::platform::{GIC_DISTRIBUTOR, GIC_REDISTRIBUTORS, KERNEL_UART, RAM};
    assert!(GIC_DISTRIBUTOR.base == layout::GICD_BASE as u64);
    assert!(GIC_REDISTRIBUTORS.base == layout::GICR_BASE as u64);
    assert!(KERNEL_UART.base == layout::UART_BASE as u64);
    assert!(RAM.base == layout::RAM_BASE && RAM.size == layout::RAM_SIZE);
    assert!(layout::HYP_TIMER_INTID == boot_check::HYP_TIMER_INTID);
    assert!(layout::UART_INTID == boot_check::CONSOLE_UART_INTID);
    assert!(layout::GUEST_TIMER_INTID == kernel_core::vgic::VTIMER_INTID);
};

/// Builds the whole system. Returns the kernel state, every server ready to run; on a boot
/// error, says which record was refused and why, and stops the machine.
pub fn instantiate(memory: &mut BootAllocator) -> Kernel {
    match validate(memory).and_then(|census| build(memory, &census)) {
        Ok(kernel) => kernel,
        Err(error) => {
            crate::kprintln!("kernel: boot error: {error}");
            Current::system_off(STATUS_BOOT_ERROR)
        }
    }
}

/// Both boot checks, in scratch memory taken back afterwards.
fn validate(memory: &mut BootAllocator) -> Result<Census<'static>, BootError> {
    let census = boot_check::census(PAYLOAD)?;
    let lengths = census.scratch_lengths();
    memory.with_scratch(|arena| {
        // The scratch is sized by the header's counts: the header asked for it.
        let header = |why| BootError::new(At::HEADER, why);
        let scratch = Scratch {
            servers: arena
                .array(lengths.servers, ServerFacts::default())
                .map_err(header)?,
            regions: arena
                .array(lengths.regions, RegionFacts::default())
                .map_err(header)?,
            vms: arena
                .array(lengths.vms, VmFacts::default())
                .map_err(header)?,
            slots: arena.array(lengths.slot_words, 0u64).map_err(header)?,
            mappings: arena
                .array(lengths.mappings, MappedRange::default())
                .map_err(header)?,
        };
        boot_check::check(&census, PAYLOAD, scratch)
    })?;
    Ok(census)
}

/// What refuses record `index` of `kind`.
fn at(kind: Kind, index: usize) -> impl Fn(Why) -> BootError {
    move |why| BootError::new(At::of(kind, index as u32), why)
}

/// Builds everything the checked description names. The checks accepted every field and index,
/// so what can refuse a record here is the allocator (and, kept typed rather than trusted, an
/// index or image the checks would have refused).
fn build(memory: &mut BootAllocator, census: &Census<'static>) -> Result<Kernel, BootError> {
    let Census {
        payload: payload_header,
        description,
        ref header,
        slots,
    } = *census;
    let servers = usize::from(header.servers);
    // The pools are sized by the header's counts.
    let pool = at(Kind::Header, 0);

    let vms = usize::from(header.vms);
    let tcbs = memory
        .array(servers + vms, |_| Tcb::new(1))
        .map_err(&pool)?;
    let replies = memory
        .array(servers + vms, |_| Reply::default())
        .map_err(&pool)?;
    let vcpus = memory
        .array(vms, |_| Current::new_vcpu_state())
        .map_err(&pool)?;
    // Each VCPU's virtual counter starts at the physical count of its creation, just now
    // (CNTVOFF_EL2, `Arch::new_vcpu_state`); `cargo xtask bench boot` adds it back to what a
    // guest reads to learn how far from reset the guest got.
    let vm_counter_start = Current::counter_now();
    let guest_spaces = memory.array(vms, |_| None::<GuestVSpace>).map_err(&pool)?;
    let vm_names = memory.array(vms, |_| "").map_err(&pool)?;
    // Each VM's `mmio_markers` (its manifest's), for its MMIO state below.
    let vm_mmio_markers = memory.array(vms, |_| true).map_err(&pool)?;
    let vm_images = memory
        .array(vms, |_| crate::guest::VmImage {
            segments: &[],
            entry: 0,
            x0: 0,
            ram_base: 0,
            ram: (0, 0),
            region: 0,
            reset_done: 0,
        })
        .map_err(&pool)?;
    let endpoints = memory
        .array(usize::from(header.endpoints), |_| Endpoint::new(None))
        .map_err(&pool)?;
    let notifications = memory
        .array(usize::from(header.notifications), |_| {
            Notification::default()
        })
        .map_err(&pool)?;
    let irqs = memory
        .array(usize::from(header.irqs), |_| IrqLine {
            intid: 0,
            notification: 0,
            badge: 0,
        })
        .map_err(&pool)?;
    let slot_pool = memory.array(slots as usize, |_| Cap::Null).map_err(&pool)?;
    let server_images = memory
        .array(servers, |_| None::<ServerImage>)
        .map_err(&pool)?;
    let regions = memory
        .array(usize::from(header.regions), |_| {
            (0u64, 0u64, MemoryKind::Normal)
        })
        .map_err(&pool)?;
    let segments = memory
        .array(header.vm_segments as usize, |_| LoadSegment {
            bytes: &[],
            ipa: 0,
        })
        .map_err(&pool)?;
    // Each VM's segments: (first, count) in `segments`.
    let vm_segments = memory.array(vms, |_| (0usize, 0usize)).map_err(&pool)?;

    let mut reader = RecordReader::new(description);
    let _ = reader.next_record();
    let (mut server_index, mut endpoint_index, mut ntfn_index, mut region_index, mut irq_index) =
        (0, 0, 0, 0, 0);
    let (mut cap_index, mut mapping_index) = (0, 0);
    let mut slot_base = 0u32;
    let mut vm_index = 0usize;
    let mut segment_index = 0usize;
    // The census counted every record, so each kind's counter stays below its pool's length.
    while let Ok(Some(record)) = reader.next_record() {
        match record {
            Record::Header(_) => {}
            Record::Vm(vm) => {
                let refuse = at(Kind::Vm, vm_index);
                let id = servers + vm_index;
                let region =
                    reference(Kind::Region, vm.ram_region, regions.len()).map_err(&refuse)?;
                let (ram, ram_size, _) = regions[region];
                let space = GuestVSpace::new(
                    memory,
                    crate::vspace::FIRST_GUEST_VMID + vm_index as u16,
                    crate::guest::tables_for(ram_size),
                )
                .map_err(&refuse)?;
                let exit_endpoint = reference(Kind::Endpoint, vm.exit_endpoint, endpoints.len())
                    .map_err(&refuse)? as u16;
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
                    ram_base: vm.ram_base,
                    ram: (ram, ram_size),
                    region: vm.ram_region,
                    reset_done: 0,
                };
                vm_index += 1;
            }
            Record::VmSegment(segment) => {
                // Each lies inside its VM's RAM, grouped by VM and ascending (the checks).
                let refuse = at(Kind::VmSegment, segment_index);
                let vm = reference(Kind::Vm, segment.vm, vm_index).map_err(&refuse)?;
                let bytes = payload_header
                    .image(PAYLOAD, segment.image)
                    .ok_or(Why::ImageOutsidePayload {
                        offset: segment.image.offset,
                        len: segment.image.len,
                    })
                    .map_err(&refuse)?;
                segments[segment_index] = LoadSegment {
                    bytes,
                    ipa: segment.ipa,
                };
                let (first, count) = &mut vm_segments[vm];
                if *count == 0 {
                    *first = segment_index;
                }
                *count += 1;
                segment_index += 1;
            }
            Record::Server(server) => {
                let id = server_index;
                server_index += 1;
                let refuse = at(Kind::Server, id);
                let file = payload_header
                    .image(PAYLOAD, server.image)
                    .ok_or(Why::ImageOutsidePayload {
                        offset: server.image.offset,
                        len: server.image.len,
                    })
                    .map_err(&refuse)?;
                let stack = u64::from(server.stack_bytes);
                let image = loader::load(
                    memory,
                    server.name,
                    file,
                    id as u16 + 1,
                    stack,
                    u64::from(server.heap_bytes),
                    server.bootinfo,
                )
                .map_err(&refuse)?;
                let fault_handler = match server.fault_endpoint {
                    Some(endpoint) => Some((
                        reference(Kind::Endpoint, endpoint, usize::from(header.endpoints))
                            .map_err(&refuse)? as u16,
                        server.fault_badge,
                    )),
                    None => None,
                };
                let tcb = &mut tcbs[id];
                tcb.priority = server.priority;
                tcb.context = UserContext::new(image.entry(), STACK_TOP);
                tcb.vspace_root = image.vttbr;
                tcb.ipc_buffer = image.ipc_buffer;
                tcb.cnode = SlotRange {
                    base: slot_base,
                    len: u32::from(server.cnode_slots),
                };
                tcb.fault_handler = fault_handler;
                tcb.injection = server.inject_fault.map(|plan| kernel_core::tcb::Injection {
                    at: plan.at.to_abi(),
                    count: plan.count,
                    seen: 0,
                });
                // The CNode has more slots than the fixed ones (the checks).
                slot_pool[slot_base as usize + REPLY_SLOT as usize] =
                    Cap::Reply { reply: id as u16 };
                slot_pool[slot_base as usize + CNODE_SLOT as usize] =
                    Cap::CNode { owner: id as u16 };
                slot_base += u32::from(server.cnode_slots);
                server_images[id] = Some(image);
            }
            Record::Endpoint(endpoint) => {
                let server = match endpoint.server {
                    Some(server) => Some(
                        reference(Kind::Server, server, servers)
                            .map_err(at(Kind::Endpoint, endpoint_index))?
                            as u16,
                    ),
                    None => None,
                };
                endpoints[endpoint_index] = Endpoint::new(server);
                endpoint_index += 1;
            }
            Record::Notification(notification) => {
                if let Some(server) = notification.bound {
                    // The checks refused a server bound twice.
                    let server = reference(Kind::Server, server, servers)
                        .map_err(at(Kind::Notification, ntfn_index))?;
                    tcbs[server].bound_notification = Some(ntfn_index as u16);
                    notifications[ntfn_index].bound = Some(server as u16);
                }
                ntfn_index += 1;
            }
            Record::Region(region) => {
                regions[region_index] = match region.kind {
                    RegionKind::Device { phys_base } => {
                        (phys_base, region.size, MemoryKind::Device)
                    }
                    RegionKind::Ram => (
                        memory
                            .pages_aligned(region.size / PAGE_SIZE, 2 << 20)
                            .map_err(at(Kind::Region, region_index))?,
                        region.size,
                        MemoryKind::Normal,
                    ),
                };
                region_index += 1;
            }
            Record::Irq(irq) => {
                let notification =
                    reference(Kind::Notification, irq.notification, notifications.len())
                        .map_err(at(Kind::Irq, irq_index))? as u16;
                irqs[irq_index] = IrqLine {
                    intid: irq.intid,
                    notification,
                    badge: irq.badge,
                };
                irq_index += 1;
            }
            Record::Cap(cap) => {
                let refuse = at(Kind::Cap, cap_index);
                cap_index += 1;
                let object = cap_object(
                    cap.object,
                    &Pools {
                        servers,
                        vms,
                        endpoints: endpoints.len(),
                        notifications: notifications.len(),
                        irqs: irqs.len(),
                        regions,
                    },
                )
                .map_err(&refuse)?;
                // The slot is a free one of the server's CNode, given once (the checks).
                let owner = reference(Kind::Server, cap.server, servers).map_err(&refuse)?;
                let cnode = tcbs[owner].cnode;
                let slot = slot_pool
                    .get_mut((cnode.base + u32::from(cap.slot)) as usize)
                    .ok_or(Why::CapSlot {
                        slot: cap.slot,
                        slots: cnode.len as u16,
                    })
                    .map_err(&refuse)?;
                *slot = object;
            }
            Record::Mapping(mapping) => {
                let refuse = at(Kind::Mapping, mapping_index);
                mapping_index += 1;
                let owner = reference(Kind::Server, mapping.server, servers).map_err(&refuse)?;
                let region =
                    reference(Kind::Region, mapping.region, regions.len()).map_err(&refuse)?;
                let (base, size, kind) = regions[region];
                let attributes = Attributes {
                    writable: mapping.writable,
                    executable: mapping.executable && kind == MemoryKind::Normal,
                    kind,
                };
                let root = tcbs[owner].vspace_root & 0x0000_FFFF_FFFF_F000;
                loader::map_range(memory, root, mapping.va, base, size / PAGE_SIZE, attributes)
                    .map_err(&refuse)?;
            }
        }
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

    // The census counted one record of each VM and server, so each was built above.
    let vspaces = memory
        .try_array(vms, |vm| {
            guest_spaces[vm].take().ok_or(Why::Count {
                kind: Kind::Vm,
                header: vms as u64,
                found: vm as u64,
            })
        })
        .map_err(&pool)?;
    let vspace_info = memory
        .array(vms, |vm| kernel_core::memory::VSpaceInfo {
            free_tables: vspaces[vm].free_tables,
        })
        .map_err(&pool)?;
    let mut system = System::new(tcbs, endpoints, notifications, replies, slot_pool, irqs);
    system.vspaces = vspace_info;
    // Each VM's MMIO routes and generation (docs/MMIO.md); markers on unless its manifest turns
    // them off (`mmio_markers = false`, the slow-path benchmark).
    system.mmio = memory
        .array(vms, |vm| {
            kernel_core::mmio::MmioState::new(vm_mmio_markers[vm])
        })
        .map_err(&pool)?;
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
    let images = memory
        .try_array(servers, |id| {
            server_images[id].take().ok_or(Why::Count {
                kind: Kind::Server,
                header: servers as u64,
                found: id as u64,
            })
        })
        .map_err(&pool)?;
    let mut kernel = Kernel::new(system, images, header.name, u64::from(header.timeslice_us));
    kernel.vcpus = vcpus;
    kernel.vspaces = vspaces;
    kernel.vm_names = vm_names;
    kernel.vm_images = vm_images;
    Ok(kernel)
}

/// How many objects of each kind the system has, for a capability's object.
struct Pools<'r> {
    servers: usize,
    vms: usize,
    endpoints: usize,
    notifications: usize,
    irqs: usize,
    regions: &'r [(u64, u64, MemoryKind)],
}

/// The capability a cap record's object becomes.
fn cap_object(object: CapObject, pools: &Pools<'_>) -> Result<Cap, Why> {
    Ok(match object {
        CapObject::Endpoint {
            index,
            badge,
            rights,
        } => Cap::Endpoint {
            ep: reference(Kind::Endpoint, index, pools.endpoints)? as u16,
            badge,
            rights,
            generation: 0,
        },
        CapObject::Notification {
            index,
            badge,
            rights,
        } => Cap::Notification {
            ntfn: reference(Kind::Notification, index, pools.notifications)? as u16,
            badge,
            rights,
        },
        CapObject::Tcb { server } => Cap::Tcb {
            tcb: reference(Kind::Server, server, pools.servers)? as u16,
        },
        CapObject::IrqHandler { irq } => Cap::IrqHandler {
            irq: reference(Kind::Irq, irq, pools.irqs)? as u16,
        },
        CapObject::SystemControl => Cap::SystemControl,
        CapObject::DebugConsole => Cap::DebugConsole,
        CapObject::DebugLog => Cap::DebugLog,
        CapObject::DebugInput => Cap::DebugInput,
        CapObject::GuestTcb { vm } => Cap::Tcb {
            tcb: (pools.servers + reference(Kind::Vm, vm, pools.vms)?) as u16,
        },
        CapObject::Vcpu { vm } => Cap::Vcpu {
            vcpu: reference(Kind::Vm, vm, pools.vms)? as u16,
        },
        CapObject::GuestVSpace { vm } => Cap::VSpace {
            vspace: reference(Kind::Vm, vm, pools.vms)? as u16,
        },
        CapObject::Frame { region, rights } => {
            // A RAM region (the checks refused a device region's frames).
            let (base, size, _) =
                pools.regions[reference(Kind::Region, region, pools.regions.len())?];
            let pages = ((base >> 12) as u32, (size >> 12) as u32);
            Cap::Frame(FrameCap::new(region, pages.0, pages.1, false).with_rights(rights))
        }
    })
}
