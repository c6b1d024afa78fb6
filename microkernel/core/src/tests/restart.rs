//! Taking threads out of IPC: a suspended caller is forgotten by the reply object it waited on,
//! and a guest whose exit was pending when its vmm restarted resumes where it can retry.

use super::{CLIENT, EP, MockMemory, SERVER, error_of, message, pools, run_as, syscall, system};
use crate::system::System;
use crate::tcb::{PC, ThreadState};
use abi::vm::{VmExit, VmExitKind};
use abi::{REPLY_SLOT, Syscall};

#[test]
fn a_suspended_caller_is_forgotten_by_the_reply_object_and_never_answered() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    let receive = [EP, 0, 0, 0, 0, 0, REPLY_SLOT];
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::Recv,
        &receive,
        false,
    );
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Call,
        &[EP, message(1, 0)],
        false,
    );
    assert_eq!(system.replies[usize::from(SERVER)].caller, Some(CLIENT));

    system.suspend(CLIENT);
    assert_eq!(system.replies[usize::from(SERVER)].caller, None);
    let reply = [EP, message(9, 0), 0, 0, 0, 0, REPLY_SLOT];
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::ReplyRecv,
        &reply,
        false,
    );
    assert_eq!(system.tcb(CLIENT).state, ThreadState::Inactive, "not woken");
    assert!(matches!(
        system.tcb(SERVER).state,
        ThreadState::BlockedOnReceive { ep: 0, .. }
    ));
}

const HVC64: u64 = 0x16;
const SMC64: u64 = 0x17;
const DATA_ABORT_LOWER: u64 = 0x24;

/// CLIENT, a VCPU thread served by SERVER, exits with `kind` and syndrome class `class` at
/// `pc`; then SERVER is restarted before answering. Returns the guest's PC afterwards.
fn pc_after_the_vmm_restarts(kind: VmExitKind, class: u64, pc: u64) -> u64 {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    vcpu_exits_and_vmm_restarts(&mut system, &mut memory, kind, class, pc);
    assert_eq!(system.tcb(CLIENT).state, ThreadState::Running);
    assert_eq!(
        error_of(&system, CLIENT),
        None,
        "a guest is not told: it retries"
    );
    assert_eq!(system.tcb(CLIENT).vm_exit, None);
    system.tcb(CLIENT).context.regs[PC]
}

fn vcpu_exits_and_vmm_restarts(
    system: &mut System<'_>,
    memory: &mut MockMemory,
    kind: VmExitKind,
    class: u64,
    pc: u64,
) {
    system.tcb_mut(CLIENT).vcpu = Some(0);
    system.tcb_mut(CLIENT).fault_handler = Some((0, 0x77));
    let receive = [EP, 0, 0, 0, 0, 0, REPLY_SLOT];
    syscall(system, memory, SERVER, Syscall::Recv, &receive, false);
    run_as(system, CLIENT);
    system.tcb_mut(CLIENT).context.regs[PC] = pc;
    let exit = VmExit {
        kind,
        pc,
        esr: class << 26 | 0x1234,
        words: [0; 6],
    };
    system.handle_vm_exit(memory, exit);
    system.choose_next();
    assert!(matches!(
        system.tcb(CLIENT).state,
        ThreadState::BlockedOnReply { .. }
    ));
    system.restart(SERVER, true);
}

#[test]
fn a_guest_whose_hvc_was_lost_with_its_vmm_is_put_back_on_the_hvc() {
    // An `hvc` exit is taken with the PC already past the instruction.
    assert_eq!(
        pc_after_the_vmm_restarts(VmExitKind::Hypercall, HVC64, 0x4008_0104),
        0x4008_0100
    );
}

#[test]
fn other_lost_exits_leave_the_guest_where_it_stopped() {
    // An `smc` exit is taken with the PC at the instruction; so is an abort.
    assert_eq!(
        pc_after_the_vmm_restarts(VmExitKind::Hypercall, SMC64, 0x4008_0104),
        0x4008_0104
    );
    assert_eq!(
        pc_after_the_vmm_restarts(VmExitKind::Stage2Abort, DATA_ABORT_LOWER, 0x4008_0104),
        0x4008_0104
    );
    assert_eq!(
        pc_after_the_vmm_restarts(VmExitKind::Stage2Abort, HVC64, 0x4008_0104),
        0x4008_0104,
        "only a hypercall exit is rewound, whatever the syndrome says"
    );
}
