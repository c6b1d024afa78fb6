//! The full IPC path at its edges: sends to notifications and to other objects, rights, what a
//! message may carry, and replies to faults and guest exits.
//!
//! Calls here go through the full path only (`fast` false) where the fast path would otherwise
//! take them and hide what the full path does.

use super::{
    CLIENT, EP, MockMemory, NTFN, OTHER, SERVER, TCB_OF_SERVER, error_of, message, pools, put_cap,
    received, run_as, server_replies, server_waits, syscall, system,
};
use crate::cap::Cap;
use crate::system::{Effect, System};
use crate::tcb::{PC, SP, ThreadState};
use abi::message::{IPC_BUFFER_RECEIVE_SLOT, IPC_BUFFER_SEND_CAP};
use abi::vm::{VmExit, VmExitKind, VmReply};
use abi::{FaultInfo, FaultKind, KernelError, MessageInfo, REPLY_SLOT, Rights, Syscall};

#[test]
fn send_and_nbsend_on_a_notification_signal_it() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Send,
        &[NTFN],
        false,
    );
    assert_eq!(error_of(&system, CLIENT), None);
    syscall(
        &mut system,
        &mut memory,
        OTHER,
        Syscall::NBSend,
        &[NTFN],
        false,
    );
    assert_eq!(error_of(&system, OTHER), None);
    assert_eq!(system.notifications[0].word, (1 << CLIENT) | (1 << OTHER));
}

#[test]
fn signalling_needs_the_write_right_on_the_notification() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    // SERVER holds the notification with the read right only.
    for call in [Syscall::Signal, Syscall::Send] {
        syscall(&mut system, &mut memory, SERVER, call, &[NTFN], false);
        assert_eq!(
            error_of(&system, SERVER),
            Some(KernelError::InsufficientRights { slot: NTFN }),
            "{call:?}"
        );
        assert_eq!(system.notifications[0].word, 0, "nothing signalled");
    }
}

#[test]
fn an_invocation_needs_a_blocking_send_nbsend_refuses_it() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    let suspend = message(abi::InvocationLabel::TcbSuspend as u64, 0);
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::NBSend,
        &[TCB_OF_SERVER, suspend],
        false,
    );
    assert_eq!(
        error_of(&system, CLIENT),
        Some(KernelError::WrongObjectType {
            slot: TCB_OF_SERVER
        })
    );
    assert_eq!(system.tcb(SERVER).state, ThreadState::Running);
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Send,
        &[TCB_OF_SERVER, suspend],
        false,
    );
    assert_eq!(error_of(&system, CLIENT), None);
    assert_eq!(system.tcb(SERVER).state, ThreadState::Inactive);
}

#[test]
fn a_receive_without_a_reply_object_waits_all_the_same() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::Recv,
        &[EP, 0, 0, 0, 0, 0, 0],
        false,
    );
    assert_eq!(
        system.tcb(SERVER).state,
        ThreadState::BlockedOnReceive { ep: 0, reply: None }
    );
}

/// SERVER has asked for a capability (receive slot 12) and CLIENT names its notification.
fn offered_a_capability(system: &mut System<'_>, memory: &mut MockMemory) {
    let (server, client) = (system.tcb(SERVER).ipc_buffer, system.tcb(CLIENT).ipc_buffer);
    memory.0.insert((server, IPC_BUFFER_RECEIVE_SLOT), 12);
    memory.0.insert((client, IPC_BUFFER_SEND_CAP), NTFN);
    server_waits(system, memory, false);
}

#[test]
fn a_capability_moves_only_when_the_message_says_so() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    offered_a_capability(&mut system, &mut memory);
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Call,
        &[EP, MessageInfo::new(3, 0, 0).raw()],
        false,
    );
    assert_eq!(received(&system, SERVER).1, MessageInfo::new(3, 0, 0));
    assert!(system.lookup(SERVER, 12).is_err(), "no capability moved");
}

