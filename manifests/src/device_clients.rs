//! A `devices` entry's `clients`: servers other than the VM's vmm that may call the device
//! server, e.g. a test client that sends it malformed IPC
//! (`tests/manifests/malformed-to-virtio.toml`).
//!
//! ```toml
//! devices = [{ kind = "virtio-console", server = "vcon", clients = ["garbage-client"] }]
//! ```
//!
//! The device server's endpoint is the compiler's (`devices.rs`), so the manifest has no
//! `[endpoints.<name>]` table to list clients in; they are listed where the endpoint is made.
//! The list is read as an endpoint's `clients` is (`schema::read_peers`): a server name or
//! `{ server, badge }`, without `grant` (`device_api` carries no capabilities). Each listed
//! server gets what the vmm gets: a WRITE capability of the device endpoint named after the
//! device server (`vcon`; `userlib::caps::try_cap("vcon")`), badge = its index + 1 unless given,
//! after its manifest client capabilities (slot group 2 of `compile.rs`).
//!
//! [`check`] refuses, at the element's line and key: an unknown server or a VM
//! (`validate::Names`), the device server itself, the VM's vmm (already a client), a server
//! listed twice, and a badge another client has, the vmm's included (`validate::check_peers`,
//! with the vmm as the first client).
//!
//! The device servers treat every caller alike: a client's `device_api` request is a register
//! access, as the guest's are, and its answer's line level counts as told to the vmm
//! (`device_api::fast::LineReport`), so a client that writes registers can reset the device or
//! hide an interrupt from the vmm. A client is therefore as trusted with the device as the vmm
//! is: a test client, or a server that reads registers only (docs/VIRTIO.md, "Device servers").

use crate::compile::VmPlan;
use crate::devices::DeviceDef;
use crate::error::{ManifestError, Reporter};
use crate::fields::Fields;
use crate::schema::{ManifestDef, PeerDef};
use crate::validate::Names;
use crate::vm::VmDef;
use abi::Rights;
use bootdesc::CapObject;

/// The key of a `devices` entry this module reads.
pub(crate) const KEY: &str = "clients";

/// Reads the `clients` of the `devices` entry `d` (absent: none).
pub(crate) fn read(d: &Fields<'_>) -> Result<Vec<PeerDef>, ManifestError> {
    crate::schema::read_peers(d, KEY, false)
}

/// Checks the `clients` of `device`, a device of `vm`.
pub(crate) fn check(
    rep: &Reporter<'_>,
    names: &Names<'_>,
    vm: &VmDef,
    device: &DeviceDef,
) -> Result<(), ManifestError> {
    if let Some(vmm) = device
        .clients
        .iter()
        .find(|client| client.server.value == vm.vmm.value)
    {
        let server = &vmm.server;
        return Err(rep.error(
            &server.span,
            &server.key,
            format!(
                "server `{}` is the vmm of vm `{}`, which the compiler already makes a client of \
                 device endpoint `{}`; drop it here",
                server.value, vm.name.value, device.server.value
            ),
        ));
    }
    let owner = names.server(&device.server)?;
    // The vmm first, as the compiler makes it (badge = its index + 1), so a listed client's
    // badge cannot be the vmm's.
    let mut clients = vec![PeerDef {
        server: vm.vmm.clone(),
        badge: None,
        grant: false,
    }];
    clients.extend(device.clients.iter().cloned());
    let endpoint = &device.server;
    crate::validate::check_peers(rep, names, &clients, owner, "endpoint", endpoint, true)
}

/// The device endpoints server `s` is a listed client of (WRITE, its badge), in VM order, then
/// transport order, named after their device servers.
pub(crate) fn caps(
    names: &Names<'_>,
    def: &ManifestDef,
    vms: &[VmPlan],
    s: usize,
    caps: &mut Vec<(String, CapObject)>,
) -> Result<(), ManifestError> {
    for (vm, plan) in def.vms.iter().zip(vms) {
        for (device, planned) in vm.devices.iter().zip(&plan.devices) {
            for client in &device.clients {
                if names.server(&client.server)? == s {
                    let object = CapObject::Endpoint {
                        index: planned.endpoint,
                        badge: crate::compile::client_badge(client, s),
                        rights: Rights::WRITE,
                    };
                    caps.push((device.server.value.clone(), object));
                }
            }
        }
    }
    Ok(())
}
