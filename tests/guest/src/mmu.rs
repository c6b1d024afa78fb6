//! The guest's own stage-1 translation (EL1&0, TTBR0_EL1, 4 KiB granule): an identity map of
//! the VM memory map in `layout.rs`, then MMU and caches on.
//!
//! Both leaf sizes are in use so that the hypervisor sees a guest whose stage-1 entries come in
//! both sizes (ARM ARM D8.3, VMSAv8-64 translation table format): RAM is 2 MiB level-2 blocks
//! except block 0, which holds the image and the page test window and is mapped with 512
//! level-3 pages. The pages also give the image W^X: text read-only and executable, rodata
//! read-only, everything else read-write and never executable. The UART and the hole get one
//! Device-nGnRE page each, and the GIC's distributor and redistributor frames one Device-nGnRE
//! page per 4 KiB of their registers, so a hole access is a real load that reaches stage 2
//! (Device memory is never read speculatively). The hole's page alone is also executable at EL1, so that a
//! branch to it is a real instruction fetch that reaches stage 2 too (with PXN, stage 1 would
//! answer it with its own permission fault). The architecture lets a CPU fetch instructions
//! speculatively from an executable Device page, but a speculative fetch never reports an
//! abort: only the check's branch does.
//!
//! ```text
//! TTBR0_EL1 -> level 1 (T0SZ = 32: a 4 GiB VA space, 4 entries of 1 GiB)
//!   [0] 0x0000_0000 -> level 2 -> [64]  0x0800_0000 -> level 3 [0..16]: GICD pages
//!                                                         [160..192]: GICR pages
//!                               -> [72]  0x0900_0000 -> level 3 [0]: PL011 page
//!                               -> [256] 0x2000_0000 -> level 3 [0]: hole page
//!   [1] 0x4000_0000 -> level 2 -> [0]   block 0     -> level 3: 512 pages
//!                               -> [1..32] 2 MiB blocks
//! ```
//!
//! The tables are written with the MMU off (so the stores go straight to memory) and are only
//! read by the table walker afterwards.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::layout::{
    BLOCK_SIZE, GICD_BASE, GICD_SIZE, GICR_BASE, GICR_SIZE, HOLE, PAGE_SIZE, PAGED_BLOCK,
    PL011_BASE, RAM_BASE, RAM_SIZE, VIRTIO_BASE,
};

/// One translation table: 512 descriptors, aligned to its size.
#[repr(C, align(4096))]
struct Table(UnsafeCell<[u64; 512]>);

// SAFETY: the tables are written only by `enable`, once, on the only CPU, before the MMU uses
// them (the ENABLED claim below); afterwards only the hardware walker reads them.
unsafe impl Sync for Table {}

impl Table {
    const fn new() -> Self {
        Self(UnsafeCell::new([0; 512]))
    }

    fn address(&self) -> u64 {
        self.0.get() as u64
    }
}

static LEVEL1: Table = Table::new();
static LEVEL2_DEVICES: Table = Table::new();
static LEVEL3_UART: Table = Table::new();
static LEVEL3_HOLE: Table = Table::new();
static LEVEL3_GIC: Table = Table::new();
static LEVEL2_RAM: Table = Table::new();
static LEVEL3_IMAGE: Table = Table::new();
static ENABLED: AtomicBool = AtomicBool::new(false);

// `build` gives the UART, the hole and the GIC a level-3 table each: they must lie in different
// 2 MiB regions of the first GiB (the GIC's two blocks in one), and RAM must start at the second.
const _: () = assert!(PL011_BASE >> 21 != HOLE >> 21 && PL011_BASE >> 30 == 0 && HOLE >> 30 == 0);
const _: () = assert!(GICD_BASE >> 21 == (GICR_BASE + GICR_SIZE - 1) >> 21);
const _: () = assert!(GICD_BASE >> 21 != PL011_BASE >> 21 && GICD_BASE >> 21 != HOLE >> 21);
const _: () = assert!(GICD_BASE + GICD_SIZE <= GICR_BASE && GICD_BASE >> 30 == 0);
const _: () = assert!(RAM_BASE == 1 << 30 && RAM_SIZE <= 1 << 30);
const _: () = assert!(VIRTIO_BASE.is_multiple_of(BLOCK_SIZE) && VIRTIO_BASE >> 30 == 0);
const _: () = assert!(
    VIRTIO_BASE >> 21 != PL011_BASE >> 21
        && VIRTIO_BASE >> 21 != HOLE >> 21
        && VIRTIO_BASE >> 21 != GICD_BASE >> 21
);

