//! The distributor's 64 KiB (GICv3 spec IHI 0069, 12.8 "The GIC Distributor register map" and
//! 12.9 "The GIC Distributor register descriptions"), with affinity routing always on and a
//! single Security state:
//!
//! ```text
//! offset          register               width  behaviour
//! 0x0000          GICD_CTLR              32     EnableGrp0/1 stored; ARE, DS RAO/WI; RWP 0
//! 0x0004          GICD_TYPER             32     RO (TYPER below)
//! 0x0008          GICD_IIDR              32     RO 0
//! 0x000C          GICD_TYPER2            32     RO 0 (no vPEs, no nASSGI)
//! 0x0010          GICD_STATUSR           32     RAZ/WI (no errors to report)
//! 0x0080..0x00FC  GICD_IGROUPR<n>        32     n = 0 RAZ/WI (ARE), else the bank
//! 0x0100..0x03FC  GICD_IS/ICENABLER, IS/ICPENDR, IS/ICACTIVER<n>: as IGROUPR
//! 0x0400..0x07F8  GICD_IPRIORITYR<n>     8, 32  INTIDs < 32 RAZ/WI (ARE)
//! 0x0800..0x0BF8  GICD_ITARGETSR<n>      8, 32  RAZ/WI (ARE)
//! 0x0C00..0x0CFC  GICD_ICFGR<n>          32     n = 0, 1 RAZ/WI (ARE)
//! 0x0D00..0x0D7C  GICD_IGRPMODR<n>       32     RAZ/WI (DS = 1)
//! 0x0E00..0x0EFC  GICD_NSACR<n>          32     RAZ/WI (DS = 1)
//! 0x0F00          GICD_SGIR              32     WO, WI (ARE)
//! 0x0F10..0x0F2C  GICD_C/SPENDSGIR<n>    8, 32  RAZ/WI (ARE)
//! 0x6100..0x7FD8  GICD_IROUTER<n>        64, 32 Aff2.Aff1.Aff0 stored; Aff3, IRM RAZ/WI
//! 0xFFD0..0xFFFC  ID registers           32     RO: PIDR2 = 0x30 (ArchRev 3), others 0
//! ```
//!
//! Registers of INTIDs 256..1019 read as zero and ignore writes (IHI 0069: the fields of
//! unimplemented interrupts are RAZ/WI). Every other offset, and any other width or a
//! misaligned access, does not decode: a bus error. KVM's vgic-mmio-v3.c reads such holes as zero instead; Linux's
//! irq-gic-v3 driver touches none of them.

use super::irqs::{self, BankAccess};
use super::{Half, INTIDS, Vgic};

/// GICD_CTLR.EnableGrp0 (the DS = 1 layout of GICD_CTLR).
pub(super) const CTLR_ENABLE_GRP0: u32 = 1 << 0;
/// GICD_CTLR.EnableGrp1.
pub(super) const CTLR_ENABLE_GRP1: u32 = 1 << 1;
/// GICD_CTLR.ARE: affinity routing, RAO/WI as in KVM (vgic_mmio_read_v3_misc).
const CTLR_ARE: u32 = 1 << 4;
/// GICD_CTLR.DS: one Security state, RAO/WI.
const CTLR_DS: u32 = 1 << 6;
/// What the guest can change in GICD_CTLR.
pub(super) const CTLR_WRITABLE: u32 = CTLR_ENABLE_GRP0 | CTLR_ENABLE_GRP1;
/// What always reads as one.
pub(super) const CTLR_FIXED: u32 = CTLR_ARE | CTLR_DS;

/// GICD_TYPER: ITLinesNumber = 7 (INTIDs up to 32 * 8 - 1 = 255), CPUNumber 0,
/// SecurityExtn 0 (DS = 1), no LPIs/MBIs/ESPIs, IDbits = 9 (10-bit INTIDs, as KVM's
/// INTERRUPT_ID_BITS_SPIS), A3V 0 (Aff3 is 0), No1N = 1 (IROUTER.IRM is not supported), RSS 0.
pub const TYPER: u32 = 7 | (9 << 19) | (1 << 25);
/// GICD_IIDR and GICR_IIDR: no implementer claimed (JEP106 0), so none of Linux's GIC
/// quirks (gic_enable_quirks, matched on IIDR) applies.
pub const IIDR: u32 = 0;
/// GICD_PIDR2 and GICR_PIDR2: ArchRev (bits 7:4) = 3 (GICv3), what irq-gic-v3's
/// gic_validate_dist_version and gic_iterate_rdists check.
pub const PIDR2: u32 = 0x30;

