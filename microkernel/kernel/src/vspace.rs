//! Guest address spaces: a stage-2 root, a VMID, and the page-table pages reserved for it at
//! boot (sized from the VM's RAM, so a map invocation that passed its checks cannot run out).

use crate::boot_alloc::BootAllocator;
use kernel_core::stage2::TableMemory;

/// One guest VSpace.
pub struct GuestVSpace {
    /// The VTTBR value: VMID and root table.
    pub vttbr: u64,
    /// Free table pages, linked through their first word (0 ends the list).
    free: u64,
    /// How many pages are on the free list.
    pub free_tables: u32,
}

impl GuestVSpace {
    /// A VSpace with VMID `vmid` and `tables` spare table pages.
    pub fn new(memory: &mut BootAllocator, vmid: u16, tables: u32) -> Self {
        let root = memory.pages(1);
        let mut space = Self {
            vttbr: (u64::from(vmid) << 48) | root,
            free: 0,
            free_tables: 0,
        };
        for _ in 0..tables {
            space.release(memory.pages(1));
        }
        space
    }

    /// The root table's physical address.
    pub fn root(&self) -> u64 {
        self.vttbr & 0x0000_FFFF_FFFF_F000
    }

    /// Returns a table page to the pool (zeroed on the way out, see `allocate_table`).
    pub fn release(&mut self, page: u64) {
        // SAFETY: `page` is a table page this VSpace owns (handed out by the boot allocator or
        // by `allocate_table`, now unlinked from the tables); its first word holds the link.
        unsafe { (page as *mut u64).write_volatile(self.free) };
        self.free = page;
        self.free_tables += 1;
    }
}

impl TableMemory for GuestVSpace {
    fn read(&self, table: u64, index: usize) -> u64 {
        // SAFETY: `table` is a live table page of this VSpace; the index is bounded to it.
        unsafe {
            (table as *const u64)
                .wrapping_add(index % 512)
                .read_volatile()
        }
    }

    fn write(&mut self, table: u64, index: usize, value: u64) {
        // SAFETY: as in `read`.
        unsafe {
            (table as *mut u64)
                .wrapping_add(index % 512)
                .write_volatile(value)
        }
    }

    fn allocate_table(&mut self) -> Option<u64> {
        if self.free == 0 {
            return None;
        }
        let page = self.free;
        // SAFETY: `page` heads the free list: a page this VSpace owns, not linked in a table.
        self.free = unsafe { (page as *const u64).read_volatile() };
        self.free_tables -= 1;
        crate::boot_alloc::zero(page, 4096);
        Some(page)
    }
}

use crate::arch::{Arch, Current};
/// What the kernel did for a `VSpaceMap`.
pub use abi::vm::MapAction;
use abi::vm::MapAttributes;
use kernel_core::stage2::{Attributes, MemoryKind, page_descriptor};

const VALID: u64 = 1 << 0;
const TABLE_OR_PAGE: u64 = 1 << 1;
const ADDRESS: u64 = 0x0000_FFFF_FFFF_F000;
/// S2AP and XN: the permission bits an in-place update may change (ARM ARM D8.3).
const PERMISSIONS: u64 = (0b11 << 6) | (1 << 54);
const S2AP_WRITE: u64 = 1 << 7;
const XN: u64 = 1 << 54;
const SIZE_2M: u64 = 2 << 20;

fn index(ipa: u64, level: u32) -> usize {
    ((ipa >> (12 + 9 * (3 - level))) & 511) as usize
}

/// The level-2 table covering `ipa`, created when missing.
fn level2(space: &mut GuestVSpace, ipa: u64) -> u64 {
    let root = space.root();
    let entry = space.read(root, index(ipa, 1));
    if entry & (VALID | TABLE_OR_PAGE) == VALID | TABLE_OR_PAGE {
        return entry & ADDRESS;
    }
    // Decode reserved two tables per mapping, so this cannot run dry.
    let table = space.allocate_table().unwrap_or(0);
    space.write(root, index(ipa, 1), table | VALID | TABLE_OR_PAGE);
    table
}

