//! `[vms.<name>]`: virtual machines, each with one VCPU, its RAM and the servers that run it.
//!
//! A VM runs either an ELF guest (`image`, a cargo package) or Linux (`kernel`, an arm64 Image,
//! with an optional `initrd` and `cmdline`); exactly one of `image` and `kernel` is given. The
//! files a Linux VM names are read when the payload is built (`linux.rs`), not here.
//!
//! The reader checks what one table can tell: the keys, the guest image's package name or the
//! Linux files' paths and command line, the priority, and the RAM window — `ram_size` a
//! multiple of 2 MiB in 2 MiB..=1 GiB, `ram_base`
//! (default [`DEFAULT_RAM_BASE`]) 2 MiB aligned, and the RAM inside the 39-bit guest physical
//! address space ([`IPA_END`]). [`check_vms`] does the cross-table checks: a VM's name is not
//! reserved and is not a server's (images are keyed and stored by name, servers' and VMs' side
//! by side), its `vmm`, `mmu` and `memory` are servers, and its vmm is no earlier VM's (a vmm
//! serves one VM), and `resets` (a test's reset loop, HV_RESET_LOOP) is only in test systems.
//! `devices` (virtio-mmio devices and their servers) is read and checked by `devices.rs`.
//! `mmio_markers` (default `true`) says whether the kernel caches the VM's MMIO pages as stage-2
//! markers (docs/MMIO.md); `false` keeps every access on the slow path, for its benchmark.
//! `dirty_log_windows` (default [`DEFAULT_DIRTY_LOG_WINDOWS`]) bounds the dirty-log windows the
//! guest may have enabled at once (docs/MMU-STAGE2.md), at most what an mmu-server holds
//! ([`MAX_DIRTY_LOG_WINDOWS`]).

use crate::error::{ManifestError, Reporter};
use crate::fields::{Fields, Radix, Sp};
use crate::linux::{DEFAULT_CMDLINE, KeyAt};
use crate::schema::{ManifestDef, fields, section};
use crate::span::Entry;
use crate::validate::Names;
pub use mmu_core::stage2::{DEFAULT_DIRTY_LOG_WINDOWS, MAX_DIRTY_LOG_WINDOWS};

/// Guest-physical base of a VM's RAM when the manifest gives none (docs/GUEST-ABI.md).
pub const DEFAULT_RAM_BASE: u64 = 0x4000_0000;
/// The granule of guest RAM: stage-2 2 MiB blocks.
pub const RAM_GRANULE: u64 = 0x20_0000;
/// The largest guest RAM.
pub const MAX_RAM_SIZE: u64 = 0x4000_0000;
/// The end of the guest physical address space (a 39-bit IPA).
pub const IPA_END: u64 = 1 << 39;

const VM_KEYS: &[&str] = &[
    "image",
    "kernel",
    "initrd",
    "cmdline",
    "vmm",
    "mmu",
    "memory",
    "priority",
    "ram_base",
    "ram_size",
    "resets",
    "devices",
    "mmio_markers",
    "dirty_log_windows",
];

/// The most resets a test may ask of a guest (`resets`).
pub const MAX_RESETS: u32 = 1000;

/// Names a VM may not take: the compiler's own, as for endpoints and notifications.
const RESERVED: &[&str] = &["faults", "system"];

/// What a VM runs.
#[derive(Clone, Debug)]
pub(crate) enum GuestDef {
    /// `image`: the cargo package of the guest ELF.
    Elf(Sp<String>),
    /// `kernel`: Linux.
    Linux(Box<LinuxDef>),
}

/// A Linux VM's keys. Positions are kept so that what is wrong with the files, found only when
/// they are read, is reported at the key that names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LinuxDef {
    /// `kernel`: the arm64 Image, relative to the workspace root.
    pub kernel: (String, KeyAt),
    /// `initrd`: the initramfs, relative to the workspace root.
    pub initrd: Option<(String, KeyAt)>,
    /// `cmdline`, or [`DEFAULT_CMDLINE`].
    pub cmdline: String,
    /// Where `ram_size` is, for "does not fit" errors.
    pub ram_size: KeyAt,
}

