//! `[vms.<name>] devices`: the virtio-mmio devices of a VM, each served by a device server
//! (docs/VIRTIO.md, "Device servers").
//!
//! ```toml
//! devices = [{ kind = "virtio-blk", server = "vblk" }, { kind = "virtio-console", server = "vcon" }]
//! ```
//!
//! The n-th device gets the n-th virtio-mmio transport, at QEMU virt's base and SPIs
//! (hw/arm/virt.c `VIRT_MMIO`) but one page apart: the window [`TRANSPORT_BASE`] + n ×
//! [`TRANSPORT_STRIDE`], SPI 16 + n (INTID 48 + n), edge-rising in the device tree. The PL011
//! stays implicit, as before.
//!
//! What the compiler makes of each device (`compile.rs`, `payload.rs`):
//! - an endpoint named after the device server, served by it (`userlib::server::find_endpoint`
//!   finds it by the server's own name), with the VM's vmm as a client (a WRITE capability of
//!   the same name, badge = the vmm's index + 1), and the servers of the entry's `clients` too
//!   (`device_clients.rs`);
//! - a read-write mapping of the VM's RAM (`ram:<vm>`) into the device server at VA =
//!   `ram_base`, so a guest-physical address of RAM is the server's address of it;
//! - a `bootinfo::DeviceInfo` (kind, window, INTID, endpoint name) in the vmm's boot info (every
//!   device of its VM) and in the device server's (its own, with the VM's `VmInfo`);
//! - a state page `state:<server>` (one page of RAM) mapped read-write into the device server at
//!   `abi::layout::STATE_PAGE_VA`, where it keeps what must outlive its restarts (the vmm gets
//!   one too, `compile.rs`);
//! - a doorbell notification `doorbell:<server>` bound to the device server, signalled by the
//!   vmm (which makes it the route's doorbell at QueueNotify), and a `vmm-events` signal
//!   capability for the device server when the vmm waits on one (`compile.rs`);
//! - a `virtio_mmio` node in a Linux VM's device tree.
//!
//! Reading checks one table: the element keys, the kind, at most [`MAX_DEVICES`]. [`check`] does
//! the cross-table checks: the server exists, serves one device of one VM, is no VM's vmm, mmu or
//! memory server and not the supervisor, its endpoint's name is free, the VM's RAM fits its
//! region window and none of its other mappings, and its `clients` (`device_clients::check`).

use crate::error::{ManifestError, Reporter};
use crate::fields::{Fields, Sp};
use crate::schema::ManifestDef;
use crate::span::NodeValue;
use crate::validate::Names;
use abi::layout::{REGION_WINDOW_BASE, REGION_WINDOW_END};
pub(crate) use bootdesc::bootinfo::DeviceKind;

/// Guest-physical base of the first transport window (QEMU virt's `VIRT_MMIO`).
pub const TRANSPORT_BASE: u64 = 0x0A00_0000;
/// Bytes from one transport window to the next: a page each (the window itself is
/// [`crate::fdt::VIRTIO_MMIO_SIZE`]), so that each device has a stage-2 page of its own and
/// its accesses can take the kernel's MMIO fast path (docs/MMIO.md: routes are page-granular).
/// QEMU's own layout packs them 0x200 apart; the guest learns ours from its device tree.
pub const TRANSPORT_STRIDE: u64 = 0x1000;
/// The SPI of the first transport (QEMU virt's `VIRT_MMIO` IRQ 16: INTID 48).
pub const FIRST_SPI: u32 = 16;
/// The most devices a VM may have: QEMU virt's 32 transports.
pub const MAX_DEVICES: usize = 32;

const DEVICE_KEYS: &[&str] = &["kind", "server", crate::device_clients::KEY];

/// One element of `devices`.
#[derive(Clone, Debug)]
pub(crate) struct DeviceDef {
    pub kind: Sp<DeviceKind>,
    pub server: Sp<String>,
    /// `clients`: servers besides the vmm that call the device server (`device_clients.rs`).
    pub clients: Vec<crate::schema::PeerDef>,
}

/// The guest-physical window and SPI of the `n`-th device.
pub(crate) fn transport(n: usize) -> (u64, u32) {
    // n < MAX_DEVICES (checked when read).
    (
        TRANSPORT_BASE + n as u64 * TRANSPORT_STRIDE,
        FIRST_SPI + n as u32,
    )
}

/// Reads `devices` of the VM table `f` (absent: none).
pub(crate) fn read_devices(f: &Fields<'_>) -> Result<Vec<DeviceDef>, ManifestError> {
    const EXPECTED: &str = "an array of { kind, server } tables";
    let Some(node) = f.node("devices") else {
        return Ok(Vec::new());
    };
    let NodeValue::Array(elements) = &node.value else {
        return Err(f.wrong_type(&f.key("devices"), node, EXPECTED));
    };
    if elements.len() > MAX_DEVICES {
        let extra = &elements[MAX_DEVICES];
        return Err(f.rep.error(
            &extra.span,
            &format!("{}[{MAX_DEVICES}]", f.key("devices")),
            format!(
                "{} has {} devices; a VM has at most {MAX_DEVICES}, one per virtio-mmio \
                 transport ({TRANSPORT_BASE:#x} + n * {TRANSPORT_STRIDE:#x}, SPI \
                 {FIRST_SPI} + n)",
                f.what,
                elements.len()
            ),
        ));
    }
    let mut devices = Vec::new();
    for (index, element) in elements.iter().enumerate() {
        let key = format!("{}[{index}]", f.key("devices"));
        if !matches!(element.value, NodeValue::Table(_)) {
            return Err(f.wrong_type(&key, element, "a { kind, server } table"));
        }
        let what = format!("`{key}`");
        let d = Fields::new(f.rep, element, key, what, element.span.clone(), DEVICE_KEYS)?;
        let kind = d.required_string("kind")?;
        let kind_value = match kind.value.as_str() {
            "virtio-blk" => DeviceKind::VirtioBlk,
            "virtio-console" => DeviceKind::VirtioConsole,
            other => {
                return Err(d.error(
                    &kind.span,
                    "kind",
                    format!(
                        "unknown device kind {other:?} (expected \"virtio-blk\" or \
                         \"virtio-console\")"
                    ),
                ));
            }
        };
        devices.push(DeviceDef {
            kind: Sp {
                value: kind_value,
                span: kind.span,
                key: kind.key,
            },
            server: d.required_string("server")?,
            clients: crate::device_clients::read(&d)?,
        });
    }
    Ok(devices)
}

