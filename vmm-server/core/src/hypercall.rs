//! SMC Calling Convention dispatch (Arm DEN 0028) for the calls of docs/GUEST-ABI.md, by
//! service owner (function id bits [29:24], fast calls only):
//!
//! - owner 0, Arm architecture service: SMCCC 1.1's SMCCC_VERSION and SMCCC_ARCH_FEATURES,
//!   answered here; every other id of the range is NOT_SUPPORTED and never reaches the vendor
//!   table below.
//! - owner 4, standard secure service: PSCI (`psci.rs`) for `0x00..=0x1F`; the rest of the
//!   range (TRNG, which Linux probes, and others) is NOT_SUPPORTED.
//! - owner 6, vendor hypervisor service: our calls, which become [`MmuCall`]s that the
//!   mmu-server carries out (HV_BOOT_COUNT, HV_INJECT_SERROR and HV_RESET_LOOP are the vmm's
//!   own).
//! - everything else, and yielding calls: `NOT_SUPPORTED` in `x0`, as SMCCC requires. No id
//!   ever faults the guest.
//!
//! SMC32 functions (id bit 30 clear) read only the low 32 bits of their arguments (DEN 0028
//! §2.6): [`smc32_narrowed`].
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
    HV_BOOT_COUNT, HV_DIRTY_LOG_DISABLE, HV_DIRTY_LOG_ENABLE, HV_DIRTY_LOG_GET_AND_CLEAR,
    HV_INJECT_SERROR, HV_RAM_ALIAS, HV_RESET_LOOP, HV_STAGE2_FAULTS,
};
use smccc::arch::{SMCCC_ARCH_FEATURES, SMCCC_VERSION};

/// SMCCC NOT_SUPPORTED (DEN 0028 §7.1): an unknown id, or a feature we do not have.
pub const NOT_SUPPORTED: u64 = status(smccc::arch::error::NOT_SUPPORTED);
/// SMCCC INVALID_PARAMETER (DEN 0028 §7.1): a vendor call's arguments are out of range.
pub const INVALID_PARAMETER: u64 = status(smccc::arch::error::INVALID_PARAMETER);
/// PSCI INTERNAL_FAILURE (DEN 0022 §5.2.2), borrowed for "the mmu-server could not answer".
pub const INTERNAL_FAILURE: u64 = status(smccc::psci::error::INTERNAL_FAILURE);
/// NO_WINDOW, our vendor status (docs/GUEST-ABI.md): HV_DIRTY_LOG_ENABLE of a new range while
/// the VM has every dirty-log window its manifest gives it (`dirty_log_windows`). SMCCC has no
/// "busy"; -4 is none of SMCCC's own codes (-1..=-3) and no other vendor call answers it.
pub const NO_WINDOW: u64 = status(-4);
/// SMCCC 1.1, the version SMCCC_VERSION answers: major in bits [30:16], minor in [15:0].
/// 1.1 is the version that has SMCCC_ARCH_FEATURES, which Linux's Spectre code needs.
pub const SMCCC_VERSION_1_1: u64 = 0x0001_0001;
/// The largest range a dirty-log call may cover: 256 pages, one 4-word bitmap.
pub const DIRTY_LOG_MAX_LEN: u64 = 1 << 20;
/// The page size of dirty logging.
pub const PAGE_SIZE: u64 = 4096;

/// A status code as `x0` carries it: the `int32` sign-extended to 64 bits, as KVM writes it,
/// so that a caller reading `w0` or `x0` sees the same negative number.
pub const fn status(code: i32) -> u64 {
    code as i64 as u64
}

/// The arguments `x1..x3` as function `function` reads them: an SMC32 function (bit 30 clear)
/// sees only their low 32 bits, the upper halves being ignored (DEN 0028 §2.6).
pub const fn smc32_narrowed(function: u32, x: [u64; 3]) -> [u64; 3] {
    if function & SMC64 != 0 {
        return x;
    }
    const LOW: u64 = 0xFFFF_FFFF;
    [x[0] & LOW, x[1] & LOW, x[2] & LOW]
}

