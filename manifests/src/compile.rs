//! From a validated manifest to a [`Plan`]: object indices, the implicit fault endpoint, every
//! capability with its slot, rights and badge, each server's CNode size, and each VM's objects.
//!
//! Indices are positions in the file (servers, endpoints, notifications, regions, irqs, vms each
//! counted on their own), with the compiler's objects after the manifest's: the endpoints are
//! the manifest's, then `faults` (served by the supervisor), then `exits:<vm>` per VM (served by
//! its vmm), then one per device of each VM's `devices`, in VM order, named after its device
//! server and served by it; the regions are the manifest's, then `ram:<vm>` per VM (RAM, the
//! guest's size), then `state:<server>` per device and then per VM for its vmm (one RAM page,
//! mapped into the server at `abi::layout::STATE_PAGE_VA`: what the server keeps across its
//! restarts). Adding a VM therefore renumbers no manifest object (only device endpoints). Slots are assigned from [`abi::FIRST_FREE_SLOT`]
//! upwards, per server, in a fixed order of groups, each group in index order:
//!
//! 1. endpoints it serves (READ, badge 0): its manifest endpoints, `faults` for the supervisor,
//!    `exits:<vm>` for a vmm, its own endpoint for a device server;
//! 2. endpoints it is a client of (WRITE, + GRANT when `grant = true`; badge default index + 1),
//!    then, for a vmm, its VM's device endpoints (WRITE, badge index + 1), in transport order,
//!    then the device endpoints whose `clients` list it (`device_clients.rs`);
//! 3. notifications it waits on (READ, badge 0);
//! 4. notifications it signals (WRITE; badge default 1), then the compiler's for devices: a
//!    vmm's `doorbell:<server>` per device of its VM (WRITE), a device server's own
//!    `doorbell:<server>` (READ) and `vmm-events` ([`device_notification_caps`]);
//! 5. `irq:<name>` handlers for irqs delivered to notifications it waits on;
//! 6. `tcb:<server>` for every other server (the supervisor only);
//! 7. `system` (SystemControl) when `system_control = true`;
//! 8. per VM, in VM order: `tcb:<vm>` (GuestTcb) and `vcpu:<vm>` (Vcpu) for its vmm,
//!    `vspace:<vm>` (GuestVSpace) for its mmu, `ram:<vm>` (Frame over its RAM region) for its
//!    memory server;
//! 9. `frames:<region>` (Frame over the region, with the rights of the server's own mappings of
//!    it) for each RAM region whose `frames` lists the server, in region order;
//! 10. `debug:console` (DebugConsole) and `debug:log` (DebugLog), as its `debug` key lists them.
//!
//! Notifications are the manifest's, then one `doorbell:<server>` per device (VM order, then
//! transport order), bound to its device server.
//!
//! Capability names are an endpoint's or notification's name, `irq:<name>`, `tcb:<server>`,
//! `doorbell:<server>`,
//! `system`, `exits:<vm>`, `tcb:<vm>`, `vcpu:<vm>`, `vspace:<vm>`, `ram:<vm>`,
//! `frames:<region>`, `debug:console` or `debug:log`; validation guarantees they are unique within a server (manifest names have
//! no `:`, and a VM is never named like a server).

use crate::error::{ManifestError, Reporter};
use crate::schema::{ManifestDef, MapDef, MapRights, PeerDef};
use crate::validate::Names;
use crate::vm::{GuestDef, LinuxDef};
use abi::Rights;
use bootdesc::{CapObject, Mapping, RegionKind, RestartPolicy, ServerRole};

/// The name of the implicit endpoint every server's faults are sent to.
pub const FAULT_ENDPOINT: &str = "faults";
/// The prefix of the capability a region's `frames` key grants: `frames:<region>`.
pub const FRAMES_PREFIX: &str = "frames:";
/// The name of the capability `debug = ["console"]` grants (console text).
pub const DEBUG_CONSOLE: &str = abi::DEBUG_CONSOLE_CAP;
/// The name of the capability `debug = ["log"]` grants (defmt records).
pub const DEBUG_LOG: &str = abi::DEBUG_LOG_CAP;
/// The name of the capability `debug = ["input"]` grants (console input).
pub const DEBUG_INPUT: &str = "debug:input";
/// The prefix of a state page region: `state:<device server or vmm>`.
pub const STATE_PREFIX: &str = "state:";
/// The prefix of a device's doorbell notification: `doorbell:<device server>`.
pub const DOORBELL_PREFIX: &str = "doorbell:";
/// The vmm's bound notification that device servers signal when their line changed on their own.
pub const VMM_EVENTS: &str = "vmm-events";
/// Slots added to what a server needs when the manifest does not set `cnode_slots`.
pub const SPARE_SLOTS: u16 = 16;
/// The largest CNode a manifest may ask for.
pub const MAX_CNODE_SLOTS: u16 = 4096;

