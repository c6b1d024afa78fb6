//! Host tests of the stage-2 side: the planner's size choice, not-memory answers, the prejudgement
//! seen from the server (a repeated fault is a no-op in the kernel), dirty-on-success with injected
//! mapping failures, get-and-clear, bounded retry through the whole fault path, slot changes, and
//! the request dispatcher. `property` checks translation and dirty bits over random sequences.

mod dirty_log;
mod fakes;
mod held_frames;
mod property;
mod retry_yields;
mod slot_edges;
mod window_edges;
mod window_limit;

use super::*;
use fakes::{Call, FakeBacking, FakeMapper, region_base};
use kernel_core::stage2::{Action, Attributes, MapError, MemoryKind, Removed};
use mmu_api::SlotFlags;
use std::vec;

const RAM: u64 = 0x4000_0000;
const MIB: u64 = 1 << 20;

type Vm = Stage2<4, 4>;

fn ram(len: u64, allow_blocks: bool, read_only: bool) -> SlotSpec {
    SlotSpec {
        ipa: RAM,
        len,
        region: 3,
        offset: 0,
        flags: SlotFlags {
            read_only,
            allow_blocks,
        },
    }
}

fn vm_with(spec: SlotSpec) -> (Vm, FakeBacking, FakeMapper) {
    let mut vm = Vm::new();
    let mut mapper = FakeMapper::default();
    vm.set_slot(0, spec, &mut mapper).unwrap();
    let backing = FakeBacking {
        contiguous: true,
        ..Default::default()
    };
    (vm, backing, mapper)
}

fn read(ipa: u64) -> Fault {
    Fault {
        ipa,
        write: false,
        exec: false,
        permission: false,
    }
}

fn write(ipa: u64) -> Fault {
    Fault {
        write: true,
        ..read(ipa)
    }
}

fn permission_write(ipa: u64) -> Fault {
    Fault {
        permission: true,
        ..write(ipa)
    }
}

const RWX: Attributes = Attributes {
    writable: true,
    executable: true,
    kind: MemoryKind::Normal,
};

#[test]
fn no_slot_or_a_write_to_a_read_only_slot_is_not_memory() {
    let (mut vm, mut backing, mut mapper) = vm_with(ram(4 * MIB, true, true));
    for fault in [read(0x0900_0000), write(0x2000_0000), write(RAM + 0x1000)] {
        assert_eq!(
            vm.handle_fault(fault, &mut backing, &mut mapper),
            Ok(Resolution::NotMemory)
        );
    }
    assert!(
        backing.calls.is_empty() && mapper.maps() == 0,
        "nothing asked, nothing mapped"
    );
    assert_eq!(
        mapper.mmio_cached,
        [0x0900_0000, 0x2000_0000, RAM + 0x1000],
        "each not-memory page is offered to the kernel's MMIO cache, page aligned"
    );
    // An instruction fetch from a hole is never cached as MMIO.
    let fetch = Fault {
        exec: true,
        ..read(0x0900_0400)
    };
    assert_eq!(
        vm.handle_fault(fetch, &mut backing, &mut mapper),
        Ok(Resolution::NotMemory)
    );
    assert_eq!(mapper.mmio_cached.len(), 3);
    // A read of the ROM maps it read-only.
    vm.handle_fault(read(RAM + 0x1000), &mut backing, &mut mapper)
        .unwrap();
    assert!(!mapper.translate(RAM + 0x1000).unwrap().1.writable);
}

