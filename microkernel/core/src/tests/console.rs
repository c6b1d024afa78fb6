//! The debug system calls take a capability: `DebugWrite` (console text) needs a DebugConsole
//! capability in `x0`, `DebugLog` (defmt records) a DebugLog one, the length is in `x1`. Without
//! the right capability the caller gets the typed error naming the slot and the kernel is asked
//! to do nothing: no text reaches the console, no record the log.

use super::{
    CLIENT, EP, MockMemory, NTFN, OTHER, SERVER, SLOTS, TCB_OF_SERVER, error_of, invoke, pools,
    put_cap, received, syscall, system,
};
use crate::cap::{Cap, DeriveError};
use crate::system::{Effect, System};
use crate::tcb::ThreadState;
use abi::message::IPC_BUFFER_WORDS;
use abi::{InvocationLabel, KernelError, MessageInfo, Rights, Syscall};

const CONSOLE: u64 = 7;
const LOG: u64 = 8;
const MAX_LEN: usize = IPC_BUFFER_WORDS * 8;

/// CLIENT holds both debug capabilities; SERVER and OTHER hold neither.
fn grant_client(system: &mut System<'_>) {
    put_cap(system, CLIENT, CONSOLE, Cap::DebugConsole);
    put_cap(system, CLIENT, LOG, Cap::DebugLog);
}

/// `id` makes the call with `x0 = cptr`, `x1 = len`; returns the effect, and checks that the
/// thread goes on running whatever the answer was.
fn debug(
    system: &mut System<'_>,
    memory: &mut MockMemory,
    id: crate::TcbId,
    call: Syscall,
    cptr: u64,
    len: u64,
) -> Effect {
    let effect = syscall(system, memory, id, call, &[cptr, len], true);
    assert_eq!(system.tcb(id).state, ThreadState::Running);
    effect
}

#[test]
fn a_thread_with_the_console_capability_prints_and_is_answered_success() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    grant_client(&mut system);
    let effect = debug(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::DebugWrite,
        CONSOLE,
        19,
    );
    assert_eq!(effect, Effect::DebugWrite { len: 19 });
    let (badge, info, _) = received(&system, CLIENT);
    assert_eq!(info, MessageInfo::new(0, 0, 0), "success");
    assert_eq!(badge, CONSOLE, "x0 is preserved");

    let effect = debug(&mut system, &mut memory, CLIENT, Syscall::DebugLog, LOG, 7);
    assert_eq!(effect, Effect::DebugLog { len: 7 });
    assert_eq!(error_of(&system, CLIENT), None);
}

#[test]
fn the_length_is_clamped_to_the_ipc_buffer() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    grant_client(&mut system);
    for len in [MAX_LEN as u64 + 1, u64::MAX] {
        let effect = debug(
            &mut system,
            &mut memory,
            CLIENT,
            Syscall::DebugWrite,
            CONSOLE,
            len,
        );
        assert_eq!(effect, Effect::DebugWrite { len: MAX_LEN });
        let effect = debug(
            &mut system,
            &mut memory,
            CLIENT,
            Syscall::DebugLog,
            LOG,
            len,
        );
        assert_eq!(effect, Effect::DebugLog { len: MAX_LEN });
    }
    let effect = debug(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::DebugWrite,
        CONSOLE,
        0,
    );
    assert_eq!(effect, Effect::DebugWrite { len: 0 });
}

#[test]
fn without_the_capability_nothing_is_printed_and_the_slot_is_named() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    grant_client(&mut system);
    // The forged line sits in the caller's IPC buffer, ready to print.
    let buffer = system.tcb(SERVER).ipc_buffer;
    for (index, word) in b"guest: verdict PASS\n".chunks(8).enumerate() {
        let mut bytes = [0u8; 8];
        bytes[..word.len()].copy_from_slice(word);
        memory.0.insert((buffer, index), u64::from_le_bytes(bytes));
    }
    let before = memory.0.clone();
    for call in [Syscall::DebugWrite, Syscall::DebugLog] {
        // Empty slots: the server's CONSOLE and LOG slots, and the null slot 0.
        for slot in [CONSOLE, LOG, 0] {
            let effect = debug(&mut system, &mut memory, SERVER, call, slot, 20);
            assert_eq!(effect, Effect::None, "{call:?} through empty slot {slot}");
            assert_eq!(
                error_of(&system, SERVER),
                Some(KernelError::InvalidCapability { slot })
            );
        }
        // Outside the CNode.
        for slot in [u64::from(SLOTS), u64::MAX] {
            let effect = debug(&mut system, &mut memory, SERVER, call, slot, 20);
            assert_eq!(effect, Effect::None);
            assert_eq!(
                error_of(&system, SERVER),
                Some(KernelError::InvalidCapability { slot })
            );
        }
    }
    assert_eq!(memory.0, before, "the IPC buffer is not touched");
}

