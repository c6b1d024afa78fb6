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
//! IRQs have their own arming too, [`expect_irqs`], which names the INTID a check is about to
//! cause and, like the SErrors' below, survives the hypercalls made while it is armed. While
//! armed, every IRQ taken at EL1h is handled as Linux's gic_handle_irq does, through the GIC's
//! CPU interface (`gic.rs`): ICC_IAR1_EL1 acknowledges it; the source is quietened (the virtual
//! timer stopped, after CNTV_CTL_EL0 is recorded; the PL011's transmit interrupt cleared and
//! masked, after UARTMIS is recorded; an SGI needs nothing); ICC_EOIR1_EL1 completes it. The
//! handler counts the expected INTID, any other INTID (a failure for the check, which
//! [`take_irqs`] reports) and spurious acknowledgements (INTID 1023, also a failure). It
//! returns with IRQs unmasked, so that a second interrupt is taken and counted, except after a
//! spurious one or once [`IRQ_STORM`] IRQs were taken: then PSTATE.I is set on return, so that
//! a line that never drops ends the check instead of hanging it.
//!
//! SErrors are asynchronous and have their own arming, [`expect_serrors`], which survives the
//! hypercalls (and their [`Expect::UndefinedHvc`]) made while it is armed: the SError check
//! makes several exits between the injection and the moment it unmasks PSTATE.A. While armed,
//! every SError taken at EL1h (ESR_EL1.EC 0x2F) is counted and the first one's ESR_EL1 and
//! ELR_EL1 recorded; the handler returns to the interrupted code with `eret` and PSTATE.A set
//! (as an IRQ storm returns with PSTATE.I set), so a virtual SError that stayed pending after
//! being taken shows up once per unmasking and is counted, instead of being taken forever.
//! [`serrors`] reads the count and [`disarm_serrors`] disarms.
//!
//! Anything else -- another class, an IRQ, FIQ or SError nobody armed, an exception from a
//! group the guest never uses -- is a failure: the handler prints ESR, ELR, FAR and SPSR (and,
//! for an IRQ once the GIC is up, the INTID it acknowledges) and ends the VM with the number of
//! the check that was running as the verdict.
//!
//! State shared with the interrupted code lives in atomics used only with plain loads and
//! stores (no exclusives, which need the MMU on). The provoking instructions are `asm!` blocks
//! without `nomem`, so the compiler reloads these after them.

use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};

use aarch64_cpu::registers::{ESR_EL1, FAR_EL1, Readable};

use crate::checks;
use crate::entry::ExceptionFrame;
use crate::gic::{self, Intid};
use crate::hypercall;
use crate::println;
use crate::uart::{self, Hex, Pl011};

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
static IRQS_ARMED: AtomicBool = AtomicBool::new(false);
static IRQ_EXPECTED: AtomicU32 = AtomicU32::new(0);
static IRQS_EXPECTED: AtomicU64 = AtomicU64::new(0);
static IRQS_OTHER: AtomicU64 = AtomicU64::new(0);
static IRQ_FIRST_OTHER: AtomicU32 = AtomicU32::new(0);
static IRQS_SPURIOUS: AtomicU64 = AtomicU64::new(0);
static IRQ_TIMER_CTL: AtomicU64 = AtomicU64::new(0);
static IRQ_UART_MIS: AtomicU32 = AtomicU32::new(0);
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

/// After this many IRQs in one armed window the handler returns with IRQs masked.
pub const IRQ_STORM: u64 = 8;

/// Arms IRQs (independently of [`expect`]) for `intid`, forgetting earlier counts: from now on
/// each IRQ taken is acknowledged, quietened, completed and counted, until [`take_irqs`].
pub fn expect_irqs(intid: Intid) {
    for count in [&IRQS_EXPECTED, &IRQS_OTHER, &IRQS_SPURIOUS] {
        count.store(0, Ordering::SeqCst);
    }
    IRQ_TIMER_CTL.store(0, Ordering::SeqCst);
    IRQ_UART_MIS.store(0, Ordering::SeqCst);
    IRQ_EXPECTED.store(intid.get(), Ordering::SeqCst);
    IRQS_ARMED.store(true, Ordering::SeqCst);
}

/// The IRQs taken since [`expect_irqs`].
#[derive(Clone, Copy)]
pub struct Irqs {
    /// Acknowledged with the armed INTID.
    pub expected: u64,
    /// Acknowledged with another INTID.
    pub other: u64,
    /// The first of those other INTIDs.
    pub first_other: u32,
    /// Acknowledged as spurious (INTID 1023).
    pub spurious: u64,
    /// CNTV_CTL_EL0 as the handler found it at the first virtual-timer interrupt.
    pub timer_ctl: u64,
    /// UARTMIS as the handler found it at the first PL011 interrupt.
    pub uart_mis: u32,
}

