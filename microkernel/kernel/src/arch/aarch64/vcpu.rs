//! The VCPU world switch: EL1 state of a guest, and the switch between running servers
//! (native threads, `HCR_NATIVE`) and running a guest (`HCR_VCPU`).
//!
//! The guest's general registers (and TPIDR_EL0) live in its thread's `UserContext` like any
//! thread's; what a VCPU adds is its EL1 system registers and FP/SIMD registers. Servers run at
//! EL0 with `HCR_EL2.TGE` set, which makes the EL1 translation regime and exception vectors
//! irrelevant to them, and they are built soft-float with FP trapped, so most of a guest's EL1
//! and FP state can stay in the registers while servers run (the vmm handling its exits, say):
//! it is saved and reloaded only when a *different* VCPU runs (the **lazy** set).
//!
//! Some EL1 and EL0 state still governs EL0 under TGE (E2H = 0): SCTLR_EL1's EL0 fields (E0E,
//! UCT, DZE, UMA, SA0, ...), CNTKCTL_EL1 (EL0 counter and timer access) and TPIDRRO_EL0 (which
//! EL0 reads). That is the **eager** set: the guest's values are installed on every entry into
//! guest mode and the native ones on every exit from it, so a server never runs under a guest's
//! value. Debug and PMU state is not switched at all: in guest mode MDCR_EL2 traps every guest
//! access to it (the vmm emulates those registers as RAZ/WI), so the guest can never change
//! what servers run under. The EL1 physical timer is trapped the same way (CNTHCTL_EL2.EL1PCEN
//! clear in guest mode). docs/ARCHITECTURE.md, "EL1 and EL0 state", has the whole table.

use super::cpu::HCR_NATIVE;
use core::arch::global_asm;

/// HCR_EL2 bits (ARM ARM D17.2.48) for a guest: stage 2 on, interrupts to EL2, WFI/WFE and SMC
/// trapped, EL1 is AArch64. No TGE, no DC: the guest runs its own stage 1.
pub const HCR_VCPU: u64 = (1 << 0)
    | (1 << 1)
    | (1 << 3)
    | (1 << 4)
    | (1 << 5)
    | (1 << 13)
    | (1 << 14)
    | (1 << 19)
    | (1 << 31);

/// CPTR_EL2 for a guest: RES1 bits only, FP/SIMD not trapped.
const CPTR_GUEST: u64 = 0x33FF;
/// CPTR_EL2 for servers: FP/SIMD trapped (see cpu.rs).
const CPTR_NATIVE: u64 = 0x33FF | (1 << 10);
/// CNTKCTL_EL1 for servers: EL0 may read both counters.
const CNTKCTL_NATIVE: u64 = 0b11;
/// SCTLR_EL1 at reset as the guest sees it: MMU and caches off, RES1 bits set.
const SCTLR_EL1_RESET: u64 = 0x30D0_0800;
/// SCTLR_EL1 while servers run: the RES1 bits, nTWI/nTWE (bits 16, 18), SA0, SA and CP15BEN
/// (bits 3..5), the Cortex-A72 reset value; little-endian EL0 (E0E clear), and every EL0
/// access to cache maintenance, CTR_EL0, DC ZVA and DAIF trapped (UCI, UCT, DZE, UMA clear).
pub const SCTLR_EL1_NATIVE: u64 = 0x30D5_0838;
/// MDCR_EL2 trap bits for guests (ARM ARM D17.2.79): TPMCR (5), TPM (6), TDA (9), TDOSA (10),
/// TDRA (11): PMU, debug, OS lock and debug ROM accesses trap to EL2.
const MDCR_GUEST_TRAPS: u64 = (1 << 5) | (1 << 6) | (1 << 9) | (1 << 10) | (1 << 11);
/// CNTHCTL_EL2 (non-VHE, ARM ARM D17.2.25) for servers: EL1PCTEN and EL1PCEN, so EL0 under TGE
/// reads the physical counter.
pub const CNTHCTL_NATIVE: u64 = 0b11;
/// CNTHCTL_EL2 for guests: EL1PCTEN only: the guest reads the physical counter, but its
/// accesses to the EL1 physical timer (CNTP_*) trap: that timer is the servers' world's.
const CNTHCTL_GUEST: u64 = 0b01;

