//! The manifest schema: typed definitions and the reader that fills them from the TOML tree.
//!
//! The reader does every check that needs only one table: unknown and missing keys, types,
//! numeric ranges, page alignment, names (`names.rs`), interrupts off the kernel's own
//! (`platform.rs`), and the shape rules of a single region (device needs `base`, RAM forbids
//! it, no executable device mappings, mappings inside the window).
//! Checks that relate several tables live in `validate.rs`. Objects of each kind are kept in the
//! order they appear in the file: that order is their index in the boot description.

use crate::error::{ManifestError, Reporter};
use crate::fields::{Fields, Radix, Sp, expect_table};
use crate::span::{Entry, Node, NodeValue, join_key};
use abi::layout;
use bootdesc::RestartPolicy;

pub(crate) use crate::vm::VmDef;

/// `[system]`.
#[derive(Clone, Debug)]
pub(crate) struct SystemDef {
    pub name: Sp<String>,
    pub timeslice_us: u32,
    pub test: bool,
}

/// `[servers.<name>]`.
#[derive(Clone, Debug)]
pub(crate) struct ServerDef {
    pub name: Sp<String>,
    pub binary: Sp<String>,
    pub priority: u8,
    pub stack: u32,
    pub heap: u32,
    pub restart: Sp<RestartPolicy>,
    pub supervisor: Option<Sp<bool>>,
    pub system_control: bool,
    pub cnode_slots: Option<Sp<u16>>,
    /// The kernel-made faults asked for (`inject_fault_*`, [`INJECT_KEYS`]); validation
    /// allows at most one.
    pub injects: Vec<(bootdesc::InjectPoint, Sp<u32>)>,
    pub debug: DebugDef,
}

/// A server's `debug` key: which kernel debug outputs it may use (none by default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct DebugDef {
    /// `"console"`: the `debug:console` capability (console text, `DebugWrite`).
    pub console: bool,
    /// `"log"`: the `debug:log` capability (defmt records, `DebugLog`).
    pub log: bool,
    /// `"input"`: the `debug:input` capability (console input, `DebugInputRead`); one server
    /// at most.
    pub input: bool,
}

/// One entry of an endpoint's `clients` or a notification's `signallers`.
#[derive(Clone, Debug)]
pub(crate) struct PeerDef {
    pub server: Sp<String>,
    pub badge: Option<Sp<u64>>,
    pub grant: bool,
}

/// `[endpoints.<name>]`.
#[derive(Clone, Debug)]
pub(crate) struct EndpointDef {
    pub name: Sp<String>,
    pub server: Sp<String>,
    pub clients: Vec<PeerDef>,
}

/// `[notifications.<name>]`.
#[derive(Clone, Debug)]
pub(crate) struct NotificationDef {
    pub name: Sp<String>,
    pub waiter: Sp<String>,
    pub signallers: Vec<PeerDef>,
    /// `bind = true`: bound to its waiter, whose receive on any endpoint a signal ends.
    pub bind: Option<Sp<bool>>,
}

/// How a region is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MapRights {
    Read,
    ReadWrite,
    ReadExecute,
}

/// One entry of a region's `map`.
#[derive(Clone, Debug)]
pub(crate) struct MapDef {
    pub server: Sp<String>,
    pub at: Sp<u64>,
    pub rights: MapRights,
}

/// `[regions.<name>]`; `base` is `Some` exactly for device regions.
#[derive(Clone, Debug)]
pub(crate) struct RegionDef {
    pub name: Sp<String>,
    pub base: Option<Sp<u64>>,
    pub size: u64,
    /// `size` with its position, for the RAM budget (`budget.rs`).
    pub size_at: Sp<u64>,
    pub maps: Vec<MapDef>,
    /// `frames`: the servers that get the RAM region as a frame-range capability
    /// (`frames:<region>`), e.g. a driver that programs a device's DMA with its physical address.
    pub frames: Vec<Sp<String>>,
}

/// `[irqs.<name>]`.
#[derive(Clone, Debug)]
pub(crate) struct IrqDef {
    pub name: Sp<String>,
    pub intid: Sp<u32>,
    pub notification: Sp<String>,
    pub badge: u64,
}

/// A whole manifest, read but not yet cross-checked.
#[derive(Clone, Debug)]
pub(crate) struct ManifestDef {
    pub system: SystemDef,
    pub servers: Vec<ServerDef>,
    pub endpoints: Vec<EndpointDef>,
    pub notifications: Vec<NotificationDef>,
    pub regions: Vec<RegionDef>,
    pub irqs: Vec<IrqDef>,
    pub vms: Vec<VmDef>,
}

