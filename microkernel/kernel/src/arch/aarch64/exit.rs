//! Guest exits: turning an exception taken from a guest into a [`VmExit`] for its vmm, and
//! injecting an exception into a guest (ARM ARM D17.2.37 ESR_EL2, D17.2.63 HPFAR_EL2).

use abi::vm::{VmExit, VmExitKind};
use kernel_core::tcb::{PC, PSTATE, UserContext};

/// Exception classes a guest produces.
mod ec {
    pub const WFX: u64 = 0x01;
    pub const HVC64: u64 = 0x16;
    pub const SMC64: u64 = 0x17;
    pub const SYSREG: u64 = 0x18;
    pub const INSTRUCTION_ABORT_LOWER: u64 = 0x20;
    pub const INSTRUCTION_ABORT_SAME: u64 = 0x21;
    pub const DATA_ABORT_LOWER: u64 = 0x24;
    pub const DATA_ABORT_SAME: u64 = 0x25;
    pub const SERROR: u64 = 0x2F;
}

/// ISS bits of a data abort.
const ISV: u64 = 1 << 24;
const WNR: u64 = 1 << 6;

/// ISS of an abort: S1PTW, the fault happened on the guest's stage-1 table walk.
const S1PTW: u64 = 1 << 7;
/// ISS fault-status code bits [5:2] of a permission fault (0b0011xx).
const FSC_PERMISSION: u64 = 0b00_1100;

fn hpfar() -> u64 {
    let value: u64;
    // SAFETY: reading HPFAR_EL2 has no side effect.
    unsafe { core::arch::asm!("mrs {}, hpfar_el2", out(reg) value) };
    value
}

/// The IPA of a stage-2 permission fault that was not on a stage-1 walk, recomputed from FAR
/// with `AT S1E1R` on the guest's live stage 1 (rare: dirty logging). Kept out of line so the
/// common exits do not carry it.
#[inline(never)]
fn permission_fault_ipa(far: u64) -> Option<u64> {
    let par: u64;
    // SAFETY: AT S1E1R computes a stage-1 translation of the loaded guest into PAR_EL1 without
    // accessing memory; PAR_EL1 is the guest's register, so it is saved and put back.
    unsafe {
        core::arch::asm!(
            "mrs {saved}, par_el1",
            "at s1e1r, {far}",
            "isb",
            "mrs {par}, par_el1",
            "msr par_el1, {saved}",
            saved = out(reg) _,
            par = out(reg) par,
            far = in(reg) far,
        );
    }
    // PAR_EL1.F (bit 0) set: the walk failed. Else PA[47:12] at bits [47:12].
    (par & 1 == 0).then_some((par & 0xFFFF_FFFF_F000) | (far & 0xFFF))
}

/// The IPA of a stage-2 abort.
///
/// HPFAR_EL2 is valid for translation and access-flag faults and for faults on the stage-1
/// walk; for a stage-2 permission fault on the access itself it may not be (Arm ARM D17.2.63
/// lists when it is written; KVM's `__get_fault_info` makes the same distinction on S1PTW), so
/// the IPA is computed again
/// from FAR with `AT S1E1R` on the guest's live stage 1, as KVM's `__translate_far_to_hpfar`
/// does. `None` when the guest's stage 1 no longer translates FAR (it changed its tables since
/// the access): the caller lets the guest run again and fault afresh.
#[inline(always)]
pub fn fault_ipa(esr: u64, far: u64) -> Option<u64> {
    let permission = esr & 0b11_1100 == FSC_PERMISSION;
    if !permission || esr & S1PTW != 0 {
        // HPFAR_EL2.FIPA holds IPA[47:12] at bits [43:4]; the page offset comes from FAR.
        return Some(((hpfar() >> 4) << 12) | (far & 0xFFF));
    }
    permission_fault_ipa(far)
}

/// Decodes the exit that was just taken from the guest whose registers are `context`; `None`
/// when there is nothing to report and the guest should simply run again (a permission fault
/// whose address its stage 1 no longer translates).
#[inline(always)]
pub fn decode(esr: u64, far: u64, context: &UserContext) -> Option<VmExit> {
    let pc = context.regs[PC];
    let register = |n: u64| if n < 31 { context.x(n as usize) } else { 0 };
    let (kind, words) = match esr >> 26 {
        ec::DATA_ABORT_LOWER | ec::INSTRUCTION_ABORT_LOWER => {
            let ipa = fault_ipa(esr, far)?;
            let is_write = esr >> 26 == ec::DATA_ABORT_LOWER && esr & ISV != 0 && esr & WNR != 0;
            let value = if is_write {
                register((esr >> 16) & 0x1F)
            } else {
                0
            };
            (VmExitKind::Stage2Abort, [ipa, far, value, 0, 0, 0])
        }
        ec::HVC64 | ec::SMC64 => (
            VmExitKind::Hypercall,
            [0, 1, 2, 3, 4, 5].map(|n| context.x(n)),
        ),
        ec::WFX => (VmExitKind::WaitForInterrupt, [0; 6]),
        ec::SYSREG => {
            // ISS: Rt at [9:5], direction at bit 0 (0 = write to the register).
            let is_write = esr & 1 == 0;
            let value = if is_write {
                register((esr >> 5) & 0x1F)
            } else {
                0
            };
            (VmExitKind::SystemRegister, [value, 0, 0, 0, 0, 0])
        }
        ec::SERROR => (VmExitKind::SError, [0; 6]),
        _ => (VmExitKind::Other, [far, 0, 0, 0, 0, 0]),
    };
    Some(VmExit {
        kind,
        pc,
        esr,
        words,
    })
}

/// Injects a synchronous exception into the loaded guest: saves its PC and PSTATE in
/// ELR_EL1/SPSR_EL1, sets ESR_EL1/FAR_EL1, and resumes it at the right EL1 vector with
/// interrupts masked (ARM ARM D1.10.2, "Exception entry"). An abort that answers an
/// instruction-fetch exit (`exit_syndrome`'s class) is injected as an instruction abort, any
/// other as a data abort: a guest's handler must see the kind of access that failed.
pub fn inject(context: &mut UserContext, abort: bool, address: u64, exit_syndrome: u64) {
    let pstate = context.regs[PSTATE];
    let from_el0 = pstate & 0b1111 == 0;
    let vector_offset = match pstate & 0b1111 {
        0b0101 => 0x200, // EL1h: current EL with SP_ELx
        0b0100 => 0x000, // EL1t: current EL with SP_EL0
        _ => 0x400,      // EL0: lower EL, AArch64
    };
    let il = 1 << 25;
    let esr = if abort {
        let fetch = exit_syndrome >> 26 == ec::INSTRUCTION_ABORT_LOWER;
        let class = match (fetch, from_el0) {
            (true, true) => ec::INSTRUCTION_ABORT_LOWER,
            (true, false) => ec::INSTRUCTION_ABORT_SAME,
            (false, true) => ec::DATA_ABORT_LOWER,
            (false, false) => ec::DATA_ABORT_SAME,
        };
        // FSC 0b010000: synchronous external abort, not on a table walk.
        (class << 26) | il | 0x10
    } else {
        il // EC 0: unknown reason (undefined instruction)
    };
    super::vcpu::write_el1_exception(
        context.regs[PC],
        pstate,
        esr,
        if abort { address } else { 0 },
    );
    context.regs[PC] = super::vcpu::read_vbar_el1() + vector_offset;
    context.regs[PSTATE] = 0x3C5; // EL1h, D, A, I, F masked
}
