//! The boot-info blob: what a server learns about itself at start.
//!
//! The manifest compiler writes one blob per server; the kernel copies it into the server's
//! boot-info page behind a little-endian `u32` length. Layout: a postcard [`BootInfoHeader`],
//! then `caps` postcard [`CapName`]s, then `supervised` postcard [`SupervisedServer`]s (only the
//! supervisor's blob has any), then `vms` [`VmInfo`]s, then `devices` [`DeviceInfo`]s (a vmm's
//! and a device server's blobs). Servers look capabilities up by manifest name, so slot numbers
//! are never hard-coded in server code.

use crate::RestartPolicy;
use serde::{Deserialize, Serialize};

/// The start of the blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootInfoHeader<'a> {
    /// The server's index in the boot description.
    pub server_id: u16,
    /// Its manifest name.
    pub name: &'a str,
    /// Number of [`CapName`] records that follow.
    pub caps: u16,
    /// Heap size in bytes (the heap starts at [`abi::layout::HEAP_BASE`]).
    pub heap_bytes: u32,
    /// Number of [`SupervisedServer`] records after the capability names.
    pub supervised: u16,
    /// Number of [`VmInfo`] records after the supervised servers.
    pub vms: u16,
    /// Number of [`DeviceInfo`] records after the VMs.
    pub devices: u16,
}

/// A virtual machine this server serves (as its vmm, mmu or memory server): where its RAM is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmInfo<'a> {
    /// The VM's manifest name (its capabilities are named `<kind>:<name>`).
    pub name: &'a str,
    /// The VM's index: also the number of its RAM region at the memory server.
    pub index: u16,
    /// Guest-physical base of its RAM.
    pub ram_base: u64,
    /// Size of its RAM in bytes.
    pub ram_size: u64,
    /// The badge the VM's mmu-server's calls carry at this server's endpoints, if it calls
    /// any: the memory-backing server lends that caller the VM's RAM frames with every right
    /// (the guest reads, writes and runs from them), anyone else read-only.
    pub mmu_badge: Option<u64>,
    /// How many resets the manifest asks the guest to go through (`[vms.<name>] resets`, test
    /// systems only; 0 = none): the vmm answers HV_RESET_LOOP with it.
    pub resets: u32,
    /// How many dirty-log windows the VM may have enabled at once (`[vms.<name>]
    /// dirty_log_windows`, default 4): its mmu-server refuses an enable past it.
    pub dirty_log_windows: u16,
}

/// What a [`DeviceInfo`] is: the kinds of `[vms.<name>] devices`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceKind {
    /// A virtio block device (virtio 1.2 section 5.2).
    VirtioBlk,
    /// A virtio console (virtio 1.2 section 5.3).
    VirtioConsole,
}

/// A virtio-mmio device of a VM (`[vms.<name>] devices`, docs/VIRTIO.md): where the guest sees
/// its transport window, the interrupt it raises, and the endpoint of the device server that
/// answers its MMIO. The vmm's blob lists every device of its VM; a device server's lists the
/// one it serves (with that VM's [`VmInfo`]: the RAM it maps at `ram_base`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo<'a> {
    /// The VM's index ([`VmInfo::index`]).
    pub vm: u16,
    /// The device.
    pub kind: DeviceKind,
    /// Guest-physical base of its virtio-mmio window.
    pub base: u64,
    /// Size of the window in bytes.
    pub size: u64,
    /// The INTID its interrupt line drives (an SPI, edge-rising in the device tree).
    pub intid: u32,
    /// The name of the endpoint capability the device is served on: in the vmm its client
    /// capability, in the device server the one it serves.
    pub endpoint: &'a str,
}

/// A server the supervisor looks after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupervisedServer<'a> {
    /// Its manifest name.
    pub name: &'a str,
    /// The badge its fault messages arrive with.
    pub fault_badge: u64,
    /// The supervisor's slot holding its TCB capability.
    pub tcb_slot: u16,
    /// Its restart policy.
    pub restart: RestartPolicy,
}

/// One named capability.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapName<'a> {
    /// The name: an endpoint's or notification's manifest name, `tcb:<server>`, `irq:<name>`,
    /// or `system`.
    pub name: &'a str,
    /// The slot that holds it.
    pub slot: u16,
}

/// Decodes the header of a blob.
pub fn header(blob: &[u8]) -> Option<(BootInfoHeader<'_>, &[u8])> {
    postcard::take_from_bytes(blob).ok()
}

/// Finds the slot of the capability called `name`.
pub fn find_cap(blob: &[u8], name: &str) -> Option<u16> {
    let (header, mut rest) = header(blob)?;
    for _ in 0..header.caps {
        let (entry, next) = postcard::take_from_bytes::<CapName<'_>>(rest).ok()?;
        if entry.name == name {
            return Some(entry.slot);
        }
        rest = next;
    }
    None
}

