//! The virtual CPU interface of one VCPU as the kernel keeps it: its GICv3 list registers
//! (ICH_LR<n>_EL2), the control and state registers saved with it, and the kernel's own
//! virtual timer interrupt. Pure: the arch layer copies the hardware registers in and out
//! (lazily, with the rest of the VCPU's EL1 state) and carries out what is decided here.
//!
//! The split follows seL4's VCPU object: the kernel owns the list registers and offers
//! `VcpuInjectIrq`; the vmm emulates the distributor and redistributor and decides what to
//! inject. The guest's virtual timer (PPI 27) is injected by the kernel itself, as KVM's
//! in-kernel arch timer is, so a timer tick costs no round trip to the vmm; the vmm mirrors
//! the guest's enable and priority for it (`VcpuSetVtimer`).

use abi::KernelError;

/// List registers the kernel uses (QEMU's GICv3 and the Cortex-A72 have 4; ICH_VTR_EL2.ListRegs
/// + 1 may say more, and the kernel then uses the first four).
pub const MAX_LIST_REGISTERS: usize = 4;
/// The guest's virtual timer interrupt (PPI 11), injected by the kernel.
pub const VTIMER_INTID: u32 = 27;
/// The GICv3 maintenance interrupt (PPI 9), the kernel's.
pub const MAINTENANCE_INTID: u32 = 25;
/// The first special INTID (1020..1023 are never interrupts, GICv3 §2.2.1).
pub const FIRST_SPECIAL_INTID: u32 = 1020;

/// ICH_LR<n>_EL2 fields (GICv3, IHI 0069, §12.5.x "ICH_LR<n>_EL2").
pub mod lr {
    /// State, bits [63:62]: pending.
    pub const PENDING: u64 = 1 << 62;
    /// State, bits [63:62]: active.
    pub const ACTIVE: u64 = 1 << 63;
    /// Both state bits.
    pub const STATE: u64 = PENDING | ACTIVE;
    /// HW, bit 61: a physical interrupt is deactivated with it (never set here).
    pub const HW: u64 = 1 << 61;
    /// Group, bit 60: Group 1.
    pub const GROUP1: u64 = 1 << 60;
    /// Priority, bits [55:48].
    pub const PRIORITY_SHIFT: u32 = 48;
    /// EOI, bit 41 (HW = 0): a maintenance interrupt when the guest deactivates it.
    pub const EOI: u64 = 1 << 41;
    /// vINTID, bits [31:0].
    pub const INTID_MASK: u64 = 0xFFFF_FFFF;
}

/// ICH_HCR_EL2 bits (GICv3 §12.5.x "ICH_HCR_EL2").
pub mod hcr {
    /// En: the virtual CPU interface is on.
    pub const EN: u64 = 1 << 0;
    /// UIE: a maintenance interrupt while at most one list register holds an interrupt.
    pub const UIE: u64 = 1 << 1;
}

/// ICH_MISR_EL2 bits (GICv3 §12.5.x "ICH_MISR_EL2").
pub mod misr {
    /// EOI: some list register's interrupt was deactivated with its EOI bit set.
    pub const EOI: u64 = 1 << 0;
    /// U: underflow (UIE set and at most one list register valid).
    pub const UNDERFLOW: u64 = 1 << 1;
}

/// A VCPU's virtual CPU interface while it is not loaded (and the kernel's view of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct VgicCpu {
    /// ICH_LR0..3_EL2.
    pub lrs: [u64; MAX_LIST_REGISTERS],
    /// ICH_HCR_EL2.
    pub hcr: u64,
    /// ICH_VMCR_EL2: the guest's PMR, BPR and group enables as its ICC_* writes left them.
    pub vmcr: u64,
    /// ICH_AP0R0_EL2, ICH_AP1R0_EL2: active priorities.
    pub ap0r0: u64,
    pub ap1r0: u64,
    /// The guest enabled its virtual timer's interrupt at its redistributor (vmm-mirrored).
    pub vtimer_enabled: bool,
    /// And gave it this priority.
    pub vtimer_priority: u8,
    /// How many list registers the hardware has, up to [`MAX_LIST_REGISTERS`].
    pub count: u8,
}

/// Where an injection goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LrWrite {
    /// The list register.
    pub index: usize,
    /// Its new value.
    pub value: u64,
}

impl VgicCpu {
    /// Out of reset with `count` list registers: the virtual CPU interface on, nothing
    /// pending, every virtual interrupt masked by the guest's PMR (0) until it sets one.
    pub const fn new(count: u8) -> Self {
        let count = if count as usize > MAX_LIST_REGISTERS {
            MAX_LIST_REGISTERS as u8
        } else {
            count
        };
        Self {
            lrs: [0; MAX_LIST_REGISTERS],
            hcr: hcr::EN,
            vmcr: 0,
            ap0r0: 0,
            ap1r0: 0,
            vtimer_enabled: false,
            vtimer_priority: 0,
            count,
        }
    }

    /// The list registers in use.
    pub fn used(&self) -> &[u64] {
        &self.lrs[..usize::from(self.count)]
    }

