//! Unit tests of `[vms.<name>] devices`: the endpoint each device server gets and the vmm's
//! client capability of it, the mapping of the VM's RAM into the device server, the boot info
//! the vmm and the device servers read (windows, INTIDs, endpoint names, the RAM window), the
//! device tree's `virtio_mmio` nodes, and the refusals that need a whole manifest.

use super::{F, caps, decode, ep, fake_elf, plan};
use crate::Manifest;
use abi::Rights;
use bootdesc::bootinfo::{self, DeviceInfo, DeviceKind};
use bootdesc::{Mapping, Record};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A Linux VM with a block device and a console, each with its own server; `blk` is a server of
/// the manifest's own (the physical driver) that `vblk` is a client of.
const VIRTIO: &str = r#"
[system]
name = "virtio"

[servers.boss]
binary = "supervisor"
priority = 200
supervisor = true

[servers.vmm]
binary = "vmm"
priority = 120

[servers.blk]
binary = "drv-virtio-blk-driver"
priority = 130

[servers.vblk]
binary = "drv-virtio-blk-server"
priority = 140

[servers.vcon]
binary = "drv-virtio-console-server"
priority = 140

[endpoints.blk]
server = "blk"
clients = ["vblk"]

[regions.blk-data]
kind = "ram"
size = 0x10000
map = [
    { server = "blk", at = 0x4020_0000, rights = "rw" },
    { server = "vblk", at = 0x40_0000_0000, rights = "rw" },
]

[vms.linux]
kernel = "target/guest/linux/Image"
vmm = "vmm"
mmu = "boss"
memory = "boss"
priority = 80
ram_size = 0x1000_0000
devices = [{ kind = "virtio-blk", server = "vblk" }, { kind = "virtio-console", server = "vcon" }]
"#;

fn load(text: &str) -> Manifest {
    Manifest::from_str(text, "virtio.toml").unwrap_or_else(|e| panic!("{e}\n{}", e.render(text)))
}

fn refusal(text: &str) -> String {
    match Manifest::from_str(text, "virtio.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(error) => error.to_string(),
    }
}

/// The devices a server's boot info lists.
fn devices_of(blob: &[u8]) -> Vec<DeviceInfo<'_>> {
    let mut devices = Vec::new();
    bootinfo::for_each_device(blob, |device| {
        devices.push(device);
        true
    })
    .unwrap_or_else(|| panic!("the blob does not decode"));
    devices
}

/// The (name, ram_base, ram_size) of each VM a server's boot info lists.
fn vms_of(blob: &[u8]) -> Vec<(String, u64, u64)> {
    let mut vms = Vec::new();
    bootinfo::for_each_vm(blob, |vm| {
        vms.push((vm.name.to_string(), vm.ram_base, vm.ram_size));
        true
    })
    .unwrap_or_else(|| panic!("the blob does not decode"));
    vms
}

#[test]
fn each_device_server_serves_an_endpoint_named_after_it_that_the_vmm_calls() {
    let plan = plan(VIRTIO);
    let names: Vec<&str> = plan.endpoints.iter().map(|(n, _)| n.as_str()).collect();
    // The manifest's, `faults`, the exit endpoint, then the devices' in transport order.
    assert_eq!(names, ["blk", "faults", "exits:linux", "vblk", "vcon"]);
    assert_eq!(plan.endpoints[3].1, Some(3), "served by vblk");
    assert_eq!(plan.endpoints[4].1, Some(4), "served by vcon");
    // vblk: its own endpoint first (served), then its client cap of the physical driver, then
    // its own doorbell (READ).
    let wait = |index| bootdesc::CapObject::Notification {
        index,
        badge: 0,
        rights: Rights::READ,
    };
    assert_eq!(
        caps(&plan, "vblk"),
        [
            ("vblk".to_string(), F, ep(3, 0, Rights::READ)),
            ("blk".to_string(), F + 1, ep(0, 4, Rights::WRITE)),
            ("doorbell:vblk".to_string(), F + 2, wait(0)),
        ]
    );
    assert_eq!(
        caps(&plan, "vcon"),
        [
            ("vcon".to_string(), F, ep(4, 0, Rights::READ)),
            ("doorbell:vcon".to_string(), F + 1, wait(1)),
        ]
    );
    // The vmm (server 1): its exit endpoint, then a client cap of each device endpoint with
    // its own badge (index + 1), then its VM capabilities.
    let vmm = caps(&plan, "vmm");
    assert_eq!(vmm[0].0, "exits:linux");
    assert_eq!(
        vmm[1..3],
        [
            ("vblk".to_string(), F + 1, ep(3, 2, Rights::WRITE)),
            ("vcon".to_string(), F + 2, ep(4, 2, Rights::WRITE)),
        ]
    );
}

