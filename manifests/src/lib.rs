//! The system manifest: reads a TOML capability manifest, validates it, and compiles it into the
//! boot payload the kernel instantiates the system from (docs/DESIGN.md, "The manifest and the
//! boot image").
//!
//! This is a host-side library used by `cargo xtask`. Nothing half-valid boots, so
//! [`Manifest::load`] either returns a fully checked manifest or one [`ManifestError`] that names
//! the file, line, column and dotted key of the offending key or value and says what is wrong.
//! Once loaded, [`Manifest::payload`] cannot fail on account of the manifest; it only checks the
//! images it is given.
//!
//! The pipeline, one module per step:
//!
//! - `span`: parse with `toml_edit` (which keeps byte spans) into a small positioned tree;
//! - `schema` (+ `fields`, `region`, `vm`): read each table into typed definitions, checking
//!   keys, types and ranges;
//! - `schema` reads names through `names` (the one name grammar) and interrupts through
//!   `platform` (the one platform table: QEMU virt as xtask runs it, what the kernel owns);
//! - `validate` (+ `vm`, `roles`, `platform`): cross-table checks (references, the supervisor,
//!   names, overlaps, duplicates, device regions off what the kernel owns, one VMID per server
//!   and VM, guest RAM off the guest's devices, what a VM's servers must find of each other);
//! - `budget`: the machine's RAM and each server's boot-info page, which the kernel would
//!   otherwise run out of at boot;
//! - `compile`: object indices, the implicit `faults` endpoint, each VM's exit endpoint and RAM
//!   region, capabilities and their slots;
//! - `payload`: boot-info blobs and the `bootdesc` record stream;
//! - `images`: the programs the build resolves, and its checks of the images it made
//!   ([`Manifest::check_images`], [`Manifest::check_ram`]), at the keys that name them.
//!
//! A manifest that loads does not panic the kernel at boot: what the kernel would refuse (and
//! stop the boot on) is refused here first, at the line and key that ask for it.
//!
//! The schema is documented in `manifests/README.md`.
#![forbid(unsafe_code)]

mod budget;
mod compile;
mod device_clients;
mod devices;
mod error;
mod fdt;
mod fields;
mod images;
mod linux;
mod names;
mod payload;
pub mod platform;
mod region;
mod roles;
mod schema;
mod span;
mod validate;
mod vm;

#[cfg(test)]
mod tests;

pub use crate::fdt::{
    COMMAND_LINE_SIZE, GUEST_GIC_DISTRIBUTOR, GUEST_GIC_REDISTRIBUTOR, GuestDevice, GuestTree,
    MAX_DEVICE_TREE_SIZE, MAX_SPI, PL011_SIZE, VIRTIO_MMIO_SIZE, device_tree,
};
pub use compile::{
    DEBUG_CONSOLE, DEBUG_LOG, FAULT_ENDPOINT, FRAMES_PREFIX, MAX_CNODE_SLOTS, SPARE_SLOTS,
};
pub use devices::{FIRST_SPI as FIRST_DEVICE_SPI, MAX_DEVICES, TRANSPORT_BASE, TRANSPORT_STRIDE};
pub use error::ManifestError;
pub use images::{Program, ProgramKind};
pub use linux::GuestFile;

use compile::Plan;
use error::Reporter;
use std::collections::BTreeMap;
use std::path::Path;

/// A parsed, validated and compiled manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    plan: Plan,
    /// The programs it names, with their keys' positions, for the build's checks.
    programs: Vec<Program>,
    /// What it asks of the machine's RAM, checked again by the build with the images' sizes.
    budget: budget::RamBudget,
}

impl Manifest {
    /// Reads and validates the manifest at `path`. Errors name the path as given (not
    /// canonicalised), the line, the column, the dotted key and the reason.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ManifestError {
            file: file.clone(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("cannot read the manifest: {error}"),
        })?;
        Self::from_str(&text, &file)
    }

    /// Parses and validates manifest `text`; `file_name` is only used in errors.
    #[allow(clippy::should_implement_trait)] // FromStr has no file name for the errors.
    pub fn from_str(text: &str, file_name: &str) -> Result<Manifest, ManifestError> {
        let rep = Reporter {
            file: file_name,
            source: text,
        };
        let root = span::parse(text).map_err(|(message, span)| rep.error(&span, "", message))?;
        let def = schema::read(&rep, &root)?;
        let supervisor = validate::validate(&rep, &def)?;
        let budget = budget::RamBudget::of(&rep, &def);
        budget.check(0, &BTreeMap::new())?;
        let plan = compile::compile(&rep, &def, supervisor)?;
        budget::check_bootinfo(&rep, &def, &plan)?;
        Ok(Manifest {
            plan,
            programs: images::programs(&rep, &def),
            budget,
        })
    }

    /// The system's name (`[system] name`).
    pub fn name(&self) -> &str {
        &self.plan.name
    }

    /// (server name, cargo package name of its binary) for every server, in server-index order.
    pub fn binaries(&self) -> Vec<(String, String)> {
        self.plan
            .servers
            .iter()
            .map(|server| (server.name.clone(), server.binary.clone()))
            .collect()
    }

    /// (VM name, cargo package of its guest ELF) for every VM that runs an ELF guest (`image`),
    /// in VM order. Guests are built for `aarch64-unknown-none` (hard float), not the servers'
    /// target. Linux VMs' files are [`Manifest::guest_files`].
    pub fn guests(&self) -> Vec<(String, String)> {
        self.plan
            .vms
            .iter()
            .filter_map(|vm| match &vm.guest {
                compile::GuestPlan::Elf(package) => Some((vm.name.clone(), package.clone())),
                compile::GuestPlan::Linux(_) => None,
            })
            .collect()
    }

    /// Whether `[system] test = true`.
    pub fn is_test_system(&self) -> bool {
        self.plan.test_system
    }

    /// Builds the payload (`bootdesc::build_payload`) given each server's ELF bytes, keyed by
    /// server name, and each ELF guest's bytes, keyed by VM name (no VM is named like a
    /// server). Every server and every ELF guest needs a valid AArch64 ELF executable (a guest's
    /// inside its RAM), and no image may be given for a name that is neither. A system with a
    /// Linux VM needs [`Manifest::payload_with_files`].
    pub fn payload(&self, images: &BTreeMap<String, Vec<u8>>) -> anyhow::Result<Vec<u8>> {
        payload::build(&self.plan, images, &BTreeMap::new())
    }
}
