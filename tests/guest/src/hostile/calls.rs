//! Class 5 of the attack: HVC and SMC with random function ids and arguments, and PSCI CPU_ON
//! with bad entry points and bad target CPUs, each answer judged against docs/GUEST-ABI.md.
//!
//! Function ids come from four pools: any 32-bit value, the Arm architecture range (owner 0),
//! the PSCI range (owner 4) and the vendor hypervisor range (owner 6), fast and yielding,
//! SMC32 and SMC64; the upper half of `x0` and `x1..x6` are random. [`expected`] is the ABI's
//! table as a function: what `x0` must be for the call, or a set of statuses where the answer
//! depends on state the attack does not track (a dirty-log range that may or may not be a
//! window). Anything else -- another `x0`, or an undefined instruction where the ABI promises
//! an answer -- is counted as a wrong answer and the first one is printed.
//!
//! The calls whose documented effect would end or change the attack are never made with random
//! arguments: CPU_OFF, SYSTEM_OFF and SYSTEM_RESET (the VM ends or restarts), HV_INJECT_SERROR
//! (its own check covers it), HV_RAM_ALIAS (a RAM page at a random IPA would put guest RAM where
//! the attack stores at random) and HV_DIRTY_LOG_ENABLE (class 7 owns the windows). A random id
//! that is one of them becomes PSCI_VERSION.
//!
//! The conduit is `hvc #0` or `smc #0` (both trapped and answered the same way, the SMC stepped
//! over by the hypervisor), or an `hvc`/`smc` with another immediate, which is not an SMCCC
//! call and must answer NOT_SUPPORTED too (docs: KVM's `handle_smc`).

use core::arch::asm;

use super::rng::Rng;
use super::trap;
use crate::layout::{RAM_BASE, RAM_SIZE};
use crate::println;
use crate::uart::Hex;

/// SMCCC and PSCI statuses (DEN 0028 §7.1, DEN 0022 §5.2.2), as `x0` carries them.
const NOT_SUPPORTED: u64 = -1i64 as u64;
const INVALID_PARAMETER: u64 = -2i64 as u64;
const INVALID_RANGE: u64 = -3i64 as u64;
const ALREADY_ON: u64 = -4i64 as u64;
const INTERNAL_FAILURE: u64 = -6i64 as u64;

/// PSCI function ids (DEN 0022 §5.1) and ours (docs/GUEST-ABI.md).
const PSCI_VERSION: u32 = 0x8400_0000;
const CPU_SUSPEND: [u32; 2] = [0x8400_0001, 0xC400_0001];
const CPU_OFF: u32 = 0x8400_0002;
const CPU_ON_32: u32 = 0x8400_0003;
const CPU_ON_64: u32 = 0xC400_0003;
const AFFINITY_INFO_32: u32 = 0x8400_0004;
const AFFINITY_INFO_64: u32 = 0xC400_0004;
const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
const SYSTEM_OFF: u32 = 0x8400_0008;
const SYSTEM_RESET: u32 = 0x8400_0009;
const PSCI_FEATURES: u32 = 0x8400_000A;
const SMCCC_VERSION: u32 = 0x8000_0000;
const SMCCC_ARCH_FEATURES: u32 = 0x8000_0001;
const HV_DIRTY_LOG_ENABLE: u32 = 0xC600_0010;
const HV_DIRTY_LOG_GET_AND_CLEAR: u32 = 0xC600_0011;
const HV_STAGE2_FAULTS: u32 = 0xC600_0012;
const HV_BOOT_COUNT: u32 = 0xC600_0013;
const HV_INJECT_SERROR: u32 = 0xC600_0014;
const HV_RESET_LOOP: u32 = 0xC600_0015;
const HV_RAM_ALIAS: u32 = 0xC600_0016;
const HV_DIRTY_LOG_DISABLE: u32 = 0xC600_0017;
/// Never made with random arguments (module comment).
const FORBIDDEN: [u32; 6] = [
    CPU_OFF,
    SYSTEM_OFF,
    SYSTEM_RESET,
    HV_INJECT_SERROR,
    HV_RAM_ALIAS,
    HV_DIRTY_LOG_ENABLE,
];
/// PSCI_FEATURES answers SUCCESS for these (and CPU_SUSPEND's flags, 0, for CPU_SUSPEND).
const PSCI_LISTED: [u32; 13] = [
    PSCI_VERSION,
    PSCI_FEATURES,
    CPU_SUSPEND[0],
    CPU_SUSPEND[1],
    CPU_OFF,
    CPU_ON_32,
    CPU_ON_64,
    AFFINITY_INFO_32,
    AFFINITY_INFO_64,
    MIGRATE_INFO_TYPE,
    SYSTEM_OFF,
    SYSTEM_RESET,
    SMCCC_VERSION,
];
/// CPU_SUSPEND's power_state bits that are not reserved (original format).
const POWER_STATE_MASK: u32 = 0x0301_FFFF;
/// What `x0` answers PSCI_VERSION and SMCCC_VERSION: 1.1.
const VERSION_1_1: u64 = 0x0001_0001;