/// One capability of a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CapPlan {
    pub name: String,
    pub slot: u16,
    pub object: CapObject,
}

/// A server the supervisor looks after.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SupervisedPlan {
    pub name: String,
    pub fault_badge: u64,
    pub tcb_slot: u16,
    pub restart: RestartPolicy,
}

/// Everything the boot description says about one server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServerPlan {
    pub name: String,
    pub binary: String,
    pub priority: u8,
    pub stack_bytes: u32,
    pub heap_bytes: u32,
    pub cnode_slots: u16,
    pub restart: RestartPolicy,
    pub role: ServerRole,
    pub fault_endpoint: Option<u16>,
    pub fault_badge: u64,
    pub inject_fault: Option<bootdesc::InjectedFault>,
    pub caps: Vec<CapPlan>,
    pub supervised: Vec<SupervisedPlan>,
}

/// A region as the boot description carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RegionPlan {
    pub name: String,
    pub kind: RegionKind,
    pub size: u64,
}

/// An irq as the boot description carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IrqPlan {
    pub name: String,
    pub intid: u32,
    pub notification: u16,
    pub badge: u64,
}

/// What a VM runs, as the payload builder needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum GuestPlan {
    /// The cargo package of the guest ELF (its bytes are given to the payload by VM name).
    Elf(String),
    /// Linux: its files are given to the payload by path.
    Linux(Box<LinuxDef>),
}

/// A VM as the boot description carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct VmPlan {
    pub name: String,
    /// What it runs.
    pub guest: GuestPlan,
    pub ram_base: u64,
    pub ram_region: u16,
    pub priority: u8,
    pub exit_endpoint: u16,
    pub exit_badge: u64,
    /// `resets`, 0 when not given.
    pub resets: u32,
    /// Its virtio-mmio devices, in transport order.
    pub devices: Vec<DevicePlan>,
    /// `mmio_markers`: whether the kernel keeps MMIO markers for it.
    pub mmio_markers: bool,
    /// `dirty_log_windows`, or its default.
    pub dirty_log_windows: u16,
}

/// A virtio-mmio device of a VM (`devices.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DevicePlan {
    pub kind: crate::devices::DeviceKind,
    /// The device server's index.
    pub server: u16,
    /// Its endpoint (named after the server, served by it; the vmm is its client).
    pub endpoint: u16,
    /// Its doorbell notification (`doorbell:<server>`, bound to the server; the vmm signals).
    pub doorbell: u16,
    /// Guest-physical base of its transport window.
    pub base: u64,
    /// Its SPI (INTID = 32 + SPI).
    pub spi: u32,
}

/// The compiled system: every record of the boot description except the images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub name: String,
    pub timeslice_us: u32,
    pub test_system: bool,
    pub servers: Vec<ServerPlan>,
    /// (name, serving server): the manifest's, `faults`, then `exits:<vm>` per VM.
    pub endpoints: Vec<(String, Option<u16>)>,
    /// (name, the server it is bound to when `bind = true`).
    pub notifications: Vec<(String, Option<u16>)>,
    pub regions: Vec<RegionPlan>,
    pub irqs: Vec<IrqPlan>,
    pub mappings: Vec<Mapping>,
    pub vms: Vec<VmPlan>,
}

/// The rights of `frames:<region>` for `server`: those of its own mappings of the region
/// (validation made sure there is one), so the capability can never map the memory more widely
/// than the manifest already does.
fn frame_rights(maps: &[MapDef], server: &str) -> Rights {
    maps.iter()
        .filter(|map| map.server.value == server)
        .map(|map| match map.rights {
            MapRights::Read => Rights::READ,
            MapRights::ReadWrite => Rights::READ.union(Rights::WRITE),
            MapRights::ReadExecute => Rights::READ.union(Rights::EXECUTE),
        })
        .fold(Rights::NONE, Rights::union)
}

