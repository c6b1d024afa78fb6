//! SMC Calling Convention dispatch (Arm DEN 0028) for the calls of docs/GUEST-ABI.md: PSCI is
//! answered here (`psci.rs`), the vendor hypervisor calls (owner 6) become [`MmuCall`]s that
//! the mmu-server carries out (HV_BOOT_COUNT, HV_INJECT_SERROR and HV_RESET_LOOP are the
//! vmm's own), and
//! everything else answers `NOT_SUPPORTED` in `x0`, as SMCCC requires. No id ever faults the
//! guest.
//!
//! The conduit matters for the PC: an `hvc` exit is taken with ELR_EL2 already past the
//! instruction, an `smc` trapped by HCR_EL2.TSC is taken with ELR_EL2 at it (ARM ARM D1.10.1,
//! "preferred return address"), so only SMC answers ask for ADVANCE_PC.
//!
//! SMCCC calls use immediate 0 (`hvc #0`, `smc #0`, DEN 0028 §2.5); another immediate is not an
//! SMCCC call and answers `NOT_SUPPORTED` too (KVM's `handle_smc` does the same).

use crate::psci::{self, PsciAction};
use crate::syndrome::{self, ec};
use abi::vm::hypercall::{
    HV_BOOT_COUNT, HV_DIRTY_LOG_ENABLE, HV_DIRTY_LOG_GET_AND_CLEAR, HV_INJECT_SERROR,
    HV_RESET_LOOP, HV_STAGE2_FAULTS, NOT_SUPPORTED,
};

/// SMCCC INVALID_PARAMETER (DEN 0028 §7.1): a vendor call's arguments are out of range.
pub const INVALID_PARAMETER: u64 = -3i64 as u64;
/// PSCI INTERNAL_FAILURE (DEN 0022 §5.2.2), borrowed for "the mmu-server could not answer".
pub const INTERNAL_FAILURE: u64 = -6i64 as u64;
/// The largest range a dirty-log call may cover: 256 pages, one 4-word bitmap.
pub const DIRTY_LOG_MAX_LEN: u64 = 1 << 20;
/// The page size of dirty logging.
pub const PAGE_SIZE: u64 = 4096;

/// How the guest made the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Conduit {
    /// `hvc`: the exit's PC is already past it.
    Hvc,
    /// `smc`: the exit's PC is at it; the answer must step over it.
    Smc,
}

impl Conduit {
    /// The conduit of a hypercall exit's syndrome; `None` for any other class.
    pub const fn from_esr(esr: u64) -> Option<Self> {
        match syndrome::exception_class(esr) {
            ec::HVC64 => Some(Self::Hvc),
            ec::SMC64 => Some(Self::Smc),
            _ => None,
        }
    }

    /// Whether the answer must advance the PC.
    pub const fn advances_pc(self) -> bool {
        matches!(self, Self::Smc)
    }
}

/// A vendor hypervisor call the mmu-server carries out (its stage-2 tables hold the answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MmuCall {
    /// HV_DIRTY_LOG_ENABLE over `[ipa, ipa + len)`.
    DirtyLogEnable { ipa: u64, len: u64 },
    /// HV_DIRTY_LOG_GET_AND_CLEAR over `[ipa, ipa + len)`.
    DirtyLogGetAndClear { ipa: u64, len: u64 },
    /// HV_STAGE2_FAULTS.
    Stage2Faults,
}

/// What one SMCCC call asks of the vmm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HypercallAction {
    /// Answer with `x0..x3`.
    Return([u64; 4]),
    /// PSCI SYSTEM_OFF.
    PowerOff { verdict: u64 },
    /// PSCI SYSTEM_RESET.
    Reset,
    /// HV_BOOT_COUNT: answer with the number of resets so far.
    BootCount,
    /// HV_RESET_LOOP: answer with how many resets the manifest asks of the guest
    /// (`[vms.<name>] resets`, 0 when not asked).
    ResetLoop,
    /// HV_INJECT_SERROR: answer `x0 = 0` and make a virtual SError pending for the calling
    /// VCPU (`exit::inject_serror_reply`), taken when the guest unmasks SErrors (PSTATE.A).
    InjectSError,
    /// Ask the mmu-server.
    Mmu(MmuCall),
}

