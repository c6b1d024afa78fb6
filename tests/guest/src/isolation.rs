//! Check 11: the attacks on shared hardware that used to stop the whole system, one after
//! another, each followed by proof that the system still works.
//!
//! A guest at EL1 can write the debug, PMU and EL1 physical-timer registers. Without traps those
//! writes land in hardware the kernel and the servers share: an OS-lock release plus MDSCR_EL1
//! with single step and kernel debug enabled, armed breakpoints and watchpoints, a stopped or
//! reset cycle counter with EL0 access withdrawn (the servers' benchmarks read it), and an EL1
//! physical timer firing at once (the servers' world's timer). In guest mode the kernel traps
//! them (MDCR_EL2.TDA, TDOSA, TDRA, TPM, TPMCR; CNTHCTL_EL2.EL1PCEN clear) and the vmm answers
//! RAZ/WI (docs/GUEST-ABI.md, "System registers"). SCTLR_EL1 is not trapped: it is the guest's
//! own, and the kernel must switch it so that EL0 bits set here (E0E, UMA, DZE, UCT) never apply
//! to the servers.
//!
//! After each attack, [`still_answers`] reads the PL011 flag register (a stage-2 abort through
//! the vmm to the PL011 server) and calls PSCI_VERSION (the vmm), and checks both answers. The
//! guest's own view is checked too: MDSCR_EL1, PMCR_EL0 and CNTP_CTL_EL0 read back 0 (RAZ, not
//! what was written), SCTLR_EL1 keeps the guest's bits across exits, and TPIDR_EL0 and
//! TPIDRRO_EL0 keep a pattern written before the first attack. An injected undefined instruction
//! (a vmm that does not emulate a register) is an unexpected exception and fails the check.
//!
//! Under plain QEMU there is nothing to isolate from and these writes would go to the (emulated)
//! hardware, so the check is skipped.

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::checks::Outcome;
use crate::hypercall;
use crate::println;
use crate::uart::{Hex, Pl011};

/// What TPIDR_EL0 holds from before the first attack to after the last.
const TPIDR_PATTERN: u64 = 0x6775_6573_7430_0001;
/// What TPIDRRO_EL0 holds meanwhile.
const TPIDRRO_PATTERN: u64 = 0x6775_6573_7430_0002;

/// MDSCR_EL1.SS (software step), KDE (debug exceptions at EL1), MDE (breakpoints and
/// watchpoints): ARM ARM, MDSCR_EL1.
const MDSCR_SS_KDE_MDE: u64 = (1 << 0) | (1 << 13) | (1 << 15);
/// DBGBCR<n>_EL1: E, PMC = 0b11 (EL1 and EL0), BAS = 0b1111 (an A64 instruction).
const DBGBCR_ENABLED: u64 = 1 | (0b11 << 1) | (0b1111 << 5);
/// DBGWCR<n>_EL1: E, PAC = 0b11 (EL1 and EL0), LSC = 0b11 (loads and stores), BAS = 0xFF (all
/// eight bytes of the doubleword).
const DBGWCR_ENABLED: u64 = 1 | (0b11 << 1) | (0b11 << 3) | (0xFF << 5);
/// PMCR_EL0.P and .C: reset every event counter and the cycle counter (E stays clear).
const PMCR_RESET: u64 = (1 << 1) | (1 << 2);
/// PMCCFILTR_EL0.P, U, NSK, NSU, NSH, M: count nowhere.
const PMCCFILTR_ALL: u64 = 0b11_1111 << 26;
/// SCTLR_EL1.E0E (24), UMA (9), DZE (14), UCT (15): EL0 big-endian, EL0 access to DAIF, DC ZVA
/// and CTR_EL0. They change nothing at EL1.
const SCTLR_EL0_BITS: u64 = (1 << 24) | (1 << 9) | (1 << 14) | (1 << 15);

/// UARTFR.TXFE, TXFF and BUSY (PL011 TRM §3.3.3).
const FR_TXFE: u32 = 1 << 7;
const FR_TXFF: u32 = 1 << 5;
const FR_BUSY: u32 = 1 << 3;

/// Reads a system register by name.
macro_rules! mrs {
    ($register:literal) => {{
        let value: u64;
        // SAFETY: reading this register has no side effect (a trapped read is answered by the
        // hypervisor and only writes the output register).
        unsafe { asm!(concat!("mrs {}, ", $register), out(reg) value, options(nostack)) };
        value
    }};
}