/// The badge of an endpoint client: as written, or its server index + 1.
pub(crate) fn client_badge(peer: &PeerDef, server: usize) -> u64 {
    peer.badge.as_ref().map_or(server as u64 + 1, |b| b.value)
}

/// The badge of a notification signaller: as written, or 1.
fn signaller_badge(peer: &PeerDef) -> u64 {
    peer.badge.as_ref().map_or(1, |b| b.value)
}

/// Counts fit `u16`: `validate::check_counts` refused anything larger.
fn index(value: usize) -> u16 {
    u16::try_from(value).unwrap_or(u16::MAX)
}

/// Compiles a validated manifest. Fails only when a `cnode_slots` is too small for the server's
/// capabilities (or a server needs more than [`MAX_CNODE_SLOTS`]).
pub(crate) fn compile(
    rep: &Reporter<'_>,
    def: &ManifestDef,
    supervisor: usize,
) -> Result<Plan, ManifestError> {
    let names = Names::new(rep, def);
    let fault_endpoint = index(def.endpoints.len());
    let mut endpoints = Vec::new();
    for endpoint in &def.endpoints {
        let server = names.server(&endpoint.server)?;
        endpoints.push((endpoint.name.value.clone(), Some(index(server))));
    }
    endpoints.push((FAULT_ENDPOINT.to_string(), Some(index(supervisor))));
    let first_exit_endpoint = endpoints.len();
    let first_ram_region = def.regions.len();
    let mut vms = Vec::new();
    for (v, vm) in def.vms.iter().enumerate() {
        let vmm = names.server(&vm.vmm)?;
        endpoints.push((format!("exits:{}", vm.name.value), Some(index(vmm))));
        vms.push(VmPlan {
            name: vm.name.value.clone(),
            guest: match &vm.guest {
                GuestDef::Elf(package) => GuestPlan::Elf(package.value.clone()),
                GuestDef::Linux(linux) => GuestPlan::Linux(linux.clone()),
            },
            ram_base: vm.ram_base,
            ram_region: index(first_ram_region + v),
            priority: vm.priority,
            exit_endpoint: index(first_exit_endpoint + v),
            exit_badge: v as u64 + 1,
            resets: vm.resets.as_ref().map_or(0, |r| r.value),
            devices: Vec::new(),
            mmio_markers: vm.mmio_markers,
            dirty_log_windows: vm.dirty_log_windows,
        });
    }
    // The devices' endpoints, after every exit endpoint: VM order, then transport order; their
    // doorbell notifications likewise, after the manifest's.
    let mut doorbells: Vec<(String, Option<u16>)> = Vec::new();
    for (vm, plan) in def.vms.iter().zip(vms.iter_mut()) {
        for (n, device) in vm.devices.iter().enumerate() {
            let server = index(names.server(&device.server)?);
            let (base, spi) = crate::devices::transport(n);
            let doorbell = index(def.notifications.len() + doorbells.len());
            doorbells.push((
                format!("{DOORBELL_PREFIX}{}", device.server.value),
                Some(server),
            ));
            plan.devices.push(DevicePlan {
                kind: device.kind.value,
                server,
                endpoint: index(endpoints.len()),
                doorbell,
                base,
                spi,
            });
            endpoints.push((device.server.value.clone(), Some(server)));
        }
    }

    let mut servers = Vec::new();
    for (s, server) in def.servers.iter().enumerate() {
        let mut caps: Vec<(String, CapObject)> = Vec::new();
        for (e, (name, owner)) in endpoints.iter().enumerate() {
            if *owner == Some(index(s)) {
                let object = CapObject::Endpoint {
                    index: index(e),
                    badge: 0,
                    rights: Rights::READ,
                };
                caps.push((name.clone(), object));
            }
        }
        for (e, endpoint) in def.endpoints.iter().enumerate() {
            for client in &endpoint.clients {
                if names.server(&client.server)? == s {
                    let grant = if client.grant {
                        Rights::GRANT
                    } else {
                        Rights::NONE
                    };
                    let object = CapObject::Endpoint {
                        index: index(e),
                        badge: client_badge(client, s),
                        rights: Rights::WRITE.union(grant),
                    };
                    caps.push((endpoint.name.value.clone(), object));
                }
            }
        }
        // A vmm calls its VM's device servers, as a client of their endpoints.
        for (vm, plan) in def.vms.iter().zip(&vms) {
            if names.server(&vm.vmm)? == s {
                for device in &plan.devices {
                    let object = CapObject::Endpoint {
                        index: device.endpoint,
                        badge: s as u64 + 1,
                        rights: Rights::WRITE,
                    };
                    caps.push((endpoints[usize::from(device.endpoint)].0.clone(), object));
                }
            }
        }
        // A device's `clients` call it as the vmm does.
        crate::device_clients::caps(&names, def, &vms, s, &mut caps)?;
        let mut waited = Vec::new();
        for (n, notification) in def.notifications.iter().enumerate() {
            if names.server(&notification.waiter)? == s {
                waited.push(n);
                let object = CapObject::Notification {
                    index: index(n),
                    badge: 0,
                    rights: Rights::READ,
                };
                caps.push((notification.name.value.clone(), object));
            }
        }
        for (n, notification) in def.notifications.iter().enumerate() {
            for signaller in &notification.signallers {
                if names.server(&signaller.server)? == s {
                    let object = CapObject::Notification {
                        index: index(n),
                        badge: signaller_badge(signaller),
                        rights: Rights::WRITE,
                    };
                    caps.push((notification.name.value.clone(), object));
                }
            }
        }
        device_notification_caps(&names, def, &vms, s, &mut caps)?;
        for (i, irq) in def.irqs.iter().enumerate() {
            if waited.contains(&names.notification(&irq.notification)?) {
                let name = format!("irq:{}", irq.name.value);
                caps.push((name, CapObject::IrqHandler { irq: index(i) }));
            }
        }
        if s == supervisor {
            for (t, other) in def.servers.iter().enumerate().filter(|&(t, _)| t != s) {
                let name = format!("tcb:{}", other.name.value);
                caps.push((name, CapObject::Tcb { server: index(t) }));
            }
        }
        if server.system_control {
            caps.push(("system".to_string(), CapObject::SystemControl));
        }
        for (v, (vm, plan)) in def.vms.iter().zip(&vms).enumerate() {
            let (name, vm_index) = (&vm.name.value, index(v));
            if names.server(&vm.vmm)? == s {
                caps.push((format!("tcb:{name}"), CapObject::GuestTcb { vm: vm_index }));
                caps.push((format!("vcpu:{name}"), CapObject::Vcpu { vm: vm_index }));
            }
            if names.server(&vm.mmu)? == s {
                let object = CapObject::GuestVSpace { vm: vm_index };
                caps.push((format!("vspace:{name}"), object));
            }
            if names.server(&vm.memory)? == s {
                // Guest RAM: the guest reads, writes and runs from it, so the frames its
                // mmu-server maps carry all three rights (lending can only narrow them).
                let object = CapObject::Frame {
                    region: plan.ram_region,
                    rights: Rights::READ.union(Rights::WRITE).union(Rights::EXECUTE),
                };
                caps.push((format!("ram:{name}"), object));
            }
        }
        for (r, region) in def.regions.iter().enumerate() {
            if region.frames.iter().any(|f| f.value == server.name.value) {
                let object = CapObject::Frame {
                    region: index(r),
                    rights: frame_rights(&region.maps, &server.name.value),
                };
                caps.push((format!("{FRAMES_PREFIX}{}", region.name.value), object));
            }
        }
        if server.debug.console {
            caps.push((DEBUG_CONSOLE.to_string(), CapObject::DebugConsole));
        }
        if server.debug.log {
            caps.push((DEBUG_LOG.to_string(), CapObject::DebugLog));
        }
        if server.debug.input {
            caps.push((DEBUG_INPUT.to_string(), CapObject::DebugInput));
        }

        let needed = abi::FIRST_FREE_SLOT as usize + caps.len();
        let cnode_slots = match &server.cnode_slots {
            Some(slots) if usize::from(slots.value) < needed => {
                return Err(rep.error(
                    &slots.span,
                    &slots.key,
                    format!(
                        "cnode_slots {} is too small: server `{}` needs at least {needed} slots \
                         ({} reserved + {} capabilities)",
                        slots.value,
                        server.name.value,
                        abi::FIRST_FREE_SLOT,
                        caps.len()
                    ),
                ));
            }
            Some(slots) => slots.value,
            None if needed > usize::from(MAX_CNODE_SLOTS) => {
                return Err(rep.error(
                    &server.name.span,
                    &server.name.key,
                    format!(
                        "server `{}` needs {needed} capability slots, more than the largest \
                         CNode ({MAX_CNODE_SLOTS})",
                        server.name.value
                    ),
                ));
            }
            None => (index(needed) + SPARE_SLOTS).min(MAX_CNODE_SLOTS),
        };
        let caps: Vec<CapPlan> = caps
            .into_iter()
            .enumerate()
            .map(|(i, (name, object))| CapPlan {
                name,
                slot: index(abi::FIRST_FREE_SLOT as usize + i),
                object,
            })
            .collect();
        let is_supervisor = s == supervisor;
        servers.push(ServerPlan {
            name: server.name.value.clone(),
            binary: server.binary.value.clone(),
            priority: server.priority,
            stack_bytes: server.stack,
            heap_bytes: server.heap,
            cnode_slots,
            restart: server.restart.value,
            role: if is_supervisor {
                ServerRole::Supervisor
            } else {
                ServerRole::Ordinary
            },
            fault_endpoint: if is_supervisor {
                None
            } else {
                Some(fault_endpoint)
            },
            fault_badge: s as u64 + 1,
            inject_fault: server
                .injects
                .first()
                .map(|(at, count)| bootdesc::InjectedFault {
                    at: *at,
                    count: count.value,
                }),
            supervised: Vec::new(),
            caps,
        });
    }
    let supervised = supervised(&servers, supervisor);
    if let Some(plan) = servers.get_mut(supervisor) {
        plan.supervised = supervised;
    }

    let mut mappings = Vec::new();
    for (r, region) in def.regions.iter().enumerate() {
        for map in &region.maps {
            mappings.push(Mapping {
                server: index(names.server(&map.server)?),
                region: index(r),
                va: map.at.value,
                writable: map.rights == MapRights::ReadWrite,
                executable: map.rights == MapRights::ReadExecute,
            });
        }
    }
    // Each device server maps its VM's RAM read-write at VA = the RAM's guest-physical base,
    // and its state page (`state:<server>`, after every `ram:<vm>`) at STATE_PAGE_VA; then each
    // VM's vmm its own state page (its vGIC model, docs/VMM.md "Restart").
    let first_state_region = def.regions.len() + def.vms.len();
    let mut states = Vec::new();
    for plan in &vms {
        for device in &plan.devices {
            mappings.push(Mapping {
                server: device.server,
                region: plan.ram_region,
                va: plan.ram_base,
                writable: true,
                executable: false,
            });
            mappings.push(Mapping {
                server: device.server,
                region: index(first_state_region + states.len()),
                va: abi::layout::STATE_PAGE_VA,
                writable: true,
                executable: false,
            });
            states.push(RegionPlan {
                name: format!(
                    "{STATE_PREFIX}{}",
                    def.servers[usize::from(device.server)].name.value
                ),
                kind: RegionKind::Ram,
                size: abi::layout::PAGE_SIZE,
            });
        }
    }
    for vm in &def.vms {
        mappings.push(Mapping {
            server: index(names.server(&vm.vmm)?),
            region: index(first_state_region + states.len()),
            va: abi::layout::STATE_PAGE_VA,
            writable: true,
            executable: false,
        });
        states.push(RegionPlan {
            name: format!("{STATE_PREFIX}{}", vm.vmm.value),
            kind: RegionKind::Ram,
            size: abi::layout::PAGE_SIZE,
        });
    }
    let mut irqs = Vec::new();
    for irq in &def.irqs {
        irqs.push(IrqPlan {
            name: irq.name.value.clone(),
            intid: irq.intid.value,
            notification: index(names.notification(&irq.notification)?),
            badge: irq.badge,
        });
    }
    Ok(Plan {
        name: def.system.name.value.clone(),
        timeslice_us: def.system.timeslice_us,
        test_system: def.system.test,
        servers,
        endpoints,
        notifications: def
            .notifications
            .iter()
            .map(|n| {
                let bound = n
                    .bind
                    .as_ref()
                    .is_some_and(|b| b.value)
                    .then(|| {
                        def.servers
                            .iter()
                            .position(|s| s.name.value == n.waiter.value)
                            .map(|i| i as u16)
                    })
                    .flatten();
                (n.name.value.clone(), bound)
            })
            .chain(doorbells)
            .collect(),
        regions: def
            .regions
            .iter()
            .map(|region| RegionPlan {
                name: region.name.value.clone(),
                kind: match &region.base {
                    Some(base) => RegionKind::Device {
                        phys_base: base.value,
                    },
                    None => RegionKind::Ram,
                },
                size: region.size,
            })
            .chain(def.vms.iter().map(|vm| RegionPlan {
                name: format!("ram:{}", vm.name.value),
                kind: RegionKind::Ram,
                size: vm.ram_size,
            }))
            .chain(states)
            .collect(),
        irqs,
        mappings,
        vms,
    })
}

