//! Classes 1, 3 and 4 of the attack: loads and stores at random IPAs, accesses that leave the
//! syndrome's ISV clear, instruction fetches from non-memory IPAs, and the guest's own stage-1
//! walks through a table that is not memory.
//!
//! Every access goes through a probe slot of `window.rs` mapped at the target IPA page with a
//! random memory type. What comes back is one of: a value (an emulated device register), an
//! injected abort (a hole, a register that does not decode, no syndrome to emulate from), or a
//! local stage-1 fault (alignment on Device memory, an output address past the PA size, the
//! invalid page after each slot). `trap.rs` recovers and counts the exceptions; apart from the
//! known registers below, only that every access returns is checked.
//!
//! - Class 1 ([`data`]): single loads and stores of 1, 2, 4 and 8 bytes, zero- and
//!   sign-extending, acquire/release, `str xzr`: accesses a data abort syndrome describes (ISV
//!   set, ARM ARM D17.2.40), which the hypervisor may emulate. Offsets are aligned to the width
//!   seven times in eight, and random otherwise (possibly crossing into the invalid page).
//!   A quarter of them are walks instead ([`walk`]): the level-2 entry of `WALK_BASE` points at
//!   a non-memory IPA, so the access's translation table walk reads there (stage 2 reports it
//!   with S1PTW set; the vmm must not emulate it, docs/VMM.md). An eighth are loads of a
//!   register whose value is known ([`known_value`]), the one place values are judged: the
//!   emulated load must narrow and extend as the instruction says. An eighth straddle two
//!   pages ([`crossing`]): RAM and the hole after it, a device and a hole, two devices. Loads
//!   into XZR/WZR are among the forms (an emulation must write no register).
//! - Class 3 ([`no_syndrome`]): pairs, writeback forms, exclusives, SIMD, DC ZVA and cache
//!   maintenance by VA (ISV clear; DC ZVA needs a Normal mapping to reach stage 2 at all).
//! - Class 4 ([`fetch`]): a `blr` into an executable probe page at a hole, a device page, the
//!   top of the IPA space or beyond; the instruction abort resumes at the link register.
//!
//! Stores to device pages carry values from `registers::sanitized`, so that random stores never
//! point a virtio queue at the guest's own RAM or print control bytes on the console.

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

use super::registers;
use super::rng::Rng;
use super::targets::{self, Kind, PAGE, VIRTIO_STRIDE};
use super::trap;
use super::window::{self, ATTRS, Attr, WALK_BASE};
use crate::layout::{GICD_BASE, GICR_BASE, PL011_BASE, RAM_BASE, RAM_SIZE, VIRTIO_BASE};
use crate::println;
use crate::uart::Hex;

/// One access instruction, `v` the value register, `a` the address.
macro_rules! access {
    ($template:literal, $va:expr, $value:expr) => {{
        let mut value: u64 = $value;
        // SAFETY: `$va` is a probe-window VA (window.rs), mapped only at a non-RAM IPA or not at
        // all, so the access touches no Rust object; it completes, or takes an exception that
        // trap.rs recovers by stepping over it. Not `nomem`: the handler writes atomics.
        unsafe {
            asm!($template, a = in(reg) $va, v = inout(reg) value, options(nostack));
        }
        value
    }};
}

/// As [`access!`], for instructions with a second data register (`t`), a written-back base or
/// a SIMD register.
macro_rules! access2 {
    ($template:literal, $va:expr, $value:expr) => {{
        let value: u64 = $value;
        // SAFETY: as in `access!`; the base register, `t` and v0 are declared changed.
        unsafe {
            asm!($template, a = inout(reg) $va => _, v = in(reg) value, t = out(reg) _,
                out("v0") _, options(nostack));
        }
    }};
}

/// The ISV-set forms and their widths in bytes.
const DATA_FORMS: u8 = 21;

fn data_width(form: u8) -> u64 {
    match form {
        0 | 4 | 7 | 8 | 17 => 1,
        1 | 5 | 9 | 18 | 20 => 2,
        2 | 6 | 10 | 13 | 15 => 4,
        _ => 8,
    }
}

