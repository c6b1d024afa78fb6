//! Memory invocations at their edges: which frames an unmap forgets, which arguments map, unmap
//! and write-protect accept, and which frames a revocation takes.

use super::{MockMemory, SERVER, error_of, invoke, pools, put_cap, system, with_memory};
use crate::cap::{Cap, FrameCap};
use crate::memory::{TABLES_PER_MAPPING, VSpaceInfo};
use crate::stage2::IPA_LIMIT;
use crate::system::{Effect, System};
use abi::InvocationLabel::{FrameCarve, FrameRevoke, VSpaceMap, VSpaceUnmap, VSpaceWriteProtect};
use abi::KernelError;
use abi::vm::MapAttributes;

/// SERVER's slots from `with_memory`: the 4 MiB RAM range at 0x4000_0000, guest VSpace 0.
const RANGE: u64 = 8;
const VSPACE: u64 = 9;
/// SERVER's slot for guest VSpace 1.
const OTHER_VSPACE: u64 = 7;
const PAGE: u64 = 4096;
const BLOCK: u64 = 2 << 20;

/// Carves a frame of `size` at `offset` of the range into SERVER's slot `slot`.
fn carve(system: &mut System<'_>, memory: &mut MockMemory, offset: u64, size: u64, slot: u64) {
    invoke(
        system,
        memory,
        SERVER,
        RANGE,
        FrameCarve,
        [offset, size, slot, 0],
    );
    assert_eq!(
        error_of(system, SERVER),
        None,
        "carve {size:#x} at {offset:#x}"
    );
}

fn map(
    system: &mut System<'_>,
    memory: &mut MockMemory,
    vspace: u64,
    frame: u64,
    ipa: u64,
) -> Result<Effect, KernelError> {
    let attributes = MapAttributes::WRITE.0;
    let effect = invoke(
        system,
        memory,
        SERVER,
        vspace,
        VSpaceMap,
        [frame, ipa, attributes, 0],
    );
    error_of(system, SERVER).map_or(Ok(effect), Err)
}

/// Where the frame capability in SERVER's `slot` records itself mapped.
fn mapping_of(system: &System<'_>, slot: u64) -> Option<(u16, u32)> {
    match system.lookup(SERVER, slot) {
        Ok(Cap::Frame(frame)) => frame.mapping(),
        other => panic!("slot {slot} holds {other:?}"),
    }
}

/// Invokes `label` on VSpace 0 with two arguments and returns the effect or the error.
fn vspace_op(
    system: &mut System<'_>,
    memory: &mut MockMemory,
    label: abi::InvocationLabel,
    ipa: u64,
    size: u64,
) -> Result<Effect, KernelError> {
    let effect = invoke(system, memory, SERVER, VSPACE, label, [ipa, size, 0, 0]);
    error_of(system, SERVER).map_or(Ok(effect), Err)
}

#[test]
fn unmap_is_work_on_the_table_alone_and_leaves_every_record_as_it_was() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut vspaces = [VSpaceInfo { free_tables: 8 }; 2];
    let mut system = system(&mut pools);
    system.vspaces = &mut vspaces;
    with_memory(&mut system);
    put_cap(&mut system, SERVER, OTHER_VSPACE, Cap::VSpace { vspace: 1 });
    // Four 4 KiB frames: three in VSpace 0 at pages 1, 2 and 0, one in VSpace 1 at page 1.
    for (slot, vspace, ipa) in [
        (10, VSPACE, PAGE),
        (11, VSPACE, 2 * PAGE),
        (12, VSPACE, 0),
        (13, OTHER_VSPACE, PAGE),
    ] {
        carve(&mut system, &mut memory, slot * PAGE, PAGE, slot);
        map(&mut system, &mut memory, vspace, slot, ipa).unwrap();
    }
    let recorded = [Some((0, 1)), Some((0, 2)), Some((0, 0)), Some((1, 1))];

    // No capability is visited (no scan on the fault path): the records of what went stay,
    // stale, and a deletion through one is checked against the table (tests/frames).
    let effect = vspace_op(&mut system, &mut memory, VSpaceUnmap, PAGE, PAGE);
    assert_eq!(
        effect,
        Ok(Effect::Unmap {
            vspace: 0,
            ipa: PAGE,
            size: PAGE
        })
    );
    vspace_op(&mut system, &mut memory, VSpaceUnmap, 0, BLOCK).unwrap();
    let mappings = [10, 11, 12, 13].map(|slot| mapping_of(&system, slot));
    assert_eq!(mappings, recorded);
    let delete = abi::InvocationLabel::CNodeDelete;
    assert_eq!(
        invoke(
            &mut system,
            &mut memory,
            SERVER,
            abi::CNODE_SLOT,
            delete,
            [10, 0, 0, 0]
        ),
        Effect::UnmapFrame {
            vspace: 0,
            ipa: PAGE,
            size: PAGE,
            pa: 0x4000_0000 + 10 * PAGE
        },
        "the deletion names the frame, so a stale record cannot remove another frame's page"
    );
}

