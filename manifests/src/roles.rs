//! What a VM's servers need of each other and of the guest's address space, checked so that a
//! system that compiles also runs: nothing here is visible to the kernel, every mistake here
//! showed only at run time, as a server's panic or a guest that silently did nothing.
//!
//! - The guest's RAM covers none of its device windows (`platform::GUEST_DEVICES`, and the
//!   virtio-mmio transports of its `devices`): a guest whose RAM covered its PL011 printed
//!   nothing at all.
//! - The shipped servers' contracts, for a VM whose role is played by one of them (any other
//!   program may look its capabilities up as it likes). They find each other by role
//!   (`bootdesc::bootinfo::find_vm_cap`): a capability named after the role, else
//!   `<role>-<vm>`.
//!   - [`MMU_SERVER`] serves one VM: it holds the stage 2 of the first VM of its boot info only,
//!     so a second VM naming it would never have its stage-2 faults resolved.
//!   - [`MMU_SERVER`], when it is not also the VM's memory server, asks the memory server for the
//!     VM's RAM frames through the endpoint it finds as `memory`, and panics without one, so that
//!     endpoint must be the VM's memory server's (a second memory server for a second VM, its
//!     endpoint named anything else, used to panic the mmu-server at start).
//!   - [`VMM_SERVER`], when it is not also the VM's mmu, sends stage-2 faults to the endpoint it
//!     finds as `mmu` (without one every fault is "not memory", which MMIO-only tests use), so
//!     that endpoint, if there is one, must be the VM's mmu's.

use crate::error::{ManifestError, Reporter};
use crate::fields::Sp;
use crate::schema::ManifestDef;
use crate::vm::VmDef;

/// The package of the shipped mmu-server (mmu-server/server).
pub const MMU_SERVER: &str = "mmu-server";
/// The package of the shipped vmm (vmm-server/server).
pub const VMM_SERVER: &str = "vmm-server";

/// Runs the checks of the servers of every VM (after `vm::check_vms`: every server a VM names
/// exists).
pub(crate) fn check(rep: &Reporter<'_>, def: &ManifestDef) -> Result<(), ManifestError> {
    let runs = |server: &Sp<String>, package: &str| {
        def.servers
            .iter()
            .any(|s| s.name.value == server.value && s.binary.value == package)
    };
    for (index, vm) in def.vms.iter().enumerate() {
        let shared_mmu = def.vms[..index]
            .iter()
            .find(|o| o.mmu.value == vm.mmu.value);
        if let (true, Some(first)) = (runs(&vm.mmu, MMU_SERVER), shared_mmu) {
            return Err(rep.error(
                &vm.mmu.span,
                &vm.mmu.key,
                format!(
                    "server `{}` is already the mmu of vm `{}`; the {MMU_SERVER} holds one VM's \
                     stage 2 (the first VM of its boot info), so vm `{}`'s stage-2 faults \
                     would never be resolved: give each VM its own mmu",
                    vm.mmu.value, first.name.value, vm.name.value
                ),
            ));
        }
        if vm.mmu.value != vm.memory.value && runs(&vm.mmu, MMU_SERVER) {
            let why = "the mmu-server asks it for the VM's RAM and stops without it";
            check_reaches(
                rep,
                def,
                vm,
                ("mmu", &vm.mmu),
                ("memory", &vm.memory),
                Some(why),
            )?;
        }
        if vm.vmm.value != vm.mmu.value && runs(&vm.vmm, VMM_SERVER) {
            check_reaches(rep, def, vm, ("vmm", &vm.vmm), ("mmu", &vm.mmu), None)?;
        }
    }
    Ok(())
}

