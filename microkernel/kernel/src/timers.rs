//! The kernel's one hardware timer, shared by two kinds of deadline.
//!
//! - The **preemption tick**, every `timeslice_us`: round robin within a priority.
//! - The **virtual timers of VCPUs that are not loaded**. Only the loaded VCPU's virtual timer
//!   is in the hardware (its CNTV registers are in the lazy set, vcpu.rs), so when another VCPU
//!   is loaded while a guest sleeps in WFI, nothing would ever wake it. Its saved CNTV_CVAL is a
//!   deadline like any other: the timer is armed for the earliest of the tick and those, and
//!   when a VCPU's deadline passes its thread is made runnable; once loaded again, its own
//!   timer asserts the interrupt line as usual.
//!
//! Invariant: after [`rearm`], the hardware timer fires no later than the next tick and no later
//! than the deadline of any VCPU that waits for an interrupt while not loaded.

use crate::arch::{Arch, Current};
use crate::state::Kernel;
use kernel_core::tcb::ThreadState;

/// Starts the tick (first entry to user code).
pub fn start(kernel: &mut Kernel) {
    kernel.tick_at = Current::counter_now() + Current::counter_ticks(kernel.timeslice_us);
    rearm(kernel);
}

/// The kernel's timer interrupt: a tick when the tick is due, and a wake-up for every unloaded
/// VCPU whose timer has expired; then armed again.
pub fn fired(kernel: &mut Kernel) {
    let now = Current::counter_now();
    if now >= kernel.tick_at {
        kernel.tick_at = now + Current::counter_ticks(kernel.timeslice_us);
        kernel.system.tick(1);
    }
    for vm in 0..kernel.vcpus.len() as u16 {
        if waiting_deadline(kernel, vm).is_some_and(|deadline| deadline <= now) {
            let tcb = kernel.vcpu_thread(vm);
            kernel.system.wake_vcpu(tcb);
        }
    }
    rearm(kernel);
}

/// Arms the timer for the earliest of the tick and every unloaded waiting VCPU's deadline.
pub fn rearm(kernel: &Kernel) {
    let earliest = (0..kernel.vcpus.len() as u16)
        .filter_map(|vm| waiting_deadline(kernel, vm))
        .fold(kernel.tick_at, u64::min);
    Current::arm_timer_at(earliest);
}

/// The deadline of VM `vm`'s virtual timer when its VCPU is not loaded and its thread sleeps
/// in WFI; the loaded VCPU's timer is the hardware's own (PPI 27).
fn waiting_deadline(kernel: &Kernel, vm: u16) -> Option<u64> {
    if kernel.loaded_vcpu == Some(vm)
        || kernel.system.tcb(kernel.vcpu_thread(vm)).state != ThreadState::WaitingForInterrupt
    {
        return None;
    }
    Current::saved_guest_timer_deadline(kernel.vcpus.get(usize::from(vm))?)
}
