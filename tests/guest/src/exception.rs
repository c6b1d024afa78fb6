//! What the guest does with an exception: the Rust half of the vectors in `entry.rs`.
//!
//! The guest expects exactly three synchronous exceptions, each only while the code that
//! provokes it has said so with [`expect`]:
//!
//! - [`Expect::UndefinedHvc`]: an `hvc` on a machine without EL2 is UNDEFINED (EC 0x00,
//!   ARM ARM, ESR_EL1). ELR_EL1 points at the `hvc`; the handler steps over it and returns
//!   `x0 = -1` (NOT_SUPPORTED), so the hypercall wrapper reports "no hypervisor".
//! - [`Expect::DataAbort`]: the hole access, for which the ABI injects a synchronous external
//!   abort (EC 0x25 "Data Abort taken without a change in Exception level"). The handler
//!   records ESR_EL1, FAR_EL1 and ELR_EL1 and steps over the load (ELR_EL1 += 4).
//! - [`Expect::InstructionAbort`]: a `blr` to the hole, for which the ABI injects a synchronous
//!   external abort on the fetch (EC 0x21 "Instruction Abort taken without a change in
//!   Exception level"). ELR_EL1 is the hole itself, so stepping over is no recovery: the
//!   handler records ESR_EL1, FAR_EL1 and ELR_EL1 and returns to the `blr`'s link (`x30`), as
//!   if the branch had returned at once. A data abort (EC 0x25) is accepted and recorded the
//!   same way, so that a hypervisor reporting the fetch as a data access fails the check with
//!   the syndrome it injected rather than as an unexpected exception.
//!
//! An expectation covers one exception and is disarmed by it or by the `take_*` call after
//! the provoking instruction.
//!
//! SErrors are asynchronous and have their own arming, [`expect_serrors`], which survives the
//! hypercalls (and their [`Expect::UndefinedHvc`]) made while it is armed: the SError check
//! makes several exits between the injection and the moment it unmasks PSTATE.A. While armed,
//! every SError taken at EL1h (ESR_EL1.EC 0x2F) is counted and the first one's ESR_EL1 and
//! ELR_EL1 recorded; the handler returns to the interrupted code with `eret` and PSTATE.A set
//! (as the timer IRQ returns with PSTATE.I set), so a virtual SError that stayed pending after
//! being taken shows up once per unmasking and is counted, instead of being taken forever.
//! [`serrors`] reads the count and [`disarm_serrors`] disarms.
//!
//! Anything else -- another class, an IRQ, FIQ or SError nobody armed, an exception from a
//! group the guest never uses -- is a failure: the handler prints ESR, ELR, FAR and SPSR and
//! ends the VM with the number of the check that was running as the verdict.
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
/// ESR_EL1.EC for an instruction abort taken without a change in exception level.
pub const EC_INSTRUCTION_ABORT_SAME_EL: u64 = 0x21;
/// ESR_EL1.EC for an SError interrupt.
pub const EC_SERROR: u64 = 0x2F;

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
    /// The next branch (a `blr`, whose link is the way back) may take a synchronous
    /// instruction abort on its target.
    InstructionAbort = 4,
}

static EXPECT: AtomicU8 = AtomicU8::new(Expect::Nothing as u8);
static UNDEFINED_HVC: AtomicBool = AtomicBool::new(false);
static ABORT_TAKEN: AtomicBool = AtomicBool::new(false);
static ABORT_ESR: AtomicU64 = AtomicU64::new(0);
static ABORT_FAR: AtomicU64 = AtomicU64::new(0);
static ABORT_ELR: AtomicU64 = AtomicU64::new(0);
static TIMER_IRQS: AtomicU64 = AtomicU64::new(0);
static SERRORS_ARMED: AtomicBool = AtomicBool::new(false);
static SERRORS: AtomicU64 = AtomicU64::new(0);
static SERROR_ESR: AtomicU64 = AtomicU64::new(0);
static SERROR_ELR: AtomicU64 = AtomicU64::new(0);

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