#[test]
fn each_device_server_maps_the_vms_ram_at_its_guest_physical_address() {
    let plan = plan(VIRTIO);
    let ram_region = plan.vms[0].ram_region;
    assert_eq!(plan.regions[usize::from(ram_region)].name, "ram:linux");
    let ram_mappings: Vec<&Mapping> = plan
        .mappings
        .iter()
        .filter(|m| m.region == ram_region)
        .collect();
    let mapping = |server| Mapping {
        server,
        region: ram_region,
        va: 0x4000_0000,
        writable: true,
        executable: false,
    };
    assert_eq!(ram_mappings, [&mapping(3), &mapping(4)]);
    // Nobody else maps it (the memory server holds it as frames, not as a mapping); the other
    // mappings are blk-data's two and the three state pages.
    assert_eq!(plan.mappings.len(), 7);
}

#[test]
fn each_device_server_and_the_vmm_have_a_state_page_of_their_own_at_the_top_of_their_space() {
    let plan = plan(VIRTIO);
    let states: Vec<_> = plan
        .regions
        .iter()
        .enumerate()
        .filter(|(_, r)| r.name.starts_with("state:"))
        .map(|(i, r)| (i, r.name.clone(), r.kind, r.size))
        .collect();
    // After the manifest's region and ram:linux, in device order, then the VM's vmm.
    assert_eq!(
        states,
        [
            (2, "state:vblk".to_string(), bootdesc::RegionKind::Ram, 4096),
            (3, "state:vcon".to_string(), bootdesc::RegionKind::Ram, 4096),
            (4, "state:vmm".to_string(), bootdesc::RegionKind::Ram, 4096)
        ]
    );
    for (region, server) in [(2, 3), (3, 4), (4, 1)] {
        let maps: Vec<_> = plan
            .mappings
            .iter()
            .filter(|m| m.region == region)
            .collect();
        assert_eq!(
            maps,
            [&Mapping {
                server,
                region,
                va: abi::layout::STATE_PAGE_VA,
                writable: true,
                executable: false,
            }],
            "mapped once, into its own server"
        );
    }
    let over = VIRTIO.replace("at = 0x40_0000_0000", "at = 0x7f_ffff_0000");
    assert!(
        refusal(&over).contains("outside the region window 0x40000000..0x7ffffff000"),
        "{}",
        refusal(&over)
    );
}

#[test]
fn boot_info_gives_the_vmm_every_device_and_each_server_its_own_with_the_ram() {
    let plan = plan(VIRTIO);
    let blobs = crate::payload::bootinfo_blobs(&plan).unwrap_or_else(|e| panic!("{e}"));
    let blk = DeviceInfo {
        vm: 0,
        kind: DeviceKind::VirtioBlk,
        base: 0x0A00_0000,
        size: 0x200,
        intid: 48,
        endpoint: "vblk",
    };
    let console = DeviceInfo {
        vm: 0,
        kind: DeviceKind::VirtioConsole,
        base: 0x0A00_1000,
        size: 0x200,
        intid: 49,
        endpoint: "vcon",
    };
    assert_eq!(devices_of(&blobs[1]), [blk.clone(), console.clone()]);
    assert_eq!(devices_of(&blobs[3]), [blk]);
    assert_eq!(devices_of(&blobs[4]), [console]);
    assert_eq!(devices_of(&blobs[2]), [], "the physical driver has none");
    assert_eq!(devices_of(&blobs[0]), [], "nor the supervisor");
    let ram = vec![("linux".to_string(), 0x4000_0000, 0x1000_0000)];
    assert_eq!(vms_of(&blobs[3]), ram, "vblk learns the RAM window");
    assert_eq!(vms_of(&blobs[4]), ram);
    assert_eq!(vms_of(&blobs[2]), [], "blk serves no VM");
    // The device server finds its endpoint by its own name, the vmm its client caps by the
    // names the devices carry.
    assert_eq!(bootinfo::find_cap(&blobs[3], "vblk"), Some(F));
    assert_eq!(bootinfo::find_cap(&blobs[1], "vcon"), Some(F + 2));
}

