//! Hand-made payloads, for QEMU tests of the kernel's boot checks: the manifest compiler refuses
//! everything the kernel would, so a payload the kernel refuses has to be made by hand. A test's
//! `patch` sets one field of one record of the payload its manifest compiles to; the kernel is
//! built again around the result (`<target>/images/patched/<test>/`), and the image list, ELF
//! copies and all, is the manifest's.

use std::fs;

use anyhow::{Context, anyhow, bail};
use bootdesc::{PayloadHeader, Record, RecordReader, RegionKind};
use serde::Deserialize;

use crate::Workspace;
use crate::build::Image;

/// `patch = { record = "irq", index = 0, field = "intid", value = 27 }`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PayloadPatch {
    /// The record's kind, as the kernel's boot errors name it ([`FIELDS`]).
    pub record: String,
    /// Its index among the records of its kind (the header is `header` 0).
    #[serde(default)]
    pub index: usize,
    /// The field ([`FIELDS`]; `image.offset` and `image.len` of an image reference).
    pub field: String,
    /// Its new value (an optional index becomes `Some(value)`).
    pub value: u64,
}

/// The fields a patch can set, by record kind.
pub const FIELDS: [(&str, &[&str]); 10] = [
    (
        "header",
        &[
            "version",
            "servers",
            "endpoints",
            "notifications",
            "regions",
            "irqs",
            "caps",
            "mappings",
            "vms",
            "vm_segments",
            "timeslice_us",
        ],
    ),
    (
        "server",
        &[
            "image.offset",
            "image.len",
            "priority",
            "stack_bytes",
            "heap_bytes",
            "cnode_slots",
            "fault_endpoint",
        ],
    ),
    ("endpoint", &["server"]),
    ("notification", &["bound"]),
    ("region", &["size", "phys_base"]),
    ("irq", &["intid", "notification"]),
    ("cap", &["server", "slot"]),
    ("mapping", &["server", "region", "va"]),
    (
        "vm",
        &[
            "ram_base",
            "ram_region",
            "priority",
            "exit_endpoint",
            "entry",
            "x0",
        ],
    ),
    ("vm segment", &["vm", "ipa", "image.offset", "image.len"]),
];