/// Indices into [`VcpuState::el1`]. The lazy set comes first, in the order of the save/restore
/// assembly below; the eager set follows (all are listed to document the layout; only some are
/// touched by name).
#[allow(dead_code)]
pub mod el1 {
    pub const TTBR0: usize = 0;
    pub const TTBR1: usize = 1;
    pub const TCR: usize = 2;
    pub const MAIR: usize = 3;
    pub const AMAIR: usize = 4;
    pub const VBAR: usize = 5;
    pub const CONTEXTIDR: usize = 6;
    pub const TPIDR: usize = 7;
    pub const SP: usize = 8;
    pub const ELR: usize = 9;
    pub const SPSR: usize = 10;
    pub const ESR: usize = 11;
    pub const FAR: usize = 12;
    pub const AFSR0: usize = 13;
    pub const AFSR1: usize = 14;
    pub const PAR: usize = 15;
    pub const CPACR: usize = 16;
    pub const CSSELR: usize = 17;
    pub const CNTV_CTL: usize = 18;
    pub const CNTV_CVAL: usize = 19;
    /// The eager set: switched on every entry into and exit from guest mode.
    pub const SCTLR: usize = 20;
    pub const TPIDRRO_EL0: usize = 21;
    pub const CNTKCTL: usize = 22;
    /// Not a register: 1 while a virtual SError is pending for the guest (HCR_EL2.VSE).
    pub const PENDING_SERROR: usize = 23;
    /// The VM's virtual counter offset (CNTVOFF_EL2), live whenever this VCPU is loaded.
    pub const CNTVOFF: usize = 24;
    /// Number of words (one pad word keeps the FP area 16-byte aligned).
    pub const COUNT: usize = 26;
}

/// A VCPU's state while it is not loaded.
#[repr(C, align(16))]
pub struct VcpuState {
    /// EL1 (and EL0 thread-pointer, virtual-timer) system registers.
    pub el1: [u64; el1::COUNT],
    /// q0..q31, then FPCR and FPSR.
    pub fp: [u128; 33],
    /// The GICv3 virtual CPU interface (list registers and their control), lazy too.
    pub vgic: kernel_core::vgic::VgicCpu,
}

impl VcpuState {
    /// A VCPU out of reset.
    pub fn new() -> Self {
        let mut el1 = [0; el1::COUNT];
        el1[el1::SCTLR] = SCTLR_EL1_RESET;
        el1[el1::CPACR] = 0b11 << 20; // FP/SIMD enabled at EL1 and EL0 (docs/GUEST-ABI.md)
        Self {
            el1,
            fp: [0; 33],
            vgic: super::vgic::new_cpu(),
        }
    }
}

