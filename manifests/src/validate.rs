//! Cross-table checks: references, the supervisor, reserved and clashing names, duplicates and
//! overlaps.
//!
//! Runs after `schema.rs` has read every table on its own. A manifest that passes here has
//! exactly one supervisor (restart "never"), only references to objects that exist, no server
//! listed twice on one endpoint or notification, distinct client badges per endpoint, no device
//! region over a kernel-owned device or RAM (`platform.rs`), no two device regions over the same
//! physical page, no two mappings of one server over the same
//! address, every server of a region's `frames` mapping that region, unique interrupt ids, and
//! no more servers or VMs than VMIDs (`platform.rs`). VMs are checked by `vm::check_vms`, then
//! what their servers must find of each other by `roles::check` (last). [`Names`] also serves
//! `compile.rs` to turn names into indices, and says what a name of the wrong kind of object
//! names ("`guest` is a vm, not a server").

use crate::error::{ManifestError, Reporter};
use crate::fields::Sp;
use crate::names::shown;
use crate::schema::{ManifestDef, PeerDef};
use std::collections::BTreeMap;

/// Name → index maps for the objects other tables refer to.
pub(crate) struct Names<'a> {
    rep: &'a Reporter<'a>,
    servers: BTreeMap<&'a str, usize>,
    notifications: BTreeMap<&'a str, usize>,
    /// Every name the manifest gives, with its kind ("vm", "endpoint"), so that a reference to
    /// the wrong kind of object can say what it names.
    defined: Vec<(&'a str, &'static str)>,
}

impl<'a> Names<'a> {
    /// Indexes `def`'s servers and notifications (names are unique: TOML refuses duplicate keys).
    pub fn new(rep: &'a Reporter<'a>, def: &'a ManifestDef) -> Self {
        let index =
            |names: Vec<&'a str>| names.into_iter().enumerate().map(|(i, n)| (n, i)).collect();
        let kind = |kind: &'static str| move |name: &'a Sp<String>| (name.value.as_str(), kind);
        let defined = (def.servers.iter().map(|s| &s.name).map(kind("server")))
            .chain(def.vms.iter().map(|v| &v.name).map(kind("vm")))
            .chain(def.endpoints.iter().map(|e| &e.name).map(kind("endpoint")))
            .chain(
                def.notifications
                    .iter()
                    .map(|n| &n.name)
                    .map(kind("notification")),
            )
            .chain(def.regions.iter().map(|r| &r.name).map(kind("region")))
            .chain(def.irqs.iter().map(|i| &i.name).map(kind("irq")))
            .collect();
        Self {
            rep,
            servers: index(def.servers.iter().map(|s| s.name.value.as_str()).collect()),
            notifications: index(
                def.notifications
                    .iter()
                    .map(|n| n.name.value.as_str())
                    .collect(),
            ),
            defined,
        }
    }

    /// The index of the server `name` refers to.
    pub fn server(&self, name: &Sp<String>) -> Result<usize, ManifestError> {
        self.lookup(&self.servers, name, "server")
    }

    /// The index of the notification `name` refers to.
    pub fn notification(&self, name: &Sp<String>) -> Result<usize, ManifestError> {
        self.lookup(&self.notifications, name, "notification")
    }

    /// `name` in `map`, or an error that lists what there is and says what `name` names when it
    /// is another kind of object.
    fn lookup(
        &self,
        map: &BTreeMap<&str, usize>,
        name: &Sp<String>,
        kind: &str,
    ) -> Result<usize, ManifestError> {
        map.get(name.value.as_str()).copied().ok_or_else(|| {
            let mut known: Vec<_> = map.iter().map(|(name, &index)| (index, *name)).collect();
            known.sort_unstable();
            let known: Vec<_> = known.iter().map(|(_, name)| format!("`{name}`")).collect();
            let hint = if known.is_empty() {
                format!("there are no {kind}s")
            } else {
                format!("known {kind}s: {}", known.join(", "))
            };
            let shown = shown(&name.value);
            let other = self
                .defined
                .iter()
                .find(|(defined, other)| *defined == name.value && *other != kind);
            let is = match other {
                Some((_, "vm")) if kind == "server" => format!(
                    ": {shown} is a vm, not a server; a VM holds no capabilities (its vmm acts \
                     for it)"
                ),
                Some((_, other)) => {
                    format!(": {shown} is {} {other}, not a {kind}", article(other))
                }
                None => String::new(),
            };
            self.rep.error(
                &name.span,
                &name.key,
                format!("unknown {kind} {shown}{is} ({hint})"),
            )
        })
    }
}

