//! Unit tests of a region's `frames` key: a RAM region given to the servers it names as a
//! frame-range capability `frames:<region>` (so a driver can ask the kernel for its physical
//! address with `FrameGetAddress` and program a device's DMA with it), with the rights of the
//! server's own mapping, after the per-VM capabilities and before the debug ones.

use super::{F, caps, decode, ep, fake_elf, plan};
use crate::Manifest;
use abi::Rights;
use bootdesc::{CapObject, Record, RegionKind, bootinfo};
use std::collections::BTreeMap;

/// A block driver with a private DMA pool and a data window shared with its client, which
/// maps it too but gets no frames.
const FRAMES: &str = r#"
[system]
name = "frames"

[servers.supervisor]
binary = "supervisor"
priority = 200
supervisor = true

[servers.blk]
binary = "drv-virtio-blk-driver"
priority = 120
debug = ["console"]

[servers.client]
binary = "blk-client"
priority = 90

[endpoints.blk]
server = "blk"
clients = ["client"]

[regions.virtio-mmio]
kind = "device"
base = 0x0A00_0000
size = 0x4000
map = [{ server = "blk", at = 0x4000_0000, rights = "rw" }]

[regions.blk-dma]
kind = "ram"
size = 0x10000
map = [{ server = "blk", at = 0x4010_0000, rights = "rw" }]
frames = ["blk"]

[regions.blk-data]
kind = "ram"
size = 0x20000
map = [
    { server = "blk", at = 0x4020_0000, rights = "rw" },
    { server = "client", at = 0x4020_0000, rights = "rw" },
]
frames = ["blk"]

[regions.table]
kind = "ram"
size = 0x1000
map = [
    { server = "client", at = 0x4100_0000, rights = "r" },
    { server = "blk", at = 0x4100_0000, rights = "r" },
]
frames = ["client", "blk"]
"#;

fn frame(region: u16, rights: Rights) -> CapObject {
    CapObject::Frame { region, rights }
}

const RW: Rights = Rights::READ.union(Rights::WRITE);

#[test]
fn frames_become_frame_capabilities_in_region_order_before_the_debug_ones() {
    let plan = plan(FRAMES);
    assert_eq!(
        caps(&plan, "blk"),
        [
            ("blk".into(), F, ep(0, 0, Rights::READ)),
            ("frames:blk-dma".into(), F + 1, frame(1, RW)),
            ("frames:blk-data".into(), F + 2, frame(2, RW)),
            ("frames:table".into(), F + 3, frame(3, Rights::READ)),
            ("debug:console".into(), F + 4, CapObject::DebugConsole),
        ],
        "region order, whatever order `frames` lists the servers in"
    );
    assert_eq!(
        caps(&plan, "client"),
        [
            ("blk".into(), F, ep(0, 3, Rights::WRITE)),
            ("frames:table".into(), F + 1, frame(3, Rights::READ)),
        ],
        "mapping a region gives no frames of it unless `frames` names the server"
    );
    assert!(
        caps(&plan, "supervisor")
            .iter()
            .all(|c| !c.0.starts_with("frames:"))
    );
}

#[test]
fn frame_rights_are_those_of_the_servers_own_mapping() {
    let rx = FRAMES.replace(
        r#"{ server = "blk", at = 0x4100_0000, rights = "r" }"#,
        r#"{ server = "blk", at = 0x4100_0000, rights = "rx" }"#,
    );
    let rx = plan(&rx);
    let table = caps(&rx, "blk").into_iter().find(|c| c.0 == "frames:table");
    assert_eq!(
        table.map(|c| c.2),
        Some(frame(3, Rights::READ.union(Rights::EXECUTE)))
    );
    let table = caps(&rx, "client")
        .into_iter()
        .find(|c| c.0 == "frames:table");
    assert_eq!(
        table.map(|c| c.2),
        Some(frame(3, Rights::READ)),
        "each server's capability follows its own mapping"
    );

    // Two mappings of one region by one server: the capability has both's rights.
    let twice = FRAMES.replace(
        r#"{ server = "blk", at = 0x4100_0000, rights = "r" }"#,
        r#"{ server = "blk", at = 0x4100_0000, rights = "r" },
    { server = "blk", at = 0x4200_0000, rights = "rw" }"#,
    );
    let table = caps(&plan(&twice), "blk")
        .into_iter()
        .find(|c| c.0 == "frames:table");
    assert_eq!(table.map(|c| c.2), Some(frame(3, RW)));
}

