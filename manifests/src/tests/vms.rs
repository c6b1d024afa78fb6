//! Unit tests of virtual machines: the exit endpoints and RAM regions the compiler adds, each
//! VM's capabilities and their names and slots, the `Vm` records' indices, a payload round trip
//! with guest images turned into load segments, and file-order determinism.

use super::{F, caps, decode, ep, fake_elf, guest_elf, plan};
use crate::Manifest;
use crate::compile::{GuestPlan, Plan, VmPlan};
use abi::Rights;
use bootdesc::{CapObject, Record, RegionKind, Vm, VmSegment, bootinfo};
use std::collections::BTreeMap;

/// Two VMs on one mmu, each with its own vmm (a vmm serves one VM); the second VM's RAM is held
/// by its vmm. The supervisor is first so the fault endpoint and the exit endpoints have
/// distinct servers; the second vmm is last so the others keep their indices.
const VIRT: &str = r#"
[system]
name = "virt"

[servers.boss]
binary = "supervisor"
priority = 200
supervisor = true

[servers.vmm]
binary = "vmm"
priority = 120

[servers.mmu]
binary = "mmu"
priority = 130

[servers.memory]
binary = "memory"
priority = 140

[servers.vmm2]
binary = "vmm"
priority = 120

[endpoints.map]
server = "mmu"
clients = ["vmm"]

[regions.uart]
kind = "device"
base = 0x0904_0000
size = 0x1000
map = [{ server = "vmm", at = 0x4000_0000, rights = "rw" }]

[vms.guest]
image = "test-guest"
vmm = "vmm"
mmu = "mmu"
memory = "memory"
priority = 80
ram_size = 0x400_0000

[vms.second]
image = "other-guest"
vmm = "vmm2"
mmu = "mmu"
memory = "vmm2"
priority = 70
ram_base = 0x8000_0000
ram_size = 0x20_0000
"#;

/// The `ram:<vm>` frame range over region `region`: guest RAM, read, write and execute.
fn ram(region: u16) -> CapObject {
    CapObject::Frame {
        region,
        rights: Rights::READ.union(Rights::WRITE).union(Rights::EXECUTE),
    }
}

/// The guest ELF of the VM whose RAM starts at `ram_base`: code at 512 KiB into RAM (where the
/// test guest links), data with a bss after it; `tag` tells the guests' bytes apart.
fn guest_at(ram_base: u64, tag: u8) -> Vec<u8> {
    let code = vec![tag; 0x123];
    let data = vec![tag ^ 0xff; 0x45];
    guest_elf(ram_base + 0x8_0000, &code, &data, 0x1000)
}

/// A fake ELF for every server, each of a different length, and a real guest ELF inside each
/// VM's RAM.
fn all_images(manifest: &Manifest) -> BTreeMap<String, Vec<u8>> {
    let servers = manifest.binaries().into_iter().enumerate();
    let mut images: BTreeMap<String, Vec<u8>> = servers
        .map(|(i, (name, _))| (name, fake_elf(i as u8 + 1, 300 + 4500 * i)))
        .collect();
    for (i, vm) in manifest.plan.vms.iter().enumerate() {
        images.insert(vm.name.clone(), guest_at(vm.ram_base, 0x10 + i as u8));
    }
    images
}

#[test]
fn exit_endpoints_follow_the_fault_endpoint_and_ram_regions_the_manifest_regions() {
    let plan = plan(VIRT);
    let endpoints: Vec<_> = plan
        .endpoints
        .iter()
        .map(|(n, s)| (n.as_str(), *s))
        .collect();
    assert_eq!(
        endpoints,
        [
            ("map", Some(2)),
            ("faults", Some(0)),
            ("exits:guest", Some(1)),
            ("exits:second", Some(4)),
        ]
    );
    let regions: Vec<_> = plan
        .regions
        .iter()
        .map(|r| (r.name.as_str(), r.kind, r.size))
        .collect();
    assert_eq!(
        regions,
        [
            (
                "uart",
                RegionKind::Device {
                    phys_base: 0x0904_0000
                },
                0x1000
            ),
            ("ram:guest", RegionKind::Ram, 0x400_0000),
            ("ram:second", RegionKind::Ram, 0x20_0000),
            // Each vmm's state page (docs/VMM.md, "Restart").
            ("state:vmm", RegionKind::Ram, 0x1000),
            ("state:vmm2", RegionKind::Ram, 0x1000),
        ]
    );
    // The fault endpoint keeps its index: VMs renumber nothing.
    assert!(
        plan.servers[1..]
            .iter()
            .all(|s| s.fault_endpoint == Some(1))
    );
    // RAM regions are never mapped into a server; the state pages are, each into its vmm at
    // the top of its address space.
    let mapped: Vec<_> = plan
        .mappings
        .iter()
        .map(|m| (m.server, m.region, m.va, m.writable))
        .collect();
    let (vmm, vmm2) = (1, 4);
    let top = abi::layout::STATE_PAGE_VA;
    assert_eq!(mapped[1..], [(vmm, 3, top, true), (vmm2, 4, top, true)]);
    assert_eq!(mapped[0].1, 0);
}

