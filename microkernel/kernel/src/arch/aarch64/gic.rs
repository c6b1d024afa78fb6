//! GICv3 (Arm GIC Architecture Specification v3/v4, IHI 0069): distributor, the boot CPU's
//! redistributor, and the system-register CPU interface. All interrupts are Group 1,
//! non-secure; SPIs are routed to CPU 0 by affinity (GICD_CTLR.ARE).

use crate::plat::layout::{GICD_BASE, GICR_BASE};

const GICD_CTLR: usize = 0x0000;
const GICD_TYPER: usize = 0x0004;
const GICD_IGROUPR: usize = 0x0080;
const GICD_ISENABLER: usize = 0x0100;
const GICD_ICENABLER: usize = 0x0180;
const GICD_IPRIORITYR: usize = 0x0400;
const GICD_IROUTER: usize = 0x6000;
const GICD_CTLR_RWP: u32 = 1 << 31;

const GICR_WAKER: usize = 0x0014;
/// The SGI/PPI frame follows the RD frame (GICv3 §12.10).
const GICR_SGI: usize = 0x1_0000;
const GICR_IGROUPR0: usize = GICR_SGI + 0x0080;
const GICR_ISENABLER0: usize = GICR_SGI + 0x0100;
const GICR_ICENABLER0: usize = GICR_SGI + 0x0180;
const GICR_IPRIORITYR: usize = GICR_SGI + 0x0400;

/// The "no pending interrupt" INTIDs start here (1020..1023, GICv3 §2.2.1).
const SPECIAL_INTID: u32 = 1020;
/// Every interrupt gets the same priority: the kernel never nests them.
const PRIORITY: u8 = 0xA0;

fn write32(base: usize, offset: usize, value: u32) {
    // SAFETY: base + offset is a GIC register inside the device window that the kernel's
    // identity map covers as Device memory; GIC registers have no memory-safety effect.
    unsafe { core::ptr::write_volatile((base + offset) as *mut u32, value) }
}

fn read32(base: usize, offset: usize) -> u32 {
    // SAFETY: as in `write32`.
    unsafe { core::ptr::read_volatile((base + offset) as *const u32) }
}

fn write8(base: usize, offset: usize, value: u8) {
    // SAFETY: as in `write32`; the priority registers are byte-accessible (GICv3 §12.9.22).
    unsafe { core::ptr::write_volatile((base + offset) as *mut u8, value) }
}

fn write64(base: usize, offset: usize, value: u64) {
    // SAFETY: as in `write32`.
    unsafe { core::ptr::write_volatile((base + offset) as *mut u64, value) }
}

/// Brings up the distributor, the redistributor and the CPU interface, every line masked.
pub fn init() {
    write32(GICD_BASE, GICD_CTLR, 0);
    while read32(GICD_BASE, GICD_CTLR) & GICD_CTLR_RWP != 0 {}
    let lines = ((read32(GICD_BASE, GICD_TYPER) & 0x1F) + 1) * 32;
    for word in 1..(lines / 32) as usize {
        write32(GICD_BASE, GICD_ICENABLER + word * 4, u32::MAX);
        write32(GICD_BASE, GICD_IGROUPR + word * 4, u32::MAX);
    }
    // ARE (bit 4) and EnableGrp1 (bit 1), single security state.
    write32(GICD_BASE, GICD_CTLR, (1 << 4) | (1 << 1));
    while read32(GICD_BASE, GICD_CTLR) & GICD_CTLR_RWP != 0 {}

    // Wake the redistributor: clear ProcessorSleep, wait for ChildrenAsleep to clear.
    write32(
        GICR_BASE,
        GICR_WAKER,
        read32(GICR_BASE, GICR_WAKER) & !(1 << 1),
    );
    while read32(GICR_BASE, GICR_WAKER) & (1 << 2) != 0 {}
    write32(GICR_BASE, GICR_ICENABLER0, u32::MAX);
    write32(GICR_BASE, GICR_IGROUPR0, u32::MAX);

    // SAFETY: the GIC CPU-interface system registers only configure interrupt delivery.
    // ICC_SRE_EL2: SRE and Enable (lower ELs may use the system-register interface); every
    // priority unmasked; no preemption groups; EOI also deactivates; Group 1 on.
    unsafe {
        core::arch::asm!(
            "msr icc_sre_el2, {sre}",
            "isb",
            "msr icc_pmr_el1, {pmr}",
            "msr icc_bpr1_el1, xzr",
            "msr icc_ctlr_el1, xzr",
            "msr icc_igrpen1_el1, {enable}",
            "isb",
            sre = in(reg) 0b1001u64,
            pmr = in(reg) 0xFFu64,
            enable = in(reg) 1u64,
        );
    }
}

/// Enables `intid` at the GIC, routed to CPU 0.
pub fn unmask(intid: u32) {
    let (word, bit) = ((intid / 32) as usize, 1 << (intid % 32));
    if intid < 32 {
        write8(GICR_BASE, GICR_IPRIORITYR + intid as usize, PRIORITY);
        write32(GICR_BASE, GICR_ISENABLER0, bit);
    } else {
        write8(GICD_BASE, GICD_IPRIORITYR + intid as usize, PRIORITY);
        write64(GICD_BASE, GICD_IROUTER + intid as usize * 8, 0);
        write32(GICD_BASE, GICD_ISENABLER + word * 4, bit);
    }
}

/// Disables `intid` at the GIC.
pub fn mask(intid: u32) {
    let (word, bit) = ((intid / 32) as usize, 1 << (intid % 32));
    if intid < 32 {
        write32(GICR_BASE, GICR_ICENABLER0, bit);
    } else {
        write32(GICD_BASE, GICD_ICENABLER + word * 4, bit);
    }
}

/// Acknowledges the highest-priority pending interrupt, if any.
pub fn acknowledge() -> Option<u32> {
    let intid: u64;
    // SAFETY: reading ICC_IAR1_EL1 acknowledges an interrupt; no memory effect.
    unsafe { core::arch::asm!("mrs {}, icc_iar1_el1", out(reg) intid) };
    let intid = (intid & 0xFF_FFFF) as u32;
    (intid < SPECIAL_INTID).then_some(intid)
}

/// Ends an acknowledged interrupt (priority drop and deactivation, EOImode 0).
pub fn end(intid: u32) {
    // SAFETY: writing ICC_EOIR1_EL1 completes the interrupt; no memory effect.
    unsafe { core::arch::asm!("msr icc_eoir1_el1, {}", in(reg) u64::from(intid)) };
}
