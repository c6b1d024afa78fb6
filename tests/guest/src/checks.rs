//! The numbered checks, their outcomes, and the small checks (boot state, MMU, PSCI, stage-2
//! fault counters, the hole); RAM and dirty logging have their own files.
//!
//! A check's number is the verdict the guest passes to SYSTEM_OFF when that check is the first
//! to fail, and it is also the verdict when an unexpected exception or a panic happens while it
//! runs ([`current`]). A check that needs our hypervisor and finds none is `Skipped`, never
//! failed, so the guest also passes on plain QEMU.

use core::fmt;
use core::sync::atomic::{AtomicU8, Ordering};

use crate::exception::{self, CNTV_CTL_ISTATUS, EC_DATA_ABORT_SAME_EL, Expect};
use crate::gic;
use crate::hypercall::{self, HvcError};
use crate::layout::HOLE;
use crate::mmu;
use crate::println;
use crate::uart::Hex;

/// The checks, numbered as in the verdict.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Check {
    /// Entered at EL1 with the ABI's boot state.
    Boot = 1,
    /// Own stage-1 MMU and caches on.
    Mmu = 2,
    /// Console output (if you can read it, it passed).
    Console = 3,
    /// RAM patterns over pages and blocks.
    Memory = 4,
    /// PSCI_VERSION.
    PsciVersion = 5,
    /// Dirty logging.
    DirtyLog = 6,
    /// HV_STAGE2_FAULTS.
    Stage2Faults = 7,
    /// The hole aborts.
    Hole = 8,
    /// Verdict and SYSTEM_OFF.
    Verdict = 9,
    /// WFI blocks until the virtual timer fires.
    VirtualTimer = 10,
    /// Debug, PMU, physical-timer and SCTLR_EL1 writes leave the system working
    /// (`isolation.rs`).
    Isolation = 11,
    /// WFE with the virtual timer off returns (`wfe.rs`).
    Wfe = 12,
    /// A fetch from the hole takes an instruction abort (`hole_fetch.rs`).
    HoleFetch = 13,
    /// HV_INJECT_SERROR: a virtual SError stays pending across exits while masked and is taken
    /// once when unmasked (`serror.rs`).
    SError = 14,
    /// An SGI sent to itself through ICC_SGI1R_EL1 is taken once (`interrupts.rs`).
    SoftwareInterrupt = 15,
    /// The PL011's transmit interrupt arrives once as INTID 33 and stops when the guest lowers
    /// the line (`interrupts.rs`).
    DeviceInterrupt = 16,
    /// A device page becomes RAM and a device again (HV_RAM_ALIAS) under the stage-2 MMIO
    /// markers (`mmio_map.rs`).
    MmioToRam = 17,
    /// The hostile mode's attack and its server checks (`hostile/`).
    Hostile = 18,
}

impl Check {
    const ALL: [Check; 18] = [
        Check::Boot,
        Check::Mmu,
        Check::Console,
        Check::Memory,
        Check::PsciVersion,
        Check::DirtyLog,
        Check::Stage2Faults,
        Check::Hole,
        Check::Verdict,
        Check::VirtualTimer,
        Check::Isolation,
        Check::Wfe,
        Check::HoleFetch,
        Check::SError,
        Check::SoftwareInterrupt,
        Check::DeviceInterrupt,
        Check::MmioToRam,
        Check::Hostile,
    ];

    /// The verdict number.
    pub fn number(self) -> u8 {
        self as u8
    }

    fn name(self) -> &'static str {
        match self {
            Check::Boot => "boot state",
            Check::Mmu => "stage-1 MMU",
            Check::Console => "console",
            Check::Memory => "memory patterns",
            Check::PsciVersion => "PSCI version",
            Check::DirtyLog => "dirty log",
            Check::Stage2Faults => "stage-2 faults",
            Check::Hole => "hole access",
            Check::Verdict => "verdict",
            Check::VirtualTimer => "virtual timer",
            Check::Isolation => "isolation",
            Check::Wfe => "WFE with the timer off",
            Check::HoleFetch => "hole fetch",
            Check::SError => "virtual SError",
            Check::SoftwareInterrupt => "software-generated interrupt",
            Check::DeviceInterrupt => "device interrupt",
            Check::MmioToRam => "device page to RAM and back",
            Check::Hostile => "hostile mode",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.number(), self.name())
    }
}