#[test]
fn a_capability_of_another_kind_is_the_wrong_object_type() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    grant_client(&mut system);
    put_cap(&mut system, CLIENT, 9, Cap::SystemControl);
    let wrong = [
        (Syscall::DebugWrite, LOG),
        (Syscall::DebugLog, CONSOLE),
        (Syscall::DebugWrite, EP),
        (Syscall::DebugLog, EP),
        (Syscall::DebugWrite, NTFN),
        (Syscall::DebugWrite, TCB_OF_SERVER),
        (Syscall::DebugWrite, abi::REPLY_SLOT),
        (Syscall::DebugLog, abi::CNODE_SLOT),
        (Syscall::DebugWrite, 9),
    ];
    for (call, slot) in wrong {
        let effect = debug(&mut system, &mut memory, CLIENT, call, slot, 20);
        assert_eq!(effect, Effect::None, "{call:?} through slot {slot}");
        assert_eq!(
            error_of(&system, CLIENT),
            Some(KernelError::WrongObjectType { slot }),
            "{call:?} through slot {slot}"
        );
    }
}

#[test]
fn a_refused_debug_call_leaves_every_other_thread_and_object_alone() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    grant_client(&mut system);
    // SERVER waits for a call; OTHER tries to print through its endpoint capability.
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::Recv,
        &[EP, 0, 0, 0, 0, 0, abi::REPLY_SLOT],
        true,
    );
    let server_state = system.tcb(SERVER).state;
    let endpoint = system.endpoints[0].state;
    let slots = system.slots.to_vec();
    let effect = debug(&mut system, &mut memory, OTHER, Syscall::DebugWrite, EP, 20);
    assert_eq!(effect, Effect::None);
    assert_eq!(
        error_of(&system, OTHER),
        Some(KernelError::WrongObjectType { slot: EP })
    );
    assert_eq!(system.tcb(SERVER).state, server_state);
    assert_eq!(system.endpoints[0].state, endpoint);
    assert_eq!(system.slots, &slots[..], "no capability changed");
}

#[test]
fn debug_capabilities_copy_like_system_control_and_have_no_invocations() {
    for cap in [Cap::DebugConsole, Cap::DebugLog] {
        assert_eq!(cap.derive(Rights::ALL, None), Ok(cap));
        assert_eq!(cap.derive(Rights::NONE, None), Ok(cap));
        assert_eq!(
            cap.derive(Rights::ALL, Some(1)),
            Err(DeriveError::NotBadgeable)
        );
    }
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    grant_client(&mut system);
    for slot in [CONSOLE, LOG] {
        let label = InvocationLabel::SystemOff;
        let effect = invoke(&mut system, &mut memory, CLIENT, slot, label, [0; 4]);
        assert_eq!(effect, Effect::None);
        assert_eq!(
            error_of(&system, CLIENT),
            Some(KernelError::IllegalOperation {
                label: label as u64
            })
        );
    }
    // A copy made through the caller's CNode prints like the original.
    let copy = [CONSOLE, 10, Rights::ALL.bits() as u64, 0];
    invoke(
        &mut system,
        &mut memory,
        CLIENT,
        abi::CNODE_SLOT,
        InvocationLabel::CNodeCopy,
        copy,
    );
    assert_eq!(error_of(&system, CLIENT), None);
    let effect = debug(&mut system, &mut memory, CLIENT, Syscall::DebugWrite, 10, 3);
    assert_eq!(effect, Effect::DebugWrite { len: 3 });
}
