//! The virtual GICv3's distributor and redistributor: the registers a guest's irq-gic-v3
//! driver programs over MMIO (GICv3 spec IHI 0069, chapter 12), and the decisions of which
//! interrupt the kernel puts into a list register next.
//!
//! Who owns what (the split of seL4's libvmm and of KVM's vgic):
//!
//! - The kernel owns the virtual CPU interface: `ICH_LR<n>_EL2`, ICH_HCR/VMCR/APR. The guest's
//!   ICC_* registers reach it without exits, except the SGI generation registers, which trap
//!   (HCR_EL2.IMO) and arrive through [`crate::sysreg::action`] as `SendSgi` →
//!   [`Vgic::send_sgi`].
//!   The kernel offers `inject(intid, priority, level)`, which can fail when no list register is
//!   free, and reports the EOI of an injection with `level` as a `VgicMaintenance` exit.
//! - The guest's virtual timer (PPI 27) is injected by the kernel itself (KVM's in-kernel arch
//!   timer): the vmm mirrors [`Vgic::vtimer`] into `set_vtimer` whenever a write reports
//!   [`Outcome::vtimer_changed`], and INTID 27 never goes through [`Vgic::next_injections`];
//!   nor does INTID 25, the kernel's maintenance interrupt ([`MAINTENANCE_INTID`]).
//! - This model: the register state and the decisions, with no IPC.
//!
//! What the vmm does with it: an MMIO exit in [`DISTRIBUTOR`] or [`REDISTRIBUTOR`] →
//! [`Vgic::read`] / [`Vgic::write`] (`None`: a bus error); a device line → [`Vgic::set_line`];
//! a maintenance exit → [`Vgic::completed`]; then, after anything that can change what is due,
//! [`Vgic::next_injections`] → `inject` each, and [`Vgic::injection_failed`] for each the kernel
//! had no list register for (it is offered again next time). SYSTEM_RESET: [`Vgic::reset`]
//! (device lines read low again until their devices report them). A restarted vmm:
//! [`Vgic::restore`] from its state page, then [`Vgic::reconcile`] with the kernel's list
//! registers (`saved.rs`).
//!
//! The machine: one VCPU (MPIDR affinity 0), 256 INTIDs (SGIs 0..15, PPIs 16..31, SPIs
//! 32..255), no LPIs and no ITS, a single Security state (GICD_CTLR.DS = 1) and affinity
//! routing always on (ARE RAO/WI, as KVM). Simplifications, each safe for Linux 6.1's driver:
//!
//! - **In flight.** Once handed to the kernel, an interrupt's real pending/active state is in a
//!   list register the vmm cannot read. The model shows it as pending in ISPENDR until its EOI
//!   maintenance exit (level-sensitive) or, for an edge-triggered one injected without
//!   maintenance, until the next injection decision; it is not offered again meanwhile. (An
//!   edge offered again while the first is still in a list register is safe: the kernel makes
//!   the list register holding the INTID pending again instead of taking a second.) It is
//!   not shown in ISACTIVER: Linux's synchronize_irq polls that bit (__synchronize_hardirq)
//!   and must not wait on an interrupt that is only pending in a list register.
//! - **No retraction.** ICENABLER, ICPENDR and ICACTIVER change the model only: what already
//!   sits in a list register is still delivered (Linux treats it as spurious) and still ends with
//!   its maintenance exit. Active state set with ISACTIVER only keeps an interrupt from being
//!   offered; a guest does not see it in the CPU interface.
//! - **Group 1 only.** The kernel's list registers carry Group 1 (vIRQ) interrupts, so a Group 0
//!   interrupt is never offered (Linux puts every interrupt in Group 1). Interrupts reset to Group
//!   1 (the spec's reset value is UNKNOWN; KVM's vgic does the same for GICv3 guests).
//! - Priorities keep all eight bits; the list register takes what the hardware implements.

