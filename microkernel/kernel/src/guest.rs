//! Guests at boot: their RAM preloaded with the image, and the page tables their VSpace needs.

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
}

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

/// Resets a VM's memory: its RAM zeroed and the image copied in again (the state a first boot
/// sees). Returns the entry point.
pub fn reload(name: &str, image: &VmImage) -> u64 {
    crate::boot_alloc::zero(image.ram.0, image.ram.1);
    preload(name, image.file, image.ram_base, image.ram.0, image.ram.1)
}
