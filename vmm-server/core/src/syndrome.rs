//! Decoding ESR_EL2 for the exits the vmm handles (ARM ARM D17.2.37 "ESR_EL2", and the ISS
//! encodings for an exception from a Data Abort, an Instruction Abort, HVC/SMC and WFx), and
//! shaping the value of an emulated load.
//!
//! Pure functions of the syndrome words: no exit is ever trusted beyond what its bits say, and
//! nothing here panics on any input. An access without a valid instruction syndrome (ISV = 0:
//! load/store pair, writeback, SIMD, exclusive...) cannot be emulated from the syndrome alone;
//! like KVM (`io_mem_abort` without ISV) we refuse it, and the caller injects an abort.

/// Exception classes (ESR_EL2.EC, bits [31:26]) a guest exit can carry.
pub mod ec {
    /// WFI or WFE trapped (HCR_EL2.TWI / TWE).
    pub const WFX: u8 = 0x01;
    /// HVC from AArch64.
    pub const HVC64: u8 = 0x16;
    /// SMC from AArch64 (trapped by HCR_EL2.TSC; the PC is still at the `smc`).
    pub const SMC64: u8 = 0x17;
    /// MSR/MRS/system instruction trapped.
    pub const SYSREG: u8 = 0x18;
    /// Instruction Abort from a lower Exception level.
    pub const INSTRUCTION_ABORT_LOWER: u8 = 0x20;
    /// Data Abort from a lower Exception level.
    pub const DATA_ABORT_LOWER: u8 = 0x24;
}

// ISS bits of a Data Abort (ARM ARM D17.2.37, "ISS encoding for an exception from a Data Abort").
const ISV: u64 = 1 << 24;
const SAS_SHIFT: u64 = 22;
const SSE: u64 = 1 << 21;
const SRT_SHIFT: u64 = 16;
const SF: u64 = 1 << 15;
const FNV: u64 = 1 << 10;
const EA: u64 = 1 << 9;
const CM: u64 = 1 << 8;
const S1PTW: u64 = 1 << 7;
const WNR: u64 = 1 << 6;
const FSC_MASK: u64 = 0x3F;

/// The exception class of `esr`.
pub const fn exception_class(esr: u64) -> u8 {
    ((esr >> 26) & 0x3F) as u8
}

/// The ISS of `esr` (bits [24:0]).
pub const fn iss(esr: u64) -> u32 {
    (esr & 0x01FF_FFFF) as u32
}

/// The class of a data or instruction fault status code (DFSC/IFSC, ISS bits [5:0]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FaultStatus {
    /// `0b0000LL`: the IPA is beyond what the stage-2 tables cover.
    AddressSize { level: u8 },
    /// `0b0001LL`: no mapping at `level`.
    Translation { level: u8 },
    /// `0b0010LL`: the access flag is clear.
    AccessFlag { level: u8 },
    /// `0b0011LL`: mapped without the right (dirty logging write-protects).
    Permission { level: u8 },
    /// Anything else (external abort, TLB conflict, level -1 faults...): the raw code.
    Other(u8),
}

impl FaultStatus {
    /// Decodes the low six bits of `esr`.
    pub const fn decode(esr: u64) -> Self {
        let fsc = (esr & FSC_MASK) as u8;
        let level = fsc & 0b11;
        match fsc >> 2 {
            0b0000 => Self::AddressSize { level },
            0b0001 => Self::Translation { level },
            0b0010 => Self::AccessFlag { level },
            0b0011 => Self::Permission { level },
            _ => Self::Other(fsc),
        }
    }

    /// Whether the mmu-server may resolve it by (re)mapping: translation, access flag and
    /// permission faults (KVM's `kvm_handle_guest_abort` takes exactly these three).
    pub const fn is_resolvable(self) -> bool {
        matches!(
            self,
            Self::Translation { .. } | Self::AccessFlag { .. } | Self::Permission { .. }
        )
    }
}

/// The parts of a Data or Instruction Abort syndrome every stage-2 fault has, ISV or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Abort {
    /// An instruction fetch (EC 0x20) rather than a data access (EC 0x24).
    pub instruction: bool,
    /// DFSC / IFSC.
    pub status: FaultStatus,
    /// WnR: the access was a write (data aborts only; cache maintenance reports 1).
    pub wnr: bool,
    /// S1PTW: the fault happened on the guest's own stage-1 table walk.
    pub s1ptw: bool,
    /// CM: a cache maintenance or address translation instruction faulted.
    pub cache_maintenance: bool,
    /// EA: an external abort.
    pub external: bool,
    /// FnV: FAR_EL2 is not valid.
    pub far_not_valid: bool,
}

