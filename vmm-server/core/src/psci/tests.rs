//! Every PSCI function and return code, with ids and codes spelled out as numbers (DEN 0022
//! §5.1, §5.2.2) so that a wrong constant in the `smccc` crate or in `psci.rs` shows here.

extern crate std;

use super::*;
use proptest::prelude::*;

const SUCCESS: u64 = 0;
const NOT_SUPPORTED: u64 = -1i64 as u64;
const INVALID_PARAMETERS: u64 = -2i64 as u64;
const ALREADY_ON: u64 = -4i64 as u64;
/// Upper halves an SMC32 function must ignore.
const HIGH: u64 = 0xFFFF_FFFF_0000_0000;

fn answer(function: u32, x: [u64; 3]) -> u64 {
    match call(function, x) {
        PsciAction::Return(x0) => x0,
        other => panic!("{function:#x} {x:#x?}: {other:?} instead of a return"),
    }
}

#[test]
fn version_is_1_1() {
    assert_eq!(answer(0x8400_0000, [0; 3]), 0x0001_0001);
    assert_eq!(answer(0x8400_0000, [HIGH | 7; 3]), 0x0001_0001);
}

/// What PSCI_FEATURES answers for `queried`.
fn feature(queried: u64) -> u64 {
    answer(0x8400_000A, [queried, 0, 0])
}

#[test]
fn features_lists_exactly_what_is_implemented() {
    // PSCI_VERSION, CPU_OFF, CPU_ON (32, 64), AFFINITY_INFO (32, 64), MIGRATE_INFO_TYPE,
    // SYSTEM_OFF, SYSTEM_RESET, PSCI_FEATURES itself, and SMCCC_VERSION.
    for implemented in [
        0x8400_0000,
        0x8400_0002,
        0x8400_0003,
        0xC400_0003,
        0x8400_0004,
        0xC400_0004,
        0x8400_0006,
        0x8400_0008,
        0x8400_0009,
        0x8400_000A,
        0x8000_0000,
    ] {
        assert_eq!(feature(implemented), SUCCESS, "{implemented:#x}");
    }
    // MIGRATE (32, 64), MIGRATE_INFO_UP_CPU (32, 64), SYSTEM_RESET2 (32, 64), MEM_PROTECT,
    // MEM_PROTECT_CHECK_RANGE (32, 64), CPU_FREEZE, CPU_DEFAULT_SUSPEND (32, 64),
    // NODE_HW_STATE (32, 64), SYSTEM_SUSPEND (32, 64), SET_SUSPEND_MODE, STAT_RESIDENCY
    // (32, 64), STAT_COUNT (32, 64); then SMC64 ids of SMC32-only functions, ids past the
    // PSCI functions, SMCCC_ARCH_FEATURES (Linux does not ask; KVM says NOT_SUPPORTED too),
    // a vendor call, and 0.
    for absent in [
        0x8400_0005,
        0xC400_0005,
        0x8400_0007,
        0xC400_0007,
        0x8400_0012,
        0xC400_0012,
        0x8400_0013,
        0x8400_0014,
        0xC400_0014,
        0x8400_000B,
        0x8400_000C,
        0xC400_000C,
        0x8400_000D,
        0xC400_000D,
        0x8400_000E,
        0xC400_000E,
        0x8400_000F,
        0x8400_0010,
        0xC400_0010,
        0x8400_0011,
        0xC400_0011,
        0xC400_0000,
        0xC400_0008,
        0x8400_0015,
        0x8400_001F,
        0x8000_0001,
        0xC600_0013,
        0,
    ] {
        assert_eq!(feature(absent), NOT_SUPPORTED, "{absent:#x}");
    }
}

#[test]
fn features_of_cpu_suspend_are_the_original_format_without_os_initiated_mode() {
    for suspend in [0x8400_0001, 0xC400_0001] {
        let flags = feature(suspend);
        assert_eq!(flags, 0, "{suspend:#x}");
        assert_eq!(flags & 0b10, 0, "bit 1 clear: original power_state format");
        assert_eq!(
            flags & 0b01,
            0,
            "bit 0 clear: platform-coordinated mode only"
        );
    }
}

#[test]
fn features_reads_only_w1() {
    // PSCI_FEATURES is SMC32: the queried id is w1.
    assert_eq!(feature(HIGH | 0x8400_0003), SUCCESS);
    assert_eq!(feature(HIGH | 0x8400_0012), NOT_SUPPORTED);
    assert_eq!(feature(HIGH | 0x8000_0000), SUCCESS);
}

