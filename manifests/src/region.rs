//! `[regions.<name>]`: device and RAM regions and where servers map them.
//!
//! Everything checkable from one region's table is checked here: a device region has a
//! page-aligned physical `base` and a RAM region has none (the kernel allocates it), sizes are
//! whole pages, device memory is never mapped executable, and every mapping lies page-aligned
//! inside the region window of the server's address space (`abi::layout`). `frames` (a frame-range
//! capability of the region) is for RAM regions only and names each server at most once. Overlaps
//! between regions or between one server's mappings, and whether a `frames` server maps the
//! region, relate several tables and live in `validate.rs`.

use crate::error::{ManifestError, Reporter};
use crate::fields::{Fields, Radix, Sp};
use crate::schema::{MapDef, MapRights, RegionDef, fields, section};
use crate::span::{Entry, NodeValue};
use abi::layout::{PAGE_SIZE, REGION_WINDOW_BASE, REGION_WINDOW_END};

const REGION_KEYS: &[&str] = &["kind", "base", "size", "map", "frames"];
const MAP_KEYS: &[&str] = &["server", "at", "rights"];

/// Reads every region, in file order.
pub(crate) fn read_regions(
    rep: &Reporter<'_>,
    top: &Fields<'_>,
) -> Result<Vec<RegionDef>, ManifestError> {
    section(rep, top, "regions", read_region)
}

fn read_region(
    rep: &Reporter<'_>,
    entry: &Entry,
    name: Sp<String>,
) -> Result<RegionDef, ManifestError> {
    let f = fields(rep, entry, &name, "regions", REGION_KEYS)?;
    let kind = f.required_string("kind")?;
    let device = match kind.value.as_str() {
        "device" => true,
        "ram" => false,
        other => {
            return Err(f.error(
                &kind.span,
                "kind",
                format!("expected \"device\" or \"ram\", found {other:?}"),
            ));
        }
    };
    let base = f.integer::<u64>("base", 0..=i64::MAX, Radix::Hex)?;
    let size = f.pages("size", PAGE_SIZE as i64..=i64::MAX)?;
    let base = match (device, base) {
        (true, None) => {
            return Err(f.error(
                &name.span,
                "base",
                format!(
                    "missing required key `base` in region `{}`: a device region needs the \
                     physical address of its registers",
                    name.value
                ),
            ));
        }
        (false, Some(base)) => {
            return Err(f.error(
                &base.span,
                "base",
                "`base` is only allowed for device regions (the kernel allocates RAM regions)",
            ));
        }
        (_, base) => base,
    };
    let size_at = size.ok_or_else(|| f.missing("size"))?;
    let size = size_at.value;
    if let Some(base) = &base {
        if base.value % PAGE_SIZE != 0 {
            return Err(f.error(
                &base.span,
                "base",
                format!(
                    "base {:#x} is not page aligned ({PAGE_SIZE:#x})",
                    base.value
                ),
            ));
        }
        if base
            .value
            .checked_add(size)
            .is_none_or(|end| end > i64::MAX as u64)
        {
            return Err(f.error(
                &base.span,
                "base",
                format!(
                    "region {:#x} + {size:#x} runs past the end of the physical address space",
                    base.value
                ),
            ));
        }
    }
    Ok(RegionDef {
        maps: read_maps(&f, device, size)?,
        frames: read_frames(&f, device)?,
        base,
        size,
        size_at,
        name,
    })
}

fn read_maps(f: &Fields<'_>, device: bool, size: u64) -> Result<Vec<MapDef>, ManifestError> {
    let Some(node) = f.node("map") else {
        return Ok(Vec::new());
    };
    let NodeValue::Array(elements) = &node.value else {
        return Err(f.wrong_type(
            &f.key("map"),
            node,
            "an array of { server, at, rights } tables",
        ));
    };
    let mut maps = Vec::new();
    for (index, element) in elements.iter().enumerate() {
        let key = format!("{}[{index}]", f.key("map"));
        let what = format!("`{key}`");
        let m = Fields::new(f.rep, element, key, what, element.span.clone(), MAP_KEYS)?;
        let server = m.required_string("server")?;
        let at = m.required_integer::<u64>("at", 0..=i64::MAX, Radix::Hex)?;
        let rights = m.required_string("rights")?;
        let rights_value = match rights.value.as_str() {
            "r" => MapRights::Read,
            "rw" => MapRights::ReadWrite,
            "rx" => MapRights::ReadExecute,
            other => {
                return Err(m.error(
                    &rights.span,
                    "rights",
                    format!("expected \"r\", \"rw\" or \"rx\", found {other:?}"),
                ));
            }
        };
        if device && rights_value == MapRights::ReadExecute {
            return Err(m.error(
                &rights.span,
                "rights",
                "device regions cannot be mapped executable (\"rx\"); use \"r\" or \"rw\"",
            ));
        }
        if at.value % PAGE_SIZE != 0 {
            return Err(m.error(
                &at.span,
                "at",
                format!("at {:#x} is not page aligned ({PAGE_SIZE:#x})", at.value),
            ));
        }
        let end = at.value.saturating_add(size);
        if at.value < REGION_WINDOW_BASE || end > REGION_WINDOW_END {
            return Err(m.error(
                &at.span,
                "at",
                format!(
                    "mapping {:#x}..{end:#x} is outside the region window \
                     {REGION_WINDOW_BASE:#x}..{REGION_WINDOW_END:#x} (abi::layout; the last \
                     page is the server's state page)",
                    at.value
                ),
            ));
        }
        maps.push(MapDef {
            server,
            at,
            rights: rights_value,
        });
    }
    Ok(maps)
}

/// Reads `frames = ["server", ...]`: RAM regions only (the kernel makes no frame capability of
/// device memory), each server at most once. Whether the server exists and maps the region is
/// checked in `validate.rs`.
fn read_frames(f: &Fields<'_>, device: bool) -> Result<Vec<Sp<String>>, ManifestError> {
    const EXPECTED: &str = "an array of server names";
    let Some(node) = f.node("frames") else {
        return Ok(Vec::new());
    };
    let NodeValue::Array(elements) = &node.value else {
        return Err(f.wrong_type(&f.key("frames"), node, EXPECTED));
    };
    if device {
        return Err(f.error(
            &node.span,
            "frames",
            "`frames` is only allowed for RAM regions: a frame capability names RAM, and a \
             device region's physical address is its `base`",
        ));
    }
    let mut servers: Vec<Sp<String>> = Vec::new();
    for (index, element) in elements.iter().enumerate() {
        let key = format!("{}[{index}]", f.key("frames"));
        let NodeValue::String(server) = &element.value else {
            return Err(f.wrong_type(&key, element, "a server name"));
        };
        if servers.iter().any(|earlier| earlier.value == *server) {
            return Err(f.rep.error(
                &element.span,
                &key,
                format!("server `{server}` is listed twice in `frames`"),
            ));
        }
        servers.push(Sp {
            value: server.clone(),
            span: element.span.clone(),
            key,
        });
    }
    Ok(servers)
}
