//! The EL2 physical timer (CNTHP, ARM ARM D11): the kernel's only timer, shared by the
//! preemption tick and the virtual timers of VCPUs that are not loaded (timers.rs).

use aarch64_cpu::registers::*;

/// Counter ticks per microsecond (CNTFRQ_EL0 / 10^6, at least 1).
pub fn ticks_per_microsecond() -> u64 {
    (CNTFRQ_EL0.get() / 1_000_000).max(1)
}

/// The physical counter now (CNTPCT_EL0).
pub fn now() -> u64 {
    CNTPCT_EL0.get()
}

/// Fires the timer interrupt when the physical counter reaches `deadline` (at once if it has).
pub fn arm_at(deadline: u64) {
    // SAFETY: writing the EL2 timer's compare value only schedules an interrupt.
    unsafe { core::arch::asm!("msr cnthp_cval_el2, {}", in(reg) deadline) };
    CNTHP_CTL_EL2.set(1); // ENABLE, interrupt not masked
}