#[test]
fn the_size_is_a_block_only_where_slot_alignment_and_backing_all_allow() {
    let block = Resolution::Mapped(PageSize::Size2M);
    let page = Resolution::Mapped(PageSize::Size4K);
    // Allowed, aligned, contiguous: a block, mapping the block's frame.
    let (mut vm, mut backing, mut mapper) = vm_with(ram(5 * MIB, true, false));
    assert_eq!(
        vm.handle_fault(read(RAM + 0x2_3456), &mut backing, &mut mapper),
        Ok(block)
    );
    assert_eq!(
        mapper.translate(RAM + 0x1F_F000),
        Some((region_base(3) + 0x1F_F000, RWX))
    );
    // The last 1 MiB of the slot cannot hold a block.
    assert_eq!(
        vm.handle_fault(read(RAM + 0x41_0000), &mut backing, &mut mapper),
        Ok(page)
    );
    // The backing has no 2 MiB frame: 4 KiB.
    backing.contiguous = false;
    assert_eq!(
        vm.handle_fault(read(RAM + 0x20_0000), &mut backing, &mut mapper),
        Ok(page)
    );
    assert_eq!(
        backing.calls.last(),
        Some(&(3, 0x20_0000, PageSize::Size2M)),
        "asked for 2 MiB"
    );
    assert_eq!(
        vm.counters(),
        FaultCounters {
            pages_4k: 2,
            blocks_2m: 1,
            permission: 0
        }
    );
    // Blocks not allowed by the slot.
    let (mut vm, mut backing, mut mapper) = vm_with(ram(4 * MIB, false, false));
    assert_eq!(
        vm.handle_fault(read(RAM), &mut backing, &mut mapper),
        Ok(page)
    );
    assert_eq!(backing.calls, vec![(3, 0, PageSize::Size4K)]);
    // Region offset not congruent with the IPA modulo 2 MiB.
    let skewed = SlotSpec {
        offset: 0x1000,
        ..ram(4 * MIB, true, false)
    };
    let (mut vm, mut backing, mut mapper) = vm_with(skewed);
    assert_eq!(
        vm.handle_fault(read(RAM), &mut backing, &mut mapper),
        Ok(page)
    );
    assert_eq!(mapper.translate(RAM), Some((region_base(3) + 0x1000, RWX)));
    // A dirty-log window: pages in the 2 MiB block it touches, even outside the window; the
    // slot's other blocks stay blocks.
    let (mut vm, mut backing, mut mapper) = vm_with(ram(4 * MIB, true, false));
    vm.enable_dirty_log(RAM, MIB, &mut mapper).unwrap();
    assert_eq!(
        vm.handle_fault(read(RAM + 0x18_0000), &mut backing, &mut mapper),
        Ok(page)
    );
    assert_eq!(
        vm.handle_fault(read(RAM + 0x30_0000), &mut backing, &mut mapper),
        Ok(block)
    );
}

#[test]
fn a_repeated_fault_is_a_no_op_and_a_write_after_logging_breaks_the_block() {
    let (mut vm, mut backing, mut mapper) = vm_with(ram(4 * MIB, true, false));
    vm.handle_fault(read(RAM + 0x1000), &mut backing, &mut mapper)
        .unwrap();
    vm.handle_fault(read(RAM + 0x1000), &mut backing, &mut mapper)
        .unwrap();
    assert_eq!(mapper.actions, vec![Action::Install, Action::NoOp]);
    let before = mapper.tlb.len();
    // Enabling logging write-protects the block in place; the write maps a 4 KiB page over it.
    vm.enable_dirty_log(RAM, MIB, &mut mapper).unwrap();
    assert!(!mapper.translate(RAM + 0x1000).unwrap().1.writable);
    assert!(mapper.tlb.len() > before, "tightening invalidated");
    vm.handle_fault(permission_write(RAM + 0x1000), &mut backing, &mut mapper)
        .unwrap();
    assert_eq!(
        mapper.actions[2],
        Action::BreakBeforeMake {
            removes: Removed::Leaf
        }
    );
    assert_eq!(
        mapper.translate(RAM + 0x1008),
        Some((region_base(3) + 0x1008, RWX))
    );
    assert!(vm.dirty().is_dirty(RAM + 0x1000));
    assert_eq!(vm.counters().permission, 1);
}

