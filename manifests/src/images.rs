//! The programs a manifest names, and the checks of what the build makes of them, at the
//! manifest line and key that name each program.
//!
//! Whether a package exists and is the right kind of program (a server binary, a guest) is
//! known only to the build, which reads the workspace (`xtask/src/build.rs`); it reports what
//! is wrong through [`Program::error`]. Once built, every image is checked the way the kernel
//! will check it at boot ([`Manifest::check_images`]: a server's ELF inside the server image
//! window, a guest's inside its VM's RAM), and the machine's RAM again with the sizes of the
//! payload and the images ([`Manifest::check_ram`]).

use crate::error::ManifestError;
use crate::linux::KeyAt;
use crate::{Manifest, schema::ManifestDef};
use abi::layout::{IMAGE_BASE, IMAGE_END};
use kernel_core::elf::{self, ElfError};
use std::collections::BTreeMap;

/// What a program is built as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramKind {
    /// A server's `binary`: an EL0 program for `aarch64-unknown-none-softfloat`, linked in the
    /// server image window.
    Server,
    /// An ELF VM's `image`: an EL1 guest for `aarch64-unknown-none`, linked inside its RAM.
    Guest,
}

/// A program the manifest names: a server's `binary` or an ELF VM's `image`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// The server's or the VM's name.
    pub owner: String,
    /// The cargo package.
    pub package: String,
    /// What it is built as.
    pub kind: ProgramKind,
    /// Where the VM's RAM is (guests only): `(ram_base, ram_base + ram_size)`.
    pub ram: Option<(u64, u64)>,
    at: KeyAt,
}

impl Program {
    /// The dotted key naming it (`servers.ping.binary`, `vms.guest.image`).
    pub fn key(&self) -> &str {
        self.at.key()
    }

    /// An error about the program, at the manifest line and key that name it.
    pub fn error(&self, message: impl Into<String>) -> ManifestError {
        self.at.error(message)
    }

    /// "server `ping`" or "vm `guest`".
    fn owner(&self) -> String {
        match self.kind {
            ProgramKind::Server => format!("server `{}`", self.owner),
            ProgramKind::Guest => format!("vm `{}`", self.owner),
        }
    }
}

/// Every program of `def`: the servers' in server order, then the ELF guests' in VM order.
pub(crate) fn programs(rep: &crate::error::Reporter<'_>, def: &ManifestDef) -> Vec<Program> {
    let servers = def.servers.iter().map(|server| Program {
        owner: server.name.value.clone(),
        package: server.binary.value.clone(),
        kind: ProgramKind::Server,
        ram: None,
        at: KeyAt::new(rep, &server.binary.span, &server.binary.key),
    });
    let guests = def.vms.iter().filter_map(|vm| match &vm.guest {
        crate::vm::GuestDef::Elf(image) => Some(Program {
            owner: vm.name.value.clone(),
            package: image.value.clone(),
            kind: ProgramKind::Guest,
            ram: Some((vm.ram_base, vm.ram_base + vm.ram_size)),
            at: KeyAt::new(rep, &image.span, &image.key),
        }),
        crate::vm::GuestDef::Linux(_) => None,
    });
    servers.chain(guests).collect()
}

/// What is wrong with an ELF, in words, for one loaded into `window` (named `where_`).
fn refusal(error: ElfError, where_: &str, (start, end): (u64, u64)) -> String {
    match error {
        ElfError::NotAarch64Executable => "is not a little-endian ELF64 AArch64 executable".into(),
        ElfError::Truncated => "is truncated: a header or a segment reaches past its end".into(),
        ElfError::FileLargerThanMemory => {
            "has a segment whose file size exceeds its memory size".into()
        }
        ElfError::OutsideWindow => {
            format!("has a segment outside {where_} ({start:#x}..{end:#x})")
        }
        ElfError::Overlap => "has two segments that share a page".into(),
        ElfError::TooManySegments => {
            format!("has more than {} loadable segments", elf::MAX_SEGMENTS)
        }
        ElfError::BadEntry => "has its entry point outside its executable segments".into(),
    }
}

/// The first loadable segment of `image` outside `start..end`, as `start..end`, if it parses.
fn segment_outside(image: &[u8], (start, end): (u64, u64)) -> Option<(u64, u64)> {
    let parsed = elf::parse(image, 0, u64::MAX).ok()?;
    parsed
        .segments()
        .iter()
        .map(|segment| (segment.vaddr, segment.vaddr.saturating_add(segment.memsz)))
        .find(|&(from, to)| from < start || to > end)
}

impl Manifest {
    /// The programs the manifest names, for the build to resolve and check (each with the
    /// position of its key).
    pub fn programs(&self) -> &[Program] {
        &self.programs
    }

    /// Checks every image the build made as the kernel will at boot: each server's ELF
    /// (keyed by server name) inside the server image window ([`IMAGE_BASE`]..[`IMAGE_END`],
    /// where userlib's linker script puts it), each ELF guest's (keyed by VM name) inside its
    /// VM's RAM. A refusal is at the `binary` or `image` key. Missing images are left to
    /// [`Manifest::payload`].
    pub fn check_images(&self, images: &BTreeMap<String, Vec<u8>>) -> Result<(), ManifestError> {
        for program in &self.programs {
            let Some(image) = images.get(&program.owner) else {
                continue;
            };
            let (window, where_, fix) = match program.ram {
                None => (
                    (IMAGE_BASE, IMAGE_END),
                    "the server image window",
                    "servers are linked there by userlib's server.ld".to_string(),
                ),
                Some(ram) => (
                    ram,
                    "the VM's RAM",
                    "link the guest inside its VM's RAM, or move ram_base".to_string(),
                ),
            };
            let Err(error) = elf::parse(image, window.0, window.1) else {
                continue;
            };
            let why = match (error, segment_outside(image, window)) {
                (ElfError::OutsideWindow, Some((from, to))) => format!(
                    "has a segment at {from:#x}..{to:#x}, outside {where_} ({:#x}..{:#x}): {fix}",
                    window.0, window.1
                ),
                (error, _) => refusal(error, where_, window),
            };
            return Err(program.error(format!(
                "the ELF of {} (package `{}`) {why}",
                program.owner(),
                program.package
            )));
        }
        Ok(())
    }

    /// Checks the machine's RAM again, now that the build knows the kernel image holds at
    /// least `payload_bytes` (the boot payload it carries) and each server's ELF in `images`
    /// (keyed by server name) takes its segments' pages. A refusal is at the key that asks for
    /// the RAM that does not fit.
    pub fn check_ram(
        &self,
        images: &BTreeMap<String, Vec<u8>>,
        payload_bytes: u64,
    ) -> Result<(), ManifestError> {
        let server_pages: BTreeMap<String, u64> = self
            .programs
            .iter()
            .filter(|program| program.kind == ProgramKind::Server)
            .filter_map(|program| {
                let image = images.get(&program.owner)?;
                let parsed = elf::parse(image, IMAGE_BASE, IMAGE_END).ok()?;
                let bytes = parsed
                    .segments()
                    .iter()
                    .map(|segment| segment.page_end() - segment.page_start())
                    .sum();
                Some((program.owner.clone(), bytes))
            })
            .collect();
        self.budget.check(payload_bytes, &server_pages)
    }
}
