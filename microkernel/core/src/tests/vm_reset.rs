//! Resetting a VM (only in bounded steps with the VCPU thread left down, then a resume), and
//! the virtual SError a vmm answers an SError exit with.

use super::{CLIENT, MockMemory, SERVER, TCB_OF_SERVER, error_of, invoke, pools, system};
use crate::system::Effect;
use crate::tcb::ThreadState;
use abi::InvocationLabel::{TcbRestart, TcbResume};
use abi::KernelError;

#[test]
fn a_vcpu_thread_is_reset_down_in_steps_and_then_resumed() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    system.tcb_mut(SERVER).vcpu = Some(0);
    let generation = system.tcb(SERVER).generation;

    // Starting at once would run the guest on half-rebuilt RAM: refused, nothing changed.
    let effect = invoke(
        &mut system,
        &mut memory,
        CLIENT,
        TCB_OF_SERVER,
        TcbRestart,
        [1, 0, 0, 0],
    );
    assert_eq!(effect, Effect::None);
    assert_eq!(
        error_of(&system, CLIENT),
        Some(KernelError::InvalidArgument { index: 0 })
    );
    assert_eq!(system.tcb(SERVER).generation, generation);
    assert_ne!(system.tcb(SERVER).state, ThreadState::Inactive);

    // Each step asks the kernel for one bounded piece of the reset; the thread stays down.
    for _ in 0..3 {
        let effect = invoke(
            &mut system,
            &mut memory,
            CLIENT,
            TCB_OF_SERVER,
            TcbRestart,
            [0, 0, 0, 0],
        );
        assert_eq!(effect, Effect::ResetServer { tcb: SERVER });
        assert_eq!(error_of(&system, CLIENT), None);
        assert_eq!(system.tcb(SERVER).state, ThreadState::Inactive);
    }
    invoke(
        &mut system,
        &mut memory,
        CLIENT,
        TCB_OF_SERVER,
        TcbResume,
        [0; 4],
    );
    assert_eq!(error_of(&system, CLIENT), None);
    assert_ne!(system.tcb(SERVER).state, ThreadState::Inactive);
}

#[test]
fn a_server_thread_may_still_be_restarted_and_started_at_once() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    let effect = invoke(
        &mut system,
        &mut memory,
        CLIENT,
        TCB_OF_SERVER,
        TcbRestart,
        [1, 0, 0, 0],
    );
    assert_eq!(effect, Effect::ResetServer { tcb: SERVER });
    assert_eq!(error_of(&system, CLIENT), None);
}

#[test]
fn an_serror_exit_answered_with_a_virtual_serror_asks_the_arch_layer_for_one() {
    use super::{EP, message, run_as, syscall};
    use abi::Syscall;
    use abi::vm::{VmExit, VmExitKind, VmReply};
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    // CLIENT plays the VCPU thread; SERVER its vmm.
    system.tcb_mut(CLIENT).vcpu = Some(0);
    system.tcb_mut(CLIENT).fault_handler = Some((0, 0x77));
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::Recv,
        &[EP, 0, 0, 0, 0, 0, abi::REPLY_SLOT],
        true,
    );
    run_as(&mut system, CLIENT);
    system.tcb_mut(CLIENT).context.regs[crate::tcb::PC] = 0x4008_0100;
    let exit = VmExit {
        kind: VmExitKind::SError,
        pc: 0x4008_0100,
        esr: 0xBE00_0000,
        words: [0; 6],
    };
    assert_eq!(system.handle_vm_exit(&mut memory, exit), Effect::None);
    system.choose_next();
    let effect = syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::ReplyRecv,
        &[
            EP,
            message(VmReply::INJECT_SERROR.0, 0),
            0,
            0,
            0,
            0,
            abi::REPLY_SLOT,
        ],
        true,
    );
    assert_eq!(effect, Effect::InjectSError { tcb: CLIENT });
    // The guest resumes where it was: an SError is asynchronous, nothing is stepped over.
    assert_eq!(system.tcb(CLIENT).context.regs[crate::tcb::PC], 0x4008_0100);
}
