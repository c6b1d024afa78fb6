//! PSCI 1.1 (Arm DEN 0022, Power State Coordination Interface) for a uniprocessor VM: one VCPU
//! whose MPIDR affinity (Aff3..Aff0) is 0. Function ids and return codes are the `smccc`
//! crate's.
//!
//! What is answered, and why (docs/GUEST-ABI.md has the table):
//!
//! - PSCI_VERSION: 1.1. PSCI_FEATURES: SUCCESS for every function below that is implemented,
//!   and for SMCCC_VERSION (Linux's `psci_init_smccc` calls SMCCC_VERSION only when
//!   PSCI_FEATURES says it exists); NOT_SUPPORTED for the rest.
//! - CPU_SUSPEND (both forms): SUCCESS at once, the way KVM's `kvm_psci_vcpu_suspend` treats
//!   every state as a WFI-like standby that keeps the register state. The feature flags are 0:
//!   the original `power_state` format (StateID [15:0], StateType [16], PowerLevel [25:24]) and
//!   platform-coordinated mode only, as KVM reports. The extended format and OS-initiated mode
//!   describe power domains we do not have, and with flags 0 Linux's `psci_has_ext_power_state`
//!   and `psci_has_osi_support` stay false, its best-tested path. A state with a reserved bit
//!   set is INVALID_PARAMETERS. Linux calls CPU_SUSPEND only through cpuidle-psci, with idle
//!   states from the device tree; returning SUCCESS from a powerdown request makes its
//!   `cpu_suspend` report that idle entry as failed, which cpuidle tolerates (under KVM too).
//! - CPU_OFF: the only CPU powering off leaves nothing that could CPU_ON it again, so the VM is
//!   powered off, verdict 0 (what Linux's SYSTEM_OFF passes in `x1`). The call has no failure
//!   for the last core: DENIED is only for a resident Trusted OS, and on success it does not
//!   return. KVM instead stops the VCPU and leaves a VM with no running VCPU to its monitor.
//! - CPU_ON (both forms): target 0 is the caller, ALREADY_ON; any other target names no CPU,
//!   INVALID_PARAMETERS (KVM's `kvm_psci_vcpu_on` gives the same two answers).
//! - AFFINITY_INFO (both forms): target 0 at lowest affinity level 0 is ON; any other target or
//!   level is INVALID_PARAMETERS (Linux asks only level 0, in `psci_cpu_kill`).
//! - MIGRATE_INFO_TYPE: 2, no Trusted OS that needs migrating; so MIGRATE and
//!   MIGRATE_INFO_UP_CPU answer NOT_SUPPORTED (DEN 0022 §5.1.6, §5.1.8: with type 2 there is
//!   nothing to migrate and no UP CPU to name).
//! - SYSTEM_OFF ends the VM; `x1` carries the verdict (our extension: a test guest's exit
//!   status; other hypervisors ignore it). SYSTEM_RESET restarts the VM from its image.
//! - SYSTEM_RESET2, SYSTEM_SUSPEND, MEM_PROTECT*, PSCI_STAT_*, CPU_FREEZE, CPU_DEFAULT_SUSPEND,
//!   NODE_HW_STATE and SET_SUSPEND_MODE: NOT_SUPPORTED (all optional in PSCI 1.1), as is every
//!   unassigned id of the range.
//!
//! SMC32 functions read only the low 32 bits of their arguments (Arm DEN 0028 §2.6);
//! `uint32` parameters of the SMC64 forms (CPU_SUSPEND's `power_state`, AFFINITY_INFO's
//! `lowest_affinity_level`) likewise.

use crate::hypercall::{smc32_narrowed, status};
use smccc::arch::SMCCC_VERSION;
use smccc::psci::error::{ALREADY_ON, INVALID_PARAMETERS, NOT_SUPPORTED, SUCCESS};
use smccc::psci::{
    AffinityState, MigrateType, PSCI_AFFINITY_INFO_32, PSCI_AFFINITY_INFO_64, PSCI_CPU_OFF,
    PSCI_CPU_ON_32, PSCI_CPU_ON_64, PSCI_CPU_SUSPEND_32, PSCI_CPU_SUSPEND_64, PSCI_FEATURES,
    PSCI_MIGRATE_INFO_TYPE, PSCI_SYSTEM_OFF, PSCI_SYSTEM_RESET, PSCI_VERSION,
};

/// PSCI 1.1: major 1 in bits [31:16], minor 1 in [15:0].
pub const VERSION_1_1: u64 = 0x0001_0001;

/// The MPIDR affinity (Aff3 [39:32], Aff2..Aff0 [23:0]) of the VM's only VCPU; PSCI names CPUs
/// by these fields (DEN 0022 §5.1.4, `target_cpu`).
pub const ONLY_CPU_AFFINITY: u64 = 0;