/// The stage-2 mapping path (seed 002, after KVM arm64's `stage2_map_walker_try_leaf`):
/// the same frame with the same attributes is a no-op; a change of permissions only is written
/// in place without break-before-make (with TLB invalidation when access was taken away);
/// anything else is break-before-make with `TLBI IPAS2E1IS` and `VMALLE1IS` for the VMID. A 2
/// MiB block replacing a level-3 table frees that table.
pub fn map(
    space: &mut GuestVSpace,
    ipa: u64,
    pa: u64,
    size: u64,
    attributes: MapAttributes,
) -> MapAction {
    let attributes = Attributes {
        writable: attributes.0 & MapAttributes::WRITE.0 != 0,
        executable: attributes.0 & MapAttributes::EXECUTE.0 != 0,
        kind: MemoryKind::Normal,
    };
    let page = page_descriptor(pa, attributes);
    let l2 = level2(space, ipa);
    let (table, slot, wanted) = if size == SIZE_2M {
        (l2, index(ipa, 2), page & !TABLE_OR_PAGE)
    } else {
        let entry = space.read(l2, index(ipa, 2));
        let l3 = if entry & (VALID | TABLE_OR_PAGE) == VALID | TABLE_OR_PAGE {
            entry & ADDRESS
        } else {
            if entry & VALID != 0 {
                // A block covers the page: break it; its other pages fault and are remapped.
                space.write(l2, index(ipa, 2), 0);
                Current::invalidate_guest_all(space.vttbr);
            }
            let table = space.allocate_table().unwrap_or(0);
            space.write(l2, index(ipa, 2), table | VALID | TABLE_OR_PAGE);
            table
        };
        (l3, index(ipa, 3), page)
    };
    let existing = space.read(table, slot);
    if existing & VALID == 0 {
        space.write(table, slot, wanted);
        return MapAction::Installed;
    }
    if existing == wanted {
        return MapAction::NoOp;
    }
    let is_table = size == SIZE_2M && existing & TABLE_OR_PAGE != 0;
    if !is_table && existing & !PERMISSIONS == wanted & !PERMISSIONS {
        space.write(table, slot, wanted);
        let lost_write = existing & S2AP_WRITE != 0 && wanted & S2AP_WRITE == 0;
        let lost_exec = existing & XN == 0 && wanted & XN != 0;
        if lost_write || lost_exec {
            Current::invalidate_guest_ipa(space.vttbr, ipa);
        }
        return MapAction::UpdatedInPlace;
    }
    // Break before make.
    space.write(table, slot, 0);
    Current::invalidate_guest_ipa(space.vttbr, ipa);
    if is_table {
        Current::invalidate_guest_all(space.vttbr);
        space.release(existing & ADDRESS);
    }
    space.write(table, slot, wanted);
    MapAction::Replaced
}

/// Removes the mapping at `ipa`: a 4 KiB page, or the 2 MiB block containing it (a 4 KiB
/// unmap inside a block removes the block; its other pages fault and are remapped).
pub fn unmap(space: &mut GuestVSpace, ipa: u64, size: u64) {
    let root = space.root();
    let l1 = space.read(root, index(ipa, 1));
    if l1 & (VALID | TABLE_OR_PAGE) != VALID | TABLE_OR_PAGE {
        return;
    }
    let l2 = l1 & ADDRESS;
    let entry = space.read(l2, index(ipa, 2));
    if entry & VALID == 0 {
        return;
    }
    if entry & TABLE_OR_PAGE == 0 || size == SIZE_2M {
        space.write(l2, index(ipa, 2), 0);
        Current::invalidate_guest_all(space.vttbr);
        if entry & TABLE_OR_PAGE != 0 {
            space.release(entry & ADDRESS);
        }
        return;
    }
    let l3 = entry & ADDRESS;
    if space.read(l3, index(ipa, 3)) & VALID != 0 {
        space.write(l3, index(ipa, 3), 0);
        Current::invalidate_guest_ipa(space.vttbr, ipa);
    }
}

/// Makes every mapping in `ipa .. ipa + len` read-only (dirty logging): permissions only, in
/// place, then one invalidation of the VMID.
pub fn write_protect(space: &mut GuestVSpace, ipa: u64, len: u64) {
    let root = space.root();
    let mut at = ipa;
    let end = ipa.saturating_add(len);
    let mut changed = false;
    while at < end {
        let l1 = space.read(root, index(at, 1));
        if l1 & (VALID | TABLE_OR_PAGE) != VALID | TABLE_OR_PAGE {
            at = (at | ((1 << 30) - 1)) + 1;
            continue;
        }
        let l2 = l1 & ADDRESS;
        let entry = space.read(l2, index(at, 2));
        if entry & VALID != 0 && entry & TABLE_OR_PAGE == 0 {
            if entry & S2AP_WRITE != 0 {
                space.write(l2, index(at, 2), entry & !S2AP_WRITE);
                changed = true;
            }
            at = (at | (SIZE_2M - 1)) + 1;
            continue;
        }
        if entry & VALID != 0 {
            let l3 = entry & ADDRESS;
            let page = space.read(l3, index(at, 3));
            if page & VALID != 0 && page & S2AP_WRITE != 0 {
                space.write(l3, index(at, 3), page & !S2AP_WRITE);
                changed = true;
            }
            at += 4096;
        } else {
            at = (at | (SIZE_2M - 1)) + 1;
        }
    }
    if changed {
        Current::invalidate_guest_all(space.vttbr);
    }
}
