//! The test guest: a bare-metal EL1 program that checks, from inside a VM, the contract of
//! docs/GUEST-ABI.md -- boot state, its own stage-1 MMU over the VM's memory map, RAM faulted
//! in through pages and blocks, PSCI, dirty logging, the stage-2 fault counters, the abort
//! injected for the hole, the virtual timer's interrupt through the GIC, that writes to debug,
//! PMU and physical-timer registers leave the rest of the system working, that WFE with the
//! timer off returns, the instruction abort injected for a fetch from the hole, a virtual SError
//! that stays pending while masked and is taken once, an SGI and the PL011's interrupt through
//! the GIC -- and ends with PSCI SYSTEM_OFF carrying a verdict.
//!
//! When the VM's first virtio transport is a block device (tests/manifests/hostile.toml) the
//! guest runs its hostile mode instead (`hostile/`): a seeded attack of a million operations,
//! then proof that every server still answers.
//!
//! When the manifest asks for a reset loop (HV_RESET_LOOP = N > 0), each boot before the N-th
//! reset only prints its boot count and resets again; the boot after the N-th runs the checks.
//!
//! Console lines all start with `guest: `; the last is `guest: verdict PASS` or
//! `guest: verdict FAIL (<what>)`, and SYSTEM_OFF gets `x1` = 0 or the number of the first
//! failed check (`checks::Check`). Checks that need our hypervisor are skipped, not failed,
//! when there is none, so the same ELF runs under plain QEMU (which exits 0 on SYSTEM_OFF
//! whatever the verdict: read the console there).
//!
//! Built for `aarch64-unknown-none` (hard float): unlike the servers, a guest owns its FP/SIMD
//! state, and `_start` enables it before any Rust code runs.

#![no_std]
#![no_main]

mod bench;
mod checks;
mod dirty_log;
mod entry;
mod exception;
mod gic;
mod hole_fetch;
mod hostile;
mod hypercall;
mod interrupts;
mod isolation;
mod layout;
mod memory;
mod mmio_map;
mod mmu;
mod serror;
mod uart;
mod wfe;

use core::panic::PanicInfo;

use checks::{BootState, Check, Outcome};

/// The first failure seen, if any.
struct Verdict {
    first_failure: Option<(Check, &'static str)>,
}

impl Verdict {
    /// Runs `check` (marked as the current check while it runs) and records its outcome.
    fn run(&mut self, check: Check, body: impl FnOnce() -> Outcome) {
        checks::begin(check);
        if let Outcome::Failed(what) = body() {
            println!("guest: check {check} FAILED: {what}");
            self.first_failure.get_or_insert((check, what));
        }
    }

    /// Prints the verdict and ends the VM with it.
    fn finish(self) -> ! {
        checks::begin(Check::Verdict);
        match self.first_failure {
            None => {
                println!("guest: verdict PASS");
                hypercall::system_off(0)
            }
            Some((check, what)) => {
                println!("guest: verdict FAIL (check {check}: {what})");
                hypercall::system_off(u64::from(check.number()))
            }
        }
    }
}

/// Called by `_start` with the registers it found at entry, on the boot stack, MMU off.
#[unsafe(no_mangle)]
extern "C" fn guest_main(x0: u64, current_el: u64, daif: u64, sctlr: u64) -> ! {
    let boot = BootState {
        x0,
        current_el,
        daif,
        sctlr,
    };
    // Translation first: with the MMU off every data access is Device memory, where compiled
    // code's unaligned or exclusive accesses would fault.
    mmu::enable();
    // SErrors can be taken from now on (vectors are in place): an asynchronous abort shows up
    // as an unexpected exception instead of staying pending. IRQ and FIQ stay masked.
    // SAFETY: clearing PSTATE.A only lets SErrors be taken, by the vectors `_start` installed.
    unsafe { core::arch::asm!("msr daifclr, #4", options(nomem, nostack)) };

    let mut verdict = Verdict {
        first_failure: None,
    };
    checks::begin(Check::Console);
    println!("guest: test guest up (PL011 at {:#x})", layout::PL011_BASE);
    let hypervisor = checks::detect_hypervisor();
    let boots = if hypervisor {
        hypercall::boot_count().ok()
    } else {
        None
    };
    if let Some(count @ 1..) = boots {
        println!("guest: boot {} (after {count} reset)", count + 1);
    }
    // A reset loop (`[vms.<name>] resets` in a test manifest): reset at once, skipping the
    // checks, until the boot count reaches what the manifest asks; the last boot runs them all.
    let resets_asked = if hypervisor {
        hypercall::reset_loop().unwrap_or(0)
    } else {
        0
    };
    if let Some(count) = boots.filter(|&count| count < resets_asked) {
        println!("guest: reset loop: {count} of {resets_asked} resets done; resetting");
        if let Err(error) = hypercall::system_reset() {
            println!("guest: SYSTEM_RESET failed: {error:?}");
            verdict.first_failure = Some((Check::Boot, "SYSTEM_RESET failed in the reset loop"));
            verdict.finish();
        }
    }

    // The hostile mode (a virtio-blk device at the first transport, hostile/mod.rs) attacks
    // the hypervisor instead of checking it, and ends the VM itself.
    if hypervisor && hostile::wanted() {
        hostile::run()
    }

    verdict.run(Check::Boot, || checks::boot(boot, hypervisor));
    verdict.run(Check::Mmu, checks::mmu);
    verdict.run(Check::Memory, memory::check);
    verdict.run(Check::PsciVersion, || checks::psci_version(hypervisor));
    verdict.run(Check::DirtyLog, dirty_log::check);
    verdict.run(Check::Stage2Faults, checks::stage2_faults);
    verdict.run(Check::Hole, || checks::hole(hypervisor));
    verdict.run(Check::VirtualTimer, || checks::virtual_timer(hypervisor));
    verdict.run(Check::Isolation, || isolation::check(hypervisor));
    verdict.run(Check::Wfe, || wfe::check(hypervisor));
    verdict.run(Check::HoleFetch, || hole_fetch::check(hypervisor));
    verdict.run(Check::SError, || serror::check(hypervisor));
    verdict.run(Check::SoftwareInterrupt, interrupts::software_interrupt);
    verdict.run(Check::DeviceInterrupt, interrupts::device_interrupt);
    verdict.run(Check::MmioToRam, || mmio_map::check(hypervisor));
    // Under a hypervisor, the first boot ends in PSCI SYSTEM_RESET and every check runs again
    // on the second: memory must read as zero again, stage 2 must fault in afresh, and the VCPU
    // must come out of reset. That tests the VM reset path as thoroughly as a first boot.
    if boots == Some(0) && verdict.first_failure.is_none() {
        println!("guest: every check passed on the first boot; resetting the VM to run them again");
        if let Err(error) = hypercall::system_reset() {
            println!("guest: SYSTEM_RESET failed: {error:?}");
        }
    }
    bench::run(hypervisor);
    verdict.finish()
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let check = checks::current();
    println!("guest: panic in check {check}: {info}");
    println!("guest: verdict FAIL (panic in check {check})");
    hypercall::system_off(u64::from(check.number()))
}
