//! Invocations of thread, CNode, IRQ-handler and system-control capabilities: what each does to
//! the system, what the caller is answered, and what the kernel is asked to do.

use super::{
    CLIENT, EP, MockMemory, NTFN, SERVER, TCB_OF_SERVER, error_of, invoke, pools, put_cap,
    received, syscall, system,
};
use crate::cap::Cap;
use crate::endpoint::EndpointState;
use crate::system::{Effect, System};
use crate::tcb::ThreadState;
use abi::InvocationLabel::{
    CNodeDelete, IrqAck, SystemOff, TcbReadState, TcbRestart, TcbResume, TcbSuspend,
};
use abi::{CNODE_SLOT, KernelError, REPLY_SLOT, Syscall};

/// CLIENT reads SERVER's state: (generation, runnable), and checks the call succeeded.
fn read_server_state(system: &mut System<'_>, memory: &mut MockMemory) -> (u64, u64) {
    invoke(system, memory, CLIENT, TCB_OF_SERVER, TcbReadState, [0; 4]);
    let (_, info, words) = received(system, CLIENT);
    assert_eq!(
        (info.is_error(), info.length()),
        (false, 2),
        "two result words"
    );
    (words[0], words[1])
}

#[test]
fn suspend_takes_a_thread_out_of_its_receive_and_resume_makes_it_runnable_again() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    assert_eq!(read_server_state(&mut system, &mut memory), (0, 1));
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::Recv,
        &[EP, 0, 0, 0, 0, 0, REPLY_SLOT],
        false,
    );
    assert_eq!(system.endpoints[0].state, EndpointState::Receiving);

    invoke(
        &mut system,
        &mut memory,
        CLIENT,
        TCB_OF_SERVER,
        TcbSuspend,
        [0; 4],
    );
    assert_eq!(error_of(&system, CLIENT), None);
    assert_eq!(system.tcb(SERVER).state, ThreadState::Inactive);
    assert_eq!(system.endpoints[0].state, EndpointState::Idle);
    assert!(system.endpoints[0].queue.is_empty(), "no longer waiting");
    assert_eq!(read_server_state(&mut system, &mut memory), (0, 0));

    invoke(
        &mut system,
        &mut memory,
        CLIENT,
        TCB_OF_SERVER,
        TcbResume,
        [0; 4],
    );
    assert_eq!(error_of(&system, CLIENT), None);
    assert_eq!(system.tcb(SERVER).state, ThreadState::Running);
    assert_eq!(
        system.current, SERVER,
        "the resumed server outranks its client"
    );
}

#[test]
fn resume_leaves_a_thread_that_waits_in_ipc_alone() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::Recv,
        &[EP, 0, 0, 0, 0, 0, REPLY_SLOT],
        false,
    );
    invoke(
        &mut system,
        &mut memory,
        CLIENT,
        TCB_OF_SERVER,
        TcbResume,
        [0; 4],
    );
    assert!(matches!(
        system.tcb(SERVER).state,
        ThreadState::BlockedOnReceive { ep: 0, .. }
    ));
}

#[test]
fn restart_with_one_starts_the_server_again_and_with_zero_leaves_it_down() {
    for (start, state, down) in [
        (1, ThreadState::Running, false),
        (0, ThreadState::Inactive, true),
    ] {
        let mut pools = pools(&[100, 50, 40]);
        let mut memory = MockMemory::default();
        let mut system = system(&mut pools);
        let effect = invoke(
            &mut system,
            &mut memory,
            CLIENT,
            TCB_OF_SERVER,
            TcbRestart,
            [start, 0, 0, 0],
        );
        assert_eq!(effect, Effect::ResetServer { tcb: SERVER });
        assert_eq!(error_of(&system, CLIENT), None);
        assert_eq!(system.tcb(SERVER).state, state, "start = {start}");
        assert_eq!(system.tcb(SERVER).generation, 1);
        assert_eq!(
            (system.endpoints[0].generation, system.endpoints[0].down),
            (1, down)
        );
    }
}

#[test]
fn restart_with_anything_but_zero_or_one_is_refused_and_changes_nothing() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    let effect = invoke(
        &mut system,
        &mut memory,
        CLIENT,
        TCB_OF_SERVER,
        TcbRestart,
        [2, 0, 0, 0],
    );
    assert_eq!(effect, Effect::None);
    assert_eq!(
        error_of(&system, CLIENT),
        Some(KernelError::RangeError {
            index: 0,
            min: 0,
            max: 1
        })
    );
    assert_eq!(system.tcb(SERVER).generation, 0);
    assert_eq!(system.endpoints[0].generation, 0);
}

#[test]
fn cnode_delete_empties_a_slot_but_refuses_the_callers_own_reply_slot() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    invoke(
        &mut system,
        &mut memory,
        CLIENT,
        CNODE_SLOT,
        CNodeDelete,
        [NTFN, 0, 0, 0],
    );
    assert_eq!(error_of(&system, CLIENT), None);
    assert_eq!(
        system.lookup(CLIENT, NTFN),
        Err(KernelError::InvalidCapability { slot: NTFN })
    );

    invoke(
        &mut system,
        &mut memory,
        CLIENT,
        CNODE_SLOT,
        CNodeDelete,
        [REPLY_SLOT, 0, 0, 0],
    );
    assert_eq!(
        error_of(&system, CLIENT),
        Some(KernelError::InvalidArgument { index: 0 })
    );
    assert_eq!(
        system.lookup(CLIENT, REPLY_SLOT),
        Ok(Cap::Reply { reply: CLIENT })
    );

    invoke(
        &mut system,
        &mut memory,
        CLIENT,
        CNODE_SLOT,
        CNodeDelete,
        [16, 0, 0, 0],
    );
    assert_eq!(
        error_of(&system, CLIENT),
        Some(KernelError::InvalidCapability { slot: 16 })
    );
}