/// Dispatches a call: `esr` is the exit's syndrome (for the immediate), `x` the guest's
/// `x0..x5` (the exit's words).
pub const fn dispatch(esr: u64, x: [u64; 6]) -> HypercallAction {
    const fn only(x0: u64) -> HypercallAction {
        HypercallAction::Return([x0, 0, 0, 0])
    }
    // ISS[15:0] of an HVC/SMC exit is the immediate.
    if esr & 0xFFFF != 0 {
        return only(NOT_SUPPORTED);
    }
    // The function id is w0 (DEN 0028 §2.5); the upper half of x0 is ignored.
    let function = x[0] as u32;
    if psci::is_psci(function) {
        return match psci::call(function, x[1]) {
            PsciAction::Return(x0) => only(x0),
            PsciAction::PowerOff { verdict } => HypercallAction::PowerOff { verdict },
            PsciAction::Reset => HypercallAction::Reset,
        };
    }
    let (ipa, len) = (x[1], x[2]);
    match function as u64 {
        HV_DIRTY_LOG_ENABLE if dirty_range_is_valid(ipa, len) => {
            HypercallAction::Mmu(MmuCall::DirtyLogEnable { ipa, len })
        }
        HV_DIRTY_LOG_GET_AND_CLEAR if dirty_range_is_valid(ipa, len) => {
            HypercallAction::Mmu(MmuCall::DirtyLogGetAndClear { ipa, len })
        }
        HV_DIRTY_LOG_ENABLE | HV_DIRTY_LOG_GET_AND_CLEAR => only(INVALID_PARAMETER),
        HV_STAGE2_FAULTS => HypercallAction::Mmu(MmuCall::Stage2Faults),
        HV_BOOT_COUNT => HypercallAction::BootCount,
        HV_INJECT_SERROR => HypercallAction::InjectSError,
        HV_RESET_LOOP => HypercallAction::ResetLoop,
        _ => only(NOT_SUPPORTED),
    }
}

