//! Capabilities by manifest name, from the boot-info page the kernel fills at start.

use abi::CPtr;
use abi::layout::BOOTINFO_VA;
use core::sync::atomic::{AtomicU64, Ordering};

/// The boot-info blob (the kernel stores its length in the first four bytes of the page).
pub fn bootinfo() -> &'static [u8] {
    // SAFETY: the boot-info page is mapped read-only at BOOTINFO_VA for the server's whole life
    // and never changes while it runs.
    let len = unsafe { (BOOTINFO_VA as *const u32).read_volatile() } as usize;
    // SAFETY: as above; the length is bounded to the page after the length word.
    unsafe { core::slice::from_raw_parts((BOOTINFO_VA + 4) as *const u8, len.min(4092)) }
}

/// The slot of the capability the manifest calls `name`. A missing name is a manifest/server
/// mismatch: the server panics, and the supervisor reports it.
pub fn cap(name: &str) -> CPtr {
    match bootdesc::bootinfo::find_cap(bootinfo(), name) {
        Some(slot) => CPtr::from(slot),
        None => panic!("no capability named `{name}` in the manifest"),
    }
}

/// The slot of `name`, if the manifest gave one.
pub fn try_cap(name: &str) -> Option<CPtr> {
    bootdesc::bootinfo::find_cap(bootinfo(), name).map(CPtr::from)
}

/// The slot of the capability named `<prefix><name>` (the per-VM names like `vspace:guest`),
/// built on the stack: no heap in servers. `None` when there is none or it would exceed 64 bytes.
pub fn try_cap_named(prefix: &str, name: &str) -> Option<CPtr> {
    let mut bytes = [0u8; 64];
    let len = prefix.len() + name.len();
    if len > bytes.len() {
        return None;
    }
    bytes[..prefix.len()].copy_from_slice(prefix.as_bytes());
    bytes[prefix.len()..len].copy_from_slice(name.as_bytes());
    try_cap(core::str::from_utf8(&bytes[..len]).ok()?)
}

/// The slot of the capability this server, serving VM `vm`, knows by its role `name`: `name`
/// itself, else `<name>-<vm>` (one mmu-server or memory-backing server per VM, each endpoint
/// named after its VM: `bootdesc::bootinfo::find_vm_cap`).
pub fn try_vm_cap(name: &str, vm: &str) -> Option<CPtr> {
    bootdesc::bootinfo::find_vm_cap(bootinfo(), name, vm).map(CPtr::from)
}

/// This server's manifest name.
pub fn server_name() -> &'static str {
    bootdesc::bootinfo::header(bootinfo())
        .map(|(header, _)| header.name)
        .unwrap_or("?")
}

/// A capability looked up by manifest name once, on first use, then remembered (a restart
/// zeroes the memo with the rest of the server's data). For capabilities a server may lack.
pub struct CachedCap {
    name: &'static str,
    /// 0: not looked up yet (slot 0 is always empty); [`CachedCap::ABSENT`]: no such name.
    slot: AtomicU64,
}

impl CachedCap {
    const ABSENT: u64 = u64::MAX;

    /// The capability the manifest calls `name`.
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            slot: AtomicU64::new(0),
        }
    }

    /// Its slot, if the manifest gave one.
    pub fn get(&self) -> Option<CPtr> {
        match self.slot.load(Ordering::Relaxed) {
            0 => {
                let slot = try_cap(self.name);
                self.slot
                    .store(slot.unwrap_or(Self::ABSENT), Ordering::Relaxed);
                slot
            }
            Self::ABSENT => None,
            slot => Some(slot),
        }
    }
}