const TOP_KEYS: &[&str] = &[
    "system",
    "servers",
    "endpoints",
    "notifications",
    "regions",
    "irqs",
    "vms",
];
const SYSTEM_KEYS: &[&str] = &["name", "timeslice_us", "test"];
const SERVER_KEYS: &[&str] = &[
    "binary",
    "priority",
    "stack",
    "heap",
    "restart",
    "supervisor",
    "system_control",
    "cnode_slots",
    "inject_fault_at_request",
    "inject_fault_after_request",
    "inject_fault_at_call",
    "inject_fault_at_signal",
    "debug",
];
/// A server's fault-injection keys (test systems only) and where each makes the kernel fault
/// it (`abi::InjectAt`): on taking its N-th request, at its N-th reply, at its N-th call to a
/// peer, at its N-th signal.
pub(crate) const INJECT_KEYS: [(&str, bootdesc::InjectPoint); 4] = [
    ("inject_fault_at_request", bootdesc::InjectPoint::Receive),
    ("inject_fault_after_request", bootdesc::InjectPoint::Reply),
    ("inject_fault_at_call", bootdesc::InjectPoint::Call),
    ("inject_fault_at_signal", bootdesc::InjectPoint::Signal),
];
const ENDPOINT_KEYS: &[&str] = &["server", "clients"];
const NOTIFICATION_KEYS: &[&str] = &["waiter", "signallers", "bind"];
const IRQ_KEYS: &[&str] = &["intid", "notification", "badge"];
const MAX_BADGE: i64 = i64::MAX;
const PAGE: i64 = layout::PAGE_SIZE as i64;

/// Reads the whole manifest from the root table.
pub(crate) fn read(rep: &Reporter<'_>, root: &Node) -> Result<ManifestDef, ManifestError> {
    let top = Fields::new(
        rep,
        root,
        String::new(),
        "the top level of the manifest".into(),
        0..0,
        TOP_KEYS,
    )?;
    let system = match top.entry("system") {
        Some(entry) => read_system(rep, entry)?,
        None => {
            return Err(rep.error(&(0..0), "system", "missing required table `[system]`"));
        }
    };
    Ok(ManifestDef {
        system,
        servers: section(rep, &top, "servers", read_server)?,
        endpoints: section(rep, &top, "endpoints", read_endpoint)?,
        notifications: section(rep, &top, "notifications", read_notification)?,
        regions: crate::region::read_regions(rep, &top)?,
        irqs: section(rep, &top, "irqs", read_irq)?,
        vms: crate::vm::read_vms(rep, &top)?,
    })
}

/// Reads every `[<section>.<name>]` table with `read_one`, in file order, after checking the
/// name.
pub(crate) fn section<T>(
    rep: &Reporter<'_>,
    top: &Fields<'_>,
    section: &str,
    read_one: impl Fn(&Reporter<'_>, &Entry, Sp<String>) -> Result<T, ManifestError>,
) -> Result<Vec<T>, ManifestError> {
    let Some(node) = top.node(section) else {
        return Ok(Vec::new());
    };
    let mut entries: Vec<&Entry> = expect_table(rep, node, section)?.iter().collect();
    // Insertion order is already file order; sorting by the name's position makes that explicit
    // and independent of how the TOML library files implicit tables.
    entries.sort_by_key(|entry| entry.key_span.start);
    entries
        .into_iter()
        .map(|entry| {
            let key = join_key(section, &entry.key);
            if let Some(refusal) = crate::names::bad_name(singular(section), &entry.key) {
                return Err(rep.error(&entry.key_span, &key, refusal));
            }
            let name = Sp {
                value: entry.key.clone(),
                span: entry.key_span.clone(),
                key,
            };
            read_one(rep, entry, name)
        })
        .collect()
}

/// `servers` → `server`, for messages.
pub(crate) fn singular(section: &str) -> &str {
    section.strip_suffix('s').unwrap_or(section)
}

/// Opens the table of one named object.
pub(crate) fn fields<'a>(
    rep: &'a Reporter<'a>,
    entry: &'a Entry,
    name: &Sp<String>,
    section: &str,
    allowed: &[&str],
) -> Result<Fields<'a>, ManifestError> {
    Fields::new(
        rep,
        &entry.node,
        name.key.clone(),
        format!("{} `{}`", singular(section), name.value),
        name.span.clone(),
        allowed,
    )
}

