//! From a [`Plan`] and the servers' and guests' ELF images to the boot payload the kernel reads.
//!
//! Encodes one boot-info blob per server ([`bootdesc::bootinfo::encode`]), then the record
//! stream in the order `bootdesc` requires — `Header`, `Server`s, `Endpoint`s (the manifest's,
//! `faults`, then one `exits:<vm>` per VM), `Notification`s, `Region`s (the manifest's, then one
//! `ram:<vm>` per VM), `Irq`s, `Cap`s (grouped by server, in slot order), `Mapping`s (in region
//! order), `Vm`s, then each VM's `VmSegment`s in VM order — and hands it with the images, the
//! servers' in server order then the guests' in VM order, to [`bootdesc::build_payload`].
//!
//! Every guest becomes segments here, so the kernel parses no guest format: an ELF guest's
//! `PT_LOAD` file bytes (sub-ranges of its ELF, checked by the kernel's own ELF reader against
//! the VM's RAM; the bytes past a segment's file size are zero because guest RAM starts zeroed
//! and a reset zeroes it), or a Linux guest's Image, initrd and device tree (`linux.rs`).

use crate::compile::{GuestPlan, Plan, VmPlan};
use anyhow::{Context, bail};
use bootdesc::bootinfo::{self, BootInfoHeader, CapName, DeviceInfo, SupervisedServer, VmInfo};
use bootdesc::{
    Cap, CapObject, Endpoint, FORMAT_VERSION, Header, ImageRef, Irq, Notification, Record, Region,
    Server, Vm, VmSegment,
};
use kernel_core::elf::{self, ElfError};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The first bytes of every ELF file.
const ELF_MAGIC: &[u8] = b"\x7fELF";

/// Encodes the boot-info blob of every server, in server order.
pub(crate) fn bootinfo_blobs(plan: &Plan) -> anyhow::Result<Vec<Vec<u8>>> {
    plan.servers
        .iter()
        .enumerate()
        .map(|(id, server)| {
            let caps: Vec<CapName<'_>> = server
                .caps
                .iter()
                .map(|cap| CapName {
                    name: &cap.name,
                    slot: cap.slot,
                })
                .collect();
            let supervised: Vec<SupervisedServer<'_>> = server
                .supervised
                .iter()
                .map(|s| SupervisedServer {
                    name: &s.name,
                    fault_badge: s.fault_badge,
                    tcb_slot: s.tcb_slot,
                    restart: s.restart,
                })
                .collect();
            // The VMs this server holds a capability of (`exits:`, `tcb:`, `vcpu:`, `vspace:` or
            // `ram:` + the VM's name) or serves a device of: their RAM layout.
            let serves_device = |vm: &VmPlan| {
                vm.devices
                    .iter()
                    .any(|device| usize::from(device.server) == id)
            };
            let vms: Vec<VmInfo<'_>> = plan
                .vms
                .iter()
                .enumerate()
                .filter(|(_, vm)| {
                    serves_device(vm)
                        || server.caps.iter().any(|cap| {
                            cap.name
                                .split_once(':')
                                .is_some_and(|(_, owner)| owner == vm.name)
                        })
                })
                .map(|(index, vm)| VmInfo {
                    name: &vm.name,
                    index: index as u16,
                    ram_base: vm.ram_base,
                    ram_size: plan.regions[usize::from(vm.ram_region)].size,
                    mmu_badge: mmu_badge(plan, id, &vm.name),
                    resets: vm.resets,
                    dirty_log_windows: vm.dirty_log_windows,
                })
                .collect();
            // Every device of the VM a vmm serves (it receives the VM's exits); a device
            // server's own.
            let mut devices: Vec<DeviceInfo<'_>> = Vec::new();
            for (index, vm) in plan.vms.iter().enumerate() {
                let is_vmm =
                    plan.endpoints[usize::from(vm.exit_endpoint)].1 == u16::try_from(id).ok();
                for device in &vm.devices {
                    if is_vmm || usize::from(device.server) == id {
                        devices.push(DeviceInfo {
                            vm: u16::try_from(index)?,
                            kind: device.kind,
                            base: device.base,
                            size: crate::fdt::VIRTIO_MMIO_SIZE,
                            intid: 32 + device.spi,
                            endpoint: &plan.endpoints[usize::from(device.endpoint)].0,
                        });
                    }
                }
            }
            let header = BootInfoHeader {
                server_id: u16::try_from(id)?,
                name: &server.name,
                caps: 0,
                heap_bytes: server.heap_bytes,
                supervised: 0,
                vms: 0,
                devices: 0,
            };
            bootinfo::encode_with_devices(&header, &caps, &supervised, &vms, &devices)
                .with_context(|| format!("encoding the boot info of server `{}`", server.name))
        })
        .collect()
}