#[test]
fn dirty_on_success_a_failed_mapping_marks_nothing() {
    let (mut vm, mut backing, mut mapper) = vm_with(ram(4 * MIB, true, false));
    vm.enable_dirty_log(RAM, MIB, &mut mapper).unwrap();
    let page = RAM + 0x5000;
    // A read maps read-only and marks nothing.
    vm.handle_fault(read(page), &mut backing, &mut mapper)
        .unwrap();
    assert!(!mapper.translate(page).unwrap().1.writable);
    assert!(!vm.dirty().is_dirty(page));
    // The write's mapping fails: the page stays clean and read-only, the fault is not counted.
    mapper.fail_next = 1;
    let counters = vm.counters();
    assert_eq!(
        vm.handle_fault(permission_write(page), &mut backing, &mut mapper),
        Err(MmuError::MappingRefused)
    );
    assert!(
        !vm.dirty().is_dirty(page),
        "not dirty after a failed mapping"
    );
    assert!(!mapper.translate(page).unwrap().1.writable);
    assert_eq!(vm.counters(), counters);
    // Out of tables is reported as out of memory, also without marking.
    mapper.fail_next = 1;
    mapper.error = MapError::OutOfTables;
    assert_eq!(
        vm.handle_fault(permission_write(page), &mut backing, &mut mapper),
        Err(MmuError::OutOfMemory)
    );
    assert!(!vm.dirty().is_dirty(page));
    // The retry succeeds: writable and dirty.
    vm.handle_fault(permission_write(page), &mut backing, &mut mapper)
        .unwrap();
    assert!(mapper.translate(page).unwrap().1.writable);
    assert!(vm.dirty().is_dirty(page));
}

#[test]
fn backing_retries_are_bounded_through_the_fault_path() {
    use crate::stage2::retry::MAX_ATTEMPTS;
    for k in 0..u32::from(MAX_ATTEMPTS) {
        let (mut vm, mut backing, mut mapper) = vm_with(ram(4 * MIB, false, false));
        backing.retries = k;
        assert_eq!(
            vm.handle_fault(read(RAM), &mut backing, &mut mapper),
            Ok(Resolution::Mapped(PageSize::Size4K)),
            "k = {k}"
        );
    }
    let (mut vm, mut backing, mut mapper) = vm_with(ram(4 * MIB, false, false));
    backing.retries = u32::from(MAX_ATTEMPTS);
    let response = vm.handle(
        mmu_api::Request::HandleStage2Fault {
            ipa: RAM,
            write: false,
            exec: false,
            permission: false,
        },
        &mut backing,
        &mut mapper,
    );
    assert_eq!(
        response,
        Err(MmuError::BackingRetriesExhausted {
            attempts: MAX_ATTEMPTS
        })
    );
    assert_eq!(backing.calls.len(), usize::from(MAX_ATTEMPTS));
    assert_eq!(mapper.maps(), 0);
    assert_eq!(vm.counters(), FaultCounters::default());
    backing.fail = Some(BackingError::OutOfRange);
    assert_eq!(
        vm.handle_fault(read(RAM), &mut backing, &mut mapper),
        Err(MmuError::BackingFailed)
    );
}

#[test]
fn replacing_or_deleting_a_slot_unmaps_it_first() {
    let (mut vm, mut backing, mut mapper) = vm_with(ram(4 * MIB, true, false));
    vm.handle_fault(read(RAM), &mut backing, &mut mapper)
        .unwrap();
    vm.enable_dirty_log(RAM + 2 * MIB, MIB, &mut mapper)
        .unwrap();
    let generation = vm.slots().generation();
    // Moving the slot unmaps the old range and drops its logs.
    let moved = SlotSpec {
        ipa: 0x8000_0000,
        ..ram(4 * MIB, true, false)
    };
    vm.set_slot(0, moved, &mut mapper).unwrap();
    assert_eq!(mapper.calls.last(), Some(&Call::Unmap(RAM, 4 * MIB)));
    assert_eq!(mapper.translate(RAM), None);
    assert!(!vm.dirty().covers(RAM + 2 * MIB));
    assert!(vm.slots().generation() > generation);
    // A failed unmap changes nothing.
    mapper.fail_next = 1;
    assert_eq!(
        vm.delete_slot(0, &mut mapper),
        Err(MmuError::MappingRefused)
    );
    assert!(vm.slots().get(0).is_some());
    vm.delete_slot(0, &mut mapper).unwrap();
    // Each change (setting the slot up, moving it, the failed and the real deletion) was
    // bracketed for the kernel's MMIO generation; a missing slot opens no bracket.
    assert_eq!(mapper.updates, [true, false].repeat(4));
    assert_eq!(vm.delete_slot(0, &mut mapper), Err(MmuError::NoSlot));
    assert_eq!(mapper.updates.len(), 8);
    assert_eq!(
        vm.handle_fault(read(0x8000_0000), &mut backing, &mut mapper),
        Ok(Resolution::NotMemory)
    );
}

