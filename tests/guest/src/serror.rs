//! Check 14: a virtual SError stays pending across exits while the guest masks SErrors, is
//! taken exactly once when it unmasks them, and never again.
//!
//! An SError taken while a guest runs is the guest's: the vmm answers it with a virtual SError
//! (HCR_EL2.VSE), which the guest takes at its SError vector once PSTATE.A is clear
//! (docs/GUEST-ABI.md, "Exceptions the guest can see"). QEMU cannot make a guest raise a real
//! SError, so HV_INJECT_SERROR drives the same path: the vmm answers it with `x0 = 0` and the
//! same INJECT_SERROR reply bit.
//!
//! With PSTATE.A set, the check calls HV_INJECT_SERROR and then makes [`EXITS`] more exits
//! (PSCI_VERSION twice and a PL011 flag-register read). Each takes the kernel out of guest mode
//! and back, so the pending state must survive in the VCPU's saved state (the kernel reads
//! HCR_EL2.VSE back on the way out). Nothing may be taken meanwhile. Then it unmasks PSTATE.A
//! for two instructions: the SError must be taken there, once, at the EL1h SError vector with
//! ESR_EL1.EC = 0x2F and ELR_EL1 inside that window (asynchronous: the handler `eret`s to the
//! interrupted code, with PSTATE.A set again; exception.rs). Finally it unmasks SErrors again
//! and makes [`EXITS`] more exits: taking the SError must have cleared the pending state, so no
//! second one may arrive. DAIF is restored as it was (main.rs unmasks SErrors early).
//!
//! Needs the hypervisor: no other implementation of HV_INJECT_SERROR exists.

use core::arch::asm;

use crate::checks::Outcome;
use crate::exception::{self, EC_SERROR};
use crate::hypercall;
use crate::println;
use crate::uart::{Hex, Pl011};

/// Exits made while the SError is pending and masked, and again after it was taken.
const EXITS: u64 = 3;

/// UARTFR.TXFE: the emulated transmitter is always empty (drivers/pl011).
const FR_TXFE: u32 = 1 << 7;

/// Check 14.
pub fn check(hypervisor: bool) -> Outcome {
    if !hypervisor {
        println!("guest: virtual SError skipped (no hypervisor)");
        return Outcome::Skipped;
    }
    let daif: u64;
    // SAFETY: reads DAIF and sets PSTATE.A: SErrors stay pending until unmasked.
    unsafe {
        asm!(
            "mrs {daif}, daif",
            "msr daifset, #4",
            "isb",
            daif = out(reg) daif,
            options(nostack),
        );
    }
    exception::expect_serrors();
    let outcome = pending_taken_once();
    // SAFETY: restores the interrupted DAIF; an SError still pending (a failed check) is taken
    // here by the armed handler and counted, not reported as unexpected.
    unsafe { asm!("msr daif, {}", "isb", in(reg) daif, options(nostack)) };
    let late = exception::serrors().count;
    exception::disarm_serrors();
    match outcome {
        Ok(esr) if late == 1 => {
            println!(
                "guest: virtual SError pending across {EXITS} exits, taken once when unmasked (ESR {}), none after {EXITS} more exits",
                Hex(esr)
            );
            Outcome::Passed
        }
        Ok(_) => {
            println!("guest: virtual SError: {late} SErrors by the end of the check");
            Outcome::Failed("an SError arrived after the check had seen one")
        }
        Err(what) => Outcome::Failed(what),
    }
}

/// The body, with PSTATE.A set on entry and on return: the ESR of the one SError taken.
fn pending_taken_once() -> Result<u64, &'static str> {
    if let Err(error) = hypercall::inject_serror() {
        println!("guest: HV_INJECT_SERROR: {error:?}");
        return Err("HV_INJECT_SERROR failed");
    }
    exits()?;
    let early = exception::serrors().count;
    if early != 0 {
        println!("guest: virtual SError taken {early} times with PSTATE.A set");
        return Err("an SError was taken while masked");
    }
    let (start, end): (u64, u64);
    // SAFETY: unmasks SErrors for the `isb` between the labels, which is where the pending one
    // is taken: the armed handler records it and returns here with PSTATE.A set; masking again
    // afterwards covers the case where none came. Not `nomem`: the handler writes the
    // exception module's atomics.
    unsafe {
        asm!(
            "adr {start}, 1f",
            "adr {end}, 2f",
            "1: msr daifclr, #4",
            "isb",
            "2: msr daifset, #4",
            "isb",
            start = out(reg) start,
            end = out(reg) end,
            options(nostack),
        );
    }
    let taken = exception::serrors();
    let (esr, elr) = (Hex(taken.esr), Hex(taken.elr));
    match taken.count {
        0 => {
            println!("guest: virtual SError: nothing taken when unmasked after {EXITS} exits");
            return Err("the pending SError was lost across exits");
        }
        1 => {}
        n => {
            println!("guest: virtual SError taken {n} times at one unmasking");
            return Err("the SError was taken more than once");
        }
    }
    if taken.esr >> 26 & 0x3f != EC_SERROR {
        println!("guest: virtual SError: ESR {esr} is not an SError");
        return Err("the SError's ESR_EL1.EC is not 0x2F");
    }
    if !(start < taken.elr && taken.elr <= end) {
        println!(
            "guest: virtual SError taken at ELR {elr}, outside the unmasked window ({}, {}]",
            Hex(start),
            Hex(end)
        );
        return Err("the SError was taken outside the unmasked window");
    }
    // SAFETY: unmasks SErrors: one still pending would be taken by the armed handler (counted,
    // PSTATE.A set again); nothing else changes. Not `nomem`, as above.
    unsafe { asm!("msr daifclr, #4", "isb", options(nostack)) };
    let after = exits();
    // SAFETY: masks SErrors again.
    unsafe { asm!("msr daifset, #4", "isb", options(nostack)) };
    after?;
    let count = exception::serrors().count;
    if count != 1 {
        println!("guest: virtual SError taken again after it was taken ({count} in all)");
        return Err("the SError stayed pending after it was taken");
    }
    Ok(taken.esr)
}

/// [`EXITS`] exits, each checked: PSCI_VERSION (the vmm answers), the PL011 flag register (a
/// stage-2 abort the vmm routes to the PL011 server), PSCI_VERSION.
fn exits() -> Result<(), &'static str> {
    let psci = || match hypercall::psci_version() {
        Ok((1, 1)) => Ok(()),
        _ => Err("PSCI_VERSION did not answer 1.1"),
    };
    psci()?;
    if Pl011::console().flags() & FR_TXFE == 0 {
        return Err("the PL011 flag register answered wrong");
    }
    psci()
}