/// What the ABI lets a call answer in `x0`.
#[derive(Clone, Copy)]
enum Answer {
    /// Exactly this.
    Is(u64),
    /// One of these.
    OneOf(&'static [u64]),
}

impl Answer {
    fn allows(self, x0: u64) -> bool {
        match self {
            Answer::Is(value) => x0 == value,
            Answer::OneOf(values) => values.contains(&x0),
        }
    }
}

/// The ABI's answer to `function` with `x1`, `x2` (docs/GUEST-ABI.md, the hypercall table).
fn expected(function: u32, x1: u64, x2: u64) -> Answer {
    // SMC32 functions (bit 30 clear) read only the low halves of their arguments.
    let (x1, x2) = if function & (1 << 30) == 0 {
        (x1 & 0xFFFF_FFFF, x2 & 0xFFFF_FFFF)
    } else {
        (x1, x2)
    };
    let status = |ok: bool, otherwise: u64| Answer::Is(if ok { 0 } else { otherwise });
    match function {
        SMCCC_VERSION | PSCI_VERSION => Answer::Is(VERSION_1_1),
        SMCCC_ARCH_FEATURES => status(
            matches!(x1 as u32, SMCCC_VERSION | SMCCC_ARCH_FEATURES),
            NOT_SUPPORTED,
        ),
        PSCI_FEATURES => status(PSCI_LISTED.contains(&(x1 as u32)), NOT_SUPPORTED),
        f if CPU_SUSPEND.contains(&f) => {
            status(x1 as u32 & !POWER_STATE_MASK == 0, INVALID_PARAMETER)
        }
        CPU_ON_32 | CPU_ON_64 => Answer::Is(if x1 == 0 {
            ALREADY_ON
        } else {
            INVALID_PARAMETER
        }),
        AFFINITY_INFO_32 | AFFINITY_INFO_64 => status(x1 == 0 && x2 as u32 == 0, INVALID_PARAMETER),
        MIGRATE_INFO_TYPE => Answer::Is(2),
        HV_STAGE2_FAULTS | HV_BOOT_COUNT | HV_RESET_LOOP => Answer::Is(0),
        HV_DIRTY_LOG_GET_AND_CLEAR | HV_DIRTY_LOG_DISABLE => {
            Answer::OneOf(&[0, INVALID_RANGE, INTERNAL_FAILURE])
        }
        _ => Answer::Is(NOT_SUPPORTED),
    }
}

/// The conduits: `hvc #0`, `smc #0`, and two non-SMCCC immediates of each.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Conduit {
    Hvc0,
    Smc0,
    Hvc1,
    HvcMax,
    Smc1,
    SmcMax,
}

const CONDUITS: [Conduit; 6] = [
    Conduit::Hvc0,
    Conduit::Smc0,
    Conduit::Hvc1,
    Conduit::HvcMax,
    Conduit::Smc1,
    Conduit::SmcMax,
];

/// Makes the call; `x0` after it (left as it was if the instruction was undefined).
fn call(conduit: Conduit, x: [u64; 7]) -> u64 {
    let [mut x0, x1, x2, x3, x4, x5, x6] = x;
    macro_rules! conduit {
        ($insn:literal) => {
            // SAFETY: a hypercall: the hypervisor answers in x0..x3 (x4..x17 may change under
            // SMCCC 1.0, declared clobbered), or injects an undefined instruction that trap.rs
            // steps over. Not `nomem`: the handler writes atomics.
            unsafe {
                asm!($insn, inout("x0") x0, inout("x1") x1 => _, inout("x2") x2 => _,
                    inout("x3") x3 => _, inout("x4") x4 => _, inout("x5") x5 => _,
                    inout("x6") x6 => _, out("x7") _, out("x8") _, out("x9") _, out("x10") _,
                    out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _,
                    out("x16") _, out("x17") _, options(nostack))
            }
        };
    }
    match conduit {
        Conduit::Hvc0 => conduit!("hvc #0"),
        Conduit::Smc0 => conduit!("smc #0"),
        Conduit::Hvc1 => conduit!("hvc #1"),
        Conduit::HvcMax => conduit!("hvc #0xffff"),
        Conduit::Smc1 => conduit!("smc #1"),
        Conduit::SmcMax => conduit!("smc #0xffff"),
    }
    x0
}