/// `[vms.<name>]`.
#[derive(Clone, Debug)]
pub(crate) struct VmDef {
    pub name: Sp<String>,
    /// What it runs.
    pub guest: GuestDef,
    /// The server that receives its exits.
    pub vmm: Sp<String>,
    /// The server that holds its stage-2 VSpace.
    pub mmu: Sp<String>,
    /// The server that holds its RAM as a frame range.
    pub memory: Sp<String>,
    pub priority: u8,
    pub ram_base: u64,
    pub ram_size: u64,
    /// `ram_base` as written (absent: [`DEFAULT_RAM_BASE`]) and `ram_size`, with their
    /// positions, for the checks of the RAM window against the machine (`roles.rs`, `budget.rs`).
    pub ram_base_at: Option<Sp<u64>>,
    pub ram_size_at: Sp<u64>,
    /// `resets`: how many times the guest is asked to reset itself first (HV_RESET_LOOP); test
    /// systems only.
    pub resets: Option<Sp<u32>>,
    /// `devices`: its virtio-mmio devices, in transport order (`devices.rs`).
    pub devices: Vec<crate::devices::DeviceDef>,
    /// `mmio_markers`: whether the kernel keeps MMIO markers for it (default `true`).
    pub mmio_markers: bool,
    /// `dirty_log_windows`: how many dirty-log windows it may have at once (default
    /// [`DEFAULT_DIRTY_LOG_WINDOWS`]).
    pub dirty_log_windows: u16,
}

/// Reads every VM, in file order.
pub(crate) fn read_vms(rep: &Reporter<'_>, top: &Fields<'_>) -> Result<Vec<VmDef>, ManifestError> {
    section(rep, top, "vms", read_vm)
}

/// Whether `name` is a cargo package name (letters, digits, `-` and `_`).
pub(crate) fn is_package_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn read_vm(rep: &Reporter<'_>, entry: &Entry, name: Sp<String>) -> Result<VmDef, ManifestError> {
    let f = fields(rep, entry, &name, "vms", VM_KEYS)?;
    let guest = read_guest(&f)?;
    let vmm = f.required_string("vmm")?;
    let mmu = f.required_string("mmu")?;
    let memory = f.required_string("memory")?;
    let priority = f.required_integer::<u8>("priority", 1..=254, Radix::Decimal)?;
    let ram_base = f.integer::<u64>("ram_base", 0..=i64::MAX, Radix::Hex)?;
    let ram_size = f.required_integer::<u64>(
        "ram_size",
        RAM_GRANULE as i64..=MAX_RAM_SIZE as i64,
        Radix::Hex,
    )?;
    if ram_size.value % RAM_GRANULE != 0 {
        return Err(f.error(
            &ram_size.span,
            "ram_size",
            format!(
                "ram_size {:#x} is not a multiple of 2 MiB ({RAM_GRANULE:#x})",
                ram_size.value
            ),
        ));
    }
    let resets = f.integer::<u32>("resets", 1..=i64::from(MAX_RESETS), Radix::Decimal)?;
    let devices = crate::devices::read_devices(&f)?;
    let mmio_markers = f.boolean("mmio_markers")?.is_none_or(|flag| flag.value);
    let dirty_log_windows = read_dirty_log_windows(&f)?;
    let ram_base_value = match &ram_base {
        Some(base) if base.value % RAM_GRANULE != 0 => {
            return Err(f.error(
                &base.span,
                "ram_base",
                format!(
                    "ram_base {:#x} is not 2 MiB aligned ({RAM_GRANULE:#x})",
                    base.value
                ),
            ));
        }
        Some(base) => base.value,
        None => DEFAULT_RAM_BASE,
    };
    let end = ram_base_value.saturating_add(ram_size.value);
    if end > IPA_END {
        let (span, key) = match &ram_base {
            Some(base) => (&base.span, "ram_base"),
            None => (&ram_size.span, "ram_size"),
        };
        return Err(f.error(
            span,
            key,
            format!(
                "guest RAM {ram_base_value:#x}..{end:#x} runs past the end of the guest \
                 physical address space ({IPA_END:#x})"
            ),
        ));
    }
    let guest = match guest {
        Guest::Elf(image) => GuestDef::Elf(image),
        Guest::Linux {
            kernel,
            initrd,
            cmdline,
        } => GuestDef::Linux(Box::new(LinuxDef {
            kernel: (kernel.value, KeyAt::new(rep, &kernel.span, &kernel.key)),
            initrd: initrd.map(|initrd| (initrd.value, KeyAt::new(rep, &initrd.span, &initrd.key))),
            cmdline,
            ram_size: KeyAt::new(rep, &ram_size.span, &ram_size.key),
        })),
    };
    Ok(VmDef {
        guest,
        vmm,
        mmu,
        memory,
        priority: priority.value,
        ram_base: ram_base_value,
        ram_size: ram_size.value,
        ram_base_at: ram_base,
        ram_size_at: ram_size,
        resets,
        devices,
        mmio_markers,
        dirty_log_windows,
        name,
    })
}

