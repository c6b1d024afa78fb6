//! Dirty-log windows as a bounded resource of the VM: enables up to the limit, the next one
//! refused with the typed error and nothing changed, disable giving a window back, blocks
//! mapped again where logging stopped, and blocks everywhere no window touches, throughout.

use super::*;

const PAGE: u64 = 4096;
const BLOCK: u64 = 2 * MIB;
/// A 16 MiB slot: eight 2 MiB blocks.
const SLOT_LEN: u64 = 16 * MIB;

fn vm() -> (Vm, FakeBacking, FakeMapper) {
    vm_with(ram(SLOT_LEN, true, false))
}

/// One-page window number `n`, all in block 0 of the slot.
fn window(n: u64) -> u64 {
    RAM + n * 16 * PAGE
}

/// Faults a page of every block but block 0 (where the windows are) and expects each mapped as a
/// block.
fn blocks_map_as_blocks(vm: &mut Vm, backing: &mut FakeBacking, mapper: &mut FakeMapper) {
    for index in 1..SLOT_LEN / BLOCK {
        let ipa = RAM + index * BLOCK + 0x3000;
        assert_eq!(
            vm.handle_fault(write(ipa), backing, mapper),
            Ok(Resolution::Mapped(PageSize::Size2M)),
            "block {index}"
        );
        assert_eq!(mapper.leaf_size(ipa), Some(PageSize::Size2M));
        // Unmapped again, so that the next round faults it afresh.
        mapper.unmap(RAM + index * BLOCK, BLOCK).unwrap();
    }
}

#[test]
fn enables_stop_at_the_limit_with_a_typed_error_that_changes_nothing() {
    let (mut vm, mut backing, mut mapper) = vm();
    assert_eq!(vm.dirty().limit(), 4, "the test VM's W");
    for n in 0..4 {
        vm.enable_dirty_log(window(n), PAGE, &mut mapper).unwrap();
    }
    let calls = mapper.calls.len();
    let generation = vm.slots().generation();
    assert_eq!(
        vm.enable_dirty_log(window(4), PAGE, &mut mapper),
        Err(MmuError::DirtyLogWindowsExhausted { limit: 4 })
    );
    assert_eq!(mapper.calls.len(), calls, "nothing write-protected");
    assert_eq!(vm.slots().generation(), generation);
    assert!(!vm.dirty().covers(window(4)));
    assert_eq!(vm.dirty().in_use(), 4);
    // Re-enabling a window it has takes no new one: allowed at the limit, and clean again.
    vm.handle_fault(write(window(2)), &mut backing, &mut mapper)
        .unwrap();
    assert!(vm.dirty().is_dirty(window(2)));
    assert_eq!(vm.enable_dirty_log(window(2), PAGE, &mut mapper), Ok(()));
    assert!(!vm.dirty().is_dirty(window(2)));
    // The refusal reaches the vmm as that error, through the request handler.
    assert_eq!(
        vm.handle(
            mmu_api::Request::EnableDirtyLog {
                ipa: window(5),
                len: PAGE
            },
            &mut backing,
            &mut mapper
        ),
        Err(MmuError::DirtyLogWindowsExhausted { limit: 4 })
    );
}

#[test]
fn the_vms_limit_is_at_most_the_servers_capacity() {
    let (mut vm, _, mut mapper) = vm();
    assert_eq!(vm.set_dirty_log_limit(2), 2);
    vm.enable_dirty_log(window(0), PAGE, &mut mapper).unwrap();
    vm.enable_dirty_log(window(1), PAGE, &mut mapper).unwrap();
    assert_eq!(
        vm.enable_dirty_log(window(2), PAGE, &mut mapper),
        Err(MmuError::DirtyLogWindowsExhausted { limit: 2 }),
        "free places remain in the array, but the VM has its two"
    );
    assert_eq!(vm.set_dirty_log_limit(u16::MAX), 4, "clamped to W");
    vm.enable_dirty_log(window(2), PAGE, &mut mapper).unwrap();
    // Lowering the limit keeps what is enabled and refuses more.
    assert_eq!(vm.set_dirty_log_limit(0), 0);
    assert!(vm.dirty().covers(window(0)));
    assert_eq!(
        vm.enable_dirty_log(window(3), PAGE, &mut mapper),
        Err(MmuError::DirtyLogWindowsExhausted { limit: 0 })
    );
    // The server's own bound fits the wire's limit.
    assert!(MAX_DIRTY_LOG_WINDOWS <= usize::from(u16::MAX));
    assert!(usize::from(DEFAULT_DIRTY_LOG_WINDOWS) <= MAX_DIRTY_LOG_WINDOWS);
}

