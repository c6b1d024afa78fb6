//! Unit tests of a `devices` entry's `clients` (`device_clients.rs`): the capability each listed
//! server gets (named after the device server, WRITE, its badge, after its manifest client
//! capabilities), what it leaves alone (the vmm's capabilities, the device server's), its name
//! in the client's boot info, and every refusal with its position and key.

use super::{F, caps, ep, plan};
use crate::Manifest;
use abi::Rights;
use bootdesc::bootinfo;

/// A VM with a block device and a console; `probe` is a client of both device servers (of the
/// console with its own badge) and of the manifest's endpoint `pl011`.
const CLIENTS: &str = r#"
[system]
name = "clients"

[servers.boss]
binary = "supervisor"
priority = 200
supervisor = true

[servers.vmm]
binary = "vmm"
priority = 120

[servers.vblk]
binary = "drv-virtio-blk-server"
priority = 140

[servers.vcon]
binary = "drv-virtio-console-server"
priority = 140

[servers.pl011]
binary = "drv-pl011-server"
priority = 140

[servers.probe]
binary = "garbage-client"
priority = 130

[endpoints.pl011]
server = "pl011"
clients = ["vmm", "probe"]

[vms.linux]
kernel = "target/guest/linux/Image"
vmm = "vmm"
mmu = "boss"
memory = "boss"
priority = 80
ram_size = 0x1000_0000
devices = [
    { kind = "virtio-blk", server = "vblk", clients = ["probe"] },
    { kind = "virtio-console", server = "vcon", clients = [{ server = "probe", badge = 77 }] },
]
"#;

fn refusal(text: &str) -> String {
    match Manifest::from_str(text, "clients.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(error) => error.to_string(),
    }
}

/// `CLIENTS` with the console's `clients` replaced by `list`.
fn console_clients(list: &str) -> String {
    let text = CLIENTS.replace(r#"clients = [{ server = "probe", badge = 77 }]"#, list);
    assert_ne!(text, CLIENTS);
    text
}

#[test]
fn a_listed_client_gets_a_write_capability_named_after_the_device_server() {
    let plan = plan(CLIENTS);
    let names: Vec<&str> = plan.endpoints.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["pl011", "faults", "exits:linux", "vblk", "vcon"]);
    // probe is server 5: its manifest client cap first, then the device endpoints in transport
    // order, the block device's with the default badge (index + 1), the console's with its own.
    assert_eq!(
        caps(&plan, "probe"),
        [
            ("pl011".to_string(), F, ep(0, 6, Rights::WRITE)),
            ("vblk".to_string(), F + 1, ep(3, 6, Rights::WRITE)),
            ("vcon".to_string(), F + 2, ep(4, 77, Rights::WRITE)),
        ]
    );
}

#[test]
fn clients_leave_the_vmm_and_the_device_servers_as_they_were() {
    let plain = CLIENTS
        .replace(r#", clients = ["probe"]"#, "")
        .replace(r#", clients = [{ server = "probe", badge = 77 }]"#, "");
    assert!(!plain.contains("clients = [\"probe\"]") && !plain.contains("badge = 77"));
    let (with, without) = (plan(CLIENTS), plan(&plain));
    for server in ["boss", "vmm", "vblk", "vcon", "pl011"] {
        assert_eq!(caps(&with, server), caps(&without, server), "{server}");
    }
    assert_eq!(with.endpoints, without.endpoints);
    assert_eq!(
        caps(&without, "probe").len(),
        1,
        "only pl011 without clients"
    );
    // The vmm keeps its badge (index + 1 = 2) on both device endpoints.
    let vmm = caps(&with, "vmm");
    assert!(vmm.contains(&("vblk".to_string(), F + 2, ep(3, 2, Rights::WRITE))));
    assert!(vmm.contains(&("vcon".to_string(), F + 3, ep(4, 2, Rights::WRITE))));
}

#[test]
fn the_client_finds_the_capability_by_the_device_servers_name_in_its_boot_info() {
    let plan = plan(CLIENTS);
    let blobs = crate::payload::bootinfo_blobs(&plan).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bootinfo::find_cap(&blobs[5], "vblk"), Some(F + 1));
    assert_eq!(bootinfo::find_cap(&blobs[5], "vcon"), Some(F + 2));
    // A client is not told of the device: it has no `DeviceInfo` and no VM in its boot info.
    let mut devices = 0;
    let decoded = bootinfo::for_each_device(&blobs[5], |_| {
        devices += 1;
        true
    });
    assert!(decoded.is_some(), "the blob decodes");
    assert_eq!(devices, 0);
}

#[test]
fn every_misuse_is_refused_at_its_element() {
    let at = "clients.toml:43:";
    let cases = [
        (
            r#"clients = ["nobody"]"#,
            "vms.linux.devices[1].clients[0]: unknown server `nobody` (known servers: `boss`, \
             `vmm`, `vblk`, `vcon`, `pl011`, `probe`)",
        ),
        (
            r#"clients = ["linux"]"#,
            "vms.linux.devices[1].clients[0]: unknown server `linux`: `linux` is a vm, not a \
             server; a VM holds no capabilities (its vmm acts for it) (known servers: `boss`, \
             `vmm`, `vblk`, `vcon`, `pl011`, `probe`)",
        ),
        (
            r#"clients = ["probe", "vblk", "probe"]"#,
            "vms.linux.devices[1].clients[2]: server `probe` is listed twice as a client of \
             endpoint `vcon`",
        ),
        (
            r#"clients = ["vcon"]"#,
            "vms.linux.devices[1].clients[0]: server `vcon` serves endpoint `vcon`, so it cannot \
             also be its client",
        ),
        (
            r#"clients = ["probe", "vmm"]"#,
            "vms.linux.devices[1].clients[1]: server `vmm` is the vmm of vm `linux`, which the \
             compiler already makes a client of device endpoint `vcon`; drop it here",
        ),
        (
            r#"clients = [{ server = "probe", badge = 2 }]"#,
            "vms.linux.devices[1].clients[0].badge: badge 2 of client `probe` is already the \
             badge of client `vmm` of endpoint `vcon`; the server could not tell them apart",
        ),
        (
            r#"clients = ["probe", { server = "pl011", badge = 6 }]"#,
            "vms.linux.devices[1].clients[1].badge: badge 6 of client `pl011` is already the \
             badge of client `probe` of endpoint `vcon`; the server could not tell them apart",
        ),
    ];
    for (list, expected) in cases {
        let error = refusal(&console_clients(list));
        assert!(error.starts_with(at), "{list}: {error}");
        assert!(
            error.ends_with(expected),
            "{list}:\n  {error}\n  {expected}"
        );
    }
    // The reader's refusals: the shape of the list and its elements.
    for (list, expected) in [
        (
            r#"clients = "probe""#,
            "vms.linux.devices[1].clients: expected an array of server names or { server = ..., \
             badge = ... } tables, found a string",
        ),
        (
            r#"clients = [7]"#,
            "vms.linux.devices[1].clients[0]: expected a server name or a table, found an integer",
        ),
        (
            r#"clients = [{ server = "probe", grant = true }]"#,
            "unknown key `grant`",
        ),
    ] {
        let error = refusal(&console_clients(list));
        assert!(error.contains(expected), "{list}:\n  {error}\n  {expected}");
    }
}