/// A word the watchpoint watches.
static WATCHED: AtomicU64 = AtomicU64::new(0);

/// The instruction the breakpoint points at.
#[inline(never)]
fn breakpoint_target() -> u64 {
    WATCHED.load(Ordering::SeqCst).wrapping_add(1)
}

type Attack = fn() -> Result<(), &'static str>;

/// The attacks, named as their console line.
const ATTACKS: [(&str, Attack); 5] = [
    ("debug (os lock + mdscr ss/mde/kde)", debug),
    (
        "breakpoint + watchpoint (dbgbcr0/dbgwcr0 enabled)",
        breakpoints,
    ),
    ("pmu (pmcr stop/reset, pmuserenr 0, pmccfiltr all)", pmu),
    (
        "physical timer (cntp_cval 0, cntp_ctl enabled)",
        physical_timer,
    ),
    ("sctlr_el1 (e0e/uma/dze/uct set, then restored)", sctlr),
];

/// Check 11.
pub fn check(hypervisor: bool) -> Outcome {
    if !hypervisor {
        println!("guest: isolation checks skipped (no hypervisor)");
        return Outcome::Skipped;
    }
    // SAFETY: the thread pointers are the guest's own; nothing in the guest uses them.
    unsafe {
        asm!(
            "msr tpidr_el0, {tpidr}",
            "msr tpidrro_el0, {tpidrro}",
            tpidr = in(reg) TPIDR_PATTERN,
            tpidrro = in(reg) TPIDRRO_PATTERN,
            options(nomem, nostack),
        );
    }
    for (name, attack) in ATTACKS {
        if let Err(what) = attack()
            .and_then(|()| still_answers())
            .and_then(|()| kept())
        {
            println!("guest: isolation: {name}: {what}");
            return Outcome::Failed(what);
        }
        println!("guest: isolation: {name}: system still answers");
    }
    println!(
        "guest: isolation: the guest's view: MDSCR_EL1, PMCR_EL0, CNTP_CTL_EL0 read 0; TPIDR_EL0 {} kept",
        Hex(mrs!("tpidr_el0"))
    );
    // The VM's own time base: its virtual counter started at 0 when the VM was created, so it
    // runs behind the physical counter (which the guest may read) by the kernel's uptime then.
    let (virtual_count, physical_count) = (mrs!("cntvct_el0"), mrs!("cntpct_el0"));
    if virtual_count >= physical_count {
        println!(
            "guest: isolation: CNTVCT {} is not behind CNTPCT {}: no counter offset of its own",
            Hex(virtual_count),
            Hex(physical_count)
        );
        return Outcome::Failed("the VM has no virtual counter offset");
    }
    println!(
        "guest: isolation: the virtual counter runs behind the physical one (the VM's own offset)"
    );
    println!("guest: isolation checks passed ({} attacks)", ATTACKS.len());
    Outcome::Passed
}

/// The PL011 server (through the vmm) and the vmm itself answer, and correctly.
fn still_answers() -> Result<(), &'static str> {
    // The emulated transmitter is always empty and idle (drivers/pl011: TXFE set, TXFF and
    // BUSY clear, nothing above bit 8).
    let flags = Pl011::console().flags();
    if flags & FR_TXFE == 0 || flags & (FR_TXFF | FR_BUSY) != 0 || flags >> 9 != 0 {
        println!("guest: isolation: PL011 flag register reads {flags:#x}");
        return Err("the PL011 flag register answered wrong");
    }
    match hypercall::psci_version() {
        Ok((1, 1)) => Ok(()),
        _ => Err("PSCI_VERSION did not answer 1.1"),
    }
}

/// The thread pointers still hold the patterns, after every exit so far.
fn kept() -> Result<(), &'static str> {
    if mrs!("tpidr_el0") != TPIDR_PATTERN {
        return Err("TPIDR_EL0 lost the guest's pattern");
    }
    if mrs!("tpidrro_el0") != TPIDRRO_PATTERN {
        return Err("TPIDRRO_EL0 lost the guest's pattern");
    }
    Ok(())
}

/// (a) Release the OS lock, then single step, kernel debug and monitor debug on.
fn debug() -> Result<(), &'static str> {
    // SAFETY: debug-register writes, trapped and ignored by the hypervisor; PSTATE.D stays
    // masked, so even on hardware no debug exception would be taken here.
    unsafe {
        asm!(
            "msr oslar_el1, xzr",
            "msr mdscr_el1, {mdscr}",
            "isb",
            mdscr = in(reg) MDSCR_SS_KDE_MDE,
            options(nomem, nostack),
        );
    }
    if mrs!("mdscr_el1") != 0 {
        return Err("MDSCR_EL1 does not read as zero");
    }
    Ok(())
}