/// Arms SErrors (independently of [`expect`]): from now on each SError taken is counted and
/// returns to the interrupted code with PSTATE.A set, until [`disarm_serrors`].
pub fn expect_serrors() {
    SERRORS.store(0, Ordering::SeqCst);
    SERRORS_ARMED.store(true, Ordering::SeqCst);
}

/// The SErrors taken since [`expect_serrors`].
#[derive(Clone, Copy)]
pub struct SErrors {
    /// How many.
    pub count: u64,
    /// ESR_EL1 of the first.
    pub esr: u64,
    /// ELR_EL1 of the first: the instruction it interrupted.
    pub elr: u64,
}

/// The SErrors taken since [`expect_serrors`]; stays armed (see [`disarm_serrors`]).
pub fn serrors() -> SErrors {
    SErrors {
        count: SERRORS.load(Ordering::SeqCst),
        esr: SERROR_ESR.load(Ordering::SeqCst),
        elr: SERROR_ELR.load(Ordering::SeqCst),
    }
}

/// Disarms SErrors: from now on one is an unexpected exception again.
pub fn disarm_serrors() {
    SERRORS_ARMED.store(false, Ordering::SeqCst);
}

/// The syndrome of a data or instruction abort.
#[derive(Clone, Copy)]
pub struct Abort {
    /// ESR_EL1.
    pub esr: u64,
    /// FAR_EL1: the faulting virtual address.
    pub far: u64,
    /// ELR_EL1 when the abort was taken: the aborted instruction.
    pub elr: u64,
}

impl Abort {
    /// ESR_EL1.EC.
    pub fn class(&self) -> u64 {
        self.esr >> 26 & 0x3f
    }

    /// ESR_EL1.ISS.DFSC or IFSC: the data or instruction fault status code.
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
        elr: ABORT_ELR.load(Ordering::SeqCst),
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
/// `kind` of an SError taken at EL1h.
const KIND_SERROR_CURRENT_SPX: u64 = 7;
/// PSTATE.A in SPSR_EL1: SErrors masked.
const SPSR_A: u64 = 1 << 8;

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
    if kind == KIND_SERROR_CURRENT_SPX && SERRORS_ARMED.load(Ordering::SeqCst) {
        // Asynchronous: ELR_EL1 is the next instruction of the interrupted code, which `eret`
        // resumes untouched. A second SError (the pending state not cleared when this one was
        // taken) waits until the code unmasks PSTATE.A again.
        if SERRORS.load(Ordering::SeqCst) == 0 {
            SERROR_ESR.store(esr, Ordering::SeqCst);
            SERROR_ELR.store(frame.elr, Ordering::SeqCst);
        }
        SERRORS.store(SERRORS.load(Ordering::SeqCst) + 1, Ordering::SeqCst);
        frame.spsr |= SPSR_A;
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
            record_abort(frame, esr, far);
            frame.elr += 4;
            return;
        }
        if expected == Expect::InstructionAbort as u8
            && (class == EC_INSTRUCTION_ABORT_SAME_EL || class == EC_DATA_ABORT_SAME_EL)
        {
            record_abort(frame, esr, far);
            // ELR_EL1 is the address that could not be fetched: resume at the branch's link.
            frame.elr = frame.x[30];
            return;
        }
    }
    unexpected(frame, kind, esr, far)
}

/// Disarms the expectation and records the abort for [`take_abort`].
fn record_abort(frame: &ExceptionFrame, esr: u64, far: u64) {
    EXPECT.store(Expect::Nothing as u8, Ordering::SeqCst);
    ABORT_ESR.store(esr, Ordering::SeqCst);
    ABORT_FAR.store(far, Ordering::SeqCst);
    ABORT_ELR.store(frame.elr, Ordering::SeqCst);
    ABORT_TAKEN.store(true, Ordering::SeqCst);
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
