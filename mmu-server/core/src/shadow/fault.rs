//! The guest page-fault path: MMIO fast path, guest walk, shadow path, page-size step-down, leaf.
//!
//! Order of work for a fault at `gva`:
//! 1. **MMIO fast path** (shadow/mmio.rs): follow the shadow links; a current-generation MMIO entry
//!    whose stored rights allow the access answers at once, without guest walk or slot search.
//! 2. **Guest walk** (SDM §4.5) and **permission check** (§4.6) under the root's role: a fault in
//!    the guest's own tables is reflected with the guest's error code. Then A/D are set (§4.8).
//! 3. **Indirect path**: for each guest table the walk used, find or create its shadow (keyed by
//!    frame and role) and link it. Creating one write-protects its guest frame, so this happens
//!    *before* the leaf size is chosen.
//! 4. **Step-down** (KVM's `kvm_mmu_hugepage_adjust`; docs/DESIGN.md, "Large pages around shadowed
//!    guest tables"): the shadow leaf is the largest size, not above the guest's page size or the
//!    host's, for which the aligned region lies inside one slot, is host-aligned, and contains **no
//!    write-protected frame**. 4 KiB always qualifies. A 1 GiB guest page with a page table inside
//!    it gets 2 MiB leaves wherever the 2 MiB region avoids the table, and 4 KiB only around the
//!    table.
//! 5. **Direct tables** below the guest leaf level for a split large page, then the **leaf**:
//!    the guest's effective rights (the whole walk's rights live in the leaf; links are fully
//!    permissive), writable only if the guest entry is dirty, the slot writable and the target
//!    not a shadowed table.
//!
//! Bounded faults: after `Fixed`, the retried access succeeds. Step 3 runs before the leaf is
//! written and pins the pages of the path, so nothing later in the same fault removes a link
//! of the path; the leaf grants exactly what the access needs (a write to a shadowed table is
//! answered with `Emulate`, never with a read-only leaf it would fault on again, and a large
//! leaf never covers a write-protected frame so nothing unmaps it for that reason). So every
//! access needs at most one `Fixed` fault; KVM's infinite retry, where write-protecting a table
//! dropped the large mapping the same fault had just made, cannot happen.

use super::addr::{Gfn, Gpa, Gva, level_bytes, level_frames};
use super::backing::{GuestMemory, ShadowTableStore, SlotMapping, TableId};
use super::engine::{EmulateReason, FaultOutcome, ShadowMmu};
use super::mmio;
use super::mode::{MemAccess, PfErrorCode, permits};
use super::pte::{
    ACC_U, ACC_W, ACC_X, Rights, is_shadow_link, link_child, memtype_bits, shadow_leaf,
};
use super::role::Role;
use super::walk::{GuestWalk, walk};

/// Pages pinned by one fault: the root and one per level below it.
type Path = heapless::Vec<u16, 4>;

