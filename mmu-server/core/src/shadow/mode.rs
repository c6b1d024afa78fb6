//! The guest's paging controls, the access being made, and the SDM's permission rules.
//!
//! The port hands the engine the raw control bits (CR0, CR4, EFER) and the page-fault error code
//! the hardware reported on the shadow tables; this module turns them into a paging mode, an
//! access description and the error code to inject. The permission rule is Intel SDM Vol. 3 §4.6
//! (access rights, including CR0.WP, SMEP and SMAP) and the error code layout is §4.7.
//!
//! Supported guest modes: paging off, and 4-level paging (IA-32e). 32-bit and PAE paging, 5-level
//! paging and protection keys are refused with a [`ModeError`] so the port can fall back.

use super::pte::{ACC_U, ACC_W, ACC_X, Rights};

/// The guest control-register bits that shape the walk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CpuMode {
    /// CR0.PG: paging enabled.
    pub cr0_pg: bool,
    /// CR0.WP: supervisor writes honour R/W.
    pub cr0_wp: bool,
    /// CR4.PSE: 4 MiB pages in 32-bit paging (ignored by 4-level paging).
    pub cr4_pse: bool,
    /// CR4.PAE.
    pub cr4_pae: bool,
    /// CR4.SMEP: supervisor fetches from user pages fault.
    pub cr4_smep: bool,
    /// CR4.SMAP: supervisor data accesses to user pages fault unless EFLAGS.AC.
    pub cr4_smap: bool,
    /// CR4.PKE: protection keys (unsupported).
    pub cr4_pke: bool,
    /// CR4.LA57: 5-level paging (unsupported).
    pub cr4_la57: bool,
    /// EFER.LMA: IA-32e mode active.
    pub efer_lma: bool,
    /// EFER.NXE: XD honoured (and legal).
    pub efer_nxe: bool,
}

impl CpuMode {
    /// A 64-bit guest with the usual modern settings: WP, NXE, no SMEP/SMAP.
    pub const fn long_mode() -> CpuMode {
        CpuMode {
            cr0_pg: true,
            cr0_wp: true,
            cr4_pse: false,
            cr4_pae: true,
            cr4_smep: false,
            cr4_smap: false,
            cr4_pke: false,
            cr4_la57: false,
            efer_lma: true,
            efer_nxe: true,
        }
    }

    /// A guest with paging disabled (GVA = GPA).
    pub const fn paging_off() -> CpuMode {
        CpuMode {
            cr0_pg: false,
            ..CpuMode::long_mode()
        }
    }

    /// Which paging mode these bits select (SDM §4.1.1, Table 4-1).
    pub fn paging_mode(&self) -> Result<PagingMode, ModeError> {
        if !self.cr0_pg {
            return Ok(PagingMode::Off);
        }
        if !self.cr4_pae {
            return Err(ModeError::ThirtyTwoBit);
        }
        if !self.efer_lma {
            return Err(ModeError::Pae);
        }
        if self.cr4_la57 {
            return Err(ModeError::FiveLevel);
        }
        if self.cr4_pke {
            return Err(ModeError::ProtectionKeys);
        }
        Ok(PagingMode::FourLevel)
    }
}

/// The paging modes the engine shadows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PagingMode {
    /// CR0.PG=0: linear = physical, no protection.
    Off,
    /// 4-level paging, SDM §4.5.
    FourLevel,
}

/// A paging configuration the engine does not shadow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeError {
    /// 32-bit paging (CR4.PAE=0).
    ThirtyTwoBit,
    /// PAE paging outside IA-32e mode.
    Pae,
    /// 5-level paging (CR4.LA57=1).
    FiveLevel,
    /// Protection keys (CR4.PKE=1).
    ProtectionKeys,
}

/// A page-fault error code (SDM §4.7, Figure 4-12).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PfErrorCode(pub u32);

impl PfErrorCode {
    /// P: 0 = not-present page, 1 = protection violation (or reserved bit).
    pub const PRESENT: u32 = 1 << 0;
    /// W/R: the access was a write.
    pub const WRITE: u32 = 1 << 1;
    /// U/S: the access was a user-mode access.
    pub const USER: u32 = 1 << 2;
    /// RSVD: a reserved bit was set in some paging-structure entry.
    pub const RSVD: u32 = 1 << 3;
    /// I/D: the access was an instruction fetch (reported only with NXE or SMEP).
    pub const FETCH: u32 = 1 << 4;

    /// Is `bit` set?
    pub const fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }
}

/// What kind of access faulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessKind {
    /// Data read.
    Read,
    /// Data write.
    Write,
    /// Instruction fetch.
    Fetch,
}

