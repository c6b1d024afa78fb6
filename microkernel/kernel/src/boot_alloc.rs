//! The boot allocator: hands out zeroed physical pages from the free RAM after the kernel
//! image, for kernel objects, page tables and server memory. Nothing is freed: the system is
//! static once booted (untyped memory and retype come later).

use crate::plat::layout::RAM_END;
use kernel_core::stage2::TableMemory;

const PAGE: u64 = 4096;

/// A bump allocator over `[next, end)`.
pub struct BootAllocator {
    next: u64,
    end: u64,
}

unsafe extern "C" {
    static __kernel_end: u8;
}

impl BootAllocator {
    /// All RAM after the kernel image.
    pub fn new() -> Self {
        let start = core::ptr::addr_of!(__kernel_end) as u64;
        Self {
            next: start.next_multiple_of(PAGE),
            end: RAM_END,
        }
    }

    /// `count` zeroed, contiguous pages; the boot stops with a message when RAM runs out.
    pub fn pages(&mut self, count: u64) -> u64 {
        let bytes = count * PAGE;
        let base = self.next;
        assert!(
            self.end - base >= bytes,
            "boot: out of memory allocating {count} pages"
        );
        self.next += bytes;
        zero(base, bytes);
        base
    }

    /// `count` zeroed, contiguous pages starting at a multiple of `align` bytes (a power of two):
    /// RAM regions are 2 MiB aligned so they can be lent and mapped as 2 MiB blocks. The pages
    /// skipped to align are lost (boot-time only, at most `align` bytes per region).
    pub fn pages_aligned(&mut self, count: u64, align: u64) -> u64 {
        self.next = self.next.next_multiple_of(align);
        self.pages(count)
    }

    /// A zeroed, page-aligned array of `count` values made by `make`, living forever.
    pub fn array<T>(&mut self, count: usize, mut make: impl FnMut(usize) -> T) -> &'static mut [T] {
        assert!(core::mem::align_of::<T>() <= PAGE as usize);
        let bytes = (core::mem::size_of::<T>() * count) as u64;
        let base = self.pages(bytes.div_ceil(PAGE).max(1)) as *mut T;
        for index in 0..count {
            let value = make(index);
            // SAFETY: `base` is a fresh, page-aligned allocation of at least `count` values of
            // T inside RAM that the kernel's identity map covers; index < count.
            unsafe { base.wrapping_add(index).write(value) };
        }
        // SAFETY: the `count` values were just initialised; the memory is never handed out
        // again, so the slice is the only reference to it.
        unsafe { core::slice::from_raw_parts_mut(base, count) }
    }

    /// Pages still free.
    pub fn free_pages(&self) -> u64 {
        (self.end - self.next) / PAGE
    }
}

/// Zeroes `bytes` bytes of physical memory at `base`.
pub fn zero(base: u64, bytes: u64) {
    // SAFETY: callers pass RAM owned by the kernel (fresh allocations or a server's own frames
    // being reset), which the identity map covers as Normal memory.
    unsafe { core::ptr::write_bytes(base as *mut u8, 0, bytes as usize) };
}

/// Copies bytes into physical memory at `target`, eight at a time once `target` is aligned:
/// guest images are tens of MiB (a Linux Image is 33 MB), and a byte loop spends about six
/// instructions a byte on them (`cargo xtask bench boot` counted 200 M instructions before Linux
/// ran its first). The source may be misaligned: its bytes are gathered into a word (LLVM makes
/// that one unaligned load: the kernel's RAM is Normal memory and SCTLR_EL2.A is clear, mmu.rs).
pub fn copy_to(target: u64, bytes: &[u8]) {
    let head = (target.wrapping_neg() % 8).min(bytes.len() as u64) as usize;
    let (first, rest) = bytes.split_at(head);
    // SAFETY: as in `zero`; `bytes` comes from the payload, which never overlaps allocations.
    unsafe { core::ptr::copy_nonoverlapping(first.as_ptr(), target as *mut u8, first.len()) };
    let words = rest.len() / 8;
    let destination = (target + head as u64) as *mut u64;
    for (index, chunk) in rest.chunks_exact(8).enumerate() {
        let word = u64::from_le_bytes([
            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
        ]);
        // SAFETY: the destination is 8-aligned RAM owned by the caller, `index < words`; volatile
        // so the loop stays a loop of 8-byte stores and is not turned back into a call of the
        // byte-wise `memcpy` this target's builtins provide.
        unsafe { destination.wrapping_add(index).write_volatile(word) };
    }
    let tail = &rest[words * 8..];
    // SAFETY: as for the head, at the first byte past the words.
    unsafe {
        core::ptr::copy_nonoverlapping(
            tail.as_ptr(),
            (target + head as u64 + words as u64 * 8) as *mut u8,
            tail.len(),
        )
    };
}

/// Reads entry `index` (taken modulo 512) of the page-table page at physical `table`.
///
/// # Safety
/// 1. `table` is a page-table page the kernel owns (from this allocator or a VSpace's pool).
pub unsafe fn read_table_entry(table: u64, index: usize) -> u64 {
    // SAFETY: the page is the kernel's (obligation 1), inside RAM the identity map covers; the
    // index is bounded to its 512 entries.
    unsafe {
        (table as *const u64)
            .wrapping_add(index % 512)
            .read_volatile()
    }
}

/// Writes entry `index` (taken modulo 512) of the page-table page at physical `table`.
///
/// # Safety
/// As for [`read_table_entry`].
pub unsafe fn write_table_entry(table: u64, index: usize, value: u64) {
    // SAFETY: as in `read_table_entry`.
    unsafe {
        (table as *mut u64)
            .wrapping_add(index % 512)
            .write_volatile(value)
    }
}

impl TableMemory for BootAllocator {
    fn read(&self, table: u64, index: usize) -> u64 {
        // SAFETY: `table` is a page-table page this allocator handed out.
        unsafe { read_table_entry(table, index) }
    }

    fn write(&mut self, table: u64, index: usize, value: u64) {
        // SAFETY: as in `read`.
        unsafe { write_table_entry(table, index, value) }
    }

    fn allocate_table(&mut self) -> Option<u64> {
        (self.end - self.next >= PAGE).then(|| self.pages(1))
    }
}