/// A VM's RAM may not cover one of its device windows (checked before its devices' servers,
/// whose mapping of the RAM would be refused for a RAM this low anyway, but less to the point).
pub(crate) fn check_guest_ram(rep: &Reporter<'_>, vm: &VmDef) -> Result<(), ManifestError> {
    let (start, end) = (vm.ram_base, vm.ram_base + vm.ram_size);
    let Some(window) = crate::platform::guest_device_under(start, end, vm.devices.len()) else {
        return Ok(());
    };
    let (span, key) = match &vm.ram_base_at {
        Some(base) => (&base.span, &base.key),
        None => (&vm.ram_size_at.span, &vm.ram_size_at.key),
    };
    let devices = crate::platform::guest_device_span(vm.devices.len());
    Err(rep.error(
        span,
        key,
        format!(
            "vm `{}`'s RAM {start:#x}..{end:#x} covers {} ({:#x}..{:#x}): the guest would reach \
             RAM there instead of the device; keep its RAM clear of the guest's devices at \
             {:#x}..{:#x} (the default ram_base {:#x} is)",
            vm.name.value,
            window.name,
            window.base,
            window.end(),
            devices.0,
            devices.1,
            crate::vm::DEFAULT_RAM_BASE
        ),
    ))
}

/// What a server finds under a role name: the endpoint or notification of its capability
/// named `name`.
enum Capability<'a> {
    /// An endpoint it serves or is a client of, and the endpoint's server.
    Endpoint(&'a str),
    /// A notification it waits on or signals.
    Notification,
}

/// The capability named `name` that `server` holds, if any: an endpoint it serves or is a client
/// of, or a notification it waits on or signals (the other capability names have a `:`).
fn capability<'a>(def: &'a ManifestDef, server: &str, name: &str) -> Option<Capability<'a>> {
    let endpoint = def.endpoints.iter().find(|e| {
        e.name.value == name
            && (e.server.value == server || e.clients.iter().any(|c| c.server.value == server))
    });
    if let Some(endpoint) = endpoint {
        return Some(Capability::Endpoint(&endpoint.server.value));
    }
    def.notifications
        .iter()
        .any(|n| {
            n.name.value == name
                && (n.waiter.value == server
                    || n.signallers.iter().any(|s| s.server.value == server))
        })
        .then_some(Capability::Notification)
}

/// `from` (the server of role `from_role` of `vm`) must reach `to` (the server of role `role`)
/// through the capability it finds as `role` or `<role>-<vm>`. `required`: why finding nothing
/// is an error too.
fn check_reaches(
    rep: &Reporter<'_>,
    def: &ManifestDef,
    vm: &VmDef,
    (from_role, from): (&str, &Sp<String>),
    (role, to): (&str, &Sp<String>),
    required: Option<&str>,
) -> Result<(), ManifestError> {
    let vm_name = &vm.name.value;
    let suffixed = format!("{role}-{vm_name}");
    let found = [role, suffixed.as_str()]
        .into_iter()
        .find_map(|name| capability(def, &from.value, name).map(|found| (name, found)));
    let who = format!("vm `{vm_name}`'s {from_role} `{}`", from.value);
    let problem = match (found, required) {
        (Some((_, Capability::Endpoint(server))), _) if server == to.value => return Ok(()),
        (None, None) => return Ok(()),
        (None, Some(why)) => format!(
            "{who} finds its {role} server by an endpoint named `{role}` or `{suffixed}`, and \
             it has neither, so it cannot reach `{}` ({why})",
            to.value
        ),
        (Some((name, Capability::Endpoint(server))), _) => format!(
            "{who} finds its {role} server by the endpoint named `{name}`, which `{server}` \
             serves, not vm `{vm_name}`'s {role} server `{}`",
            to.value
        ),
        (Some((name, Capability::Notification)), _) => format!(
            "{who} finds its {role} server by the capability named `{name}`, which is a \
             notification, not an endpoint of `{}`",
            to.value
        ),
    };
    Err(rep.error(
        &to.span,
        &to.key,
        format!(
            "{problem}: give `{}` an endpoint of `{}` named `{suffixed}` (or `{role}`), and no \
             other endpoint or notification named `{role}`",
            from.value, to.value
        ),
    ))
}
