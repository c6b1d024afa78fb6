//! Class 9 of the attack: interrupt storms, bounded -- SGIs sent to itself in bursts with the
//! GIC enabled, and ICC_SGI1R_EL1 written with random values (docs/GUEST-ABI.md: the one CPU
//! interface register that traps; the vmm emulates it).
//!
//! Class 2 leaves the GIC in any state, so a storm first brings it up again (`gic::init`,
//! Linux's order), disables and clears every PPI and SPI (so only SGIs arrive) and enables the
//! 16 SGIs. Then either:
//!
//! - a burst of 1..=32 SGIs of random INTIDs with IRQs masked (same INTIDs coalesce), drained by
//!   unmasking until a window takes none; or
//! - a burst with IRQs unmasked, each SGI taken as it is sent (an exit, an injection, an IRQ
//!   taken by the guest, an acknowledge and an EOI through the virtual CPU interface);
//!
//! plus up to four random ICC_SGI1R_EL1 values (any target list, affinity, IRM, INTID) with
//! IRQs masked, whose SGIs to this CPU are drained too. Each unmasked window is armed with
//! `exception::expect_irqs`, whose handler acknowledges, quietens and completes each IRQ and
//! masks IRQs after `IRQ_STORM` of them, so no storm can run away. Afterwards the running
//! priority must be idle again (ICC_RPR_EL1 = 0xFF) and at least one SGI must have been taken
//! for a burst sent to this CPU; otherwise the storm counts as wrong.

use core::arch::asm;

use super::rng::Rng;
use crate::exception;
use crate::gic::{self, Intid};
use crate::layout::{GICD_BASE, GICR_BASE};

/// GICD_ICENABLER<n>, GICD_ICPENDR<n>, GICD_ICACTIVER<n> for SPIs (n = 1..8: INTIDs 32..255),
/// and the SGI frame's GICR_ICENABLER0 / ICPENDR0 / ICACTIVER0 (IHI 0069 12.9, 12.11).
const ICENABLER: u64 = 0x180;
const ICPENDR: u64 = 0x280;
const ICACTIVER: u64 = 0x380;
const SGI_FRAME: u64 = GICR_BASE + 0x1_0000;
/// PPIs are INTIDs 16..31: the upper half of the private registers.
const PPIS: u32 = 0xFFFF_0000;

/// The most unmasked windows a drain opens.
const DRAIN_WINDOWS: u32 = 8;

/// What class 9 found.
#[derive(Clone, Copy, Default)]
pub struct Storms {
    pub storms: u64,
    pub sent: u64,
    pub taken: u64,
    pub wrong: u64,
}

fn write32(address: u64, value: u32) {
    // SAFETY: a register of the distributor or the SGI frame (the constants above), mapped
    // Device by mmu.rs; an aligned 32-bit store.
    unsafe { (address as *mut u32).write_volatile(value) }
}

/// Only the SGIs can be signalled: every PPI and SPI disabled, not pending, not active.
fn quiet() {
    for register in [ICENABLER, ICPENDR, ICACTIVER] {
        for word in 1..8 {
            write32(GICD_BASE + register + 4 * word, u32::MAX);
        }
    }
    write32(SGI_FRAME + ICENABLER, PPIS);
    write32(SGI_FRAME + ICPENDR, u32::MAX);
    write32(SGI_FRAME + ICACTIVER, u32::MAX);
}

/// Spins to wait for the first IRQ of a drain: under TCG a pending virtual IRQ is taken at
/// the next translation block, so this is generous.
const WAIT_SPINS: u32 = 100_000;

/// One window with IRQs unmasked (spinning until one is taken when `wait`): how many were.
fn unmasked_window(wait: bool) -> u64 {
    exception::expect_irqs(Intid::new(0));
    // SAFETY: unmasks IRQs; the handler armed above takes them (and masks IRQs again after a
    // storm). Not `nomem`: the handler writes the exception module's atomics.
    unsafe { asm!("msr daifclr, #2", "isb", options(nostack)) };
    for _ in 0..if wait { WAIT_SPINS } else { 16 } {
        if exception::irqs().total() != 0 {
            break;
        }
        core::hint::spin_loop();
    }
    // SAFETY: masks IRQs again, as everywhere outside these windows.
    unsafe { asm!("msr daifset, #2", "isb", options(nostack)) };
    exception::take_irqs().total()
}

