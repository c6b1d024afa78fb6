//! The few primitives that change shadow tables, so that bookkeeping cannot be forgotten.
//!
//! Every shadow entry write goes through [`ShadowMmu::set_spte`], which keeps the per-page
//! counters and raises the TLB-flush request when a present entry loses anything. Links are made
//! only by [`ShadowMmu::link`] and removed only by [`ShadowMmu::drop_spte`] or
//! [`ShadowMmu::zap_page`], which keep the parent lists exact. A page is allocated only by
//! [`ShadowMmu::alloc_page`], which write-protects the guest table it shadows before anything can
//! map through it, and evicts (never fails) when the pool is full.
//!
//! Write-protection (docs/DESIGN.md, "Large pages around shadowed guest tables"): when a host frame
//! becomes a shadowed guest table, every writable 4 KiB shadow leaf mapping it loses RW, and every
//! large shadow leaf covering it is dropped. From then on the fault path refuses to map it writable
//! or to cover it with a large leaf, until no shadow page names it any more.

use super::addr::{ENTRIES, Gfn, Hpa, level_bytes};
use super::backing::{GuestMemory, ShadowTableStore, TableId};
use super::engine::ShadowMmu;
use super::mmio;
use super::pages::{ParentLink, SpteClass};
use super::pte::{D, P, RW, is_shadow_leaf, is_shadow_link, link_child, shadow_link, spte_hpa};
use super::role::Role;

impl<const PAGES: usize, const PARENTS: usize> ShadowMmu<PAGES, PARENTS> {
    /// Level of page `id` (0 if not in use).
    pub(super) fn level_of(&self, id: u16) -> u8 {
        self.pool.get(id).map_or(0, |m| m.role.level())
    }

    fn classify(spte: u64, level: u8) -> SpteClass {
        let leaf = is_shadow_leaf(spte, level);
        SpteClass {
            nonzero: spte != 0,
            writable_leaf: leaf && spte & RW != 0,
            large_leaf: leaf && level > 1,
            mmio: mmio::is_mmio(spte),
        }
    }

    /// Write one shadow entry, keeping counters and the TLB-flush request.
    pub(super) fn set_spte<S: ShadowTableStore>(
        &mut self,
        store: &mut S,
        id: u16,
        index: usize,
        new: u64,
    ) {
        let level = self.level_of(id);
        let old = store.read_entry(TableId(id), index);
        if old == new {
            return;
        }
        if old & P != 0 {
            // Conservative: any change to a present entry may remove a cached translation.
            self.tlb_flush = true;
        }
        self.pool
            .account(id, Self::classify(old, level), Self::classify(new, level));
        store.write_entry(TableId(id), index, new);
    }

    /// Clear one shadow entry, unlinking the child table if it was a link.
    pub(super) fn drop_spte<S: ShadowTableStore>(&mut self, store: &mut S, id: u16, index: usize) {
        let old = store.read_entry(TableId(id), index);
        if old == 0 {
            return;
        }
        if is_shadow_link(old, self.level_of(id)) {
            let link = ParentLink {
                page: id,
                index: index as u16,
            };
            self.pool.remove_parent(link_child(old), link);
        }
        self.set_spte(store, id, index, 0);
    }

    /// Make entry `index` of `parent` link to `child`.
    pub(super) fn link<S: ShadowTableStore>(
        &mut self,
        store: &mut S,
        parent: u16,
        index: usize,
        child: u16,
    ) {
        self.drop_spte(store, parent, index);
        let link = ParentLink {
            page: parent,
            index: index as u16,
        };
        if let Some(displaced) = self.pool.add_parent(child, link) {
            // The parent list was full: the oldest link goes (its walk will fault again).
            self.set_spte(store, displaced.page, displaced.index as usize, 0);
        }
        let spte = shadow_link(store.table_hpa(TableId(child)), child);
        self.set_spte(store, parent, index, spte);
    }

