//! The engine object and the interface the VMX port drives: guest page fault, guest write to
//! memory, root switch (CR3 load or paging-mode change), INVLPG, full flush, slot changes.
//!
//! State: the pool metadata, the root cache, the MMIO epoch and a pending-TLB-flush flag. Nothing
//! here owns memory: each call borrows the port's [`GuestMemory`] and [`ShadowTableStore`].
//!
//! Synchronisation model: every guest frame used as a page table by a shadowed walk is
//! write-protected, and every write to one is emulated through [`ShadowMmu::guest_write`], so the
//! shadow tables never allow more than the guest tables do *at any moment*. INVLPG and CR3
//! reloads therefore have nothing to resynchronise; the engine still drops the leaf for INVLPG
//! (the next access walks again and sets A bits like hardware would) and the port still flushes
//! the hardware TLB whenever [`ShadowMmu::take_tlb_flush`] says shadow entries lost rights.

use super::addr::{Gfn, Gpa, Gva, Hpa, PageSize};
use super::backing::{GuestMemory, ShadowTableStore, TableId};
use super::mmio;
use super::mode::{CpuMode, ModeError, PfErrorCode};
use super::pages::{NO_WP, Pool};
use super::pte::{ADDR_MASK, MAX_POOL_PAGES, is_shadow_link, link_child};
use super::role::Role;
use super::roots::{CachedRoot, RootCache, RootKey, RootLoad};
use super::walk::GuestCpu;

/// Static configuration of one VM's shadow MMU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Guest CPUID facts the walk depends on.
    pub guest: GuestCpu,
    /// The largest page the host can map in a shadow leaf (1 GiB needs host PDPE1GB).
    pub host_max_page: PageSize,
    /// Install MMIO shadow entries (off only to measure what they save).
    pub mmio_cache: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            guest: GuestCpu {
                maxphyaddr: 46,
                gbpages: true,
            },
            host_max_page: PageSize::Size1G,
            mmio_cache: true,
        }
    }
}

/// What the port must do after a guest page fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultOutcome {
    /// The shadow now allows the access: re-enter the guest.
    Fixed,
    /// The guest's own tables deny the access: inject #PF with this error code (CR2 = the address).
    InjectPageFault {
        /// The error code for the guest.
        error_code: PfErrorCode,
    },
    /// The access targets MMIO at `gpa`: emulate it against the device model. `cached` tells
    /// whether the MMIO shadow entry answered (no guest walk, no slot search).
    Mmio {
        /// The guest physical address accessed.
        gpa: Gpa,
        /// Served from an MMIO shadow entry.
        cached: bool,
    },
    /// The guest allows the access but the shadow must not map it: emulate the instruction and
    /// make its writes with [`ShadowMmu::guest_write`].
    Emulate {
        /// The guest physical address accessed.
        gpa: Gpa,
        /// Why.
        reason: EmulateReason,
    },
}

/// Why an access is emulated rather than mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmulateReason {
    /// A write to a guest page table that a shadowed walk uses (it is write-protected).
    PageTableWrite,
    /// A CR0.WP=0 supervisor write to a read-only user page under SMAP: no shadow leaf can
    /// allow that write while still denying user writes and AC=0 supervisor accesses.
    Unrepresentable,
}

/// A change of the memory-slot table, reported after it is complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotChange {
    /// Slots were only added: stale MMIO entries are caught by the generation.
    Created,
    /// A slot was removed, moved, resized or had its flags changed: all shadows are dropped.
    RemovedOrMoved,
}

/// Counters for tests, tracing and the benchmark.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Page faults handled.
    pub faults: u64,
    /// Guest page-table walks made.
    pub guest_walks: u64,
    /// Faults answered by an MMIO shadow entry.
    pub mmio_cached: u64,
    /// MMIO faults that needed a walk and a slot search.
    pub mmio_slow: u64,
    /// Faults reflected to the guest.
    pub injected: u64,
    /// Shadow pages allocated.
    pub pages_created: u64,
    /// Shadow pages evicted because the pool was full.
    pub evictions: u64,
    /// Shadow pages zapped because their guest table was flooded with writes.
    pub flood_zaps: u64,
    /// Host frames newly write-protected.
    pub write_protects: u64,
    /// Root switches served from the cache.
    pub root_hits: u64,
    /// Root switches that missed the cache.
    pub root_misses: u64,
    /// Times every MMIO entry was zapped because the generation wrapped.
    pub mmio_wraps: u64,
}