#[test]
fn irq_ack_asks_the_kernel_to_unmask_the_handlers_line() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    put_cap(&mut system, CLIENT, 7, Cap::IrqHandler { irq: 0 });
    put_cap(&mut system, CLIENT, 8, Cap::IrqHandler { irq: 3 });
    let effect = invoke(&mut system, &mut memory, CLIENT, 7, IrqAck, [0; 4]);
    assert_eq!(effect, Effect::UnmaskIrq { intid: 33 });
    assert_eq!(error_of(&system, CLIENT), None);

    let effect = invoke(&mut system, &mut memory, CLIENT, 8, IrqAck, [0; 4]);
    assert_eq!(effect, Effect::None);
    assert_eq!(
        error_of(&system, CLIENT),
        Some(KernelError::InvalidCapability { slot: 8 }),
        "a handler for a line that does not exist"
    );
}

#[test]
fn system_off_asks_the_kernel_to_stop_with_the_callers_status() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    put_cap(&mut system, CLIENT, 7, Cap::SystemControl);
    let effect = invoke(
        &mut system,
        &mut memory,
        CLIENT,
        7,
        SystemOff,
        [42, 0, 0, 0],
    );
    assert_eq!(effect, Effect::SystemOff { status: 42 });

    let effect = invoke(&mut system, &mut memory, CLIENT, 7, TcbSuspend, [0; 4]);
    assert_eq!(effect, Effect::None);
    assert_eq!(
        error_of(&system, CLIENT),
        Some(KernelError::IllegalOperation {
            label: TcbSuspend as u64
        }),
        "an operation the object does not have"
    );
}

#[test]
fn vcpu_invocations_are_checked_then_handed_to_the_arch_layer() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    const VCPU_SLOT: u64 = 9;
    put_cap(&mut system, CLIENT, VCPU_SLOT, Cap::Vcpu { vcpu: 3 });
    let inject = abi::InvocationLabel::VcpuInjectIrq;
    let effect = invoke(
        &mut system,
        &mut memory,
        CLIENT,
        VCPU_SLOT,
        inject,
        [33, 0xA0, 1, 0],
    );
    assert_eq!(
        effect,
        Effect::VcpuInjectIrq {
            vcpu: 3,
            intid: 33,
            priority: 0xA0,
            level: true
        }
    );
    assert_eq!(error_of(&system, CLIENT), None);
    // The kernel's own interrupts and the special range are refused before anything happens.
    for (args, error) in [
        ([27, 0, 0, 0], KernelError::InvalidArgument { index: 0 }),
        ([25, 0, 0, 0], KernelError::InvalidArgument { index: 0 }),
        ([33, 0, 4, 0], KernelError::InvalidArgument { index: 2 }),
    ] {
        let effect = invoke(&mut system, &mut memory, CLIENT, VCPU_SLOT, inject, args);
        assert_eq!(effect, Effect::None, "{args:?}");
        assert_eq!(error_of(&system, CLIENT), Some(error), "{args:?}");
    }
    let effect = invoke(
        &mut system,
        &mut memory,
        CLIENT,
        VCPU_SLOT,
        inject,
        [1020, 0, 0, 0],
    );
    assert_eq!(effect, Effect::None);
    assert!(matches!(
        error_of(&system, CLIENT),
        Some(KernelError::RangeError { index: 0, .. })
    ));
    let vtimer = abi::InvocationLabel::VcpuSetVtimer;
    let effect = invoke(
        &mut system,
        &mut memory,
        CLIENT,
        VCPU_SLOT,
        vtimer,
        [1, 0x80, 0, 0],
    );
    assert_eq!(
        effect,
        Effect::VcpuSetVtimer {
            vcpu: 3,
            enabled: true,
            priority: 0x80
        }
    );
    let effect = invoke(
        &mut system,
        &mut memory,
        CLIENT,
        VCPU_SLOT,
        abi::InvocationLabel::VcpuListRegisters,
        [u64::MAX; 4],
    );
    assert_eq!(effect, Effect::VcpuListRegisters { vcpu: 3 });
    // A VCPU capability takes no other operation, and no other capability takes these.
    let effect = invoke(
        &mut system,
        &mut memory,
        CLIENT,
        VCPU_SLOT,
        TcbSuspend,
        [0; 4],
    );
    assert_eq!(effect, Effect::None);
    assert!(matches!(
        error_of(&system, CLIENT),
        Some(KernelError::IllegalOperation { .. })
    ));
    let effect = invoke(
        &mut system,
        &mut memory,
        CLIENT,
        TCB_OF_SERVER,
        inject,
        [33, 0, 0, 0],
    );
    assert_eq!(effect, Effect::None);
    assert!(matches!(
        error_of(&system, CLIENT),
        Some(KernelError::IllegalOperation { .. })
    ));
}
