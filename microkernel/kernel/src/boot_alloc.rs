//! The boot allocator: hands out zeroed physical pages from the free RAM after the kernel
//! image, for kernel objects, page tables and server memory. Nothing is freed: the system is
//! static once booted (untyped memory and retype come later). Running out is a boot error
//! naming the record being built ([`Why::OutOfMemory`]), never a panic; scratch memory for the
//! boot checks is taken back whole once they are done ([`BootAllocator::with_scratch`]).

use crate::plat::layout::RAM_END;
use core::marker::PhantomData;
use kernel_core::boot_check::Why;
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
    /// All RAM after the kernel image (none, for an image that would not even fit: every
    /// allocation is then a boot error).
    pub fn new() -> Self {
        let start = core::ptr::addr_of!(__kernel_end) as u64;
        Self {
            next: start.next_multiple_of(PAGE).min(RAM_END),
            end: RAM_END,
        }
    }

    /// `count` zeroed, contiguous pages, or how many were asked for and how many are free.
    pub fn pages(&mut self, count: u64) -> Result<u64, Why> {
        let free = self.free_pages();
        if count > free {
            return Err(Why::OutOfMemory {
                needed: count,
                free,
            });
        }
        let (base, bytes) = (self.next, count * PAGE);
        self.next += bytes;
        zero(base, bytes);
        Ok(base)
    }

    /// `count` zeroed, contiguous pages starting at a multiple of `align` bytes (a power of two):
    /// RAM regions are 2 MiB aligned so they can be lent and mapped as 2 MiB blocks. The pages
    /// skipped to align are lost (boot-time only, at most `align` bytes per region), and count
    /// as needed when there is not room for both.
    pub fn pages_aligned(&mut self, count: u64, align: u64) -> Result<u64, Why> {
        let free = self.free_pages();
        let skipped = self
            .next
            .checked_next_multiple_of(align)
            .map(|aligned| aligned.saturating_sub(self.next) / PAGE);
        match skipped {
            Some(skipped) if skipped.saturating_add(count) <= free => {
                self.next += skipped * PAGE;
                self.pages(count)
            }
            _ => Err(Why::OutOfMemory {
                needed: count.saturating_add(skipped.unwrap_or(0)),
                free,
            }),
        }
    }

    /// A zeroed, page-aligned array of `count` values made by `make`, living forever.
    pub fn array<T>(
        &mut self,
        count: usize,
        mut make: impl FnMut(usize) -> T,
    ) -> Result<&'static mut [T], Why> {
        self.try_array(count, |index| Ok(make(index)))
    }

    /// [`Self::array`] of values `make` may refuse to make; its error is the array's.
    pub fn try_array<T>(
        &mut self,
        count: usize,
        make: impl FnMut(usize) -> Result<T, Why>,
    ) -> Result<&'static mut [T], Why> {
        // SAFETY: the pages are fresh and never handed out again, so the array is the only
        // reference to them, for the rest of the kernel's life.
        unsafe { self.fill(count, make) }
    }

    /// Pages still free.
    pub fn free_pages(&self) -> u64 {
        (self.end - self.next) / PAGE
    }

    /// Runs `work` with scratch memory carved from the free RAM, then takes all of it back: the
    /// boot checks work in it, and the pages are free again for what the system is built from
    /// (so the boot's allocations are exactly what they would be without the checks). What
    /// `work` allocated cannot outlive it: the arena's lifetime is `work`'s own.
    pub fn with_scratch<R>(&mut self, work: impl for<'a> FnOnce(&mut Arena<'a>) -> R) -> R {
        let mark = self.next;
        let result = work(&mut Arena {
            memory: self,
            _scratch: PhantomData,
        });
        self.next = mark;
        result
    }

    /// `count` values made by `make` in fresh pages; the first refusal ends it.
    ///
    /// # Safety
    /// 1. The caller gives the returned slice a lifetime no longer than the pages stay
    ///    allocated (forever, or the scratch arena's).
    unsafe fn fill<'a, T>(
        &mut self,
        count: usize,
        mut make: impl FnMut(usize) -> Result<T, Why>,
    ) -> Result<&'a mut [T], Why> {
        const { assert!(core::mem::align_of::<T>() <= PAGE as usize) };
        let bytes = (core::mem::size_of::<T>() as u64).saturating_mul(count as u64);
        let base = self.pages(bytes.div_ceil(PAGE).max(1))? as *mut T;
        for index in 0..count {
            let value = make(index)?;
            // SAFETY: `base` is a fresh, page-aligned allocation of at least `count` values of
            // T inside RAM that the kernel's identity map covers; index < count. A refusal
            // leaves the pages allocated and unreferenced.
            unsafe { base.wrapping_add(index).write(value) };
        }
        // SAFETY: the `count` values were just initialised, in pages nobody else was given;
        // how long they stay so is the caller's (obligation 1).
        Ok(unsafe { core::slice::from_raw_parts_mut(base, count) })
    }
}

/// Scratch memory that lives for one [`BootAllocator::with_scratch`] call.
pub struct Arena<'a> {
    memory: &'a mut BootAllocator,
    _scratch: PhantomData<&'a mut [u8]>,
}

impl<'a> Arena<'a> {
    /// `count` copies of `value`, in scratch pages.
    pub fn array<T: Copy>(&mut self, count: usize, value: T) -> Result<&'a mut [T], Why> {
        // SAFETY: the pages stay allocated until `with_scratch` returns, and `'a` ends with
        // it: `work` is generic over `'a`, so nothing it returns or writes outside holds it.
        unsafe { self.memory.fill(count, |_| Ok(value)) }
    }
}

/// Zeroes `bytes` bytes of physical memory at `base`: RAM owned by the kernel (fresh
/// allocations or a server's own frames being reset), which the identity map covers as
/// Normal memory.
pub fn zero(base: u64, bytes: u64) {
    use crate::arch::{Arch, Current};
    Current::zero(base, bytes);
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
        self.pages(1).ok()
    }
}