#[test]
fn the_device_tree_has_a_virtio_mmio_node_per_device_in_transport_order() {
    let manifest = load(VIRTIO);
    let mut kernel = vec![0u8; 4096];
    kernel[0x10..0x18].copy_from_slice(&(8u64 << 20).to_le_bytes());
    kernel[0x18..0x20].copy_from_slice(&0xau64.to_le_bytes());
    kernel[0x38..0x3c].copy_from_slice(&0x644d_5241u32.to_le_bytes());
    let files = BTreeMap::from([(PathBuf::from("target/guest/linux/Image"), kernel)]);
    let images: BTreeMap<String, Vec<u8>> = manifest
        .binaries()
        .into_iter()
        .map(|(name, _)| (name, fake_elf(1, 100)))
        .collect();
    let payload = manifest
        .payload_with_files(&images, &files)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let (header, records) = decode(&payload);
    let tree = records
        .iter()
        .filter_map(|record| match record {
            Record::VmSegment(segment) => header.image(&payload, segment.image),
            _ => None,
        })
        .find(|bytes| bytes.starts_with(&0xd00d_feedu32.to_be_bytes()))
        .unwrap_or_else(|| panic!("no device tree"));
    let parsed = fdt::Fdt::new(tree).unwrap_or_else(|e| panic!("{e:?}"));
    let cells = |path: &str, property: &str| -> Vec<u32> {
        let node = parsed
            .find_node(path)
            .unwrap_or_else(|| panic!("no {path}"));
        let value = node
            .property(property)
            .unwrap_or_else(|| panic!("no {path} {property}"))
            .value;
        value
            .chunks(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    // <base hi lo, size hi lo>; <GIC_SPI, spi, edge-rising>.
    assert_eq!(
        cells("/virtio_mmio@a000000", "reg"),
        [0, 0x0A00_0000, 0, 0x200]
    );
    assert_eq!(cells("/virtio_mmio@a000000", "interrupts"), [0, 16, 1]);
    // One page apart (devices::TRANSPORT_STRIDE), each 0x200 long.
    assert_eq!(
        cells("/virtio_mmio@a001000", "reg"),
        [0, 0x0A00_1000, 0, 0x200]
    );
    assert_eq!(cells("/virtio_mmio@a001000", "interrupts"), [0, 17, 1]);
    assert!(parsed.find_node("/virtio_mmio@a000200").is_none());
    assert!(parsed.find_node("/virtio_mmio@a002000").is_none());
    assert!(
        parsed.find_node("/pl011@9000000").is_some(),
        "the PL011 stays"
    );
}

#[test]
fn a_vm_without_devices_is_as_before() {
    let text = VIRTIO.replace(
        "devices = [{ kind = \"virtio-blk\", server = \"vblk\" }, { kind = \"virtio-console\", server = \"vcon\" }]\n",
        "",
    );
    let plan = plan(&text);
    assert_eq!(plan.endpoints.len(), 3);
    assert!(plan.vms[0].devices.is_empty());
    let blobs = crate::payload::bootinfo_blobs(&plan).unwrap_or_else(|e| panic!("{e}"));
    assert!(blobs.iter().all(|blob| devices_of(blob).is_empty()));
    assert!(vms_of(&blobs[3]).is_empty(), "vblk serves no VM now");
}

#[test]
fn thirty_two_devices_fit_and_the_last_is_transport_31() {
    let mut text = String::from(
        "[system]\nname = \"many\"\n\n[servers.boss]\nbinary = \"supervisor\"\npriority = 200\n\
         supervisor = true\n\n[servers.vmm]\nbinary = \"vmm\"\npriority = 120\n",
    );
    let mut list = Vec::new();
    for n in 0..32 {
        text += &format!(
            "\n[servers.dev{n}]\nbinary = \"drv-virtio-console-server\"\npriority = 100\n"
        );
        list.push(format!(
            "{{ kind = \"virtio-console\", server = \"dev{n}\" }}"
        ));
    }
    text += &format!(
        "\n[vms.guest]\nimage = \"test-guest\"\nvmm = \"vmm\"\nmmu = \"boss\"\nmemory = \"boss\"\n\
         priority = 80\nram_size = 0x400_0000\ndevices = [{}]\n",
        list.join(", ")
    );
    let plan = plan(&text);
    let last = &plan.vms[0].devices[31];
    assert_eq!((last.base, last.spi), (0x0A01_F000, 47));
    let blobs = crate::payload::bootinfo_blobs(&plan).unwrap_or_else(|e| panic!("{e}"));
    let vmm = devices_of(&blobs[1]);
    assert_eq!(vmm.len(), 32);
    assert_eq!((vmm[31].intid, vmm[31].endpoint), (79, "dev31"));
    // One more is refused at the 33rd element.
    let more = text.replace(
        "server = \"dev31\" }]",
        "server = \"dev31\" }, { kind = \"virtio-blk\", server = \"vmm\" }]",
    );
    let error = refusal(&more);
    assert!(
        error.contains("vms.guest.devices[32]: vm `guest` has 33 devices; a VM has at most 32"),
        "{error}"
    );
}

#[test]
fn a_device_server_may_not_be_a_vms_other_server_or_clash_with_a_name() {
    let mmu = VIRTIO.replace("mmu = \"boss\"", "mmu = \"vcon\"");
    assert!(
        refusal(&mmu)
            .contains("vms.linux.devices[1].server: server `vcon` is the `mmu` of vm `linux`"),
        "{}",
        refusal(&mmu)
    );
    let supervisor = VIRTIO.replace("server = \"vcon\"", "server = \"boss\"");
    assert!(
        refusal(&supervisor).contains("server `boss` is the supervisor"),
        "{}",
        refusal(&supervisor)
    );
    let notification = format!("{VIRTIO}\n[notifications.vcon]\nwaiter = \"vmm\"\n");
    assert!(
        refusal(&notification).contains(
            "the compiler names the endpoint of device server `vcon` after it, and there is \
             already a notification `vcon`"
        ),
        "{}",
        refusal(&notification)
    );
}

#[test]
fn the_ram_must_fit_the_device_servers_region_window_and_mappings() {
    let low = VIRTIO.replace(
        "ram_size = 0x1000_0000",
        "ram_size = 0x1000_0000\nram_base = 0x2000_0000",
    );
    assert!(
        refusal(&low).contains(
            "device server `vblk` maps vm `linux`'s RAM at its guest-physical address \
             0x20000000..0x30000000, outside a device server's region window"
        ),
        "{}",
        refusal(&low)
    );
    let overlap = VIRTIO.replace("at = 0x40_0000_0000", "at = 0x4fff_0000");
    assert!(
        refusal(&overlap).contains(
            "device server `vblk` maps vm `linux`'s RAM at 0x40000000..0x50000000, which \
             overlaps its mapping of region `blk-data` at 0x4fff0000..0x50000000"
        ),
        "{}",
        refusal(&overlap)
    );
}

#[test]
fn each_device_has_a_doorbell_bound_to_its_server_that_the_vmm_signals() {
    let plan = plan(VIRTIO);
    let doorbells: Vec<_> = plan.notifications.to_vec();
    // No manifest notification: the two doorbells, bound to vblk (3) and vcon (4).
    assert_eq!(
        doorbells,
        [
            ("doorbell:vblk".to_string(), Some(3)),
            ("doorbell:vcon".to_string(), Some(4))
        ]
    );
    let vmm: Vec<_> = caps(&plan, "vmm")
        .into_iter()
        .map(|(name, _, object)| (name, object))
        .collect();
    let signal = |index| bootdesc::CapObject::Notification {
        index,
        badge: 1,
        rights: Rights::WRITE,
    };
    assert!(
        vmm.contains(&("doorbell:vblk".to_string(), signal(0))),
        "{vmm:?}"
    );
    assert!(
        vmm.contains(&("doorbell:vcon".to_string(), signal(1))),
        "{vmm:?}"
    );
    let names = |server: &str| -> Vec<String> {
        caps(&plan, server)
            .into_iter()
            .map(|(name, ..)| name)
            .collect()
    };
    let own: Vec<_> = caps(&plan, "vblk")
        .into_iter()
        .filter(|(name, ..)| name.starts_with("doorbell:"))
        .map(|(name, _, object)| (name, object))
        .collect();
    assert_eq!(
        own,
        [(
            "doorbell:vblk".to_string(),
            bootdesc::CapObject::Notification {
                index: 0,
                badge: 0,
                rights: Rights::READ
            }
        )],
        "its own doorbell, to wait on (and bind console input to), and no other"
    );
    assert!(
        !names("vblk").contains(&"vmm-events".to_string()),
        "no vmm-events: the vmm waits on none"
    );
}

#[test]
fn device_servers_signal_the_vmms_events_unless_the_manifest_says_so_already() {
    let with_events = format!(
        "{VIRTIO}\n[notifications.vmm-events]\nwaiter = \"vmm\"\nbind = true\nsignallers = [\"vcon\"]\n"
    );
    let plan = plan(&with_events);
    assert_eq!(plan.notifications[0], ("vmm-events".to_string(), Some(1)));
    assert_eq!(plan.notifications[1].0, "doorbell:vblk");
    let events = |server: &str| {
        caps(&plan, server)
            .into_iter()
            .filter(|(name, ..)| name == "vmm-events")
            .count()
    };
    assert_eq!(events("vblk"), 1, "added by the compiler");
    let vblk_events = caps(&plan, "vblk")
        .into_iter()
        .find(|(name, ..)| name == "vmm-events")
        .map(|(_, _, object)| object);
    assert_eq!(
        vblk_events,
        Some(bootdesc::CapObject::Notification {
            index: 0,
            badge: abi::vm::device_event_badge(0),
            rights: Rights::WRITE,
        }),
        "transport 0's badge, bit 1: the vmm tells the devices' signals apart"
    );
    assert_eq!(events("vcon"), 1, "listed by the manifest, not added twice");
    assert_eq!(events("blk"), 0, "not a device server");
    let bound = with_events.replace("waiter = \"vmm\"", "waiter = \"vblk\"");
    let error = refusal(&bound);
    assert!(
        error.contains("server `vblk` is bound to notification `vmm-events`"),
        "{error}"
    );
}