impl<const PAGES: usize, const PARENTS: usize> ShadowMmu<PAGES, PARENTS> {
    /// Handle a page fault the hardware reported on the shadow tables at `gva` with `error_code`
    /// (only its W/R, U/S and I/D bits are used); `eflags_ac` is the guest's EFLAGS.AC for SMAP.
    pub fn page_fault<M: GuestMemory, S: ShadowTableStore>(
        &mut self,
        mem: &mut M,
        store: &mut S,
        gva: Gva,
        error_code: PfErrorCode,
        eflags_ac: bool,
    ) -> FaultOutcome {
        self.stats.faults += 1;
        self.observe_generation(mem, store);
        let access = MemAccess::from_error_code(error_code, eflags_ac);
        let role = self.roots.current.key.role;
        if let Some(out) = self.mmio_fast_path(mem, store, gva, access, role) {
            return out;
        }

        self.stats.guest_walks += 1;
        let mut w = if role.paging() {
            let root = self.roots.current.key.gfn;
            match walk(mem, root, gva, role, &self.config.guest, access) {
                Ok(w) => w,
                Err(error_code) => return self.inject(error_code),
            }
        } else {
            GuestWalk::identity(gva)
        };
        let prot = role.protection();
        if !permits(w.rights, access, prot) {
            let bits = access.error_bits(role.nxe(), prot.smep) | PfErrorCode::PRESENT;
            return self.inject(PfErrorCode(bits));
        }
        w.set_accessed_dirty(mem, access.is_write());
        let slot = mem.lookup_slot(w.gpa.gfn());

        // Indirect path: one shadow per guest table of the walk.
        let mut path = Path::new();
        let mut page = self.roots.current.page;
        let _ = path.push(page);
        self.reset_flood(page);
        let mut level = 4u8;
        let guest_top = if role.paging() { w.leaf_level } else { 4 };
        while level > guest_top {
            let child_level = level - 1;
            let child_role = role.child(child_level, false, w.access_in[child_level as usize]);
            let gfn = w.table_gfn[child_level as usize];
            let index = gva.index(level);
            let Some(child) = self.ensure_child(mem, store, page, index, gfn, child_role, &path)
            else {
                return self.restart(store);
            };
            page = child;
            let _ = path.push(page);
            level -= 1;
        }

        // Leaf size, after every table of this walk is write-protected.
        let leaf_level = match &slot {
            Some(slot) => self.leaf_level(&w, slot),
            None => 1,
        };
        // The leaf's rights, which also key the direct tables below a split guest page: two
        // guest leaves share a direct table only if every leaf in it is right for both.
        let leaf_rights = match leaf_rights(&w, access, role) {
            Ok(rights) => rights,
            Err(outcome) => return outcome,
        };
        // Direct tables splitting the guest page down to the leaf level.
        while level > leaf_level {
            let child_level = level - 1;
            let child_role = role.child(child_level, true, leaf_rights);
            let gfn = Gfn(w.gpa.gfn().0 & !(level_frames(level) - 1));
            let index = gva.index(level);
            let Some(child) = self.ensure_child(mem, store, page, index, gfn, child_role, &path)
            else {
                return self.restart(store);
            };
            page = child;
            let _ = path.push(page);
            level -= 1;
        }
        let index = gva.index(leaf_level);
        match slot {
            None => self.install_mmio(mem, store, page, index, w.gpa, leaf_rights),
            Some(slot) => self.install_leaf(
                store,
                page,
                index,
                leaf_level,
                &w,
                &slot,
                access,
                leaf_rights,
            ),
        }
    }

    fn inject(&mut self, error_code: PfErrorCode) -> FaultOutcome {
        self.stats.injected += 1;
        FaultOutcome::InjectPageFault { error_code }
    }

    /// The pool could not supply a page (impossible with `PAGES >= 8`): start from scratch and
    /// let the guest fault again.
    fn restart<S: ShadowTableStore>(&mut self, store: &mut S) -> FaultOutcome {
        self.flush_all(store);
        FaultOutcome::Fixed
    }

    fn reset_flood(&mut self, page: u16) {
        if let Some(m) = self.pool.get_mut(page) {
            m.write_count = 0;
        }
    }

    /// Step 1: answer from an MMIO shadow entry if one is current and allows the access.
    fn mmio_fast_path<M: GuestMemory, S: ShadowTableStore>(
        &mut self,
        mem: &M,
        store: &S,
        gva: Gva,
        access: MemAccess,
        role: Role,
    ) -> Option<FaultOutcome> {
        if !self.config.mmio_cache {
            return None;
        }
        let (_, _, spte) = self.shadow_terminal(store, gva);
        let m = mmio::decode(spte)?;
        if !m.is_current(mem.memslot_generation()) || !permits(m.access, access, role.protection())
        {
            return None;
        }
        self.stats.mmio_cached += 1;
        Some(FaultOutcome::Mmio {
            gpa: Gpa(m.gfn.gpa().0 | (gva.0 & 0xfff)),
            cached: true,
        })
    }

    /// Make entry `index` of `parent` link to the page `(gfn, role)`, reusing the existing link,
    /// an existing page or a new one (in that order).
    #[allow(clippy::too_many_arguments)]
    fn ensure_child<M: GuestMemory, S: ShadowTableStore>(
        &mut self,
        mem: &mut M,
        store: &mut S,
        parent: u16,
        index: usize,
        gfn: Gfn,
        role: Role,
        path: &Path,
    ) -> Option<u16> {
        let spte = store.read_entry(TableId(parent), index);
        if is_shadow_link(spte, role.level() + 1) {
            let child = link_child(spte);
            if self
                .pool
                .get(child)
                .is_some_and(|m| m.gfn == gfn && m.role == role)
            {
                self.reset_flood(child);
                return Some(child);
            }
        }
        let child = match self.pool.find(gfn, role) {
            Some(child) => child,
            None => self.alloc_page(mem, store, gfn, role, path)?,
        };
        self.link(store, parent, index, child);
        self.reset_flood(child);
        Some(child)
    }

