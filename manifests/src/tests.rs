//! Unit tests of compilation: indices, slot order, rights, badges, fault wiring, boot-info blobs
//! and a full payload round trip through `bootdesc`'s own decoders.

use crate::Manifest;
use crate::compile::{CapPlan, Plan};
use abi::Rights;
use bootdesc::bootinfo;
use bootdesc::{
    CapObject, Mapping, PayloadHeader, Record, RecordReader, RegionKind, RestartPolicy, ServerRole,
};
use std::collections::BTreeMap;

mod debug;
mod device_clients;
mod devices;
mod frames;
mod linux;
mod vms;

/// Uses every feature; the supervisor is deliberately not the first server.
const FULL: &str = r#"
[system]
name = "full"
timeslice_us = 500
test = true

[servers.uart]
binary = "drv-uart"
priority = 150
stack = 8192
heap = 8192
restart = { budget = 3, within_ms = 1000 }
inject_fault_at_call = 5

[servers.boss]
binary = "supervisor"
priority = 200
supervisor = true

[servers.app]
binary = "app"
priority = 50
system_control = true
cnode_slots = 40

[endpoints.console]
server = "uart"
clients = ["app", { server = "boss", badge = 77, grant = true }]

[endpoints.control]
server = "app"
clients = ["uart"]

[notifications.uart-irq]
waiter = "uart"
signallers = [{ server = "app", badge = 4 }]

# QEMU virt's second PL011 (SPI 8); the first, at 0x0900_0000, is the kernel's.
[regions.pl011]
kind = "device"
base = 0x0904_0000
size = 0x1000
map = [{ server = "uart", at = 0x4000_0000, rights = "rw" }]

[regions.shared]
kind = "ram"
size = 0x2000
map = [
    { server = "uart", at = 0x4000_1000, rights = "r" },
    { server = "app", at = 0x5000_0000, rights = "rx" },
]

[irqs.uart]
intid = 40
notification = "uart-irq"
badge = 2
"#;

fn plan(text: &str) -> Plan {
    match Manifest::from_str(text, "test.toml") {
        Ok(manifest) => manifest.plan,
        Err(error) => panic!("{error}"),
    }
}

fn caps(plan: &Plan, server: &str) -> Vec<(String, u16, CapObject)> {
    let server = plan.servers.iter().find(|s| s.name == server);
    let caps: &[CapPlan] = server.map_or(&[], |s| &s.caps);
    caps.iter()
        .map(|c| (c.name.clone(), c.slot, c.object))
        .collect()
}

fn ep(index: u16, badge: u64, rights: Rights) -> CapObject {
    CapObject::Endpoint {
        index,
        badge,
        rights,
    }
}

fn note(index: u16, badge: u64, rights: Rights) -> CapObject {
    CapObject::Notification {
        index,
        badge,
        rights,
    }
}

/// The first slot the compiler assigns (the tests state slots relative to it).
const F: u16 = abi::FIRST_FREE_SLOT as u16;

fn fake_elf(tag: u8, len: usize) -> Vec<u8> {
    let mut image = b"\x7fELF".to_vec();
    image.resize(len, tag);
    image
}