#[test]
fn vm_caps_come_after_the_existing_groups_in_vm_order() {
    let plan = plan(VIRT);
    assert_eq!(
        caps(&plan, "vmm"),
        [
            ("exits:guest".into(), F, ep(2, 0, Rights::READ)),
            ("map".into(), F + 1, ep(0, 2, Rights::WRITE)),
            ("tcb:guest".into(), F + 2, CapObject::GuestTcb { vm: 0 }),
            ("vcpu:guest".into(), F + 3, CapObject::Vcpu { vm: 0 }),
        ]
    );
    assert_eq!(
        caps(&plan, "vmm2"),
        [
            ("exits:second".into(), F, ep(3, 0, Rights::READ)),
            ("tcb:second".into(), F + 1, CapObject::GuestTcb { vm: 1 }),
            ("vcpu:second".into(), F + 2, CapObject::Vcpu { vm: 1 }),
            ("ram:second".into(), F + 3, ram(2)),
        ]
    );
    assert_eq!(
        caps(&plan, "mmu"),
        [
            ("map".into(), F, ep(0, 0, Rights::READ)),
            (
                "vspace:guest".into(),
                F + 1,
                CapObject::GuestVSpace { vm: 0 }
            ),
            (
                "vspace:second".into(),
                F + 2,
                CapObject::GuestVSpace { vm: 1 }
            ),
        ]
    );
    assert_eq!(caps(&plan, "memory"), [("ram:guest".into(), F, ram(1))]);
    // The supervisor gets TCBs of servers only, never of VCPUs.
    let boss: Vec<_> = caps(&plan, "boss").into_iter().map(|c| c.0).collect();
    assert_eq!(
        boss,
        ["faults", "tcb:vmm", "tcb:mmu", "tcb:memory", "tcb:vmm2"]
    );
    let slots = |name: &str| {
        plan.servers
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.cnode_slots)
    };
    assert_eq!(slots("vmm"), Some(F + 4 + crate::SPARE_SLOTS));
    assert_eq!(slots("vmm2"), Some(F + 4 + crate::SPARE_SLOTS));
}

#[test]
fn vm_records_name_their_ram_region_exit_endpoint_and_badge() {
    let plan = plan(VIRT);
    let vm =
        |name: &str, image: &str, ram_base, ram_region, priority, exit_endpoint, badge| VmPlan {
            name: name.into(),
            guest: GuestPlan::Elf(image.into()),
            ram_base,
            ram_region,
            priority,
            exit_endpoint,
            exit_badge: badge,
            resets: 0,
            devices: Vec::new(),
            mmio_markers: true,
            dirty_log_windows: 4,
        };
    assert_eq!(
        plan.vms,
        [
            vm("guest", "test-guest", 0x4000_0000, 1, 80, 2, 1),
            vm("second", "other-guest", 0x8000_0000, 2, 70, 3, 2),
        ]
    );
    let manifest = Manifest::from_str(VIRT, "virt.toml").unwrap_or_else(|e| panic!("{e}"));
    let guests = manifest.guests();
    assert_eq!(
        guests,
        [
            ("guest".to_string(), "test-guest".to_string()),
            ("second".to_string(), "other-guest".to_string())
        ]
    );
}

#[test]
fn bootinfo_blobs_name_the_vm_caps() {
    let plan = plan(VIRT);
    let blobs = crate::payload::bootinfo_blobs(&plan).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bootinfo::find_cap(&blobs[1], "exits:guest"), Some(F));
    assert_eq!(bootinfo::find_cap(&blobs[1], "vcpu:second"), None);
    assert_eq!(bootinfo::find_cap(&blobs[4], "vcpu:second"), Some(F + 2));
    assert_eq!(bootinfo::find_cap(&blobs[2], "vspace:guest"), Some(F + 1));
    assert_eq!(bootinfo::find_cap(&blobs[3], "ram:guest"), Some(F));
    assert_eq!(bootinfo::find_cap(&blobs[3], "ram:second"), None);
    for (blob, server) in blobs.iter().zip(&plan.servers) {
        for cap in &server.caps {
            assert_eq!(
                bootinfo::find_cap(blob, &cap.name),
                Some(cap.slot),
                "{}",
                cap.name
            );
        }
    }
}

