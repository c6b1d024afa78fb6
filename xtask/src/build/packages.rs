//! What each workspace package is as a program, read from the `Cargo.toml` files, so that a
//! manifest naming the wrong package (one that does not exist, a library, a guest as a server's
//! binary, a server as a VM's image) is refused at its line and key before cargo runs, instead
//! of failing in cargo or, worse, building and stopping the boot.
//!
//! The kinds follow the workspace's layout (`check.rs` reads it the same way): `default-members`
//! are host crates; every other member builds for a target, [`GUEST_TARGET`] when its
//! `Cargo.toml` says `[package.metadata.xtask] target = "aarch64-unknown-none"` (a guest), else
//! [`TARGET`]; a target program built on `userlib` (its entry point and server.ld) is a server.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use manifest::{Program, ProgramKind};

use super::{GUEST_TARGET, TARGET};

/// What a package is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// No binary target.
    Library,
    /// A default member: built for the machine xtask runs on.
    Host,
    /// A program for [`TARGET`] built on `userlib`.
    Server,
    /// A program for [`GUEST_TARGET`].
    Guest,
    /// A program for [`TARGET`] without `userlib`: the kernel.
    Other,
}

/// The workspace's packages by name.
#[derive(Debug)]
pub struct Packages {
    kinds: BTreeMap<String, Kind>,
}

impl Packages {
    /// Reads the workspace at `root`.
    pub fn read(root: &Path) -> anyhow::Result<Self> {
        let workspace = read_toml(&root.join("Cargo.toml"))?;
        let list = |key: &str| -> Vec<String> {
            let items = workspace
                .get("workspace")
                .and_then(|workspace| workspace.get(key))
                .and_then(|list| list.as_array());
            items
                .into_iter()
                .flatten()
                .filter_map(|path| path.as_str().map(str::to_string))
                .collect()
        };
        let host = list("default-members");
        let mut kinds = BTreeMap::new();
        for member in list("members") {
            let dir = root.join(&member);
            let manifest = read_toml(&dir.join("Cargo.toml"))?;
            let package = manifest.get("package");
            let Some(name) = package.and_then(|p| p.get("name")).and_then(|n| n.as_str()) else {
                continue;
            };
            let bins = manifest
                .get("bin")
                .and_then(|bins| bins.as_array_of_tables())
                .is_some_and(|bins| !bins.is_empty());
            let target = package
                .and_then(|p| p.get("metadata"))
                .and_then(|metadata| metadata.get("xtask"))
                .and_then(|xtask| xtask.get("target"))
                .and_then(|target| target.as_str())
                .unwrap_or(TARGET);
            let userlib = manifest
                .get("dependencies")
                .and_then(|deps| deps.get("userlib"))
                .is_some();
            let kind = if !bins && !dir.join("src/main.rs").is_file() {
                Kind::Library
            } else if host.contains(&member) {
                Kind::Host
            } else if target != TARGET {
                Kind::Guest
            } else if userlib {
                Kind::Server
            } else {
                Kind::Other
            };
            kinds.insert(name.to_string(), kind);
        }
        Ok(Self { kinds })
    }

    /// What the package `name` is, if the workspace has it.
    pub fn kind(&self, name: &str) -> Option<Kind> {
        self.kinds.get(name).copied()
    }

    /// Why `program` cannot be built as the manifest asks, if it cannot.
    pub fn refusal(&self, program: &Program) -> Option<String> {
        let package = &program.package;
        let (wanted, kind, how) = match program.kind {
            ProgramKind::Server => ("server", Kind::Server, "a server's binary"),
            ProgramKind::Guest => ("guest", Kind::Guest, "a VM's image"),
        };
        let why = match self.kind(package) {
            Some(found) if found == kind => return None,
            None => {
                format!("no package `{package}` in the workspace (the root Cargo.toml's `members`)")
            }
            Some(Kind::Library) => {
                format!("package `{package}` is a library: it has no binary target")
            }
            Some(Kind::Host) => format!(
                "package `{package}` is a host tool (a default member of the workspace, built for \
                 the machine xtask runs on), not a {wanted}"
            ),
            Some(Kind::Server) => format!(
                "package `{package}` is a server (built on `userlib` for {TARGET}), not a guest: \
                 {how} is a guest crate, one whose Cargo.toml says `[package.metadata.xtask] \
                 target = \"{GUEST_TARGET}\"`"
            ),
            Some(Kind::Guest) => format!(
                "package `{package}` is a guest (built for {GUEST_TARGET}, as its \
                 `[package.metadata.xtask] target` says), not a server: a VM runs it, as \
                 `[vms.<name>] image`"
            ),
            Some(Kind::Other) => format!(
                "package `{package}` is not a {wanted}: it builds for {TARGET} without \
                 `userlib`, whose entry point and linker script make a server (it is the \
                 kernel's kind of program)"
            ),
        };
        Some(format!(
            "{why}; the {wanted} packages are {}",
            self.named(kind)
        ))
    }

    /// "`a`, `b`" for every package of `kind`.
    fn named(&self, kind: Kind) -> String {
        let names: Vec<String> = (self.kinds.iter())
            .filter(|(_, k)| **k == kind)
            .map(|(name, _)| format!("`{name}`"))
            .collect();
        names.join(", ")
    }
}

fn read_toml(path: &Path) -> anyhow::Result<toml_edit::DocumentMut> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.parse()
        .with_context(|| format!("{}: not valid TOML", path.display()))
}
