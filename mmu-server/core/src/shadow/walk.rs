//! The engine's guest page-table walker (Intel SDM Vol. 3 §4.5, 4-level paging).
//!
//! Guest tables are hostile input. The walk reads one 8-byte entry per level through
//! [`GuestMemory`], never trusting anything it read: a non-present entry ends the walk with a
//! not-present fault, any reserved bit (SDM §4.5.4, Tables 4-15 to 4-20: bits 51:MAXPHYADDR, PS
//! in a PML4E, XD without EFER.NXE, PS in a PDPTE without 1 GiB page support, the low address
//! bits of a large page) ends it with P=1 and RSVD=1 in the error code (§4.7). A table that lies
//! in no memory slot reads as all ones, as unbacked physical memory does on a PC, so it faults
//! with RSVD like on hardware rather than panicking or being mapped.
//!
//! The walk records what the shadow builder needs: the guest table frame at each level, each
//! entry and its address, the rights accumulated above each level (the `access` of the shadow
//! table's role) and the effective rights and frame of the translation.
//!
//! Accessed and dirty bits (§4.8) are set by [`GuestWalk::set_accessed_dirty`] only once the
//! access is known to be allowed, as KVM does; the processor may set them for faulting accesses
//! too, and guests cannot rely on either. The updates are plain stores: the engine runs with the
//! vCPU stopped, and a port with several vCPUs sharing tables must make them compare-and-swap.

use super::addr::{Gfn, Gpa, Gva, level_bytes};
use super::backing::GuestMemory;
use super::mode::{MemAccess, PfErrorCode};
use super::pte::{
    A, ACC_ALL, ADDR_MASK, D, P, PS, Rights, XD, entry_access, is_leaf, large_reserved_mask,
    phys_reserved_mask,
};
use super::role::Role;

/// The guest CPU features that shape the walk (CPUID), fixed for a VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestCpu {
    /// MAXPHYADDR (CPUID.80000008H:EAX bits 7:0), 32..=52: bits 51:MAXPHYADDR are reserved.
    pub maxphyaddr: u8,
    /// 1 GiB pages supported (CPUID.80000001H:EDX bit 26); without them PS in a PDPTE is reserved.
    pub gbpages: bool,
}

/// The result of a successful guest walk.
#[derive(Clone, Copy, Debug, Default)]
pub struct GuestWalk {
    /// Level of the leaf: 1 (4 KiB), 2 (2 MiB) or 3 (1 GiB). Paging off is treated as 1 GiB pages.
    pub leaf_level: u8,
    /// Entry read at each level, indexed by level (index 0 unused).
    pub entries: [u64; 5],
    /// Guest-physical address of the entry read at each level.
    pub entry_gpa: [Gpa; 5],
    /// Guest table read at each level.
    pub table_gfn: [Gfn; 5],
    /// Rights granted by the entries above each level (the role access of that level's shadow).
    pub access_in: [Rights; 5],
    /// Effective rights of the translation.
    pub rights: Rights,
    /// The translated address.
    pub gpa: Gpa,
    /// False when paging is off (there are no guest entries).
    pub paging: bool,
}

impl GuestWalk {
    /// The identity "walk" of a guest with paging off: every access allowed.
    pub fn identity(gva: Gva) -> GuestWalk {
        GuestWalk {
            leaf_level: 3,
            access_in: [ACC_ALL; 5],
            rights: ACC_ALL,
            // Without paging, linear addresses are 32 bits wide.
            gpa: Gpa(gva.0 & 0xffff_ffff),
            paging: false,
            ..GuestWalk::default()
        }
    }

    /// The guest leaf entry.
    pub fn leaf(&self) -> u64 {
        self.entries[self.leaf_level as usize]
    }

    /// Is the guest leaf dirty (always true with paging off)?
    pub fn dirty(&self) -> bool {
        !self.paging || self.leaf() & D != 0
    }

    /// First frame of the guest page (of the leaf's size) containing the translation.
    pub fn page_base(&self) -> Gfn {
        Gfn((self.gpa.0 & !(level_bytes(self.leaf_level) - 1)) >> 12)
    }

    /// Set A in every entry used and D in the leaf for a write, as the processor does (§4.8).
    pub fn set_accessed_dirty<M: GuestMemory>(&mut self, mem: &mut M, write: bool) {
        if !self.paging {
            return;
        }
        let leaf = self.leaf_level as usize;
        for level in leaf..=4 {
            let mut want = self.entries[level] | A;
            if write && level == leaf {
                want |= D;
            }
            if want != self.entries[level] {
                // A table in a read-only slot keeps its bits, as on a bus that drops the write.
                if mem.write_u64(self.entry_gpa[level], want) {
                    self.entries[level] = want;
                }
            }
        }
    }
}

/// Walk the guest tables rooted at `root` for `gva`, checking presence and reserved bits.
/// Permissions are checked by the caller (`mode::permits`) on the returned rights.
pub fn walk<M: GuestMemory>(
    mem: &M,
    root: Gfn,
    gva: Gva,
    role: Role,
    cpu: &GuestCpu,
    access: MemAccess,
) -> Result<GuestWalk, PfErrorCode> {
    let nxe = role.nxe();
    let err = access.error_bits(nxe, role.protection().smep);
    let mut rsvd_any = phys_reserved_mask(cpu.maxphyaddr);
    if !nxe {
        rsvd_any |= XD;
    }
    let mut w = GuestWalk {
        paging: true,
        ..GuestWalk::default()
    };
    let mut table = root;
    let mut rights = ACC_ALL;
    let mut level = 4u8;
    loop {
        let l = level as usize;
        let gpa = Gpa(table.gpa().0 + 8 * gva.index(level) as u64);
        let entry = mem.read_u64(gpa).unwrap_or(u64::MAX);
        w.table_gfn[l] = table;
        w.entry_gpa[l] = gpa;
        w.entries[l] = entry;
        w.access_in[l] = rights;
        if entry & P == 0 {
            return Err(PfErrorCode(err));
        }
        let large = level > 1 && entry & PS != 0;
        let rsvd = rsvd_any
            | match (level, large) {
                (4, _) => PS,
                (3, true) if !cpu.gbpages => PS,
                (2 | 3, true) => large_reserved_mask(level),
                _ => 0,
            };
        if entry & rsvd != 0 {
            return Err(PfErrorCode(err | PfErrorCode::PRESENT | PfErrorCode::RSVD));
        }
        rights &= entry_access(entry, nxe);
        if is_leaf(entry, level) || level == 1 {
            let size = level_bytes(level);
            w.leaf_level = level;
            w.rights = rights;
            w.gpa = Gpa((entry & ADDR_MASK & !(size - 1)) | (gva.0 & (size - 1)));
            return Ok(w);
        }
        table = Gfn((entry & ADDR_MASK) >> 12);
        level -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_walk_allows_everything_at_every_level_on_32_bit_addresses() {
        let w = GuestWalk::identity(Gva(0xffff_8000_9234_5678));
        assert!(!w.paging);
        assert_eq!(w.gpa, Gpa(0x9234_5678), "linear addresses are 32 bits wide");
        assert_eq!((w.leaf_level, w.rights), (3, ACC_ALL));
        // What a table at any level would inherit from above: nothing is taken away.
        assert_eq!(w.access_in[1..], [ACC_ALL; 4]);
        assert!(w.dirty(), "no guest entry to wait for D in");
        assert_eq!(w.page_base(), Gfn(0x8_0000), "the 1 GiB page at 2 GiB");
    }
}