/// `dirty_log_windows`: 0 (no dirty logging) up to what an mmu-server holds, which is the one
/// bound the guest cannot lift; more is refused here rather than cut down there.
fn read_dirty_log_windows(f: &Fields<'_>) -> Result<u16, ManifestError> {
    let Some(windows) = f.integer::<u64>("dirty_log_windows", 0..=i64::MAX, Radix::Decimal)? else {
        return Ok(DEFAULT_DIRTY_LOG_WINDOWS);
    };
    match u16::try_from(windows.value) {
        Ok(value) if usize::from(value) <= MAX_DIRTY_LOG_WINDOWS => Ok(value),
        _ => Err(f.error(
            &windows.span,
            "dirty_log_windows",
            format!(
                "dirty_log_windows {} is more than an mmu-server holds for its VM \
                 ({MAX_DIRTY_LOG_WINDOWS})",
                windows.value
            ),
        )),
    }
}

/// What [`read_guest`] found, before the positions are kept.
enum Guest {
    Elf(Sp<String>),
    Linux {
        kernel: Sp<String>,
        initrd: Option<Sp<String>>,
        cmdline: String,
    },
}

/// Reads `image`, or `kernel` with `initrd` and `cmdline`: exactly one of `image` and `kernel`.
fn read_guest(f: &Fields<'_>) -> Result<Guest, ManifestError> {
    let image = f.string("image")?;
    let kernel = f.string("kernel")?;
    let initrd = f.string("initrd")?;
    let cmdline = f.string("cmdline")?;
    match (image, kernel) {
        (Some(_), Some(kernel)) => Err(f.error(
            &kernel.span,
            "kernel",
            format!(
                "{} has both `image` (an ELF guest's cargo package) and `kernel` (a Linux \
                 Image); give exactly one",
                f.what
            ),
        )),
        (None, None) => Err(f.error(
            &f.anchor,
            "image",
            format!(
                "{} names no guest: give `image` (an ELF guest's cargo package) or `kernel` (a \
                 Linux Image)",
                f.what
            ),
        )),
        (Some(image), None) => {
            if let Some(linux_only) = initrd.as_ref().or(cmdline.as_ref()) {
                let name = if initrd.is_some() {
                    "initrd"
                } else {
                    "cmdline"
                };
                return Err(f.error(
                    &linux_only.span,
                    name,
                    format!(
                        "`{name}` is for a Linux VM (`kernel`); {} runs the ELF guest `{}`",
                        f.what, image.value
                    ),
                ));
            }
            if !is_package_name(&image.value) {
                return Err(f.error(
                    &image.span,
                    "image",
                    format!(
                        "image {:?} is not a cargo package name (letters, digits, `-` and `_`)",
                        image.value
                    ),
                ));
            }
            Ok(Guest::Elf(image))
        }
        (None, Some(kernel)) => {
            check_path(f, "kernel", &kernel)?;
            if let Some(initrd) = &initrd {
                check_path(f, "initrd", initrd)?;
            }
            let cmdline = match cmdline {
                Some(cmdline) => check_cmdline(f, cmdline)?,
                None => DEFAULT_CMDLINE.to_string(),
            };
            Ok(Guest::Linux {
                kernel,
                initrd,
                cmdline,
            })
        }
    }
}

