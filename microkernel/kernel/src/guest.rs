//! Guests at boot: their RAM preloaded from their segments, their entry state, and the page
//! tables their VSpace needs. The compiler turned every guest (an ELF, a Linux Image with its
//! initrd and device tree) into segments of payload bytes; the kernel parses no guest format.

use crate::arch::{Arch, Current};
use abi::layout::PAGE_SIZE;
use kernel_core::guest_load::LoadSegment;
use kernel_core::tcb::{PSTATE, UserContext};

/// What a VM is built from at boot and rebuilt from on reset. Its segments were checked
/// (`kernel_core::guest_load`) before anything was copied: each lies inside RAM, ascending and
/// disjoint, and the entry point and x0 are inside RAM (x0 may be 0).
pub struct VmImage {
    /// The bytes of its initial RAM, and where each goes.
    pub segments: &'static [LoadSegment<'static>],
    /// Guest-physical address of its first instruction.
    pub entry: u64,
    /// x0 at entry: the device tree's guest-physical address, or 0.
    pub x0: u64,
    /// Guest-physical base of RAM.
    pub ram_base: u64,
    /// Physical base and size of its RAM region.
    pub ram: (u64, u64),
    /// The region's index (its frames are revoked on reset).
    pub region: u16,
    /// Bytes of RAM already rebuilt by a reset in progress (0: none in progress).
    pub reset_done: u64,
}

/// RAM rebuilt per reset step: zeroing and copying 2 MiB is a bounded piece of work (well under
/// a millisecond on a Cortex-A72), so a VM reset, however large the VM, never keeps the kernel
/// from taking interrupts for longer than that.
pub const RESET_CHUNK: u64 = 2 << 20;

/// Copies the guest's segments into its RAM region (zeroed when it was allocated). Bytes past an
/// ELF segment's file size are part of no segment and stay zero.
pub fn preload(image: &VmImage) {
    for segment in image.segments {
        let target = image.ram.0 + (segment.ipa - image.ram_base);
        crate::boot_alloc::copy_to(target, segment.bytes);
        // The guest starts with its MMU and caches off: what the kernel wrote through its
        // cacheable map must reach memory first (cache.rs).
        Current::clean_for_guest(target, segment.bytes.len() as u64);
    }
}

/// The register state a VM's first instruction sees (Linux Documentation/arch/arm64/booting.rst,
/// "Call the kernel image"; docs/GUEST-ABI.md, "Boot state"): PC at the entry point, x0 as the
/// boot description says (the device tree's address for Linux), x1..x3 and every other register
/// zero, EL1h with D, A, I and F masked. Used at boot and when a reset completes.
pub fn entry_context(image: &VmImage) -> UserContext {
    let mut context = UserContext::new(image.entry, 0);
    context.set_x(0, image.x0);
    context.regs[PSTATE] = Current::guest_entry_pstate();
    context
}

/// Page-table pages a guest VSpace may need: one level-3 table per 2 MiB of RAM (if it ends up
/// all in 4 KiB pages), one level-2 table per GiB, and a few for device windows outside RAM.
pub fn tables_for(ram_size: u64) -> u32 {
    let l3 = ram_size.div_ceil(512 * PAGE_SIZE);
    let l2 = ram_size.div_ceil(1 << 30) + 1;
    (l3 + l2 + 8) as u32
}

/// One step of resetting a VM's memory to the state a first boot sees: RAM from `done` bytes
/// on, at most [`RESET_CHUNK`], zeroed and the part of each segment that falls in it copied in
/// again. Returns how far RAM is rebuilt now and the entry point.
pub fn reload_chunk(image: &VmImage, done: u64) -> (u64, u64) {
    let (ram, ram_size) = image.ram;
    let len = RESET_CHUNK.min(ram_size.saturating_sub(done));
    crate::boot_alloc::zero(ram + done, len);
    let (chunk_start, chunk_end) = (image.ram_base + done, image.ram_base + done + len);
    for segment in image.segments {
        if let Some((offset, address, bytes)) = segment.part_in(chunk_start, chunk_end) {
            let source = &segment.bytes[offset..offset + bytes];
            crate::boot_alloc::copy_to(ram + (address - image.ram_base), source);
        }
    }
    // The rebuilt guest starts with its caches off: the zeroes and the image must be in memory.
    Current::clean_for_guest(ram + done, len);
    (done + len, image.entry)
}
