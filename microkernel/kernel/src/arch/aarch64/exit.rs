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
    pub const DATA_ABORT_LOWER: u64 = 0x24;
    pub const DATA_ABORT_SAME: u64 = 0x25;
}

/// ISS bits of a data abort.
const ISV: u64 = 1 << 24;
const WNR: u64 = 1 << 6;

fn hpfar() -> u64 {
    let value: u64;
    // SAFETY: reading HPFAR_EL2 has no side effect.
    unsafe { core::arch::asm!("mrs {}, hpfar_el2", out(reg) value) };
    value
}

/// Decodes the exit that was just taken from the guest whose registers are `context`.
pub fn decode(esr: u64, far: u64, context: &UserContext) -> VmExit {
    let pc = context.regs[PC];
    let register = |n: u64| if n < 31 { context.x(n as usize) } else { 0 };
    let (kind, words) = match esr >> 26 {
        ec::DATA_ABORT_LOWER | ec::INSTRUCTION_ABORT_LOWER => {
            // HPFAR_EL2.FIPA holds IPA[47:12] at bits [43:4]; the page offset comes from FAR.
            let ipa = ((hpfar() >> 4) << 12) | (far & 0xFFF);
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
        _ => (VmExitKind::Other, [far, 0, 0, 0, 0, 0]),
    };
    VmExit {
        kind,
        pc,
        esr,
        words,
    }
}

/// Injects a synchronous exception into the loaded guest: saves its PC and PSTATE in
/// ELR_EL1/SPSR_EL1, sets ESR_EL1/FAR_EL1, and resumes it at the right EL1 vector with
/// interrupts masked (ARM ARM D1.10.2, "Exception entry").
pub fn inject(context: &mut UserContext, abort: bool, address: u64) {
    let pstate = context.regs[PSTATE];
    let from_el0 = pstate & 0b1111 == 0;
    let vector_offset = match pstate & 0b1111 {
        0b0101 => 0x200, // EL1h: current EL with SP_ELx
        0b0100 => 0x000, // EL1t: current EL with SP_EL0
        _ => 0x400,      // EL0: lower EL, AArch64
    };
    let il = 1 << 25;
    let esr = if abort {
        let class = if from_el0 {
            ec::DATA_ABORT_LOWER
        } else {
            ec::DATA_ABORT_SAME
        };
        (class << 26) | il | 0x10 // DFSC 0b010000: synchronous external abort
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