#[test]
fn requests_are_dispatched() {
    use mmu_api::{MappedSize, Reply, Request};
    let mut vm = Vm::new();
    let (mut backing, mut mapper) = (
        FakeBacking {
            contiguous: true,
            ..Default::default()
        },
        FakeMapper::default(),
    );
    let mut ask = |vm: &mut Vm, request| vm.handle(request, &mut backing, &mut mapper);
    assert_eq!(
        ask(
            &mut vm,
            Request::SetSlot {
                slot: 0,
                spec: ram(4 * MIB, true, false)
            }
        ),
        Ok(Reply::Done)
    );
    let fault = |ipa, write, permission| Request::HandleStage2Fault {
        ipa,
        write,
        exec: false,
        permission,
    };
    assert_eq!(
        ask(&mut vm, fault(RAM, false, false)),
        Ok(Reply::Mapped {
            size: MappedSize::Size2M
        })
    );
    assert_eq!(
        ask(&mut vm, fault(0x0900_0000, true, false)),
        Ok(Reply::NotMemory)
    );
    assert_eq!(
        ask(&mut vm, Request::EnableDirtyLog { ipa: RAM, len: MIB }),
        Ok(Reply::Done)
    );
    assert_eq!(
        ask(&mut vm, fault(RAM + 4096, true, true)),
        Ok(Reply::Mapped {
            size: MappedSize::Size4K
        })
    );
    assert_eq!(
        ask(&mut vm, Request::GetAndClearDirtyLog { ipa: RAM, len: MIB }),
        Ok(Reply::DirtyBitmap {
            words: [2, 0, 0, 0]
        })
    );
    let counters = FaultCounters {
        pages_4k: 0,
        blocks_2m: 1,
        permission: 1,
    };
    assert_eq!(
        ask(&mut vm, Request::Counters),
        Ok(Reply::Counters(counters))
    );
    assert_eq!(
        ask(&mut vm, Request::DisableDirtyLog { ipa: RAM, len: MIB }),
        Ok(Reply::Done)
    );
    assert!(!vm.dirty().covers(RAM));
    assert_eq!(
        ask(&mut vm, fault(RAM + 4096, false, false)),
        Ok(Reply::Mapped {
            size: MappedSize::Size2M
        }),
        "logging stopped: the block is mapped as a block again"
    );
    assert_eq!(
        ask(
            &mut vm,
            Request::DisableDirtyLog {
                ipa: RAM + 1,
                len: MIB
            }
        ),
        Err(MmuError::BadRange)
    );
    assert_eq!(
        ask(&mut vm, Request::DeleteSlot { slot: 0 }),
        Ok(Reply::Done)
    );
}

#[test]
fn backing_replies_convert_both_ways() {
    use memory_api::{FrameSize, Lent, MemoryError, Response};
    let lent = Response::Frame(Lent {
        frame_index: 9,
        size: FrameSize::Size2M,
    });
    assert_eq!(
        frame_from_response(lent),
        Ok(Frame {
            index: 9,
            size: PageSize::Size2M
        })
    );
    assert_eq!(
        frame_from_response(Response::Retry),
        Err(BackingError::Retry)
    );
    assert_eq!(
        frame_from_response(Response::OutOfRange),
        Err(BackingError::OutOfRange)
    );
    assert_eq!(
        frame_from_response(Response::Error(MemoryError::OutOfMemory)),
        Err(BackingError::Failed)
    );
    assert_eq!(
        frame_request(2, 0x1000, PageSize::Size2M),
        memory_api::Request::FrameFor {
            region: 2,
            offset: 0x1000,
            size: FrameSize::Size2M
        }
    );
}
