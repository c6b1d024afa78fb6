//! The kernel's own address space: an EL2 stage-1 identity map of the board.
//!
//! Level-1 table, 1 GiB blocks (ARM ARM D8.3): the first GiB (devices) as Device-nGnRE and
//! never executable, RAM as Normal write-back. The kernel reaches every physical page through
//! this map, like seL4's kernel window; servers never see it.

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::*;

#[repr(C, align(4096))]
struct Table(core::cell::UnsafeCell<[u64; 512]>);

// SAFETY: written once by `init` on the boot CPU before the MMU is on; afterwards only the
// hardware walker reads it.
unsafe impl Sync for Table {}

/// The level-1 table.
static LEVEL1: Table = Table(core::cell::UnsafeCell::new([0; 512]));

const VALID_BLOCK: u64 = 0b01;
const ATTR_DEVICE: u64 = 0 << 2; // MAIR index 0
const ATTR_NORMAL: u64 = 1 << 2; // MAIR index 1
const AF: u64 = 1 << 10;
const SH_INNER: u64 = 0b11 << 8;
const XN: u64 = 1 << 54; // EL2 stage 1 (one privilege level): XN at bit 54
/// MAIR: index 0 = Device-nGnRE (0x04), index 1 = Normal, inner/outer write-back RW-allocate.
const MAIR: u64 = 0x04 | (0xFF << 8);
/// TCR_EL2: T0SZ = 25 (39-bit VA, walk starts at level 1), write-back walks, inner shareable,
/// 4 KiB granule, PS = 40 bits, RES1 bits 31 and 23.
const TCR: u64 = 25 | (1 << 8) | (1 << 10) | (0b11 << 12) | (0b010 << 16) | (1 << 23) | (1 << 31);
/// SCTLR_EL2: M (MMU), C (data cache), SA (stack alignment check), I (instruction cache), plus
/// the RES1 bits of the non-VHE layout.
const SCTLR: u64 = (1 << 0) | (1 << 2) | (1 << 3) | (1 << 12) | 0x30C5_0830;

/// Builds the identity map and turns the MMU and caches on.
pub fn init() {
    // SAFETY: runs once, on the boot CPU, before anything else touches LEVEL1; the MMU is off
    // so nothing walks the table while it is written.
    let table = unsafe { &mut *LEVEL1.0.get() };
    table[0] = VALID_BLOCK | ATTR_DEVICE | AF | XN;
    for gib in 1..4u64 {
        table[gib as usize] = (gib << 30) | VALID_BLOCK | ATTR_NORMAL | AF | SH_INNER;
    }
    let root = table.as_ptr() as u64;
    MAIR_EL2.set(MAIR);
    TCR_EL2.set(TCR);
    TTBR0_EL2.set(root);
    barrier::dsb(barrier::ISH);
    // SAFETY: invalidating EL2 TLB entries has no memory-safety effect.
    unsafe { core::arch::asm!("tlbi alle2", "dsb ish") };
    barrier::isb(barrier::SY);
    SCTLR_EL2.set(SCTLR);
    barrier::isb(barrier::SY);
}
