//! A model machine: guest memory, shadow store and engine, with a CPU that runs guest accesses
//! on the shadow tables and goes to the engine on a page fault, as the VMX port will.

use crate::shadow::{
    AccessKind, Config, CpuMode, EmulateReason, FaultOutcome, Gpa, GuestCpu, Gva, Hpa, MemAccess,
    ModeError, NewError, PfErrorCode, RootLoad, ShadowMmu,
};

use super::memory::FakeGuestMemory;
use super::reference::{self, Controls, Translation};
use super::store::FakeTableStore;

/// How one guest access ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessResult {
    /// The shadow translated it to `hpa` (a write was stored there).
    Done {
        /// Host physical address accessed.
        hpa: Hpa,
        /// Level of the shadow leaf used.
        shadow_level: u8,
    },
    /// The engine reflected a page fault to the guest.
    Injected {
        /// Error code.
        error_code: u32,
    },
    /// MMIO exit.
    Mmio {
        /// Guest physical address.
        gpa: Gpa,
        /// Answered by an MMIO shadow entry.
        cached: bool,
    },
    /// Emulated (a write was made through `guest_write`).
    Emulated {
        /// Guest physical address.
        gpa: Gpa,
        /// Why.
        reason: EmulateReason,
    },
    /// Still faulting after the retry budget: the bounded-fault property is broken.
    Stuck,
}

/// One access's result and the faults it took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessReport {
    /// Result.
    pub result: AccessResult,
    /// Page faults taken.
    pub faults: u32,
    /// Of which answered `Fixed`.
    pub fixed: u32,
}

/// Faults one access may take before the model calls it stuck.
pub const RETRY_BUDGET: u32 = 8;

/// Guest memory + shadow store + engine + the guest's control state.
pub struct Machine<const N: usize, const P: usize = 4> {
    /// Guest memory.
    pub mem: FakeGuestMemory,
    /// Shadow tables.
    pub store: FakeTableStore,
    /// The engine.
    pub mmu: ShadowMmu<N, P>,
    /// Guest CR3.
    pub cr3: u64,
    /// Guest control bits.
    pub mode: CpuMode,
}

impl<const N: usize, const P: usize> Machine<N, P> {
    /// Build a machine over `mem` with a store of exactly `N` tables.
    pub fn new(
        config: Config,
        mut mem: FakeGuestMemory,
        cr3: u64,
        mode: CpuMode,
    ) -> Result<Self, NewError> {
        let mut store = FakeTableStore::new(N);
        let mmu = ShadowMmu::new(config, &mut mem, &mut store, cr3, &mode)?;
        Ok(Machine {
            mem,
            store,
            mmu,
            cr3,
            mode,
        })
    }

    /// Guest CPU facts.
    pub fn cpu(&self) -> GuestCpu {
        self.mmu.config().guest
    }

    /// Load CR3 / change control bits.
    pub fn set_root(&mut self, cr3: u64, mode: CpuMode) -> Result<RootLoad, ModeError> {
        let load = self
            .mmu
            .set_root(&mut self.mem, &mut self.store, cr3, &mode)?;
        self.cr3 = cr3;
        self.mode = mode;
        Ok(load)
    }

    /// What the processor does on the shadow tables right now (no engine involvement).
    pub fn hw_translate(&self, va: u64, access: MemAccess) -> Result<Translation, u32> {
        let root = self.mmu.root_hpa(&self.store).0;
        let store = &self.store;
        let read = |pa: u64| store.read_phys(pa).unwrap_or(u64::MAX);
        reference::walk(&read, root, va, &Controls::host_for(&self.mode), access)
    }

    /// What the guest's own tables say, by the reference walker.
    pub fn ref_translate(&self, va: u64, access: MemAccess) -> Result<Translation, u32> {
        let mem = &self.mem;
        let read = |pa: u64| {
            mem.translate(Gpa(pa))
                .map_or(u64::MAX, |h| mem.host_read_u64(h))
        };
        let c = Controls::guest(&self.mode, self.cpu());
        reference::walk(&read, self.cr3, va, &c, access)
    }

    /// Run one guest access to `va`; a write stores `data` (8 bytes at `va & !7`).
    pub fn access(&mut self, va: u64, access: MemAccess, data: u64) -> AccessReport {
        let mut report = AccessReport {
            result: AccessResult::Stuck,
            faults: 0,
            fixed: 0,
        };
        let write = access.kind == AccessKind::Write;
        while report.faults < RETRY_BUDGET {
            let error_code = match self.hw_translate(va, access) {
                Ok(t) => {
                    let hpa = Hpa(t.pa);
                    if write {
                        self.mem.host_write_u64(Hpa(t.pa & !7), data);
                    }
                    report.result = AccessResult::Done {
                        hpa,
                        shadow_level: t.leaf_level,
                    };
                    return report;
                }
                Err(ec) => ec,
            };
            report.faults += 1;
            let outcome = self.mmu.page_fault(
                &mut self.mem,
                &mut self.store,
                Gva(va),
                PfErrorCode(error_code),
                access.smap_override,
            );
            report.result = match outcome {
                FaultOutcome::Fixed => {
                    report.fixed += 1;
                    continue;
                }
                FaultOutcome::InjectPageFault { error_code } => AccessResult::Injected {
                    error_code: error_code.0,
                },
                FaultOutcome::Mmio { gpa, cached } => AccessResult::Mmio { gpa, cached },
                FaultOutcome::Emulate { gpa, reason } => {
                    if write {
                        let at = Gpa(gpa.0 & !7);
                        self.mmu.guest_write(
                            &mut self.mem,
                            &mut self.store,
                            at,
                            &data.to_le_bytes(),
                        );
                    }
                    AccessResult::Emulated { gpa, reason }
                }
            };
            return report;
        }
        report
    }
}