/// Why an engine cannot be created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewError {
    /// The initial paging mode is not supported.
    Mode(ModeError),
    /// The store has fewer tables than the engine's pool size.
    StoreTooSmall,
    /// The guest's MAXPHYADDR is outside 32..=52 (the architectural range; the reserved-bit
    /// masks are computed from it and a larger value would overflow them).
    MaxPhysicalAddress(u8),
}

/// The shadow-paging engine for one vCPU's MMU context.
///
/// `PAGES` is the shadow-table pool size (8..=2048; the store must provide at least that many
/// tables) and `PARENTS` the links remembered per table (at least 1).
pub struct ShadowMmu<const PAGES: usize, const PARENTS: usize = 4> {
    pub(super) config: Config,
    pub(super) pool: Pool<PAGES, PARENTS>,
    pub(super) roots: RootCache,
    pub(super) mmio_epoch: u64,
    pub(super) tlb_flush: bool,
    pub(super) stats: Stats,
}

impl<const PAGES: usize, const PARENTS: usize> ShadowMmu<PAGES, PARENTS> {
    /// Compile-time capacity check: a fault pins at most four pages (root + three levels), so
    /// eight guarantee a victim; child indexes live in 11 spare bits of each link; the parent
    /// count is a `u8`.
    const CAPACITY_OK: () = assert!(
        PAGES >= 8 && PAGES <= MAX_POOL_PAGES && PARENTS >= 1 && PARENTS <= u8::MAX as usize
    );

    /// Create an engine whose guest starts with `cr3` in `mode`.
    pub fn new<M: GuestMemory, S: ShadowTableStore>(
        config: Config,
        mem: &mut M,
        store: &mut S,
        cr3: u64,
        mode: &CpuMode,
    ) -> Result<Self, NewError> {
        let () = Self::CAPACITY_OK;
        if store.capacity() < PAGES {
            return Err(NewError::StoreTooSmall);
        }
        if !(32..=52).contains(&config.guest.maxphyaddr) {
            return Err(NewError::MaxPhysicalAddress(config.guest.maxphyaddr));
        }
        let key = root_key(cr3, mode).map_err(NewError::Mode)?;
        let mut mmu = ShadowMmu {
            config,
            pool: Pool::new(),
            roots: RootCache::new(CachedRoot { key, page: 0 }),
            mmio_epoch: mmio::epoch(mem.memslot_generation()),
            tlb_flush: true,
            stats: Stats::default(),
        };
        // The pool is empty, so allocation cannot fail; page 0 is the fallback regardless.
        let page = mmu
            .alloc_page(mem, store, key.gfn, key.role, &[])
            .unwrap_or(0);
        mmu.roots.current.page = page;
        Ok(mmu)
    }

    /// The host address to load into the hardware CR3 while the guest runs.
    pub fn root_hpa<S: ShadowTableStore>(&self, store: &S) -> Hpa {
        store.table_hpa(TableId(self.roots.current.page))
    }

    /// The current root's key.
    pub fn root_key(&self) -> RootKey {
        self.roots.current.key
    }

    /// The previous roots in the cache, most recent first.
    pub fn cached_roots(&self) -> impl Iterator<Item = RootKey> + '_ {
        self.roots.previous().iter().map(|r| r.key)
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Shadow pages in use.
    pub fn pages_in_use(&self) -> usize {
        self.pool.used
    }

    /// Is the guest frame at host address `hpa` write-protected as a shadowed guest table?
    pub fn is_write_protected(&self, hpa: Hpa) -> bool {
        self.pool.is_write_protected(hpa)
    }

    /// True (once) when shadow entries lost rights since the last call: the port must flush the
    /// hardware TLB (INVVPID / CR3 reload) before re-entering the guest.
    pub fn take_tlb_flush(&mut self) -> bool {
        core::mem::take(&mut self.tlb_flush)
    }