/// The answer of PSCI_FEATURES agrees with the call itself over both PSCI ranges: a function
/// is listed exactly when calling it does something other than answer NOT_SUPPORTED. (`x1` is
/// PSCI_VERSION's id, so that PSCI_FEATURES queries something it knows.)
#[test]
fn features_agrees_with_the_calls() {
    for function in (0x8400_0000..=0x8400_001F).chain(0xC400_0000..=0xC400_001F) {
        let implemented = call(function, [0x8400_0000, 0, 0]) != PsciAction::Return(NOT_SUPPORTED);
        assert_eq!(
            feature(function.into()) != NOT_SUPPORTED,
            implemented,
            "{function:#x}"
        );
    }
}

#[test]
fn cpu_suspend_returns_at_once_for_every_valid_state() {
    for suspend in [0x8400_0001, 0xC400_0001] {
        // Standby, powerdown, StateID bits, power levels 0..=3: SUCCESS, whatever entry point
        // and context id come with it.
        for power_state in [0, 1, 0xFFFF, 0x0001_0000, 0x0100_0000, 0x0301_FFFF] {
            assert_eq!(
                answer(suspend, [power_state, 0x4008_0000, 0x1234]),
                SUCCESS,
                "{suspend:#x} {power_state:#x}"
            );
        }
        // A reserved bit: bits [23:17] and [31:26].
        for power_state in [0x0002_0000, 0x0080_0000, 0x0400_0000, 0x8000_0000] {
            assert_eq!(
                answer(suspend, [power_state, 0, 0]),
                INVALID_PARAMETERS,
                "{suspend:#x} {power_state:#x}"
            );
        }
        // power_state is a uint32 in both forms.
        assert_eq!(answer(suspend, [HIGH | 0x0001_0000, 0, 0]), SUCCESS);
    }
}

#[test]
fn cpu_off_of_the_only_cpu_powers_the_vm_off_with_verdict_0() {
    assert_eq!(
        call(0x8400_0002, [0; 3]),
        PsciAction::PowerOff { verdict: 0 }
    );
    // CPU_OFF takes no argument: x1 is not a verdict.
    assert_eq!(
        call(0x8400_0002, [5, 6, 7]),
        PsciAction::PowerOff { verdict: 0 }
    );
    // There is no SMC64 CPU_OFF.
    assert_eq!(call(0xC400_0002, [0; 3]), PsciAction::Return(NOT_SUPPORTED));
}

#[test]
fn cpu_on_finds_the_only_cpu_already_on_and_no_other() {
    for cpu_on in [0x8400_0003, 0xC400_0003] {
        assert_eq!(
            answer(cpu_on, [0, 0x4008_0000, 0]),
            ALREADY_ON,
            "{cpu_on:#x}"
        );
        // Aff0 = 1, Aff1 = 1, Aff2 = 1, and bits outside the affinity fields: MPIDR's U (30)
        // and MT (24).
        for target in [1, 0x100, 0x1_0000, 0x4000_0000, 0x0100_0000] {
            assert_eq!(
                answer(cpu_on, [target, 0x4008_0000, 0]),
                INVALID_PARAMETERS,
                "{cpu_on:#x} {target:#x}"
            );
        }
    }
    // CPU_ON_32 sees only w1; CPU_ON_64's x1 carries Aff3 [39:32].
    assert_eq!(answer(0x8400_0003, [HIGH, 0, 0]), ALREADY_ON);
    assert_eq!(answer(0xC400_0003, [HIGH, 0, 0]), INVALID_PARAMETERS);
    assert_eq!(answer(0xC400_0003, [1 << 32, 0, 0]), INVALID_PARAMETERS);
}

#[test]
fn affinity_info_knows_the_only_cpu_at_level_0() {
    const ON: u64 = 0;
    for affinity_info in [0x8400_0004, 0xC400_0004] {
        assert_eq!(answer(affinity_info, [0, 0, 0]), ON, "{affinity_info:#x}");
        for (target, level) in [(1, 0), (0x100, 0), (0x8000_0000, 0), (0, 1), (0, 3), (0, 4)] {
            assert_eq!(
                answer(affinity_info, [target, level, 0]),
                INVALID_PARAMETERS,
                "{affinity_info:#x} {target:#x} level {level}"
            );
        }
        // lowest_affinity_level is a uint32 in both forms.
        assert_eq!(answer(affinity_info, [0, HIGH, 0]), ON);
    }
    // AFFINITY_INFO_32 sees only w1; the SMC64 form's x1 carries Aff3.
    assert_eq!(answer(0x8400_0004, [HIGH, 0, 0]), ON);
    assert_eq!(answer(0xC400_0004, [1 << 32, 0, 0]), INVALID_PARAMETERS);
}