/// A minimal AArch64 ELF executable (what a guest package builds to): a read-execute segment of
/// `code` at `vaddr`, the entry point, and a read-write segment of `data` followed by `bss` zero
/// bytes at the next 64 KiB boundary. Segment bytes follow the headers in the file.
fn guest_elf(vaddr: u64, code: &[u8], data: &[u8], bss: u64) -> Vec<u8> {
    const PT_LOAD: u32 = 1;
    let data_vaddr = (vaddr + code.len() as u64).next_multiple_of(0x1_0000);
    let code_offset = 64 + 2 * 56;
    let data_offset = code_offset + code.len() as u64;
    let mut elf = vec![0u8; 64];
    elf[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\x00");
    elf[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf[18..20].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    elf[24..32].copy_from_slice(&vaddr.to_le_bytes());
    elf[32..40].copy_from_slice(&64u64.to_le_bytes());
    elf[54..56].copy_from_slice(&56u16.to_le_bytes());
    elf[56..58].copy_from_slice(&2u16.to_le_bytes());
    let segments = [
        (
            5u32,
            code_offset,
            vaddr,
            code.len() as u64,
            code.len() as u64,
        ), // R+X
        (
            6,
            data_offset,
            data_vaddr,
            data.len() as u64,
            data.len() as u64 + bss,
        ), // R+W
    ];
    for (flags, offset, address, filesz, memsz) in segments {
        let mut header = [0u8; 56];
        header[..4].copy_from_slice(&PT_LOAD.to_le_bytes());
        header[4..8].copy_from_slice(&flags.to_le_bytes());
        header[8..16].copy_from_slice(&offset.to_le_bytes());
        header[16..24].copy_from_slice(&address.to_le_bytes());
        header[32..40].copy_from_slice(&filesz.to_le_bytes());
        header[40..48].copy_from_slice(&memsz.to_le_bytes());
        elf.extend_from_slice(&header);
    }
    elf.extend_from_slice(code);
    elf.extend_from_slice(data);
    elf
}

fn images(plan: &Plan) -> BTreeMap<String, Vec<u8>> {
    (plan.servers.iter().enumerate())
        .map(|(i, s)| (s.name.clone(), fake_elf(i as u8 + 1, 100 + 5000 * i)))
        .collect()
}

#[test]
fn endpoints_get_the_fault_endpoint_last() {
    let plan = plan(FULL);
    let names: Vec<_> = plan.servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["uart", "boss", "app"]);
    assert_eq!(
        plan.endpoints,
        [
            ("console".to_string(), Some(0)),
            ("control".to_string(), Some(2)),
            ("faults".to_string(), Some(1))
        ]
    );
}

#[test]
fn slots_follow_the_documented_group_order() {
    let plan = plan(FULL);
    let w = Rights::WRITE;
    assert_eq!(
        caps(&plan, "uart"),
        [
            ("console".into(), F, ep(0, 0, Rights::READ)),
            ("control".into(), F + 1, ep(1, 1, w)),
            ("uart-irq".into(), F + 2, note(0, 0, Rights::READ)),
            ("irq:uart".into(), F + 3, CapObject::IrqHandler { irq: 0 }),
        ]
    );
    assert_eq!(
        caps(&plan, "boss"),
        [
            ("faults".into(), F, ep(2, 0, Rights::READ)),
            ("console".into(), F + 1, ep(0, 77, w.union(Rights::GRANT))),
            ("tcb:uart".into(), F + 2, CapObject::Tcb { server: 0 }),
            ("tcb:app".into(), F + 3, CapObject::Tcb { server: 2 }),
        ]
    );
    assert_eq!(
        caps(&plan, "app"),
        [
            ("control".into(), F, ep(1, 0, Rights::READ)),
            ("console".into(), F + 1, ep(0, 3, w)),
            ("uart-irq".into(), F + 2, note(0, 4, w)),
            ("system".into(), F + 3, CapObject::SystemControl),
        ]
    );
}

#[test]
fn cnode_size_defaults_to_needed_plus_spare() {
    let plan = plan(FULL);
    let slots: Vec<_> = plan.servers.iter().map(|s| s.cnode_slots).collect();
    // uart and boss need the reserved slots + 4 caps; app asked for 40.
    assert_eq!(
        slots,
        [F + 4 + crate::SPARE_SLOTS, F + 4 + crate::SPARE_SLOTS, 40]
    );
}

#[test]
fn faults_go_to_the_supervisor_with_index_badges() {
    let plan = plan(FULL);
    let wiring: Vec<_> = plan
        .servers
        .iter()
        .map(|s| (s.role, s.fault_endpoint, s.fault_badge))
        .collect();
    assert_eq!(
        wiring,
        [
            (ServerRole::Ordinary, Some(2), 1),
            (ServerRole::Supervisor, None, 2),
            (ServerRole::Ordinary, Some(2), 3),
        ]
    );
}

#[test]
fn defaults_apply_when_keys_are_absent() {
    let plan = plan(include_str!("../hello.toml"));
    assert_eq!(plan.timeslice_us, 2000);
    assert!(!plan.test_system);
    let ping = &plan.servers[2];
    assert_eq!((ping.stack_bytes, ping.heap_bytes), (16384, 0));
    assert_eq!(ping.restart, RestartPolicy::Never);
    assert_eq!(ping.inject_fault, None);
    assert_eq!(plan.servers[1].restart, RestartPolicy::Always);
    assert_eq!(
        plan.regions[0].kind,
        RegionKind::Device {
            phys_base: 0x0901_0000
        }
    );
    // The default client badge is the client's index + 1: ping is server 2.
    assert_eq!(
        caps(&plan, "ping")[0],
        ("pong".into(), F, ep(0, 3, Rights::WRITE))
    );
    assert_eq!(
        caps(&plan, "ping")[1],
        ("system".into(), F + 1, CapObject::SystemControl)
    );
}

#[test]
fn server_index_is_file_order_however_tables_interleave() {
    let text = r#"
[system]
name = "order"
[servers.zeta]
binary = "z"
priority = 1
[endpoints.e]
server = "alpha"
[servers.alpha]
binary = "a"
priority = 2
supervisor = true
[servers]
mid = { binary = "m", priority = 3 }
beta.binary = "b"
beta.priority = 4
"#;
    let manifest = Manifest::from_str(text, "order.toml").unwrap_or_else(|e| panic!("{e}"));
    let binaries = manifest.binaries();
    let names: Vec<_> = binaries.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["zeta", "alpha", "mid", "beta"]);
    assert_eq!(binaries[1], ("alpha".to_string(), "a".to_string()));
    // Loading twice gives the same result.
    assert_eq!(Manifest::from_str(text, "order.toml").ok(), Some(manifest));
}