/// The cross-table checks of every VM's devices (after the VMs' own servers were checked).
pub(crate) fn check(
    rep: &Reporter<'_>,
    names: &Names<'_>,
    def: &ManifestDef,
) -> Result<(), ManifestError> {
    // Device server → the VM that has it.
    let mut taken: std::collections::BTreeMap<&str, &str> = std::collections::BTreeMap::new();
    for vm in &def.vms {
        for device in &vm.devices {
            let server = &device.server;
            let index = names.server(server)?;
            let fail = |message: String| Err(rep.error(&server.span, &server.key, message));
            if let Some(first) = taken.insert(&server.value, &vm.name.value) {
                return fail(format!(
                    "server `{}` already serves a device of vm `{first}`; a device server serves \
                     one device (it answers one transport's MMIO on one endpoint)",
                    server.value
                ));
            }
            if def.servers[index]
                .supervisor
                .as_ref()
                .is_some_and(|s| s.value)
            {
                return fail(format!(
                    "server `{}` is the supervisor; a device server runs its device's serve \
                     loop and nothing else",
                    server.value
                ));
            }
            for other in &def.vms {
                let roles = [
                    ("vmm", &other.vmm),
                    ("mmu", &other.mmu),
                    ("memory", &other.memory),
                ];
                if let Some((role, _)) = roles.iter().find(|(_, s)| s.value == server.value) {
                    return fail(format!(
                        "server `{}` is the `{role}` of vm `{}`; a device server runs its \
                         device's serve loop and nothing else",
                        server.value, other.name.value
                    ));
                }
            }
            let endpoints = def.endpoints.iter().map(|e| ("an endpoint", &e.name));
            let notifications = def
                .notifications
                .iter()
                .map(|n| ("a notification", &n.name));
            if let Some((what, _)) = endpoints
                .chain(notifications)
                .find(|(_, name)| name.value == server.value)
            {
                return fail(format!(
                    "the compiler names the endpoint of device server `{0}` after it, and there \
                     is already {what} `{0}`; rename one (a server that calls the device server \
                     is listed in the device's `clients`)",
                    server.value
                ));
            }
            if let Some(bound) = def.notifications.iter().find(|n| {
                n.waiter.value == server.value && n.bind.as_ref().is_some_and(|b| b.value)
            }) {
                return fail(format!(
                    "server `{}` is bound to notification `{}`, and a device server's bound \
                     notification is its doorbell (`doorbell:{}`, which the compiler adds); \
                     drop `bind` there",
                    server.value, bound.name.value, server.value
                ));
            }
            check_ram_mapping(rep, def, vm, device)?;
            crate::device_clients::check(rep, names, vm, device)?;
        }
    }
    Ok(())
}

/// The VM's RAM, mapped into the device server at VA = `ram_base`, must lie in the server's
/// region window (`abi::layout`) and clear of the server's own mappings.
fn check_ram_mapping(
    rep: &Reporter<'_>,
    def: &ManifestDef,
    vm: &crate::vm::VmDef,
    device: &DeviceDef,
) -> Result<(), ManifestError> {
    let server = &device.server;
    let (start, end) = (vm.ram_base, vm.ram_base + vm.ram_size);
    // The state page sits at the top of the window: the RAM must end below it.
    if start < REGION_WINDOW_BASE || end > REGION_WINDOW_END {
        return Err(rep.error(
            &server.span,
            &server.key,
            format!(
                "device server `{}` maps vm `{}`'s RAM at its guest-physical address \
                 {start:#x}..{end:#x}, outside a device server's region window \
                 {REGION_WINDOW_BASE:#x}..{REGION_WINDOW_END:#x} (abi::layout; its state page \
                 follows): give the VM a ram_base of at least {REGION_WINDOW_BASE:#x}",
                server.value, vm.name.value
            ),
        ));
    }
    for region in &def.regions {
        for map in region
            .maps
            .iter()
            .filter(|m| m.server.value == server.value)
        {
            let (o_start, o_end) = (map.at.value, map.at.value + region.size);
            if start < o_end && o_start < end {
                return Err(rep.error(
                    &server.span,
                    &server.key,
                    format!(
                        "device server `{}` maps vm `{}`'s RAM at {start:#x}..{end:#x}, which \
                         overlaps its mapping of region `{}` at {o_start:#x}..{o_end:#x}; map the \
                         region elsewhere",
                        server.value, vm.name.value, region.name.value
                    ),
                ));
            }
        }
    }
    Ok(())
}
