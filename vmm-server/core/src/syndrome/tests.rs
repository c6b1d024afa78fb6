//! ESR decode cases: every access width, sign extension into W and X registers, xzr, no ISV,
//! fault status classes, and the shaping of loaded values.

use super::*;

/// A lower-EL Data Abort syndrome with ISV set (IL = 1, as every A64 abort reports).
fn dabt(sas: u64, sse: bool, srt: u64, sf: bool, wnr: bool, dfsc: u64) -> u64 {
    (u64::from(ec::DATA_ABORT_LOWER) << 26)
        | (1 << 25)
        | ISV
        | (sas << SAS_SHIFT)
        | if sse { SSE } else { 0 }
        | (srt << SRT_SHIFT)
        | if sf { SF } else { 0 }
        | if wnr { WNR } else { 0 }
        | dfsc
}

const TRANSLATION_L3: u64 = 0b00_0111;

#[test]
fn a_known_hardware_syndrome_decodes() {
    // `ldr x0, [x1]` to an unmapped page: ESR_EL2 0x93c08007 (ISV, SAS = 3, SF, DFSC = 7).
    let access = decode_mmio(0x93C0_8007, 0x0900_0018, 0).unwrap();
    assert_eq!(
        access,
        MmioAccess {
            ipa: 0x0900_0018,
            width: 8,
            write: false,
            register: 0,
            sign_extend: false,
            sixty_four: true,
            value: 0
        }
    );
    // `strb w0, [x1]` at level 2 (the kernel's own test value 0x9300_0046).
    let access = decode_mmio(0x9300_0046, 0x0900_0000, 0x1_2345_6778).unwrap();
    assert_eq!(
        (access.width, access.write, access.register, access.value),
        (1, true, 0, 0x78)
    );
}

#[test]
fn every_access_size_maps_to_its_width() {
    for (sas, width) in [(0, 1), (1, 2), (2, 4), (3, 8)] {
        let access = decode_mmio(
            dabt(sas, false, 3, sas == 3, false, TRANSLATION_L3),
            0x1000,
            0,
        )
        .unwrap();
        assert_eq!(access.width, width, "SAS {sas}");
        assert_eq!(access.register, 3);
    }
}

#[test]
fn a_store_value_is_masked_to_its_width() {
    let value = 0x8877_6655_4433_2211;
    for (sas, expected) in [(0, 0x11), (1, 0x2211), (2, 0x4433_2211), (3, value)] {
        let access = decode_mmio(
            dabt(sas, false, 5, true, true, TRANSLATION_L3),
            0x1000,
            value,
        )
        .unwrap();
        assert!(access.write);
        assert_eq!(access.value, expected, "SAS {sas}");
    }
}

#[test]
fn a_load_carries_no_value_whatever_the_kernel_sent() {
    let access = decode_mmio(
        dabt(2, false, 5, false, false, TRANSLATION_L3),
        0x1000,
        0xDEAD,
    )
    .unwrap();
    assert_eq!(access.value, 0);
}

#[test]
fn transfer_register_31_is_xzr() {
    let load = decode_mmio(dabt(2, false, 31, false, false, TRANSLATION_L3), 0x1000, 0).unwrap();
    assert_eq!(load.register, 31);
    assert!(load.discards_result());
    let store = decode_mmio(dabt(2, false, 31, false, true, TRANSLATION_L3), 0x1000, 0).unwrap();
    assert_eq!(store.value, 0, "a store of wzr writes zero");
    let x30 = decode_mmio(dabt(3, false, 30, true, false, TRANSLATION_L3), 0x1000, 0).unwrap();
    assert!(!x30.discards_result());
}

#[test]
fn no_isv_is_no_syndrome_and_other_classes_are_not_data_aborts() {
    let without_isv = dabt(2, false, 1, false, false, TRANSLATION_L3) & !ISV;
    assert_eq!(
        decode_mmio(without_isv, 0x1000, 0),
        Err(SyndromeError::NoSyndrome)
    );
    let fetch = (u64::from(ec::INSTRUCTION_ABORT_LOWER) << 26) | (1 << 25) | TRANSLATION_L3;
    assert_eq!(
        decode_mmio(fetch, 0x1000, 0),
        Err(SyndromeError::NotDataAbort)
    );
    assert_eq!(
        decode_mmio(u64::from(ec::HVC64) << 26, 0x1000, 0),
        Err(SyndromeError::NotDataAbort)
    );
}

#[test]
fn zero_extending_loads_into_w_and_x() {
    // ldrb w / ldrh w / ldr w / ldr x: masked, never sign-extended.
    let raw = 0xFFFF_FFFF_FFFF_FF80;
    for (sas, sf, expected) in [
        (0, false, 0x80),
        (1, false, 0xFF80),
        (2, false, 0xFFFF_FF80),
        (3, true, raw),
    ] {
        let access = decode_mmio(dabt(sas, false, 2, sf, false, TRANSLATION_L3), 0, 0).unwrap();
        assert_eq!(access.load_value(raw), expected, "SAS {sas}");
    }
}

