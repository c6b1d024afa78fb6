//! Building guest page tables and checking a machine against the reference walker.

use crate::shadow::pte::{P, PS, RW, US};
use crate::shadow::{AccessKind, Config, CpuMode, Gpa, Hpa, MemAccess, PageSize};
use crate::testing::{AccessResult, FakeGuestMemory, Machine};

/// Guest RAM: one slot of 4 GiB at GPA 0, host-backed from 64 GiB (1 GiB aligned).
pub const RAM_BYTES: u64 = 4 << 30;
/// Host address backing GPA 0.
pub const HOST_BASE: u64 = 64 << 30;
/// A GPA in no slot.
pub const MMIO_GPA: u64 = 0x10_fee0_0000;
/// User, writable, present.
pub const URW: u64 = P | RW | US;

/// Guest memory with page tables allocated from low memory.
pub struct Guest {
    pub mem: FakeGuestMemory,
    next_table: u64,
}

impl Guest {
    /// RAM slot only; tables from 0x1000 upwards.
    pub fn new() -> Guest {
        let mut mem = FakeGuestMemory::new();
        mem.add_slot(Gpa(0), RAM_BYTES, Hpa(HOST_BASE), false);
        Guest {
            mem,
            next_table: 0x1000,
        }
    }

    /// A fresh zeroed table.
    pub fn table(&mut self) -> u64 {
        let t = self.next_table;
        self.next_table += 0x1000;
        t
    }

    /// Map `va` → `pa` with a leaf of `size` and `flags` (P added; PS added for large pages),
    /// creating intermediate tables with `URW`.
    pub fn map(&mut self, root: u64, va: u64, pa: u64, size: PageSize, flags: u64) {
        let mut table = root;
        let mut level = 4u8;
        while level > size.level() {
            let idx = (va >> (12 + 9 * (level as u32 - 1))) & 511;
            let e = self.mem.peek_u64(Gpa(table + idx * 8)).unwrap_or(0);
            table = if e & P != 0 {
                e & 0x000f_ffff_ffff_f000
            } else {
                let t = self.table();
                self.mem.poke_u64(Gpa(table + idx * 8), t | URW);
                t
            };
            level -= 1;
        }
        let idx = (va >> (12 + 9 * (level as u32 - 1))) & 511;
        let ps = if level > 1 { PS } else { 0 };
        self.mem.poke_u64(Gpa(table + idx * 8), pa | flags | P | ps);
    }

    /// The gpa of the entry for `va` at `level` in the tables under `root` (tables must exist).
    pub fn entry_gpa(&self, root: u64, va: u64, level: u8) -> u64 {
        let mut table = root;
        for l in (level + 1..=4).rev() {
            let idx = (va >> (12 + 9 * (l as u32 - 1))) & 511;
            table = self.mem.peek_u64(Gpa(table + idx * 8)).unwrap_or(0) & 0x000f_ffff_ffff_f000;
        }
        table + ((va >> (12 + 9 * (level as u32 - 1))) & 511) * 8
    }

    /// A machine of `N` shadow pages running this guest at `cr3` in long mode.
    pub fn boot<const N: usize>(self, cr3: u64) -> Machine<N> {
        self.boot_with::<N, 4>(cr3, CpuMode::long_mode(), Config::default())
    }

    /// A machine with explicit mode and configuration.
    pub fn boot_with<const N: usize, const P: usize>(
        self,
        cr3: u64,
        mode: CpuMode,
        config: Config,
    ) -> Machine<N, P> {
        match Machine::new(config, self.mem, cr3, mode) {
            Ok(m) => m,
            Err(e) => panic!("machine: {e:?}"),
        }
    }
}

/// An access of `kind`, user or supervisor, without the SMAP override.
pub const fn acc(kind: AccessKind, user: bool) -> MemAccess {
    MemAccess {
        kind,
        user,
        smap_override: false,
    }
}

/// Supervisor read.
pub const READ: MemAccess = acc(AccessKind::Read, false);
/// Supervisor write.
pub const WRITE: MemAccess = acc(AccessKind::Write, false);
/// User read.
pub const UREAD: MemAccess = acc(AccessKind::Read, true);
/// User write.
pub const UWRITE: MemAccess = acc(AccessKind::Write, true);

/// The six plain accesses plus the two AC-override supervisor data accesses.
pub const ALL_ACCESSES: [MemAccess; 8] = [
    acc(AccessKind::Read, false),
    acc(AccessKind::Write, false),
    acc(AccessKind::Fetch, false),
    acc(AccessKind::Read, true),
    acc(AccessKind::Write, true),
    acc(AccessKind::Fetch, true),
    MemAccess {
        kind: AccessKind::Read,
        user: false,
        smap_override: true,
    },
    MemAccess {
        kind: AccessKind::Write,
        user: false,
        smap_override: true,
    },
];