/// Runs form `form` at `va` (`value` is stored, or is what a load that aborts leaves); the
/// value register afterwards.
fn data_form(form: u8, va: u64, value: u64) -> u64 {
    match form {
        0 => access!("ldrb {v:w}, [{a}]", va, value),
        1 => access!("ldrh {v:w}, [{a}]", va, value),
        2 => access!("ldr {v:w}, [{a}]", va, value),
        3 => access!("ldr {v}, [{a}]", va, value),
        4 => access!("ldrsb {v}, [{a}]", va, value),
        5 => access!("ldrsh {v}, [{a}]", va, value),
        6 => access!("ldrsw {v}, [{a}]", va, value),
        7 => access!("ldrsb {v:w}, [{a}]", va, value),
        8 => access!("strb {v:w}, [{a}]", va, value),
        9 => access!("strh {v:w}, [{a}]", va, value),
        10 => access!("str {v:w}, [{a}]", va, value),
        11 => access!("str {v}, [{a}]", va, value),
        12 => access!("str xzr, [{a}] // {v}", va, value),
        13 => access!("ldar {v:w}, [{a}]", va, value),
        14 => access!("ldar {v}, [{a}]", va, value),
        15 => access!("stlr {v:w}, [{a}]", va, value),
        16 => access!("stlr {v}, [{a}]", va, value),
        17 => access!("ldarb {v:w}, [{a}]", va, value),
        18 => access!("stlrh {v:w}, [{a}]", va, value),
        // Loads into the zero register: an emulation must write nothing (x31 is not SP here).
        19 => access!("ldr xzr, [{a}] // {v}", va, value),
        _ => access!("ldrh wzr, [{a}] // {v}", va, value),
    }
}

/// Registers whose value never changes, as (IPA, value): the PL011's identification bytes
/// (drivers/pl011/core: QEMU's PeriphID and the PrimeCell preamble, two with bit 7 set) and
/// the virtio transports' MagicValue, Version, DeviceID and VendorID (docs/VIRTIO.md).
const KNOWN: [(u64, u32); 16] = [
    (PL011_BASE + 0xFE0, 0x11),
    (PL011_BASE + 0xFE4, 0x10),
    (PL011_BASE + 0xFE8, 0x14),
    (PL011_BASE + 0xFEC, 0x00),
    (PL011_BASE + 0xFF0, 0x0D),
    (PL011_BASE + 0xFF4, 0xF0),
    (PL011_BASE + 0xFF8, 0x05),
    (PL011_BASE + 0xFFC, 0xB1),
    (VIRTIO_BASE, 0x7472_6976),
    (VIRTIO_BASE + 0x4, 2),
    (VIRTIO_BASE + 0x8, 2),
    (VIRTIO_BASE + 0xC, 0x766B_7668),
    (VIRTIO_BASE + VIRTIO_STRIDE, 0x7472_6976),
    (VIRTIO_BASE + VIRTIO_STRIDE + 0x4, 2),
    (VIRTIO_BASE + VIRTIO_STRIDE + 0x8, 3),
    (VIRTIO_BASE + VIRTIO_STRIDE + 0xC, 0x766B_7668),
];

/// The loads [`known_value`] checks, and what each makes of a register holding `v` (ARM ARM
/// C6.2: LDRB/LDRH zero-extend, LDRSB/LDRSH/LDRSW sign-extend to 64 bits, or to 32 for a W
/// destination, whose upper half is then zero).
const CHECKED_LOADS: [u8; 9] = [0, 1, 2, 4, 5, 6, 7, 13, 17];

fn loaded(form: u8, v: u32) -> u64 {
    match form {
        0 | 17 => u64::from(v & 0xFF),
        1 => u64::from(v & 0xFFFF),
        4 => v as u8 as i8 as i64 as u64,
        5 => v as u16 as i16 as i64 as u64,
        6 => v as i32 as i64 as u64,
        7 => u64::from(v as u8 as i8 as i32 as u32),
        _ => u64::from(v),
    }
}

static WRONG_VALUES: AtomicU64 = AtomicU64::new(0);
static CHECKED_VALUES: AtomicU64 = AtomicU64::new(0);

/// How many loads of a constant register completed (and were judged).
pub fn checked_values() -> u64 {
    CHECKED_VALUES.load(Ordering::SeqCst)
}

/// How many loads of a constant register came back with the wrong value.
pub fn wrong_values() -> u64 {
    WRONG_VALUES.load(Ordering::SeqCst)
}