/// Function id bit 31: a fast call (DEN 0028 §2.5); the others are yielding calls.
const FAST_CALL: u32 = 1 << 31;
/// Function id bit 30: the SMC64/HVC64 calling convention.
const SMC64: u32 = 1 << 30;

/// Who owns a function id (DEN 0028 §6, bits [29:24] of a fast call).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Service {
    /// Owner 0: Arm architecture calls.
    Arch,
    /// Owner 4, functions `0x00..=0x1F`: PSCI.
    Psci,
    /// Owner 6: vendor-specific hypervisor service.
    VendorHypervisor,
    /// Any other owner or function, and every yielding call.
    Unknown,
}

impl Service {
    const fn of(function: u32) -> Self {
        if function & FAST_CALL == 0 {
            return Self::Unknown;
        }
        match (function >> 24) & 0x3F {
            0 => Self::Arch,
            4 if psci::is_psci(function) => Self::Psci,
            6 => Self::VendorHypervisor,
            _ => Self::Unknown,
        }
    }
}

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
    /// HV_DIRTY_LOG_DISABLE over `[ipa, ipa + len)`.
    DirtyLogDisable { ipa: u64, len: u64 },
    /// HV_STAGE2_FAULTS.
    Stage2Faults,
    /// HV_RAM_ALIAS with `ipa` != 0: the RAM page at `offset` also at `ipa` (slot
    /// [`crate::mmu::ALIAS_SLOT`]).
    RamAlias { ipa: u64, offset: u64 },
    /// HV_RAM_ALIAS with x1 = 0: the alias removed.
    RamAliasRemove,
}

/// What one SMCCC call asks of the vmm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HypercallAction {
    /// Answer with `x0..x3`.
    Return([u64; 4]),
    /// PSCI SYSTEM_OFF, or CPU_OFF of the only CPU.
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

const fn only(x0: u64) -> HypercallAction {
    HypercallAction::Return([x0, 0, 0, 0])
}

/// Dispatches a call: `esr` is the exit's syndrome (for the immediate), `x` the guest's
/// `x0..x5` (the exit's words).
pub const fn dispatch(esr: u64, x: [u64; 6]) -> HypercallAction {
    // ISS[15:0] of an HVC/SMC exit is the immediate.
    if esr & 0xFFFF != 0 {
        return only(NOT_SUPPORTED);
    }
    // The function id is w0 (DEN 0028 §2.5); the upper half of x0 is ignored.
    let function = x[0] as u32;
    let arguments = [x[1], x[2], x[3]];
    match Service::of(function) {
        Service::Arch => only(arch_call(function, arguments)),
        Service::Psci => match psci::call(function, arguments) {
            PsciAction::Return(x0) => only(x0),
            PsciAction::PowerOff { verdict } => HypercallAction::PowerOff { verdict },
            PsciAction::Reset => HypercallAction::Reset,
        },
        Service::VendorHypervisor => vendor_call(function, arguments),
        Service::Unknown => only(NOT_SUPPORTED),
    }
}

/// An Arm architecture call (owner 0): SMCCC_VERSION and SMCCC_ARCH_FEATURES (both SMC32).
/// The Spectre workaround calls themselves, SMCCC_ARCH_SOC_ID (SMCCC 1.2) and every SMC64 id
/// of the range answer NOT_SUPPORTED.
pub const fn arch_call(function: u32, x: [u64; 3]) -> u64 {
    let [x1, ..] = smc32_narrowed(function, x);
    match function {
        SMCCC_VERSION => SMCCC_VERSION_1_1,
        SMCCC_ARCH_FEATURES => arch_features(x1 as u32),
        _ => NOT_SUPPORTED,
    }
}