/// Level 0/1/2 descriptor pointing to the next table; level-3 page descriptor.
const TABLE_OR_PAGE: u64 = 0b11;
/// Level 1/2 block descriptor.
const BLOCK: u64 = 0b01;
/// AttrIndx = 0: MAIR Attr0, Device-nGnRE.
const ATTR_DEVICE: u64 = 0 << 2;
/// AttrIndx = 1: MAIR Attr1, Normal inner/outer write-back, read/write-allocate.
const ATTR_NORMAL: u64 = 1 << 2;
/// AP[2:1] = 0b10: read-only at EL1, no EL0 access (0b00, read/write at EL1, is the default).
const AP_READ_ONLY: u64 = 0b10 << 6;
/// SH = 0b11: inner shareable.
const SH_INNER: u64 = 0b11 << 8;
/// Access flag: set, so the first access does not fault (no hardware AF management).
const AF: u64 = 1 << 10;
/// Privileged execute-never.
const PXN: u64 = 1 << 53;
/// Unprivileged execute-never.
const UXN: u64 = 1 << 54;

const RAM_DATA: u64 = ATTR_NORMAL | SH_INNER | AF | PXN | UXN;
const RAM_RODATA: u64 = RAM_DATA | AP_READ_ONLY;
const RAM_TEXT: u64 = ATTR_NORMAL | SH_INNER | AF | AP_READ_ONLY | UXN;
const DEVICE: u64 = ATTR_DEVICE | AF | PXN | UXN;
/// The hole's page: Device like the UART's, but executable at EL1 (the hole-fetch check).
const DEVICE_EL1_EXECUTABLE: u64 = ATTR_DEVICE | AF | UXN;

/// MAIR_EL1: Attr0 = 0x04 Device-nGnRE, Attr1 = 0xff Normal write-back (ARM ARM, MAIR_EL1).
const MAIR: u64 = 0x04 | (0xff << 8);
/// TCR_EL1 (ARM ARM, TCR_EL1): T0SZ = 32 (4 GiB, walks start at level 1), IRGN0 = ORGN0 =
/// write-back, SH0 = inner shareable, TG0 = 4 KiB; EPD1 (no TTBR1 walks) with TG1 = 4 KiB;
/// IPS = 0b000 (32-bit physical addresses: the whole VM map fits, and every CPU has them).
const TCR: u64 = 32 | (0b01 << 8) | (0b01 << 10) | (0b11 << 12) | (1 << 23) | (0b10 << 30);
/// SCTLR_EL1 (ARM ARM, SCTLR_EL1): M (MMU), C (data cache), SA and SA0 (stack alignment), I
/// (instruction cache), and the bits that are RES1 in Armv8.0 (11, 20, 22, 23, 28, 29), whose
/// later meanings are all "behave like Armv8.0". Written whole: the reset value is UNKNOWN.
const SCTLR: u64 = (1 << 0) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 12) | 0x30D0_0800;

unsafe extern "C" {
    static __image_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
}

/// Stage-1 attributes of the image page at `address`.
fn image_page_attributes(address: u64) -> u64 {
    let image_start = &raw const __image_start as u64;
    let text_end = &raw const __text_end as u64;
    let rodata_end = &raw const __rodata_end as u64;
    if (image_start..text_end).contains(&address) {
        RAM_TEXT
    } else if (text_end..rodata_end).contains(&address) {
        RAM_RODATA
    } else {
        RAM_DATA
    }
}