static CURRENT: AtomicU8 = AtomicU8::new(Check::Boot as u8);

/// Marks `check` as running.
pub fn begin(check: Check) {
    CURRENT.store(check.number(), Ordering::SeqCst);
}

/// The running check.
pub fn current() -> Check {
    let number = CURRENT.load(Ordering::SeqCst);
    Check::ALL
        .into_iter()
        .find(|check| check.number() == number)
        .unwrap_or(Check::Verdict)
}

/// How a check ended.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything it checks held.
    Passed,
    /// It needs our hypervisor and there is none.
    Skipped,
    /// What went wrong (the details were printed).
    Failed(&'static str),
}

/// Asks HV_STAGE2_FAULTS (harmless, read-only) whether our hypervisor is there.
pub fn detect_hypervisor() -> bool {
    match hypercall::stage2_faults() {
        Ok(_) => {
            println!("guest: hypervisor detected (HV_STAGE2_FAULTS answers)");
            true
        }
        Err(HvcError::NoHypervisor(absence)) => {
            let why = absence.describe();
            println!("guest: no hypervisor ({why}): its checks will be skipped");
            false
        }
        Err(HvcError::Failed(status)) => {
            println!("guest: hypervisor detected (HV_STAGE2_FAULTS returned {status})");
            true
        }
    }
}

/// Registers as `_start` found them (docs/GUEST-ABI.md, "Boot state").
#[derive(Clone, Copy)]
pub struct BootState {
    /// `x0`: the device tree's IPA, 0 for the test guest.
    pub x0: u64,
    /// CurrentEL.
    pub current_el: u64,
    /// DAIF.
    pub daif: u64,
    /// SCTLR_EL1.
    pub sctlr: u64,
}

/// SCTLR_EL1.M, .C and .I: translation, data cache, instruction cache.
const SCTLR_M_C_I: u64 = (1 << 0) | (1 << 2) | (1 << 12);
/// DAIF with D, A, I and F all masked.
const DAIF_ALL: u64 = 0xf << 6;

/// Check 1. `x0 = 0` is the hypervisor's promise only; QEMU may pass a device tree.
pub fn boot(state: BootState, hypervisor: bool) -> Outcome {
    let el = (state.current_el >> 2) & 3;
    println!(
        "guest: entered at EL{el}: x0 {}, DAIF {}, SCTLR_EL1 {}",
        Hex(state.x0),
        Hex(state.daif),
        Hex(state.sctlr)
    );
    let failure = if el != 1 {
        Some("not entered at EL1")
    } else if state.daif & DAIF_ALL != DAIF_ALL {
        Some("DAIF not masked at entry")
    } else if state.sctlr & SCTLR_M_C_I != 0 {
        Some("MMU or caches on at entry")
    } else if hypervisor && state.x0 != 0 {
        Some("x0 not 0 at entry")
    } else {
        None
    };
    failure.map_or(Outcome::Passed, Outcome::Failed)
}

/// Check 2: `mmu::enable` ran before anything was printed; here its result is read back.
pub fn mmu() -> Outcome {
    if mmu::translation_and_caches_on() {
        println!(
            "guest: stage-1 MMU on (4 KiB pages and 2 MiB blocks, SCTLR_EL1 {})",
            Hex(mmu::SCTLR_VALUE)
        );
        Outcome::Passed
    } else {
        println!("guest: SCTLR_EL1.M/C/I did not stick");
        Outcome::Failed("MMU or caches not on")
    }
}