/// "a" or "an" before a kind of object.
fn article(kind: &str) -> &'static str {
    if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// Runs every cross-table check; returns the supervisor's index.
pub(crate) fn validate(rep: &Reporter<'_>, def: &ManifestDef) -> Result<usize, ManifestError> {
    let names = Names::new(rep, def);
    check_counts(rep, def)?;
    let supervisor = check_servers(rep, def)?;
    check_object_names(rep, def)?;
    for endpoint in &def.endpoints {
        let server = names.server(&endpoint.server)?;
        check_peers(
            rep,
            &names,
            &endpoint.clients,
            server,
            "endpoint",
            &endpoint.name,
            true,
        )?;
    }
    let mut bound_waiters = std::collections::BTreeSet::new();
    for notification in &def.notifications {
        let waiter = names.server(&notification.waiter)?;
        if let Some(bind) = notification.bind.as_ref().filter(|b| b.value)
            && !bound_waiters.insert(notification.waiter.value.as_str())
        {
            return Err(rep.error(
                &bind.span,
                &format!("notifications.{}.bind", notification.name.value),
                format!(
                    "server `{}` is already bound to another notification (a thread has at most one bound notification)",
                    notification.waiter.value
                ),
            ));
        }
        let name = &notification.name;
        check_peers(
            rep,
            &names,
            &notification.signallers,
            waiter,
            "notification",
            name,
            false,
        )?;
    }
    check_regions(rep, &names, def)?;
    let mut intids: BTreeMap<u32, &str> = BTreeMap::new();
    for irq in &def.irqs {
        names.notification(&irq.notification)?;
        if let Some(other) = intids.insert(irq.intid.value, &irq.name.value) {
            return Err(rep.error(
                &irq.intid.span,
                &irq.intid.key,
                format!("intid {} is already used by irq `{other}`", irq.intid.value),
            ));
        }
    }
    for vm in &def.vms {
        crate::roles::check_guest_ram(rep, vm)?;
    }
    crate::vm::check_vms(rep, &names, def)?;
    crate::roles::check(rep, def)?;
    Ok(supervisor)
}

/// One VMID per server and per VM (`platform.rs`), and every count must fit the boot
/// description's `u16` fields (the fault endpoint included).
fn check_counts(rep: &Reporter<'_>, def: &ManifestDef) -> Result<(), ManifestError> {
    use crate::platform::{MAX_SERVERS, MAX_VMS};
    if let Some(server) = def.servers.get(MAX_SERVERS) {
        return Err(rep.error(
            &server.name.span,
            &server.name.key,
            format!(
                "server `{}` is server number {} of {}; each server runs under a VMID of its \
                 own, and the kernel has 1..={MAX_SERVERS} for servers (128..=255 are the \
                 guests'), so a system has at most {MAX_SERVERS} servers",
                server.name.value,
                MAX_SERVERS + 1,
                def.servers.len()
            ),
        ));
    }
    if let Some(vm) = def.vms.get(MAX_VMS) {
        return Err(rep.error(
            &vm.name.span,
            &vm.name.key,
            format!(
                "vm `{}` is vm number {} of {}; each VM runs under a VMID of its own, and the \
                 kernel has 128..=255 for guests, so a system has at most {MAX_VMS} VMs",
                vm.name.value,
                MAX_VMS + 1,
                def.vms.len()
            ),
        ));
    }
    let counts = [
        ("servers", def.servers.len()),
        // The fault endpoint, one exit endpoint and one RAM region per VM, one endpoint per
        // device.
        (
            "endpoints",
            def.endpoints.len()
                + 1
                + def.vms.len()
                + def.vms.iter().map(|vm| vm.devices.len()).sum::<usize>(),
        ),
        ("notifications", def.notifications.len()),
        ("regions", def.regions.len() + def.vms.len()),
        ("irqs", def.irqs.len()),
        ("vms", def.vms.len()),
    ];
    for (section, count) in counts {
        if count > usize::from(u16::MAX) {
            return Err(rep.error(&(0..0), section, format!("too many {section} ({count})")));
        }
    }
    Ok(())
}