/// SMCCC_ARCH_FEATURES(`queried`) (DEN 0028 §7.3): SUCCESS for the two calls we implement, as
/// Trusted Firmware-A's `smccc_arch_features` answers; NOT_SUPPORTED for the rest.
///
/// ARCH_WORKAROUND_1/2/3 (Spectre v2, v4, BHB) are NOT_SUPPORTED: the vmm cannot carry out a
/// firmware mitigation on the guest's behalf. For Linux 6.1 on a Cortex-A72 (QEMU TCG's, no
/// CSV2 or SSBS) that means "no firmware mitigation", not a failure: proton-pack.c's
/// `spectre_v2_get_cpu_fw_mitigation_state` and `spectre_v4_..._fw_...` read NOT_SUPPORTED as
/// SPECTRE_VULNERABLE, install no firmware call, and sysfs reports "Vulnerable"; Spectre-BHB
/// is mitigated on the A72 by Linux's own branch-history loop, which needs no firmware.
/// HV_PV_TIME_FEATURES, which Linux's `has_pv_steal_clock` asks here too, is NOT_SUPPORTED.
pub const fn arch_features(queried: u32) -> u64 {
    match queried {
        SMCCC_VERSION | SMCCC_ARCH_FEATURES => status(smccc::arch::error::SUCCESS),
        _ => NOT_SUPPORTED,
    }
}

/// A vendor hypervisor call (owner 6). Ours are all SMC64, so their arguments are whole.
const fn vendor_call(function: u32, x: [u64; 3]) -> HypercallAction {
    let (ipa, len) = (x[0], x[1]);
    match function as u64 {
        HV_DIRTY_LOG_ENABLE if dirty_range_is_valid(ipa, len) => {
            HypercallAction::Mmu(MmuCall::DirtyLogEnable { ipa, len })
        }
        HV_DIRTY_LOG_GET_AND_CLEAR if dirty_range_is_valid(ipa, len) => {
            HypercallAction::Mmu(MmuCall::DirtyLogGetAndClear { ipa, len })
        }
        HV_DIRTY_LOG_DISABLE if dirty_range_is_valid(ipa, len) => {
            HypercallAction::Mmu(MmuCall::DirtyLogDisable { ipa, len })
        }
        HV_DIRTY_LOG_ENABLE | HV_DIRTY_LOG_GET_AND_CLEAR | HV_DIRTY_LOG_DISABLE => {
            only(INVALID_PARAMETER)
        }
        HV_STAGE2_FAULTS => HypercallAction::Mmu(MmuCall::Stage2Faults),
        HV_BOOT_COUNT => HypercallAction::BootCount,
        HV_INJECT_SERROR => HypercallAction::InjectSError,
        HV_RESET_LOOP => HypercallAction::ResetLoop,
        HV_RAM_ALIAS if ipa == 0 => HypercallAction::Mmu(MmuCall::RamAliasRemove),
        HV_RAM_ALIAS if alias_is_valid(ipa, x[1]) => {
            HypercallAction::Mmu(MmuCall::RamAlias { ipa, offset: x[1] })
        }
        HV_RAM_ALIAS => only(INVALID_PARAMETER),
        _ => only(NOT_SUPPORTED),
    }
}