/// A file a Linux VM boots from: a non-empty path relative to the workspace root, so an image
/// builds the same wherever the workspace is.
fn check_path(f: &Fields<'_>, name: &str, path: &Sp<String>) -> Result<(), ManifestError> {
    let problem = if path.value.is_empty() {
        "is empty"
    } else if path.value.contains('\0') {
        "contains a NUL byte"
    } else if std::path::Path::new(&path.value).has_root() {
        "is absolute; paths are relative to the workspace root"
    } else {
        return Ok(());
    };
    Err(f.error(
        &path.span,
        name,
        format!("{name} path {:?} {problem}", path.value),
    ))
}

/// The kernel command line goes into the device tree's `/chosen/bootargs`, a NUL-terminated
/// string Linux copies into a buffer of `COMMAND_LINE_SIZE` bytes
/// (arch/arm64/include/uapi/asm/setup.h).
fn check_cmdline(f: &Fields<'_>, cmdline: Sp<String>) -> Result<String, ManifestError> {
    if cmdline.value.contains('\0') {
        return Err(f.error(
            &cmdline.span,
            "cmdline",
            "the kernel command line contains a NUL byte",
        ));
    }
    let longest = crate::COMMAND_LINE_SIZE - 1;
    if cmdline.value.len() > longest {
        return Err(f.error(
            &cmdline.span,
            "cmdline",
            format!(
                "the kernel command line is {} bytes; Linux keeps at most {longest}",
                cmdline.value.len()
            ),
        ));
    }
    Ok(cmdline.value)
}

/// Cross-table checks of every VM: its name, then its `vmm`, `mmu` and `memory` servers, then
/// that no earlier VM has the same vmm; last, every VM's `devices` (`devices::check`).
pub(crate) fn check_vms(
    rep: &Reporter<'_>,
    names: &Names<'_>,
    def: &ManifestDef,
) -> Result<(), ManifestError> {
    for vm in &def.vms {
        let name = &vm.name;
        if RESERVED.contains(&name.value.as_str()) {
            return Err(rep.error(
                &name.span,
                &name.key,
                format!(
                    "vm name `{}` is reserved: `faults` (the fault endpoint) and `system` (the \
                     SystemControl capability) are taken in every namespace",
                    name.value
                ),
            ));
        }
        if def.servers.iter().any(|s| s.name.value == name.value) {
            return Err(rep.error(
                &name.span,
                &name.key,
                format!(
                    "vm `{0}` has the same name as server `{0}`; servers and VMs share one \
                     namespace because their images are keyed and stored by name",
                    name.value
                ),
            ));
        }
        if let (Some(resets), false) = (&vm.resets, def.system.test) {
            return Err(rep.error(
                &resets.span,
                &resets.key,
                "a reset loop is only allowed in test systems ([system] test = true)",
            ));
        }
        names.server(&vm.vmm)?;
        names.server(&vm.mmu)?;
        names.server(&vm.memory)?;
        if let Some(first) = def
            .vms
            .iter()
            .take_while(|other| other.name.value != name.value)
            .find(|other| other.vmm.value == vm.vmm.value)
        {
            return Err(rep.error(
                &vm.vmm.span,
                &vm.vmm.key,
                format!(
                    "server `{}` is already the vmm of vm `{}`; a vmm serves one VM (it receives \
                     on one exit endpoint, so a second VM's exits would never be answered): give \
                     each VM its own vmm",
                    vm.vmm.value, first.name.value
                ),
            ));
        }
    }
    crate::devices::check(rep, names, def)
}

impl crate::Manifest {
    /// (VM name, guest-physical base of its RAM, RAM size) for every VM, in VM order: where an
    /// ELF guest must be linked (its segments must lie inside).
    pub fn vm_ram(&self) -> Vec<(String, u64, u64)> {
        let plan = &self.plan;
        plan.vms
            .iter()
            .map(|vm| {
                let size = plan.regions[usize::from(vm.ram_region)].size;
                (vm.name.clone(), vm.ram_base, size)
            })
            .collect()
    }
}