/// Unmasked windows until one takes nothing (at most [`DRAIN_WINDOWS`]); the first waits for
/// an IRQ when `expecting`.
fn drain(expecting: bool) -> u64 {
    let mut taken = 0;
    for window in 0..DRAIN_WINDOWS {
        let count = unmasked_window(expecting && window == 0);
        taken += count;
        if count == 0 {
            break;
        }
    }
    taken
}

/// Class 9: one storm.
pub fn storm(rng: &mut Rng, found: &mut Storms) {
    found.storms += 1;
    if gic::init().is_err() {
        found.wrong += 1;
        return;
    }
    quiet();
    for sgi in 0..16 {
        gic::enable(Intid::new(sgi), gic::DEFAULT_PRIORITY);
    }
    let burst = 1 + rng.below(32);
    let mut taken = 0;
    if rng.one_in(2) {
        for _ in 0..burst {
            gic::send_sgi_to_self(Intid::new(rng.below(16) as u32));
        }
        taken += drain(true);
    } else {
        for _ in 0..burst {
            exception::expect_irqs(Intid::new(0));
            // SAFETY: as in `unmasked_window`: IRQs are open while the SGI is sent, so it is
            // taken at once by the armed handler; masked again after.
            unsafe { asm!("msr daifclr, #2", "isb", options(nostack)) };
            gic::send_sgi_to_self(Intid::new(rng.below(16) as u32));
            // SAFETY: masks IRQs again.
            unsafe { asm!("msr daifset, #2", "isb", options(nostack)) };
            taken += exception::take_irqs().total();
        }
        taken += drain(taken == 0);
    }
    found.sent += burst;
    if taken == 0 {
        found.wrong += 1;
    }
    for _ in 0..rng.below(5) {
        // SAFETY: generates SGIs (any INTID, target list, affinity, routing mode) with IRQs
        // masked: at most they become pending here, drained below.
        unsafe { asm!("msr icc_sgi1r_el1, {}", "isb", in(reg) rng.next(), options(nostack)) };
    }
    taken += drain(false);
    found.taken += taken;
    if gic::running_priority() != gic::IDLE_PRIORITY {
        found.wrong += 1;
    }
}

/// GICR_ISENABLER0 / ISPENDR0 / IGROUPR0 and IPRIORITYR in the SGI frame; GICD_CTLR with ARE and
/// EnableGrp1.
const ISENABLER: u64 = 0x100;
const ISPENDR: u64 = 0x200;
const IGROUPR: u64 = 0x080;
const IPRIORITYR: u64 = 0x400;
const GICD_CTLR_ARE_GRP1: u32 = (1 << 4) | (1 << 1);
/// The kernel's maintenance interrupt, which a guest may still pend as its own PPI 9.
const MAINTENANCE: u32 = 25;
/// GIC writes made while INTID 25 is pending and enabled.
pub const FLOOD_WRITES: u32 = 256;

/// A log flood, once: INTID 25 made pending and enabled at the redistributor, then
/// [`FLOOD_WRITES`] GIC writes, each of which has the vmm offer it to the kernel, which refuses
/// it (`VcpuInjectIrq` never injects the kernel's 25). The vmm's record of a refused injection
/// must be rate-limited (vmm-server `interrupts.rs`), not one console line per write. Then
/// INTID 25 is disabled and cleared again.
pub fn maintenance_flood() {
    let bit = 1 << MAINTENANCE;
    write32(SGI_FRAME + IGROUPR, bit);
    // SAFETY: a byte of GICR_IPRIORITYR6 (INTIDs 24..27), which takes byte writes.
    unsafe { ((SGI_FRAME + IPRIORITYR + u64::from(MAINTENANCE)) as *mut u8).write_volatile(0xA0) };
    write32(SGI_FRAME + ISENABLER, bit);
    write32(SGI_FRAME + ISPENDR, bit);
    for _ in 0..FLOOD_WRITES {
        write32(GICD_BASE, GICD_CTLR_ARE_GRP1);
    }
    write32(SGI_FRAME + ICENABLER, bit);
    write32(SGI_FRAME + ICPENDR, bit);
}