/// Invariant 1 for one address: whatever the shadow allows, the guest allows, to the same
/// frame; and the guest's A (and D for writes) bits on the path are set.
pub fn check_va<const N: usize, const P: usize>(
    m: &Machine<N, P>,
    va: u64,
) -> Result<(), alloc::string::String> {
    use alloc::format;
    // A supervisor read with EFLAGS.AC is refused only by a non-present or reserved entry: if
    // the shadow refuses it, it refuses every access and there is nothing to compare.
    if m.hw_translate(va, ALL_ACCESSES[6]).is_err() {
        return Ok(());
    }
    for access in ALL_ACCESSES {
        let Ok(hw) = m.hw_translate(va, access) else {
            continue;
        };
        let Ok(reference) = m.ref_translate(va, access) else {
            return Err(format!(
                "va {va:#x} {access:?}: shadow allows, guest denies: {:?}",
                m.ref_translate(va, access)
            ));
        };
        let want = m.mem.translate(Gpa(reference.pa));
        if want != Some(Hpa(hw.pa)) {
            return Err(format!(
                "va {va:#x} {access:?}: shadow maps {:#x}, guest {:#x} -> {want:x?}",
                hw.pa, reference.pa
            ));
        }
        if m.mode.cr0_pg {
            for (i, &e) in reference.entries.iter().enumerate() {
                let Some(v) = m.mem.peek_u64(Gpa(e)) else {
                    continue;
                };
                let ro_slot = m.mem.slot_of(Gpa(e).gfn()).is_some_and(|s| s.readonly);
                let leaf = i + 1 == reference.entries.len();
                let d_needed = leaf && access.kind == AccessKind::Write;
                if !ro_slot && (v & (1 << 5) == 0 || (d_needed && v & (1 << 6) == 0)) {
                    return Err(format!(
                        "va {va:#x} {access:?}: guest entry {e:#x} = {v:#x} lacks A/D"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Run `access` and check it against the reference: allowed accesses complete (on RAM at the
/// right frame, on MMIO as an exit), denied ones inject the reference error code, and at most
/// one fault is answered `Fixed`. Returns the result.
pub fn run_checked<const N: usize, const P: usize>(
    m: &mut Machine<N, P>,
    va: u64,
    access: MemAccess,
    data: u64,
) -> AccessResult {
    let before = m.ref_translate(va, access);
    let report = m.access(va, access, data);
    assert!(
        report.fixed <= 1,
        "va {va:#x} {access:?}: {} Fixed faults ({report:?})",
        report.fixed
    );
    match (report.result, &before) {
        (AccessResult::Done { hpa, .. }, Ok(t)) => {
            assert_eq!(
                m.mem.translate(Gpa(t.pa)),
                Some(hpa),
                "va {va:#x} {access:?}"
            );
        }
        (AccessResult::Injected { error_code }, Err(ec)) => {
            assert_eq!(error_code, *ec, "va {va:#x} {access:?}: error code");
        }
        (AccessResult::Mmio { gpa, .. }, Ok(t)) => {
            assert_eq!(gpa.0, t.pa);
            let slot = m.mem.slot_of(gpa.gfn());
            assert!(
                slot.is_none()
                    || (slot.is_some_and(|s| s.readonly) && access.kind == AccessKind::Write),
                "MMIO exit for RAM at {gpa:x?}"
            );
        }
        (AccessResult::Emulated { gpa, .. }, Ok(t)) => assert_eq!(gpa.0, t.pa),
        (result, reference) => {
            panic!("va {va:#x} {access:?}: engine {result:?}, reference {reference:x?}")
        }
    }
    report.result
}

/// The pool's per-table counters (shadow/pages.rs) against a recount of every table in the
/// store: for each page in use, its non-zero, writable-leaf, large-leaf and MMIO counts; for
/// each free page, an empty table. `write_protect` and `zap_all_mmio` skip tables by these
/// counters, so an undercount would leave a writable leaf onto a guest table (or a stale MMIO
/// entry) in place, and an overcount turns each skip into a full scan.
pub fn check_pool_counters<const N: usize, const PARENTS: usize>(
    m: &Machine<N, PARENTS>,
) -> Result<(), alloc::string::String> {
    use crate::shadow::ShadowTableStore;
    use crate::shadow::TableId;
    use alloc::format;
    for (id, meta) in m.mmu.pool.meta.iter().enumerate() {
        let entries = (0..512).map(|i| m.store.read_entry(TableId(id as u16), i));
        if !meta.in_use {
            if let Some(spte) = entries.clone().find(|&e| e != 0) {
                return Err(format!("free page {id} holds entry {spte:#x}"));
            }
            continue;
        }
        let level = meta.role.level();
        let (mut nonzero, mut writable, mut large, mut mmio) = (0u16, 0u16, 0u16, 0u16);
        for spte in entries {
            // Written from the SDM's entry format (Tables 4-15 to 4-20) and the MMIO encoding
            // of shadow/mmio.rs (P=0, bit 1 set), not with the engine's classifier.
            let present = spte & P != 0;
            let leaf = present && (level == 1 || spte & PS != 0);
            nonzero += u16::from(spte != 0);
            writable += u16::from(leaf && spte & RW != 0);
            large += u16::from(leaf && level > 1);
            mmio += u16::from(!present && spte & 0b10 != 0);
        }
        let recount = (nonzero, writable, large, mmio);
        let kept = (
            meta.nonzero,
            meta.writable_leaves,
            meta.large_leaves,
            meta.mmio,
        );
        if recount != kept {
            return Err(format!(
                "page {id} (level {level}): counters (nonzero, writable, large, mmio) = {kept:?}, \
                 the table holds {recount:?}"
            ));
        }
    }
    Ok(())
}
