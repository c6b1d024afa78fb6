//! Dirty logging through the whole server state: get-and-clear bitmaps (whole and partial
//! ranges, a failed re-protect keeps the bits, re-enable starts clean) and range checks.

use super::*;

#[test]
fn get_and_clear_returns_the_bitmap_and_protects_again() {
    let (mut vm, mut backing, mut mapper) = vm_with(ram(4 * MIB, false, false));
    vm.enable_dirty_log(RAM, MIB, &mut mapper).unwrap();
    for page in [0u64, 63, 64, 255] {
        vm.handle_fault(write(RAM + page * 4096), &mut backing, &mut mapper)
            .unwrap();
    }
    let bitmap = vm.get_and_clear_dirty_log(RAM, MIB, &mut mapper).unwrap();
    assert_eq!(bitmap, [1 | 1 << 63, 1, 0, 1 << 63]);
    assert!(
        !mapper.translate(RAM + 255 * 4096).unwrap().1.writable,
        "protected again"
    );
    assert_eq!(
        vm.get_and_clear_dirty_log(RAM, MIB, &mut mapper),
        Ok([0; 4])
    );
    // A sub-range: bits count from its start.
    vm.handle_fault(permission_write(RAM + 70 * 4096), &mut backing, &mut mapper)
        .unwrap();
    assert_eq!(
        vm.get_and_clear_dirty_log(RAM + 64 * 4096, 8 * 4096, &mut mapper),
        Ok([1 << 6, 0, 0, 0])
    );
    // Write-protecting fails: the bits are kept, to be reported next time.
    vm.handle_fault(permission_write(RAM + 9 * 4096), &mut backing, &mut mapper)
        .unwrap();
    mapper.fail_next = 1;
    assert_eq!(
        vm.get_and_clear_dirty_log(RAM, MIB, &mut mapper),
        Err(MmuError::MappingRefused)
    );
    assert!(vm.dirty().is_dirty(RAM + 9 * 4096));
    assert_eq!(
        vm.get_and_clear_dirty_log(RAM, MIB, &mut mapper),
        Ok([1 << 9, 0, 0, 0])
    );
    // Re-enabling starts clean.
    vm.handle_fault(permission_write(RAM + 4096), &mut backing, &mut mapper)
        .unwrap();
    vm.enable_dirty_log(RAM, MIB, &mut mapper).unwrap();
    assert_eq!(
        vm.get_and_clear_dirty_log(RAM, MIB, &mut mapper),
        Ok([0; 4])
    );
}

#[test]
fn dirty_log_ranges_are_checked() {
    let (mut vm, _, mut mapper) = vm_with(ram(4 * MIB, false, false));
    let cases = [
        (0x2000_0000, MIB, MmuError::NoSlot),
        (RAM + 4 * MIB - 4096, 2 * 4096, MmuError::BadRange), // crosses the slot's end
        (RAM, MIB + 4096, MmuError::BadRange),                // longer than 256 pages
        (RAM + 1, 4096, MmuError::BadRange),
        (RAM, 0, MmuError::BadRange),
    ];
    for (ipa, len, error) in cases {
        assert_eq!(
            vm.enable_dirty_log(ipa, len, &mut mapper),
            Err(error),
            "{ipa:#x}+{len:#x}"
        );
    }
    vm.enable_dirty_log(RAM, MIB, &mut mapper).unwrap();
    assert_eq!(
        vm.enable_dirty_log(RAM + 4096, 4096, &mut mapper),
        Err(MmuError::BadRange),
        "overlap"
    );
    for window in 1..4 {
        vm.enable_dirty_log(RAM + window * MIB, MIB, &mut mapper)
            .unwrap();
    }
    assert_eq!(
        vm.get_and_clear_dirty_log(0x2000_0000, 4096, &mut mapper),
        Err(MmuError::BadRange)
    );
    vm.set_slot(
        1,
        SlotSpec {
            ipa: 0x8000_0000,
            ..ram(8 * MIB, false, false)
        },
        &mut mapper,
    )
    .unwrap();
    assert_eq!(
        vm.enable_dirty_log(0x8000_0000, MIB, &mut mapper),
        Err(MmuError::DirtyLogWindowsExhausted { limit: 4 })
    );
    // Enabling fails to write-protect: nothing is logged.
    vm.delete_slot(0, &mut mapper).unwrap();
    mapper.fail_next = 1;
    assert_eq!(
        vm.enable_dirty_log(0x8000_0000, MIB, &mut mapper),
        Err(MmuError::MappingRefused)
    );
    assert!(!vm.dirty().covers(0x8000_0000));
    assert!(!vm.slots().get(1).unwrap().dirty_logging);
}
