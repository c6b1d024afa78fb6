//! Paging-structure entry bits (guest and shadow share the x86-64 format) and access rights.
//!
//! The bit positions are those of the Intel SDM Vol. 3 §4.5, Tables 4-15 to 4-20. Guest entries
//! are decoded here only as far as the walk needs (present, rights, A/D, PS, frame, reserved bits);
//! shadow entries are built here. Shadow entries use one software convention of ours: a non-leaf
//! shadow entry keeps the pool index of the table it points to in bits 62:52, which the SDM marks
//! "Ignored" in every non-leaf 4-level entry, so the engine follows a link without searching.

use super::addr::{Hpa, level_bytes};

/// Present.
pub const P: u64 = 1 << 0;
/// Read/write: writes allowed if set at every level (and always for supervisor when CR0.WP=0).
pub const RW: u64 = 1 << 1;
/// User/supervisor: user-mode accesses allowed if set at every level.
pub const US: u64 = 1 << 2;
/// Page-level write-through.
pub const PWT: u64 = 1 << 3;
/// Page-level cache disable.
pub const PCD: u64 = 1 << 4;
/// Accessed.
pub const A: u64 = 1 << 5;
/// Dirty (leaf entries only).
pub const D: u64 = 1 << 6;
/// Page size (PDPTE, PDE); PAT bit in a PTE.
pub const PS: u64 = 1 << 7;
/// PAT bit of a 4 KiB leaf (same position as PS).
pub const PAT_4K: u64 = 1 << 7;
/// PAT bit of a 2 MiB / 1 GiB leaf.
pub const PAT_LARGE: u64 = 1 << 12;
/// Execute-disable (only meaningful, and only legal, with EFER.NXE=1).
pub const XD: u64 = 1 << 63;
/// Address bits 51:12, the widest frame field the architecture allows.
pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Shift of the child pool index stored in non-leaf shadow entries (bits 62:52, "Ignored").
const CHILD_SHIFT: u32 = 52;
/// Width mask of the child pool index.
const CHILD_MASK: u64 = 0x7ff;
/// The largest shadow pool the child index can address.
pub const MAX_POOL_PAGES: usize = CHILD_MASK as usize + 1;

/// Access rights as a 3-bit set: what a mapping allows beyond reading.
///
/// Reading is implied by presence. `ACC_X` is "executable", i.e. the inverse of XD.
pub type Rights = u8;
/// Writable.
pub const ACC_W: Rights = 1 << 0;
/// User-accessible.
pub const ACC_U: Rights = 1 << 1;
/// Executable.
pub const ACC_X: Rights = 1 << 2;
/// Everything.
pub const ACC_ALL: Rights = ACC_W | ACC_U | ACC_X;

/// The rights one entry grants to the walk below it (SDM §4.6.1), given whether XD is honoured.
pub const fn entry_access(entry: u64, nxe: bool) -> Rights {
    let mut acc = 0;
    if entry & RW != 0 {
        acc |= ACC_W;
    }
    if entry & US != 0 {
        acc |= ACC_U;
    }
    if !(nxe && entry & XD != 0) {
        acc |= ACC_X;
    }
    acc
}

/// Bits 51:M of an entry: reserved when the (guest) MAXPHYADDR is M (SDM §4.5.4, Table 4-14 notes).
pub const fn phys_reserved_mask(maxphyaddr: u8) -> u64 {
    ADDR_MASK & !((1u64 << maxphyaddr) - 1)
}

/// Low address bits of a large leaf that must be zero: 20:13 for 2 MiB, 29:13 for 1 GiB.
pub const fn large_reserved_mask(level: u8) -> u64 {
    (level_bytes(level) - 1) & !(PAT_LARGE | 0xfff)
}

/// Is this entry a leaf at `level`? (Level 1 is always a leaf; 2 and 3 when PS is set.)
pub const fn is_leaf(entry: u64, level: u8) -> bool {
    level == 1 || entry & PS != 0
}