/// Exactly one supervisor, whose restart is "never"; fault injection only in test systems.
fn check_servers(rep: &Reporter<'_>, def: &ManifestDef) -> Result<usize, ManifestError> {
    let mut supervisor: Option<usize> = None;
    let mut input: Option<&str> = None;
    for (index, server) in def.servers.iter().enumerate() {
        if server.debug.input {
            if let Some(first) = input {
                return Err(rep.error(
                    &server.name.span,
                    &format!("servers.{}.debug", server.name.value),
                    format!(
                        "servers `{first}` and `{}` both ask for \"input\"; the console has one reader",
                        server.name.value
                    ),
                ));
            }
            input = Some(&server.name.value);
        }
        if let (Some((_, inject)), false) = (server.injects.first(), def.system.test) {
            return Err(rep.error(
                &inject.span,
                &inject.key,
                "fault injection is only allowed in test systems ([system] test = true)",
            ));
        }
        if let [(_, first), (_, second), ..] = server.injects.as_slice() {
            return Err(rep.error(
                &second.span,
                &second.key,
                format!(
                    "a server takes one injected fault, and `{}` is already set",
                    first.key
                ),
            ));
        }
        let Some(flag) = server.supervisor.as_ref().filter(|flag| flag.value) else {
            continue;
        };
        if let Some(first) = supervisor {
            return Err(rep.error(
                &flag.span,
                &flag.key,
                format!(
                    "servers `{}` and `{}` both have `supervisor = true`; exactly one server \
                     may be the supervisor",
                    def.servers[first].name.value, server.name.value
                ),
            ));
        }
        if server.restart.value != bootdesc::RestartPolicy::Never {
            let restart = &server.restart;
            return Err(rep.error(
                &restart.span,
                &restart.key,
                "the supervisor's restart must be \"never\": the kernel stops the system when \
                 the supervisor faults",
            ));
        }
        supervisor = Some(index);
    }
    supervisor.ok_or_else(|| {
        let span = def.servers.first().map_or(0..0, |s| s.name.span.clone());
        rep.error(
            &span,
            "servers",
            "no server has `supervisor = true`; exactly one server must be the supervisor",
        )
    })
}

/// Endpoint and notification names become capability names inside servers: "faults" and
/// "system" are taken, and an endpoint and a notification may not share a name.
fn check_object_names(rep: &Reporter<'_>, def: &ManifestDef) -> Result<(), ManifestError> {
    let endpoints = def.endpoints.iter().map(|e| ("endpoint", &e.name));
    let notifications = def.notifications.iter().map(|n| ("notification", &n.name));
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (kind, name) in endpoints.chain(notifications) {
        let reason = match name.value.as_str() {
            "faults" => Some("it is the supervisor's fault endpoint, which the compiler adds"),
            "system" => Some("it names the SystemControl capability"),
            _ => None,
        };
        if let Some(reason) = reason {
            return Err(rep.error(
                &name.span,
                &name.key,
                format!("{kind} name `{}` is reserved: {reason}", name.value),
            ));
        }
        if let Some(other_kind) = seen.insert(&name.value, kind) {
            return Err(rep.error(
                &name.span,
                &name.key,
                format!(
                    "{kind} `{0}` has the same name as {other_kind} `{0}`; endpoints and \
                     notifications share one namespace because their capabilities are named \
                     after them",
                    name.value
                ),
            ));
        }
    }
    Ok(())
}