#[test]
fn unmap_takes_one_aligned_page_or_block_below_the_ipa_limit() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    with_memory(&mut system);
    let mut unmap = |ipa, size| vspace_op(&mut system, &mut memory, VSpaceUnmap, ipa, size);
    for (ipa, size) in [(PAGE, PAGE), (BLOCK, BLOCK), (IPA_LIMIT - PAGE, PAGE)] {
        assert_eq!(
            unmap(ipa, size),
            Ok(Effect::Unmap {
                vspace: 0,
                ipa,
                size
            })
        );
    }
    // The error names the size (index 1) unless the address is misaligned for it (index 0).
    let (size_or_range, misaligned) = (
        KernelError::InvalidArgument { index: 1 },
        KernelError::InvalidArgument { index: 0 },
    );
    assert_eq!(
        unmap(2 * PAGE, 2 * PAGE),
        Err(size_or_range),
        "neither 4 KiB nor 2 MiB"
    );
    assert_eq!(unmap(0x800, PAGE), Err(misaligned));
    assert_eq!(unmap(PAGE, BLOCK), Err(misaligned));
    assert_eq!(
        unmap(IPA_LIMIT, PAGE),
        Err(size_or_range),
        "beyond the IPA space"
    );
}

#[test]
fn write_protect_takes_a_page_aligned_range_that_ends_inside_the_ipa_space() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    with_memory(&mut system);
    let mut protect = |ipa, len| vspace_op(&mut system, &mut memory, VSpaceWriteProtect, ipa, len);
    for (ipa, len) in [(PAGE, 3 * PAGE), (IPA_LIMIT - PAGE, PAGE), (0, 0)] {
        assert_eq!(
            protect(ipa, len),
            Ok(Effect::WriteProtect {
                vspace: 0,
                ipa,
                len
            })
        );
    }
    let refused = Err(KernelError::InvalidArgument { index: 0 });
    assert_eq!(protect(0x800, PAGE), refused, "misaligned start");
    assert_eq!(protect(PAGE, 0x800), refused, "misaligned length");
    assert_eq!(
        protect(IPA_LIMIT - PAGE, 2 * PAGE),
        refused,
        "ends beyond the IPA space"
    );
    assert_eq!(
        protect(u64::MAX - (PAGE - 1), PAGE),
        refused,
        "wraps around"
    );
}

#[test]
fn map_reaches_the_last_page_below_the_ipa_limit_and_no_further() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut vspaces = [VSpaceInfo {
        free_tables: TABLES_PER_MAPPING,
    }];
    let mut system = system(&mut pools);
    system.vspaces = &mut vspaces;
    with_memory(&mut system);
    carve(&mut system, &mut memory, 0, PAGE, 10);
    carve(&mut system, &mut memory, PAGE, PAGE, 11);
    assert_eq!(
        map(&mut system, &mut memory, VSPACE, 10, IPA_LIMIT),
        Err(KernelError::InvalidArgument { index: 1 })
    );
    let effect = map(&mut system, &mut memory, VSPACE, 11, IPA_LIMIT - PAGE);
    assert!(
        matches!(effect, Ok(Effect::Map { ipa, .. }) if ipa == IPA_LIMIT - PAGE),
        "exactly the tables one mapping may need are enough: {effect:?}"
    );
}