#[test]
fn a_capability_moves_only_from_a_sender_with_the_grant_right() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    let write_only = Cap::Endpoint {
        ep: 0,
        badge: 101,
        rights: Rights::WRITE,
        generation: 0,
    };
    put_cap(&mut system, CLIENT, EP, write_only);
    offered_a_capability(&mut system, &mut memory);
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Call,
        &[EP, MessageInfo::new(3, 1, 0).raw()],
        false,
    );
    assert_eq!(
        received(&system, SERVER).1,
        MessageInfo::new(3, 0, 0),
        "the message goes through, without the capability"
    );
    assert!(system.lookup(SERVER, 12).is_err());
}

#[test]
fn a_reply_to_a_fault_resumes_the_thread_whatever_its_label_would_mean_to_a_vm() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    system.tcb_mut(CLIENT).fault_handler = Some((0, 0xF1));
    server_waits(&mut system, &mut memory, false);
    run_as(&mut system, CLIENT);
    let before = system.tcb(CLIENT).context;
    let fault = FaultInfo {
        kind: FaultKind::DataAbort,
        pc: 0x20_0040,
        address: 0xdead_0000,
        syndrome: 0x9200_0007,
    };
    system.handle_fault(&mut memory, fault);
    system.choose_next();
    let every_vm_action = VmReply::ADVANCE_PC
        .with(VmReply::WRITE_REGISTER)
        .with(VmReply::SET_RESULTS);
    server_replies(
        &mut system,
        &mut memory,
        every_vm_action.0,
        [5, 0x41, 7, 8],
        false,
    );
    assert_eq!(system.tcb(CLIENT).state, ThreadState::Running);
    assert_eq!(system.tcb(CLIENT).context, before, "registers untouched");
}

/// CLIENT becomes a VCPU thread whose exits go to SERVER, its vmm, which waits for them.
fn vcpu_with_vmm(system: &mut System<'_>, memory: &mut MockMemory) {
    system.tcb_mut(CLIENT).vcpu = Some(0);
    system.tcb_mut(CLIENT).fault_handler = Some((0, 0x77));
    server_waits(system, memory, false);
}

/// The VCPU thread exits with `exit` and its vmm takes the exit.
fn vcpu_exited(system: &mut System<'_>, memory: &mut MockMemory, exit: VmExit) {
    run_as(system, CLIENT);
    system.tcb_mut(CLIENT).context.regs[PC] = exit.pc;
    system.tcb_mut(CLIENT).context.regs[SP] = 0x5000;
    system.handle_vm_exit(memory, exit);
    system.choose_next();
}

const STAGE2_ABORT: VmExit = VmExit {
    kind: VmExitKind::Stage2Abort,
    pc: 0x4008_0100,
    esr: 0x9300_0046,
    words: [0x0900_0000, 0x0900_0000, 0, 0, 0, 0],
};

#[test]
fn a_vmm_reply_changes_only_the_registers_it_names() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    vcpu_with_vmm(&mut system, &mut memory);
    vcpu_exited(&mut system, &mut memory, STAGE2_ABORT);
    let before = system.tcb(CLIENT).context;
    // Step over the instruction; the register words are there but not asked for.
    let effect = syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::ReplyRecv,
        &[
            EP,
            message(VmReply::ADVANCE_PC.0, 2),
            5,
            0x41,
            0,
            0,
            REPLY_SLOT,
        ],
        false,
    );
    assert_eq!(effect, Effect::None);
    let mut expected = before;
    expected.regs[PC] += 4;
    assert_eq!(system.tcb(CLIENT).context, expected);

    // Register 31 is xzr for a load: nothing is written (not SP, which shares the index).
    vcpu_exited(&mut system, &mut memory, STAGE2_ABORT);
    let before = system.tcb(CLIENT).context;
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::ReplyRecv,
        &[
            EP,
            message(VmReply::WRITE_REGISTER.0, 2),
            31,
            0x41,
            0,
            0,
            REPLY_SLOT,
        ],
        false,
    );
    assert_eq!(system.tcb(CLIENT).context, before, "nothing written");
    // x30 is the last register a load can write.
    vcpu_exited(&mut system, &mut memory, STAGE2_ABORT);
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::ReplyRecv,
        &[
            EP,
            message(VmReply::WRITE_REGISTER.0, 2),
            30,
            0x41,
            0,
            0,
            REPLY_SLOT,
        ],
        false,
    );
    assert_eq!(system.tcb(CLIENT).context.x(30), 0x41);
}
