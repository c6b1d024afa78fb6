//! The guest's GICv3 driver: just enough of the programming model Linux's irq-gic-v3 uses
//! (GICv3 and GICv4 Architecture Specification, Arm IHI 0069) to take the virtual timer's PPI,
//! an SGI and the PL011's SPI.
//!
//! - The distributor (`layout::GICD_BASE`, IHI 0069 12.8/12.9) holds the SPIs' configuration;
//!   affinity routing is on (GICD_CTLR.ARE reads 1), so an SPI goes where GICD_IROUTER<n> says.
//! - The redistributor (`layout::GICR_BASE`, 12.10/12.11) is two 64 KiB frames: RD_base
//!   (GICR_CTLR, GICR_WAKER) and SGI_base, which holds the SGIs' and PPIs' configuration at the
//!   same offsets the distributor uses for SPIs (GICR_IGROUPR0 at 0x080, GICR_ISENABLER0 at
//!   0x100, ...).
//! - The CPU interface is the ICC_* system registers (12.2); under our hypervisor the
//!   hardware's virtual CPU interface answers them without an exit, except ICC_SGI1R_EL1
//!   writes, which the vmm emulates (docs/GUEST-ABI.md, "Interrupts").
//!
//! Every interrupt is Group 1 (the only group a Non-secure EL1 guest handles, with
//! ICC_IGRPEN1_EL1) and completed with EOImode 0: one ICC_EOIR1_EL1 write drops the running
//! priority and deactivates, as Linux does when it is not booted at EL2
//! (gic_cpu_sys_reg_init). MMIO is 32-bit `ldr w`/`str w` with a plain base register, as
//! Linux's readl/writel: an access the hypervisor emulates must be one a data abort syndrome
//! describes (ISV set), never a pair or a writeback form. Priorities are byte writes and
//! GICD_IROUTER<n> a 64-bit write, as in Linux (gic_write_irouter is writeq).
//!
//! The same code drives QEMU's own GICv3 (`-M virt,gic-version=3`), where the reset values
//! differ from our vmm's (IGROUPR resets to Group 0 there): [`enable`] sets everything it
//! relies on.

use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::layout::{GICD_BASE, GICR_BASE, PL011_INTID};

/// An interrupt ID the GIC can deliver: an SGI (0..15), a PPI (16..31) or an SPI (32..1019).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Intid(u32);

impl Intid {
    /// For constants: an INTID of the special range (1020..1023) fails the build.
    pub const fn new(intid: u32) -> Self {
        assert!(intid < FIRST_SPECIAL);
        Self(intid)
    }

    /// The number.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// SGIs and PPIs: configured at the redistributor.
    const fn is_private(self) -> bool {
        self.0 < FIRST_SPI
    }

    /// The bit of this INTID in a one-bit-per-INTID register, and that register's offset
    /// from the first (register n covers INTIDs 32n..32n+31).
    const fn bit_and_word(self) -> (u32, u64) {
        (1 << (self.0 % 32), 4 * (self.0 / 32) as u64)
    }

    /// The frame holding this INTID's configuration registers.
    const fn bank(self) -> u64 {
        if self.is_private() {
            GICR_BASE + GICR_SGI_FRAME
        } else {
            GICD_BASE
        }
    }
}

/// The virtual timer: PPI 11, as QEMU's `virt` wires it and our vmm presents it.
pub const VTIMER: Intid = Intid::new(27);
/// The SGI the SGI check sends itself.
pub const TEST_SGI: Intid = Intid::new(1);
/// The PL011's interrupt.
pub const PL011: Intid = Intid::new(PL011_INTID);
/// What ICC_IAR1_EL1 answers when no Group 1 interrupt is pending (12.2, ICC_IAR1_EL1).
pub const SPURIOUS: u32 = 1023;
/// The first of the special INTIDs 1020..1023 (IHI 0069, 2.2.1).
const FIRST_SPECIAL: u32 = 1020;
/// The first SPI.
const FIRST_SPI: u32 = 32;

/// The priority the checks give their interrupts: Linux's GICD_INT_DEF_PRI, below the
/// [`PMR`] mask so that it is signalled (a lower value is a higher priority).
pub const DEFAULT_PRIORITY: u8 = 0xA0;
/// ICC_PMR_EL1: let every priority through.
const PMR: u64 = 0xFF;