/// Check 5. Our hypervisor must report PSCI 1.1; another PSCI implementation any version.
pub fn psci_version(hypervisor: bool) -> Outcome {
    match hypercall::psci_version() {
        Ok((major, minor)) => {
            println!("guest: PSCI version {major}.{minor}");
            if hypervisor && (major, minor) != (1, 1) {
                Outcome::Failed("PSCI version is not 1.1")
            } else {
                Outcome::Passed
            }
        }
        Err(HvcError::NoHypervisor(absence)) => {
            println!(
                "guest: PSCI version skipped (no hypervisor: {})",
                absence.describe()
            );
            Outcome::Skipped
        }
        Err(HvcError::Failed(status)) => {
            println!("guest: PSCI_VERSION returned {status}");
            Outcome::Failed("PSCI_VERSION failed")
        }
    }
}

/// Check 7: the counters are printed, not judged (how many faults the earlier checks cost is
/// the hypervisor's choice of mapping size); the call itself must work.
pub fn stage2_faults() -> Outcome {
    match hypercall::stage2_faults() {
        Ok(faults) => {
            println!(
                "guest: stage-2 faults: 4k={} 2m={} perm={}",
                faults.pages, faults.blocks, faults.permission
            );
            Outcome::Passed
        }
        Err(HvcError::NoHypervisor(absence)) => {
            let why = absence.describe();
            println!("guest: stage-2 faults skipped (no hypervisor: {why})");
            Outcome::Skipped
        }
        Err(HvcError::Failed(status)) => {
            println!("guest: HV_STAGE2_FAULTS returned {status}");
            Outcome::Failed("HV_STAGE2_FAULTS failed")
        }
    }
}

/// DFSC of a synchronous external abort, not on a table walk.
const DFSC_EXTERNAL: u64 = 0x10;

/// Check 8: a 32-bit load from the hole must take a synchronous external abort with FAR = the
/// hole. Without our hypervisor, whatever the machine has there may answer instead.
pub fn hole(hypervisor: bool) -> Outcome {
    /// What the load's destination holds if the load never completes.
    const UNTOUCHED: u32 = 0xdead_beef;
    let mut value = UNTOUCHED;
    exception::expect(Expect::DataAbort);
    // SAFETY: HOLE is mapped Device-nGnRE at stage 1 (mmu.rs), so the load is performed exactly
    // once, not speculated. It either returns a value or takes the data abort armed above,
    // which `exception` records and steps over (ELR += 4), resuming after this instruction.
    // Not `readonly`: the handler writes the exception module's atomics during this asm.
    unsafe {
        core::arch::asm!(
            "ldr {value:w}, [{address}]",
            address = in(reg) HOLE,
            value = inout(reg) value,
            options(nostack),
        );
    }
    match exception::take_abort() {
        Some(abort) => {
            let (esr, far) = (Hex(abort.esr), Hex(abort.far));
            let failure =
                if abort.class() != EC_DATA_ABORT_SAME_EL || abort.status() != DFSC_EXTERNAL {
                    Some("hole abort is not a synchronous external abort")
                } else if abort.far != HOLE {
                    Some("hole abort has the wrong FAR")
                } else {
                    None
                };
            match failure {
                None => {
                    println!("guest: hole access aborted as expected (ESR {esr}, FAR {far})");
                    Outcome::Passed
                }
                Some(what) => {
                    println!("guest: hole access aborted with ESR {esr}, FAR {far}: {what}");
                    Outcome::Failed(what)
                }
            }
        }
        None if hypervisor => {
            println!("guest: hole access did not abort (read {value:#x})");
            Outcome::Failed("hole access did not abort")
        }
        None => {
            println!("guest: hole access skipped (no hypervisor; read {value:#x}, no abort)");
            Outcome::Skipped
        }
    }
}