/// The notifications the compiler adds for devices (group 4 of the slot order, after the
/// manifest's): a vmm signals each device's doorbell (`doorbell:<server>`, WRITE, badge 1; it
/// hands it to the kernel as the route's doorbell, docs/MMIO.md), a device server holds its
/// own doorbell (READ: where it may have console input signalled), and a device server signals
/// its vmm's `vmm-events` (WRITE, badge 1) when that vmm waits on one and the manifest does not
/// list the server there already: on the fast path the vmm sees none of the device's answers,
/// so the device tells it when its interrupt line changed. The n-th device's badge is
/// `abi::vm::device_event_badge(n)`, so the vmm knows which line moved.
fn device_notification_caps(
    names: &Names<'_>,
    def: &ManifestDef,
    vms: &[VmPlan],
    s: usize,
    caps: &mut Vec<(String, CapObject)>,
) -> Result<(), ManifestError> {
    let signal = |index: usize, badge: u64| CapObject::Notification {
        index: crate::compile::index(index),
        badge,
        rights: Rights::WRITE,
    };
    for (vm, plan) in def.vms.iter().zip(vms) {
        let vmm = names.server(&vm.vmm)?;
        for (n, device) in plan.devices.iter().enumerate() {
            if vmm == s {
                let name = format!(
                    "{DOORBELL_PREFIX}{}",
                    def.servers[usize::from(device.server)].name.value
                );
                caps.push((name, signal(usize::from(device.doorbell), 1)));
            }
            if usize::from(device.server) != s {
                continue;
            }
            // Its own doorbell, READ: bound to it already, so it receives without this; the
            // capability lets it have console input signalled there (`DebugInputBind`).
            let own = format!("{DOORBELL_PREFIX}{}", def.servers[s].name.value);
            let wait = CapObject::Notification {
                index: crate::compile::index(usize::from(device.doorbell)),
                badge: 0,
                rights: Rights::READ,
            };
            caps.push((own, wait));
            let events = def
                .notifications
                .iter()
                .enumerate()
                .find(|(_, n)| n.name.value == VMM_EVENTS && n.waiter.value == vm.vmm.value);
            if let Some((events_index, events)) = events
                && !events
                    .signallers
                    .iter()
                    .any(|p| names.server(&p.server) == Ok(s))
            {
                caps.push((
                    VMM_EVENTS.to_string(),
                    signal(events_index, abi::vm::device_event_badge(n)),
                ));
            }
        }
    }
    Ok(())
}

/// The supervisor's list: every other server, in index order, with its TCB slot.
fn supervised(servers: &[ServerPlan], supervisor: usize) -> Vec<SupervisedPlan> {
    let tcb_slot = |name: &str| {
        servers
            .get(supervisor)
            .and_then(|s| s.caps.iter().find(|cap| cap.name == format!("tcb:{name}")))
            .map_or(0, |cap| cap.slot)
    };
    servers
        .iter()
        .enumerate()
        .filter(|&(t, _)| t != supervisor)
        .map(|(_, server)| SupervisedPlan {
            name: server.name.clone(),
            fault_badge: server.fault_badge,
            tcb_slot: tcb_slot(&server.name),
            restart: server.restart,
        })
        .collect()
}