#[test]
fn sign_extending_loads_into_w_stop_at_bit_31() {
    // ldrsb w2 / ldrsh w2: sign-extended to 32 bits, upper half of x2 cleared.
    let byte = decode_mmio(dabt(0, true, 2, false, false, TRANSLATION_L3), 0, 0).unwrap();
    assert_eq!(byte.load_value(0x80), 0xFFFF_FF80);
    assert_eq!(byte.load_value(0x7F), 0x7F);
    assert_eq!(
        byte.load_value(0xAB_CD80),
        0xFFFF_FF80,
        "bits above the width are ignored"
    );
    let half = decode_mmio(dabt(1, true, 2, false, false, TRANSLATION_L3), 0, 0).unwrap();
    assert_eq!(half.load_value(0x8001), 0xFFFF_8001);
}

#[test]
fn sign_extending_loads_into_x_fill_64_bits() {
    // ldrsb x / ldrsh x / ldrsw x.
    for (sas, raw, expected) in [
        (0, 0x80, 0xFFFF_FFFF_FFFF_FF80),
        (1, 0x8000, 0xFFFF_FFFF_FFFF_8000),
        (2, 0x8000_0000, 0xFFFF_FFFF_8000_0000),
        (2, 0x7FFF_FFFF, 0x7FFF_FFFF),
    ] {
        let access = decode_mmio(dabt(sas, true, 7, true, false, TRANSLATION_L3), 0, 0).unwrap();
        assert!(access.sign_extend && access.sixty_four);
        assert_eq!(access.load_value(raw), expected, "SAS {sas} raw {raw:#x}");
    }
    // SSE with a 64-bit access changes nothing.
    let x = decode_mmio(dabt(3, true, 7, true, false, TRANSLATION_L3), 0, 0).unwrap();
    assert_eq!(x.load_value(0x8000_0000_0000_0000), 0x8000_0000_0000_0000);
}

#[test]
fn fault_status_classes_and_levels() {
    assert_eq!(
        FaultStatus::decode(0b00_0010),
        FaultStatus::AddressSize { level: 2 }
    );
    assert_eq!(
        FaultStatus::decode(0b00_0101),
        FaultStatus::Translation { level: 1 }
    );
    assert_eq!(
        FaultStatus::decode(0b00_1011),
        FaultStatus::AccessFlag { level: 3 }
    );
    assert_eq!(
        FaultStatus::decode(0b00_1111),
        FaultStatus::Permission { level: 3 }
    );
    assert_eq!(
        FaultStatus::decode(0b01_0000),
        FaultStatus::Other(0x10),
        "synchronous external abort"
    );
    assert_eq!(
        FaultStatus::decode(0b11_0000),
        FaultStatus::Other(0x30),
        "TLB conflict"
    );
    assert!(FaultStatus::Translation { level: 0 }.is_resolvable());
    assert!(FaultStatus::Permission { level: 3 }.is_resolvable());
    assert!(FaultStatus::AccessFlag { level: 3 }.is_resolvable());
    assert!(!FaultStatus::AddressSize { level: 0 }.is_resolvable());
    assert!(!FaultStatus::Other(0x10).is_resolvable());
}

#[test]
fn abort_flags_and_the_write_rule() {
    let store = Abort::decode(dabt(2, false, 0, false, true, TRANSLATION_L3)).unwrap();
    assert!(!store.instruction && store.wnr && store.needs_write());
    let load = Abort::decode(dabt(2, false, 0, false, false, TRANSLATION_L3)).unwrap();
    assert!(!load.needs_write());
    // Stage-1 walk: a write only for a permission fault, whatever WnR says.
    let walk_translation =
        Abort::decode(dabt(2, false, 0, false, true, TRANSLATION_L3) | S1PTW).unwrap();
    assert!(walk_translation.s1ptw && !walk_translation.needs_write());
    let walk_permission =
        Abort::decode(dabt(2, false, 0, false, false, 0b00_1111) | S1PTW).unwrap();
    assert!(walk_permission.needs_write());
    // Instruction fetches: never writes, no CM/WnR even if those bit positions are set.
    let fetch =
        Abort::decode((u64::from(ec::INSTRUCTION_ABORT_LOWER) << 26) | WNR | CM | 0b00_0110)
            .unwrap();
    assert!(fetch.instruction && !fetch.wnr && !fetch.cache_maintenance && !fetch.needs_write());
    assert_eq!(fetch.status, FaultStatus::Translation { level: 2 });
    let cm = Abort::decode(dabt(0, false, 0, false, true, TRANSLATION_L3) & !ISV | CM | EA | FNV)
        .unwrap();
    assert!(cm.cache_maintenance && cm.external && cm.far_not_valid);
    assert_eq!(Abort::decode(u64::from(ec::WFX) << 26), None);
}

#[test]
fn class_and_iss_fields() {
    assert_eq!(exception_class(0x93C0_8007), ec::DATA_ABORT_LOWER);
    assert_eq!(iss(0x93C0_8007), 0x01C0_8007);
    assert_eq!(exception_class(0x5A00_0000), ec::HVC64);
    assert_eq!(exception_class(0x5E00_0000), ec::SMC64);
}
