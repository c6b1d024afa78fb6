//! Trapped system-register accesses (EC 0x18): decoding the syndrome and answering the registers
//! the vmm emulates.
//!
//! In guest mode the kernel sets MDCR_EL2.TDA, TDOSA, TDRA, TPM and TPMCR and clears
//! CNTHCTL_EL2.EL1PCEN, so every guest access to a debug register, a PMU register or the EL1
//! physical timer traps to EL2 and reaches the vmm as a `VmExitKind::SystemRegister` exit with
//! the PC at the instruction. The ISS (Arm ARM D17.2.37, "ISS encoding for an exception from
//! MSR, MRS, or System instruction execution"):
//!
//! ```text
//!  63    32 31  26 25 24  22 21 20 19  17 16  14 13  10 9    5 4   1  0
//! ┌────────┬──────┬──┬──────┬─────┬──────┬──────┬──────┬──────┬─────┬───┐
//! │  RES0  │  EC  │IL│ RES0 │ Op0 │ Op2  │ Op1  │ CRn  │  Rt  │ CRm │Dir│
//! │ (ISS2) │ 0x18 │ 1│      │     │      │      │      │      │     │   │
//! └────────┴──────┴──┴──────┴─────┴──────┴──────┴──────┴──────┴─────┴───┘
//!   Dir = 1: a read (MRS Xt, <reg>); 0: a write (MSR <reg>, Xt). Rt = 31 is XZR.
//! ```
//!
//! The registers, by (Op0, Op1, CRn, CRm, Op2), from the Arm ARM's AArch64 register descriptions
//! ("Debug registers", "Performance Monitors registers", "Generic Timer registers") and the
//! encoding tables of C5.1 ("op0 == 0b10, Moves to and from debug and trace System registers";
//! "op0 == 0b11, Moves to and from non-debug System registers"); RO / WO where the register is
//! read-only / write-only:
//!
//! ```text
//! class    op0 op1 CRn CRm     op2   register
//! debug     2   0   0  0       2     OSDTRRX_EL1
//!           2   0   0  2       0     MDCCINT_EL1
//!           2   0   0  2       2     MDSCR_EL1
//!           2   0   0  3       2     OSDTRTX_EL1
//!           2   0   0  6       2     OSECCR_EL1
//!           2   0   0  n       4..7  DBGBVRn / DBGBCRn / DBGWVRn / DBGWCRn_EL1, n = 0..15
//!           2   0   1  0       0     MDRAR_EL1 (RO)
//!           2   0   1  0       4     OSLAR_EL1 (WO)
//!           2   0   1  1       4     OSLSR_EL1 (RO)
//!           2   0   1  3       4     OSDLR_EL1
//!           2   0   1  4       4     DBGPRCR_EL1
//!           2   0   7  8 / 9   6     DBGCLAIMSET_EL1 / DBGCLAIMCLR_EL1
//!           2   0   7  14      6     DBGAUTHSTATUS_EL1 (RO)
//!           2   3   0  1       0     MDCCSR_EL0 (RO)
//!           2   3   0  4       0     DBGDTR_EL0
//!           2   3   0  5       0     DBGDTRRX_EL0 (read) / DBGDTRTX_EL0 (write)
//! PMU       3   3   9  12      0..7  PMCR, PMCNTENSET, PMCNTENCLR, PMOVSCLR, PMSWINC (WO),
//!                                    PMSELR, PMCEID0 (RO), PMCEID1 (RO) _EL0
//!           3   3   9  13      0..2  PMCCNTR, PMXEVTYPER, PMXEVCNTR _EL0
//!           3   3   9  14      0 / 3 PMUSERENR_EL0 / PMOVSSET_EL0
//!           3   0   9  14      1 / 2 PMINTENSET_EL1 / PMINTENCLR_EL1
//!           3   0   9  14      6     PMMIR_EL1 (RO)
//!           3   3  14  8..11   0..7  PMEVCNTRn_EL0, n = 8 (CRm - 8) + op2 = 0..30
//!           3   3  14  12..15  0..7  PMEVTYPERn_EL0, n = 0..30; n = 31 is PMCCFILTR_EL0
//! timer     3   3  14  2       0..2  CNTP_TVAL_EL0, CNTP_CTL_EL0, CNTP_CVAL_EL0
//! SGI       3   0  12  11      5..7  ICC_SGI1R_EL1, ICC_ASGI1R_EL1, ICC_SGI0R_EL1 (all WO)
//! ```
//!
//! Every register of the table is RAZ/WI: a read writes 0 to Xt (nothing for XZR) and a write
//! is ignored; both step over the instruction. So the guest sees no breakpoints, no watchpoints,
//! no OS lock, no debug communications channel, a PMU with no counters (PMCR_EL0.N = 0), and an
//! EL1 physical timer that never runs: nothing it writes there reaches the hardware the kernel
//! and the servers share. The physical timer is RAZ/WI only for now: a virtual physical timer
//! (its interrupt delivered through the vGIC) comes with the vGIC work. Reading a write-only
//! register or writing a read-only one is UNDEFINED on hardware (the encoding is unallocated,
//! which takes priority over the trap), and so is everything outside the table: the vmm
//! injects an undefined instruction, as before. So does a syndrome that does not decode (not EC
//! 0x18, IL = 0, a RES0 bit set): guest input is hostile, nothing here panics.
//!
//! The SGI generation registers are the exception (GICv3 spec IHI 0069, 12.2):
//! with HCR_EL2.IMO set the guest's ICC_* registers go to the virtual CPU interface, except
//! these, which trap (ICC_SGI0R_EL1 with HCR_EL2.FMO). A write to ICC_SGI1R_EL1 is the guest
//! sending an SGI: [`action`] answers [`Action::SendSgi`], which the caller hands to
//! `vgic::Vgic::send_sgi`. With GICD_CTLR.DS = 1, ICC_SGI0R_EL1 generates only Group 0 SGIs,
//! and ICC_ASGI1R_EL1 ("the other Security state's Group 1", which a single Security state does
//! not have) behaves the same (KVM's access_gic_sgi dispatches both with group 0 only). Our
//! vGIC delivers no Group 0 interrupt (its list registers carry Group 1), so both are WI:
//! stepped over, nothing latched. All three are write-only: a read is UNDEFINED, as KVM's
//! read_from_write_only. [`resume`] alone, for a caller without a vGIC, ignores ICC_SGI1R_EL1
//! writes too.

