//! Class 2 of the attack: every register offset of the emulated devices, with every width,
//! read and written with random values; and the rules that keep random values harmless to the
//! guest itself ([`sanitized`], [`pl011_sane`]).
//!
//! The offsets swept, through the identity map's Device pages (`mmu.rs`), 4 bytes apart:
//!
//! | device | offsets | model |
//! |---|---|---|
//! | PL011 | 0x000..0x04C, 0xFE0..0x1000 | the pl011 server (drivers/pl011/core) |
//! | GIC distributor | 0x0000..0x1000 (CTLR..NSACR, SGIR and the SGI pending registers), 0x6000..0x6800 (IROUTER of INTIDs 0..255), 0xFFD0..0x10000 (ID registers) | the vmm's vGIC |
//! | GIC redistributor | RD 0x0000..0x0100 and 0xFFD0..0x10000, SGI 0x1_0000..0x1_1000 | the vmm's vGIC |
//! | virtio transports 0 and 1 | 0x000..0x240 (the 0x200 window and past its end), 0xFF0..0x1000 | the blk and console servers (drivers/virtio/core) |
//!
//! Each class-2 operation takes the next (offset, width, direction) of that sweep three times in
//! four, so every combination comes round every [`SWEEP`] operations, and a random one
//! otherwise. Widths are 1, 2, 4 and 8 bytes: byte and halfword accesses at a random aligned
//! position inside the word, doublewords at the word aligned down to 8 (a quarter of them left
//! unaligned, which Device memory answers with an alignment fault before stage 2). Reads are
//! not judged; every access must come back, with a value or an injected abort.
//!
//! Random values would otherwise hurt the guest, not the hypervisor: a queue address in the
//! guest's own RAM would let a device write over its code, and control bytes on the console
//! would garble the log. So [`sanitized`] moves a virtio queue address that lands in RAM into
//! the attack's scratch block and makes PL011 data bytes printable; and [`pl011_sane`] restores
//! a transmitting UART (UARTEN, TXE, RXE; 8-bit FIFO mode; no interrupt) before every line the
//! attack prints.

use core::arch::asm;

use super::rng::Rng;
use super::targets::{VIRTIO_PRESENT, VIRTIO_STRIDE};
use super::{SCRATCH, SCRATCH_SIZE};
use crate::layout::{GICD_BASE, GICR_BASE, PL011_BASE, RAM_BASE, RAM_SIZE, VIRTIO_BASE};

