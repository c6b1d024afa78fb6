//! Check 12: WFE with the virtual timer off and no interrupt pending returns.
//!
//! A WFE waits for an event, and on one CPU nothing sends one: a guest spinning on a lock held
//! by a VCPU or server that is not running. The kernel steps over a trapped WFE and yields
//! (docs/GUEST-ABI.md, "WFI and WFE"); it must not sleep until an interrupt, since with the
//! timer off none comes and the guest would hang. The check runs [`WFES`] WFEs in a row: an
//! exception return sets the event register, so on hardware a WFE right after an entry completes
//! without trapping (TWE traps only a WFE that would wait), and a row makes sure some trap.
//!
//! QEMU's TCG (at least up to 9.x) never traps WFE: it executes it as a yield at EL1 whatever
//! HCR_EL2.TWE says. There, this check passes without reaching the hypervisor; on hardware or a
//! QEMU that traps WFE it proves the kernel's path.
//!
//! Needs the hypervisor: on bare hardware nothing guarantees a WFE returns.

use core::arch::asm;

use crate::checks::Outcome;
use crate::println;

/// How many WFEs in a row.
const WFES: u64 = 16;

/// Check 12.
pub fn check(hypervisor: bool) -> Outcome {
    if !hypervisor {
        println!("guest: WFE with the timer off skipped (no hypervisor)");
        return Outcome::Skipped;
    }
    let mut returned: u64 = 0;
    // SAFETY: stops this guest's virtual timer (no interrupt can become pending; IRQs are
    // masked anyway) and executes WFE, which at worst waits; the loop only counts.
    unsafe {
        asm!(
            "msr cntv_ctl_el0, xzr",
            "isb",
            "2:",
            "wfe",
            "add {returned}, {returned}, #1",
            "cmp {returned}, {wfes}",
            "b.lo 2b",
            returned = inout(reg) returned,
            wfes = in(reg) WFES,
            options(nomem, nostack),
        );
    }
    println!("guest: WFE with the timer off returned ({returned} times)");
    if returned == WFES {
        Outcome::Passed
    } else {
        Outcome::Failed("the WFE loop did not run to the end")
    }
}