/// IROUTER bits stored: Aff2 (bits 23:16), Aff1 (15:8), Aff0 (7:0). Aff3 (bits 39:32) is
/// RAZ/WI with GICD_TYPER.A3V = 0 and IRM (bit 31) with No1N = 1 (`GICD_IROUTER<n>`).
pub(super) const ROUTE_MASK: u64 = 0x00FF_FFFF;

/// A decoded distributor access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Register {
    Ctlr,
    /// TYPER, IIDR, TYPER2 and the ID registers: writes ignored.
    ReadOnly(u32),
    /// STATUSR and the GICv2 compatibility registers disabled by ARE.
    RazWi,
    Bank(BankAccess),
    Router {
        intid: usize,
        half: Half,
    },
}

/// Decodes an access at `offset` from the distributor's base.
pub(super) fn decode(offset: u64, width: u8) -> Option<Register> {
    let word = width == 4 && offset.is_multiple_of(4);
    let byte_or_word = (width == 1 || word) && offset.is_multiple_of(u64::from(width));
    let register = match offset {
        0x0000 if word => Register::Ctlr,
        0x0004 if word => Register::ReadOnly(TYPER),
        0x0008 if word => Register::ReadOnly(IIDR),
        0x000C if word => Register::ReadOnly(0),
        0x0010 if word => Register::RazWi,
        0x0080..0x0800 | 0x0C00..0x0F00 => {
            let access = irqs::decode(offset, width, false)?;
            // With ARE set the distributor's copies of the private INTIDs are RES0 (12.9,
            // e.g. GICD_ISENABLER<n>: "When affinity routing is enabled ... n = 0 is RES0"):
            // they live in the redistributor.
            if access.first_intid < 32 {
                Register::RazWi
            } else {
                Register::Bank(access)
            }
        }
        0x0800..0x0BFC if byte_or_word => Register::RazWi,
        0x0F00 if word => Register::RazWi,
        0x0F10..0x0F30 if byte_or_word => Register::RazWi,
        0x6100..0x7FE0 => {
            let intid = usize::try_from((offset - 0x6000) / 8).ok()?;
            Register::Router {
                intid,
                half: Half::decode(offset % 8, width)?,
            }
        }
        0xFFD0..0x1_0000 if word => Register::ReadOnly(id_register(offset)),
        _ => return None,
    };
    Some(register)
}

impl Vgic {
    /// A read at `offset` from the distributor's base; `None` if it does not decode.
    pub(super) fn read_distributor(&self, offset: u64, width: u8) -> Option<u64> {
        Some(match decode(offset, width)? {
            Register::Ctlr => u64::from(self.ctlr | CTLR_FIXED),
            Register::ReadOnly(value) => u64::from(value),
            Register::RazWi => 0,
            Register::Bank(access) => self.irqs.read(access, width),
            Register::Router { intid, half } => half.read(route_value(&self.irqs.route, intid)),
        })
    }

    /// A write at `offset` from the distributor's base; `None` if it does not decode.
    pub(super) fn write_distributor(&mut self, offset: u64, width: u8, value: u64) -> Option<()> {
        match decode(offset, width)? {
            // RWP stays 0: every change takes effect at once, so Linux's
            // gic_dist_wait_for_rwp returns on its first read.
            Register::Ctlr => self.ctlr = value as u32 & CTLR_WRITABLE,
            Register::ReadOnly(_) | Register::RazWi => {}
            Register::Bank(access) => self.irqs.write(access, width, value),
            Register::Router { intid, half } => {
                write_route(&mut self.irqs.route, intid, half, value);
            }
        }
        Some(())
    }
}

/// The CoreSight-style ID registers at 0xFFD0..0xFFFC of the distributor and of the
/// redistributor's RD frame: only PIDR2 (0xFFE8) says anything.
pub(super) const fn id_register(offset: u64) -> u32 {
    if offset == 0xFFE8 { PIDR2 } else { 0 }
}

/// An SPI's IROUTER value, as a read shows it.
pub(super) fn route_value(route: &[u32; INTIDS], intid: usize) -> u64 {
    route.get(intid).map_or(0, |&aff| u64::from(aff))
}

/// Stores a write of `value` to IROUTER`intid`'s `half`.
pub(super) fn write_route(route: &mut [u32; INTIDS], intid: usize, half: Half, value: u64) {
    if let Some(aff) = route.get_mut(intid) {
        *aff = (half.merge(u64::from(*aff), value) & ROUTE_MASK) as u32;
    }
}