/// One memory access, as the permission rules of SDM §4.6 see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MemAccess {
    /// Read, write or fetch.
    pub kind: AccessKind,
    /// A user-mode access (CPL 3, and not an implicit supervisor access).
    pub user: bool,
    /// An explicit supervisor data access made with EFLAGS.AC=1, which SMAP lets through.
    pub smap_override: bool,
}

impl MemAccess {
    /// The access described by a hardware error code plus the guest's EFLAGS.AC for the access.
    pub const fn from_error_code(ec: PfErrorCode, eflags_ac: bool) -> MemAccess {
        let kind = if ec.has(PfErrorCode::FETCH) {
            AccessKind::Fetch
        } else if ec.has(PfErrorCode::WRITE) {
            AccessKind::Write
        } else {
            AccessKind::Read
        };
        let user = ec.has(PfErrorCode::USER);
        MemAccess {
            kind,
            user,
            smap_override: eflags_ac && !user && !matches!(kind, AccessKind::Fetch),
        }
    }

    /// Is this a write?
    pub const fn is_write(&self) -> bool {
        matches!(self.kind, AccessKind::Write)
    }

    /// The error-code bits describing the access itself (W/R, U/S, I/D), SDM §4.7.
    pub const fn error_bits(&self, nxe: bool, smep: bool) -> u32 {
        let mut ec = 0;
        match self.kind {
            AccessKind::Write => ec |= PfErrorCode::WRITE,
            AccessKind::Fetch if nxe || smep => ec |= PfErrorCode::FETCH,
            _ => {}
        }
        if self.user {
            ec |= PfErrorCode::USER;
        }
        ec
    }
}

/// The protection controls the permission rule depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Protection {
    /// CR0.WP.
    pub wp: bool,
    /// CR4.SMEP.
    pub smep: bool,
    /// CR4.SMAP.
    pub smap: bool,
}

/// Does a translation with effective rights `rights` permit `access`? SDM §4.6.1.
pub const fn permits(rights: Rights, access: MemAccess, prot: Protection) -> bool {
    let user_page = rights & ACC_U != 0;
    let writable = rights & ACC_W != 0;
    let exec = rights & ACC_X != 0;
    if access.user {
        return user_page
            && match access.kind {
                AccessKind::Read => true,
                AccessKind::Write => writable,
                AccessKind::Fetch => exec,
            };
    }
    match access.kind {
        AccessKind::Fetch => exec && !(user_page && prot.smep),
        AccessKind::Read => !(user_page && prot.smap && !access.smap_override),
        AccessKind::Write => {
            !(user_page && prot.smap && !access.smap_override) && (writable || !prot.wp)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shadow::pte::ACC_ALL;

    const fn acc(kind: AccessKind, user: bool) -> MemAccess {
        MemAccess {
            kind,
            user,
            smap_override: false,
        }
    }

    #[test]
    fn modes_are_decoded_per_table_4_1() {
        assert_eq!(
            CpuMode::long_mode().paging_mode(),
            Ok(PagingMode::FourLevel)
        );
        assert_eq!(CpuMode::paging_off().paging_mode(), Ok(PagingMode::Off));
        let mut m = CpuMode::long_mode();
        m.cr4_pae = false;
        assert_eq!(m.paging_mode(), Err(ModeError::ThirtyTwoBit));
        m.cr4_pae = true;
        m.efer_lma = false;
        assert_eq!(m.paging_mode(), Err(ModeError::Pae));
    }

    #[test]
    fn wp_smep_smap_rules() {
        let strict = Protection {
            wp: true,
            smep: true,
            smap: true,
        };
        let lax = Protection {
            wp: false,
            smep: false,
            smap: false,
        };
        let user_ro = ACC_U | ACC_X;
        // CR0.WP=0 lets the supervisor write a read-only page, never the user.
        assert!(permits(ACC_X, acc(AccessKind::Write, false), lax));
        assert!(!permits(ACC_X, acc(AccessKind::Write, false), strict));
        assert!(!permits(user_ro, acc(AccessKind::Write, true), lax));
        // SMEP: no supervisor fetch from a user page.
        assert!(!permits(ACC_ALL, acc(AccessKind::Fetch, false), strict));
        assert!(permits(ACC_ALL, acc(AccessKind::Fetch, false), lax));
        // SMAP: no supervisor data access to a user page unless AC overrides.
        assert!(!permits(ACC_ALL, acc(AccessKind::Read, false), strict));
        let ac = MemAccess {
            smap_override: true,
            ..acc(AccessKind::Read, false)
        };
        assert!(permits(ACC_ALL, ac, strict));
        // I/D is reported only with NXE or SMEP.
        assert_eq!(acc(AccessKind::Fetch, true).error_bits(false, false), 4);
        assert_eq!(acc(AccessKind::Fetch, true).error_bits(true, false), 0x14);
    }
}