#[test]
fn disable_gives_the_window_back() {
    let (mut vm, _, mut mapper) = vm();
    for n in 0..4 {
        vm.enable_dirty_log(window(n), PAGE, &mut mapper).unwrap();
    }
    vm.disable_dirty_log(window(1), PAGE, &mut mapper).unwrap();
    assert!(!vm.dirty().covers(window(1)));
    assert_eq!(vm.dirty().in_use(), 3);
    assert_eq!(vm.enable_dirty_log(window(7), PAGE, &mut mapper), Ok(()));
    assert_eq!(
        vm.enable_dirty_log(window(8), PAGE, &mut mapper),
        Err(MmuError::DirtyLogWindowsExhausted { limit: 4 })
    );
    // Disable them all; the slot no longer counts as logged.
    for n in [0, 2, 3, 7] {
        assert!(vm.slots().get(0).unwrap().dirty_logging, "window {n} left");
        vm.disable_dirty_log(window(n), PAGE, &mut mapper).unwrap();
    }
    assert_eq!(vm.dirty().in_use(), 0);
    assert!(!vm.slots().get(0).unwrap().dirty_logging);
    for n in 10..14 {
        vm.enable_dirty_log(window(n), PAGE, &mut mapper).unwrap();
    }
}

#[test]
fn faults_in_a_disabled_window_map_blocks_again() {
    let (mut vm, mut backing, mut mapper) = vm();
    let logged = RAM + BLOCK + MIB / 2;
    vm.enable_dirty_log(logged, MIB, &mut mapper).unwrap();
    for page in [0, 5, 255] {
        assert_eq!(
            vm.handle_fault(write(logged + page * PAGE), &mut backing, &mut mapper),
            Ok(Resolution::Mapped(PageSize::Size4K))
        );
    }
    // A page of the same block outside the window: pages too, it shares the block.
    assert_eq!(
        vm.handle_fault(read(RAM + BLOCK), &mut backing, &mut mapper),
        Ok(Resolution::Mapped(PageSize::Size4K))
    );
    vm.disable_dirty_log(logged, MIB, &mut mapper).unwrap();
    assert_eq!(
        mapper.calls.last(),
        Some(&Call::Unmap(RAM + BLOCK, BLOCK)),
        "the window's block unmapped"
    );
    for ipa in [logged, logged + 255 * PAGE, RAM + BLOCK] {
        assert_eq!(mapper.translate(ipa), None, "{ipa:#x}");
    }
    let counters = vm.counters();
    assert_eq!(
        vm.handle_fault(write(logged + 5 * PAGE), &mut backing, &mut mapper),
        Ok(Resolution::Mapped(PageSize::Size2M))
    );
    assert_eq!(mapper.leaf_size(logged), Some(PageSize::Size2M));
    assert_eq!(
        mapper.translate(logged + 5 * PAGE + 8),
        Some((region_base(3) + BLOCK + MIB / 2 + 5 * PAGE + 8, RWX)),
        "the block maps the same backing"
    );
    assert!(
        !vm.dirty().is_dirty(logged + 5 * PAGE),
        "nothing logged any more"
    );
    assert_eq!(vm.counters().blocks_2m, counters.blocks_2m + 1);
    assert_eq!(vm.counters().pages_4k, counters.pages_4k);
}