    /// Step 4: the largest shadow leaf level that is safe for this translation.
    fn leaf_level(&self, w: &GuestWalk, slot: &SlotMapping) -> u8 {
        let max = w.leaf_level.min(self.config.host_max_page.level());
        let gfn = w.gpa.gfn();
        for level in (2..=max).rev() {
            let frames = level_frames(level);
            let base = Gfn(gfn.0 & !(frames - 1));
            if !slot.contains_range(base, frames) {
                continue;
            }
            let host = slot.hpa_of(base);
            if host.0 & (level_bytes(level) - 1) != 0 {
                continue;
            }
            if self.pool.protects_any(host, level_bytes(level)) {
                continue;
            }
            return level;
        }
        1
    }

    fn install_mmio<M: GuestMemory, S: ShadowTableStore>(
        &mut self,
        mem: &M,
        store: &mut S,
        page: u16,
        index: usize,
        gpa: Gpa,
        rights: Rights,
    ) -> FaultOutcome {
        self.stats.mmio_slow += 1;
        self.drop_spte(store, page, index);
        if self.config.mmio_cache
            && let Some(spte) = mmio::encode(gpa.gfn(), rights, mem.memslot_generation())
        {
            self.set_spte(store, page, index, spte);
        }
        FaultOutcome::Mmio { gpa, cached: false }
    }

    /// Step 5: write the leaf with `rights`, less write access where the target frame is
    /// read-only or a shadowed guest table; say when the access must exit or be emulated.
    #[allow(clippy::too_many_arguments)]
    fn install_leaf<S: ShadowTableStore>(
        &mut self,
        store: &mut S,
        page: u16,
        index: usize,
        level: u8,
        w: &GuestWalk,
        slot: &SlotMapping,
        access: MemAccess,
        mut rights: Rights,
    ) -> FaultOutcome {
        let write = access.is_write();
        let mut outcome = FaultOutcome::Fixed;
        let target = slot.hpa_of(w.gpa.gfn());
        if slot.readonly {
            rights &= !ACC_W;
            if write {
                outcome = FaultOutcome::Mmio {
                    gpa: w.gpa,
                    cached: false,
                };
            }
        } else if level == 1 && self.pool.is_write_protected(target) {
            rights &= !ACC_W;
            if write {
                outcome = FaultOutcome::Emulate {
                    gpa: w.gpa,
                    reason: EmulateReason::PageTableWrite,
                };
            }
        }
        let base = Gfn(w.gpa.gfn().0 & !(level_frames(level) - 1));
        let memtype = if w.paging {
            memtype_bits(w.leaf(), w.leaf_level, level)
        } else {
            0
        };
        let spte = shadow_leaf(slot.hpa_of(base), level, rights, memtype);
        self.drop_spte(store, page, index);
        self.set_spte(store, page, index, spte);
        outcome
    }
}

/// The rights of the shadow leaf for an allowed `access` through walk `w`: the guest's effective
/// rights, without write until the guest entry is dirty. A supervisor write allowed only by
/// CR0.WP=0 gets a writable, supervisor-only leaf (so user accesses still fault and are
/// re-shadowed read-only), also non-executable under SMEP when the page is a user page (it now
/// looks like a supervisor page). Under SMAP that leaf would let AC=0 supervisor accesses to
/// the user page through, so the access is emulated instead.
fn leaf_rights(w: &GuestWalk, access: MemAccess, role: Role) -> Result<Rights, FaultOutcome> {
    let prot = role.protection();
    let mut rights = w.rights;
    if !w.dirty() {
        rights &= !ACC_W;
    }
    if access.is_write() && w.rights & ACC_W == 0 {
        if rights & ACC_U != 0 && prot.smap {
            return Err(FaultOutcome::Emulate {
                gpa: w.gpa,
                reason: EmulateReason::Unrepresentable,
            });
        }
        rights = (rights | ACC_W) & !ACC_U;
        if prot.smep && w.rights & ACC_U != 0 {
            rights &= !ACC_X;
        }
    }
    Ok(rights)
}