#[test]
fn bootinfo_blobs_name_every_cap_and_the_supervised_servers() {
    let plan = plan(FULL);
    let blobs = crate::payload::bootinfo_blobs(&plan).unwrap_or_else(|e| panic!("{e}"));
    let (header, _) = bootinfo::header(&blobs[0]).unwrap_or_else(|| panic!("header"));
    assert_eq!((header.server_id, header.name, header.caps), (0, "uart", 4));
    assert_eq!(header.heap_bytes, 8192);
    assert_eq!(
        plan.servers[0].inject_fault,
        Some(bootdesc::InjectedFault {
            at: bootdesc::InjectPoint::Call,
            count: 5
        })
    );
    assert_eq!(bootinfo::find_cap(&blobs[0], "irq:uart"), Some(F + 3));
    assert_eq!(bootinfo::find_cap(&blobs[0], "system"), None);
    assert_eq!(bootinfo::find_cap(&blobs[2], "system"), Some(F + 3));
    assert_eq!(bootinfo::find_cap(&blobs[1], "faults"), Some(F));
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
    let mut supervised = Vec::new();
    bootinfo::for_each_supervised(&blobs[1], |s| {
        supervised.push((s.name.to_string(), s.fault_badge, s.tcb_slot, s.restart));
        true
    })
    .unwrap_or_else(|| panic!("supervised list"));
    let budget = RestartPolicy::Budget {
        restarts: 3,
        within_ms: 1000,
    };
    assert_eq!(
        supervised,
        [
            ("uart".to_string(), 1, F + 2, budget),
            ("app".to_string(), 3, F + 3, RestartPolicy::Never)
        ]
    );
    let mut none = 0;
    bootinfo::for_each_supervised(&blobs[0], |_| {
        none += 1;
        true
    });
    assert_eq!(none, 0);
}

/// Decodes every record of a payload.
fn decode(payload: &[u8]) -> (PayloadHeader, Vec<Record<'_>>) {
    let header = PayloadHeader::parse(payload).unwrap_or_else(|e| panic!("{e:?}"));
    let mut reader = RecordReader::new(header.description(payload));
    let mut records = Vec::new();
    while let Some(record) = reader.next_record().unwrap_or_else(|e| panic!("{e:?}")) {
        records.push(record);
    }
    (header, records)
}