#[test]
fn a_window_across_two_blocks_unmaps_both_and_a_shared_block_stays() {
    let (mut vm, mut backing, mut mapper) = vm();
    // Straddles blocks 1 and 2.
    let straddling = RAM + 2 * BLOCK - MIB / 2;
    vm.enable_dirty_log(straddling, MIB, &mut mapper).unwrap();
    // Another window in block 2.
    let neighbour = RAM + 2 * BLOCK + MIB;
    vm.enable_dirty_log(neighbour, 16 * PAGE, &mut mapper)
        .unwrap();
    for ipa in [straddling, straddling + MIB - PAGE, neighbour] {
        vm.handle_fault(write(ipa), &mut backing, &mut mapper)
            .unwrap();
    }
    let calls = mapper.calls.len();
    vm.disable_dirty_log(straddling, MIB, &mut mapper).unwrap();
    assert_eq!(
        mapper.calls[calls..],
        [Call::Unmap(RAM + BLOCK, BLOCK)],
        "block 2 still holds a window: left as it is"
    );
    assert_eq!(mapper.translate(straddling), None);
    assert!(mapper.translate(straddling + MIB - PAGE).is_some());
    assert_eq!(
        vm.handle_fault(read(straddling), &mut backing, &mut mapper),
        Ok(Resolution::Mapped(PageSize::Size2M))
    );
    assert_eq!(
        vm.handle_fault(read(straddling + MIB - 2 * PAGE), &mut backing, &mut mapper),
        Ok(Resolution::Mapped(PageSize::Size4K)),
        "block 2 is still logged"
    );
    assert!(
        vm.dirty().is_dirty(neighbour),
        "the other window keeps its bits"
    );
    vm.disable_dirty_log(neighbour, 16 * PAGE, &mut mapper)
        .unwrap();
    assert_eq!(
        mapper.calls.last(),
        Some(&Call::Unmap(RAM + 2 * BLOCK, BLOCK))
    );
}

#[test]
fn a_block_that_cannot_be_a_block_is_not_unmapped() {
    // Blocks not allowed: pages stay, nothing is unmapped.
    let (mut vm, mut backing, mut mapper) = vm_with(ram(SLOT_LEN, false, false));
    vm.enable_dirty_log(RAM, PAGE, &mut mapper).unwrap();
    vm.handle_fault(write(RAM), &mut backing, &mut mapper)
        .unwrap();
    let calls = mapper.calls.len();
    vm.disable_dirty_log(RAM, PAGE, &mut mapper).unwrap();
    assert_eq!(mapper.calls.len(), calls);
    assert!(mapper.translate(RAM).unwrap().1.writable);
    // A slot shorter than a block: no block fits, nothing is unmapped.
    let (mut vm, _, mut mapper) = vm_with(ram(MIB, true, false));
    vm.enable_dirty_log(RAM, PAGE, &mut mapper).unwrap();
    let calls = mapper.calls.len();
    vm.disable_dirty_log(RAM, PAGE, &mut mapper).unwrap();
    assert_eq!(mapper.calls.len(), calls);
}

#[test]
fn disable_checks_its_range_and_is_idempotent() {
    let (mut vm, _, mut mapper) = vm();
    vm.enable_dirty_log(window(1), 4 * PAGE, &mut mapper)
        .unwrap();
    let cases = [
        (0x2000_0000, PAGE, MmuError::NoSlot),
        (RAM + SLOT_LEN - PAGE, 2 * PAGE, MmuError::BadRange), // crosses the slot's end
        (RAM, MIB + PAGE, MmuError::BadRange),                 // longer than 256 pages
        (window(1) + 1, PAGE, MmuError::BadRange),
        (window(1), 0, MmuError::BadRange),
        (window(1), PAGE, MmuError::BadRange), // part of the window
        (window(1) - PAGE, 2 * PAGE, MmuError::BadRange), // overlaps its start
        (window(1), 5 * PAGE, MmuError::BadRange), // covers it and more
    ];
    for (ipa, len, error) in cases {
        assert_eq!(
            vm.disable_dirty_log(ipa, len, &mut mapper),
            Err(error),
            "{ipa:#x}+{len:#x}"
        );
    }
    assert!(vm.dirty().covers(window(1)), "refusals change nothing");
    // A range nothing logs: done, nothing touched (a repeat after a restart answers the same).
    let calls = mapper.calls.len();
    assert_eq!(vm.disable_dirty_log(window(3), PAGE, &mut mapper), Ok(()));
    assert_eq!(mapper.calls.len(), calls);
    vm.disable_dirty_log(window(1), 4 * PAGE, &mut mapper)
        .unwrap();
    assert_eq!(
        vm.disable_dirty_log(window(1), 4 * PAGE, &mut mapper),
        Ok(())
    );
}

#[test]
fn a_failed_unmap_keeps_the_window() {
    let (mut vm, mut backing, mut mapper) = vm();
    vm.enable_dirty_log(RAM, MIB, &mut mapper).unwrap();
    vm.handle_fault(write(RAM + PAGE), &mut backing, &mut mapper)
        .unwrap();
    mapper.fail_next = 1;
    assert_eq!(
        vm.disable_dirty_log(RAM, MIB, &mut mapper),
        Err(MmuError::MappingRefused)
    );
    assert!(vm.dirty().is_dirty(RAM + PAGE), "still logged, bits kept");
    assert_eq!(vm.dirty().in_use(), 1);
    assert!(vm.slots().get(0).unwrap().dirty_logging);
    vm.disable_dirty_log(RAM, MIB, &mut mapper).unwrap();
    assert_eq!(vm.dirty().in_use(), 0);
}

