//! Checks 15 and 16: interrupts through the GIC that do not come from the timer.
//!
//! - Check 15, a software-generated interrupt: SGI 1 enabled at the redistributor, sent to
//!   this CPU with ICC_SGI1R_EL1 (TargetList bit 0, affinity 0, INTID 1; under our hypervisor
//!   the one ICC_* write the vmm emulates). With IRQs still masked it must read pending in
//!   GICR_ISPENDR0; unmasked, it must be taken once, as INTID 1.
//! - Check 16, a device interrupt: INTID 33, the PL011's UARTINTR (level-sensitive), enabled at
//!   the distributor and routed to this CPU. With the transmit interrupt cleared and then
//!   unmasked (UARTICR, UARTIMSC.TXIM), one UARTDR write sets TXRIS and raises the line: it must
//!   read pending in GICD_ISPENDR1 while IRQs are masked, and be taken once when they are
//!   unmasked. The handler (exception.rs) records UARTMIS (TXMIS must be set), clears TXRIS and
//!   masks TXIM before its EOI, so the line drops: no second interrupt may follow.
//!
//! After the first interrupt each check keeps IRQs unmasked for [`QUIET_SPINS`] more
//! iterations and two exits (a PL011 flag read and PSCI_VERSION): under our hypervisor each is
//! a round trip through the vmm, which is where a latch not consumed or a line not lowered
//! would be injected again. Every wait is bounded, so a lost interrupt fails the check instead
//! of hanging it.
//!
//! Both run under plain QEMU too (`-M virt,gic-version=3`): QEMU's GICv3 and PL011 behave as
//! the ABI says ours do, which checks the guest's side against a reference GIC.

use core::arch::asm;

use crate::checks::{Outcome, exactly_once};
use crate::exception;
use crate::gic::{self, Intid};
use crate::hypercall;
use crate::println;
use crate::uart::{self, Pl011};

/// Iterations to wait for the first interrupt: milliseconds under QEMU's TCG, while the
/// interrupt is due at once (both are pending before IRQs are unmasked).
const WAIT_SPINS: u64 = 4_000_000;
/// Iterations after it in which no second one may come.
const QUIET_SPINS: u64 = 100_000;

/// Unmasks IRQs, spins until the first IRQ was taken (at most [`WAIT_SPINS`]), then for
/// [`QUIET_SPINS`] more and across two exits, and masks IRQs again.
fn unmasked_window() {
    // SAFETY: unmasks IRQs: the armed handler (exception.rs) takes them. Not `nomem`: the
    // handler writes the exception module's atomics.
    unsafe { asm!("msr daifclr, #2", "isb", options(nostack)) };
    for _ in 0..WAIT_SPINS {
        if exception::irqs().total() != 0 {
            break;
        }
        core::hint::spin_loop();
    }
    for _ in 0..QUIET_SPINS {
        core::hint::spin_loop();
    }
    Pl011::console().flags();
    let _ = hypercall::psci_version();
    // SAFETY: masks IRQs again, as everywhere outside these windows.
    unsafe { asm!("msr daifset, #2", "isb", options(nostack)) };
}

/// Brings the GIC up for a check named `what`.
fn gic_up(what: &str) -> Result<(), &'static str> {
    gic::init().inspect_err(|failure| println!("guest: {what}: GIC setup failed: {failure}"))
}

/// Disables `intid` at the end of a check.
fn gic_down(intid: Intid, what: &str) -> Result<(), &'static str> {
    gic::disable(intid).inspect_err(|failure| {
        println!("guest: {what}: disabling INTID {}: {failure}", intid.get())
    })
}

/// Check 15.
pub fn software_interrupt() -> Outcome {
    const WHAT: &str = "software-generated interrupt";
    match sgi_taken_once(WHAT) {
        Ok(()) => {
            println!(
                "guest: SGI 1 from ICC_SGI1R_EL1 was pending, then taken once (acknowledged and completed as INTID 1)"
            );
            Outcome::Passed
        }
        Err(what) => Outcome::Failed(what),
    }
}

fn sgi_taken_once(what: &str) -> Result<(), &'static str> {
    gic_up(what)?;
    let sgi = gic::TEST_SGI;
    gic::clear_pending(sgi);
    gic::enable(sgi, gic::DEFAULT_PRIORITY);
    exception::expect_irqs(sgi);
    gic::send_sgi_to_self(sgi);
    let pending = gic::is_pending(sgi);
    unmasked_window();
    let disabled = gic_down(sgi, what);
    let irqs = exception::take_irqs();
    if !pending {
        println!("guest: {what}: GICR_ISPENDR0 bit 1 clear after the ICC_SGI1R_EL1 write");
        return Err("the SGI was not pending at the redistributor");
    }
    exactly_once(&irqs, what)?;
    disabled
}

/// Check 16.
pub fn device_interrupt() -> Outcome {
    const WHAT: &str = "device interrupt";
    match uart_interrupt_once(WHAT) {
        Ok(mis) => {
            println!(
                "guest: PL011 transmit interrupt taken once as INTID 33 (UARTMIS {mis:#x}), none after the line dropped"
            );
            Outcome::Passed
        }
        Err(what) => Outcome::Failed(what),
    }
}

/// The body of check 16: UARTMIS as the handler read it.
fn uart_interrupt_once(what: &str) -> Result<u32, &'static str> {
    gic_up(what)?;
    let uart = Pl011::console();
    let line = gic::PL011;
    // TXRIS is already set by everything printed so far: clear it, so the write below is what
    // raises the line.
    uart.clear_interrupts(uart::INT_TX);
    gic::enable(line, gic::DEFAULT_PRIORITY);
    exception::expect_irqs(line);
    uart.unmask_interrupts(uart::INT_TX);
    // One character: a carriage return, invisible at the start of a line (the console's
    // lines end in "\r\n"), so the console stays one `guest: ` line per message.
    uart.put_byte(b'\r');
    let pending = gic::is_pending(line);
    unmasked_window();
    // Whatever the handler did: the line low and the interrupt off before the next check.
    uart.mask_interrupts(uart::INT_TX);
    uart.clear_interrupts(uart::INT_TX);
    let disabled = gic_down(line, what);
    let irqs = exception::take_irqs();
    if !pending {
        println!("guest: {what}: GICD_ISPENDR1 bit 1 clear after the UARTDR write");
        return Err("the PL011 interrupt was not pending at the distributor");
    }
    exactly_once(&irqs, what)?;
    if irqs.uart_mis & uart::INT_TX == 0 {
        println!(
            "guest: {what}: INTID 33 taken with UARTMIS {:#x} (TXMIS clear)",
            irqs.uart_mis
        );
        return Err("the PL011 interrupt was taken without TXMIS set");
    }
    disabled.map(|()| irqs.uart_mis)
}