/// Part of class 1: a load of a register whose value is known, through a probe slot of random
/// memory type; when it completes (a device may refuse a width with an abort), the value must
/// be the register's, narrowed and extended as the instruction says -- on the vmm's path and
/// on the kernel's MMIO fast path alike.
fn known_value(rng: &mut Rng) -> Kind {
    let (ipa, v) = rng.pick(&KNOWN);
    let form = rng.pick(&CHECKED_LOADS);
    let attr = if rng.one_in(2) {
        Attr::Device
    } else {
        Attr::Normal
    };
    let slot = rng.below(window::PROBES as u64) as usize;
    let va = window::map(slot, ipa, attr, false) + ipa % PAGE;
    let garbage = rng.next();
    let before = trap::tally().total();
    let value = data_form(form, va, garbage);
    if trap::tally().total() != before {
        return Kind::Device;
    }
    CHECKED_VALUES.store(CHECKED_VALUES.load(Ordering::SeqCst) + 1, Ordering::SeqCst);
    if value != loaded(form, v) {
        let wrong = WRONG_VALUES.load(Ordering::SeqCst) + 1;
        WRONG_VALUES.store(wrong, Ordering::SeqCst);
        if wrong == 1 {
            registers::pl011_sane();
            println!(
                "hostile: load form {form} of {} (holding {v:#x}) returned {}",
                Hex(ipa),
                Hex(value)
            );
        }
    }
    Kind::Device
}

/// The ISV-clear forms.
const NO_SYNDROME_FORMS: u8 = 21;

fn no_syndrome_form(form: u8, va: u64, value: u64) {
    match form {
        0 => access2!("ldp {v}, {t}, [{a}]", va, value),
        1 => access2!("stp {v}, {v}, [{a}] // {t}", va, value),
        2 => access2!("ldp {t:w}, {v:w}, [{a}]", va, value),
        3 => access2!("stp {v:w}, {v:w}, [{a}] // {t}", va, value),
        4 => access2!("ldr {t}, [{a}], #8 // {v}", va, value),
        5 => access2!("str {v}, [{a}, #8]! // {t}", va, value),
        6 => access2!("ldxr {t}, [{a}] // {v}", va, value),
        7 => access2!("ldxr {t:w}, [{a}] // {v}", va, value),
        8 => access2!("stxr {t:w}, {v}, [{a}]", va, value),
        9 => access2!("ldaxr {t}, [{a}] // {v}", va, value),
        10 => access2!("stlxr {t:w}, {v:w}, [{a}]", va, value),
        11 => access2!("ldr q0, [{a}] // {v} {t}", va, value),
        12 => access2!("fmov d0, {v}\n str q0, [{a}] // {t}", va, value),
        13 => access2!("ld1 {{v0.16b}}, [{a}] // {v} {t}", va, value),
        14 => access2!("ldnp {v}, {t}, [{a}]", va, value),
        15 => access2!("dc zva, {a} // {v} {t}", va, value),
        16 => access2!("dc civac, {a} // {v} {t}", va, value),
        17 => access2!("dc cvac, {a} // {v} {t}", va, value),
        18 => access2!("dc ivac, {a} // {v} {t}", va, value),
        19 => access2!("ldxp {t}, {v}, [{a}]", va, value),
        _ => access2!("ldrb {t:w}, [{a}, #1]! // {v}", va, value),
    }
}

/// A random offset in a page for an access of `width` bytes: aligned 7 times in 8.
fn offset(rng: &mut Rng, width: u64) -> u64 {
    if rng.one_in(8) {
        rng.below(PAGE)
    } else {
        rng.below(PAGE / width) * width
    }
}

/// Class 1: one single load or store (one time in four a walk instead, one in eight a load of
/// a known value, one in eight an access across two pages). Returns the target kind.
pub fn data(rng: &mut Rng) -> Kind {
    match rng.below(8) {
        0 | 1 => return walk(rng),
        2 => return known_value(rng),
        3 => return crossing(rng),
        _ => {}
    }
    let kind = targets::kind(rng);
    let page = targets::page_of(rng, kind);
    let form = rng.below(u64::from(DATA_FORMS)) as u8;
    let offset = offset(rng, data_width(form));
    let va = window::map(
        rng.below(window::PROBES as u64) as usize,
        page,
        rng.pick(&ATTRS),
        false,
    );
    let value = registers::sanitized(page + offset, rng.next());
    data_form(form, va + offset, value);
    kind
}