fn read_system(rep: &Reporter<'_>, entry: &Entry) -> Result<SystemDef, ManifestError> {
    let f = Fields::new(
        rep,
        &entry.node,
        "system".into(),
        "[system]".into(),
        entry.key_span.clone(),
        SYSTEM_KEYS,
    )?;
    let name = f.required_string("name")?;
    // The name becomes a directory under target/images/ and is printed by the kernel.
    if let Some(refusal) = crate::names::bad_name("system", &name.value) {
        return Err(f.error(&name.span, "name", refusal));
    }
    let timeslice_us = f.integer::<u32>("timeslice_us", 100..=1_000_000, Radix::Decimal)?;
    Ok(SystemDef {
        name,
        timeslice_us: timeslice_us.map_or(2000, |t| t.value),
        test: f.boolean("test")?.is_some_and(|t| t.value),
    })
}

fn read_server(
    rep: &Reporter<'_>,
    entry: &Entry,
    name: Sp<String>,
) -> Result<ServerDef, ManifestError> {
    let f = fields(rep, entry, &name, "servers", SERVER_KEYS)?;
    let binary = f.required_string("binary")?;
    if !crate::vm::is_package_name(&binary.value) {
        return Err(f.error(
            &binary.span,
            "binary",
            format!(
                "binary {:?} is not a cargo package name (letters, digits, `-` and `_`)",
                binary.value
            ),
        ));
    }
    let priority = f.required_integer::<u8>("priority", 1..=254, Radix::Decimal)?;
    let stack_max = (layout::STACK_TOP - layout::STACK_LIMIT) as i64;
    let stack = f.pages("stack", PAGE..=stack_max)?;
    let heap = f.pages("heap", 0..=(layout::HEAP_END - layout::HEAP_BASE) as i64)?;
    let restart = match f.node("restart") {
        Some(node) => read_restart(&f, node)?,
        None => Sp {
            value: RestartPolicy::Never,
            span: name.span.clone(),
            key: f.key("restart"),
        },
    };
    Ok(ServerDef {
        binary,
        priority: priority.value,
        // Both ranges are far below u32::MAX.
        stack: stack.map_or(16384, |s| s.value as u32),
        heap: heap.map_or(0, |h| h.value as u32),
        restart,
        supervisor: f.boolean("supervisor")?,
        system_control: f.boolean("system_control")?.is_some_and(|s| s.value),
        cnode_slots: f.integer::<u16>("cnode_slots", 0..=4096, Radix::Decimal)?,
        injects: {
            let mut injects = Vec::new();
            for (key, point) in INJECT_KEYS {
                if let Some(count) =
                    f.integer::<u32>(key, 1..=i64::from(u32::MAX), Radix::Decimal)?
                {
                    injects.push((point, count));
                }
            }
            injects
        },
        debug: read_debug(&f)?,
        name,
    })
}

/// Reads `debug = ["console", "log"]`: each known value at most once.
fn read_debug(f: &Fields<'_>) -> Result<DebugDef, ManifestError> {
    const EXPECTED: &str = "an array of \"console\", \"log\" and \"input\"";
    let Some(node) = f.node("debug") else {
        return Ok(DebugDef::default());
    };
    let NodeValue::Array(elements) = &node.value else {
        return Err(f.wrong_type(&f.key("debug"), node, EXPECTED));
    };
    let mut debug = DebugDef::default();
    for (index, element) in elements.iter().enumerate() {
        let key = format!("{}[{index}]", f.key("debug"));
        let NodeValue::String(text) = &element.value else {
            return Err(f.wrong_type(&key, element, "\"console\", \"log\" or \"input\""));
        };
        let granted = match text.as_str() {
            "console" => &mut debug.console,
            "log" => &mut debug.log,
            "input" => &mut debug.input,
            _ => {
                return Err(f.rep.error(
                    &element.span,
                    &key,
                    format!(
                        "unknown debug output {text:?} (expected \"console\", \"log\" or \"input\")"
                    ),
                ));
            }
        };
        if std::mem::replace(granted, true) {
            return Err(f.rep.error(
                &element.span,
                &key,
                format!("debug output {text:?} is listed twice"),
            ));
        }
    }
    Ok(debug)
}