#[test]
fn a_mapped_frame_may_be_mapped_again_in_place_but_not_elsewhere() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut vspaces = [VSpaceInfo { free_tables: 8 }];
    let mut system = system(&mut pools);
    system.vspaces = &mut vspaces;
    with_memory(&mut system);
    carve(&mut system, &mut memory, 0, PAGE, 10);
    map(&mut system, &mut memory, VSPACE, 10, 5 * PAGE).unwrap();
    assert!(
        map(&mut system, &mut memory, VSPACE, 10, 5 * PAGE).is_ok(),
        "the same place again (a permission change) is allowed"
    );
    assert_eq!(mapping_of(&system, 10), Some((0, 5)));
    assert_eq!(
        map(&mut system, &mut memory, VSPACE, 10, 6 * PAGE),
        Err(KernelError::InvalidArgument { index: 0 })
    );
    // Unmapped, the record stays (decode cannot see the table, and its translation might be
    // live): the capability still maps only there (a copy would map elsewhere).
    vspace_op(&mut system, &mut memory, VSpaceUnmap, 5 * PAGE, PAGE).unwrap();
    assert_eq!(
        map(&mut system, &mut memory, VSPACE, 10, 6 * PAGE),
        Err(KernelError::InvalidArgument { index: 0 })
    );
    assert!(map(&mut system, &mut memory, VSPACE, 10, 5 * PAGE).is_ok());
}

#[test]
fn a_carved_frame_can_be_neither_carved_from_nor_revoked() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    with_memory(&mut system);
    carve(&mut system, &mut memory, 0, BLOCK, 10);
    for label in [FrameCarve, FrameRevoke] {
        let effect = invoke(
            &mut system,
            &mut memory,
            SERVER,
            10,
            label,
            [0, PAGE, 11, 0],
        );
        assert_eq!(effect, Effect::None);
        assert_eq!(
            error_of(&system, SERVER),
            Some(KernelError::IllegalOperation {
                label: label as u64
            })
        );
    }
    assert!(system.lookup(SERVER, 11).is_err(), "nothing was carved");
}

#[test]
fn carving_checks_the_physical_alignment_of_the_frame_not_only_the_offset() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    // A range that starts one page past a 2 MiB boundary: no 2 MiB frame is aligned in it.
    put_cap(
        &mut system,
        SERVER,
        RANGE,
        Cap::Frame(FrameCap::new(0, 0x4_0001, 1024, false)),
    );
    invoke(
        &mut system,
        &mut memory,
        SERVER,
        RANGE,
        FrameCarve,
        [0, BLOCK, 10, 0],
    );
    assert_eq!(
        error_of(&system, SERVER),
        Some(KernelError::InvalidArgument { index: 0 })
    );
    // A range at physical address 0 carves at its offsets.
    put_cap(
        &mut system,
        SERVER,
        RANGE,
        Cap::Frame(FrameCap::new(0, 0, 1024, false)),
    );
    carve(&mut system, &mut memory, 3 * PAGE, PAGE, 10);
    assert!(matches!(
        system.lookup(SERVER, 10),
        Ok(Cap::Frame(frame)) if frame.first_page == 3 && frame.pages == 1
    ));
}

#[test]
fn revoke_frames_takes_the_carved_frames_of_its_region_that_overlap_its_pages_only() {
    let mut pools = pools(&[100, 50, 40]);
    let mut system = system(&mut pools);
    let frames = [
        (10, FrameCap::new(0, 10, 1, true)), // ends where the range starts: stays
        (11, FrameCap::new(0, 11, 1, true)), // inside: revoked
        (12, FrameCap::new(0, 12, 1, true)), // starts where the range ends: stays
        (13, FrameCap::new(1, 11, 1, true)), // another region: stays
        (14, FrameCap::new(0, 0, 1024, false)), // the range itself: stays
    ];
    for (slot, frame) in frames {
        put_cap(&mut system, SERVER, slot, Cap::Frame(frame));
    }
    let revoked = system.revoke_frames(0, 11, 1, |_, _, _, _| panic!("nothing was mapped"));
    assert_eq!(revoked, 1);
    let left: std::vec::Vec<bool> = (10..15)
        .map(|slot| system.lookup(SERVER, slot).is_ok())
        .collect();
    assert_eq!(left, [true, false, true, true, true]);
}

#[test]
fn map_names_what_is_wrong_with_the_frame_slot() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    with_memory(&mut system);
    // An empty slot is no capability; a capability of another kind is the wrong type; a slot
    // past the CNode is no slot at all.
    assert_eq!(
        map(&mut system, &mut memory, VSPACE, 12, 0x4000_0000),
        Err(KernelError::InvalidCapability { slot: 12 })
    );
    assert_eq!(
        map(&mut system, &mut memory, VSPACE, VSPACE, 0x4000_0000),
        Err(KernelError::WrongObjectType { slot: VSPACE })
    );
    assert!(matches!(
        map(&mut system, &mut memory, VSPACE, u64::MAX, 0x4000_0000),
        Err(KernelError::InvalidCapability { .. })
    ));
}
