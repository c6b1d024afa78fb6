//! The EL2 physical timer (CNTHP, ARM ARM D11): the kernel's preemption tick.

use aarch64_cpu::registers::*;

/// Counter ticks per microsecond (CNTFRQ_EL0 / 10^6, at least 1).
pub fn ticks_per_microsecond() -> u64 {
    (CNTFRQ_EL0.get() / 1_000_000).max(1)
}

/// Fires the timer interrupt after `ticks` counter ticks.
pub fn arm(ticks: u64) {
    // SAFETY: writing the EL2 timer's down-counter only schedules an interrupt.
    unsafe { core::arch::asm!("msr cnthp_tval_el2, {}", in(reg) ticks) };
    CNTHP_CTL_EL2.set(1); // ENABLE, interrupt not masked
}