// Distributor registers (IHI 0069, 12.8 "The GIC Distributor register map").
const GICD_CTLR: u64 = 0x0000;
const GICD_IROUTER: u64 = 0x6000;
/// GICD_CTLR.EnableGrp1 (12.9.4, one Security state: DS = 1, as under our vmm and QEMU's virt
/// without `secure=on`).
const GICD_CTLR_ENABLE_GRP1: u32 = 1 << 1;
/// GICD_CTLR.ARE: affinity routing (RAO/WI under our vmm).
const GICD_CTLR_ARE: u32 = 1 << 4;
/// GICD_CTLR.RWP: a write to GICD_CTLR or GICD_ICENABLER<n> is still taking effect.
const GICD_CTLR_RWP: u32 = 1 << 31;

// Registers shared by the distributor and the SGI frame (12.9 and 12.11: same offsets).
const IGROUPR: u64 = 0x0080;
const ISENABLER: u64 = 0x0100;
const ICENABLER: u64 = 0x0180;
const ISPENDR: u64 = 0x0200;
const ICPENDR: u64 = 0x0280;
const IPRIORITYR: u64 = 0x0400;

// Redistributor registers (12.10 "The GIC Redistributor register map").
const GICR_CTLR: u64 = 0x0000;
const GICR_WAKER: u64 = 0x0014;
/// SGI_base: the second 64 KiB frame.
const GICR_SGI_FRAME: u64 = 0x1_0000;
/// GICR_CTLR.RWP: a write to GICR_ICENABLER0 is still taking effect (12.11, GICR_CTLR).
const GICR_CTLR_RWP: u32 = 1 << 3;
/// GICR_WAKER.ProcessorSleep (12.11, GICR_WAKER): set, the redistributor holds its interrupts back.
const GICR_WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
/// GICR_WAKER.ChildrenAsleep: the redistributor is still quiescent.
const GICR_WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;

/// ICC_SRE_EL1.SRE: the system-register interface is in use (12.2, ICC_SRE_EL1).
const ICC_SRE_SRE: u64 = 1 << 0;
/// ICC_SGI1R_EL1.INTID, bits [27:24] (12.2, ICC_SGI1R_EL1); TargetList is bits [15:0],
/// Aff1..Aff3 and IRM zero: the PEs of affinity 0.0.0.x with x in TargetList.
const ICC_SGI1R_INTID_SHIFT: u32 = 24;
/// ICC_IAR1_EL1.INTID, bits [23:0].
const ICC_IAR_INTID_MASK: u64 = 0xFF_FFFF;

/// How many times a busy bit is polled before giving up: a GIC clears RWP and
/// ChildrenAsleep within microseconds (Linux waits up to a second), and under our hypervisor
/// every poll is an exit, so the bound is what keeps a broken emulation from stalling the run.
const POLLS: u32 = 10_000;

/// Set once [`init`] succeeded: reading ICC_IAR1_EL1 is then safe (the unexpected-IRQ report).
static INITIALISED: AtomicBool = AtomicBool::new(false);

fn read32(address: u64) -> u32 {
    let value: u32;
    // SAFETY: every address passed here is a register of the distributor or redistributor
    // (the constants above), mapped Device-nGnRE by mmu.rs; a 32-bit aligned load.
    unsafe { asm!("ldr {:w}, [{}]", out(reg) value, in(reg) address, options(nostack)) };
    value
}

fn write32(address: u64, value: u32) {
    // SAFETY: as in `read32`: a GIC register, an aligned 32-bit store.
    unsafe { asm!("str {:w}, [{}]", in(reg) value, in(reg) address, options(nostack)) };
}

fn write8(address: u64, value: u8) {
    // SAFETY: as in `read32`: a byte of an IPRIORITYR register, which takes byte accesses
    // (12.9 GICD_IPRIORITYR<n>, 12.11 GICR_IPRIORITYR<n>).
    unsafe { asm!("strb {:w}, [{}]", in(reg) u32::from(value), in(reg) address, options(nostack)) };
}

fn write64(address: u64, value: u64) {
    // SAFETY: as in `read32`: GICD_IROUTER<n>, a 64-bit register, aligned.
    unsafe { asm!("str {}, [{}]", in(reg) value, in(reg) address, options(nostack)) };
}

/// Polls `address` until `bit` reads 0, at most [`POLLS`] times.
fn wait_clear(address: u64, bit: u32, what: &'static str) -> Result<(), &'static str> {
    for _ in 0..POLLS {
        if read32(address) & bit == 0 {
            return Ok(());
        }
        core::hint::spin_loop();
    }
    Err(what)
}

/// Waits until a write to the distributor's GICD_CTLR or GICD_ICENABLER<n> has taken effect
/// (Linux's gic_dist_wait_for_rwp).
fn wait_distributor() -> Result<(), &'static str> {
    wait_clear(
        GICD_BASE + GICD_CTLR,
        GICD_CTLR_RWP,
        "GICD_CTLR.RWP did not clear",
    )
}

