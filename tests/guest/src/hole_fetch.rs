//! Check 13: an instruction fetch from the hole takes an instruction abort.
//!
//! The hole is in no memory slot and no device (docs/GUEST-ABI.md); its stage-1 page is
//! executable at EL1 (mmu.rs), so a branch there is a fetch that reaches stage 2. The ABI
//! injects a synchronous external abort for the kind of access that failed: an instruction
//! abort taken at the same EL (ESR_EL1.EC 0x21, IFSC 0x10), with FAR_EL1 and ELR_EL1 both the
//! fetched address. A data abort here would send a guest's handler looking for a load at ELR.
//!
//! The probe is a `blr` to the hole: the abort is taken with ELR = the hole, and the handler
//! (exception.rs, [`Expect::InstructionAbort`]) resumes at the `blr`'s link, `x30`, the next
//! instruction here. Without our hypervisor whatever the machine has at that address (QEMU's
//! PCIe window) would be executed, so the check is skipped.

use crate::checks::Outcome;
use crate::exception::{self, EC_INSTRUCTION_ABORT_SAME_EL, Expect};
use crate::layout::HOLE;
use crate::println;
use crate::uart::Hex;

/// IFSC of a synchronous external abort, not on a table walk.
const IFSC_EXTERNAL: u64 = 0x10;

/// Check 13.
pub fn check(hypervisor: bool) -> Outcome {
    if !hypervisor {
        println!("guest: hole fetch skipped (no hypervisor)");
        return Outcome::Skipped;
    }
    exception::expect(Expect::InstructionAbort);
    // SAFETY: HOLE is executable at EL1 and backed by nothing: the fetch there aborts, and the
    // handler armed above records the abort and resumes at x30, which the `blr` set to the
    // instruction after it. Only x30 changes (declared clobbered); the handler restores every
    // other register. Not `nomem`: the handler writes the exception module's atomics.
    unsafe {
        core::arch::asm!(
            "blr {target}",
            target = in(reg) HOLE,
            out("x30") _,
            options(nostack),
        );
    }
    let Some(abort) = exception::take_abort() else {
        println!("guest: hole fetch returned without an abort");
        return Outcome::Failed("hole fetch did not abort");
    };
    let (esr, far, elr) = (Hex(abort.esr), Hex(abort.far), Hex(abort.elr));
    let failure = if abort.class() != EC_INSTRUCTION_ABORT_SAME_EL {
        Some("hole fetch abort is not an instruction abort")
    } else if abort.status() != IFSC_EXTERNAL {
        Some("hole fetch abort is not a synchronous external abort")
    } else if abort.far != HOLE {
        Some("hole fetch abort has the wrong FAR")
    } else if abort.elr != HOLE {
        Some("hole fetch abort has the wrong ELR")
    } else {
        None
    };
    match failure {
        None => {
            println!(
                "guest: hole fetch aborted as an instruction abort (ESR {esr}, FAR {far}, ELR {elr})"
            );
            Outcome::Passed
        }
        Some(what) => {
            println!("guest: hole fetch aborted with ESR {esr}, FAR {far}, ELR {elr}: {what}");
            Outcome::Failed(what)
        }
    }
}
