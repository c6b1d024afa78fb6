//! Host tests of the MMIO marker layout, the generation rules, route validation and the
//! fast-path decision for every class of syndrome.

use super::*;
use crate::stage2::descriptor::{Entry, block_descriptor, decode as decode_entry};
use crate::stage2::{Attributes, MemoryKind, page_descriptor};
use proptest::prelude::*;

const RAM: Attributes = Attributes {
    writable: true,
    executable: true,
    kind: MemoryKind::Normal,
};
const DEVICE: Attributes = Attributes {
    writable: true,
    executable: false,
    kind: MemoryKind::Device,
};

proptest! {
    #[test]
    fn markers_round_trip(route in 0u8..=255, generation in any::<u64>()) {
        let marker = encode(route, generation);
        prop_assert_eq!(marker & 1, 0, "invalid: the hardware always faults");
        prop_assert_eq!(
            decode(marker),
            Some(Marker { route, generation: generation & GENERATION_MASK })
        );
        for level in Level::ALL {
            prop_assert_eq!(decode_entry(marker, level), Entry::Invalid);
        }
    }

    #[test]
    fn no_valid_descriptor_is_a_marker(descriptor in any::<u64>()) {
        prop_assert_eq!(decode(descriptor | 1), None);
    }
}

#[test]
fn the_layout_is_the_documented_one() {
    assert_eq!(encode(0, 0), 0x4D4E);
    assert_eq!(encode(0x0F, 0), 0x000F_4D4E);
    assert_eq!(encode(0xA5, 0xAB_CDEF_0123), 0xABCD_EF01_23A5_4D4E);
    assert_eq!(
        encode(1, GENERATION_MASK + 2),
        encode(1, 1),
        "only 40 bits kept"
    );
}

#[test]
fn nothing_the_kernel_writes_for_memory_decodes_as_a_marker() {
    for descriptor in [
        0,
        page_descriptor(0x4000_0000, RAM),
        page_descriptor(0x0900_0000, DEVICE),
        page_descriptor(0x4D4E_0000, RAM),
        block_descriptor(0x4020_0000, Level::Two, RAM),
        block_descriptor(0x4000_0000, Level::One, RAM),
        crate::stage2::descriptor::table_descriptor(0x8000_1000),
        crate::stage2::descriptor::without_write(page_descriptor(0x4000_0000, RAM)),
    ] {
        assert_eq!(decode(descriptor), None, "{descriptor:#x}");
        assert!(!is_marker(descriptor), "{descriptor:#x}");
    }
    // A tag with one bit different is not a marker.
    for bit in 0..16 {
        assert!(!is_marker(TAG ^ (1 << bit)), "bit {bit}");
    }
}

#[test]
fn markers_match_only_the_live_generation() {
    let mut state = MmioState::new(true);
    let old = decode(encode(0, state.generation())).unwrap();
    assert!(state.is_current(old));
    state.bump();
    assert_eq!(state.generation(), 1);
    assert!(!state.is_current(old));
    assert!(state.is_current(decode(encode(0, 1)).unwrap()));
}

#[test]
fn no_marker_matches_while_an_update_is_in_progress_and_the_end_is_a_fresh_generation() {
    let mut state = MmioState::new(true);
    let before = decode(encode(3, 0)).unwrap();
    state.begin_update();
    assert!(state.updating());
    assert_eq!(
        state.live_generation(),
        None,
        "nothing to store while in flux"
    );
    assert!(!state.is_current(before));
    state.begin_update();
    assert!(state.updating(), "a second begin keeps the bracket open");
    assert!(state.end_update());
    assert!(!state.updating());
    assert_eq!(state.generation(), 1);
    assert_eq!(state.live_generation(), Some(1));
    assert!(!state.is_current(before));
    assert!(!state.end_update(), "no bracket open: refused");
    assert_eq!(state.generation(), 1, "and nothing changed");
}

