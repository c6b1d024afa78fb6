//! The edges of a memory slot: its end is the first IPA that is not memory, a block is used only
//! where the aligned 2 MiB around the fault lies wholly inside, and slots may touch.

use super::*;

const PAGE: u64 = 4096;

#[test]
fn the_ipa_at_a_slots_end_is_not_memory() {
    let (mut vm, mut backing, mut mapper) = vm_with(ram(4 * MIB, false, false));
    let end = RAM + 4 * MIB;
    assert_eq!(
        vm.handle_fault(read(end - PAGE), &mut backing, &mut mapper),
        Ok(Resolution::Mapped(PageSize::Size4K))
    );
    for ipa in [end, end + 8] {
        assert_eq!(
            vm.handle_fault(write(ipa), &mut backing, &mut mapper),
            Ok(Resolution::NotMemory),
            "{ipa:#x}"
        );
    }
    assert_eq!(mapper.translate(end), None);
}

#[test]
fn no_block_reaches_past_a_slot_that_ends_inside_its_2mib() {
    // 3 MiB: the first 2 MiB can be one block; the second holds only 1 MiB of the slot.
    let (mut vm, mut backing, mut mapper) = vm_with(ram(3 * MIB, true, false));
    let second = RAM + 2 * MIB + 0x1000;
    assert_eq!(
        vm.handle_fault(read(second), &mut backing, &mut mapper),
        Ok(Resolution::Mapped(PageSize::Size4K))
    );
    assert_eq!(
        backing.calls,
        vec![(3, 2 * MIB + 0x1000, PageSize::Size4K)],
        "asked for a page only"
    );
    assert_eq!(
        mapper.translate(RAM + 3 * MIB),
        None,
        "nothing past the slot"
    );
    assert_eq!(
        vm.handle_fault(read(RAM + 0x1000), &mut backing, &mut mapper),
        Ok(Resolution::Mapped(PageSize::Size2M))
    );
}

#[test]
fn slots_may_touch_on_either_side() {
    let (mut vm, _, mut mapper) = vm_with(ram(4 * MIB, false, false));
    let below = SlotSpec {
        ipa: RAM - MIB,
        len: MIB,
        ..ram(4 * MIB, false, false)
    };
    let above = SlotSpec {
        ipa: RAM + 4 * MIB,
        ..below
    };
    assert_eq!(vm.set_slot(1, below, &mut mapper), Ok(()));
    assert_eq!(vm.set_slot(2, above, &mut mapper), Ok(()));
    let overlapping = SlotSpec {
        ipa: RAM + 4 * MIB - PAGE,
        ..below
    };
    assert_eq!(
        vm.set_slot(3, overlapping, &mut mapper),
        Err(MmuError::BadRange)
    );
}