fn read_restart(f: &Fields<'_>, node: &Node) -> Result<Sp<RestartPolicy>, ManifestError> {
    const EXPECTED: &str = "\"never\", \"always\" or { budget = N, within_ms = T }";
    let policy = match &node.value {
        NodeValue::String(text) if text == "never" => RestartPolicy::Never,
        NodeValue::String(text) if text == "always" => RestartPolicy::Always,
        NodeValue::String(text) => {
            return Err(f.error(
                &node.span,
                "restart",
                format!("expected {EXPECTED}, found {text:?}"),
            ));
        }
        NodeValue::Table(_) => {
            let budget = Fields::new(
                f.rep,
                node,
                f.key("restart"),
                format!("the restart budget of {}", f.what),
                node.span.clone(),
                &["budget", "within_ms"],
            )?;
            let range = 1..=i64::from(u32::MAX);
            // The supervisor remembers one timestamp per allowed restart.
            let restarts = 1..=supervisor_core::MAX_BUDGET as i64;
            RestartPolicy::Budget {
                restarts: budget
                    .required_integer("budget", restarts, Radix::Decimal)?
                    .value,
                within_ms: budget
                    .required_integer("within_ms", range, Radix::Decimal)?
                    .value,
            }
        }
        _ => return Err(f.wrong_type(&f.key("restart"), node, EXPECTED)),
    };
    Ok(f.sp("restart", node, policy))
}

/// Reads `clients` / `signallers`: names or `{ server, badge [, grant] }` tables (also a
/// `devices` entry's `clients`, `device_clients.rs`).
pub(crate) fn read_peers(
    f: &Fields<'_>,
    list: &str,
    allow_grant: bool,
) -> Result<Vec<PeerDef>, ManifestError> {
    let Some(node) = f.node(list) else {
        return Ok(Vec::new());
    };
    let expected = "an array of server names or { server = ..., badge = ... } tables";
    let NodeValue::Array(elements) = &node.value else {
        return Err(f.wrong_type(&f.key(list), node, expected));
    };
    let allowed: &[&str] = if allow_grant {
        &["server", "badge", "grant"]
    } else {
        &["server", "badge"]
    };
    let mut peers = Vec::new();
    for (index, element) in elements.iter().enumerate() {
        let key = format!("{}[{index}]", f.key(list));
        let peer = match &element.value {
            NodeValue::String(server) => PeerDef {
                server: Sp {
                    value: server.clone(),
                    span: element.span.clone(),
                    key,
                },
                badge: None,
                grant: false,
            },
            NodeValue::Table(_) => {
                let what = format!("`{key}`");
                let entry = Fields::new(f.rep, element, key, what, element.span.clone(), allowed)?;
                PeerDef {
                    server: entry.required_string("server")?,
                    badge: entry.integer::<u64>("badge", 1..=MAX_BADGE, Radix::Decimal)?,
                    grant: entry.boolean("grant")?.is_some_and(|g| g.value),
                }
            }
            _ => return Err(f.wrong_type(&key, element, "a server name or a table")),
        };
        peers.push(peer);
    }
    Ok(peers)
}

fn read_endpoint(
    rep: &Reporter<'_>,
    entry: &Entry,
    name: Sp<String>,
) -> Result<EndpointDef, ManifestError> {
    let f = fields(rep, entry, &name, "endpoints", ENDPOINT_KEYS)?;
    Ok(EndpointDef {
        server: f.required_string("server")?,
        clients: read_peers(&f, "clients", true)?,
        name,
    })
}

fn read_notification(
    rep: &Reporter<'_>,
    entry: &Entry,
    name: Sp<String>,
) -> Result<NotificationDef, ManifestError> {
    let f = fields(rep, entry, &name, "notifications", NOTIFICATION_KEYS)?;
    Ok(NotificationDef {
        waiter: f.required_string("waiter")?,
        signallers: read_peers(&f, "signallers", false)?,
        bind: f.boolean("bind")?,
        name,
    })
}

fn read_irq(rep: &Reporter<'_>, entry: &Entry, name: Sp<String>) -> Result<IrqDef, ManifestError> {
    let f = fields(rep, entry, &name, "irqs", IRQ_KEYS)?;
    let intid = f.required_integer::<i64>("intid", i64::MIN..=i64::MAX, Radix::Decimal)?;
    // Off the kernel's own lines, and a line QEMU virt's GIC has (`platform.rs`).
    if let Some(refusal) = crate::platform::refuse_irq(intid.value) {
        return Err(f.error(&intid.span, "intid", refusal));
    }
    let intid = Sp {
        // refuse_irq accepts only INTIDs of 16..=287.
        value: u32::try_from(intid.value).unwrap_or(u32::MAX),
        span: intid.span,
        key: intid.key,
    };
    Ok(IrqDef {
        intid,
        notification: f.required_string("notification")?,
        badge: f
            .integer::<u64>("badge", 1..=MAX_BADGE, Radix::Decimal)?
            .map_or(1, |b| b.value),
        name,
    })
}