impl Abort {
    /// Decodes an abort syndrome; `None` when `esr` is not a lower-EL Data or Instruction Abort.
    pub const fn decode(esr: u64) -> Option<Self> {
        let instruction = match exception_class(esr) {
            ec::DATA_ABORT_LOWER => false,
            ec::INSTRUCTION_ABORT_LOWER => true,
            _ => return None,
        };
        Some(Self {
            instruction,
            status: FaultStatus::decode(esr),
            wnr: !instruction && esr & WNR != 0,
            s1ptw: esr & S1PTW != 0,
            cache_maintenance: !instruction && esr & CM != 0,
            external: esr & EA != 0,
            far_not_valid: esr & FNV != 0,
        })
    }

    /// Whether resolving the fault needs write permission. KVM's `kvm_is_write_fault`: a fault
    /// on the stage-1 walk is a write only when it is a permission fault (the walker updating
    /// an access or dirty flag); an instruction fetch never is; else WnR.
    pub const fn needs_write(&self) -> bool {
        if self.s1ptw {
            return matches!(self.status, FaultStatus::Permission { .. });
        }
        !self.instruction && self.wnr
    }
}

/// Why an abort cannot be emulated as one MMIO access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SyndromeError {
    /// The syndrome is not a lower-EL Data Abort (an instruction fetch, or not an abort).
    NotDataAbort,
    /// ISV = 0: the syndrome does not describe the access (KVM: "cannot emulate").
    NoSyndrome,
}

/// One guest load or store to an emulated device, from a Data Abort with ISV = 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MmioAccess {
    /// The faulting IPA.
    pub ipa: u64,
    /// Access size in bytes: 1, 2, 4 or 8 (SAS).
    pub width: u8,
    /// A store (WnR).
    pub write: bool,
    /// The transfer register (SRT); 31 is xzr (a load into it is discarded, a store of it
    /// writes 0).
    pub register: u8,
    /// SSE: a load sign-extends.
    pub sign_extend: bool,
    /// SF: the register is 64 bits wide (X), else 32 (W).
    pub sixty_four: bool,
    /// For a store: the value, already masked to `width`. For a load: 0.
    pub value: u64,
}

/// Decodes the data access of a Data Abort syndrome. `write_value` is what the kernel read from
/// the transfer register of a store (`VmExit` word 2 of a stage-2 abort).
pub const fn decode_mmio(
    esr: u64,
    ipa: u64,
    write_value: u64,
) -> Result<MmioAccess, SyndromeError> {
    if exception_class(esr) != ec::DATA_ABORT_LOWER {
        return Err(SyndromeError::NotDataAbort);
    }
    if esr & ISV == 0 {
        return Err(SyndromeError::NoSyndrome);
    }
    let width = 1u8 << ((esr >> SAS_SHIFT) & 0b11);
    let write = esr & WNR != 0;
    Ok(MmioAccess {
        ipa,
        width,
        write,
        register: ((esr >> SRT_SHIFT) & 0x1F) as u8,
        sign_extend: esr & SSE != 0,
        sixty_four: esr & SF != 0,
        value: if write { mask(write_value, width) } else { 0 },
    })
}

/// The low `width` bytes of `value` (`width` ≥ 8 keeps all of it).
pub const fn mask(value: u64, width: u8) -> u64 {
    if width >= 8 {
        value
    } else {
        value & ((1u64 << (width as u32 * 8)) - 1)
    }
}

impl MmioAccess {
    /// The register value an emulated load leaves, from the device's (zero-extended) answer:
    /// masked to the access width, sign-extended when SSE is set, and limited to 32 bits for a
    /// W register (a write to Wn clears the upper half of Xn). KVM's `vcpu_data_host_to_guest`.
    pub const fn load_value(&self, raw: u64) -> u64 {
        let value = mask(raw, self.width);
        let value = if self.sign_extend && self.width < 8 {
            let shift = 64 - self.width as u32 * 8;
            (((value << shift) as i64) >> shift) as u64
        } else {
            value
        };
        if self.sixty_four {
            value
        } else {
            value & 0xFFFF_FFFF
        }
    }

    /// Whether a load's result is discarded (the transfer register is xzr).
    pub const fn discards_result(&self) -> bool {
        self.register >= 31
    }
}

#[cfg(test)]
mod tests;