/// The badge the calls of `vm`'s mmu-server (the holder of `vspace:<vm>`) carry at an endpoint
/// `server` serves, if it is a client of one.
fn mmu_badge(plan: &Plan, server: usize, vm: &str) -> Option<u64> {
    let vspace = format!("vspace:{vm}");
    let mmu = plan
        .servers
        .iter()
        .find(|s| s.caps.iter().any(|cap| cap.name == vspace))?;
    mmu.caps.iter().find_map(|cap| match cap.object {
        CapObject::Endpoint {
            index,
            badge,
            rights,
        } if rights.contains(abi::Rights::WRITE)
            && plan.endpoints.get(usize::from(index)).and_then(|e| e.1)
                == u16::try_from(server).ok() =>
        {
            Some(badge)
        }
        _ => None,
    })
}

/// Checks that `image` is there and is an ELF file. For messages: `what` is its owner
/// ("server `ping`"), `key` the manifest key naming its cargo package and `package` its value.
fn elf<'a>(
    image: Option<&'a Vec<u8>>,
    what: &str,
    (key, package): (&str, &str),
) -> anyhow::Result<&'a [u8]> {
    let image = image.with_context(|| format!("no image for {what} ({key} `{package}`)"))?;
    if !image.starts_with(ELF_MAGIC) {
        bail!("the image of {what} ({key} `{package}`) is not an ELF file");
    }
    Ok(image)
}

/// A guest made ready for the payload: the images it appends and its segments within them.
struct GuestLoad<'a> {
    images: Vec<Cow<'a, [u8]>>,
    /// (index into `images`, offset in it, length, guest-physical address), ascending by
    /// address.
    segments: Vec<(usize, u64, u64, u64)>,
    entry: u64,
    x0: u64,
}

/// What is wrong with an ELF guest, in words.
fn elf_refusal(error: ElfError, ram: (u64, u64)) -> String {
    match error {
        ElfError::NotAarch64Executable => "is not a little-endian ELF64 AArch64 executable".into(),
        ElfError::Truncated => "is truncated: a header or a segment reaches past its end".into(),
        ElfError::FileLargerThanMemory => {
            "has a segment whose file size exceeds its memory size".into()
        }
        ElfError::OutsideWindow => format!(
            "has a segment outside the VM's RAM ({:#x}..{:#x})",
            ram.0, ram.1
        ),
        ElfError::Overlap => "has two segments that share a page".into(),
        ElfError::TooManySegments => {
            format!("has more than {} loadable segments", elf::MAX_SEGMENTS)
        }
        ElfError::BadEntry => "has its entry point outside its executable segments".into(),
    }
}

/// An ELF guest: its `PT_LOAD` segments' file bytes, in address order.
fn elf_guest<'a>(
    vm: &VmPlan,
    package: &str,
    ram_size: u64,
    image: &'a [u8],
) -> anyhow::Result<GuestLoad<'a>> {
    let ram = (vm.ram_base, vm.ram_base + ram_size);
    let parsed = elf::parse(image, ram.0, ram.1).map_err(|error| {
        anyhow::anyhow!(
            "the image of vm `{}` (image `{package}`) {}",
            vm.name,
            elf_refusal(error, ram)
        )
    })?;
    let segments = parsed
        .segments()
        .iter()
        .filter(|segment| segment.filesz > 0)
        .map(|segment| (0, segment.offset, segment.filesz, segment.vaddr))
        .collect();
    Ok(GuestLoad {
        images: vec![Cow::Borrowed(image)],
        segments,
        entry: parsed.entry,
        x0: 0,
    })
}