use crate::exit::{Cause, Resume};
use crate::syndrome::{ec, exception_class};

/// IL: a 32-bit instruction (every A64 MSR/MRS).
const IL: u64 = 1 << 25;
/// Bits that are RES0 in an EC 0x18 syndrome: ISS2 [63:32] and ISS [24:22].
const RES0: u64 = 0xFFFF_FFFF_0000_0000 | (0b111 << 22);

/// The five fields that name a system register (`S<op0>_<op1>_C<n>_C<m>_<op2>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Encoding {
    pub op0: u8,
    pub op1: u8,
    pub crn: u8,
    pub crm: u8,
    pub op2: u8,
}

impl Encoding {
    /// The register `S<op0>_<op1>_C<crn>_C<crm>_<op2>`.
    pub const fn new(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> Self {
        Self {
            op0,
            op1,
            crn,
            crm,
            op2,
        }
    }
}

/// One trapped MSR or MRS, from its syndrome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SysregAccess {
    /// The register.
    pub encoding: Encoding,
    /// The transfer register Xt; 31 is XZR.
    pub rt: u8,
    /// MRS (Direction = 1), else MSR.
    pub read: bool,
}

/// Why a syndrome is not a trapped MSR/MRS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DecodeError {
    /// ESR_EL2.EC is not 0x18.
    NotSysreg,
    /// IL = 0 or a RES0 bit is set: no A64 MSR/MRS reports that.
    Malformed,
}

impl SysregAccess {
    /// Decodes ESR_EL2 of a SystemRegister exit.
    pub const fn decode(esr: u64) -> Result<Self, DecodeError> {
        if exception_class(esr) != ec::SYSREG {
            return Err(DecodeError::NotSysreg);
        }
        if esr & IL == 0 || esr & RES0 != 0 {
            return Err(DecodeError::Malformed);
        }
        Ok(Self {
            encoding: Encoding::new(
                field(esr, 20, 2),
                field(esr, 14, 3),
                field(esr, 10, 4),
                field(esr, 1, 4),
                field(esr, 17, 3),
            ),
            rt: field(esr, 5, 5),
            read: esr & 1 != 0,
        })
    }
}

/// The `bits`-wide field of `esr` at `shift`.
const fn field(esr: u64, shift: u32, bits: u32) -> u8 {
    ((esr >> shift) & ((1 << bits) - 1)) as u8
}

/// The emulated registers, by what they belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RegisterClass {
    /// Self-hosted debug, the OS lock and the debug communications channel.
    Debug,
    /// The Performance Monitors.
    Pmu,
    /// The EL1 physical timer (CNTP_*).
    PhysicalTimer,
    /// The GIC's SGI generation registers (ICC_SGI1R_EL1, ICC_ASGI1R_EL1, ICC_SGI0R_EL1).
    SgiGeneration,
}

