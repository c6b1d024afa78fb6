//! From a [`Plan`] and the servers' ELF images to the boot payload the kernel reads.
//!
//! Encodes one boot-info blob per server ([`bootdesc::bootinfo::encode`]), then the record
//! stream in the order `bootdesc` requires — `Header`, `Server`s, `Endpoint`s (the fault
//! endpoint last), `Notification`s, `Region`s, `Irq`s, `Cap`s (grouped by server, in slot
//! order), `Mapping`s (in region order) — and hands it with the images, in server order, to
//! [`bootdesc::build_payload`].

use crate::compile::Plan;
use anyhow::{Context, bail};
use bootdesc::bootinfo::{self, BootInfoHeader, CapName, SupervisedServer};
use bootdesc::{Cap, Endpoint, FORMAT_VERSION, Header, Irq, Notification, Record, Region, Server};
use std::collections::BTreeMap;

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
            let header = BootInfoHeader {
                server_id: u16::try_from(id)?,
                name: &server.name,
                caps: 0,
                heap_bytes: server.heap_bytes,
                supervised: 0,
                inject_fault_at_request: server.inject_fault_at_request,
            };
            bootinfo::encode(&header, &caps, &supervised)
                .with_context(|| format!("encoding the boot info of server `{}`", server.name))
        })
        .collect()
}

/// Builds the payload; `images` maps every server name to its ELF bytes.
pub(crate) fn build(plan: &Plan, images: &BTreeMap<String, Vec<u8>>) -> anyhow::Result<Vec<u8>> {
    if let Some(extra) = images
        .keys()
        .find(|name| !plan.servers.iter().any(|s| &s.name == *name))
    {
        bail!(
            "an image was given for `{extra}`, which is not a server of system `{}`",
            plan.name
        );
    }
    let mut ordered: Vec<&[u8]> = Vec::new();
    for server in &plan.servers {
        let image = images.get(&server.name).with_context(|| {
            format!(
                "no image for server `{}` (binary `{}`)",
                server.name, server.binary
            )
        })?;
        if !image.starts_with(ELF_MAGIC) {
            bail!(
                "the image of server `{}` (binary `{}`) is not an ELF file",
                server.name,
                server.binary
            );
        }
        ordered.push(image);
    }
    let total: usize = ordered
        .iter()
        .map(|image| image.len().next_multiple_of(bootdesc::IMAGE_ALIGN))
        .sum();
    if u32::try_from(total).is_err() {
        bail!("the server images together are {total} bytes, more than a payload can address");
    }
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
        timeslice_us: plan.timeslice_us,
        test_system: plan.test_system,
    })];
    for ((server, image), blob) in plan.servers.iter().zip(refs).zip(&blobs) {
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
            bootinfo: blob,
        }));
    }
    for (name, server) in &plan.endpoints {
        records.push(Record::Endpoint(Endpoint {
            name,
            server: *server,
        }));
    }
    for name in &plan.notifications {
        records.push(Record::Notification(Notification { name }));
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
    bootdesc::build_payload(&records, &ordered).context("encoding the boot description")
}
