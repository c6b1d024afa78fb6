//! Emulated writes to guest memory, and what they do to shadows of guest page tables.
//!
//! A write-protected guest table is changed only through [`ShadowMmu::guest_write`]: the port
//! emulates the faulting instruction (or a device writes) and hands over the bytes. The engine
//! writes them to guest memory first, then, for every shadow page of every table frame touched,
//! re-reads each affected guest entry **whole** and brings the shadow entry in line. Reading the
//! entries back after the write makes partial (1, 2, 4-byte) and misaligned writes (straddling
//! two entries) exact, with no special cases.
//!
//! Per entry:
//! * level-1 guest tables: the shadow leaf is recomputed from the new entry as a prefetch would
//!   (present, accessed, no reserved bits, target in a slot; writable only if dirty and the
//!   target is not itself a shadowed table) or cleared;
//! * higher levels: the shadow entry is dropped; the next access rebuilds it by a fault. (A
//!   changed link could hang a whole subtree off a different table, not worth a prefetch.)
//!
//! Flooding (KVM's `detect_write_flooding`): every emulated write to a shadowed table counts
//! against that shadow page; a fault walking through the page resets the count. At
//! [`FLOOD_WRITES`] writes without an intervening walk, the guest is evidently using the frame
//! as ordinary memory (a freed page table being reused, a page being zeroed), so the shadow page
//! is zapped and the frame unprotected; further writes run at full speed. If the frame is still
//! a table, the next fault through it shadows and protects it again. A root page is emptied
//! rather than freed (it is what the hardware CR3 points at) and so stays protected.

use super::addr::{Gfn, Gpa, Hpa, PAGE_SIZE};
use super::backing::{GuestMemory, ShadowTableStore};
use super::engine::ShadowMmu;
use super::pte::{
    A, ACC_W, ADDR_MASK, D, P, XD, entry_access, memtype_bits, phys_reserved_mask, shadow_leaf,
};
use super::role::Role;

/// Emulated writes to one shadow page, with no fault walking through it, that zap it.
pub const FLOOD_WRITES: u8 = 3;

/// What an emulated write did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// The bytes were written (false: some byte lies outside the writable slots; nothing done).
    pub written: bool,
    /// Shadow pages of written guest tables that were updated.
    pub tables_updated: u32,
    /// Shadow entries recomputed or dropped.
    pub entries_updated: u32,
    /// Shadow pages zapped for flooding.
    pub flood_zapped: u32,
}

impl<const PAGES: usize, const PARENTS: usize> ShadowMmu<PAGES, PARENTS> {
    /// Write `bytes` to guest memory at `gpa` on the guest's behalf (an emulated instruction, a
    /// device, the VMM) and update the shadows of any guest page table written.
    pub fn guest_write<M: GuestMemory, S: ShadowTableStore>(
        &mut self,
        mem: &mut M,
        store: &mut S,
        gpa: Gpa,
        bytes: &[u8],
    ) -> WriteOutcome {
        let mut out = WriteOutcome::default();
        if !mem.write_bytes(gpa, bytes) {
            return out;
        }
        out.written = true;
        let end = gpa.0.saturating_add(bytes.len() as u64);
        let mut start = gpa.0;
        while start < end {
            let page_end = (start & !(PAGE_SIZE - 1)) + PAGE_SIZE;
            let chunk_end = end.min(page_end);
            let gfn = Gfn(start >> 12);
            if let Some(slot) = mem.lookup_slot(gfn) {
                let hpa = slot.hpa_of(gfn);
                if self.pool.is_write_protected(hpa) {
                    let first = (start & (PAGE_SIZE - 1)) as usize / 8;
                    let last = ((chunk_end - 1) & (PAGE_SIZE - 1)) as usize / 8;
                    self.track_write(mem, store, hpa, first, last, &mut out);
                }
            }
            start = chunk_end;
        }
        out
    }

    /// Bring the shadows of the table at `hpa` in line after entries `first..=last` changed.
    fn track_write<M: GuestMemory, S: ShadowTableStore>(
        &mut self,
        mem: &M,
        store: &mut S,
        hpa: Hpa,
        first: usize,
        last: usize,
        out: &mut WriteOutcome,
    ) {
        for id in 0..PAGES as u16 {
            if self.pool.wp.get(id as usize) != Some(&hpa.0) {
                continue;
            }
            let Some(m) = self.pool.get_mut(id) else {
                continue;
            };
            m.write_count = m.write_count.saturating_add(1);
            let (flooded, role, gfn) = (m.write_count >= FLOOD_WRITES, m.role, m.gfn);
            if flooded {
                self.stats.flood_zaps += 1;
                out.flood_zapped += 1;
                self.zap_page(store, id);
                continue;
            }
            out.tables_updated += 1;
            for index in first..=last {
                out.entries_updated += 1;
                let new = if role.level() == 1 && !role.direct() {
                    let gpte = mem
                        .read_u64(Gpa(gfn.gpa().0 + 8 * index as u64))
                        .unwrap_or(u64::MAX);
                    self.prefetch_leaf(mem, role, gpte)
                } else {
                    0
                };
                self.drop_spte(store, id, index);
                if new != 0 {
                    self.set_spte(store, id, index, new);
                }
            }
        }
    }

    /// The shadow leaf for guest PTE `gpte` in a level-1 table of role `role`, or 0 if the entry
    /// must fault first (not present, not accessed, reserved bits, target not RAM).
    fn prefetch_leaf<M: GuestMemory>(&self, mem: &M, role: Role, gpte: u64) -> u64 {
        let nxe = role.nxe();
        let mut rsvd = phys_reserved_mask(self.config.guest.maxphyaddr);
        if !nxe {
            rsvd |= XD;
        }
        if gpte & P == 0 || gpte & A == 0 || gpte & rsvd != 0 {
            return 0;
        }
        let gfn = Gfn((gpte & ADDR_MASK) >> 12);
        let Some(slot) = mem.lookup_slot(gfn) else {
            return 0;
        };
        let hpa = slot.hpa_of(gfn);
        let mut rights = role.access() & entry_access(gpte, nxe);
        if gpte & D == 0 || slot.readonly || self.pool.is_write_protected(hpa) {
            rights &= !ACC_W;
        }
        shadow_leaf(hpa, 1, rights, memtype_bits(gpte, 1, 1))
    }
}