/// Builds the payload; `images` maps every server name and every ELF guest's VM name to its ELF
/// bytes, `files` every path of [`crate::Manifest::guest_files`] to the file's bytes.
pub(crate) fn build(
    plan: &Plan,
    images: &BTreeMap<String, Vec<u8>>,
    files: &BTreeMap<PathBuf, Vec<u8>>,
) -> anyhow::Result<Vec<u8>> {
    let known = |name: &String| {
        plan.servers.iter().any(|s| &s.name == name)
            || plan
                .vms
                .iter()
                .any(|v| &v.name == name && matches!(v.guest, GuestPlan::Elf(_)))
    };
    if let Some(extra) = images.keys().find(|name| !known(name)) {
        bail!(
            "an image was given for `{extra}`, which is neither a server nor an ELF guest's vm \
             of system `{}`",
            plan.name
        );
    }
    let mut ordered: Vec<Cow<'_, [u8]>> = Vec::new();
    for server in &plan.servers {
        let what = format!("server `{}`", server.name);
        ordered.push(Cow::Borrowed(elf(
            images.get(&server.name),
            &what,
            ("binary", &server.binary),
        )?));
    }
    let mut guests = Vec::new();
    for vm in &plan.vms {
        let ram_size = plan.regions[usize::from(vm.ram_region)].size;
        let guest = match &vm.guest {
            GuestPlan::Elf(package) => {
                let what = format!("vm `{}`", vm.name);
                let image = elf(images.get(&vm.name), &what, ("image", package))?;
                elf_guest(vm, package, ram_size, image)?
            }
            GuestPlan::Linux(linux) => {
                let load = crate::linux::prepare(vm, linux, ram_size, files)?;
                let segments = (load.images.iter().zip(&load.ipas).enumerate())
                    .map(|(index, (image, &ipa))| (index, 0, image.len() as u64, ipa))
                    .collect();
                GuestLoad {
                    images: load.images,
                    segments,
                    entry: load.entry,
                    x0: load.x0,
                }
            }
        };
        // Where this guest's images start among all images.
        let first_image = ordered.len();
        ordered.extend(guest.images.iter().cloned());
        guests.push((first_image, guest));
    }
    let total: usize = ordered
        .iter()
        .map(|image| image.len().next_multiple_of(bootdesc::IMAGE_ALIGN))
        .sum();
    if u32::try_from(total).is_err() {
        bail!("the images together are {total} bytes, more than a payload can address");
    }
    let ordered: Vec<&[u8]> = ordered.iter().map(|image| &image[..]).collect();
    let refs = bootdesc::image_refs(&ordered);
    let blobs = bootinfo_blobs(plan)?;
    let caps: Vec<Cap> = plan
        .servers
        .iter()
        .enumerate()
        .flat_map(|(s, server)| {
            server.caps.iter().map(move |cap| Cap {
                server: s as u16,
                slot: cap.slot,
                object: cap.object,
            })
        })
        .collect();

    let mut records = vec![Record::Header(Header {
        version: FORMAT_VERSION,
        name: &plan.name,
        servers: u16::try_from(plan.servers.len())?,
        endpoints: u16::try_from(plan.endpoints.len())?,
        notifications: u16::try_from(plan.notifications.len())?,
        regions: u16::try_from(plan.regions.len())?,
        irqs: u16::try_from(plan.irqs.len())?,
        caps: u32::try_from(caps.len())?,
        mappings: u32::try_from(plan.mappings.len())?,
        vms: u16::try_from(plan.vms.len())?,
        vm_segments: u32::try_from(guests.iter().map(|(_, g)| g.segments.len()).sum::<usize>())?,
        timeslice_us: plan.timeslice_us,
        test_system: plan.test_system,
    })];
    for ((server, &image), blob) in plan.servers.iter().zip(&refs).zip(&blobs) {
        records.push(Record::Server(Server {
            name: &server.name,
            image,
            priority: server.priority,
            stack_bytes: server.stack_bytes,
            heap_bytes: server.heap_bytes,
            cnode_slots: server.cnode_slots,
            restart: server.restart,
            role: server.role,
            fault_endpoint: server.fault_endpoint,
            fault_badge: server.fault_badge,
            inject_fault: server.inject_fault,
            bootinfo: blob,
        }));
    }
    for (name, server) in &plan.endpoints {
        records.push(Record::Endpoint(Endpoint {
            name,
            server: *server,
        }));
    }
    for (name, bound) in &plan.notifications {
        records.push(Record::Notification(Notification {
            name,
            bound: *bound,
        }));
    }
    for region in &plan.regions {
        records.push(Record::Region(Region {
            name: &region.name,
            kind: region.kind,
            size: region.size,
        }));
    }
    for irq in &plan.irqs {
        records.push(Record::Irq(Irq {
            name: &irq.name,
            intid: irq.intid,
            notification: irq.notification,
            badge: irq.badge,
        }));
    }
    records.extend(caps.into_iter().map(Record::Cap));
    records.extend(plan.mappings.iter().copied().map(Record::Mapping));
    for (vm, (_, guest)) in plan.vms.iter().zip(&guests) {
        records.push(Record::Vm(Vm {
            name: &vm.name,
            ram_base: vm.ram_base,
            ram_region: vm.ram_region,
            priority: vm.priority,
            exit_endpoint: vm.exit_endpoint,
            exit_badge: vm.exit_badge,
            entry: guest.entry,
            x0: guest.x0,
            mmio_markers: vm.mmio_markers,
        }));
    }
    for (vm_index, (first_image, guest)) in guests.iter().enumerate() {
        for &(image, offset, len, ipa) in &guest.segments {
            let whole = refs[first_image + image];
            // Inside an image of a payload whose size fits a u32 (checked above).
            let image = ImageRef {
                offset: whole.offset + u32::try_from(offset)?,
                len: u32::try_from(len)?,
            };
            records.push(Record::VmSegment(VmSegment {
                vm: u16::try_from(vm_index)?,
                image,
                ipa,
            }));
        }
    }
    bootdesc::build_payload(&records, &ordered).context("encoding the boot description")
}
