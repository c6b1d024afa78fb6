//! Class 6 of the attack: the EL1 system registers the isolation check writes (debug, PMU, the
//! EL1 physical timer, SCTLR_EL1's EL0 bits, MDSCR_EL1, the OS lock), with random values, and
//! then a sane state again.
//!
//! The trapped groups (docs/GUEST-ABI.md, "System registers") are attacked by encoding, not by
//! name: an MSR or MRS of a random encoding in one of their spaces is written into a code page
//! (Arm ARM C6.2.226 MSR (register): `0xD500_0000 | L << 21 | op0 << 19 | op1 << 16 | CRn << 12
//! | CRm << 8 | op2 << 5 | Rt`) followed by a RET, and called through an executable probe slot.
//! So every register of the group is reached, the unallocated encodings between them too, and
//! reads of write-only and writes of read-only registers (UNDEFINED, as on hardware). The
//! spaces:
//!
//! | group | op0 | op1 | CRn | CRm | op2 |
//! |---|---|---|---|---|---|
//! | debug (MDSCR, OSLAR/OSLSR/OSDLR, DBGPRCR, DBGB/W{V,C}Rn, MDRAR, claim tags, DCC, trace) | 2 | 0, 1, 3 | 0..=7 | 0..=15 | 0..=7 |
//! | PMU (PMCR .. PMCCFILTR, PMINTEN*, PMMIR) | 3 | 3 | 9 | 12..=14 | 0..=7 |
//! | PMU event counters and types | 3 | 3 | 14 | 8..=15 | 0..=7 |
//! | PMU EL1 | 3 | 0 | 9 | 14 | 0..=7 |
//! | EL1 physical timer (CNTP_TVAL, CTL, CVAL) | 3 | 3 | 14 | 2 | 0..=2 |
//!
//! None of these can change the guest's own translation, vectors or virtual timer, so a random
//! value is harmless to the guest whatever the hypervisor does with it. The registers that are
//! the guest's own and switched eagerly at every exit (SCTLR_EL1's EL0 bits E0E, UCT, DZE, UCI,
//! UMA, SA0, nTWI, nTWE; CNTKCTL_EL1; TPIDRRO_EL0) are written by name with random values, one
//! or more exits are made with them set (a PSCI_VERSION), and the guest's values are restored.
//!
//! One time in sixteen the operation also reads back the RAZ registers (MDSCR_EL1, PMCR_EL0,
//! CNTP_CTL_EL0 must read 0) and checks that SCTLR_EL1 kept the attacked value across the exit;
//! a difference is counted and the first printed.

use core::arch::asm;

use super::CODE_PAGE;
use super::rng::Rng;
use super::window::{self, Attr};
use crate::println;
use crate::uart::Hex;

/// RET (Arm ARM C6.2.254, RET X30).
const RET: u32 = 0xD65F_03C0;
/// MSR/MRS (register) with Rt = x0.
const SYSREG: u32 = 0xD500_0000;
/// SCTLR_EL1 bits that govern only EL0: SA0 (4), nTWI (16), nTWE (18), UMA (9), DZE (14), UCT
/// (15), E0E (24), UCI (26).
const SCTLR_EL0_BITS: u64 =
    (1 << 4) | (1 << 9) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 18) | (1 << 24) | (1 << 26);

/// The probe slot that executes the code page.
pub const CODE_SLOT: usize = window::SLOTS - 1;

/// What class 6 found.
#[derive(Clone, Copy, Default)]
pub struct Sysregs {
    pub accesses: u64,
    pub wrong: u64,
}

/// A random (op0, op1, CRn, CRm, op2) from the spaces of the module comment.
fn encoding(rng: &mut Rng) -> (u32, u32, u32, u32, u32) {
    let op2 = rng.below(8) as u32;
    match rng.below(8) {
        0..=3 => (
            2,
            [0, 1, 3][rng.below(3) as usize],
            rng.below(8) as u32,
            rng.below(16) as u32,
            op2,
        ),
        4 => (3, 3, 9, 12 + rng.below(3) as u32, op2),
        5 => (3, 3, 14, 8 + rng.below(8) as u32, op2),
        6 => (3, 0, 9, 14, op2),
        _ => (3, 3, 14, 2, op2 % 3),
    }
}