/// Which directions a register has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    ReadWrite,
    ReadOnly,
    WriteOnly,
}

impl Direction {
    /// Whether an MRS (`read`) or MSR is an allocated instruction for the register.
    pub const fn allows(self, read: bool) -> bool {
        match self {
            Self::ReadWrite => true,
            Self::ReadOnly => read,
            Self::WriteOnly => !read,
        }
    }
}

/// The register's class and directions, `None` when the vmm does not emulate it (the table in
/// the module comment).
pub const fn classify(encoding: Encoding) -> Option<(RegisterClass, Direction)> {
    use Direction::{ReadOnly as RO, ReadWrite as RW, WriteOnly as WO};
    use RegisterClass::{Debug, PhysicalTimer, Pmu, SgiGeneration};
    let Encoding {
        op0,
        op1,
        crn,
        crm,
        op2,
    } = encoding;
    Some(match (op0, op1, crn, crm, op2) {
        (2, 0, 0, 0 | 3 | 6, 2) | (2, 0, 0, 2, 0 | 2) => (Debug, RW),
        (2, 0, 0, 0..=15, 4..=7) => (Debug, RW),
        (2, 0, 1, 0, 0) | (2, 0, 1, 1, 4) => (Debug, RO),
        (2, 0, 1, 0, 4) => (Debug, WO),
        (2, 0, 1, 3 | 4, 4) | (2, 0, 7, 8 | 9, 6) => (Debug, RW),
        (2, 0, 7, 14, 6) | (2, 3, 0, 1, 0) => (Debug, RO),
        (2, 3, 0, 4 | 5, 0) => (Debug, RW),
        (3, 3, 9, 12, 4) => (Pmu, WO),
        (3, 3, 9, 12, 6 | 7) | (3, 0, 9, 14, 6) => (Pmu, RO),
        (3, 3, 9, 12, 0..=5) | (3, 3, 9, 13, 0..=2) | (3, 3, 9, 14, 0 | 3) => (Pmu, RW),
        (3, 0, 9, 14, 1 | 2) => (Pmu, RW),
        // PMEVCNTR31_EL0 does not exist; PMEVTYPER31_EL0's slot is PMCCFILTR_EL0.
        (3, 3, 14, 11, 7) => return None,
        (3, 3, 14, 8..=15, 0..=7) => (Pmu, RW),
        (3, 3, 14, 2, 0..=2) => (PhysicalTimer, RW),
        (3, 0, 12, 11, 5..=7) => (SgiGeneration, WO),
        _ => return None,
    })
}

/// ICC_SGI1R_EL1, `S3_0_C12_C11_5`.
pub const ICC_SGI1R_EL1: Encoding = Encoding::new(3, 0, 12, 11, 5);

/// What the vmm does for a SystemRegister exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Reply at once.
    Reply(Resume),
    /// `MSR ICC_SGI1R_EL1, Xt`: hand `value` (Xt; 0 for XZR) to `vgic::Vgic::send_sgi`, then
    /// reply `then` (step over the instruction).
    SendSgi { value: u64, then: Resume },
}

/// The action for a SystemRegister exit with syndrome `esr`, where `value` is what the kernel
/// read from Xt of a write (`VmExit` word 0): [`Action::SendSgi`] for a write to ICC_SGI1R_EL1,
/// else the reply of [`resume`].
pub const fn action(esr: u64, value: u64) -> Action {
    if let Ok(access) = SysregAccess::decode(esr)
        && !access.read
        && matches!(access.encoding, ICC_SGI1R_EL1)
    {
        return Action::SendSgi {
            value: if access.rt == 31 { 0 } else { value },
            then: Resume::advance(Cause::Emulated),
        };
    }
    Action::Reply(resume(esr))
}

/// The reply to a SystemRegister exit with syndrome `esr`: RAZ/WI for the table's registers
/// (a read is an emulated load of 0, through the same `WRITE_REGISTER` reply as an MMIO load),
/// an undefined instruction for anything else.
pub const fn resume(esr: u64) -> Resume {
    let access = match SysregAccess::decode(esr) {
        Ok(access) => access,
        Err(_) => return Resume::undefined(Cause::Unhandled),
    };
    match classify(access.encoding) {
        Some((class, direction)) if direction.allows(access.read) => {
            if access.read {
                Resume::load(access.rt, 0, Cause::RazWi(class))
            } else {
                Resume::advance(Cause::RazWi(class))
            }
        }
        _ => Resume::undefined(Cause::UnknownRegister(access.encoding)),
    }
}

#[cfg(test)]
mod tests;