/// A random function id from one of the four pools.
fn function_id(rng: &mut Rng) -> u32 {
    let low = rng.next() as u32;
    let fast = if rng.one_in(8) { 0 } else { 0x8000_0000 };
    let smc64 = if rng.one_in(2) { 0x4000_0000 } else { 0 };
    let id = match rng.below(4) {
        0 => low,
        1 => fast | smc64 | (low & 0xFFFF),
        2 => fast | smc64 | 0x0400_0000 | (low & 0x3F),
        _ => fast | smc64 | 0x0600_0000 | (low & 0x3F),
    };
    if FORBIDDEN.contains(&id) {
        PSCI_VERSION
    } else {
        id
    }
}

/// What class 5 found: calls made and answers outside the ABI.
#[derive(Clone, Copy, Default)]
pub struct Calls {
    pub made: u64,
    pub wrong: u64,
    pub undefined: u64,
}

/// An argument: random, or an interesting value (0, 1, all ones, an address in or near RAM).
fn argument(rng: &mut Rng) -> u64 {
    match rng.below(6) {
        0 => 0,
        1 => 1,
        2 => u64::MAX,
        3 => RAM_BASE + rng.below(RAM_SIZE + 0x1000),
        _ => rng.next(),
    }
}

/// Class 5: one random call (and, one time in four, a CPU_ON with bad arguments).
pub fn call_random(rng: &mut Rng, calls: &mut Calls) {
    let (function, conduit, x) = if rng.one_in(4) {
        cpu_on(rng)
    } else {
        let mut x = [0u64; 7];
        for word in x.iter_mut() {
            *word = argument(rng);
        }
        let function = function_id(rng);
        x[0] = (rng.next() & !0xFFFF_FFFF) | u64::from(function);
        (function, rng.pick(&CONDUITS), x)
    };
    let undefined_before = trap::tally().undefined;
    let x0 = call(conduit, x);
    calls.made += 1;
    let answer = match conduit {
        Conduit::Hvc0 | Conduit::Smc0 => expected(function, x[1], x[2]),
        _ => Answer::Is(NOT_SUPPORTED),
    };
    let undefined = trap::tally().undefined != undefined_before;
    calls.undefined += u64::from(undefined);
    if undefined || !answer.allows(x0) {
        calls.wrong += 1;
        if calls.wrong == 1 {
            super::registers::pl011_sane();
            println!(
                "hostile: call {:#x} (x1 {}, x2 {}) answered {}{}",
                function,
                Hex(x[1]),
                Hex(x[2]),
                Hex(x0),
                if undefined {
                    " (undefined instruction)"
                } else {
                    ""
                }
            );
        }
    }
}

/// A CPU_ON with a bad entry point (0, unaligned, in a hole, past RAM, all ones) and a target
/// that is the only CPU or none.
fn cpu_on(rng: &mut Rng) -> (u32, Conduit, [u64; 7]) {
    let function = if rng.one_in(2) { CPU_ON_32 } else { CPU_ON_64 };
    let target = match rng.below(4) {
        0 => 0,
        1 => 1 + rng.below(255),
        2 => 0xFF00_0000_0000 | rng.below(1 << 24),
        _ => rng.next(),
    };
    let entry = match rng.below(5) {
        0 => 0,
        1 => RAM_BASE + 1 + 4 * rng.below(1024),
        2 => 0x2000_0000,
        3 => RAM_BASE + RAM_SIZE + 4 * rng.below(1024),
        _ => u64::MAX,
    };
    let conduit = if rng.one_in(2) {
        Conduit::Hvc0
    } else {
        Conduit::Smc0
    };
    let x = [u64::from(function), target, entry, rng.next(), 0, 0, 0];
    (function, conduit, x)
}
