//! What the guest does with an exception: the Rust half of the vectors in `entry.rs`.
//!
//! The guest expects exactly two synchronous exceptions, each only while the code that
//! provokes it has said so with [`expect`]:
//!
//! - [`Expect::UndefinedHvc`]: an `hvc` on a machine without EL2 is UNDEFINED (EC 0x00,
//!   ARM ARM, ESR_EL1). ELR_EL1 points at the `hvc`; the handler steps over it and returns
//!   `x0 = -1` (NOT_SUPPORTED), so the hypercall wrapper reports "no hypervisor".
//! - [`Expect::DataAbort`]: the hole access, for which the ABI injects a synchronous external
//!   abort (EC 0x25 "Data Abort taken without a change in Exception level"). The handler
//!   records ESR_EL1 and FAR_EL1 and steps over the load (ELR_EL1 += 4).
//!
//! An expectation covers one exception and is disarmed by it or by the `take_*` call after
//! the provoking instruction. Anything else -- another class, an IRQ, FIQ or SError, an
//! exception from a group the guest never uses -- is a failure: the handler prints ESR, ELR,
//! FAR and SPSR and ends the VM with the number of the check that was running as the verdict.
//!
//! State shared with the interrupted code lives in atomics used only with plain loads and
//! stores (no exclusives, which need the MMU on). The provoking instructions are `asm!` blocks
//! without `nomem`, so the compiler reloads these after them.

use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use aarch64_cpu::registers::{ESR_EL1, FAR_EL1, Readable};

use crate::checks;
use crate::entry::ExceptionFrame;
use crate::hypercall;
use crate::println;
use crate::uart::Hex;

/// ESR_EL1.EC for an unknown reason (undefined instruction).
pub const EC_UNKNOWN: u64 = 0x00;
/// ESR_EL1.EC for a data abort taken without a change in exception level.
pub const EC_DATA_ABORT_SAME_EL: u64 = 0x25;

/// An exception the running code is about to provoke on purpose.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Expect {
    /// Nothing: every exception is unexpected.
    Nothing = 0,
    /// The next `hvc` may be undefined.
    UndefinedHvc = 1,
    /// The next load may take a synchronous data abort.
    DataAbort = 2,
    /// A virtual IRQ from the virtual timer may arrive (the WFI check).
    TimerIrq = 3,
}

static EXPECT: AtomicU8 = AtomicU8::new(Expect::Nothing as u8);
static UNDEFINED_HVC: AtomicBool = AtomicBool::new(false);
static ABORT_TAKEN: AtomicBool = AtomicBool::new(false);
static ABORT_ESR: AtomicU64 = AtomicU64::new(0);
static ABORT_FAR: AtomicU64 = AtomicU64::new(0);
static TIMER_IRQS: AtomicU64 = AtomicU64::new(0);

/// Arms `what` for the next exception, forgetting any earlier result.
pub fn expect(what: Expect) {
    UNDEFINED_HVC.store(false, Ordering::SeqCst);
    ABORT_TAKEN.store(false, Ordering::SeqCst);
    EXPECT.store(what as u8, Ordering::SeqCst);
}

/// Disarms the expectation; how many timer interrupts arrived since [`expect`].
pub fn take_timer_irqs() -> u64 {
    EXPECT.store(Expect::Nothing as u8, Ordering::SeqCst);
    TIMER_IRQS.swap(0, Ordering::SeqCst)
}

/// Disarms the expectation; true when the armed `hvc` was undefined.
pub fn take_undefined_hvc() -> bool {
    EXPECT.store(Expect::Nothing as u8, Ordering::SeqCst);
    UNDEFINED_HVC.load(Ordering::SeqCst)
}

/// The syndrome of a data abort.
#[derive(Clone, Copy)]
pub struct Abort {
    /// ESR_EL1.
    pub esr: u64,
    /// FAR_EL1: the faulting virtual address.
    pub far: u64,
}

impl Abort {
    /// ESR_EL1.EC.
    pub fn class(&self) -> u64 {
        self.esr >> 26 & 0x3f
    }