/// Check 10: a WFI blocks until the guest's virtual timer fires, and the timer's interrupt
/// arrives through the GIC as INTID 27, exactly once (docs/GUEST-ABI.md, "Interrupts"). The
/// guest enables INTID 27 at its redistributor first; the handler (exception.rs) acknowledges
/// it, checks the INTID, stops the timer and completes it. After the WFI, IRQs stay unmasked
/// across one more exit (PSCI_VERSION): a timer interrupt injected again although the timer is
/// off would be taken there and counted.
///
/// Needs the hypervisor (the check's meaning is the hypervisor's WFI and its timer injection);
/// the GIC code itself is the one checks 15 and 16 run under plain QEMU too.
pub fn virtual_timer(hypervisor: bool) -> Outcome {
    if !hypervisor {
        println!("guest: virtual timer skipped (no hypervisor)");
        return Outcome::Skipped;
    }
    if let Err(what) = gic::init() {
        println!("guest: virtual timer: GIC setup failed: {what}");
        return Outcome::Failed(what);
    }
    gic::enable(gic::VTIMER, gic::DEFAULT_PRIORITY);
    let frequency: u64;
    // SAFETY: reading CNTFRQ_EL0 has no side effect.
    unsafe { core::arch::asm!("mrs {}, cntfrq_el0", out(reg) frequency, options(nomem, nostack)) };
    let ticks = frequency / 1000; // 1 ms
    exception::expect_irqs(gic::VTIMER);
    // SAFETY: programs and enables this guest's virtual timer, unmasks IRQs and waits; the
    // armed handler (exception.rs) stops the timer and completes the interrupt. Not `nomem`:
    // the handler writes the exception module's atomics.
    unsafe {
        core::arch::asm!(
            "msr cntv_tval_el0, {ticks}",
            "mov {one}, #1",
            "msr cntv_ctl_el0, {one}",
            "isb",
            "msr daifclr, #2",
            "wfi",
            "isb",
            ticks = in(reg) ticks,
            one = out(reg) _,
            options(nostack),
        );
    }
    let woken_by = exception::irqs();
    let _ = hypercall::psci_version();
    // SAFETY: masks IRQs again; stops the timer in case the handler never ran.
    unsafe {
        core::arch::asm!(
            "msr daifset, #2",
            "msr cntv_ctl_el0, xzr",
            "isb",
            options(nostack)
        )
    };
    let disabled = gic::disable(gic::VTIMER);
    let irqs = exception::take_irqs();
    if let Err(what) = exactly_once(&irqs, "virtual timer") {
        return Outcome::Failed(what);
    }
    if woken_by.expected != 1 {
        println!("guest: virtual timer: WFI returned before the interrupt was taken");
        return Outcome::Failed("WFI returned without the timer interrupt");
    }
    if irqs.timer_ctl & CNTV_CTL_ISTATUS == 0 {
        println!(
            "guest: virtual timer: INTID 27 taken with CNTV_CTL_EL0 {} (ISTATUS clear)",
            Hex(irqs.timer_ctl)
        );
        return Outcome::Failed("the timer interrupt arrived before the timer fired");
    }
    if let Err(what) = disabled {
        println!("guest: virtual timer: disabling INTID 27: {what}");
        return Outcome::Failed(what);
    }
    println!("guest: WFI woke on the virtual timer's interrupt");
    Outcome::Passed
}

/// Judges an armed window's IRQs: exactly one, with the armed INTID, nothing spurious and no
/// other INTID, and every one completed (ICC_RPR_EL1 idle again: an interrupt acknowledged but
/// never ended would keep its priority running and block every later one). `what` names the
/// source in the console line of a failure.
pub fn exactly_once(irqs: &exception::Irqs, what: &str) -> Result<(), &'static str> {
    let running = gic::running_priority();
    if running != gic::IDLE_PRIORITY {
        println!("guest: {what}: ICC_RPR_EL1 reads {running:#x} after the interrupt, not idle");
        return Err("an acknowledged interrupt was not completed");
    }
    if irqs.other != 0 {
        println!(
            "guest: {what}: {} IRQs with another INTID, the first {}",
            irqs.other, irqs.first_other
        );
        return Err("an IRQ with an unexpected INTID was acknowledged");
    }
    if irqs.spurious != 0 {
        println!(
            "guest: {what}: {} spurious IRQs (INTID 1023)",
            irqs.spurious
        );
        return Err("a spurious IRQ was taken");
    }
    match irqs.expected {
        1 => Ok(()),
        0 => {
            println!("guest: {what}: no interrupt taken");
            Err("the interrupt never arrived")
        }
        n => {
            println!("guest: {what}: interrupt taken {n} times");
            Err("the interrupt arrived more than once")
        }
    }
}