/// A dirty-log range: page-aligned IPA, 1 byte ..= 1 MiB, no wrap. Checked here so that a bad
/// range never costs an mmu-server round trip; the mmu-server checks it against memory.
pub const fn dirty_range_is_valid(ipa: u64, len: u64) -> bool {
    ipa.is_multiple_of(PAGE_SIZE)
        && len > 0
        && len <= DIRTY_LOG_MAX_LEN
        && ipa.checked_add(len).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HVC0: u64 = 0x5A00_0000;
    const SMC0: u64 = 0x5E00_0000;

    fn with_x0(function: u64) -> [u64; 6] {
        [function, 0, 0, 0, 0, 0]
    }

    #[test]
    fn psci_version_and_system_off() {
        assert_eq!(
            dispatch(HVC0, with_x0(0x8400_0000)),
            HypercallAction::Return([0x0001_0001, 0, 0, 0])
        );
        assert_eq!(
            dispatch(HVC0, [0x8400_0008, 7, 0, 0, 0, 0]),
            HypercallAction::PowerOff { verdict: 7 }
        );
        // The upper half of x0 is not part of the function id.
        assert_eq!(
            dispatch(HVC0, with_x0(0xFFFF_FFFF_8400_0000)),
            HypercallAction::Return([0x0001_0001, 0, 0, 0])
        );
    }

    #[test]
    fn system_reset_and_the_boot_count() {
        assert_eq!(dispatch(HVC0, with_x0(0x8400_0009)), HypercallAction::Reset);
        assert_eq!(
            dispatch(SMC0, with_x0(0xC600_0013)),
            HypercallAction::BootCount
        );
        assert_eq!(
            dispatch(HVC0, with_x0(0xC600_0015)),
            HypercallAction::ResetLoop
        );
    }

    #[test]
    fn inject_serror_is_the_vmms_own_over_either_conduit() {
        for esr in [HVC0, SMC0] {
            assert_eq!(
                dispatch(esr, [0xC600_0014, 9, 9, 9, 9, 9]),
                HypercallAction::InjectSError
            );
            // Only w0 names the call.
            assert_eq!(
                dispatch(esr, with_x0(0xFFFF_FFFF_C600_0014)),
                HypercallAction::InjectSError
            );
        }
        // Another immediate is not an SMCCC call: nothing is injected.
        assert_eq!(
            dispatch(HVC0 | 1, with_x0(0xC600_0014)),
            HypercallAction::Return([NOT_SUPPORTED, 0, 0, 0])
        );
    }

    /// The reply that resumes the caller: `x0 = 0` (SET_RESULTS), the virtual SError
    /// (INJECT_SERROR, the kernel sets HCR_EL2.VSE for this VCPU only), and ADVANCE_PC for an
    /// `smc` alone, exactly as any other hypercall answer.
    #[test]
    fn inject_serror_answers_zero_and_pends_a_virtual_serror() {
        use crate::exit::{Cause, ExitPlan, plan};
        use abi::vm::{VmExit, VmExitKind, VmReply};
        let exit = |esr| VmExit {
            kind: VmExitKind::Hypercall,
            pc: 0x4008_0100,
            esr,
            words: [0xC600_0014, 7, 7, 7, 7, 7],
        };
        // SET_RESULTS (4) | INJECT_SERROR (64), and ADVANCE_PC (1) over `smc`; spelled out so
        // that a change in `VmReply` shows here.
        for (esr, bits) in [(HVC0, 0x44), (SMC0, 0x45)] {
            let ExitPlan::Reply(resume) = plan(&exit(esr)) else {
                panic!("HV_INJECT_SERROR is answered at once");
            };
            assert_eq!(
                (resume.reply.0, resume.words, resume.cause),
                (bits, [0; 6], Cause::Hypercall),
                "{esr:#x}"
            );
            assert!(
                !resume.injects(),
                "a virtual SError is not a synchronous injection"
            );
            assert!(!resume.reply.contains(VmReply::INJECT_ABORT));
            assert!(!resume.reply.contains(VmReply::INJECT_UNDEFINED));
            assert!(!resume.reply.contains(VmReply::WRITE_REGISTER));
        }
        // The calls around it inject nothing.
        for function in [0x8400_0000, 0xC600_0013, 0xC600_0015] {
            let call = VmExit {
                words: [function, 0, 0, 0, 0, 0],
                ..exit(HVC0)
            };
            if let ExitPlan::Reply(resume) = plan(&call) {
                assert!(!resume.injects(), "{function:#x}");
            }
        }
    }

    #[test]
    fn vendor_calls_go_to_the_mmu_server() {
        assert_eq!(
            dispatch(HVC0, [0xC600_0010, 0x4020_0000, 0x10_0000, 9, 9, 9]),
            HypercallAction::Mmu(MmuCall::DirtyLogEnable {
                ipa: 0x4020_0000,
                len: 0x10_0000
            })
        );
        assert_eq!(
            dispatch(HVC0, [0xC600_0011, 0x4020_0000, 0x1000, 0, 0, 0]),
            HypercallAction::Mmu(MmuCall::DirtyLogGetAndClear {
                ipa: 0x4020_0000,
                len: 0x1000
            })
        );
        assert_eq!(
            dispatch(HVC0, with_x0(0xC600_0012)),
            HypercallAction::Mmu(MmuCall::Stage2Faults)
        );
    }

    #[test]
    fn bad_dirty_ranges_are_refused_here() {
        let invalid = HypercallAction::Return([INVALID_PARAMETER, 0, 0, 0]);
        for (ipa, len) in [
            (0x4020_0800, 0x1000),    // not page aligned
            (0x4020_0000, 0),         // empty
            (0x4020_0000, 0x10_1000), // more than 1 MiB
            (!0xFFF, 0x2000),         // wraps
        ] {
            for function in [0xC600_0010, 0xC600_0011] {
                assert_eq!(
                    dispatch(HVC0, [function, ipa, len, 0, 0, 0]),
                    invalid,
                    "{function:#x} {ipa:#x}+{len:#x}"
                );
            }
        }
        assert_eq!(INVALID_PARAMETER as i64, -3);
    }

    #[test]
    fn unknown_ids_and_immediates_are_not_supported() {
        let not_supported = HypercallAction::Return([u64::MAX, 0, 0, 0]);
        // SMCCC_VERSION, a yielding call, a vendor id we do not implement, owner 6 below ours.
        for function in [0x8000_0000, 0x0400_0000, 0xC600_0099, 0xC600_0000, 0] {
            assert_eq!(
                dispatch(HVC0, with_x0(function)),
                not_supported,
                "{function:#x}"
            );
        }
        // hvc #1 is not an SMCCC call, even with a valid id.
        assert_eq!(dispatch(HVC0 | 1, with_x0(0x8400_0000)), not_supported);
        assert_eq!(dispatch(SMC0 | 0x8000, with_x0(0x8400_0008)), not_supported);
    }

    #[test]
    fn conduits() {
        assert_eq!(Conduit::from_esr(HVC0), Some(Conduit::Hvc));
        assert_eq!(Conduit::from_esr(SMC0), Some(Conduit::Smc));
        assert_eq!(Conduit::from_esr(0x93C0_8007), None);
        assert!(Conduit::Smc.advances_pc() && !Conduit::Hvc.advances_pc());
    }
}