#[test]
fn payload_round_trips_with_counts_order_and_indices() {
    let manifest = Manifest::from_str(FULL, "full.toml").unwrap_or_else(|e| panic!("{e}"));
    let images = images(&manifest.plan);
    let payload = manifest
        .payload(&images)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let (payload_header, records) = decode(&payload);
    let Some(Record::Header(header)) = records.first() else {
        panic!("no header first")
    };
    assert_eq!(header.version, bootdesc::FORMAT_VERSION);
    assert_eq!(
        (header.name, header.timeslice_us, header.test_system),
        ("full", 500, true)
    );
    let counts = (
        header.servers,
        header.endpoints,
        header.notifications,
        header.regions,
    );
    assert_eq!(counts, (3, 3, 1, 2));
    assert_eq!((header.irqs, header.caps, header.mappings), (1, 12, 3));
    assert_eq!(header.vms, 0);
    // Kinds appear in the required order, each exactly as often as the header says.
    let kinds: Vec<u8> = records
        .iter()
        .map(|r| match r {
            Record::Header(_) => 0,
            Record::Server(_) => 1,
            Record::Endpoint(_) => 2,
            Record::Notification(_) => 3,
            Record::Region(_) => 4,
            Record::Irq(_) => 5,
            Record::Cap(_) => 6,
            Record::Mapping(_) => 7,
            Record::Vm(_) => 8,
            Record::VmSegment(_) => 9,
        })
        .collect();
    let expected: Vec<u8> = [
        (0, 1),
        (1, 3),
        (2, 3),
        (3, 1),
        (4, 2),
        (5, 1),
        (6, 12),
        (7, 3),
    ]
    .iter()
    .flat_map(|&(kind, count)| std::iter::repeat_n(kind, count))
    .collect();
    assert_eq!(kinds, expected);

    let servers: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            Record::Server(s) => Some(s),
            _ => None,
        })
        .collect();
    for (server, name) in servers.iter().zip(["uart", "boss", "app"]) {
        assert_eq!(server.name, name);
        let image = payload_header
            .image(&payload, server.image)
            .unwrap_or_else(|| panic!("image"));
        assert_eq!(image, &images[name][..]);
        assert_eq!(
            bootinfo::header(server.bootinfo).map(|(h, _)| h.name),
            Some(name)
        );
    }
    assert_eq!(
        (
            servers[0].priority,
            servers[0].stack_bytes,
            servers[0].cnode_slots
        ),
        (150, 8192, F + 4 + crate::SPARE_SLOTS)
    );
    assert!(
        matches!(records[4], Record::Endpoint(ref e) if e.name == "console" && e.server == Some(0))
    );
    assert!(
        matches!(records[6], Record::Endpoint(ref e) if e.name == "faults" && e.server == Some(1))
    );
    assert!(
        matches!(records[8], Record::Region(ref r) if r.kind == RegionKind::Device { phys_base: 0x0904_0000 } && r.size == 0x1000)
    );
    assert!(
        matches!(records[9], Record::Region(ref r) if r.kind == RegionKind::Ram && r.size == 0x2000)
    );
    assert!(
        matches!(records[10], Record::Irq(ref i) if (i.intid, i.notification, i.badge) == (40, 0, 2))
    );
    let caps: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            Record::Cap(c) => Some((c.server, c.slot)),
            _ => None,
        })
        .collect();
    let expected_caps: Vec<(u16, u16)> = (0..3)
        .flat_map(|s| (F..F + 4).map(move |slot| (s, slot)))
        .collect();
    assert_eq!(caps, expected_caps);
    let mappings: Vec<Mapping> = records
        .iter()
        .filter_map(|r| match r {
            Record::Mapping(m) => Some(*m),
            _ => None,
        })
        .collect();
    let mapping = |server, region, va, writable, executable| Mapping {
        server,
        region,
        va,
        writable,
        executable,
    };
    assert_eq!(
        mappings,
        [
            mapping(0, 0, 0x4000_0000, true, false),
            mapping(0, 1, 0x4000_1000, false, false),
            mapping(2, 1, 0x5000_0000, false, true),
        ]
    );
}

#[test]
fn payload_refuses_missing_foreign_and_non_elf_images() {
    let manifest = Manifest::from_str(FULL, "full.toml").unwrap_or_else(|e| panic!("{e}"));
    let good = images(&manifest.plan);
    let error = |images: &BTreeMap<String, Vec<u8>>| match manifest.payload(images) {
        Ok(_) => panic!("payload accepted"),
        Err(error) => error.to_string(),
    };
    let mut missing = good.clone();
    missing.remove("app");
    assert_eq!(error(&missing), "no image for server `app` (binary `app`)");
    let mut foreign = good.clone();
    foreign.insert("ghost".into(), fake_elf(9, 10));
    assert!(error(&foreign).contains("`ghost`"));
    let mut not_elf = good;
    not_elf.insert("boss".into(), b"#!/bin/sh".to_vec());
    assert_eq!(
        error(&not_elf),
        "the image of server `boss` (binary `supervisor`) is not an ELF file"
    );
}

#[test]
fn accessors_report_name_binaries_and_test_flag() {
    let manifest = Manifest::from_str(FULL, "full.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(manifest.name(), "full");
    assert!(manifest.is_test_system());
    let binaries: Vec<_> = manifest.binaries().into_iter().map(|(_, b)| b).collect();
    assert_eq!(binaries, ["drv-uart", "supervisor", "app"]);
}