#[test]
fn faults_outside_logged_windows_map_blocks_throughout() {
    let (mut vm, mut backing, mut mapper) = vm();
    blocks_map_as_blocks(&mut vm, &mut backing, &mut mapper);
    for n in 0..4 {
        vm.enable_dirty_log(window(n), PAGE, &mut mapper).unwrap();
        blocks_map_as_blocks(&mut vm, &mut backing, &mut mapper);
    }
    assert!(vm.enable_dirty_log(window(4), PAGE, &mut mapper).is_err());
    blocks_map_as_blocks(&mut vm, &mut backing, &mut mapper);
    // Only block 0, which holds the windows, is mapped with pages.
    assert_eq!(
        vm.handle_fault(read(RAM + BLOCK - PAGE), &mut backing, &mut mapper),
        Ok(Resolution::Mapped(PageSize::Size4K))
    );
    for n in 0..4 {
        vm.disable_dirty_log(window(n), PAGE, &mut mapper).unwrap();
        blocks_map_as_blocks(&mut vm, &mut backing, &mut mapper);
    }
    assert_eq!(
        vm.handle_fault(read(RAM + BLOCK - PAGE), &mut backing, &mut mapper),
        Ok(Resolution::Mapped(PageSize::Size2M)),
        "every window gone: block 0 is a block again"
    );
}

#[test]
fn a_window_spanning_two_free_blocks_unmaps_both_and_no_more() {
    let (mut vm, mut backing, mut mapper) = vm();
    // Blocks 2 and 3 mapped as blocks first; block 1 too, the window's neighbour below.
    for index in 1..4 {
        vm.handle_fault(read(RAM + index * BLOCK), &mut backing, &mut mapper)
            .unwrap();
    }
    let straddling = RAM + 3 * BLOCK - MIB / 2;
    vm.enable_dirty_log(straddling, MIB, &mut mapper).unwrap();
    let calls = mapper.calls.len();
    vm.disable_dirty_log(straddling, MIB, &mut mapper).unwrap();
    assert_eq!(
        mapper.calls[calls..],
        [
            Call::Unmap(RAM + 2 * BLOCK, BLOCK),
            Call::Unmap(RAM + 3 * BLOCK, BLOCK)
        ],
        "both blocks it touches, in order"
    );
    // A window ending exactly at a block boundary touches only the block below it.
    let ending = RAM + 2 * BLOCK - MIB;
    vm.enable_dirty_log(ending, MIB, &mut mapper).unwrap();
    let calls = mapper.calls.len();
    vm.disable_dirty_log(ending, MIB, &mut mapper).unwrap();
    assert_eq!(mapper.calls[calls..], [Call::Unmap(RAM + BLOCK, BLOCK)]);
}

#[test]
fn windows_that_only_meet_a_block_at_its_edge_leave_it_a_block() {
    let (mut vm, mut backing, mut mapper) = vm();
    // One window ends where block 2 starts, another starts where block 2 ends.
    let below = RAM + 2 * BLOCK - 16 * PAGE;
    let above = RAM + 3 * BLOCK;
    vm.enable_dirty_log(below, 16 * PAGE, &mut mapper).unwrap();
    vm.enable_dirty_log(above, 16 * PAGE, &mut mapper).unwrap();
    assert_eq!(
        vm.handle_fault(read(RAM + 2 * BLOCK + PAGE), &mut backing, &mut mapper),
        Ok(Resolution::Mapped(PageSize::Size2M)),
        "block 2 holds no logged page"
    );
    // A window inside block 2, disabled: the neighbours touching its edges do not keep it.
    let inside = RAM + 2 * BLOCK + MIB;
    vm.enable_dirty_log(inside, PAGE, &mut mapper).unwrap();
    let calls = mapper.calls.len();
    vm.disable_dirty_log(inside, PAGE, &mut mapper).unwrap();
    assert_eq!(mapper.calls[calls..], [Call::Unmap(RAM + 2 * BLOCK, BLOCK)]);
    // A disable of a range that only touches a window's edge is no disable of it.
    assert_eq!(
        vm.disable_dirty_log(above - PAGE, PAGE, &mut mapper),
        Ok(())
    );
    assert!(vm.dirty().covers(above));
}
