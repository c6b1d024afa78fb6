//! What the kernel must find room for at boot, checked before it has to: the machine's RAM and
//! each server's boot-info page. Both used to end the boot with a kernel panic ("boot: out of
//! memory", "boot info exceeds a page").
//!
//! The RAM check is a lower bound, so it never refuses a system that boots: it counts only what
//! the kernel certainly allocates (microkernel/kernel/src/boot.rs `instantiate`, loader.rs
//! `load`, boot_alloc.rs): every server's stack, heap and fixed pages, every RAM region, every
//! VM's RAM and its stage-2 tables, after the kernel's own image. When the manifest is loaded
//! the kernel image's size is not known yet, so only its boot stack is counted; the build, which
//! knows the payload the image carries and each server's ELF, checks again
//! ([`RamBudget::check`] with those sizes).

use crate::compile::Plan;
use crate::error::{ManifestError, Reporter};
use crate::linux::KeyAt;
use crate::platform::{
    KERNEL_LOAD, KERNEL_STACK, MAX_BOOTINFO, RAM, SERVER_FIXED_PAGES, guest_tables,
};
use crate::schema::ManifestDef;
use abi::layout::PAGE_SIZE;
use std::collections::BTreeMap;

/// One thing that takes the machine's RAM.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RamUse {
    /// For messages: "vm `guest`'s RAM (0x4000000 bytes)".
    what: String,
    /// At least this many bytes.
    bytes: u64,
    /// The server it belongs to, whose ELF the build adds.
    server: Option<String>,
    /// Where the manifest asks for it.
    at: KeyAt,
}

/// Everything the kernel allocates for the manifest, in file order: servers, RAM regions, VMs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RamBudget {
    uses: Vec<RamUse>,
    /// `[system] name`, where an image too large by itself is reported.
    system: KeyAt,
}

impl RamBudget {
    /// What `def` asks of the machine's RAM.
    pub fn of(rep: &Reporter<'_>, def: &ManifestDef) -> Self {
        let mut uses = Vec::new();
        for server in &def.servers {
            let (stack, heap) = (u64::from(server.stack), u64::from(server.heap));
            uses.push(RamUse {
                what: format!(
                    "server `{}` (stack {stack:#x}, heap {heap:#x}, {SERVER_FIXED_PAGES} pages of \
                     boot info, IPC buffer and page tables)",
                    server.name.value
                ),
                bytes: stack + heap + SERVER_FIXED_PAGES * PAGE_SIZE,
                server: Some(server.name.value.clone()),
                at: KeyAt::new(rep, &server.name.span, &server.name.key),
            });
        }
        for region in def.regions.iter().filter(|region| region.base.is_none()) {
            let size = &region.size_at;
            uses.push(RamUse {
                what: format!(
                    "RAM region `{}` ({:#x} bytes)",
                    region.name.value, size.value
                ),
                bytes: size.value,
                server: None,
                at: KeyAt::new(rep, &size.span, &size.key),
            });
        }
        for vm in &def.vms {
            let size = &vm.ram_size_at;
            uses.push(RamUse {
                what: format!("vm `{}`'s RAM ({:#x} bytes)", vm.name.value, size.value),
                bytes: size.value + (1 + guest_tables(size.value)) * PAGE_SIZE,
                server: None,
                at: KeyAt::new(rep, &size.span, &size.key),
            });
        }
        let name = &def.system.name;
        Self {
            uses,
            system: KeyAt::new(rep, &name.span, &name.key),
        }
    }

    /// Refuses the system unless everything fits in RAM after a kernel image of at least
    /// `kernel_image` bytes (its boot stack aside) and with `server_images` more bytes for each
    /// server named there (its ELF's segments, page by page).
    pub fn check(
        &self,
        kernel_image: u64,
        server_images: &BTreeMap<String, u64>,
    ) -> Result<(), ManifestError> {
        let image = if kernel_image == 0 {
            String::new()
        } else {
            format!(", and the {kernel_image:#x} bytes of the kernel image with its payload")
        };
        let room = |left: &str| {
            format!(
                "QEMU virt's RAM is {:#x}..{:#x} (`-m 1G`, as xtask runs it) and the kernel \
                 loads at {KERNEL_LOAD:#x}, so {left} bytes are left after its boot stack{image}",
                RAM.base,
                RAM.end()
            )
        };
        let free = (RAM.end() - KERNEL_LOAD - KERNEL_STACK).checked_sub(kernel_image);
        let Some(free) = free else {
            return Err(self.system.error(format!(
                "the kernel image with its payload ({kernel_image:#x} bytes) does not fit in the \
                 machine's RAM: {}",
                room("no")
            )));
        };
        let mut total = 0u64;
        for used in &self.uses {
            let image = used
                .server
                .as_ref()
                .and_then(|server| server_images.get(server))
                .copied()
                .unwrap_or(0);
            total = total.saturating_add(used.bytes).saturating_add(image);
            if total > free {
                let image = if image == 0 {
                    String::new()
                } else {
                    format!(" and its image's {image:#x} bytes")
                };
                return Err(used.at.error(format!(
                    "{}{image} does not fit in the machine's RAM: with it the system needs at \
                     least {total:#x} bytes, and {}",
                    used.what,
                    room(&format!("{free:#x}"))
                )));
            }
        }
        Ok(())
    }
}

/// Every server's boot info must fit the page the kernel gives it ([`MAX_BOOTINFO`]).
pub(crate) fn check_bootinfo(
    rep: &Reporter<'_>,
    def: &ManifestDef,
    plan: &Plan,
) -> Result<(), ManifestError> {
    let name = &def.system.name;
    let blobs = crate::payload::bootinfo_blobs(plan)
        .map_err(|error| rep.error(&name.span, &name.key, format!("{error:#}")))?;
    for ((blob, server), planned) in blobs.iter().zip(&def.servers).zip(&plan.servers) {
        if blob.len() > MAX_BOOTINFO {
            return Err(rep.error(
                &server.name.span,
                &server.name.key,
                format!(
                    "the boot info of server `{}` is {} bytes, more than the {MAX_BOOTINFO} the \
                     kernel has for it (one page, less its length word): it names {} \
                     capabilities and {} supervised servers; use shorter names, or fewer \
                     servers and capabilities",
                    server.name.value,
                    blob.len(),
                    planned.caps.len(),
                    planned.supervised.len()
                ),
            ));
        }
    }
    Ok(())
}