#[test]
fn a_test_systems_reset_loop_reaches_the_vms_servers_boot_info() {
    let resets_of = |text: &str| {
        let plan = plan(text);
        let blobs = crate::payload::bootinfo_blobs(&plan).unwrap_or_else(|e| panic!("{e}"));
        let mut resets = Vec::new();
        // Servers in order: boss, vmm, mmu, memory, vmm2.
        bootinfo::for_each_vm(&blobs[1], |vm| {
            resets.push((vm.name.to_string(), vm.resets));
            true
        });
        resets
    };
    assert_eq!(resets_of(VIRT), [("guest".to_string(), 0)]);
    let looping = VIRT
        .replace("name = \"virt\"", "name = \"virt\"\ntest = true")
        .replace("priority = 80\n", "priority = 80\nresets = 8\n");
    assert_eq!(resets_of(&looping), [("guest".to_string(), 8)]);
}

#[test]
fn the_dirty_log_window_count_reaches_the_mmu_servers_boot_info() {
    let windows_of = |text: &str| {
        let plan = plan(text);
        let blobs = crate::payload::bootinfo_blobs(&plan).unwrap_or_else(|e| panic!("{e}"));
        let mut windows = Vec::new();
        // Servers in order: boss, vmm, mmu, memory, vmm2.
        bootinfo::for_each_vm(&blobs[2], |vm| {
            windows.push((vm.name.to_string(), vm.dirty_log_windows));
            true
        });
        windows
    };
    assert_eq!(windows_of(VIRT)[0], ("guest".to_string(), 4), "the default");
    for n in [0, 1, 16] {
        let text = VIRT.replace(
            "priority = 80\n",
            &format!("priority = 80\ndirty_log_windows = {n}\n"),
        );
        assert_eq!(windows_of(&text)[0], ("guest".to_string(), n));
    }
    for n in [17, 65536] {
        let text = VIRT.replace(
            "priority = 80\n",
            &format!("priority = 80\ndirty_log_windows = {n}\n"),
        );
        let error = Manifest::from_str(&text, "virt.toml")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!(
                "vms.guest.dirty_log_windows: dirty_log_windows {n} is more than an mmu-server \
                 holds for its VM (16)"
            )),
            "{error}"
        );
    }
}

#[test]
fn the_memory_server_learns_the_badge_of_each_vms_mmu_server() {
    // VIRT's mmu calls nobody; with a `memory` endpoint it calls the memory server, whose boot
    // info then names the mmu's badge for the VM it backs (and nobody else's).
    let text =
        format!("{VIRT}\n[endpoints.memory]\nserver = \"memory\"\nclients = [\"mmu\", \"vmm\"]\n");
    let blobs_of = |text: &str| {
        let plan = plan(text);
        let blobs = crate::payload::bootinfo_blobs(&plan).unwrap_or_else(|e| panic!("{e}"));
        let badges = |blob: &[u8]| {
            let mut badges = Vec::new();
            bootinfo::for_each_vm(blob, |vm| {
                badges.push((vm.name.to_string(), vm.mmu_badge));
                true
            });
            badges
        };
        blobs.iter().map(|blob| badges(blob)).collect::<Vec<_>>()
    };
    let none = blobs_of(VIRT);
    assert_eq!(
        none[3],
        [("guest".to_string(), None)],
        "memory: no mmu calls it"
    );
    let with = blobs_of(&text);
    // Servers in order: boss, vmm, mmu (index 2, default badge 3), memory.
    assert_eq!(with[3], [("guest".to_string(), Some(3))]);
    assert_eq!(
        with[1][0].1, None,
        "the vmm serves no endpoint the mmu calls"
    );
}

