//! PSCI (Arm DEN 0022, Power State Coordination Interface) as far as one VCPU and no reset
//! need it: the version, SYSTEM_OFF, and NOT_SUPPORTED for the rest.
//!
//! - PSCI_VERSION answers 1.1, the version docs/GUEST-ABI.md promises.
//! - SYSTEM_OFF ends the VM; `x1` carries the verdict (our extension: a test guest's exit
//!   status; other hypervisors ignore it). PSCI functions are SMC32 calls, so only `w1` counts
//!   (Arm DEN 0028 §2.6: the upper halves of the argument registers are ignored).
//! - SYSTEM_RESET restarts the VM from its image (fresh RAM, VCPU out of reset); it used to need the
//!   memory server to refill RAM and the mmu-server to drop the stage-2 tables, which is later
//!   work. GUEST-ABI promises a restart; a guest that calls it today sees the call return.
//! - CPU_ON, PSCI_FEATURES and the rest answer NOT_SUPPORTED: one VCPU, no SMP (docs/VMM.md).

use abi::vm::hypercall::{NOT_SUPPORTED, PSCI_SYSTEM_OFF, PSCI_SYSTEM_RESET, PSCI_VERSION};

/// PSCI 1.1: major 1 in bits [31:16], minor 1 in [15:0].
pub const VERSION_1_1: u64 = 0x0001_0001;

/// What a PSCI call asks of the vmm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PsciAction {
    /// Return `x0` to the guest.
    Return(u64),
    /// End the VM with this verdict.
    PowerOff { verdict: u64 },
    /// Restart the VM from its image (SYSTEM_RESET does not return).
    Reset,
}

/// Whether `function` is in the PSCI ranges: SMC32 `0x8400_0000..=0x8400_001F` and SMC64
/// `0xC400_0000..=0xC400_001F` (Arm DEN 0022 §5.1; SMCCC owner 4, "standard secure service").
pub const fn is_psci(function: u32) -> bool {
    matches!(function & !0x1F, 0x8400_0000 | 0xC400_0000)
}

/// Carries out PSCI call `function` with `x1` as its first argument.
pub const fn call(function: u32, x1: u64) -> PsciAction {
    match function as u64 {
        PSCI_VERSION => PsciAction::Return(VERSION_1_1),
        PSCI_SYSTEM_OFF => PsciAction::PowerOff {
            verdict: x1 & 0xFFFF_FFFF,
        },
        PSCI_SYSTEM_RESET => PsciAction::Reset,
        _ => PsciAction::Return(NOT_SUPPORTED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_off_reset_and_the_rest() {
        assert_eq!(call(0x8400_0000, 0), PsciAction::Return(0x0001_0001));
        assert_eq!(call(0x8400_0008, 3), PsciAction::PowerOff { verdict: 3 });
        assert_eq!(
            call(0x8400_0008, 0xFFFF_FFFF_0000_0000),
            PsciAction::PowerOff { verdict: 0 },
            "SMC32: only w1 is the verdict"
        );
        assert_eq!(call(0x8400_0009, 0), PsciAction::Reset);
        // CPU_ON (SMC64), PSCI_FEATURES, MIGRATE_INFO_TYPE.
        for function in [0xC400_0003, 0x8400_000A, 0x8400_0006] {
            assert_eq!(
                call(function, 0),
                PsciAction::Return(u64::MAX),
                "{function:#x}"
            );
        }
    }

    #[test]
    fn the_psci_ranges() {
        assert!(is_psci(0x8400_0000) && is_psci(0x8400_001F) && is_psci(0xC400_0003));
        assert!(!is_psci(0x8400_0020) && !is_psci(0xC600_0010) && !is_psci(0x8000_0000));
    }
}