#[test]
fn frame_capabilities_reach_the_payload_and_the_boot_info_names() {
    let manifest = Manifest::from_str(FRAMES, "frames.toml").unwrap_or_else(|e| panic!("{e}"));
    let images: BTreeMap<String, Vec<u8>> = (manifest.plan.servers.iter().enumerate())
        .map(|(i, s)| (s.name.clone(), fake_elf(i as u8 + 1, 100)))
        .collect();
    let payload = manifest
        .payload(&images)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let (_, records) = decode(&payload);
    let frames: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            Record::Cap(c) if matches!(c.object, CapObject::Frame { .. }) => {
                Some((c.server, c.slot, c.object))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        frames,
        [
            (1, F + 1, frame(1, RW)),
            (1, F + 2, frame(2, RW)),
            (1, F + 3, frame(3, Rights::READ)),
            (2, F + 1, frame(3, Rights::READ)),
        ]
    );
    let regions: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            Record::Region(region) => Some((region.name, region.kind, region.size)),
            _ => None,
        })
        .collect();
    assert_eq!(
        regions[1..3],
        [
            ("blk-dma", RegionKind::Ram, 0x10000),
            ("blk-data", RegionKind::Ram, 0x20000)
        ],
        "the capabilities name the manifest's own RAM regions"
    );
    let servers: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            Record::Server(s) => Some(s),
            _ => None,
        })
        .collect();
    let find = |server: usize, name: &str| bootinfo::find_cap(servers[server].bootinfo, name);
    assert_eq!(find(1, "frames:blk-dma"), Some(F + 1));
    assert_eq!(find(1, "frames:blk-data"), Some(F + 2));
    assert_eq!(find(2, "frames:blk-data"), None);
    assert_eq!(find(2, "frames:table"), Some(F + 1));
    assert_eq!(crate::FRAMES_PREFIX, "frames:");
}

#[test]
fn bad_frames_are_refused_with_their_line_and_key() {
    let error = |frames: &str| {
        let text = FRAMES.replace(
            r#"frames = ["client", "blk"]"#,
            &format!("frames = {frames}"),
        );
        match Manifest::from_str(&text, "frames.toml") {
            Ok(_) => panic!("accepted frames = {frames}"),
            Err(error) => error.to_string(),
        }
    };
    assert_eq!(
        error(r#"["client", "client"]"#),
        "frames.toml:51:21: regions.table.frames[1]: server `client` is listed twice in `frames`"
    );
    assert_eq!(
        error(r#"["nobody"]"#),
        "frames.toml:51:11: regions.table.frames[0]: unknown server `nobody` (known servers: \
         `supervisor`, `blk`, `client`)"
    );
    assert_eq!(
        error(r#"["supervisor"]"#),
        "frames.toml:51:11: regions.table.frames[0]: server `supervisor` gets `frames:table` but \
         does not map region `table`: a frame capability's rights are those of the server's own \
         mapping, so add a `map` entry for it"
    );
    assert_eq!(
        error(r#"[7]"#),
        "frames.toml:51:11: regions.table.frames[0]: expected a server name, found an integer"
    );
    assert_eq!(
        error(r#""blk""#),
        "frames.toml:51:10: regions.table.frames: expected an array of server names, found a \
         string"
    );
    let device = FRAMES.replace(
        r#"map = [{ server = "blk", at = 0x4000_0000, rights = "rw" }]"#,
        r#"map = [{ server = "blk", at = 0x4000_0000, rights = "rw" }]
frames = ["blk"]"#,
    );
    match Manifest::from_str(&device, "frames.toml") {
        Ok(_) => panic!("accepted frames of a device region"),
        Err(error) => assert_eq!(
            error.to_string(),
            "frames.toml:28:10: regions.virtio-mmio.frames: `frames` is only allowed for RAM \
             regions: a frame capability names RAM, and a device region's physical address is \
             its `base`"
        ),
    }
}