/// Finds the capability a server of VM `vm` knows by its role `name` (an endpoint such as
/// `mmu` or `memory`): `name` itself, else `<name>-<vm>`. Endpoint names are global, so a
/// system with one mmu-server (or memory-backing server) per VM names each one's endpoint after
/// its VM (`mmu-left`, `mmu-right`), and every server of that VM finds it under its role.
pub fn find_vm_cap(blob: &[u8], name: &str, vm: &str) -> Option<u16> {
    find_cap(blob, name).or_else(|| {
        let (header, mut rest) = header(blob)?;
        for _ in 0..header.caps {
            let (entry, next) = postcard::take_from_bytes::<CapName<'_>>(rest).ok()?;
            let suffix = entry
                .name
                .strip_prefix(name)
                .and_then(|s| s.strip_prefix('-'));
            if suffix == Some(vm) {
                return Some(entry.slot);
            }
            rest = next;
        }
        None
    })
}

/// The highest slot the blob names (servers use the slots above it as scratch space: the
/// manifest compiler sizes every CNode with spare slots).
pub fn highest_slot(blob: &[u8]) -> Option<u16> {
    let (header, mut rest) = header(blob)?;
    let mut highest = 0;
    for _ in 0..header.caps {
        let (entry, next) = postcard::take_from_bytes::<CapName<'_>>(rest).ok()?;
        highest = highest.max(entry.slot);
        rest = next;
    }
    Some(highest)
}

/// Calls `visit` for every supervised server in the blob; stops early when it returns false.
pub fn for_each_supervised<'a>(
    blob: &'a [u8],
    mut visit: impl FnMut(SupervisedServer<'a>) -> bool,
) -> Option<()> {
    let (header, mut rest) = header(blob)?;
    for _ in 0..header.caps {
        rest = postcard::take_from_bytes::<CapName<'_>>(rest).ok()?.1;
    }
    for _ in 0..header.supervised {
        let (entry, next) = postcard::take_from_bytes::<SupervisedServer<'a>>(rest).ok()?;
        if !visit(entry) {
            break;
        }
        rest = next;
    }
    Some(())
}

/// The records after the capability names and the supervised servers: the VMs, then the devices.
fn after_supervised<'a>(blob: &'a [u8]) -> Option<(BootInfoHeader<'a>, &'a [u8])> {
    let (header, mut rest) = header(blob)?;
    for _ in 0..header.caps {
        rest = postcard::take_from_bytes::<CapName<'_>>(rest).ok()?.1;
    }
    for _ in 0..header.supervised {
        rest = postcard::take_from_bytes::<SupervisedServer<'_>>(rest)
            .ok()?
            .1;
    }
    Some((header, rest))
}

/// Calls `visit` for every VM in the blob; stops early when it returns false.
pub fn for_each_vm<'a>(blob: &'a [u8], mut visit: impl FnMut(VmInfo<'a>) -> bool) -> Option<()> {
    let (header, mut rest) = after_supervised(blob)?;
    for _ in 0..header.vms {
        let (entry, next) = postcard::take_from_bytes::<VmInfo<'a>>(rest).ok()?;
        if !visit(entry) {
            break;
        }
        rest = next;
    }
    Some(())
}

/// Calls `visit` for every device in the blob; stops early when it returns false.
pub fn for_each_device<'a>(
    blob: &'a [u8],
    mut visit: impl FnMut(DeviceInfo<'a>) -> bool,
) -> Option<()> {
    let (header, mut rest) = after_supervised(blob)?;
    for _ in 0..header.vms {
        rest = postcard::take_from_bytes::<VmInfo<'_>>(rest).ok()?.1;
    }
    for _ in 0..header.devices {
        let (entry, next) = postcard::take_from_bytes::<DeviceInfo<'a>>(rest).ok()?;
        if !visit(entry) {
            break;
        }
        rest = next;
    }
    Some(())
}

/// Encodes a blob without devices (host side); see [`encode_with_devices`].
#[cfg(feature = "std")]
pub fn encode(
    header: &BootInfoHeader<'_>,
    caps: &[CapName<'_>],
    supervised: &[SupervisedServer<'_>],
    vms: &[VmInfo<'_>],
) -> Result<Vec<u8>, postcard::Error> {
    encode_with_devices(header, caps, supervised, vms, &[])
}

/// Encodes a blob (host side). The header's `caps`, `supervised`, `vms` and `devices` counts
/// are set from the slices.
#[cfg(feature = "std")]
pub fn encode_with_devices(
    header: &BootInfoHeader<'_>,
    caps: &[CapName<'_>],
    supervised: &[SupervisedServer<'_>],
    vms: &[VmInfo<'_>],
    devices: &[DeviceInfo<'_>],
) -> Result<Vec<u8>, postcard::Error> {
    let count = |len: usize| u16::try_from(len).map_err(|_| postcard::Error::SerdeSerCustom);
    let header = BootInfoHeader {
        caps: count(caps.len())?,
        supervised: count(supervised.len())?,
        vms: count(vms.len())?,
        devices: count(devices.len())?,
        ..header.clone()
    };
    let mut blob = postcard::to_allocvec(&header)?;
    for cap in caps {
        blob.extend_from_slice(&postcard::to_allocvec(cap)?);
    }
    for server in supervised {
        blob.extend_from_slice(&postcard::to_allocvec(server)?);
    }
    for vm in vms {
        blob.extend_from_slice(&postcard::to_allocvec(vm)?);
    }
    for device in devices {
        blob.extend_from_slice(&postcard::to_allocvec(device)?);
    }
    Ok(blob)
}