/// Clients of one endpoint (or signallers of one notification): known, not the owner, listed
/// once, and (for endpoints) with distinct badges (also a device's `clients`, with its vmm
/// first: `device_clients.rs`).
pub(crate) fn check_peers(
    rep: &Reporter<'_>,
    names: &Names<'_>,
    peers: &[PeerDef],
    owner: usize,
    kind: &str,
    name: &Sp<String>,
    unique_badges: bool,
) -> Result<(), ManifestError> {
    let (role, peer_role) = match kind {
        "endpoint" => ("serves", "client"),
        _ => ("waits on", "signaller"),
    };
    let mut seen: BTreeMap<usize, &str> = BTreeMap::new();
    let mut badges: BTreeMap<u64, &str> = BTreeMap::new();
    for peer in peers {
        let server = &peer.server;
        let index = names.server(server)?;
        let fail = |message: String| Err(rep.error(&server.span, &server.key, message));
        if index == owner {
            return fail(format!(
                "server `{}` {role} {kind} `{}`, so it cannot also be its {peer_role}",
                server.value, name.value
            ));
        }
        if seen.insert(index, &server.value).is_some() {
            return fail(format!(
                "server `{}` is listed twice as a {peer_role} of {kind} `{}`",
                server.value, name.value
            ));
        }
        let badge = crate::compile::client_badge(peer, index);
        if unique_badges && let Some(other) = badges.insert(badge, &server.value) {
            let (span, key) = match &peer.badge {
                Some(explicit) => (&explicit.span, &explicit.key),
                None => (&server.span, &server.key),
            };
            return Err(rep.error(
                span,
                key,
                format!(
                    "badge {badge} of client `{}` is already the badge of client `{other}` \
                         of endpoint `{}`; the server could not tell them apart",
                    server.value, name.value
                ),
            ));
        }
    }
    Ok(())
}

/// Device regions stay off what the kernel owns (`platform.rs`: the GIC, its UART, RAM) and may
/// not share physical pages; one server's mappings may not share addresses; a server given a
/// region's frames (`frames`) exists and maps that region.
fn check_regions(
    rep: &Reporter<'_>,
    names: &Names<'_>,
    def: &ManifestDef,
) -> Result<(), ManifestError> {
    let mut devices: Vec<(&str, u64, u64)> = Vec::new();
    let mut mapped: BTreeMap<usize, Vec<(&str, u64, u64)>> = BTreeMap::new();
    for region in &def.regions {
        let name = region.name.value.as_str();
        if let Some(base) = &region.base {
            let (start, end) = (base.value, base.value + region.size);
            if let Some(reason) = crate::platform::refuse_device(name, start, end) {
                // A base inside a VM's RAM window is likely a guest-physical address.
                let guest = def.vms.iter().find(|vm| {
                    let ram = (vm.ram_base, vm.ram_base + vm.ram_size);
                    start < ram.1 && ram.0 < end
                });
                let hint = guest.map_or(String::new(), |vm| {
                    format!(
                        " (a device region's base is a physical address; vm `{}`'s RAM at \
                         {:#x} is guest-physical, and the kernel allocates it from RAM)",
                        vm.name.value, vm.ram_base
                    )
                });
                return Err(rep.error(&base.span, &base.key, format!("{reason}{hint}")));
            }
            if let Some((other, o_start, o_end)) =
                devices.iter().find(|(_, s, e)| start < *e && *s < end)
            {
                return Err(rep.error(
                    &base.span,
                    &base.key,
                    format!(
                        "device region `{name}` ({start:#x}..{end:#x}) overlaps device region \
                         `{other}` ({o_start:#x}..{o_end:#x})"
                    ),
                ));
            }
            devices.push((name, start, end));
        }
        for map in &region.maps {
            let server = names.server(&map.server)?;
            let (start, end) = (map.at.value, map.at.value + region.size);
            let ranges = mapped.entry(server).or_default();
            if let Some((other, o_start, o_end)) =
                ranges.iter().find(|(_, s, e)| start < *e && *s < end)
            {
                return Err(rep.error(
                    &map.at.span,
                    &map.at.key,
                    format!(
                        "mapping of region `{name}` at {start:#x}..{end:#x} overlaps the mapping \
                         of region `{other}` at {o_start:#x}..{o_end:#x} in server `{}`",
                        map.server.value
                    ),
                ));
            }
            ranges.push((name, start, end));
        }
        for server in &region.frames {
            names.server(server)?;
            if !region
                .maps
                .iter()
                .any(|map| map.server.value == server.value)
            {
                return Err(rep.error(
                    &server.span,
                    &server.key,
                    format!(
                        "server `{}` gets `frames:{name}` but does not map region `{name}`: a \
                         frame capability's rights are those of the server's own mapping, so \
                         add a `map` entry for it",
                        server.value
                    ),
                ));
            }
        }
    }
    Ok(())
}
