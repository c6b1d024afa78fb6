//! Data and instruction cache maintenance by address, for real hardware (QEMU models no caches,
//! a Cortex-A72 has them).
//!
//! Three cases need it, each a rule of the Arm ARM's cache-coherency chapter (D7, "Caches and
//! memory hierarchy"):
//! - memory the kernel wrote through its cacheable map and a guest may read with its MMU and
//!   caches off (its image at boot and after a reset, a fresh frame it is about to be given):
//!   clean to the **point of coherency** (`DC CVAC` / `DC CIVAC`), so a non-cacheable read sees
//!   the data and no stale dirty line is written back over it later;
//! - instructions the kernel wrote (a restarted server's text): clean to the **point of
//!   unification** (`DC CVAU`), then invalidate the instruction cache (`IC IALLU`, in cpu.rs),
//!   each step completed by a `DSB`, so fetches see the new code.

/// The smallest data-cache line, from CTR_EL0.DminLine (log2 of words).
fn line_size() -> u64 {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effect.
    unsafe { core::arch::asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack)) };
    4 << ((ctr >> 16) & 0xF)
}

/// Runs `op` for every cache line of `[start, start + len)`.
fn for_each_line(start: u64, len: u64, op: impl Fn(u64)) {
    if len == 0 {
        return;
    }
    let line = line_size();
    let mut address = start & !(line - 1);
    let end = start + len;
    while address < end {
        op(address);
        address += line;
    }
}

/// Cleans and invalidates `[start, start + len)` to the point of coherency, and waits.
pub fn clean_invalidate_to_poc(start: u64, len: u64) {
    for_each_line(start, len, |address| {
        // SAFETY: cache maintenance by address changes no memory contents; the range is RAM in
        // the kernel's map.
        unsafe { core::arch::asm!("dc civac, {}", in(reg) address, options(nostack)) }
    });
    // SAFETY: a barrier has no memory-safety effect.
    unsafe { core::arch::asm!("dsb sy", options(nostack)) };
}

/// Cleans `[start, start + len)` to the point of coherency, and waits.
pub fn clean_to_poc(start: u64, len: u64) {
    for_each_line(start, len, |address| {
        // SAFETY: as above.
        unsafe { core::arch::asm!("dc cvac, {}", in(reg) address, options(nostack)) }
    });
    // SAFETY: a barrier has no memory-safety effect.
    unsafe { core::arch::asm!("dsb sy", options(nostack)) };
}

/// Cleans `[start, start + len)` to the point of unification (before invalidating the
/// instruction cache), and waits.
pub fn clean_to_pou(start: u64, len: u64) {
    for_each_line(start, len, |address| {
        // SAFETY: as above.
        unsafe { core::arch::asm!("dc cvau, {}", in(reg) address, options(nostack)) }
    });
    // SAFETY: a barrier has no memory-safety effect.
    unsafe { core::arch::asm!("dsb ish", options(nostack)) };
}

/// The block `DC ZVA` zeroes, in bytes, or `None` when the instruction is prohibited
/// (DCZID_EL0.DZP; ARM ARM, DCZID_EL0: BS is log2 of the block size in words).
fn zero_block_size() -> Option<u64> {
    let dczid: u64;
    // SAFETY: reading DCZID_EL0 has no side effect.
    unsafe { core::arch::asm!("mrs {}, dczid_el0", out(reg) dczid, options(nomem, nostack)) };
    (dczid & (1 << 4) == 0).then(|| 4 << (dczid & 0xF))
}

/// Zeroes `[start, start + len)` of RAM in the kernel's map: whole blocks with `DC ZVA` (one
/// instruction per block, 64 bytes on a Cortex-A72, where a store loop takes four or more:
/// the kernel zeroes every RAM region it allocates, a Linux VM's 256 MiB among them), the
/// unaligned ends with ordinary stores. `DC ZVA` writes the zeroes like stores do, through
/// the cache, so the cleaning that follows for a guest that starts with its caches off is the
/// same as after stores.
pub fn zero(start: u64, len: u64) {
    let end = start + len;
    let write_zeroes = |from: u64, to: u64| {
        if to > from {
            // SAFETY: `[from, to)` is inside the caller's range: RAM the kernel owns, mapped
            // as Normal memory.
            unsafe { core::ptr::write_bytes(from as *mut u8, 0, (to - from) as usize) };
        }
    };
    let Some(block) = zero_block_size() else {
        return write_zeroes(start, end);
    };
    let (first, last) = (start.next_multiple_of(block).min(end), end & !(block - 1));
    if last <= first {
        return write_zeroes(start, end);
    }
    write_zeroes(start, first);
    let mut address = first;
    while address < last {
        // SAFETY: `address` is block-aligned and `[address, address + block)` lies inside the
        // caller's range (below `last`); DC ZVA writes zeroes there and nothing else.
        unsafe { core::arch::asm!("dc zva, {}", in(reg) address, options(nostack)) };
        address += block;
    }
    write_zeroes(last, end);
}