    /// Remove a page from the shadow: clear its entries and every link to it, then free it. The
    /// current root is emptied but kept (it is what the hardware CR3 points at).
    pub(super) fn zap_page<S: ShadowTableStore>(&mut self, store: &mut S, id: u16) {
        let Some(meta) = self.pool.get(id).copied() else {
            return;
        };
        if meta.nonzero > 0 {
            for index in 0..ENTRIES {
                self.drop_spte(store, id, index);
                if self.pool.get(id).is_some_and(|m| m.nonzero == 0) {
                    break;
                }
            }
        }
        for link in meta.parents.iter().take(meta.nparents as usize) {
            self.set_spte(store, link.page, link.index as usize, 0);
        }
        if let Some(m) = self.pool.get_mut(id) {
            m.nparents = 0;
            m.write_count = 0;
        }
        if id == self.roots.current.page {
            return;
        }
        self.roots.forget(id);
        self.pool.release(id);
    }

    /// Allocate a page for `(gfn, role)`, evicting if the pool is full (never one in `pinned` or
    /// the current root). An indirect page write-protects its guest table before returning.
    /// `None` only if every page is pinned, which `PAGES >= 8` rules out.
    pub(super) fn alloc_page<M: GuestMemory, S: ShadowTableStore>(
        &mut self,
        mem: &mut M,
        store: &mut S,
        gfn: Gfn,
        role: Role,
        pinned: &[u16],
    ) -> Option<u16> {
        let id = match self.pool.free_slot() {
            Some(id) => id,
            None => {
                let mut pins: heapless::Vec<u16, 8> = pinned.iter().copied().take(7).collect();
                let _ = pins.push(self.roots.current.page);
                let roots = &self.roots;
                let victim = self.pool.victim(&pins, |p| roots.is_prev(p))?;
                self.stats.evictions += 1;
                self.zap_page(store, victim);
                victim
            }
        };
        self.pool.occupy(id, gfn, role);
        self.stats.pages_created += 1;
        if !role.direct()
            && let Some(slot) = mem.lookup_slot(gfn)
        {
            self.protect_page(store, id, slot.hpa_of(gfn));
        }
        Some(id)
    }

    /// Record that page `id` shadows the guest table at `hpa`, write-protecting it if new.
    pub(super) fn protect_page<S: ShadowTableStore>(&mut self, store: &mut S, id: u16, hpa: Hpa) {
        let already = self.pool.is_write_protected(hpa);
        if let Some(w) = self.pool.wp.get_mut(id as usize) {
            *w = hpa.0;
        }
        if !already {
            self.stats.write_protects += 1;
            self.write_protect(store, hpa);
        }
    }

    /// Remove write access to the host frame `hpa` from every shadow leaf: RW off for 4 KiB
    /// leaves mapping it, large leaves covering it dropped.
    fn write_protect<S: ShadowTableStore>(&mut self, store: &mut S, hpa: Hpa) {
        for id in 0..PAGES as u16 {
            let Some(m) = self.pool.get(id) else { continue };
            let level = m.role.level();
            if m.writable_leaves == 0 && m.large_leaves == 0 {
                continue;
            }
            for index in 0..ENTRIES {
                let spte = store.read_entry(TableId(id), index);
                if !is_shadow_leaf(spte, level) {
                    continue;
                }
                let base = spte_hpa(spte).0 & !(level_bytes(level) - 1);
                if level > 1 {
                    if hpa.0 >= base && hpa.0 - base < level_bytes(level) {
                        self.drop_spte(store, id, index);
                    }
                } else if spte & RW != 0 && base == hpa.0 {
                    self.set_spte(store, id, index, spte & !(RW | D));
                }
            }
        }
    }

    /// Clear every MMIO entry (generation wrap).
    pub(super) fn zap_all_mmio<S: ShadowTableStore>(&mut self, store: &mut S) {
        for id in 0..PAGES as u16 {
            if self.pool.get(id).is_none_or(|m| m.mmio == 0) {
                continue;
            }
            for index in 0..ENTRIES {
                if mmio::is_mmio(store.read_entry(TableId(id), index)) {
                    self.set_spte(store, id, index, 0);
                }
            }
        }
    }
}