    /// Decides where interrupt `intid` becomes pending: the list register already holding it
    /// (pending again if it was only active; unchanged if it is pending), else the first free
    /// one. Changes nothing. A list register is free when its state is invalid and it does not
    /// wait for an EOI maintenance (ICH_ELRSR_EL2's rule).
    pub fn plan_inject(
        &self,
        intid: u32,
        priority: u8,
        level: bool,
    ) -> Result<LrWrite, KernelError> {
        let mut free = None;
        for (index, &value) in self.used().iter().enumerate() {
            if value & lr::STATE != 0 && value & lr::INTID_MASK == u64::from(intid) {
                return Ok(LrWrite {
                    index,
                    value: value | lr::PENDING,
                });
            }
            if free.is_none() && is_free(value) {
                free = Some(index);
            }
        }
        let index = free.ok_or(KernelError::NoFreeListRegister)?;
        Ok(LrWrite {
            index,
            value: lr_value(intid, priority, level),
        })
    }

    /// The INTIDs below 256 its list registers hold, one bit each (bit n % 64 of word n / 64):
    /// every list register that is not free, so an interrupt completed but not yet reported
    /// by its maintenance exit counts as held (`VcpuListRegisters`).
    pub fn held_intids(&self) -> [u64; 4] {
        let mut held = [0u64; 4];
        for &value in self.used() {
            let intid = value & lr::INTID_MASK;
            if !is_free(value)
                && let Some(word) = held.get_mut((intid / 64) as usize)
            {
                *word |= 1 << (intid % 64);
            }
        }
        held
    }

    /// Whether any list register holds a pending interrupt (what wakes a VCPU from WFI, KVM's
    /// `kvm_vgic_vcpu_pending_irq`).
    pub fn any_pending(&self) -> bool {
        self.used().iter().any(|&value| value & lr::PENDING != 0)
    }

    /// Whether the virtual timer's interrupt sits in a list register (pending, active, or
    /// completed and waiting for its maintenance): its physical line stays masked meanwhile.
    pub fn vtimer_in_flight(&self) -> bool {
        self.used().iter().any(|&value| {
            value & lr::INTID_MASK == u64::from(VTIMER_INTID)
                && (value & lr::STATE != 0 || value & lr::EOI != 0)
        })
    }

    /// Whether the physical virtual-timer line should be unmasked for this VCPU: the guest
    /// enabled it and the previous expiry is not still with the guest.
    pub fn vtimer_armed(&self) -> bool {
        self.vtimer_enabled && !self.vtimer_in_flight()
    }
}

/// A list register value: `intid` pending, Group 1, `priority`, and for a level-sensitive
/// interrupt the EOI bit, so its completion comes back as a maintenance interrupt.
pub const fn lr_value(intid: u32, priority: u8, level: bool) -> u64 {
    lr::PENDING
        | lr::GROUP1
        | ((priority as u64) << lr::PRIORITY_SHIFT)
        | if level { lr::EOI } else { 0 }
        | intid as u64
}

/// Whether a list register value is free for a new interrupt.
pub const fn is_free(value: u64) -> bool {
    value & lr::STATE == 0 && (value & lr::HW != 0 || value & lr::EOI == 0)
}

/// Whether a list register value is a completed interrupt waiting for its maintenance (an
/// ICH_EISR_EL2 bit).
pub const fn awaits_maintenance(value: u64) -> bool {
    value & lr::STATE == 0 && value & lr::HW == 0 && value & lr::EOI != 0
}

/// Checks the arguments of `VcpuInjectIrq` (MR0 INTID, MR1 priority, MR2 flags): SGIs, PPIs
/// and SPIs up to the special range, except the two the kernel owns (its maintenance interrupt
/// and the virtual timer, which has `VcpuSetVtimer`); flags bit 0 only.
pub fn check_inject(args: [u64; 4]) -> Result<(u32, u8, bool), KernelError> {
    let intid = args[0];
    if intid >= u64::from(FIRST_SPECIAL_INTID) {
        return Err(KernelError::RangeError {
            index: 0,
            min: 0,
            max: u64::from(FIRST_SPECIAL_INTID - 1),
        });
    }
    if intid == u64::from(VTIMER_INTID) || intid == u64::from(MAINTENANCE_INTID) {
        return Err(KernelError::InvalidArgument { index: 0 });
    }
    let priority = u8::try_from(args[1]).map_err(|_| KernelError::RangeError {
        index: 1,
        min: 0,
        max: 255,
    })?;
    if args[2] & !1 != 0 {
        return Err(KernelError::InvalidArgument { index: 2 });
    }
    Ok((intid as u32, priority, args[2] & 1 != 0))
}

/// Checks the arguments of `VcpuSetVtimer` (MR0 0 or 1, MR1 priority).
pub fn check_vtimer(args: [u64; 4]) -> Result<(bool, u8), KernelError> {
    let enabled = match args[0] {
        0 => false,
        1 => true,
        _ => {
            return Err(KernelError::RangeError {
                index: 0,
                min: 0,
                max: 1,
            });
        }
    };
    let priority = u8::try_from(args[1]).map_err(|_| KernelError::RangeError {
        index: 1,
        min: 0,
        max: 255,
    })?;
    Ok((enabled, priority))
}

#[cfg(test)]
mod tests;