#[test]
fn a_wrap_zaps_every_marker_before_any_matches_again() {
    let mut state = MmioState::new(true).with_generation(GENERATION_MASK);
    let ancient = decode(encode(0, 0)).unwrap();
    let last = decode(encode(0, GENERATION_MASK)).unwrap();
    assert!(state.is_current(last));
    state.bump();
    assert_eq!(state.generation(), GENERATION_MASK + 1);
    assert_eq!(state.zap_pending(), Some(0));
    assert_eq!(state.live_generation(), None);
    assert!(!state.is_current(ancient), "same stored bits, but not yet");
    assert!(state.zapped(0x4000_0000), "half way: still pending");
    assert_eq!(state.zap_pending(), Some(0x4000_0000));
    assert!(!state.is_current(ancient));
    assert!(!state.zapped(IPA_LIMIT));
    assert_eq!(state.live_generation(), Some(0));
    assert!(state.is_current(ancient), "every old marker is gone by now");
    assert!(!state.zapped(0x1000), "no zap pending: nothing starts one");
    assert_eq!(state.zap_pending(), None);
}

#[test]
fn a_wrap_during_an_update_needs_both_the_end_and_the_zap() {
    let mut state = MmioState::new(true).with_generation(GENERATION_MASK);
    state.begin_update();
    state.bump(); // a route set during the bracket wraps
    assert!(!state.zapped(IPA_LIMIT));
    assert_eq!(state.live_generation(), None, "the bracket is still open");
    assert!(state.end_update());
    assert_eq!(state.live_generation(), Some(1));
}

const PAGE: u64 = 4096;

fn route(base: u64, size: u64) -> MmioRoute {
    MmioRoute {
        base,
        size,
        endpoint: 1,
        badge: 0x77,
        endpoint_generation: 2,
        doorbell: None,
    }
}

#[test]
fn routes_are_checked_argument_by_argument() {
    let mut state = MmioState::new(true);
    state.set_route(2, route(0x0900_0000, 2 * PAGE));
    let range = KernelError::RangeError {
        index: 0,
        min: 0,
        max: 15,
    };
    let base = KernelError::InvalidArgument { index: 2 };
    let size = KernelError::InvalidArgument { index: 3 };
    for (index, b, s, expected) in [
        (16, 0x1000_0000, PAGE, Err(range)),
        (u64::MAX, 0x1000_0000, PAGE, Err(range)),
        (0, 0x1000_0010, PAGE, Err(base)),
        (0, IPA_LIMIT, PAGE, Err(base)),
        (0, 0x1000_0000, 0, Err(size)),
        (0, 0x1000_0000, PAGE + 4, Err(size)),
        (0, IPA_LIMIT - PAGE, 2 * PAGE, Err(size)),
        (0, 0x1000_0000, !(PAGE - 1), Err(size)),
        // Overlaps with route 2 at 0x0900_0000 .. 0x0900_2000, reported against the base.
        (0, 0x0900_1000, PAGE, Err(base)),
        (0, 0x08FF_F000, 2 * PAGE, Err(base)),
        (0, 0x0900_1000, 4 * PAGE, Err(base)),
        (0, 0x0800_0000, 0x0200_0000, Err(base)),
        // Adjacent on either side, at the very top, and route 2 replacing itself: fine.
        (0, 0x08FF_F000, PAGE, Ok(())),
        (0, 0x0900_2000, PAGE, Ok(())),
        (0, IPA_LIMIT - PAGE, PAGE, Ok(())),
        (2, 0x0900_1000, 4 * PAGE, Ok(())),
        (15, 0, PAGE, Ok(())),
    ] {
        assert_eq!(
            state.check_route(index, b, s),
            expected,
            "route {index} at {b:#x} size {s:#x}"
        );
    }
}

#[test]
fn doorbells_are_checked_against_their_route() {
    let mut state = MmioState::new(true);
    state.set_route(1, route(0x0A00_0000, PAGE));
    for (index, offset, expected) in [
        (
            16,
            0,
            Err(KernelError::RangeError {
                index: 0,
                min: 0,
                max: 15,
            }),
        ),
        (0, 0, Err(KernelError::InvalidArgument { index: 0 })),
        (1, PAGE, Err(KernelError::InvalidArgument { index: 1 })),
        (1, 0x52, Err(KernelError::InvalidArgument { index: 1 })),
        (1, 0x51, Err(KernelError::InvalidArgument { index: 1 })),
        (1, 0x50, Ok(())),
        (1, PAGE - 4, Ok(())),
    ] {
        assert_eq!(
            state.check_doorbell(index, offset),
            expected,
            "{index} {offset:#x}"
        );
    }
}