// Save and restore of EL1 state and FP/SIMD registers. The kernel is built soft-float; these
// routines enable the FP instructions for the assembler only, and run with CPTR_EL2.TFP clear.
global_asm!(
    r#"
    .arch_extension fp
    .arch_extension simd
    .macro el1_regs op
    \op ttbr0_el1, 0
    \op ttbr1_el1, 1
    \op tcr_el1, 2
    \op mair_el1, 3
    \op amair_el1, 4
    \op vbar_el1, 5
    \op contextidr_el1, 6
    \op tpidr_el1, 7
    \op sp_el1, 8
    \op elr_el1, 9
    \op spsr_el1, 10
    \op esr_el1, 11
    \op far_el1, 12
    \op afsr0_el1, 13
    \op afsr1_el1, 14
    \op par_el1, 15
    \op cpacr_el1, 16
    \op csselr_el1, 17
    \op cntv_ctl_el0, 18
    \op cntv_cval_el0, 19
    .endm
    .macro save_one reg, index
    mrs     x1, \reg
    str     x1, [x0, #(\index * 8)]
    .endm
    .macro load_one reg, index
    ldr     x1, [x0, #(\index * 8)]
    msr     \reg, x1
    .endm

    .global vcpu_save_state
vcpu_save_state:
    el1_regs save_one
    add     x0, x0, #{el1_bytes}
    stp     q0, q1, [x0, #(16 * 0)]
    stp     q2, q3, [x0, #(16 * 2)]
    stp     q4, q5, [x0, #(16 * 4)]
    stp     q6, q7, [x0, #(16 * 6)]
    stp     q8, q9, [x0, #(16 * 8)]
    stp     q10, q11, [x0, #(16 * 10)]
    stp     q12, q13, [x0, #(16 * 12)]
    stp     q14, q15, [x0, #(16 * 14)]
    stp     q16, q17, [x0, #(16 * 16)]
    stp     q18, q19, [x0, #(16 * 18)]
    stp     q20, q21, [x0, #(16 * 20)]
    stp     q22, q23, [x0, #(16 * 22)]
    stp     q24, q25, [x0, #(16 * 24)]
    stp     q26, q27, [x0, #(16 * 26)]
    stp     q28, q29, [x0, #(16 * 28)]
    stp     q30, q31, [x0, #(16 * 30)]
    mrs     x1, fpcr
    mrs     x2, fpsr
    add     x0, x0, #(16 * 32)
    stp     x1, x2, [x0]
    ret

    .global vcpu_load_state
vcpu_load_state:
    el1_regs load_one
    add     x0, x0, #{el1_bytes}
    ldp     q0, q1, [x0, #(16 * 0)]
    ldp     q2, q3, [x0, #(16 * 2)]
    ldp     q4, q5, [x0, #(16 * 4)]
    ldp     q6, q7, [x0, #(16 * 6)]
    ldp     q8, q9, [x0, #(16 * 8)]
    ldp     q10, q11, [x0, #(16 * 10)]
    ldp     q12, q13, [x0, #(16 * 12)]
    ldp     q14, q15, [x0, #(16 * 14)]
    ldp     q16, q17, [x0, #(16 * 16)]
    ldp     q18, q19, [x0, #(16 * 18)]
    ldp     q20, q21, [x0, #(16 * 20)]
    ldp     q22, q23, [x0, #(16 * 22)]
    ldp     q24, q25, [x0, #(16 * 24)]
    ldp     q26, q27, [x0, #(16 * 26)]
    ldp     q28, q29, [x0, #(16 * 28)]
    ldp     q30, q31, [x0, #(16 * 30)]
    add     x0, x0, #(16 * 32)
    ldp     x1, x2, [x0]
    msr     fpcr, x1
    msr     fpsr, x2
    isb
    ret
"#,
    el1_bytes = const el1::COUNT * 8,
);

unsafe extern "C" {
    /// Stores the live EL1 and FP/SIMD registers into `state`.
    ///
    /// # Safety
    /// 1. `state` points at a writable `VcpuState`.
    /// 2. CPTR_EL2.TFP is clear (FP registers accessible at EL2).
    fn vcpu_save_state(state: *mut VcpuState);
    /// Loads EL1 and FP/SIMD registers from `state`.
    ///
    /// # Safety
    /// As for `vcpu_save_state`; the loaded state takes effect for the guest only once
    /// HCR_EL2 is switched to `HCR_VCPU`.
    fn vcpu_load_state(state: *const VcpuState);
}

/// HCR_EL2.VSE: a virtual SError is pending for EL1; the PE clears it when the guest takes it.
const HCR_VSE: u64 = 1 << 8;

/// When the saved virtual timer of a VCPU that is not loaded will assert its interrupt, as a
/// physical counter value (its compare value plus the VM's counter offset), or `None` when it
/// is off or masked (CNTV_CTL_EL0.ENABLE set and IMASK clear; ARM ARM D11.2.4).
pub fn saved_timer_deadline(state: &VcpuState) -> Option<u64> {
    (state.el1[el1::CNTV_CTL] & 0b11 == 0b01)
        .then(|| state.el1[el1::CNTV_CVAL].wrapping_add(state.el1[el1::CNTVOFF]))
}

/// Switches the CPU's configuration to run guests (`true`) or servers (`false`): HCR_EL2,
/// CPTR_EL2, MDCR_EL2 and CNTHCTL_EL2, and the eager set of `state` (the loaded VCPU's), which
/// is installed when entering and saved, with the native values put back, when leaving.
pub fn set_guest_mode(guest: bool, state: &mut VcpuState) {
    let mdcr = mdcr_native();
    if guest {
        // SAFETY: these registers configure how the next eret to EL1/EL0 runs and what traps;
        // the kernel at EL2 is unaffected (its own translation regime and SCTLR_EL2).
        unsafe {
            core::arch::asm!(
                "msr sctlr_el1, {sctlr}",
                "msr tpidrro_el0, {tpidrro}",
                "msr cntkctl_el1, {cntkctl}",
                "msr mdcr_el2, {mdcr}",
                "msr cnthctl_el2, {cnthctl}",
                "msr cptr_el2, {cptr}",
                "msr hcr_el2, {hcr}",
                "isb",
                sctlr = in(reg) state.el1[el1::SCTLR],
                tpidrro = in(reg) state.el1[el1::TPIDRRO_EL0],
                cntkctl = in(reg) state.el1[el1::CNTKCTL],
                mdcr = in(reg) mdcr | MDCR_GUEST_TRAPS,
                cnthctl = in(reg) CNTHCTL_GUEST,
                cptr = in(reg) CPTR_GUEST,
                hcr = in(reg) HCR_VCPU | if state.el1[el1::PENDING_SERROR] != 0 { HCR_VSE } else { 0 },
            );
        }
    } else {
        let (sctlr, tpidrro, cntkctl, hcr): (u64, u64, u64, u64);
        // SAFETY: as above; from here on EL0 runs under the native values.
        unsafe {
            core::arch::asm!(
                "mrs {live_hcr}, hcr_el2",
                "mrs {sctlr}, sctlr_el1",
                "mrs {tpidrro}, tpidrro_el0",
                "mrs {cntkctl}, cntkctl_el1",
                "msr sctlr_el1, {sctlr_native}",
                "msr tpidrro_el0, xzr",
                "msr cntkctl_el1, {cntkctl_native}",
                "msr mdcr_el2, {mdcr}",
                "msr cnthctl_el2, {cnthctl}",
                "msr cptr_el2, {cptr}",
                "msr hcr_el2, {hcr}",
                "isb",
                live_hcr = out(reg) hcr,
                sctlr = out(reg) sctlr,
                tpidrro = out(reg) tpidrro,
                cntkctl = out(reg) cntkctl,
                sctlr_native = in(reg) SCTLR_EL1_NATIVE,
                cntkctl_native = in(reg) CNTKCTL_NATIVE,
                mdcr = in(reg) mdcr,
                cnthctl = in(reg) CNTHCTL_NATIVE,
                cptr = in(reg) CPTR_NATIVE,
                hcr = in(reg) HCR_NATIVE,
            );
        }
        state.el1[el1::SCTLR] = sctlr;
        state.el1[el1::TPIDRRO_EL0] = tpidrro;
        state.el1[el1::CNTKCTL] = cntkctl;
        // Still set: the guest has not taken the virtual SError yet (PSTATE.A masked).
        state.el1[el1::PENDING_SERROR] = u64::from(hcr & HCR_VSE != 0);
    }
}

/// Makes a virtual SError pending for the VCPU of `state`, delivered when it next runs with
/// PSTATE.A clear (ARM ARM, HCR_EL2.VSE and "Virtual SError exception"; without FEAT_RAS the
/// syndrome the guest sees in ESR_EL1 is IMPLEMENTATION DEFINED).
pub fn pend_serror(state: &mut VcpuState) {
    state.el1[el1::PENDING_SERROR] = 1;
}

/// MDCR_EL2 while servers run: HPMN (the PMU's event counters, all given to EL1/EL0), no traps,
/// so servers read the cycle counter (cpu.rs enables it for EL0).
fn mdcr_native() -> u64 {
    let pmcr: u64;
    // SAFETY: reading PMCR_EL0 has no side effect (at EL2 it is never trapped).
    unsafe { core::arch::asm!("mrs {}, pmcr_el0", out(reg) pmcr) };
    (pmcr >> 11) & 0x1F
}

/// Saves the loaded VCPU's registers into `old` and loads `new`'s. Runs in server mode; FP
/// access is opened for the copy and closed again.
pub fn switch_loaded(old: Option<&mut VcpuState>, new: &VcpuState) {
    // SAFETY: opening FP access at EL2 for the copy; closed again below.
    unsafe { core::arch::asm!("msr cptr_el2, {}", "isb", in(reg) CPTR_GUEST) };
    if let Some(old) = old {
        // SAFETY: `old` is a valid VcpuState and FP access is open (obligations 1, 2).
        unsafe { vcpu_save_state(old) };
        super::vgic::save(&mut old.vgic);
    }
    // SAFETY: `new` is a valid VcpuState and FP access is open.
    unsafe { vcpu_load_state(new) };
    super::vgic::load(&new.vgic);
    // The loaded VCPU's virtual counter offset is live while it is loaded (its timer compares
    // against CNTVCT even while servers run); servers read the physical counter instead.
    // SAFETY: CNTVOFF_EL2 only changes what EL1/EL0 read as the virtual count.
    unsafe { core::arch::asm!("msr cntvoff_el2, {}", "isb", in(reg) new.el1[el1::CNTVOFF]) };
    // SAFETY: trapping FP again for servers.
    unsafe { core::arch::asm!("msr cptr_el2, {}", "isb", in(reg) CPTR_NATIVE) };
}

/// Reads one live EL1 register of the loaded VCPU.
pub fn read_vbar_el1() -> u64 {
    let value: u64;
    // SAFETY: reading VBAR_EL1 has no side effect.
    unsafe { core::arch::asm!("mrs {}, vbar_el1", out(reg) value) };
    value
}

/// Writes the live exception-return state of the loaded VCPU's EL1: what an exception taken to
/// EL1 leaves behind (ARM ARM D1.10: ELR, SPSR, ESR, FAR).
pub fn write_el1_exception(elr: u64, spsr: u64, esr: u64, far: u64) {
    // SAFETY: these EL1 registers belong to the loaded guest and affect only its execution.
    unsafe {
        core::arch::asm!(
            "msr elr_el1, {elr}",
            "msr spsr_el1, {spsr}",
            "msr esr_el1, {esr}",
            "msr far_el1, {far}",
            elr = in(reg) elr,
            spsr = in(reg) spsr,
            esr = in(reg) esr,
            far = in(reg) far,
        );
    }
}

/// The guest's identity registers: the virtual MIDR and MPIDR it reads (uniprocessor: the
/// physical ones).
pub fn init_identity() {
    // SAFETY: VPIDR_EL2/VMPIDR_EL2 only change what EL1 reads from MIDR/MPIDR.
    unsafe {
        core::arch::asm!(
            "mrs {t}, midr_el1",
            "msr vpidr_el2, {t}",
            "mrs {t}, mpidr_el1",
            "msr vmpidr_el2, {t}",
            t = out(reg) _,
        );
    }
}