/// (b) Breakpoint 0 on [`breakpoint_target`], watchpoint 0 on [`WATCHED`], both enabled; then
/// the target runs and the word is written with debug exceptions unmasked: RAZ/WI leaves
/// MDSCR_EL1.KDE/MDE clear, so nothing fires (a debug exception would be unexpected).
fn breakpoints() -> Result<(), &'static str> {
    let target = breakpoint_target as *const () as u64;
    let watched = WATCHED.as_ptr() as u64;
    // SAFETY: debug-register writes, trapped and ignored by the hypervisor.
    unsafe {
        asm!(
            "msr dbgbvr0_el1, {bvr}",
            "msr dbgbcr0_el1, {bcr}",
            "msr dbgwvr0_el1, {wvr}",
            "msr dbgwcr0_el1, {wcr}",
            "isb",
            bvr = in(reg) target,
            bcr = in(reg) DBGBCR_ENABLED,
            wvr = in(reg) watched,
            wcr = in(reg) DBGWCR_ENABLED,
            options(nomem, nostack),
        );
    }
    // SAFETY: unmasking PSTATE.D only lets debug exceptions be taken (by the vectors, which
    // report them as unexpected); it is masked again below.
    unsafe { asm!("msr daifclr, #8", "isb", options(nostack)) };
    let value = breakpoint_target();
    WATCHED.store(value, Ordering::SeqCst);
    // SAFETY: masks debug exceptions again, as at boot.
    unsafe { asm!("msr daifset, #8", "isb", options(nostack)) };
    if WATCHED.load(Ordering::SeqCst) != 1 {
        return Err("the watched word did not take its value");
    }
    Ok(())
}

/// (c) Stop every counter, reset them, withdraw EL0 access, filter the cycle counter out of
/// every exception level.
fn pmu() -> Result<(), &'static str> {
    // SAFETY: PMU-register writes, trapped and ignored by the hypervisor.
    unsafe {
        asm!(
            "msr pmcr_el0, xzr",
            "msr pmcr_el0, {reset}",
            "msr pmuserenr_el0, xzr",
            "msr pmccfiltr_el0, {filter}",
            "isb",
            reset = in(reg) PMCR_RESET,
            filter = in(reg) PMCCFILTR_ALL,
            options(nomem, nostack),
        );
    }
    if mrs!("pmcr_el0") != 0 {
        return Err("PMCR_EL0 does not read as zero");
    }
    Ok(())
}

/// (d) The EL1 physical timer, due at once, enabled and unmasked.
fn physical_timer() -> Result<(), &'static str> {
    // SAFETY: physical-timer writes, trapped and ignored by the hypervisor; IRQs stay masked.
    unsafe {
        asm!(
            "msr cntp_cval_el0, xzr",
            "msr cntp_ctl_el0, {enable}",
            "isb",
            enable = in(reg) 1u64,
            options(nomem, nostack),
        );
    }
    if mrs!("cntp_ctl_el0") != 0 {
        return Err("CNTP_CTL_EL0 does not read as zero");
    }
    Ok(())
}

/// (e) SCTLR_EL1's EL0 controls set while the system is probed (exits happen with them set),
/// then the guest's value restored.
fn sctlr() -> Result<(), &'static str> {
    let saved = mrs!("sctlr_el1");
    let attacked = saved | SCTLR_EL0_BITS;
    // SAFETY: the bits set only change how EL0 runs, and the guest runs nothing at EL0; the
    // MMU, cache and alignment bits keep their values.
    unsafe { asm!("msr sctlr_el1, {}", "isb", in(reg) attacked, options(nomem, nostack)) };
    let answers = still_answers();
    let seen = mrs!("sctlr_el1");
    // SAFETY: puts back the value read above.
    unsafe { asm!("msr sctlr_el1, {}", "isb", in(reg) saved, options(nomem, nostack)) };
    answers?;
    if seen != attacked {
        println!(
            "guest: isolation: SCTLR_EL1 {} after exits, {} written",
            Hex(seen),
            Hex(attacked)
        );
        return Err("SCTLR_EL1 did not keep the guest's value across exits");
    }
    if mrs!("sctlr_el1") != saved {
        return Err("SCTLR_EL1 was not restored");
    }
    Ok(())
}