/// Waits until a write to GICR_ICENABLER0 has taken effect (gic_redist_wait_for_rwp).
fn wait_redistributor() -> Result<(), &'static str> {
    wait_clear(
        GICR_BASE + GICR_CTLR,
        GICR_CTLR_RWP,
        "GICR_CTLR.RWP did not clear",
    )
}

/// Brings up the distributor, this CPU's redistributor and its CPU interface, in Linux's
/// order (gic_dist_init, gic_enable_redist, gic_cpu_sys_reg_init). Leaves every interrupt as
/// it found it (disabled after reset); running it again changes nothing.
pub fn init() -> Result<(), &'static str> {
    enable_system_registers()?;

    // Group 1 on; ARE is written as 1 as Linux does (RAO/WI where it cannot be cleared).
    let ctlr = read32(GICD_BASE + GICD_CTLR);
    write32(
        GICD_BASE + GICD_CTLR,
        ctlr | GICD_CTLR_ARE | GICD_CTLR_ENABLE_GRP1,
    );
    wait_distributor()?;
    let ctlr = read32(GICD_BASE + GICD_CTLR);
    if ctlr & GICD_CTLR_ARE == 0 {
        return Err("GICD_CTLR.ARE reads 0");
    }
    if ctlr & GICD_CTLR_ENABLE_GRP1 == 0 {
        return Err("GICD_CTLR.EnableGrp1 did not stick");
    }

    // Wake the redistributor (12.11, GICR_WAKER; Linux's gic_enable_redist): until
    // ChildrenAsleep clears it may hold interrupts back.
    let waker = read32(GICR_BASE + GICR_WAKER);
    write32(GICR_BASE + GICR_WAKER, waker & !GICR_WAKER_PROCESSOR_SLEEP);
    wait_clear(
        GICR_BASE + GICR_WAKER,
        GICR_WAKER_CHILDREN_ASLEEP,
        "GICR_WAKER.ChildrenAsleep did not clear",
    )?;

    // SAFETY: the CPU interface's own registers (12.2): every priority unmasked, no
    // preemption grouping (BPR1 = 0 is the smallest the GIC supports), EOImode 0 (ICC_CTLR_EL1
    // written whole, as Linux writes ICC_CTLR_EL1_EOImode_drop_dir), Group 1 on. PSTATE.I
    // stays as the caller has it, so nothing is taken here.
    unsafe {
        asm!(
            "msr icc_pmr_el1, {pmr}",
            "msr icc_bpr1_el1, xzr",
            "msr icc_ctlr_el1, xzr",
            "msr icc_igrpen1_el1, {one}",
            "isb",
            pmr = in(reg) PMR,
            one = in(reg) 1u64,
            options(nostack),
        );
    }
    let igrpen1: u64;
    // SAFETY: reading ICC_IGRPEN1_EL1 has no side effect.
    unsafe { asm!("mrs {}, icc_igrpen1_el1", out(reg) igrpen1, options(nomem, nostack)) };
    if igrpen1 & 1 == 0 {
        return Err("ICC_IGRPEN1_EL1.Enable did not stick");
    }
    INITIALISED.store(true, Ordering::SeqCst);
    Ok(())
}

/// ICC_SRE_EL1.SRE must read 1: without it the ICC_* registers are not usable (a GICv3 with
/// only the memory-mapped GICv2 interface). Linux's gic_enable_sre: set it if clear, then
/// read it back.
fn enable_system_registers() -> Result<(), &'static str> {
    let read = || {
        let sre: u64;
        // SAFETY: reading ICC_SRE_EL1 has no side effect.
        unsafe { asm!("mrs {}, icc_sre_el1", out(reg) sre, options(nomem, nostack)) };
        sre
    };
    let sre = read();
    if sre & ICC_SRE_SRE != 0 {
        return Ok(());
    }
    // SAFETY: asks for the system-register interface; an implementation where SRE is fixed
    // ignores the write, which the read below reports.
    unsafe {
        asm!("msr icc_sre_el1, {}", "isb", in(reg) sre | ICC_SRE_SRE, options(nomem, nostack));
    }
    if read() & ICC_SRE_SRE == 0 {
        return Err("ICC_SRE_EL1.SRE reads 0");
    }
    Ok(())
}

