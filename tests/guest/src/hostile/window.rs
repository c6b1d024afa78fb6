//! The probe window: a stage-1 mapping of the attack's own through which any IPA can be reached.
//!
//! The identity map of `mmu.rs` (TTBR0_EL1, a 4 GiB VA space, 32-bit output addresses) maps only
//! the devices and RAM of the VM's memory map. The attack needs every IPA: holes anywhere, the
//! top of the VM's 39-bit IPA space and what lies beyond it. So it turns on the other half of the
//! EL1&0 regime, TTBR1_EL1, with the smallest VA range the architecture allows (T1SZ = 39: 32 MiB
//! at the top of the address space, walks starting at level 2; ARM ARM D8.2, "Translation
//! granule and the VA range"), and widens TCR_EL1.IPS to what ID_AA64MMFR0_EL1.PARange reports,
//! so that output addresses up to the CPU's PA size are encoded (stage 1 answers larger ones
//! with its own address size fault). TTBR0's mappings do not change.
//!
//! ```text
//! TTBR1_EL1 -> level 2 (16 entries of 2 MiB)
//!   [0] WINDOW_BASE -> level 3: SLOTS probe pages at even indexes, odd pages invalid
//!                      (an access that crosses a slot's end takes stage 1's translation fault),
//!                      except the page after the pair slot (`map_pair`)
//!   [1] WALK_BASE   -> a "table" at a non-memory IPA the attack chooses (`walk_through`): every
//!                      access there is a stage-1 walk that reaches stage 2 and cannot complete
//! ```
//!
//! [`map`] points one slot at an IPA page with one of [`Attr`] and invalidates its TLB entry
//! (`TLBI VAAE1`, all ASIDs, by VA; the entries are global). The tables are written with the
//! MMU on, through Normal write-back memory, which the walker reads coherently (TCR_EL1.IRGN1 and
//! ORGN1 write-back); `DSB ISHST` orders each store before its invalidation.

use core::arch::asm;
use core::cell::UnsafeCell;

/// The first VA of the TTBR1 range with T1SZ = 39.
pub const WINDOW_BASE: u64 = 0xFFFF_FFFF_FE00_0000;
/// The VAs whose walk goes through the table at [`walk_through`]'s IPA.
pub const WALK_BASE: u64 = WINDOW_BASE + (2 << 20);
/// How many probe slots level 3 holds.
pub const SLOTS: usize = 8;
/// The slots the access probes use; then the pair slot ([`map_pair`]) and the code slot
/// (`sysregs.rs`).
pub const PROBES: usize = SLOTS - 2;
/// The slot whose following page is mapped too, by [`map_pair`].
pub const PAIR_SLOT: usize = SLOTS - 2;
/// A page.
const PAGE: u64 = 4096;

/// Memory attributes of a probe page (AttrIndx into MAIR_EL1: 0 and 1 are `mmu.rs`'s, 2 and 3
/// are added by [`enable`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Attr {
    /// Device-nGnRE (MAIR 0x04), as the identity map's devices.
    Device = 0,
    /// Normal write-back (MAIR 0xff): needed for DC ZVA and for exclusives to reach stage 2.
    Normal = 1,
    /// Normal non-cacheable (MAIR 0x44).
    NormalUncached = 2,
    /// Device-nGnRnE (MAIR 0x00).
    DeviceStrict = 3,
}

/// Every attribute, for random choice.
pub const ATTRS: [Attr; 4] = [
    Attr::Device,
    Attr::Normal,
    Attr::NormalUncached,
    Attr::DeviceStrict,
];

/// Level 3 page / level 2 table descriptor; AF; SH inner; PXN; UXN (ARM ARM D8.3).
const VALID_PAGE: u64 = 0b11;
const AF: u64 = 1 << 10;
const SH_INNER: u64 = 0b11 << 8;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;
/// Output address bits [47:12] of a descriptor.
const OA_MASK: u64 = 0x0000_FFFF_FFFF_F000;

/// TCR_EL1 fields (ARM ARM, TCR_EL1): T1SZ [21:16], EPD1 [23], IRGN1 [25:24], ORGN1 [27:26],
/// SH1 [29:28], TG1 [31:30] (0b10: 4 KiB), IPS [34:32].
const T1SZ_39: u64 = 39 << 16;
const EPD1: u64 = 1 << 23;
const TTBR1_WALKS: u64 = (0b01 << 24) | (0b01 << 26) | (0b11 << 28) | (0b10 << 30);
const TCR_T1_MASK: u64 = (0x3f << 16) | EPD1 | (0xff << 24) | (0b111 << 32);
/// MAIR_EL1 Attr2 = Normal non-cacheable, Attr3 = Device-nGnRnE.
const MAIR_ADDED: u64 = 0x44 << 16;
const MAIR_ADDED_MASK: u64 = 0xffff << 16;

#[repr(C, align(4096))]
struct Table(UnsafeCell<[u64; 512]>);

// SAFETY: written only by the attack on the only CPU (exceptions do not touch them); the
// hardware walker reads them.
unsafe impl Sync for Table {}

static LEVEL2: Table = Table(UnsafeCell::new([0; 512]));
static LEVEL3: Table = Table(UnsafeCell::new([0; 512]));

fn write_entry(table: &Table, index: usize, value: u64) {
    let entry = table.0.get().cast::<u64>().wrapping_add(index & 511);
    // SAFETY: `entry` is inside the 512-entry table (index masked); the tables hold no Rust
    // object but these words, and only this module writes them.
    unsafe { entry.write_volatile(value) };
}