impl Irqs {
    /// Every IRQ taken.
    pub fn total(&self) -> u64 {
        self.expected + self.other + self.spurious
    }
}

/// The IRQs taken since [`expect_irqs`]; stays armed.
pub fn irqs() -> Irqs {
    Irqs {
        expected: IRQS_EXPECTED.load(Ordering::SeqCst),
        other: IRQS_OTHER.load(Ordering::SeqCst),
        first_other: IRQ_FIRST_OTHER.load(Ordering::SeqCst),
        spurious: IRQS_SPURIOUS.load(Ordering::SeqCst),
        timer_ctl: IRQ_TIMER_CTL.load(Ordering::SeqCst),
        uart_mis: IRQ_UART_MIS.load(Ordering::SeqCst),
    }
}

/// Disarms IRQs (from now on one is an unexpected exception again); what was taken.
pub fn take_irqs() -> Irqs {
    IRQS_ARMED.store(false, Ordering::SeqCst);
    irqs()
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
/// PSTATE.I in SPSR_EL1: IRQs masked.
const SPSR_I: u64 = 1 << 7;
/// CNTV_CTL_EL0.ISTATUS: the timer condition is met (Arm ARM, CNTV_CTL_EL0).
pub const CNTV_CTL_ISTATUS: u64 = 1 << 2;

/// Called by every vector with the saved state and the vector's kind (group * 4 + type).
#[unsafe(no_mangle)]
extern "C" fn guest_handle_exception(frame: &mut ExceptionFrame, kind: u64) {
    let esr = ESR_EL1.get();
    let far = FAR_EL1.get();
    let class = esr >> 26 & 0x3f;
    let expected = EXPECT.load(Ordering::SeqCst);
    if kind == KIND_IRQ_CURRENT_SPX && IRQS_ARMED.load(Ordering::SeqCst) {
        handle_irq(frame);
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
        // The hostile mode's attack recovers what it provokes (hostile/trap.rs).
        if crate::hostile::trap::recover(frame, esr) {
            return;
        }
    }
    unexpected(frame, kind, esr, far)
}

/// Bumps `count` with a plain load and store (no exclusives; one CPU, IRQs masked here).
fn bump(count: &AtomicU64) -> u64 {
    let value = count.load(Ordering::SeqCst) + 1;
    count.store(value, Ordering::SeqCst);
    value
}

/// An armed IRQ: acknowledge, quieten the source, complete, count (see the module comment).
fn handle_irq(frame: &mut ExceptionFrame) {
    let intid = gic::acknowledge();
    if intid == gic::SPURIOUS {
        // Nothing to complete (IHI 0069, 12.2, ICC_IAR1_EL1). Masked on return: an IRQ that
        // stays signalled with nothing to acknowledge would otherwise be taken forever.
        bump(&IRQS_SPURIOUS);
        frame.spsr |= SPSR_I;
        return;
    }
    quieten(intid);
    if intid == IRQ_EXPECTED.load(Ordering::SeqCst) {
        bump(&IRQS_EXPECTED);
    } else if bump(&IRQS_OTHER) == 1 {
        IRQ_FIRST_OTHER.store(intid, Ordering::SeqCst);
    }
    gic::end(intid);
    if irqs().total() >= IRQ_STORM {
        frame.spsr |= SPSR_I;
    }
}

/// Lowers the interrupt line of a source the guest uses, before its EOI: the virtual timer
/// (stopped) and the PL011 (transmit interrupt cleared and masked). SGIs are edge-triggered:
/// acknowledging one consumed it. The first sighting of each source's state is recorded.
fn quieten(intid: u32) {
    if intid == gic::VTIMER.get() {
        let ctl: u64;
        // SAFETY: reads, then clears, CNTV_CTL_EL0: only this guest's virtual timer stops.
        unsafe {
            core::arch::asm!(
                "mrs {ctl}, cntv_ctl_el0",
                "msr cntv_ctl_el0, xzr",
                "isb",
                ctl = out(reg) ctl,
                options(nostack),
            );
        }
        if IRQ_TIMER_CTL.load(Ordering::SeqCst) == 0 {
            IRQ_TIMER_CTL.store(ctl, Ordering::SeqCst);
        }
    } else if intid == gic::PL011.get() {
        let uart = Pl011::console();
        let mis = uart.masked_interrupts();
        uart.clear_interrupts(uart::INT_TX);
        uart.mask_interrupts(uart::INT_TX);
        if IRQ_UART_MIS.load(Ordering::SeqCst) == 0 {
            IRQ_UART_MIS.store(mis, Ordering::SeqCst);
        }
    }
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
    if kind == KIND_IRQ_CURRENT_SPX && gic::initialised() {
        println!("guest:   ICC_IAR1_EL1 INTID {}", gic::acknowledge());
    }
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