/// Page pairs an access can straddle, as (first, second) IPA pages: RAM into the hole past it,
/// devices into the holes around them, one virtio transport into the next, the distributor's
/// last page into the hole after it, the redistributor's RD frame into its SGI frame and its
/// end into a hole, the top of the IPA space into what is past it.
const PAIRS: [(u64, u64); 9] = [
    (RAM_BASE + RAM_SIZE - PAGE, RAM_BASE + RAM_SIZE),
    (PL011_BASE - PAGE, PL011_BASE),
    (PL011_BASE, PL011_BASE + PAGE),
    (VIRTIO_BASE, VIRTIO_BASE + VIRTIO_STRIDE),
    (VIRTIO_BASE + VIRTIO_STRIDE, VIRTIO_BASE + 2 * VIRTIO_STRIDE),
    (GICD_BASE + 15 * PAGE, GICD_BASE + 16 * PAGE),
    (GICR_BASE + 15 * PAGE, GICR_BASE + 16 * PAGE),
    (GICR_BASE + 31 * PAGE, GICR_BASE + 32 * PAGE),
    (targets::IPA_END - PAGE, targets::IPA_END),
];

/// Part of class 1: an access of 2 to 8 bytes that straddles two VA pages mapped Normal (so no
/// alignment fault stops it first) at two IPA pages: one of [`PAIRS`], or any two target pages
/// side by side. No device window holds the whole access: the hypervisor must not emulate it
/// as one (docs/VMM.md: straddling a window's end is an abort).
fn crossing(rng: &mut Rng) -> Kind {
    let (first, second) = if rng.one_in(2) {
        rng.pick(&PAIRS)
    } else {
        let first = targets::page_of(rng, Kind::Device);
        let kind = targets::kind(rng);
        (first, targets::page_of(rng, kind))
    };
    let form = loop {
        let form = rng.below(u64::from(DATA_FORMS)) as u8;
        if data_width(form) > 1 {
            break form;
        }
    };
    let width = data_width(form);
    let va = window::map_pair(first, second, Attr::Normal) + PAGE - 1 - rng.below(width - 1);
    let value = registers::sanitized(second, registers::sanitized(first + PAGE - 4, rng.next()));
    data_form(form, va, value);
    Kind::Device
}

/// A load, store or fetch whose stage-1 walk reads a table at a non-memory IPA.
pub fn walk(rng: &mut Rng) -> Kind {
    let kind = targets::kind(rng);
    window::walk_through(targets::page_of(rng, kind));
    let va = WALK_BASE + rng.below(2 << 20) / 8 * 8;
    if rng.one_in(4) {
        branch(va);
    } else {
        // Loads only (forms 0..8): should the walk wrongly succeed, nothing is written.
        data_form(rng.below(8) as u8, va, 0);
    }
    kind
}

/// Class 3: one access that leaves ISV clear.
pub fn no_syndrome(rng: &mut Rng) -> Kind {
    let kind = targets::kind(rng);
    let page = targets::page_of(rng, kind);
    // Normal memory half the time: DC ZVA and exclusives need it to reach stage 2.
    let attr = if rng.one_in(2) {
        Attr::Normal
    } else {
        rng.pick(&ATTRS)
    };
    let offset = if rng.one_in(8) {
        rng.below(PAGE)
    } else {
        rng.below(PAGE / 16 - 1) * 16
    };
    let va = window::map(rng.below(window::PROBES as u64) as usize, page, attr, false);
    let value = registers::sanitized(page + offset, rng.next());
    no_syndrome_form(
        rng.below(u64::from(NO_SYNDROME_FORMS)) as u8,
        va + offset,
        value,
    );
    kind
}

/// Class 4: one fetch from a non-memory IPA.
pub fn fetch(rng: &mut Rng) -> Kind {
    let kind = targets::kind(rng);
    let page = targets::page_of(rng, kind);
    let attr = if rng.one_in(2) {
        Attr::Device
    } else {
        Attr::Normal
    };
    let va = window::map(rng.below(window::PROBES as u64) as usize, page, attr, true);
    branch(va + rng.below(PAGE / 4) * 4);
    kind
}

/// Branches to `target` with `blr`; the abort (or whatever else) resumes at the link.
fn branch(target: u64) {
    trap::branching(true);
    // SAFETY: `target` is a probe-window VA at a non-memory IPA (or behind a table at one):
    // the fetch aborts and trap.rs resumes at x30, the instruction after the `blr`. Should
    // something execute there instead, the first exception it takes resumes there too. Every
    // caller-saved register is declared clobbered, as for a call.
    unsafe {
        asm!("blr {target}", target = in(reg) target, clobber_abi("C"), options(nostack));
    }
    trap::branching(false);
}