mod distributor;
mod injection;
mod irqs;
mod redistributor;
mod saved;
mod sgi;

use crate::layout::Window;
use crate::syndrome::mask;
use irqs::Irqs;

pub use distributor::{IIDR, PIDR2, TYPER as GICD_TYPER};
pub use redistributor::TYPER as GICR_TYPER;
pub use saved::SAVED_BYTES;
pub use sgi::SgiRequest;

/// The distributor's 64 KiB (QEMU `virt`'s VIRT_GIC_DIST, in the device tree Linux reads).
pub const DISTRIBUTOR: Window = crate::layout::VGIC_DISTRIBUTOR;
/// The redistributor's RD frame and SGI frame (QEMU `virt`'s VIRT_GIC_REDIST).
pub const REDISTRIBUTOR: Window = crate::layout::VGIC_REDISTRIBUTOR;
/// INTIDs implemented: 0..255.
pub const INTIDS: usize = 256;
/// The guest's virtual timer, PPI 11 (the arch timer's binding, QEMU `virt`'s ARCH_TIMER_VIRT_IRQ).
pub const VTIMER_INTID: u16 = 27;
/// The GIC maintenance interrupt, PPI 9: the kernel's own, which `VcpuInjectIrq` refuses, so the
/// model never offers it whatever the guest pends and enables (the hostile guest found each GIC
/// write offering it again, one refused kernel call each).
pub const MAINTENANCE_INTID: u16 = 25;

/// One of the two MMIO windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum GicWindow {
    Distributor,
    Redistributor,
}

impl GicWindow {
    /// The window holding all of `[ipa, ipa + width)`, and the offset of `ipa` in it.
    pub const fn of(ipa: u64, width: u8) -> Option<(Self, u64)> {
        if DISTRIBUTOR.contains(ipa, width as u64) {
            Some((Self::Distributor, ipa - DISTRIBUTOR.base))
        } else if REDISTRIBUTOR.contains(ipa, width as u64) {
            Some((Self::Redistributor, ipa - REDISTRIBUTOR.base))
        } else {
            None
        }
    }
}

/// An interrupt to hand to the kernel (`inject`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Injection {
    pub intid: u16,
    pub priority: u8,
    /// Level-sensitive: ask for an EOI maintenance exit (ICH_LR.EOI), answered with
    /// [`Vgic::completed`].
    pub level: bool,
}

/// What a register write changed that the caller must pass on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[must_use]
pub struct Outcome {
    /// [`Vgic::vtimer`] differs from before the write: call `set_vtimer` with it.
    pub vtimer_changed: bool,
}

/// Why a call from the vmm's side was refused (nothing changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum VgicError {
    /// `set_line` of an INTID that is not one of this GIC's SPIs (32..255).
    NotAnSpi,
    /// An INTID this GIC does not implement (256 and up).
    OutOfRange,
    /// `injection_failed` / `completed` of an INTID the model had not handed out.
    NotInFlight,
}

/// A 64-bit register accessed whole or by one 32-bit half (IHI 0069 12.1: 64-bit registers
/// also take 32-bit accesses to either half).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Half {
    Full,
    Low,
    High,
}

impl Half {
    /// From the byte offset inside the register and the width.
    const fn decode(byte: u64, width: u8) -> Option<Self> {
        match (byte, width) {
            (0, 8) => Some(Self::Full),
            (0, 4) => Some(Self::Low),
            (4, 4) => Some(Self::High),
            _ => None,
        }
    }

    const fn read(self, register: u64) -> u64 {
        match self {
            Self::Full => register,
            Self::Low => register & 0xFFFF_FFFF,
            Self::High => register >> 32,
        }
    }

    const fn merge(self, old: u64, value: u64) -> u64 {
        match self {
            Self::Full => value,
            Self::Low => (old & !0xFFFF_FFFF) | (value & 0xFFFF_FFFF),
            Self::High => (old & 0xFFFF_FFFF) | (value << 32),
        }
    }
}

