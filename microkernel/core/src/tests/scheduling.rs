//! The scheduler as the kernel drives it: time slices, preemption, idling.

use super::{EP, MockMemory, OTHER, SERVER, pools, syscall, system};
use crate::queue::NONE;
use crate::tcb::ThreadState;
use abi::{REPLY_SLOT, Syscall};

const SLICE: u32 = 5;

#[test]
fn a_thread_keeps_the_processor_until_its_slice_is_used_up() {
    let mut pools = pools(&[50, 50, 50]);
    let mut system = system(&mut pools);
    let first = system.current;
    for tick in 1..SLICE {
        system.tick(SLICE);
        assert_eq!(system.choose_next(), first, "after tick {tick}");
        assert_eq!(system.tcb(first).timeslice_left, SLICE - tick);
    }
    system.tick(SLICE);
    assert_ne!(system.choose_next(), first, "the slice is over");
    assert_eq!(
        system.tcb(first).timeslice_left,
        SLICE,
        "a fresh slice for next time"
    );
}

#[test]
fn a_lone_thread_runs_on_and_a_blocked_one_leaves_the_processor_idle() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    for id in [SERVER, OTHER] {
        system.suspend(id);
    }
    let only = system.choose_next();
    assert_eq!(
        system.choose_next(),
        only,
        "nobody else is ready: it goes on"
    );
    assert_eq!(system.tcb(only).state, ThreadState::Running);

    system.resume(SERVER);
    assert_eq!(system.choose_next(), SERVER, "the higher priority preempts");
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::Recv,
        &[EP, 0, 0, 0, 0, 0, REPLY_SLOT],
        false,
    );
    system.suspend(only);
    assert_eq!(system.choose_next(), NONE, "nothing can run: idle");
}