#[test]
fn routes_set_and_cleared_bump_the_generation_and_doorbells_do_not() {
    let mut state = MmioState::new(true);
    state.set_route(4, route(0x0900_0000, PAGE));
    assert_eq!(state.generation(), 1);
    assert_eq!(state.route(4), Some(&route(0x0900_0000, PAGE)));
    assert_eq!(state.route_covering(0x0900_0FFF), Some(4));
    assert_eq!(state.route_covering(0x0900_1000), None);
    assert_eq!(state.route_covering(0x08FF_FFFF), None);
    let doorbell = Doorbell {
        offset: 0x50,
        notification: 3,
        badge: 8,
    };
    state.set_doorbell(4, doorbell);
    assert_eq!(state.generation(), 1);
    assert_eq!(state.route(4).unwrap().doorbell, Some(doorbell));
    state.set_doorbell(5, doorbell);
    assert_eq!(state.route(5), None, "no route, no doorbell");
    state.set_route(4, route(0x0900_0000, PAGE));
    assert_eq!(
        state.route(4).unwrap().doorbell,
        None,
        "setting anew drops it"
    );
    state.clear_route(4);
    assert_eq!(state.generation(), 3);
    assert_eq!(state.route(4), None);
    assert_eq!(state.routes().count(), 0);
}

// ---- the decision ----

/// A lower-EL data abort at level 3 with a valid syndrome: SAS, SSE, SRT, SF, WnR as given.
fn syndrome(sas: u64, sse: bool, srt: u64, sf: bool, write: bool) -> u64 {
    (esr::EC_DATA_ABORT_LOWER << esr::EC_SHIFT)
        | esr::IL
        | esr::ISV
        | (sas << esr::SAS_SHIFT)
        | if sse { esr::SSE } else { 0 }
        | (srt << esr::SRT_SHIFT)
        | if sf { esr::SF } else { 0 }
        | if write { esr::WNR } else { 0 }
        | esr::DFSC_TRANSLATION_L3
}

const BASE: u64 = 0x0900_0000;
const EP: EndpointId = 1;
const NTFN: NotificationId = 2;

struct Fixture {
    state: MmioState,
    endpoint: EndpointStatus,
    registers: [u64; 32],
}

impl Fixture {
    fn new() -> Self {
        let mut state = MmioState::new(true);
        state.set_route(3, route(BASE, 2 * PAGE));
        let mut registers = [0; 32];
        for (index, register) in registers.iter_mut().enumerate() {
            *register = 0x0101_0101_0101_0101 * index as u64;
        }
        registers[31] = 0xDEAD; // SP sits after x30 in a context: never a store's source
        Self {
            state,
            endpoint: EndpointStatus {
                generation: 2,
                down: false,
            },
            registers,
        }
    }

    fn marker(&self) -> u64 {
        encode(3, self.state.live_generation().unwrap())
    }

    fn decide_at(&self, esr: u64, ipa: u64, found: (Level, u64)) -> Decision {
        let status = self.endpoint;
        decide(
            esr,
            ipa,
            found,
            &self.state,
            |ep| (ep == EP).then_some(status),
            &self.registers,
        )
    }

    fn decide(&self, esr: u64, ipa: u64) -> Decision {
        self.decide_at(esr, ipa, (Level::Three, self.marker()))
    }
}

fn call(offset: u64, width: u8, value: u64, access: MmioAccess) -> Decision {
    Decision::Call {
        endpoint: EP,
        badge: 0x77,
        access,
        message: MmioMessage {
            offset,
            width,
            value,
            write: access.write,
        },
    }
}

#[test]
fn a_word_read_calls_the_route_with_its_offset() {
    let fixture = Fixture::new();
    let access = MmioAccess {
        register: 5,
        width: 4,
        sign_extend: false,
        sixty_four: false,
        write: false,
    };
    assert_eq!(
        fixture.decide(syndrome(2, false, 5, false, false), BASE + 0x1018),
        call(0x1018, 4, 0, access)
    );
}

#[test]
fn a_write_carries_the_source_register_cut_to_its_width() {
    let fixture = Fixture::new();
    for (sas, width, value) in [
        (0, 1, 0x07),
        (1, 2, 0x0707),
        (2, 4, 0x0707_0707),
        (3, 8, 0x0707_0707_0707_0707),
    ] {
        let access = MmioAccess {
            register: 7,
            width,
            sign_extend: false,
            sixty_four: sas == 3,
            write: true,
        };
        assert_eq!(
            fixture.decide(syndrome(sas, false, 7, sas == 3, true), BASE + 8),
            call(8, width, value, access),
            "SAS {sas}"
        );
    }
}