/// Whether [`init`] has succeeded (so ICC_IAR1_EL1 may be read).
pub fn initialised() -> bool {
    INITIALISED.load(Ordering::SeqCst)
}

/// Makes `intid` Group 1 with `priority`, routes it to this CPU (affinity 0.0.0.0) if it is
/// an SPI, and enables it (Linux: gic_irq_set_prio, gic_set_affinity, gic_unmask_irq).
pub fn enable(intid: Intid, priority: u8) {
    let bank = intid.bank();
    let (bit, word) = intid.bit_and_word();
    let group = bank + IGROUPR + word;
    write32(group, read32(group) | bit);
    write8(bank + IPRIORITYR + u64::from(intid.get()), priority);
    if !intid.is_private() {
        // IRM = 0 and Aff3.Aff2.Aff1.Aff0 = 0: the VCPU with MPIDR affinity 0 (12.9.22).
        write64(GICD_BASE + GICD_IROUTER + 8 * u64::from(intid.get()), 0);
    }
    write32(bank + ISENABLER + word, bit);
}

/// Disables `intid` and waits until the disable has taken effect: from then on it is not
/// signalled again (12.9 GICD_ICENABLER<n>, 12.11 GICR_ICENABLER0).
pub fn disable(intid: Intid) -> Result<(), &'static str> {
    let (bit, word) = intid.bit_and_word();
    write32(intid.bank() + ICENABLER + word, bit);
    if intid.is_private() {
        wait_redistributor()
    } else {
        wait_distributor()
    }
}

/// Whether `intid` is pending (GICD_ISPENDR<n> / GICR_ISPENDR0).
pub fn is_pending(intid: Intid) -> bool {
    let (bit, word) = intid.bit_and_word();
    read32(intid.bank() + ISPENDR + word) & bit != 0
}

/// Clears a latched pending state of `intid` (a level interrupt's line is not affected).
pub fn clear_pending(intid: Intid) {
    let (bit, word) = intid.bit_and_word();
    write32(intid.bank() + ICPENDR + word, bit);
}

/// Sends SGI `intid` (0..15) to this CPU: ICC_SGI1R_EL1 with TargetList bit 0 and affinity
/// 0.0.0 (Linux's gic_send_sgi, which orders earlier stores with `dsb ishst` and the write
/// itself with `isb`).
pub fn send_sgi_to_self(intid: Intid) {
    let value = u64::from(intid.get() & 0xF) << ICC_SGI1R_INTID_SHIFT | 1;
    // SAFETY: generates a Group 1 SGI for this CPU; with IRQs masked it only becomes pending.
    unsafe {
        asm!(
            "dsb ishst",
            "msr icc_sgi1r_el1, {}",
            "isb",
            in(reg) value,
            options(nostack),
        );
    }
}

/// Acknowledges the highest-priority pending Group 1 interrupt: its INTID, or [`SPURIOUS`].
/// The `dsb sy` is Linux's (gic_read_iar_common): the handler's device accesses come after the
/// acknowledgement.
pub fn acknowledge() -> u32 {
    let iar: u64;
    // SAFETY: reading ICC_IAR1_EL1 activates the interrupt it returns, which the caller ends
    // with `end`; nothing else changes.
    unsafe { asm!("mrs {}, icc_iar1_el1", "dsb sy", out(reg) iar, options(nostack)) };
    (iar & ICC_IAR_INTID_MASK) as u32
}

/// ICC_RPR_EL1: the running priority, [`IDLE_PRIORITY`] once every acknowledged interrupt has
/// been completed (12.2, ICC_RPR_EL1).
pub fn running_priority() -> u8 {
    let rpr: u64;
    // SAFETY: reading ICC_RPR_EL1 has no side effect.
    unsafe { asm!("mrs {}, icc_rpr_el1", out(reg) rpr, options(nomem, nostack)) };
    rpr as u8
}

/// What ICC_RPR_EL1 reads with no interrupt active.
pub const IDLE_PRIORITY: u8 = 0xFF;

/// Completes an interrupt [`acknowledge`] returned: priority drop and deactivation at once
/// (EOImode 0; 12.2, ICC_EOIR1_EL1). The `isb` is Linux's gic_write_eoir.
pub fn end(intid: u32) {
    // SAFETY: writing ICC_EOIR1_EL1 ends the active interrupt `intid`; the caller passes what
    // it acknowledged.
    unsafe { asm!("msr icc_eoir1_el1, {}", "isb", in(reg) u64::from(intid), options(nostack)) };
}