/// A device's swept ranges: (base, [start, end) offsets).
type Ranges = (u64, &'static [(u64, u64)]);

const PL011: Ranges = (PL011_BASE, &[(0x000, 0x04C), (0xFE0, 0x1000)]);
const GICD: Ranges = (
    GICD_BASE,
    &[(0x0000, 0x1000), (0x6000, 0x6800), (0xFFD0, 0x1_0000)],
);
const GICR: Ranges = (
    GICR_BASE,
    &[(0x0000, 0x0100), (0xFFD0, 0x1_0000), (0x1_0000, 0x1_1000)],
);
const VIRTIO_RANGES: &[(u64, u64)] = &[(0x000, 0x240), (0xFF0, 0x1000)];
const VIRTIO0: Ranges = (VIRTIO_BASE, VIRTIO_RANGES);
const VIRTIO1: Ranges = (VIRTIO_BASE + VIRTIO_STRIDE, VIRTIO_RANGES);
const DEVICES: [Ranges; 5] = [PL011, GICD, GICR, VIRTIO0, VIRTIO1];
const _: () = assert!(VIRTIO_PRESENT == 2);

const fn words(ranges: &[(u64, u64)]) -> u64 {
    let mut total = 0;
    let mut i = 0;
    while i < ranges.len() {
        total += (ranges[i].1 - ranges[i].0) / 4;
        i += 1;
    }
    total
}

/// Word offsets in the sweep.
const WORDS: u64 = {
    let mut total = 0;
    let mut i = 0;
    while i < DEVICES.len() {
        total += words(DEVICES[i].1);
        i += 1;
    }
    total
};
/// (offset, width, direction) combinations: four widths, read and write.
pub const SWEEP: u64 = WORDS * 8;

/// The `n`-th word of the sweep as an address.
fn word_address(mut n: u64) -> u64 {
    for (base, ranges) in DEVICES {
        for &(start, end) in ranges {
            let count = (end - start) / 4;
            if n < count {
                return base + start + 4 * n;
            }
            n -= count;
        }
    }
    PL011_BASE
}

// PL011 registers (PL011 TRM, DDI 0183, §3.3).
const UARTDR: u64 = 0x000;
const UARTLCR_H: u64 = 0x02C;
const UARTCR: u64 = 0x030;
const UARTIMSC: u64 = 0x038;
const UARTICR: u64 = 0x044;
const UARTDMACR: u64 = 0x048;
/// UARTCR: UARTEN, TXE, RXE.
const CR_ENABLED: u32 = 0x301;
/// UARTLCR_H: WLEN = 8 bits, FEN.
const LCR_H_8N1_FIFO: u32 = 0x70;

/// The virtio queue address registers (QueueDescLow .. QueueDeviceHigh, 0x080..0x0a8).
const QUEUE_ADDRESSES: core::ops::Range<u64> = 0x080..0x0a8;

/// `value` as a store to `address` may carry it (see the module comment).
pub fn sanitized(address: u64, value: u64) -> u64 {
    if (PL011_BASE + UARTDR..PL011_BASE + UARTDR + 4).contains(&address) {
        // A printable byte in every byte lane the store may cover.
        let printable = 0x20 + value % 95;
        return printable * 0x0101_0101_0101_0101;
    }
    let transports = VIRTIO_BASE..VIRTIO_BASE + VIRTIO_PRESENT * VIRTIO_STRIDE;
    if transports.contains(&address) && QUEUE_ADDRESSES.contains(&(address % VIRTIO_STRIDE)) {
        let low = value & 0xFFFF_FFFF;
        if (RAM_BASE..RAM_BASE + RAM_SIZE).contains(&low) {
            return (value & !0xFFFF_FFFF) | (SCRATCH + low % SCRATCH_SIZE);
        }
    }
    value
}

/// One load of a device register.
macro_rules! load {
    ($template:literal, $address:expr) => {
        // SAFETY: `$address` is a register of an emulated device, identity-mapped Device by
        // mmu.rs (PL011, GIC frames, the virtio block); the load returns a value or takes an
        // injected abort or a local alignment fault, which trap.rs steps over. Not `nomem`.
        unsafe { asm!($template, a = in(reg) $address, v = out(reg) _, options(nostack)) }
    };
}

/// One store to a device register.
macro_rules! store {
    ($template:literal, $address:expr, $value:expr) => {
        // SAFETY: as in `load!`; the value went through `sanitized`, so no device is pointed at
        // the guest's own RAM.
        unsafe { asm!($template, a = in(reg) $address, v = in(reg) $value, options(nostack)) }
    };
}

fn read(address: u64, width: u64) {
    match width {
        1 => load!("ldrb {v:w}, [{a}]", address),
        2 => load!("ldrh {v:w}, [{a}]", address),
        4 => load!("ldr {v:w}, [{a}]", address),
        _ => load!("ldr {v}, [{a}]", address),
    }
}

fn write(address: u64, width: u64, value: u64) {
    match width {
        1 => store!("strb {v:w}, [{a}]", address, value),
        2 => store!("strh {v:w}, [{a}]", address, value),
        4 => store!("str {v:w}, [{a}]", address, value),
        _ => store!("str {v}, [{a}]", address, value),
    }
}

/// One access of `width` to the word at `word`, placed inside it as the module comment says.
fn access(rng: &mut Rng, word: u64, width: u64, store: bool) {
    let address = match width {
        1 => word + rng.below(4),
        2 => word + 2 * rng.below(2),
        4 => word,
        _ if rng.one_in(4) => word,
        _ => word & !7,
    };
    if store {
        write(address, width, sanitized(address, rng.next()));
    } else {
        read(address, width);
    }
}

/// Class 2: operation number `n` of the class (the sweep position).
pub fn register(rng: &mut Rng, n: u64) {
    let combination = if rng.one_in(4) {
        rng.below(SWEEP)
    } else {
        n % SWEEP
    };
    let word = word_address(combination / 8);
    let width = 1 << (combination % 4);
    access(rng, word, width, combination & 4 != 0);
}

/// Puts the PL011 back in a state that transmits: enabled, 8-bit FIFO mode, no interrupt
/// unmasked or raised, no DMA.
pub fn pl011_sane() {
    let registers = [
        (UARTCR, CR_ENABLED),
        (UARTLCR_H, LCR_H_8N1_FIFO),
        (UARTIMSC, 0),
        (UARTICR, 0x7FF),
        (UARTDMACR, 0),
    ];
    for (offset, value) in registers {
        write(PL011_BASE + offset, 4, u64::from(value));
    }
}
