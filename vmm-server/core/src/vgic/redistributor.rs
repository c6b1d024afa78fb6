//! The one redistributor's 128 KiB: the RD frame and, 64 KiB on, the SGI frame (GICv3 spec
//! IHI 0069, 12.10 "The GIC Redistributor register map" and 12.11 its descriptions). No LPIs and
//! no vLPIs, so two frames, which is what GICR_TYPER.VLPIS = 0 tells Linux's gic_iterate_rdists
//! (it steps 128 KiB per redistributor and stops at the one with Last set).
//!
//! ```text
//! offset            register            width   behaviour
//! RD frame
//! 0x0000            GICR_CTLR           32      RAZ/WI (EnableLPIs RES0, RWP 0)
//! 0x0004            GICR_IIDR           32      RO 0
//! 0x0008            GICR_TYPER          64, 32  RO: Last = 1, Affinity 0, Processor_Number 0
//! 0x0010            GICR_STATUSR        32      RAZ/WI
//! 0x0014            GICR_WAKER          32      ProcessorSleep stored, ChildrenAsleep = it
//! 0x0070 / 0x0078   GICR_PROPBASER / PENDBASER  64, 32  RAZ/WI (no LPIs)
//! 0xFFD0..0xFFFC    ID registers        32      RO: PIDR2 = 0x30, others 0
//! SGI frame (+0x1_0000)
//! 0x0080            GICR_IGROUPR0       32      the bank, INTIDs 0..31
//! 0x0100..0x03FC    GICR_IS/ICENABLER0, IS/ICPENDR0, IS/ICACTIVER0
//! 0x0400..0x041C    GICR_IPRIORITYR0..7 8, 32
//! 0x0C00 / 0x0C04   GICR_ICFGR0 (SGIs: edge, RO) / GICR_ICFGR1 (PPIs: RW)
//! 0x0D00 / 0x0E00   GICR_IGRPMODR0 / GICR_NSACR  32  RAZ/WI (DS = 1)
//! ```
//!
//! Everything else is a bus error, as in the distributor.

use super::distributor::{IIDR, id_register};
use super::irqs::{self, BankAccess};
use super::{Half, Vgic};

/// Where the SGI frame starts.
pub(super) const SGI_FRAME: u64 = 0x1_0000;
/// GICR_TYPER: Last (bit 4) = 1; Affinity_Value (bits 63:32) = 0 and Processor_Number
/// (bits 23:8) = 0, our VCPU's MPIDR_EL1 affinity (what gic_populate_rdist compares); PLPIS, VLPIS,
/// DirectLPI, DPGS and PPInum (16 PPIs) all 0.
pub const TYPER: u64 = 1 << 4;
/// GICR_WAKER.ProcessorSleep.
pub(super) const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
/// GICR_WAKER.ChildrenAsleep.
pub(super) const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;

/// A decoded redistributor access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Register {
    RazWi,
    ReadOnly(u32),
    Typer(Half),
    Waker,
    Bank(BankAccess),
}

/// Decodes an access at `offset` from the redistributor's base.
pub(super) fn decode(offset: u64, width: u8) -> Option<Register> {
    let word = width == 4 && offset.is_multiple_of(4);
    let register = match offset {
        0x0000 | 0x0010 if word => Register::RazWi,
        0x0004 if word => Register::ReadOnly(IIDR),
        0x0008..0x0010 => Register::Typer(Half::decode(offset % 8, width)?),
        0x0014 if word => Register::Waker,
        // Both are 64-bit registers; checking the shape is all there is to them.
        0x0070..0x0080 => {
            Half::decode(offset % 8, width)?;
            Register::RazWi
        }
        0xFFD0..0x1_0000 if word => Register::ReadOnly(id_register(offset)),
        SGI_FRAME.. => Register::Bank(irqs::decode(offset - SGI_FRAME, width, true)?),
        _ => return None,
    };
    Some(register)
}

impl Vgic {
    /// GICR_WAKER: the handshake of Linux's gic_enable_redist, which clears ProcessorSleep and
    /// polls until ChildrenAsleep follows (at once here: there is nothing to wake).
    fn waker(&self) -> u32 {
        if self.processor_sleep {
            WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP
        } else {
            0
        }
    }

    /// A read at `offset` from the redistributor's base; `None` if it does not decode.
    pub(super) fn read_redistributor(&self, offset: u64, width: u8) -> Option<u64> {
        Some(match decode(offset, width)? {
            Register::RazWi => 0,
            Register::ReadOnly(value) => u64::from(value),
            Register::Typer(half) => half.read(TYPER),
            Register::Waker => u64::from(self.waker()),
            Register::Bank(access) => self.irqs.read(access, width),
        })
    }

    /// A write at `offset` from the redistributor's base; `None` if it does not decode.
    pub(super) fn write_redistributor(&mut self, offset: u64, width: u8, value: u64) -> Option<()> {
        match decode(offset, width)? {
            Register::RazWi | Register::ReadOnly(_) | Register::Typer(_) => {}
            Register::Waker => self.processor_sleep = value as u32 & WAKER_PROCESSOR_SLEEP != 0,
            Register::Bank(access) => self.irqs.write(access, width, value),
        }
        Some(())
    }
}