#[test]
fn a_store_of_xzr_writes_zero_not_the_stack_pointer() {
    let fixture = Fixture::new();
    let access = MmioAccess {
        register: 31,
        width: 8,
        sign_extend: false,
        sixty_four: true,
        write: true,
    };
    assert_eq!(
        fixture.decide(syndrome(3, false, 31, true, true), BASE),
        call(0, 8, 0, access)
    );
}

#[test]
fn sign_extension_and_register_width_are_kept_for_the_reply() {
    let fixture = Fixture::new();
    let decided = fixture.decide(syndrome(0, true, 9, true, false), BASE);
    let Decision::Call { access, .. } = decided else {
        panic!("{decided:?}");
    };
    assert_eq!(
        access,
        MmioAccess {
            register: 9,
            width: 1,
            sign_extend: true,
            sixty_four: true,
            write: false,
        }
    );
}

#[test]
fn acquire_release_accesses_take_the_fast_path() {
    let fixture = Fixture::new();
    let plain = fixture.decide(syndrome(2, false, 1, false, false), BASE);
    // AR is ISS bit 14 (ARM ARM D17.2.37).
    assert_eq!(
        fixture.decide(syndrome(2, false, 1, false, false) | 1 << 14, BASE),
        plain
    );
    assert_ne!(plain, Decision::Fallback);
}

#[test]
fn every_syndrome_the_fast_path_cannot_emulate_falls_back() {
    let fixture = Fixture::new();
    let good = syndrome(2, false, 1, false, true);
    let permission_l3 = (good & !esr::DFSC_MASK) | 0b00_1111;
    let access_flag_l3 = (good & !esr::DFSC_MASK) | 0b00_1011;
    let translation_l2 = (good & !esr::DFSC_MASK) | 0b00_0110;
    let same_el = (good & !(0x3F << esr::EC_SHIFT)) | (0x25 << esr::EC_SHIFT);
    let instruction = (good & !(0x3F << esr::EC_SHIFT)) | (0x20 << esr::EC_SHIFT);
    for (what, esr) in [
        ("ISV clear", good & !esr::ISV),
        ("16-bit instruction", good & !esr::IL),
        ("cache maintenance", good | esr::CM),
        ("stage-1 walk", good | esr::S1PTW),
        ("FAR not valid", good | esr::FNV),
        ("external abort", good | esr::EA),
        ("VNCR", good | esr::VNCR),
        ("ISS2 set", good | (1 << 32)),
        ("permission fault", permission_l3),
        ("access flag fault", access_flag_l3),
        ("translation fault at level 2", translation_l2),
        ("same-EL abort", same_el),
        ("instruction abort", instruction),
    ] {
        assert_eq!(fixture.decide(esr, BASE), Decision::Fallback, "{what}");
        assert_eq!(decode_syndrome(esr), None, "{what}");
    }
    assert_ne!(fixture.decide(good, BASE), Decision::Fallback);
}

#[test]
fn anything_but_a_current_marker_of_a_live_route_falls_back() {
    let mut fixture = Fixture::new();
    let read = syndrome(2, false, 1, false, false);
    let marker = fixture.marker();
    let stale = encode(3, fixture.state.generation() - 1);
    for (what, found) in [
        ("no descriptor", (Level::Three, 0)),
        (
            "a valid page",
            (Level::Three, page_descriptor(BASE, DEVICE)),
        ),
        ("stale generation", (Level::Three, stale)),
        ("marker above level 3", (Level::Two, marker)),
        ("no route", (Level::Three, encode(4, 1))),
        (
            "route index beyond the table",
            (Level::Three, encode(200, 1)),
        ),
    ] {
        assert_eq!(
            fixture.decide_at(read, BASE, found),
            Decision::Fallback,
            "{what}"
        );
    }
    assert_eq!(
        fixture.decide(read, BASE + 2 * PAGE),
        Decision::Fallback,
        "outside the route the marker names"
    );
    assert_eq!(
        fixture.decide(read, BASE - 4),
        Decision::Fallback,
        "below it"
    );
    let eight = syndrome(3, false, 1, true, false);
    assert_eq!(
        fixture.decide(eight, BASE + 2 * PAGE - 4),
        Decision::Fallback,
        "an access that runs past the route's end"
    );
    assert_ne!(
        fixture.decide(eight, BASE + 2 * PAGE - 8),
        Decision::Fallback
    );

    fixture.endpoint.generation = 3;
    assert_eq!(
        fixture.decide(read, BASE),
        Decision::Fallback,
        "server restarted"
    );
    fixture.endpoint = EndpointStatus {
        generation: 2,
        down: true,
    };
    assert_eq!(
        fixture.decide(read, BASE),
        Decision::Fallback,
        "server down"
    );
    fixture.endpoint.down = false;
    assert_ne!(fixture.decide(read, BASE), Decision::Fallback);

    let no_endpoint = decide(
        read,
        BASE,
        (Level::Three, marker),
        &fixture.state,
        |_| None,
        &fixture.registers,
    );
    assert_eq!(no_endpoint, Decision::Fallback, "no such endpoint");

    fixture.state.markers_enabled = false;
    assert_eq!(
        fixture.decide_at(read, BASE, (Level::Three, marker)),
        Decision::Fallback,
        "markers off"
    );
    fixture.state.markers_enabled = true;
    fixture.state.begin_update();
    assert_eq!(
        fixture.decide_at(read, BASE, (Level::Three, marker)),
        Decision::Fallback,
        "update in progress"
    );
}