#[test]
fn no_trusted_os_to_migrate() {
    // MIGRATE_INFO_TYPE 2: no Trusted OS, or none that needs migration.
    assert_eq!(answer(0x8400_0006, [0; 3]), 2);
    // MIGRATE and MIGRATE_INFO_UP_CPU, both forms.
    for function in [0x8400_0005, 0xC400_0005, 0x8400_0007, 0xC400_0007] {
        assert_eq!(answer(function, [0; 3]), NOT_SUPPORTED, "{function:#x}");
    }
}

#[test]
fn system_off_carries_w1_as_the_verdict_and_system_reset_resets() {
    assert_eq!(
        call(0x8400_0008, [3, 0, 0]),
        PsciAction::PowerOff { verdict: 3 }
    );
    assert_eq!(
        call(0x8400_0008, [HIGH, 0, 0]),
        PsciAction::PowerOff { verdict: 0 },
        "SMC32: only w1 is the verdict"
    );
    assert_eq!(call(0x8400_0009, [9, 9, 9]), PsciAction::Reset);
}

#[test]
fn the_optional_functions_are_not_supported() {
    // SYSTEM_RESET2, SYSTEM_SUSPEND, MEM_PROTECT, MEM_PROTECT_CHECK_RANGE, STAT_RESIDENCY,
    // STAT_COUNT (both forms where they have two), CPU_FREEZE, CPU_DEFAULT_SUSPEND,
    // NODE_HW_STATE, SET_SUSPEND_MODE.
    for function in [
        0x8400_0012,
        0xC400_0012,
        0x8400_000E,
        0xC400_000E,
        0x8400_0013,
        0x8400_0014,
        0xC400_0014,
        0x8400_0010,
        0xC400_0010,
        0x8400_0011,
        0xC400_0011,
        0x8400_000B,
        0x8400_000C,
        0xC400_000C,
        0x8400_000D,
        0xC400_000D,
        0x8400_000F,
    ] {
        assert_eq!(answer(function, [0; 3]), NOT_SUPPORTED, "{function:#x}");
    }
}

#[test]
fn the_psci_ranges() {
    assert!(is_psci(0x8400_0000) && is_psci(0x8400_001F) && is_psci(0xC400_0003));
    assert!(!is_psci(0x8400_0020) && !is_psci(0xC600_0010) && !is_psci(0x8000_0000));
    assert!(
        !is_psci(0x8400_0050),
        "TRNG_VERSION is owner 4 but not PSCI"
    );
}

proptest! {
    /// No argument panics a PSCI call, every answer is one this module gives, and an SMC32
    /// function's answer does not depend on the upper halves of its arguments.
    #[test]
    fn any_psci_call_is_answered_and_smc32_ignores_upper_halves(
        low in 0u32..0x20,
        smc64 in any::<bool>(),
        x in any::<[u64; 3]>(),
        high in any::<[u32; 3]>(),
    ) {
        let function = if smc64 { 0xC400_0000 } else { 0x8400_0000 } | low;
        let action = call(function, x);
        match action {
            PsciAction::Return(x0) => prop_assert!(
                [0x0001_0001, SUCCESS, 2, NOT_SUPPORTED, INVALID_PARAMETERS, ALREADY_ON]
                    .contains(&x0),
                "{:#x}: {:#x}", function, x0
            ),
            PsciAction::PowerOff { verdict } => {
                prop_assert!(matches!(function, 0x8400_0002 | 0x8400_0008));
                prop_assert!(verdict <= u64::from(u32::MAX));
            }
            PsciAction::Reset => prop_assert_eq!(function, 0x8400_0009),
        }
        if !smc64 {
            let flipped = [
                x[0] ^ (u64::from(high[0]) << 32),
                x[1] ^ (u64::from(high[1]) << 32),
                x[2] ^ (u64::from(high[2]) << 32),
            ];
            prop_assert_eq!(call(function, flipped), action);
        }
    }
}
