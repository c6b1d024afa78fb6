//! Guest address spaces: a stage-2 root, a VMID, and the page-table pages reserved for it at
//! boot (sized from the VM's RAM, so a map invocation that passed its checks cannot run out).

use crate::boot_alloc::BootAllocator;
use kernel_core::stage2::TableMemory;

/// The VMID bit that marks a guest VSpace in a VTTBR value (VMID bit 7, VTTBR bit 55): servers
/// get VMIDs 1..=127, guests 128..=255.
pub const GUEST_VMID_BIT: u64 = 1 << 55;
/// The first guest VMID.
pub const FIRST_GUEST_VMID: u16 = 128;

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
    /// A VSpace with VMID `vmid` and `tables` spare table pages, or the boot error of running
    /// out of RAM for them.
    pub fn new(
        memory: &mut BootAllocator,
        vmid: u16,
        tables: u32,
    ) -> Result<Self, kernel_core::boot_check::Why> {
        let root = memory.pages(1)?;
        let mut space = Self {
            vttbr: (u64::from(vmid) << 48) | root,
            free: 0,
            free_tables: 0,
        };
        for _ in 0..tables {
            space.release(memory.pages(1)?);
        }
        Ok(space)
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
        // SAFETY: `table` is a live table page of this VSpace (its pool is kernel memory).
        unsafe { crate::boot_alloc::read_table_entry(table, index) }
    }

    fn write(&mut self, table: u64, index: usize, value: u64) {
        // SAFETY: as in `read`.
        unsafe { crate::boot_alloc::write_table_entry(table, index, value) }
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
use abi::vm::{MapAction, MapAttributes};
use kernel_core::stage2::{self, Action, Attributes, MemoryKind, PageSize, Plan, RemovedTable};

fn page_size(bytes: u64) -> PageSize {
    if bytes == PageSize::Size2M.bytes() {
        PageSize::Size2M
    } else {
        PageSize::Size4K
    }
}

/// Runs a plan from kernel-core's mapping path (its writes and TLB maintenance, in order) with
/// the VSpace's VMID installed for the invalidations, then frees what it took out.
fn run(space: &mut GuestVSpace, plan: &Plan, removed: Option<RemovedTable>) {
    let previous = Current::enter_vmid(space.vttbr);
    stage2::apply(plan, space, Current::tlb_op);
    Current::leave_vmid(previous);
    if let Some(removed) = removed {
        // A removed level-3 table has no tables below it; a removed level-2 table (a 1 GiB
        // block replacing it) cannot happen: guests are mapped in pages and 2 MiB blocks.
        let mut freed = [0u64; 8];
        let mut count = 0;
        stage2::tables_under(space, removed, &mut |table| {
            if let Some(slot) = freed.get_mut(count) {
                *slot = table;
                count += 1;
            }
        });
        for table in &freed[..count] {
            space.release(*table);
        }
    }
}

/// The stage-2 mapping path (docs/DESIGN.md, "Stage-2 fault prejudgement and dirty-on-success";
/// docs/MMU-STAGE2.md): kernel-core's prejudgement decides (same mapping: no-op; permissions
/// only: in place; anything else: break-before-make with `TLBI IPAS2E1IS` + `VMALLE1IS`), and
/// the kernel runs the plan. `None` when the walk refused (it cannot run out of tables: decode
/// reserved them).
pub fn map(
    space: &mut GuestVSpace,
    ipa: u64,
    pa: u64,
    size: u64,
    attributes: MapAttributes,
) -> Option<MapAction> {
    let attributes = Attributes {
        writable: attributes.0 & MapAttributes::WRITE.0 != 0,
        executable: attributes.0 & MapAttributes::EXECUTE.0 != 0,
        kind: MemoryKind::Normal,
    };
    let root = space.root();
    let outcome = stage2::map(space, root, ipa, pa, page_size(size), attributes).ok()?;
    run(space, &outcome.plan, outcome.removed_table);
    Some(match outcome.action {
        Action::Install => MapAction::Installed,
        Action::NoOp => MapAction::NoOp,
        Action::UpdateInPlace { .. } => MapAction::UpdatedInPlace,
        Action::BreakBeforeMake { .. } => MapAction::Replaced,
    })
}

/// Removes the mapping of `size` at `ipa` (a page inside a block removes the whole block: its
/// other pages fault and are mapped again).
pub fn unmap(space: &mut GuestVSpace, ipa: u64, size: u64) {
    let root = space.root();
    let outcome = match stage2::unmap(space, root, ipa, page_size(size)) {
        Err(stage2::MapError::WouldSplitBlock) => stage2::unmap(
            space,
            root,
            ipa & !(PageSize::Size2M.bytes() - 1),
            PageSize::Size2M,
        ),
        other => other,
    };
    if let Ok(outcome) = outcome {
        run(space, &outcome.plan, outcome.removed_table);
    }
}

/// Removes the leaf of `size` at `ipa` only if it still maps the frame at `pa` (a frame
/// capability's deletion or revocation, kernel-core `stage2::unmap_frame`): a walk of a few
/// loads, and a translation to any other frame is left alone. Frees no table.
pub fn unmap_frame(space: &mut GuestVSpace, ipa: u64, size: u64, pa: u64) {
    let root = space.root();
    if let Ok(outcome) = stage2::unmap_frame(space, root, ipa, pa, page_size(size))
        && !outcome.plan.is_empty()
    {
        run(space, &outcome.plan, None);
    }
}

/// Makes mappings from `ipa` on read-only (dirty logging), at most
/// [`stage2::WRITE_PROTECT_BUDGET`] table entries' worth per call; returns where it stopped
/// (`ipa + len` when the range is done), for the caller to call again from there.
pub fn write_protect(space: &mut GuestVSpace, ipa: u64, len: u64) -> u64 {
    let root = space.root();
    let budget = stage2::WRITE_PROTECT_BUDGET;
    match stage2::write_protect_bounded(space, root, ipa, len, budget) {
        Ok(outcome) => {
            run(space, &outcome.plan, None);
            outcome.next
        }
        // Decode checked the range; an error here would be a broken invariant.
        Err(_) => {
            debug_assert!(false, "write_protect of a range decode accepted failed");
            ipa + len
        }
    }
}

/// Writes an MMIO marker into the level-3 entry for `ipa` (kernel-core
/// `stage2::marker::install_marker`: only over an empty entry or an older marker; a valid page
/// or a block is left alone). `None` when the walk refused (no table left: the marker is an
/// optimisation, so the guest simply keeps taking the slow path there).
pub fn install_marker(
    space: &mut GuestVSpace,
    ipa: u64,
    marker: u64,
) -> Option<abi::mmio::MarkerAction> {
    let root = space.root();
    let outcome = stage2::marker::install_marker(space, root, ipa, marker).ok()?;
    run(space, &outcome.plan, None);
    Some(outcome.action)
}

/// One bounded step of clearing every MMIO marker from `from` on (after the VM's generation
/// wrapped); returns where it stopped (`stage2::IPA_LIMIT` when done). Markers are invalid
/// descriptors, so clearing them needs no TLB maintenance.
pub fn zap_markers(space: &mut GuestVSpace, from: u64) -> u64 {
    let root = space.root();
    stage2::marker::zap_markers(space, root, from, stage2::marker::ZAP_BUDGET).next
}

/// The level and descriptor where a walk for `ipa` stops (the MMIO fast path reads it).
pub fn descriptor_at(space: &GuestVSpace, ipa: u64) -> (stage2::Level, u64) {
    stage2::marker::descriptor_at(space, space.root(), ipa)
}

/// Empties the VSpace: every table goes back to the pool, the root is cleared, and the VMID's
/// TLB entries are dropped (VM reset).
pub fn clear(space: &mut GuestVSpace) {
    const VALID_TABLE: u64 = 0b11;
    const ADDRESS: u64 = 0x0000_FFFF_FFFF_F000;
    let root = space.root();
    for l1 in 0..512 {
        let entry = space.read(root, l1);
        if entry & VALID_TABLE != VALID_TABLE {
            continue;
        }
        let l2 = entry & ADDRESS;
        for index in 0..512 {
            let child = space.read(l2, index);
            if child & VALID_TABLE == VALID_TABLE {
                space.release(child & ADDRESS);
            }
        }
        space.release(l2);
        space.write(root, l1, 0);
    }
    let previous = Current::enter_vmid(space.vttbr);
    Current::tlb_op(stage2::TlbOp::DsbIsh);
    Current::tlb_op(stage2::TlbOp::Vmalls12e1is);
    Current::tlb_op(stage2::TlbOp::DsbIsh);
    Current::leave_vmid(previous);
}