/// PSCI_FEATURES(CPU_SUSPEND): bit 1 = 0, the original `power_state` format; bit 0 = 0, no
/// OS-initiated mode (DEN 0022 §5.1.14).
pub const CPU_SUSPEND_FEATURES: u64 = 0;

/// The defined bits of an original-format `power_state`: StateID [15:0], StateType [16],
/// PowerLevel [25:24]; the others are reserved, zero (DEN 0022 §5.1.2; Linux's
/// `PSCI_0_2_POWER_STATE_MASK`).
pub const ORIGINAL_POWER_STATE_MASK: u32 = 0x0301_FFFF;

/// What a PSCI call asks of the vmm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PsciAction {
    /// Return `x0` to the guest.
    Return(u64),
    /// End the VM with this verdict (SYSTEM_OFF, and CPU_OFF of the only CPU).
    PowerOff { verdict: u64 },
    /// Restart the VM from its image (SYSTEM_RESET does not return).
    Reset,
}

/// Whether `function` is in the PSCI ranges: SMC32 `0x8400_0000..=0x8400_001F` and SMC64
/// `0xC400_0000..=0xC400_001F` (DEN 0022 §5.1; SMCCC owner 4, "standard secure service").
pub const fn is_psci(function: u32) -> bool {
    matches!(function & !0x1F, 0x8400_0000 | 0xC400_0000)
}

/// Carries out PSCI call `function` with `x1..x3` as the guest left them; SMC32 functions see
/// only their low halves.
pub const fn call(function: u32, x: [u64; 3]) -> PsciAction {
    let [x1, x2, _] = smc32_narrowed(function, x);
    let x0 = match function {
        PSCI_VERSION => VERSION_1_1,
        PSCI_FEATURES => features(x1 as u32),
        PSCI_CPU_SUSPEND_32 | PSCI_CPU_SUSPEND_64 => cpu_suspend(x1 as u32),
        PSCI_CPU_OFF => return PsciAction::PowerOff { verdict: 0 },
        PSCI_CPU_ON_32 | PSCI_CPU_ON_64 => cpu_on(x1),
        PSCI_AFFINITY_INFO_32 | PSCI_AFFINITY_INFO_64 => affinity_info(x1, x2 as u32),
        PSCI_MIGRATE_INFO_TYPE => MigrateType::MigrationNotRequired as u64,
        PSCI_SYSTEM_OFF => return PsciAction::PowerOff { verdict: x1 },
        PSCI_SYSTEM_RESET => return PsciAction::Reset,
        _ => status(NOT_SUPPORTED),
    };
    PsciAction::Return(x0)
}

/// PSCI_FEATURES(`queried`): SUCCESS (or CPU_SUSPEND's flags) for what [`call`] implements
/// and for SMCCC_VERSION, NOT_SUPPORTED otherwise.
pub const fn features(queried: u32) -> u64 {
    match queried {
        PSCI_CPU_SUSPEND_32 | PSCI_CPU_SUSPEND_64 => CPU_SUSPEND_FEATURES,
        PSCI_VERSION
        | PSCI_FEATURES
        | PSCI_CPU_OFF
        | PSCI_CPU_ON_32
        | PSCI_CPU_ON_64
        | PSCI_AFFINITY_INFO_32
        | PSCI_AFFINITY_INFO_64
        | PSCI_MIGRATE_INFO_TYPE
        | PSCI_SYSTEM_OFF
        | PSCI_SYSTEM_RESET
        | SMCCC_VERSION => status(SUCCESS),
        _ => status(NOT_SUPPORTED),
    }
}

/// CPU_SUSPEND: a standby the guest returns from at once, so every valid state succeeds.
const fn cpu_suspend(power_state: u32) -> u64 {
    if power_state & !ORIGINAL_POWER_STATE_MASK != 0 {
        status(INVALID_PARAMETERS)
    } else {
        status(SUCCESS)
    }
}

/// CPU_ON: the only CPU is the caller, so it is already on; no other CPU exists.
const fn cpu_on(target_cpu: u64) -> u64 {
    if target_cpu == ONLY_CPU_AFFINITY {
        status(ALREADY_ON)
    } else {
        status(INVALID_PARAMETERS)
    }
}

/// AFFINITY_INFO: the only CPU is running (it is making the call).
const fn affinity_info(target_affinity: u64, lowest_affinity_level: u32) -> u64 {
    if target_affinity == ONLY_CPU_AFFINITY && lowest_affinity_level == 0 {
        AffinityState::On as u64
    } else {
        status(INVALID_PARAMETERS)
    }
}

#[cfg(test)]
mod tests;
