//! Recovery from the exceptions the attack provokes, and their tally.
//!
//! While the attack runs ([`arm`]), `exception.rs` hands every synchronous exception taken at
//! EL1h that no check armed to [`recover`] before calling it unexpected. Three kinds come back:
//!
//! - a data abort (ESR_EL1.EC 0x25): what the ABI injects for an access the hypervisor cannot
//!   or will not complete (a hole, a device register that does not decode, an access with ISV
//!   clear, the guest's own stage-1 walk into a hole), and also what stage 1 raises locally
//!   (alignment on Device memory, an output address past the PA size, an unmapped guard
//!   page). The handler steps over the instruction (ELR_EL1 + 4).
//! - an instruction abort (EC 0x21): the fetch probes branch with `blr` into a non-memory IPA
//!   ([`branching`] is set around the branch). ELR_EL1 is the address that could not be
//!   fetched, so the handler resumes at the link register, as `hole_fetch.rs` does.
//! - an undefined instruction (EC 0x00): a trapped system register outside the RAZ/WI groups,
//!   a write to a read-only register, an `hvc`/`smc` the hypervisor refused. Stepped over.
//!
//! A fetch probe answered with anything but an instruction abort is a finding (the guest
//! executed something at an IPA with no memory, or the fetch was reported as a data access):
//! it is counted ([`Tally::misreported`]) and the handler resumes at the link register too, so
//! the run goes on and reports it.
//!
//! Counters are plain loads and stores of atomics, as in `exception.rs` (one CPU, exceptions
//! masked in the handler).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::entry::ExceptionFrame;

/// ESR_EL1.EC: undefined instruction, instruction abort, data abort (same EL).
const EC_UNKNOWN: u64 = 0x00;
const EC_INSTRUCTION_ABORT: u64 = 0x21;
const EC_DATA_ABORT: u64 = 0x25;

static ARMED: AtomicBool = AtomicBool::new(false);
static BRANCHING: AtomicBool = AtomicBool::new(false);
static EXTERNAL: AtomicU64 = AtomicU64::new(0);
static WALK: AtomicU64 = AtomicU64::new(0);
static LOCAL: AtomicU64 = AtomicU64::new(0);
static OTHER_DATA: AtomicU64 = AtomicU64::new(0);
static FETCH: AtomicU64 = AtomicU64::new(0);
static UNDEFINED: AtomicU64 = AtomicU64::new(0);
static MISREPORTED: AtomicU64 = AtomicU64::new(0);

/// What the attack's exceptions were, by kind.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Data aborts with a synchronous external abort status (DFSC 0x10): the hypervisor's.
    pub external: u64,
    /// Data aborts on the guest's own stage-1 walk (DFSC 0x14..=0x17, external on a walk).
    pub walk: u64,
    /// Data aborts stage 1 raised by itself: address size (0x00..=0x03), translation
    /// (0x04..=0x07), alignment (0x21).
    pub local: u64,
    /// Data aborts with any other status.
    pub other_data: u64,
    /// Instruction aborts of the fetch probes.
    pub fetch: u64,
    /// Undefined instructions.
    pub undefined: u64,
    /// Fetch probes answered with another exception than an instruction abort (a finding).
    pub misreported: u64,
}

impl Tally {
    /// Every exception counted.
    pub fn total(&self) -> u64 {
        self.external + self.walk + self.local + self.other_data + self.fetch + self.undefined
    }

    /// Every data abort counted.
    pub fn aborts(&self) -> u64 {
        self.external + self.walk + self.local + self.other_data
    }
}

/// From now on unclaimed synchronous exceptions are recovered and counted.
pub fn arm() {
    ARMED.store(true, Ordering::SeqCst);
}

/// Unclaimed exceptions are unexpected again.
pub fn disarm() {
    ARMED.store(false, Ordering::SeqCst);
}

/// Marks a fetch probe's branch as in flight (`true`) or done (`false`).
pub fn branching(on: bool) {
    BRANCHING.store(on, Ordering::SeqCst);
}

/// The counts so far.
pub fn tally() -> Tally {
    Tally {
        external: EXTERNAL.load(Ordering::SeqCst),
        walk: WALK.load(Ordering::SeqCst),
        local: LOCAL.load(Ordering::SeqCst),
        other_data: OTHER_DATA.load(Ordering::SeqCst),
        fetch: FETCH.load(Ordering::SeqCst),
        undefined: UNDEFINED.load(Ordering::SeqCst),
        misreported: MISREPORTED.load(Ordering::SeqCst),
    }
}

fn bump(count: &AtomicU64) {
    count.store(count.load(Ordering::SeqCst) + 1, Ordering::SeqCst);
}

/// Called by `exception.rs` for a synchronous exception at EL1h that nothing else claimed:
/// true when it was recovered (the frame now resumes past it).
pub fn recover(frame: &mut ExceptionFrame, esr: u64) -> bool {
    if !ARMED.load(Ordering::SeqCst) {
        return false;
    }
    let class = esr >> 26 & 0x3f;
    let status = esr & 0x3f;
    if BRANCHING.load(Ordering::SeqCst) {
        // The probe's branch: whatever happened, go back to its link register.
        bump(if class == EC_INSTRUCTION_ABORT {
            &FETCH
        } else {
            &MISREPORTED
        });
        BRANCHING.store(false, Ordering::SeqCst);
        frame.elr = frame.x[30];
        return true;
    }
    match class {
        EC_DATA_ABORT => bump(match status {
            0x10 => &EXTERNAL,
            0x14..=0x17 => &WALK,
            0x00..=0x07 | 0x21 => &LOCAL,
            _ => &OTHER_DATA,
        }),
        EC_UNKNOWN => bump(&UNDEFINED),
        _ => {
            // Unexpected: `exception.rs` reports it next, on a UART the attack may have turned
            // off.
            super::registers::pl011_sane();
            return false;
        }
    }
    frame.elr += 4;
    true
}