#[test]
fn mmio_markers_are_on_by_default_and_each_vms_flag_reaches_its_record() {
    let flags = |text: &str| {
        let manifest = Manifest::from_str(text, "virt.toml").unwrap_or_else(|e| panic!("{e}"));
        let payload = manifest
            .payload(&all_images(&manifest))
            .unwrap_or_else(|e| panic!("{e:#}"));
        let (_, records) = decode(&payload);
        records
            .iter()
            .filter_map(|record| match record {
                Record::Vm(vm) => Some((vm.name.to_string(), vm.mmio_markers)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let named = |guest: bool, second: bool| {
        vec![("guest".to_string(), guest), ("second".to_string(), second)]
    };
    assert_eq!(flags(VIRT), named(true, true));
    // Off for the second VM only: the flag is per VM, not per system.
    let second_off = VIRT.replace("priority = 70\n", "priority = 70\nmmio_markers = false\n");
    assert_eq!(flags(&second_off), named(true, false));
    let first_off_second_on = VIRT
        .replace("priority = 80\n", "priority = 80\nmmio_markers = false\n")
        .replace("priority = 70\n", "priority = 70\nmmio_markers = true\n");
    assert_eq!(flags(&first_off_second_on), named(false, true));
}

#[test]
fn payload_round_trips_vm_records_and_guest_images_as_segments() {
    let manifest = Manifest::from_str(VIRT, "virt.toml").unwrap_or_else(|e| panic!("{e}"));
    let images = all_images(&manifest);
    let payload = manifest
        .payload(&images)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let (payload_header, records) = decode(&payload);
    let Some(Record::Header(header)) = records.first() else {
        panic!("no header first")
    };
    let counts = (header.servers, header.endpoints, header.regions, header.vms);
    assert_eq!(counts, (5, 4, 5, 2));
    assert_eq!((header.caps, header.mappings), (17, 3));
    // Two segments per guest (code and data; the bss is no segment: RAM starts zeroed).
    assert_eq!(header.vm_segments, 4);
    // The Vm records follow the Mappings; the VmSegment records close the stream.
    let n = records.len();
    assert!(matches!(records[n - 7], Record::Mapping(_)));
    let vms: Vec<&Vm<'_>> = records[n - 6..n - 4]
        .iter()
        .filter_map(|r| match r {
            Record::Vm(vm) => Some(vm),
            _ => None,
        })
        .collect();
    assert_eq!(vms.len(), 2);
    let segments: Vec<&VmSegment> = records[n - 4..]
        .iter()
        .filter_map(|r| match r {
            Record::VmSegment(segment) => Some(segment),
            _ => None,
        })
        .collect();
    assert_eq!(segments.len(), 4);
    let fields: Vec<_> = vms
        .iter()
        .map(|v| {
            let f = (
                v.ram_base,
                v.ram_region,
                v.priority,
                v.exit_endpoint,
                v.exit_badge,
            );
            (v.name, f, v.entry, v.x0)
        })
        .collect();
    assert_eq!(
        fields,
        [
            ("guest", (0x4000_0000, 1, 80, 2, 1), 0x4008_0000, 0),
            ("second", (0x8000_0000, 2, 70, 3, 2), 0x8008_0000, 0),
        ]
    );
    let server_ends: Vec<u32> = records
        .iter()
        .filter_map(|r| match r {
            Record::Server(s) => Some(s.image.offset + s.image.len),
            _ => None,
        })
        .collect();
    // Each guest's segments, in VM order: its code then its data, the ELF's own bytes at the
    // addresses it was linked for.
    for (vm_index, vm) in vms.iter().enumerate() {
        let tag = 0x10 + vm_index as u8;
        let mine: Vec<_> = segments
            .iter()
            .filter(|s| usize::from(s.vm) == vm_index)
            .collect();
        let loaded: Vec<(u64, Vec<u8>)> = mine
            .iter()
            .map(|s| {
                let bytes = payload_header.image(&payload, s.image);
                (s.ipa, bytes.unwrap_or_else(|| panic!("outside")).to_vec())
            })
            .collect();
        assert_eq!(
            loaded,
            [
                (vm.ram_base + 0x8_0000, vec![tag; 0x123]),
                (vm.ram_base + 0x9_0000, vec![tag ^ 0xff; 0x45]),
            ],
            "{}",
            vm.name
        );
        // Segments name bytes of the guest ELF itself, after every server image.
        assert!(
            mine.iter()
                .all(|s| server_ends.iter().all(|&end| end <= s.image.offset))
        );
    }
    // Every index a record holds points at a record of the right kind.
    let endpoint_names: Vec<&str> = records
        .iter()
        .filter_map(|r| match r {
            Record::Endpoint(e) => Some(e.name),
            _ => None,
        })
        .collect();
    let region_names: Vec<&str> = records
        .iter()
        .filter_map(|r| match r {
            Record::Region(r) => Some(r.name),
            _ => None,
        })
        .collect();
    for vm in &vms {
        let exits = format!("exits:{}", vm.name);
        let ram = format!("ram:{}", vm.name);
        assert_eq!(endpoint_names[usize::from(vm.exit_endpoint)], exits);
        assert_eq!(region_names[usize::from(vm.ram_region)], ram);
    }
}

#[test]
fn payload_needs_every_guest_image_and_only_known_names() {
    let manifest = Manifest::from_str(VIRT, "virt.toml").unwrap_or_else(|e| panic!("{e}"));
    let good = all_images(&manifest);
    let error = |images: &BTreeMap<String, Vec<u8>>| match manifest.payload(images) {
        Ok(_) => panic!("payload accepted"),
        Err(error) => error.to_string(),
    };
    let mut missing = good.clone();
    missing.remove("second");
    assert_eq!(
        error(&missing),
        "no image for vm `second` (image `other-guest`)"
    );
    let mut not_elf = good.clone();
    not_elf.insert("guest".into(), b"MZ".to_vec());
    assert_eq!(
        error(&not_elf),
        "the image of vm `guest` (image `test-guest`) is not an ELF file"
    );
    // The kernel's ELF reader checks guests at compile time, against the VM's own RAM.
    let mut elsewhere = good.clone();
    elsewhere.insert("second".into(), guest_at(0x4000_0000, 1));
    assert_eq!(
        error(&elsewhere),
        "the image of vm `second` (image `other-guest`) has a segment outside the VM's RAM \
         (0x80000000..0x80200000)"
    );
    let mut x86 = good.clone();
    let mut image = guest_at(0x4000_0000, 1);
    image[18] = 62; // EM_X86_64
    x86.insert("guest".into(), image);
    assert_eq!(
        error(&x86),
        "the image of vm `guest` (image `test-guest`) is not a little-endian ELF64 AArch64 \
         executable"
    );
    let mut foreign = good;
    foreign.insert("test-guest".into(), fake_elf(9, 10));
    assert_eq!(
        error(&foreign),
        "an image was given for `test-guest`, which is neither a server nor an ELF guest's vm of \
         system `virt`"
    );
}

#[test]
fn vm_index_is_file_order_however_tables_interleave() {
    let text = r#"
[system]
name = "order"
[vms.zeta]
image = "z"
vmm = "boss"
mmu = "boss"
memory = "boss"
priority = 9
ram_size = 0x20_0000
[servers.boss]
binary = "b"
priority = 2
supervisor = true
[vms]
alpha = { image = "a", vmm = "watch", mmu = "boss", memory = "boss", priority = 8, ram_size = 0x40_0000 }
[servers.watch]
binary = "w"
priority = 3
"#;
    let manifest = Manifest::from_str(text, "order.toml").unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<_> = manifest.guests().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["zeta", "alpha"]);
    let plan: &Plan = &manifest.plan;
    let indices: Vec<_> = plan
        .vms
        .iter()
        .map(|v| (v.exit_endpoint, v.ram_region, v.exit_badge))
        .collect();
    assert_eq!(indices, [(1, 0, 1), (2, 1, 2)]);
    let boss: Vec<_> = caps(plan, "boss").into_iter().map(|c| c.0).collect();
    assert_eq!(
        boss,
        [
            "faults",
            "exits:zeta",
            "tcb:watch",
            "tcb:zeta",
            "vcpu:zeta",
            "vspace:zeta",
            "ram:zeta",
            "vspace:alpha",
            "ram:alpha",
        ]
    );
    let watch: Vec<_> = caps(plan, "watch").into_iter().map(|c| c.0).collect();
    assert_eq!(watch, ["exits:alpha", "tcb:alpha", "vcpu:alpha"]);
    // Loading twice gives the same plan and the same payload bytes.
    let again = Manifest::from_str(text, "order.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again, manifest);
    let images = all_images(&manifest);
    let payload = |m: &Manifest| m.payload(&images).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(payload(&again), payload(&manifest));
}

#[test]
fn ram_window_edges_are_accepted() {
    let base = "[system]\nname = \"edge\"\n[servers.boss]\nbinary = \"b\"\npriority = 1\n\
                supervisor = true\n[vms.g]\nimage = \"g\"\nvmm = \"boss\"\nmmu = \"boss\"\n\
                memory = \"boss\"\npriority = 254\n";
    let cases = [
        ("ram_size = 0x20_0000\nram_base = 0\n", 0, 0x20_0000),
        // RAM ending at the top of the guest physical address space; 768 MiB, which the
        // machine has room for (a 1 GiB VM would not fit beside the kernel: `budget.rs`).
        (
            "ram_size = 0x3000_0000\nram_base = 0x7f_d000_0000\n",
            0x7f_d000_0000,
            0x3000_0000,
        ),
        ("ram_size = 0x3000_0000\n", 0x4000_0000, 0x3000_0000),
    ];
    for (extra, ram_base, ram_size) in cases {
        let text = format!("{base}{extra}");
        let plan = plan(&text);
        assert_eq!(plan.vms[0].ram_base, ram_base, "{extra}");
        assert_eq!(plan.regions[0].size, ram_size, "{extra}");
    }
}