/// Fills the tables. Returns the level-1 table's address.
fn build() -> u64 {
    // SAFETY: `enable` calls this once, guarded by ENABLED, before the MMU is on; nothing else
    // holds a reference to a table, and the walker does not read them yet. The same holds for
    // each of the seven tables.
    let level1 = unsafe { &mut *LEVEL1.0.get() };
    // SAFETY: as for `level1`.
    let devices = unsafe { &mut *LEVEL2_DEVICES.0.get() };
    // SAFETY: as for `level1`.
    let uart = unsafe { &mut *LEVEL3_UART.0.get() };
    // SAFETY: as for `level1`.
    let hole = unsafe { &mut *LEVEL3_HOLE.0.get() };
    // SAFETY: as for `level1`.
    let gic = unsafe { &mut *LEVEL3_GIC.0.get() };
    // SAFETY: as for `level1`.
    let ram = unsafe { &mut *LEVEL2_RAM.0.get() };
    // SAFETY: as for `level1`.
    let image = unsafe { &mut *LEVEL3_IMAGE.0.get() };

    let level2_index = |address: u64| ((address >> 21) & 0x1ff) as usize;
    let level3_index = |address: u64| ((address >> 12) & 0x1ff) as usize;

    // The first GiB: the GIC's pages, the UART's and the hole's, nothing else.
    level1[0] = LEVEL2_DEVICES.address() | TABLE_OR_PAGE;
    // The virtio transports: one Device block (nothing else lives in those 2 MiB).
    devices[level2_index(VIRTIO_BASE)] = VIRTIO_BASE | DEVICE | BLOCK;
    devices[level2_index(PL011_BASE)] = LEVEL3_UART.address() | TABLE_OR_PAGE;
    uart[level3_index(PL011_BASE)] = PL011_BASE | DEVICE | TABLE_OR_PAGE;
    devices[level2_index(HOLE)] = LEVEL3_HOLE.address() | TABLE_OR_PAGE;
    hole[level3_index(HOLE)] = HOLE | DEVICE_EL1_EXECUTABLE | TABLE_OR_PAGE;
    devices[level2_index(GICD_BASE)] = LEVEL3_GIC.address() | TABLE_OR_PAGE;
    let pages = |base: u64, size: u64| (base..base + size).step_by(PAGE_SIZE as usize);
    for page in pages(GICD_BASE, GICD_SIZE).chain(pages(GICR_BASE, GICR_SIZE)) {
        gic[level3_index(page)] = page | DEVICE | TABLE_OR_PAGE;
    }

    // RAM: 2 MiB blocks, except the paged block.
    level1[(RAM_BASE >> 30) as usize] = LEVEL2_RAM.address() | TABLE_OR_PAGE;
    for block in (RAM_BASE..RAM_BASE + RAM_SIZE).step_by(BLOCK_SIZE as usize) {
        ram[level2_index(block)] = if block == PAGED_BLOCK {
            LEVEL3_IMAGE.address() | TABLE_OR_PAGE
        } else {
            block | RAM_DATA | BLOCK
        };
    }
    for (entry, page) in image
        .iter_mut()
        .zip((PAGED_BLOCK..).step_by(PAGE_SIZE as usize))
    {
        *entry = page | image_page_attributes(page) | TABLE_OR_PAGE;
    }
    LEVEL1.address()
}

/// Builds the identity map and turns on the MMU and both caches. Only the first call does
/// anything; the caller runs with the MMU off (from `_start`) and has not yet enabled anything
/// that would use the tables.
pub fn enable() {
    // One CPU and no interrupts: a load and a store are a sufficient claim (and unlike a swap
    // they need no exclusive monitor, which is not usable with the MMU off).
    if ENABLED.load(Ordering::Relaxed) {
        return;
    }
    ENABLED.store(true, Ordering::Relaxed);
    let root = build();
    // SAFETY: the tables map the running code (text at its own address, executable), its stack
    // and data (read-write) and the UART identically, so execution continues at the next
    // instruction with the same meaning for every address. The DSB makes the table stores
    // visible to the walker; stale TLB entries and I-cache lines are invalidated before SCTLR
    // turns translation and caches on. RAM was clean at entry (the ABI's boot state), so no
    // stale data lines shadow what was written with the caches off.
    unsafe {
        core::arch::asm!(
            "msr mair_el1, {mair}",
            "msr tcr_el1, {tcr}",
            "msr ttbr0_el1, {root}",
            "dsb ish",
            "tlbi vmalle1",
            "ic iallu",
            "dsb nsh",
            "isb",
            "msr sctlr_el1, {sctlr}",
            "isb",
            mair = in(reg) MAIR,
            tcr = in(reg) TCR,
            root = in(reg) root,
            sctlr = in(reg) SCTLR,
            options(nostack),
        );
    }
}

/// SCTLR_EL1.{M, C, I} as read back: what the MMU check expects to be all set.
pub fn translation_and_caches_on() -> bool {
    use aarch64_cpu::registers::{Readable, SCTLR_EL1};
    let sctlr = SCTLR_EL1.get();
    sctlr & (1 << 0) != 0 && sctlr & (1 << 2) != 0 && sctlr & (1 << 12) != 0
}

/// The value written to SCTLR_EL1 (for the report).
pub const SCTLR_VALUE: u64 = SCTLR;
