//! Check 4: RAM across many 4 KiB pages and several 2 MiB blocks, and the [`Window`] type
//! through which the checks touch test RAM.
//!
//! Each access to never-touched RAM is a stage-2 translation fault the hypervisor resolves
//! (with a 4 KiB page or a 2 MiB block, its choice). The check first reads every word of the
//! page window and one word of each probed block and expects zero (the ABI: RAM reads as zero
//! on first touch), then writes address-dependent patterns -- every word of all 256 pages,
//! twice with complementary patterns, and one word per block -- and re-reads them only after
//! all writes, so two pages aliasing one frame cannot both pass.

use crate::checks::Outcome;
use crate::layout::{
    BLOCK_PROBES, BLOCK_SIZE, DIRTY_WINDOW, DIRTY_WINDOW_SIZE, PAGE_SIZE, PAGE_WINDOW,
    PAGE_WINDOW_SIZE, RAM_BASE,
};
use crate::println;
use crate::uart::Hex;

/// A range of test RAM, read and written a 64-bit word at a time with volatile accesses (the
/// point is that the accesses happen, in order, so the compiler may not merge or drop them).
/// Construction is the only unsafe step; offsets are checked.
pub struct Window {
    base: u64,
    size: u64,
}

impl Window {
    /// The RAM range `[base, base + size)`.
    ///
    /// # Safety
    ///
    /// 1. The range is guest RAM mapped read-write at stage 1 (or the MMU is off).
    /// 2. No Rust object lives in it: it is outside the image, its stack and its page tables.
    const unsafe fn new(base: u64, size: u64) -> Self {
        Self { base, size }
    }

    /// The address of the word at `offset`; panics if it is outside or misaligned.
    fn address(&self, offset: u64) -> *mut u64 {
        assert!(
            offset < self.size && offset.is_multiple_of(8),
            "offset {offset:#x} outside window"
        );
        (self.base + offset) as *mut u64
    }

    /// Reads the word at `offset`.
    pub fn read(&self, offset: u64) -> u64 {
        // SAFETY: `address` checked the offset against the window, which `new`'s caller vouched
        // is mapped RAM holding no Rust object; the access is an aligned u64.
        unsafe { self.address(offset).read_volatile() }
    }

    /// Writes the word at `offset`.
    pub fn write(&self, offset: u64, value: u64) {
        // SAFETY: as in `read`.
        unsafe { self.address(offset).write_volatile(value) }
    }

    /// The window's first address.
    pub fn base(&self) -> u64 {
        self.base
    }
}

/// The page test window.
pub fn page_window() -> Window {
    // SAFETY: PAGE_WINDOW is RAM after the image (guest.ld asserts the image ends below it),
    // mapped read-write by mmu.rs; nothing else uses it.
    unsafe { Window::new(PAGE_WINDOW, PAGE_WINDOW_SIZE) }
}

/// The dirty-logging window.
pub fn dirty_window() -> Window {
    // SAFETY: DIRTY_WINDOW is RAM in block 1, above the image and the page window (layout.rs
    // asserts it), mapped read-write by mmu.rs; nothing else uses it.
    unsafe { Window::new(DIRTY_WINDOW, DIRTY_WINDOW_SIZE) }
}

/// The 2 MiB RAM block number `index`, for the block probes.
fn block(index: u64) -> Window {
    // SAFETY: the probed blocks lie above both test windows and inside RAM (layout.rs asserts
    // it), mapped read-write by mmu.rs; nothing else uses them.
    unsafe { Window::new(RAM_BASE + index * BLOCK_SIZE, BLOCK_SIZE) }
}

/// The pattern stored at `address`: differs between words, pages and the two seeds.
pub fn pattern(address: u64, seed: u64) -> u64 {
    address.rotate_left(23) ^ (address >> 12).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seed
}

/// The two seeds of the page test; the second complements every bit of the first.
const SEEDS: [u64; 2] = [0x5a5a_a5a5_0f0f_f0f0, !0x5a5a_a5a5_0f0f_f0f0];

/// Where in block `index` its probe word lies: a different page and offset in each block.
fn probe_offset(index: u64) -> u64 {
    ((index * 0x1_2340 + index * 8) % BLOCK_SIZE) & !7
}

/// Reports a word that did not read back, returns the failure.
fn mismatch(what: &'static str, address: u64, read: u64, expected: u64) -> Outcome {
    println!(
        "guest: memory check failed: {what} at {}: read {}, expected {}",
        Hex(address),
        Hex(read),
        Hex(expected)
    );
    Outcome::Failed(what)
}

/// Check 4.
pub fn check() -> Outcome {
    let window = page_window();
    let words = (0..PAGE_WINDOW_SIZE).step_by(8);
    for offset in words.clone() {
        let read = window.read(offset);
        if read != 0 {
            return mismatch("fresh RAM not zero", window.base() + offset, read, 0);
        }
    }
    for seed in SEEDS {
        for offset in words.clone() {
            window.write(offset, pattern(window.base() + offset, seed));
        }
        for offset in words.clone() {
            let address = window.base() + offset;
            let (read, expected) = (window.read(offset), pattern(address, seed));
            if read != expected {
                return mismatch("page pattern mismatch", address, read, expected);
            }
        }
    }

    for index in BLOCK_PROBES {
        let (block, offset) = (block(index), probe_offset(index));
        let read = block.read(offset);
        if read != 0 {
            return mismatch("fresh RAM not zero", block.base() + offset, read, 0);
        }
        block.write(offset, pattern(block.base() + offset, SEEDS[0]));
    }
    for index in BLOCK_PROBES {
        let (block, offset) = (block(index), probe_offset(index));
        let address = block.base() + offset;
        let (read, expected) = (block.read(offset), pattern(address, SEEDS[0]));
        if read != expected {
            return mismatch("block pattern mismatch", address, read, expected);
        }
    }

    println!(
        "guest: memory patterns ok ({} pages, {} blocks)",
        PAGE_WINDOW_SIZE / PAGE_SIZE,
        BLOCK_PROBES.len()
    );
    Outcome::Passed
}
