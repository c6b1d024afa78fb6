//! EL2 configuration: how servers run (HCR_EL2), the stage-2 format (VTCR_EL2), traps
//! (CPTR_EL2), timer and PMU access, and the exception vectors.
//!
//! Servers are native threads in seL4's sense (docs/DESIGN.md, "Privilege split"): EL0 with
//! HCR_EL2.TGE so every exception comes to EL2, HCR_EL2.DC so stage 1 is off with Normal
//! cacheable defaults, and HCR_EL2.VM so their VSpace, a VMID-tagged stage-2 table, translates
//! every access.

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::*;

/// HCR_EL2 bits (ARM ARM D17.2.48).
mod hcr {
    pub const VM: u64 = 1 << 0;
    pub const SWIO: u64 = 1 << 1;
    pub const FMO: u64 = 1 << 3;
    pub const IMO: u64 = 1 << 4;
    pub const AMO: u64 = 1 << 5;
    pub const DC: u64 = 1 << 12;
    pub const TWI: u64 = 1 << 13;
    pub const TWE: u64 = 1 << 14;
    pub const TSC: u64 = 1 << 19;
    pub const TACR: u64 = 1 << 21;
    pub const TTLB: u64 = 1 << 25;
    pub const TVM: u64 = 1 << 26;
    pub const TGE: u64 = 1 << 27;
    pub const RW: u64 = 1 << 31;
}

/// HCR_EL2 for native threads (seL4's `HCR_NATIVE`): stage 2 on, stage 1 off with cacheable
/// defaults, every exception and interrupt to EL2, WFI/WFE/SMC and cache/TLB maintenance and
/// virtual-memory-control writes trapped.
pub const HCR_NATIVE: u64 = hcr::VM
    | hcr::SWIO
    | hcr::FMO
    | hcr::IMO
    | hcr::AMO
    | hcr::DC
    | hcr::TWI
    | hcr::TWE
    | hcr::TSC
    | hcr::TACR
    | hcr::TTLB
    | hcr::TVM
    | hcr::TGE
    | hcr::RW;

/// VTCR_EL2 (ARM ARM D17.2.178): T0SZ = 25 (39-bit IPA), SL0 = 1 (start at level 1), inner and
/// outer write-back write-allocate walks, inner shareable, 4 KiB granule, PS = 40-bit PA, RES1
/// bit 31.
pub const VTCR: u64 =
    25 | (1 << 6) | (1 << 8) | (1 << 10) | (0b11 << 12) | (0b010 << 16) | (1 << 31);

/// CPTR_EL2 (non-VHE): RES1 bits [13:12] and [9:0], TFP (bit 10) set: servers are built
/// soft-float, so an FP/SIMD instruction in one is a bug reported as a fault, and the kernel
/// never saves FP state on a server switch.
const CPTR_TRAP_FP: u64 = 0x33FF | (1 << 10);

/// Configures EL2 for running servers. Called once, MMU already on.
pub fn init() {
    let vectors = core::ptr::addr_of!(super::entry::exception_vectors) as u64;
    VBAR_EL2.set(vectors);
    HCR_EL2.set(HCR_NATIVE);
    VTCR_EL2.set(VTCR);
    CPTR_EL2.set(CPTR_TRAP_FP);
    // EL1/EL0 physical counter and timer not trapped while servers run; EL0 may read both
    // counters (supervisor restart budgets, benchmarks). Guest mode traps the physical timer
    // (vcpu.rs).
    CNTHCTL_EL2.set(super::vcpu::CNTHCTL_NATIVE);
    CNTKCTL_EL1.set(0b11);
    // The EL0 fields of SCTLR_EL1 govern servers under TGE: start from the native value, which
    // every exit from guest mode puts back.
    SCTLR_EL1.set(super::vcpu::SCTLR_EL1_NATIVE);
    CNTVOFF_EL2.set(0);
    init_pmu();
    barrier::isb(barrier::SY);
}

/// Cycle counter on, readable from EL0, counting EL2 too (PMCCFILTR_EL0.NSH), so a benchmark
/// in a server measures the kernel's work. Under QEMU with `-icount shift=0` it counts
/// instructions.
fn init_pmu() {
    let pmcr: u64;
    // SAFETY: reading PMCR_EL0 has no side effect.
    unsafe { core::arch::asm!("mrs {}, pmcr_el0", out(reg) pmcr) };
    // MDCR_EL2.HPMN = every counter to EL0/EL1; TPM/TPMCR clear: no PMU traps to EL2.
    let counters = (pmcr >> 11) & 0x1F;
    // SAFETY: PMU configuration registers only affect counting, not memory or control flow.
    unsafe {
        core::arch::asm!(
            "msr mdcr_el2, {counters}",
            "msr pmccfiltr_el0, {filter}",
            "msr pmuserenr_el0, {user}",
            "msr pmcntenset_el0, {enable}",
            "msr pmcr_el0, {control}",
            counters = in(reg) counters,
            filter = in(reg) 1u64 << 27,
            user = in(reg) 0b0101u64,
            enable = in(reg) 1u64 << 31,
            control = in(reg) (pmcr & !0xFF) | 0b101,
        );
    }
}

/// Installs a VSpace: the VTTBR value carries the VMID and the stage-2 root. TLB entries are
/// VMID-tagged, so no invalidation is needed.
#[inline(always)]
pub fn switch_vspace(vttbr: u64) {
    VTTBR_EL2.set(vttbr);
    barrier::isb(barrier::SY);
}

/// Invalidates all stage-1 and stage-2 TLB entries of the current VMID and the instruction
/// cache: after a server's code pages were rewritten by a restart.
pub fn invalidate_after_reload() {
    // SAFETY: TLB and cache maintenance has no memory-safety effect.
    unsafe {
        core::arch::asm!(
            "dsb ishst",
            "tlbi vmalls12e1is",
            "ic iallu",
            "dsb ish",
            "isb"
        );
    }
}

/// Executes one step of a stage-2 plan (ARM ARM D8.13: TLB maintenance acts on the VMID in
/// VTTBR_EL2, which the caller installed; completion needs the plan's DSBs).
pub fn tlb_op(op: kernel_core::stage2::TlbOp) {
    use kernel_core::stage2::TlbOp;
    match op {
        // SAFETY: barriers and TLB invalidations have no memory-safety effect.
        TlbOp::DsbIsh => unsafe { core::arch::asm!("dsb ish") },
        // SAFETY: as above.
        TlbOp::DsbIshst => unsafe { core::arch::asm!("dsb ishst") },
        // SAFETY: as above.
        TlbOp::Ipas2e1is { ipa, .. } => unsafe {
            core::arch::asm!("tlbi ipas2e1is, {}", in(reg) (ipa >> 12) & 0xF_FFFF_FFFF)
        },
        // SAFETY: as above.
        TlbOp::Vmalle1is => unsafe { core::arch::asm!("tlbi vmalle1is") },
        // SAFETY: as above.
        TlbOp::Vmalls12e1is => unsafe { core::arch::asm!("tlbi vmalls12e1is") },
    }
}
