//! Guests at boot: their RAM preloaded with the image, and the page tables their VSpace needs.

use crate::arch::{Arch, Current};
use abi::layout::PAGE_SIZE;
use kernel_core::elf;

/// What a VM is rebuilt from on reset.
pub struct VmImage {
    /// The guest ELF in the payload.
    pub file: &'static [u8],
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

/// Copies the guest's ELF segments into its RAM region (physical `ram`, `ram_size` bytes, seen
/// by the guest at `ram_base`) and returns the entry point. The rest of RAM stays zero.
pub fn preload(name: &str, file: &'static [u8], ram_base: u64, ram: u64, ram_size: u64) -> u64 {
    let image = match elf::parse(file, ram_base, ram_base + ram_size) {
        Ok(image) => image,
        Err(error) => panic!("boot: vm `{name}`: bad image: {error:?}"),
    };
    for segment in image.segments() {
        let start = segment.offset as usize;
        let bytes = &file[start..start + segment.filesz as usize];
        crate::boot_alloc::copy_to(ram + (segment.vaddr - ram_base), bytes);
        // The guest starts with its MMU and caches off: what the kernel wrote through its
        // cacheable map must reach memory first (cache.rs).
        Current::clean_for_guest(ram + (segment.vaddr - ram_base), segment.filesz);
    }
    image.entry
}

/// Page-table pages a guest VSpace may need: one level-3 table per 2 MiB of RAM (if it ends up
/// all in 4 KiB pages), one level-2 table per GiB, and a few for device windows outside RAM.
pub fn tables_for(ram_size: u64) -> u32 {
    let l3 = ram_size.div_ceil(512 * PAGE_SIZE);
    let l2 = ram_size.div_ceil(1 << 30) + 1;
    (l3 + l2 + 8) as u32
}

/// One step of resetting a VM's memory to the state a first boot sees: RAM from `done` bytes
/// on, at most [`RESET_CHUNK`], zeroed and the image's bytes that belong there copied in again.
/// Returns how far RAM is rebuilt now and the image's entry point.
pub fn reload_chunk(name: &str, image: &VmImage, done: u64) -> (u64, u64) {
    let (ram, ram_size) = image.ram;
    let len = RESET_CHUNK.min(ram_size.saturating_sub(done));
    crate::boot_alloc::zero(ram + done, len);
    let parsed = match elf::parse(image.file, image.ram_base, image.ram_base + ram_size) {
        Ok(parsed) => parsed,
        // Boot loaded this very image; a parse that fails now is a broken invariant.
        Err(error) => panic!("reset: vm `{name}`: its image no longer parses: {error:?}"),
    };
    let (chunk_start, chunk_end) = (image.ram_base + done, image.ram_base + done + len);
    for segment in parsed.segments() {
        if let Some((offset, address, bytes)) = segment.file_bytes_in(chunk_start, chunk_end) {
            let source = &image.file[offset as usize..(offset + bytes) as usize];
            crate::boot_alloc::copy_to(ram + (address - image.ram_base), source);
        }
    }
    // The rebuilt guest starts with its caches off: the zeroes and the image must be in memory.
    Current::clean_for_guest(ram + done, len);
    (done + len, parsed.entry)
}