/// How the kernel's boot errors name a record of this kind.
fn kind_name(record: &Record<'_>) -> &'static str {
    let kind = match record {
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
    };
    FIELDS[kind].0
}

/// `value` as a `T`, refused when it does not fit.
fn fitting<T: TryFrom<u64>>(value: u64) -> anyhow::Result<T> {
    T::try_from(value).map_err(|_| anyhow!("{value} does not fit a {}", std::any::type_name::<T>()))
}

fn set<T: TryFrom<u64>>(slot: &mut T, value: u64) -> anyhow::Result<()> {
    *slot = fitting(value)?;
    Ok(())
}

fn set_some<T: TryFrom<u64>>(slot: &mut Option<T>, value: u64) -> anyhow::Result<()> {
    *slot = Some(fitting(value)?);
    Ok(())
}

/// Sets `field` of `record` to `value`; `Ok(false)` when the record has no such field.
fn set_field(record: &mut Record<'_>, field: &str, value: u64) -> anyhow::Result<bool> {
    match (record, field) {
        (Record::Header(h), "version") => set(&mut h.version, value)?,
        (Record::Header(h), "servers") => set(&mut h.servers, value)?,
        (Record::Header(h), "endpoints") => set(&mut h.endpoints, value)?,
        (Record::Header(h), "notifications") => set(&mut h.notifications, value)?,
        (Record::Header(h), "regions") => set(&mut h.regions, value)?,
        (Record::Header(h), "irqs") => set(&mut h.irqs, value)?,
        (Record::Header(h), "caps") => set(&mut h.caps, value)?,
        (Record::Header(h), "mappings") => set(&mut h.mappings, value)?,
        (Record::Header(h), "vms") => set(&mut h.vms, value)?,
        (Record::Header(h), "vm_segments") => set(&mut h.vm_segments, value)?,
        (Record::Header(h), "timeslice_us") => set(&mut h.timeslice_us, value)?,
        (Record::Server(s), "image.offset") => set(&mut s.image.offset, value)?,
        (Record::Server(s), "image.len") => set(&mut s.image.len, value)?,
        (Record::Server(s), "priority") => set(&mut s.priority, value)?,
        (Record::Server(s), "stack_bytes") => set(&mut s.stack_bytes, value)?,
        (Record::Server(s), "heap_bytes") => set(&mut s.heap_bytes, value)?,
        (Record::Server(s), "cnode_slots") => set(&mut s.cnode_slots, value)?,
        (Record::Server(s), "fault_endpoint") => set_some(&mut s.fault_endpoint, value)?,
        (Record::Endpoint(e), "server") => set_some(&mut e.server, value)?,
        (Record::Notification(n), "bound") => set_some(&mut n.bound, value)?,
        (Record::Region(r), "size") => set(&mut r.size, value)?,
        (Record::Region(r), "phys_base") => match &mut r.kind {
            RegionKind::Device { phys_base } => set(phys_base, value)?,
            RegionKind::Ram => bail!("a RAM region has no `phys_base`"),
        },
        (Record::Irq(i), "intid") => set(&mut i.intid, value)?,
        (Record::Irq(i), "notification") => set(&mut i.notification, value)?,
        (Record::Cap(c), "server") => set(&mut c.server, value)?,
        (Record::Cap(c), "slot") => set(&mut c.slot, value)?,
        (Record::Mapping(m), "server") => set(&mut m.server, value)?,
        (Record::Mapping(m), "region") => set(&mut m.region, value)?,
        (Record::Mapping(m), "va") => set(&mut m.va, value)?,
        (Record::Vm(v), "ram_base") => set(&mut v.ram_base, value)?,
        (Record::Vm(v), "ram_region") => set(&mut v.ram_region, value)?,
        (Record::Vm(v), "priority") => set(&mut v.priority, value)?,
        (Record::Vm(v), "exit_endpoint") => set(&mut v.exit_endpoint, value)?,
        (Record::Vm(v), "entry") => set(&mut v.entry, value)?,
        (Record::Vm(v), "x0") => set(&mut v.x0, value)?,
        (Record::VmSegment(s), "vm") => set(&mut s.vm, value)?,
        (Record::VmSegment(s), "ipa") => set(&mut s.ipa, value)?,
        (Record::VmSegment(s), "image.offset") => set(&mut s.image.offset, value)?,
        (Record::VmSegment(s), "image.len") => set(&mut s.image.len, value)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// `payload` with `patch` applied: the records decoded, the one field set, the records encoded
/// again in front of the same image area (image references count from its start, so they hold).
pub fn apply(payload: &[u8], patch: &PayloadPatch) -> anyhow::Result<Vec<u8>> {
    let Some((_, fields)) = FIELDS.iter().find(|(kind, _)| *kind == patch.record) else {
        let kinds: Vec<&str> = FIELDS.iter().map(|(kind, _)| *kind).collect();
        bail!(
            "no record kind `{}`; the kinds are {}",
            patch.record,
            kinds.join(", ")
        );
    };
    let header =
        PayloadHeader::parse(payload).map_err(|error| anyhow!("not a payload: {error:?}"))?;
    let mut reader = RecordReader::new(header.description(payload));
    let mut records = Vec::new();
    while let Some(record) = reader
        .next_record()
        .map_err(|error| anyhow!("record {} does not decode: {error:?}", records.len()))?
    {
        records.push(record);
    }
    let record = records
        .iter_mut()
        .filter(|record| kind_name(record) == patch.record)
        .nth(patch.index)
        .with_context(|| format!("the payload has no {} {}", patch.record, patch.index))?;
    if !set_field(record, &patch.field, patch.value)
        .with_context(|| format!("{} {} `{}`", patch.record, patch.index, patch.field))?
    {
        bail!(
            "{} has no field `{}` a patch can set; it has {}",
            patch.record,
            patch.field,
            fields.join(", ")
        );
    }
    let images = payload
        .get(header.images_offset as usize..)
        .context("the image area")?;
    Ok(bootdesc::build_payload(&records, &[images])?)
}

/// The image of `image`'s manifest with `patch` applied to its payload, for test `test`.
pub fn patched_image(
    workspace: &Workspace,
    image: &Image,
    patch: &PayloadPatch,
    test: &str,
) -> anyhow::Result<Image> {
    let source = image.dir.join("payload.bin");
    let payload = fs::read(&source).with_context(|| format!("reading {}", source.display()))?;
    let patched =
        apply(&payload, patch).with_context(|| format!("patching {}", source.display()))?;
    eprintln!(
        "xtask: image `{}` for test `{test}`: {} {} `{}` set to {}",
        image.name, patch.record, patch.index, patch.field, patch.value
    );
    let dir = workspace.images_dir().join("patched").join(test);
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let payload_path = dir.join("payload.bin");
    fs::write(&payload_path, patched)
        .with_context(|| format!("writing {}", payload_path.display()))?;
    let payload_path = fs::canonicalize(&payload_path)?;
    let kernel = crate::build::build_kernel(workspace, &payload_path)?;
    let elf = dir.join("kernel.elf");
    fs::copy(&kernel, &elf)
        .with_context(|| format!("copying {} to {}", kernel.display(), elf.display()))?;
    Ok(Image {
        name: image.name.clone(),
        dir,
        elf,
        servers: image.servers.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bootdesc::{Endpoint, FORMAT_VERSION, Header, ImageRef, Irq};

    fn records() -> Vec<Record<'static>> {
        vec![
            Record::Header(Header {
                version: FORMAT_VERSION,
                name: "patch",
                servers: 0,
                endpoints: 1,
                notifications: 0,
                regions: 0,
                irqs: 2,
                caps: 0,
                mappings: 0,
                vms: 0,
                vm_segments: 0,
                timeslice_us: 2000,
                test_system: true,
            }),
            Record::Endpoint(Endpoint {
                name: "ep",
                server: None,
            }),
            Record::Irq(Irq {
                name: "first",
                intid: 34,
                notification: 0,
                badge: 1,
            }),
            Record::Irq(Irq {
                name: "second",
                intid: 35,
                notification: 0,
                badge: 2,
            }),
        ]
    }

    fn patch(record: &str, index: usize, field: &str, value: u64) -> PayloadPatch {
        PayloadPatch {
            record: record.into(),
            index,
            field: field.into(),
            value,
        }
    }

    fn decoded(payload: &[u8]) -> Vec<Record<'_>> {
        let header = PayloadHeader::parse(payload).unwrap();
        let mut reader = RecordReader::new(header.description(payload));
        std::iter::from_fn(|| reader.next_record().unwrap()).collect()
    }

    #[test]
    fn one_field_of_one_record_changes_and_the_images_stay() {
        let images: [&[u8]; 2] = [b"first image", b"second"];
        let payload = bootdesc::build_payload(&records(), &images).unwrap();
        let patched = apply(&payload, &patch("irq", 1, "intid", 27)).unwrap();
        let mut expected = records();
        let Record::Irq(irq) = &mut expected[3] else {
            unreachable!()
        };
        irq.intid = 27;
        assert_eq!(decoded(&patched), expected);
        let header = PayloadHeader::parse(&patched).unwrap();
        let refs = bootdesc::image_refs(&images);
        assert_eq!(header.image(&patched, refs[1]), Some(&b"second"[..]));
        assert_eq!(patched.len(), payload.len());
        // An optional index becomes Some.
        let bound = apply(&payload, &patch("endpoint", 0, "server", 3)).unwrap();
        assert_eq!(
            decoded(&bound)[1],
            Record::Endpoint(Endpoint {
                name: "ep",
                server: Some(3)
            })
        );
    }

    #[test]
    fn a_patch_that_cannot_apply_says_why() {
        let payload = bootdesc::build_payload(&records(), &[]).unwrap();
        let error = |p: PayloadPatch| format!("{:#}", apply(&payload, &p).unwrap_err());
        let cases = [
            (patch("irq", 2, "intid", 27), "the payload has no irq 2"),
            (patch("irqs", 0, "intid", 27), "no record kind `irqs`"),
            (
                patch("irq", 0, "badge", 1),
                "irq has no field `badge` a patch can set; it has intid, notification",
            ),
            (
                patch("irq", 0, "notification", 1 << 16),
                "65536 does not fit a u16",
            ),
            (patch("header", 0, "servers", 70_000), "header 0 `servers`"),
        ];
        for (patch, expected) in cases {
            let message = error(patch);
            assert!(message.contains(expected), "{message}");
        }
        assert!(
            format!(
                "{:#}",
                apply(b"HVBOOT", &patch("irq", 0, "intid", 1)).unwrap_err()
            )
            .contains("not a payload")
        );
    }

    #[test]
    fn every_listed_field_can_be_set() {
        let server = Record::Server(bootdesc::Server {
            name: "s",
            image: ImageRef { offset: 0, len: 0 },
            priority: 1,
            stack_bytes: 0,
            heap_bytes: 0,
            cnode_slots: 0,
            restart: bootdesc::RestartPolicy::Never,
            role: bootdesc::ServerRole::Ordinary,
            fault_endpoint: None,
            fault_badge: 0,
            inject_fault: None,
            bootinfo: &[],
        });
        let one_of_each = [
            records()[0].clone(),
            server,
            records()[1].clone(),
            Record::Notification(bootdesc::Notification {
                name: "n",
                bound: None,
            }),
            Record::Region(bootdesc::Region {
                name: "r",
                kind: RegionKind::Device { phys_base: 0 },
                size: 0,
            }),
            records()[2].clone(),
            Record::Cap(bootdesc::Cap {
                server: 0,
                slot: 0,
                object: bootdesc::CapObject::SystemControl,
            }),
            Record::Mapping(bootdesc::Mapping {
                server: 0,
                region: 0,
                va: 0,
                writable: false,
                executable: false,
            }),
            Record::Vm(bootdesc::Vm {
                name: "v",
                ram_base: 0,
                ram_region: 0,
                priority: 1,
                exit_endpoint: 0,
                exit_badge: 0,
                entry: 0,
                x0: 0,
                mmio_markers: true,
            }),
            Record::VmSegment(bootdesc::VmSegment {
                vm: 0,
                image: ImageRef { offset: 0, len: 0 },
                ipa: 0,
            }),
        ];
        for (mut record, (kind, fields)) in one_of_each.into_iter().zip(FIELDS) {
            assert_eq!(kind_name(&record), kind);
            for field in fields {
                let before = record.clone();
                assert!(set_field(&mut record, field, 91).unwrap(), "{kind} {field}");
                assert_ne!(record, before, "{kind} {field}");
            }
        }
    }
}