/// The distributor and redistributor of a one-VCPU VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vgic {
    /// GICD_CTLR's stored bits (EnableGrp0, EnableGrp1).
    ctlr: u32,
    /// GICR_WAKER.ProcessorSleep.
    processor_sleep: bool,
    irqs: Irqs,
}

impl Default for Vgic {
    fn default() -> Self {
        Self::new()
    }
}

impl Vgic {
    /// The state after reset: distributor disabled, every interrupt disabled, inactive, not
    /// pending, Group 1, priority 0, PPIs and SPIs level-sensitive, the redistributor asleep
    /// (GICR_WAKER.ProcessorSleep = 1, its reset value).
    pub const fn new() -> Self {
        Self {
            ctlr: 0,
            processor_sleep: true,
            irqs: Irqs::new(),
        }
    }

    /// SYSTEM_RESET of the VM.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// A guest read of `width` bytes at `offset` in `window`; `None` (a bus error) when it does
    /// not decode. Reads have no side effects.
    pub fn read(&self, window: GicWindow, offset: u64, width: u8) -> Option<u64> {
        match window {
            GicWindow::Distributor => self.read_distributor(offset, width),
            GicWindow::Redistributor => self.read_redistributor(offset, width),
        }
    }

    /// A guest write of the low `width` bytes of `value` at `offset` in `window`; `None` (a
    /// bus error, nothing changed) when it does not decode.
    pub fn write(
        &mut self,
        window: GicWindow,
        offset: u64,
        width: u8,
        value: u64,
    ) -> Option<Outcome> {
        let vtimer = self.vtimer();
        let value = mask(value, width);
        match window {
            GicWindow::Distributor => self.write_distributor(offset, width, value)?,
            GicWindow::Redistributor => self.write_redistributor(offset, width, value)?,
        }
        Some(Outcome {
            vtimer_changed: self.vtimer() != vtimer,
        })
    }

    /// The guest's virtual timer as the kernel must inject it: whether it can be delivered
    /// (enabled in GICR_ISENABLER0, Group 1, Group 1 enabled in GICD_CTLR) and its priority.
    pub fn vtimer(&self) -> (bool, u8) {
        let intid = usize::from(VTIMER_INTID);
        (
            self.irqs.enabled.get(intid) && self.group_enabled(intid),
            self.irqs.priority[intid],
        )
    }

    /// Whether `intid` is Group 1 with Group 1 enabled in GICD_CTLR (see "Group 1 only").
    fn group_enabled(&self, intid: usize) -> bool {
        self.irqs.group1.get(intid) && self.ctlr & distributor::CTLR_ENABLE_GRP1 != 0
    }

    /// An emulated device drives SPI `intid`'s line: level-sensitive, the interrupt is pending
    /// while it is high; edge-triggered, a rising edge latches it pending.
    pub fn set_line(&mut self, intid: u32, high: bool) -> Result<(), VgicError> {
        let intid = usize::try_from(intid).map_err(|_| VgicError::NotAnSpi)?;
        if !(32..INTIDS).contains(&intid) {
            return Err(VgicError::NotAnSpi);
        }
        if high && !self.irqs.line.get(intid) && self.irqs.edge.get(intid) {
            self.irqs.latched.set(intid, true);
        }
        self.irqs.line.set(intid, high);
        Ok(())
    }

    /// A trapped write of `value` to ICC_SGI1R_EL1: latches the SGI pending when it targets our
    /// one PE, whatever its group (KVM's vgic_v3_dispatch_sgi with allow_group1). Returns whether
    /// it did.
    pub fn send_sgi(&mut self, value: u64) -> bool {
        let request = SgiRequest::decode(value);
        if request.targets_affinity_zero() {
            self.irqs.latched.set(usize::from(request.intid), true);
        }
        request.targets_affinity_zero()
    }
}

#[cfg(test)]
mod tests;