/// A non-leaf shadow entry pointing at pool table `child` (at `hpa`): fully permissive, because the
/// effective rights of the whole walk live in the leaf (see `shadow::fault`).
pub const fn shadow_link(hpa: Hpa, child: u16) -> u64 {
    (hpa.0 & ADDR_MASK) | ((child as u64 & CHILD_MASK) << CHILD_SHIFT) | P | RW | US | A
}

/// The pool index stored in a non-leaf shadow entry.
pub const fn link_child(spte: u64) -> u16 {
    ((spte >> CHILD_SHIFT) & CHILD_MASK) as u16
}

/// Is this shadow entry at `level` a link to a child table?
pub const fn is_shadow_link(spte: u64, level: u8) -> bool {
    spte & P != 0 && !is_leaf(spte, level)
}

/// Is this shadow entry at `level` a present leaf?
pub const fn is_shadow_leaf(spte: u64, level: u8) -> bool {
    spte & P != 0 && is_leaf(spte, level)
}

/// A present leaf shadow entry at `level` mapping `hpa` with `access`.
///
/// `memtype` carries the guest leaf's PWT/PCD/PAT bits, PAT already at the position for `level`.
/// A is preset (the guest's A bit was set by the engine when it walked); D is preset exactly when
/// the entry is writable, because writability is only granted once the guest entry is dirty.
pub const fn shadow_leaf(hpa: Hpa, level: u8, access: Rights, memtype: u64) -> u64 {
    let mut spte = (hpa.0 & ADDR_MASK) | P | A | memtype;
    if level > 1 {
        spte |= PS;
    }
    if access & ACC_W != 0 {
        spte |= RW | D;
    }
    if access & ACC_U != 0 {
        spte |= US;
    }
    if access & ACC_X == 0 {
        spte |= XD;
    }
    spte
}

/// The memory-type bits (PWT, PCD, PAT) of a guest leaf at `guest_level`, re-encoded for a shadow
/// leaf at `shadow_level` (PAT moves between bit 12 and bit 7 when a large page is split).
pub const fn memtype_bits(guest_leaf: u64, guest_level: u8, shadow_level: u8) -> u64 {
    let pat = if guest_level > 1 {
        guest_leaf & PAT_LARGE != 0
    } else {
        guest_leaf & PAT_4K != 0
    };
    let mut bits = guest_leaf & (PWT | PCD);
    if pat {
        bits |= if shadow_level > 1 { PAT_LARGE } else { PAT_4K };
    }
    bits
}

/// The host frame a present shadow leaf or link points at.
pub const fn spte_hpa(spte: u64) -> Hpa {
    Hpa(spte & ADDR_MASK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_round_trips_child_index_in_ignored_bits() {
        let link = shadow_link(Hpa(0x1234_5000), 2047);
        assert_eq!(link_child(link), 2047);
        assert_eq!(spte_hpa(link), Hpa(0x1234_5000));
        assert!(is_shadow_link(link, 4));
        // The index never leaks into the address field or XD.
        assert_eq!(link & XD, 0);
    }

    #[test]
    fn reserved_masks_match_the_sdm_tables() {
        assert_eq!(phys_reserved_mask(40), 0x000f_ff00_0000_0000);
        assert_eq!(phys_reserved_mask(52), 0);
        assert_eq!(large_reserved_mask(2), 0x1f_e000); // bits 20:13
        assert_eq!(large_reserved_mask(3), 0x3fff_e000); // bits 29:13
    }

    #[test]
    fn leaf_bits_follow_access() {
        let ro = shadow_leaf(Hpa(0x2000), 1, ACC_U, 0);
        assert_eq!(ro & (RW | D), 0);
        assert_ne!(ro & XD, 0);
        let rw = shadow_leaf(Hpa(0x20_0000), 2, ACC_ALL, 0);
        assert_eq!(rw & (RW | D | US | PS), RW | D | US | PS);
        assert_eq!(rw & XD, 0);
        assert_eq!(memtype_bits(PAT_LARGE | PCD, 2, 1), PAT_4K | PCD);
    }
}
