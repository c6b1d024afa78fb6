//! The role word: every configuration bit that changes what a shadow table contains.
//!
//! A shadow table is found again by `(guest frame, role)`: by the engine when a walk needs the
//! shadow of a guest table, and by the root cache when the guest loads CR3 (docs/DESIGN.md, "Root
//! caching keyed by the full role"; KVM's `prev_roots` and `kvm_mmu_page_role`). Two rules make
//! that safe and effective:
//!
//! * **Complete**: any bit that can change one entry of a shadow table is in the role, so a table
//!   built under one configuration is never reused under another one where it would be wrong.
//! * **Canonical**: bits the hardware ignores in the current mode are cleared, so two
//!   configurations the hardware treats the same always produce the same word and never miss
//!   each other in the cache.
//!
//! | bits  | field    | why it is in the key |
//! |-------|----------|----------------------|
//! | 2:0   | level    | entry formats differ by level (PS is reserved at level 4, a leaf at 2/3), and one guest frame may serve as a table at several levels (self-maps) |
//! | 3     | direct   | a direct table maps a fixed GPA range (paging off, or a split guest large page); an indirect one mirrors a guest table. The same frame number can name both |
//! | 5:4   | mode     | paging off vs 4-level (32-bit and PAE would be 2 and 3): number of levels, entry width, and meaning of PS. This field is where CR4.PAE and EFER.LMA live |
//! | 6     | CR0.WP   | with WP=0 a supervisor write to a read-only page is allowed, and the engine shadows it as a writable supervisor-only leaf; that leaf would grant forbidden writes under WP=1 |
//! | 7     | CR4.PSE  | decides whether PDE.PS maps 4 MiB pages in 32-bit paging; ignored by 4-level paging, so canonically 0 there |
//! | 8     | CR4.SMEP | the WP=0 leaf above turns a user page into a supervisor page; under SMEP the engine must also make it non-executable, so the leaves differ |
//! | 9     | CR4.SMAP | under SMAP that WP=0 leaf would let AC=0 supervisor accesses through, so the engine emulates instead of mapping; the leaves differ |
//! | 10    | EFER.NXE | without NXE, bit 63 is reserved (the walk faults with RSVD) and no page is non-executable |
//! | 13:11 | access   | the rights of the guest entries above this table (or of the guest large page, for a direct table); leaves carry the effective rights of the whole walk, so two walks reaching one guest table with different upper rights need different shadows. Always "all" for a root |
//!
//! With paging off, nothing but `mode`, `direct` and `level` matters: protection bits are all
//! cleared. Bits of the CR3 value other than the frame (PWT, PCD) are not in any key: they only
//! select the memory type of the PML4 access.

use super::mode::{CpuMode, ModeError, PagingMode, Protection};
use super::pte::{ACC_ALL, Rights};

/// A canonical role word; see the module documentation for every bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Role(u32);

const LEVEL_MASK: u32 = 0b111;
const DIRECT: u32 = 1 << 3;
const MODE_SHIFT: u32 = 4;
const MODE_MASK: u32 = 0b11 << MODE_SHIFT;
const MODE_FOUR_LEVEL: u32 = 1 << MODE_SHIFT;
const CR0_WP: u32 = 1 << 6;
const CR4_PSE: u32 = 1 << 7;
const CR4_SMEP: u32 = 1 << 8;
const CR4_SMAP: u32 = 1 << 9;
const EFER_NX: u32 = 1 << 10;
const ACCESS_SHIFT: u32 = 11;
const ACCESS_MASK: u32 = 0b111 << ACCESS_SHIFT;

/// Number of meaningful bits in a role word.
pub const ROLE_BITS: u32 = 14;

impl Role {
    /// The canonical role of the root table for a guest in `mode`.
    pub fn root(mode: &CpuMode) -> Result<Role, ModeError> {
        let base = 4 | ((ACC_ALL as u32) << ACCESS_SHIFT);
        Ok(match mode.paging_mode()? {
            // No protection exists with paging off: every control bit is canonically clear.
            PagingMode::Off => Role(base | DIRECT),
            PagingMode::FourLevel => {
                let mut bits = base | MODE_FOUR_LEVEL;
                // CR4.PSE is ignored by 4-level paging (SDM §4.1.1): canonically clear.
                for (on, bit) in [
                    (mode.cr0_wp, CR0_WP),
                    (mode.cr4_smep, CR4_SMEP),
                    (mode.cr4_smap, CR4_SMAP),
                    (mode.efer_nxe, EFER_NX),
                ] {
                    if on {
                        bits |= bit;
                    }
                }
                Role(bits)
            }
        })
    }