/// An alias: both page aligned, the page inside the 39-bit IPA space the VM has. Whether the
/// IPA is free and the offset inside the VM's RAM is the mmu-server's and the vmm's to check.
pub const fn alias_is_valid(ipa: u64, offset: u64) -> bool {
    ipa.is_multiple_of(PAGE_SIZE) && offset.is_multiple_of(PAGE_SIZE) && ipa < (1 << 39)
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
    extern crate std;

    use super::*;
    use proptest::prelude::*;

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
        for esr in [HVC0, SMC0] {
            assert_eq!(
                dispatch(esr, [0xC600_0017, 0x4030_0000, 0x1000, 9, 9, 9]),
                HypercallAction::Mmu(MmuCall::DirtyLogDisable {
                    ipa: 0x4030_0000,
                    len: 0x1000
                })
            );
        }
        // Only w0 names the call; the arguments are whole (SMC64).
        assert_eq!(
            dispatch(
                HVC0,
                [0xFFFF_FFFF_C600_0017, 0x1_4030_0000, 0x10_0000, 0, 0, 0]
            ),
            HypercallAction::Mmu(MmuCall::DirtyLogDisable {
                ipa: 0x1_4030_0000,
                len: 0x10_0000
            })
        );
    }

    #[test]
    fn ram_aliases_are_page_aligned_inside_the_ipa_space_and_zero_removes() {
        assert_eq!(
            dispatch(HVC0, [0xC600_0016, 0x0A00_0000, 0x3F_F000, 0, 0, 0]),
            HypercallAction::Mmu(MmuCall::RamAlias {
                ipa: 0x0A00_0000,
                offset: 0x3F_F000
            })
        );
        assert_eq!(
            dispatch(HVC0, [0xC600_0016, 0, 0x1234, 0, 0, 0]),
            HypercallAction::Mmu(MmuCall::RamAliasRemove),
            "IPA 0 removes, whatever the offset"
        );
        let invalid = HypercallAction::Return([INVALID_PARAMETER, 0, 0, 0]);
        for (ipa, offset) in [
            (0x0A00_0800, 0),    // IPA not page aligned
            (0x0A00_0000, 0x10), // offset not page aligned
            (1 << 39, 0),        // beyond the IPA space
            (!0xFFF, 0),         // far beyond it
        ] {
            assert_eq!(
                dispatch(HVC0, [0xC600_0016, ipa, offset, 0, 0, 0]),
                invalid,
                "{ipa:#x} {offset:#x}"
            );
        }
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
            for function in [0xC600_0010, 0xC600_0011, 0xC600_0017] {
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
        // A yielding call (PSCI_VERSION's id with bit 31 clear), a vendor id we do not
        // implement, owner 6 below ours, KVM's vendor UID call (Linux's
        // `kvm_init_hyp_services` asks it), TRNG_VERSION (owner 4 past PSCI), trusted OS
        // owners, 0.
        for function in [
            0x0400_0000,
            0xC600_0099,
            0xC600_0000,
            0x8600_FF01,
            0x8400_0050,
            0xB200_0000,
            0xBF00_FF01,
            0,
        ] {
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

    /// An Arm architecture call's answer in `x0`.
    fn arch(function: u64, x1: u64) -> u64 {
        match dispatch(HVC0, [function, x1, 0, 0, 0, 0]) {
            HypercallAction::Return([x0, 0, 0, 0]) => x0,
            other => panic!("{function:#x}({x1:#x}): {other:?}"),
        }
    }

    #[test]
    fn smccc_version_is_1_1_over_either_conduit() {
        for esr in [HVC0, SMC0] {
            assert_eq!(
                dispatch(esr, [0x8000_0000, 9, 9, 9, 9, 9]),
                HypercallAction::Return([0x0001_0001, 0, 0, 0])
            );
        }
        assert_eq!(
            arch(0xFFFF_FFFF_8000_0000, 0),
            0x0001_0001,
            "only w0 is the id"
        );
    }

    #[test]
    fn arch_features_knows_the_two_smccc_calls_and_no_workaround() {
        const NOT_SUPPORTED: u64 = -1i64 as u64;
        // SMCCC_VERSION and SMCCC_ARCH_FEATURES itself.
        assert_eq!(arch(0x8000_0001, 0x8000_0000), 0);
        assert_eq!(arch(0x8000_0001, 0x8000_0001), 0);
        // ARCH_WORKAROUND_1, _2, _3, SOC_ID (SMCCC 1.2), HV_PV_TIME_FEATURES, a PSCI id (not
        // an Arm architecture call), our own vendor call, the SMC64 twin of SMCCC_VERSION.
        for queried in [
            0x8000_8000,
            0x8000_7FFF,
            0x8000_3FFF,
            0x8000_0002,
            0xC600_0020,
            0x8400_0000,
            0xC600_0013,
            0xC000_0000,
        ] {
            assert_eq!(arch(0x8000_0001, queried), NOT_SUPPORTED, "{queried:#x}");
        }
        // SMCCC_ARCH_FEATURES is SMC32: the queried id is w1.
        assert_eq!(arch(0x8000_0001, 0xFFFF_FFFF_8000_0000), 0);
        assert_eq!(arch(0x8000_0001, 0x1_8000_8000), NOT_SUPPORTED);
    }

    #[test]
    fn the_arm_architecture_range_never_reaches_the_vendor_table() {
        // The workaround calls themselves, SOC_ID, the last id, the SMC64 half of owner 0, and
        // owner-0 ids whose low bits are our vendor calls' (HV_BOOT_COUNT, HV_DIRTY_LOG_ENABLE
        // with a valid range).
        for function in [
            0x8000_8000,
            0x8000_7FFF,
            0x8000_3FFF,
            0x8000_0002,
            0x8000_FFFF,
            0xC000_0000,
            0xC000_0001,
            0xC000_0013,
            0x8000_0013,
        ] {
            assert_eq!(
                dispatch(HVC0, [function, 0x4020_0000, 0x1000, 0, 0, 0]),
                HypercallAction::Return([u64::MAX, 0, 0, 0]),
                "{function:#x}"
            );
        }
        assert_eq!(
            dispatch(HVC0, [0xC000_0010, 0x4020_0000, 0x1000, 0, 0, 0]),
            HypercallAction::Return([u64::MAX, 0, 0, 0])
        );
    }

    /// What Linux 6.1 asks at boot (drivers/firmware/psci/psci.c `psci_probe`,
    /// drivers/firmware/smccc/, arch/arm64/kernel/proton-pack.c and paravirt.c), in order,
    /// and the answers that make it boot on one CPU without firmware mitigations.
    #[test]
    fn linux_6_1_boot_probes() {
        const NOT_SUPPORTED: u64 = -1i64 as u64;
        let probes: [(&str, [u64; 2], u64); 14] = [
            ("PSCI_VERSION", [0x8400_0000, 0], 0x0001_0001),
            ("MIGRATE_INFO_TYPE", [0x8400_0006, 0], 2),
            (
                "PSCI_FEATURES(SMCCC_VERSION)",
                [0x8400_000A, 0x8000_0000],
                0,
            ),
            ("SMCCC_VERSION", [0x8000_0000, 0], 0x0001_0001),
            ("TRNG_VERSION", [0x8400_0050, 0], NOT_SUPPORTED),
            (
                "PSCI_FEATURES(CPU_SUSPEND64)",
                [0x8400_000A, 0xC400_0001],
                0,
            ),
            (
                "PSCI_FEATURES(SYSTEM_SUSPEND64)",
                [0x8400_000A, 0xC400_000E],
                NOT_SUPPORTED,
            ),
            (
                "PSCI_FEATURES(SYSTEM_RESET2_64)",
                [0x8400_000A, 0xC400_0012],
                NOT_SUPPORTED,
            ),
            ("VENDOR_HYP_CALL_UID", [0x8600_FF01, 0], NOT_SUPPORTED),
            (
                "ARCH_FEATURES(WORKAROUND_1)",
                [0x8000_0001, 0x8000_8000],
                NOT_SUPPORTED,
            ),
            (
                "ARCH_FEATURES(WORKAROUND_2)",
                [0x8000_0001, 0x8000_7FFF],
                NOT_SUPPORTED,
            ),
            (
                "ARCH_FEATURES(WORKAROUND_3)",
                [0x8000_0001, 0x8000_3FFF],
                NOT_SUPPORTED,
            ),
            (
                "ARCH_FEATURES(PV_TIME_FEATURES)",
                [0x8000_0001, 0xC600_0020],
                NOT_SUPPORTED,
            ),
            ("AFFINITY_INFO64(0, 0)", [0xC400_0004, 0], 0),
        ];
        for (name, [function, x1], expected) in probes {
            assert_eq!(
                dispatch(HVC0, [function, x1, 0, 0, 0, 0]),
                HypercallAction::Return([expected, 0, 0, 0]),
                "{name}"
            );
        }
        // Power-off and reboot.
        assert_eq!(
            dispatch(HVC0, [0x8400_0008, 0, 0, 0, 0, 0]),
            HypercallAction::PowerOff { verdict: 0 }
        );
        assert_eq!(
            dispatch(HVC0, [0x8400_0009, 0, 0, 0, 0, 0]),
            HypercallAction::Reset
        );
    }

    #[test]
    fn smc32_functions_see_the_low_halves_only() {
        let x = [0x1234_5678_9ABC_DEF0, u64::MAX, 1 << 40];
        assert_eq!(
            smc32_narrowed(0x8400_0003, x),
            [0x9ABC_DEF0, 0xFFFF_FFFF, 0]
        );
        assert_eq!(smc32_narrowed(0xC400_0003, x), x);
        // Through dispatch: PSCI CPU_ON_32 on target 0 with garbage above w1.
        assert_eq!(
            dispatch(HVC0, [0x8400_0003, 0xFFFF_FFFF_0000_0000, 0, 0, 0, 0]),
            HypercallAction::Return([-4i64 as u64, 0, 0, 0])
        );
    }

    #[test]
    fn status_codes_are_sign_extended() {
        assert_eq!(NOT_SUPPORTED, u64::MAX);
        assert_eq!(INVALID_PARAMETER as i64, -3);
        assert_eq!(INTERNAL_FAILURE as i64, -6);
        assert_eq!(NO_WINDOW as i64, -4);
        assert_eq!(status(0), 0);
    }

    proptest! {
        /// Any id and arguments over either conduit: no panic; an Arm architecture or PSCI id
        /// never reaches a vendor action; a power-off or reset comes only from PSCI
        /// SYSTEM_OFF, CPU_OFF and SYSTEM_RESET; every plain answer is one of the codes we
        /// give; and an SMC32 id's answer ignores the upper halves of `x1..x3`.
        #[test]
        fn any_call_is_answered(
            esr in prop_oneof![
                Just(HVC0),
                Just(SMC0),
                any::<u16>().prop_map(|imm| HVC0 | u64::from(imm)),
            ],
            function in prop_oneof![
                any::<u64>(),
                // Fast calls of owners 0, 4 and 6, and the PSCI ranges, so they are hit often.
                (0u64..0x1_0000).prop_map(|low| 0x8000_0000 | low),
                (0u64..0x1_0000).prop_map(|low| 0xC000_0000 | low),
                (0u64..0x40).prop_map(|low| 0x8400_0000 | low),
                (0u64..0x40).prop_map(|low| 0xC400_0000 | low),
                (0u64..0x100).prop_map(|low| 0xC600_0000 | low),
            ],
            x in any::<[u64; 5]>(),
            high in any::<[u32; 3]>(),
        ) {
            let words = [function, x[0], x[1], x[2], x[3], x[4]];
            let action = dispatch(esr, words);
            let id = function as u32;
            let owner = (id >> 24) & 0x3F;
            let fast = id & (1 << 31) != 0;
            if fast && (owner == 0 || owner == 4) {
                prop_assert!(
                    matches!(
                        action,
                        HypercallAction::Return(_)
                            | HypercallAction::PowerOff { .. }
                            | HypercallAction::Reset
                    ),
                    "{:#x}: {:?}", id, action
                );
            }
            match action {
                HypercallAction::PowerOff { .. } => {
                    prop_assert!(matches!(id, 0x8400_0002 | 0x8400_0008));
                }
                HypercallAction::Reset => prop_assert_eq!(id, 0x8400_0009),
                HypercallAction::Return([x0, x1, x2, x3]) => {
                    prop_assert_eq!([x1, x2, x3], [0, 0, 0]);
                    let known = [0x0001_0001, 0, 2, -1i64, -2, -3, -4].map(|c| c as u64);
                    prop_assert!(known.contains(&x0), "{:#x}: {:#x}", id, x0);
                }
                _ => prop_assert_eq!(owner, 6, "{:#x}: {:?}", id, action),
            }
            if esr & 0xFFFF != 0 {
                prop_assert_eq!(action, HypercallAction::Return([u64::MAX, 0, 0, 0]));
            }
            if id & (1 << 30) == 0 {
                let mut flipped = words;
                for (word, high) in flipped[1..4].iter_mut().zip(high) {
                    *word ^= u64::from(high) << 32;
                }
                prop_assert_eq!(dispatch(esr, flipped), action);
            }
        }
    }

    #[test]
    fn conduits() {
        assert_eq!(Conduit::from_esr(HVC0), Some(Conduit::Hvc));
        assert_eq!(Conduit::from_esr(SMC0), Some(Conduit::Smc));
        assert_eq!(Conduit::from_esr(0x93C0_8007), None);
        assert!(Conduit::Smc.advances_pc() && !Conduit::Hvc.advances_pc());
    }
}
