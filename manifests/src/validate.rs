//! Cross-table checks: references, the supervisor, reserved and clashing names, duplicates and
//! overlaps.
//!
//! Runs after `schema.rs` has read every table on its own. A manifest that passes here has
//! exactly one supervisor (restart "never"), only references to objects that exist, no server
//! listed twice on one endpoint or notification, distinct client badges per endpoint, no device
//! region over a kernel-owned device or RAM (`platform.rs`), no two device regions over the same
//! physical page, no two mappings of one server over the same
//! address, every server of a region's `frames` mapping that region, and unique interrupt ids.
//! VMs are checked by `vm::check_vms` (last). [`Names`] also serves `compile.rs` to turn names
//! into indices.

use crate::error::{ManifestError, Reporter};
use crate::fields::Sp;
use crate::schema::{ManifestDef, PeerDef};
use std::collections::BTreeMap;

/// Name → index maps for the objects other tables refer to.
pub(crate) struct Names<'a> {
    rep: &'a Reporter<'a>,
    servers: BTreeMap<&'a str, usize>,
    notifications: BTreeMap<&'a str, usize>,
}

impl<'a> Names<'a> {
    /// Indexes `def`'s servers and notifications (names are unique: TOML refuses duplicate keys).
    pub fn new(rep: &'a Reporter<'a>, def: &'a ManifestDef) -> Self {
        let index =
            |names: Vec<&'a str>| names.into_iter().enumerate().map(|(i, n)| (n, i)).collect();
        Self {
            rep,
            servers: index(def.servers.iter().map(|s| s.name.value.as_str()).collect()),
            notifications: index(
                def.notifications
                    .iter()
                    .map(|n| n.name.value.as_str())
                    .collect(),
            ),
        }
    }

    /// The index of the server `name` refers to.
    pub fn server(&self, name: &Sp<String>) -> Result<usize, ManifestError> {
        lookup(self.rep, &self.servers, name, "server")
    }

    /// The index of the notification `name` refers to.
    pub fn notification(&self, name: &Sp<String>) -> Result<usize, ManifestError> {
        lookup(self.rep, &self.notifications, name, "notification")
    }
}

fn lookup(
    rep: &Reporter<'_>,
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
        rep.error(
            &name.span,
            &name.key,
            format!("unknown {kind} `{}` ({hint})", name.value),
        )
    })
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
    crate::vm::check_vms(rep, &names, def)?;
    Ok(supervisor)
}

/// Every count must fit the boot description's `u16` fields (the fault endpoint included).
fn check_counts(rep: &Reporter<'_>, def: &ManifestDef) -> Result<(), ManifestError> {
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
        let injects = [&server.inject_fault, &server.inject_fault_after];
        if let (Some(inject), false) = (injects.into_iter().flatten().next(), def.system.test) {
            return Err(rep.error(
                &inject.span,
                &inject.key,
                "fault injection is only allowed in test systems ([system] test = true)",
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
/// once, and (for endpoints) with distinct badges.
fn check_peers(
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
                return Err(rep.error(&base.span, &base.key, reason));
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