    /// The raw word (for keys, tests and tracing).
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Rebuild from a raw word; used by tests that flip single bits.
    pub const fn from_bits(bits: u32) -> Role {
        Role(bits)
    }

    /// Table level, 1..=4.
    pub const fn level(self) -> u8 {
        (self.0 & LEVEL_MASK) as u8
    }

    /// Does this table map a fixed GPA range rather than mirror a guest table?
    pub const fn direct(self) -> bool {
        self.0 & DIRECT != 0
    }

    /// Is guest paging on?
    pub const fn paging(self) -> bool {
        self.0 & MODE_MASK != 0
    }

    /// CR4.PSE (meaningful only for 32-bit paging, which is not shadowed yet; always clear now).
    pub const fn cr4_pse(self) -> bool {
        self.0 & CR4_PSE != 0
    }

    /// EFER.NXE.
    pub const fn nxe(self) -> bool {
        self.0 & EFER_NX != 0
    }

    /// CR0.WP, CR4.SMEP, CR4.SMAP.
    pub const fn protection(self) -> Protection {
        Protection {
            wp: self.0 & CR0_WP != 0,
            smep: self.0 & CR4_SMEP != 0,
            smap: self.0 & CR4_SMAP != 0,
        }
    }

    /// The rights of the guest walk above this table.
    pub const fn access(self) -> Rights {
        ((self.0 & ACCESS_MASK) >> ACCESS_SHIFT) as Rights
    }

    /// The role of a child table at `level` with `access`, direct or not, in the same context.
    pub const fn child(self, level: u8, direct: bool, access: Rights) -> Role {
        let mut bits = self.0 & !(LEVEL_MASK | DIRECT | ACCESS_MASK);
        bits |= level as u32 & LEVEL_MASK;
        bits |= ((access as u32) << ACCESS_SHIFT) & ACCESS_MASK;
        if direct || self.0 & DIRECT != 0 {
            bits |= DIRECT;
        }
        Role(bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        let lm = CpuMode::long_mode();
        let mut pse = lm;
        pse.cr4_pse = true;
        assert_eq!(
            Role::root(&lm),
            Role::root(&pse),
            "PSE is ignored in 4-level paging"
        );
        let mut off = CpuMode::paging_off();
        let off_role = Role::root(&off).unwrap();
        off.cr0_wp = !off.cr0_wp;
        off.cr4_smep = true;
        off.efer_nxe = false;
        assert_eq!(
            Role::root(&off),
            Ok(off_role),
            "protection bits mean nothing without paging"
        );
        assert!(off_role.direct() && !off_role.paging());
        assert_ne!(Role::root(&lm), Ok(off_role));
    }

    #[test]
    fn every_control_bit_reaches_the_word() {
        let base = Role::root(&CpuMode::long_mode()).unwrap();
        let flips: [fn(&mut CpuMode); 4] = [
            |m| m.cr0_wp = !m.cr0_wp,
            |m| m.cr4_smep = !m.cr4_smep,
            |m| m.cr4_smap = !m.cr4_smap,
            |m| m.efer_nxe = !m.efer_nxe,
        ];
        for flip in flips {
            let mut m = CpuMode::long_mode();
            flip(&mut m);
            assert_ne!(Role::root(&m).unwrap(), base);
        }
    }

    #[test]
    fn child_roles_keep_context() {
        let root = Role::root(&CpuMode::long_mode()).unwrap();
        let child = root.child(2, false, ACC_ALL & !1);
        assert_eq!(child.level(), 2);
        assert_eq!(child.access(), ACC_ALL & !1);
        assert_eq!(child.protection(), root.protection());
        assert!(!child.direct());
        assert!(root.child(1, true, 0).direct());
    }
}