    /// The guest loaded CR3 or changed a paging control bit (CR0.PG/WP, CR4.PAE/PSE/SMEP/SMAP/
    /// PKE/LA57, EFER.NXE/LMA). Switches to the shadow root for `(cr3, role)`, from the cache if
    /// possible. On an unsupported mode nothing changes.
    pub fn set_root<M: GuestMemory, S: ShadowTableStore>(
        &mut self,
        mem: &mut M,
        store: &mut S,
        cr3: u64,
        mode: &CpuMode,
    ) -> Result<RootLoad, ModeError> {
        self.observe_generation(mem, store);
        let key = root_key(cr3, mode)?;
        if key == self.roots.current.key {
            // A same-root CR3 load only flushes the guest's TLB; the shadow is in sync.
            return Ok(RootLoad::Current);
        }
        let (root, load) = match self.roots.take_prev(key) {
            Some(root) => {
                self.stats.root_hits += 1;
                (root, RootLoad::CacheHit)
            }
            None => {
                self.stats.root_misses += 1;
                let current = self.roots.current.page;
                let page = match self.pool.find(key.gfn, key.role) {
                    Some(page) => page,
                    None => match self.alloc_page(mem, store, key.gfn, key.role, &[current]) {
                        Some(page) => page,
                        // Unreachable with PAGES >= 8; start over rather than fail.
                        None => {
                            self.flush_all(store);
                            self.alloc_page(mem, store, key.gfn, key.role, &[current])
                                .unwrap_or(current)
                        }
                    },
                };
                (CachedRoot { key, page }, RootLoad::Miss)
            }
        };
        self.roots.switch_to(root);
        self.tlb_flush = true;
        Ok(load)
    }

    /// The guest executed INVLPG `gva`: drop the shadow leaf (or MMIO entry) for it.
    pub fn invlpg<S: ShadowTableStore>(&mut self, store: &mut S, gva: Gva) {
        let (page, index, spte) = self.shadow_terminal(store, gva);
        if spte != 0 {
            self.drop_spte(store, page, index);
        }
        self.tlb_flush = true;
    }

    /// Drop every shadow table (the current root stays allocated, emptied). Used for a full
    /// guest TLB flush request, slot removal and as the last resort of the allocator.
    pub fn flush_all<S: ShadowTableStore>(&mut self, store: &mut S) {
        let current = self.roots.current.page;
        for id in 0..PAGES as u16 {
            if id != current && self.pool.get(id).is_some() {
                self.zap_page(store, id);
            }
        }
        self.zap_page(store, current);
        self.tlb_flush = true;
    }

    /// The memory-slot table changed (call after the change is complete).
    pub fn memslots_changed<M: GuestMemory, S: ShadowTableStore>(
        &mut self,
        mem: &mut M,
        store: &mut S,
        change: SlotChange,
    ) {
        if change == SlotChange::RemovedOrMoved {
            self.flush_all(store);
            let current = self.roots.current.page;
            if let Some(w) = self.pool.wp.get_mut(current as usize) {
                *w = NO_WP;
            }
        }
        // Guest tables that were outside all slots may now be RAM: protect them.
        for id in 0..PAGES as u16 {
            let Some(m) = self.pool.get(id) else { continue };
            if m.role.direct() || self.pool.wp.get(id as usize) != Some(&NO_WP) {
                continue;
            }
            let gfn = m.gfn;
            if let Some(slot) = mem.lookup_slot(gfn) {
                self.protect_page(store, id, slot.hpa_of(gfn));
            }
        }
        self.observe_generation(mem, store);
    }

    /// Zap every MMIO entry if the memory-slot generation wrapped since it was last seen.
    pub(super) fn observe_generation<M: GuestMemory, S: ShadowTableStore>(
        &mut self,
        mem: &M,
        store: &mut S,
    ) {
        let epoch = mmio::epoch(mem.memslot_generation());
        if epoch != self.mmio_epoch {
            self.zap_all_mmio(store);
            self.mmio_epoch = epoch;
            self.stats.mmio_wraps += 1;
        }
    }

    /// Follow the shadow links for `gva` from the current root to the first entry that is not a
    /// link: returns that table, index and entry.
    pub(super) fn shadow_terminal<S: ShadowTableStore>(
        &self,
        store: &S,
        gva: Gva,
    ) -> (u16, usize, u64) {
        let mut page = self.roots.current.page;
        let mut level = 4u8;
        loop {
            let index = gva.index(level);
            let spte = store.read_entry(TableId(page), index);
            let child = link_child(spte);
            if level > 1 && is_shadow_link(spte, level) && self.pool.get(child).is_some() {
                page = child;
                level -= 1;
            } else {
                return (page, index, spte);
            }
        }
    }
}

/// The root key for a CR3 value in `mode`.
fn root_key(cr3: u64, mode: &CpuMode) -> Result<RootKey, ModeError> {
    let role = Role::root(mode)?;
    let gfn = if role.paging() {
        Gfn((cr3 & ADDR_MASK) >> 12)
    } else {
        Gfn(0)
    };
    Ok(RootKey { gfn, role })
}