/// Writes `instruction; ret` into the code page and makes it visible to instruction fetch
/// (Arm ARM D7.5.9, "Ordering and completion of data and instruction cache instructions").
fn emit(instruction: u32) {
    let code = CODE_PAGE as *mut u32;
    // SAFETY: CODE_PAGE is a page of RAM that the attack alone uses (no Rust object lives
    // there; it is mapped read-write by the identity map and executable only through the code
    // slot).
    unsafe { code.write_volatile(instruction) };
    // SAFETY: as above, the next word.
    unsafe { code.wrapping_add(1).write_volatile(RET) };
    // SAFETY: cache maintenance by VA of that page and barriers: the stores are cleaned to the
    // point of unification and stale instructions dropped; no data changes.
    unsafe {
        asm!(
            "dc cvau, {page}",
            "dsb ish",
            "ic ivau, {page}",
            "dsb ish",
            "isb",
            page = in(reg) CODE_PAGE,
            options(nostack),
        );
    }
}

/// Calls the code page through the code slot with `x0 = value`; returns x0.
fn run(value: u64) -> u64 {
    let mut x0 = value;
    let entry = window::slot_address(CODE_SLOT);
    // SAFETY: the code page holds one MSR or MRS of a trapped or unallocated encoding (none of
    // them reaches the guest's translation, vectors or virtual timer) and a RET, so the call
    // returns to the instruction after the `blr`; an undefined instruction is stepped over by
    // trap.rs. Caller-saved registers are declared clobbered, as for any call.
    unsafe {
        asm!("blr {entry}", entry = in(reg) entry, inout("x0") x0, clobber_abi("C"),
            options(nostack));
    }
    x0
}

macro_rules! mrs {
    ($register:literal) => {{
        let value: u64;
        // SAFETY: reading this register has no side effect (a trapped read is answered by the
        // hypervisor and only writes the output register).
        unsafe { asm!(concat!("mrs {}, ", $register), out(reg) value, options(nostack)) };
        value
    }};
}

/// Maps the code slot (done once, after the window is up).
pub fn enable() {
    window::map(CODE_SLOT, CODE_PAGE, Attr::Normal, true);
}

/// Class 6: a few random trapped accesses, then the eagerly switched registers attacked and
/// restored.
pub fn attack(rng: &mut Rng, found: &mut Sysregs) {
    for _ in 0..1 + rng.below(4) {
        let (op0, op1, crn, crm, op2) = encoding(rng);
        let read = u32::from(rng.one_in(2)) << 21;
        emit(SYSREG | read | (op0 & 3) << 19 | op1 << 16 | crn << 12 | crm << 8 | op2 << 5);
        run(rng.next());
        found.accesses += 1;
    }
    let (sctlr, cntkctl, tpidrro) = (mrs!("sctlr_el1"), mrs!("cntkctl_el1"), mrs!("tpidrro_el0"));
    let attacked = (sctlr & !SCTLR_EL0_BITS) | (rng.next() & SCTLR_EL0_BITS);
    let check = rng.one_in(16);
    // SAFETY: only EL0's controls change (the guest runs nothing at EL0): SCTLR_EL1's EL0 bits,
    // EL0's access to the counters and timers, EL0's read-only thread register. Restored below.
    unsafe {
        asm!(
            "msr sctlr_el1, {sctlr}",
            "msr cntkctl_el1, {cntkctl}",
            "msr tpidrro_el0, {tpidrro}",
            "isb",
            sctlr = in(reg) attacked,
            cntkctl = in(reg) rng.next() & 0x3FF,
            tpidrro = in(reg) rng.next(),
            options(nostack),
        );
    }
    // An exit with the attacked values in place.
    let version = crate::hypercall::psci_version();
    let seen = mrs!("sctlr_el1");
    // SAFETY: puts back the values read above.
    unsafe {
        asm!(
            "msr sctlr_el1, {sctlr}",
            "msr cntkctl_el1, {cntkctl}",
            "msr tpidrro_el0, {tpidrro}",
            "isb",
            sctlr = in(reg) sctlr,
            cntkctl = in(reg) cntkctl,
            tpidrro = in(reg) tpidrro,
            options(nostack),
        );
    }
    found.accesses += 3;
    let wrong = if version != Ok((1, 1)) {
        Some("PSCI_VERSION did not answer 1.1 with SCTLR_EL1's EL0 bits attacked")
    } else if seen != attacked {
        Some("SCTLR_EL1 did not keep the guest's value across an exit")
    } else if check && mrs!("mdscr_el1") | mrs!("pmcr_el0") | mrs!("cntp_ctl_el0") != 0 {
        Some("MDSCR_EL1, PMCR_EL0 or CNTP_CTL_EL0 did not read as zero")
    } else {
        None
    };
    if let Some(what) = wrong {
        found.wrong += 1;
        if found.wrong == 1 {
            super::registers::pl011_sane();
            println!(
                "hostile: system registers: {what} (SCTLR_EL1 {} written, {} seen)",
                Hex(attacked),
                Hex(seen)
            );
        }
    }
}