    /// ESR_EL1.ISS.DFSC: the data fault status code.
    pub fn status(&self) -> u64 {
        self.esr & 0x3f
    }
}

/// Disarms the expectation; the abort taken since [`expect`], if any.
pub fn take_abort() -> Option<Abort> {
    EXPECT.store(Expect::Nothing as u8, Ordering::SeqCst);
    ABORT_TAKEN.load(Ordering::SeqCst).then(|| Abort {
        esr: ABORT_ESR.load(Ordering::SeqCst),
        far: ABORT_FAR.load(Ordering::SeqCst),
    })
}

/// Names of the vector groups of ARM ARM Table D1-7, indexed by `kind / 4`.
const GROUPS: [&str; 4] = [
    "current EL, SP_EL0",
    "current EL, SP_ELx",
    "lower EL, AArch64",
    "lower EL, AArch32",
];
/// Names of the exception types, indexed by `kind % 4`.
const TYPES: [&str; 4] = ["synchronous", "IRQ", "FIQ", "SError"];
/// `kind` of a synchronous exception from EL1h: the only group the guest uses.
const KIND_SYNC_CURRENT_SPX: u64 = 4;
/// `kind` of an IRQ taken at EL1h.
const KIND_IRQ_CURRENT_SPX: u64 = 5;

/// Called by every vector with the saved state and the vector's kind (group * 4 + type).
#[unsafe(no_mangle)]
extern "C" fn guest_handle_exception(frame: &mut ExceptionFrame, kind: u64) {
    let esr = ESR_EL1.get();
    let far = FAR_EL1.get();
    let class = esr >> 26 & 0x3f;
    let expected = EXPECT.load(Ordering::SeqCst);
    if kind == KIND_IRQ_CURRENT_SPX && expected == Expect::TimerIrq as u8 {
        // The virtual timer's level interrupt (no interrupt controller in between): quieten
        // the source and return with IRQs masked, since the line is only resampled when the
        // hypervisor next runs (docs/GUEST-ABI.md).
        // SAFETY: writing CNTV_CTL_EL0 only stops this guest's virtual timer.
        unsafe { core::arch::asm!("msr cntv_ctl_el0, xzr", "isb", options(nostack)) };
        TIMER_IRQS.fetch_add(1, Ordering::SeqCst);
        frame.spsr |= 1 << 7; // PSTATE.I
        return;
    }
    if kind == KIND_SYNC_CURRENT_SPX {
        if expected == Expect::UndefinedHvc as u8 && class == EC_UNKNOWN {
            EXPECT.store(Expect::Nothing as u8, Ordering::SeqCst);
            UNDEFINED_HVC.store(true, Ordering::SeqCst);
            frame.x[0] = u64::MAX;
            frame.elr += 4;
            return;
        }
        if expected == Expect::DataAbort as u8 && class == EC_DATA_ABORT_SAME_EL {
            EXPECT.store(Expect::Nothing as u8, Ordering::SeqCst);
            ABORT_ESR.store(esr, Ordering::SeqCst);
            ABORT_FAR.store(far, Ordering::SeqCst);
            ABORT_TAKEN.store(true, Ordering::SeqCst);
            frame.elr += 4;
            return;
        }
    }
    unexpected(frame, kind, esr, far)
}

/// Reports an exception nobody asked for and ends the VM with the running check as verdict.
fn unexpected(frame: &ExceptionFrame, kind: u64, esr: u64, far: u64) -> ! {
    let group = GROUPS.get((kind / 4) as usize).copied().unwrap_or("?");
    let kind_name = TYPES.get((kind % 4) as usize).copied().unwrap_or("?");
    let check = checks::current();
    println!("guest: unexpected {kind_name} exception ({group}) in check {check}");
    println!(
        "guest:   ESR {} ELR {} FAR {} SPSR {}",
        Hex(esr),
        Hex(frame.elr),
        Hex(far),
        Hex(frame.spsr)
    );
    println!("guest: verdict FAIL (unexpected exception in check {check})");
    hypercall::system_off(u64::from(check.number()))
}