/// Invalidates the walk and TLB entries of `va` after a descriptor store.
fn invalidate(va: u64) {
    // SAFETY: TLB maintenance for one VA of the probe window and barriers; it changes no data
    // and only makes the next access walk the tables again.
    unsafe {
        asm!(
            "dsb ishst",
            "tlbi vaae1, {page}",
            "dsb ish",
            "isb",
            page = in(reg) (va >> 12) & ((1 << 44) - 1),
            options(nostack),
        );
    }
}

/// The PA size stage 1 may output, as TCR_EL1.IPS encodes it (at most 0b101, 48 bits: the
/// descriptors have no room for more with 4 KiB pages).
fn pa_size_field() -> u64 {
    let mmfr0: u64;
    // SAFETY: reading an ID register has no side effect.
    unsafe { asm!("mrs {}, id_aa64mmfr0_el1", out(reg) mmfr0, options(nomem, nostack)) };
    (mmfr0 & 0xf).min(0b101)
}

/// The CPU's PA size in bits (what [`enable`] gave TCR_EL1.IPS).
pub fn pa_bits() -> u32 {
    match pa_size_field() {
        0 => 32,
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        _ => 48,
    }
}

/// Builds the window and turns TTBR1 walks on. Slots start invalid.
pub fn enable() {
    write_entry(&LEVEL2, 0, LEVEL3.0.get() as u64 | VALID_PAGE);
    let (tcr, mair): (u64, u64);
    // SAFETY: reading the translation controls has no side effect.
    unsafe {
        asm!("mrs {}, tcr_el1", "mrs {}, mair_el1", out(reg) tcr, out(reg) mair,
            options(nomem, nostack));
    }
    let tcr = (tcr & !TCR_T1_MASK) | T1SZ_39 | TTBR1_WALKS | (pa_size_field() << 32);
    let mair = (mair & !MAIR_ADDED_MASK) | MAIR_ADDED;
    // SAFETY: TTBR0's half of the regime keeps its tables and attributes (MAIR indexes 0 and 1
    // and the T0 fields are unchanged; a wider IPS only allows larger output addresses, which
    // the identity map has none of). The new half maps nothing the running code uses. The TLB
    // is invalidated after the change, as a TCR_EL1 write requires (ARM ARM D8.13).
    unsafe {
        asm!(
            "dsb ishst",
            "msr ttbr1_el1, {root}",
            "msr mair_el1, {mair}",
            "msr tcr_el1, {tcr}",
            "isb",
            "tlbi vmalle1",
            "dsb ish",
            "isb",
            root = in(reg) LEVEL2.0.get() as u64,
            mair = in(reg) mair,
            tcr = in(reg) tcr,
            options(nostack),
        );
    }
}

/// The VA of probe slot `slot` (taken modulo [`SLOTS`]).
pub fn slot_address(slot: usize) -> u64 {
    WINDOW_BASE + 2 * (slot % SLOTS) as u64 * PAGE
}

/// Points probe slot `slot` at the IPA page holding `ipa`, with `attr`, executable at EL1 when
/// `executable`. An IPA past bit 47 cannot be encoded and is cut to 48 bits.
pub fn map(slot: usize, ipa: u64, attr: Attr, executable: bool) -> u64 {
    let va = slot_address(slot);
    let execute = if executable { 0 } else { PXN };
    let descriptor = (ipa & OA_MASK) | (attr as u64) << 2 | AF | SH_INNER | UXN | execute;
    write_entry(&LEVEL3, 2 * (slot % SLOTS), descriptor | VALID_PAGE);
    invalidate(va);
    va
}

/// Points the pair slot at the IPA page of `first` and the VA page after it at that of
/// `second` (any two IPAs: stage 1 may put unrelated pages side by side), with `attr`; the VA of
/// the first.
pub fn map_pair(first: u64, second: u64, attr: Attr) -> u64 {
    let va = map(PAIR_SLOT, first, attr, false);
    let descriptor = (second & OA_MASK) | (attr as u64) << 2 | AF | SH_INNER | UXN | PXN;
    write_entry(&LEVEL3, 2 * PAIR_SLOT + 1, descriptor | VALID_PAGE);
    invalidate(va + PAGE);
    va
}

/// Makes the level-2 entry for [`WALK_BASE`] a table descriptor pointing at the IPA page of
/// `ipa`: the next access there makes the walker read a descriptor from that IPA.
pub fn walk_through(ipa: u64) {
    write_entry(&LEVEL2, 1, (ipa & OA_MASK) | VALID_PAGE);
    invalidate(WALK_BASE);
}

/// Turns TTBR1 walks off again (EPD1), leaving TTBR0's map as `mmu.rs` built it.
pub fn disable() {
    let tcr: u64;
    // SAFETY: reading TCR_EL1 has no side effect.
    unsafe { asm!("mrs {}, tcr_el1", out(reg) tcr, options(nomem, nostack)) };
    // SAFETY: only the TTBR1 half stops walking; nothing the code uses lives there.
    unsafe {
        asm!(
            "msr tcr_el1, {tcr}",
            "isb",
            "tlbi vmalle1",
            "dsb ish",
            "isb",
            tcr = in(reg) tcr | EPD1,
            options(nostack),
        );
    }
}