#[test]
fn a_write_at_the_doorbell_rings_it_and_nothing_else_does() {
    let mut fixture = Fixture::new();
    fixture.state.set_doorbell(
        3,
        Doorbell {
            offset: 0x1050,
            notification: NTFN,
            badge: 0x40,
        },
    );
    let write = syndrome(2, false, 2, false, true);
    assert_eq!(
        fixture.decide(write, BASE + 0x1050),
        Decision::Doorbell {
            notification: NTFN,
            badge: 0x40
        }
    );
    let read = syndrome(2, false, 2, false, false);
    assert!(matches!(
        fixture.decide(read, BASE + 0x1050),
        Decision::Call { .. }
    ));
    assert!(matches!(
        fixture.decide(write, BASE + 0x1054),
        Decision::Call { .. }
    ));
    assert!(matches!(
        fixture.decide(write, BASE + 0x50),
        Decision::Call { .. }
    ));
    fixture.endpoint.down = true;
    assert_eq!(
        fixture.decide(write, BASE + 0x1050),
        Decision::Fallback,
        "a route whose server is down rings nothing"
    );
}

#[test]
fn syndrome_fields_decode_as_the_architecture_defines_them() {
    assert_eq!(
        decode_syndrome(syndrome(1, true, 30, false, true)),
        Some(MmioAccess {
            register: 30,
            width: 2,
            sign_extend: true,
            sixty_four: false,
            write: true,
        })
    );
    // A real one: `ldr w0, [x1]` faulting on an unmapped device page.
    assert_eq!(
        decode_syndrome(0x9380_0007),
        Some(MmioAccess {
            register: 0,
            width: 4,
            sign_extend: false,
            sixty_four: false,
            write: false,
        })
    );
}

#[test]
fn loads_are_cut_extended_and_narrowed_as_the_instruction_asks() {
    let access = |width, sign_extend, sixty_four| MmioAccess {
        register: 0,
        width,
        sign_extend,
        sixty_four,
        write: false,
    };
    for (width, sse, sf, value, expected) in [
        (1, false, false, 0xFFFF_FF80, 0x80),
        (1, true, true, 0x80, 0xFFFF_FFFF_FFFF_FF80),
        (1, true, false, 0x80, 0xFFFF_FF80),
        (1, true, true, 0x7F, 0x7F),
        (2, true, true, 0x1_8000, 0xFFFF_FFFF_FFFF_8000),
        (2, false, true, 0xABCD_1234, 0x1234),
        (4, true, true, 0x8000_0000, 0xFFFF_FFFF_8000_0000),
        (4, false, true, 0x1_8000_0000, 0x8000_0000),
        (4, false, false, 0xFFFF_FFFF_1234_5678, 0x1234_5678),
        (8, true, true, 0x8000_0000_0000_0001, 0x8000_0000_0000_0001),
        (8, false, false, 0x8000_0000_0000_0001, 1),
    ] {
        assert_eq!(
            load_result(access(width, sse, sf), value),
            expected,
            "width {width} sse {sse} sf {sf} value {value:#x}"
        );
    }
    assert_eq!(truncate(u64::MAX, 8), u64::MAX);
    assert_eq!(truncate(u64::MAX, 4), 0xFFFF_FFFF);
}
