//! The IPC state machine driven the way the kernel drives it: set a thread's registers, make
//! the system call, let the scheduler pick, and check what every thread observes.

use crate::TcbId;
use crate::cap::Cap;
use crate::endpoint::{Endpoint, Reply};
use crate::notification::{IrqLine, Notification};
use crate::system::{Effect, IpcMemory, System};
use crate::tcb::{SlotRange, Tcb, ThreadState};
use abi::{FaultInfo, FaultKind, KernelError, MessageInfo, REPLY_SLOT, Rights, Syscall};
use std::collections::HashMap;
use std::vec::Vec;

mod bound;
mod confinement;
mod console;
mod fastpath;
mod frames;
mod inject;
mod invocation;
mod ipc;
mod memory;
mod mmio;
mod restart;
mod scheduling;
mod vm_reset;

/// IPC buffers in a hash map keyed by the thread's `ipc_buffer` address.
#[derive(Default)]
struct MockMemory(HashMap<(u64, usize), u64>);

impl IpcMemory for MockMemory {
    fn read_word(&self, tcb: &Tcb, index: usize) -> u64 {
        self.0.get(&(tcb.ipc_buffer, index)).copied().unwrap_or(0)
    }
    fn write_word(&mut self, tcb: &Tcb, index: usize, value: u64) {
        self.0.insert((tcb.ipc_buffer, index), value);
    }
}

const SLOTS: u32 = 16;
const SERVER: TcbId = 0;
const CLIENT: TcbId = 1;
const OTHER: TcbId = 2;
/// Slot numbers used by the fixture.
const EP: u64 = 3; // server: READ on endpoint 0; clients: WRITE with badge
const NTFN: u64 = 4;
const TCB_OF_SERVER: u64 = 5;

struct Pools {
    tcbs: Vec<Tcb>,
    endpoints: Vec<Endpoint>,
    notifications: Vec<Notification>,
    replies: Vec<Reply>,
    slots: Vec<Cap>,
    irqs: Vec<IrqLine>,
}

fn pools(priorities: &[u8]) -> Pools {
    let mut tcbs: Vec<Tcb> = priorities.iter().map(|p| Tcb::new(*p)).collect();
    let mut slots = std::vec![Cap::Null; tcbs.len() * SLOTS as usize];
    for (id, tcb) in tcbs.iter_mut().enumerate() {
        tcb.cnode = SlotRange {
            base: id as u32 * SLOTS,
            len: SLOTS,
        };
        tcb.ipc_buffer = 0x1000 * (id as u64 + 1);
        tcb.timeslice_left = 5;
        let base = id * SLOTS as usize;
        slots[base + 1] = Cap::Reply { reply: id as u16 };
        slots[base + 2] = Cap::CNode { owner: id as u16 };
        slots[base + EP as usize] = if id == usize::from(SERVER) {
            Cap::Endpoint {
                ep: 0,
                badge: 0,
                rights: Rights::READ,
                generation: 0,
            }
        } else {
            Cap::Endpoint {
                ep: 0,
                badge: 100 + id as u64,
                rights: Rights::WRITE.union(Rights::GRANT),
                generation: 0,
            }
        };
        let ntfn_rights = if id == usize::from(SERVER) {
            Rights::READ
        } else {
            Rights::WRITE
        };
        slots[base + NTFN as usize] = Cap::Notification {
            ntfn: 0,
            badge: 1 << id,
            rights: ntfn_rights,
        };
        slots[base + TCB_OF_SERVER as usize] = Cap::Tcb { tcb: SERVER };
    }
    Pools {
        tcbs,
        endpoints: std::vec![Endpoint::new(Some(SERVER)), Endpoint::new(None)],
        notifications: std::vec![Notification::default()],
        replies: std::vec![Reply::default(); priorities.len()],
        slots,
        irqs: std::vec![IrqLine {
            intid: 33,
            notification: 0,
            badge: 0x80
        }],
    }
}

fn system(pools: &mut Pools) -> System<'_> {
    let mut system = System::new(
        &mut pools.tcbs,
        &mut pools.endpoints,
        &mut pools.notifications,
        &mut pools.replies,
        &mut pools.slots,
        &mut pools.irqs,
    );
    for id in 0..system.tcbs.len() as TcbId {
        system.make_runnable(id);
    }
    system.choose_next();
    system
}

/// Makes `id` the running thread (it must be runnable), as if the scheduler had picked it.
fn run_as(system: &mut System<'_>, id: TcbId) {
    assert!(
        system.tcb(id).state.is_runnable(),
        "thread {id} is not runnable: {:?}",
        system.tcb(id).state
    );
    if system.current != id {
        let previous = system.current;
        system.sched.dequeue(system.tcbs, id);
        if previous != crate::queue::NONE && system.tcb(previous).state.is_runnable() {
            system.sched.enqueue(system.tcbs, previous);
        }
        system.current = id;
    }
}

/// Stores `cap` in slot `slot` of `owner`'s CNode.
fn put_cap(system: &mut System<'_>, owner: TcbId, slot: u64, cap: Cap) {
    system.slots[usize::from(owner) * SLOTS as usize + slot as usize] = cap;
}

fn syscall(
    system: &mut System<'_>,
    memory: &mut MockMemory,
    id: TcbId,
    number: Syscall,
    regs: &[u64],
    fast: bool,
) -> Effect {
    run_as(system, id);
    for (index, value) in regs.iter().enumerate() {
        system.tcb_mut(id).context.set_x(index, *value);
    }
    let effect = system.dispatch_syscall(memory, number as u64, fast);
    system.choose_next();
    effect
}

fn message(label: u64, words: u64) -> u64 {
    MessageInfo::new(label, 0, words).raw()
}

fn received(system: &System<'_>, id: TcbId) -> (u64, MessageInfo, [u64; 4]) {
    let context = &system.tcb(id).context;
    (
        context.x(0),
        MessageInfo::from_raw(context.x(1)),
        [2, 3, 4, 5].map(|r| context.x(r)),
    )
}

fn error_of(system: &System<'_>, id: TcbId) -> Option<KernelError> {
    let (_, info, words) = received(system, id);
    info.is_error()
        .then(|| KernelError::decode(info.label(), [words[0], words[1], words[2]]).unwrap())
}

/// SERVER waits on EP with its reply object; `fast` as [`syscall`]'s.
fn server_waits(system: &mut System<'_>, memory: &mut MockMemory, fast: bool) {
    syscall(
        system,
        memory,
        SERVER,
        Syscall::Recv,
        &[EP, 0, 0, 0, 0, 0, REPLY_SLOT],
        fast,
    );
}

/// SERVER answers whatever it was sent with `label` and `words`, and waits again.
fn server_replies(
    system: &mut System<'_>,
    memory: &mut MockMemory,
    label: u64,
    words: [u64; 4],
    fast: bool,
) {
    let [a, b, c, d] = words;
    syscall(
        system,
        memory,
        SERVER,
        Syscall::ReplyRecv,
        &[EP, message(label, 4), a, b, c, d, REPLY_SLOT],
        fast,
    );
}

#[test]
fn senders_queue_in_order_and_long_messages_use_the_ipc_buffer() {
    let mut pools = pools(&[10, 50, 50]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    let client_buffer = system.tcb(CLIENT).ipc_buffer;
    for index in 4..10 {
        memory.0.insert((client_buffer, index), index as u64 * 1000);
    }
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Call,
        &[EP, message(1, 10), 1, 2, 3, 4],
        true,
    );
    syscall(
        &mut system,
        &mut memory,
        OTHER,
        Syscall::Call,
        &[EP, message(2, 1), 5],
        true,
    );
    assert!(matches!(
        system.tcb(CLIENT).state,
        ThreadState::BlockedOnSend { is_call: true, .. }
    ));
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::Recv,
        &[EP, 0, 0, 0, 0, 0, abi::REPLY_SLOT],
        true,
    );
    let (badge, info, words) = received(&system, SERVER);
    assert_eq!(
        (badge, info.label(), info.length(), words),
        (101, 1, 10, [1, 2, 3, 4])
    );
    let server_buffer = system.tcb(SERVER).ipc_buffer;
    assert_eq!(memory.0.get(&(server_buffer, 9)), Some(&9000));
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::ReplyRecv,
        &[EP, message(0, 0), 0, 0, 0, 0, abi::REPLY_SLOT],
        true,
    );
    let (badge, info, _) = received(&system, SERVER);
    assert_eq!(
        (badge, info.label()),
        (102, 2),
        "the second caller is served next"
    );
}

#[test]
fn missing_capabilities_and_missing_rights_are_typed_errors() {
    let mut pools = pools(&[10, 50, 50]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Call,
        &[9, message(0, 0)],
        true,
    );
    assert_eq!(
        error_of(&system, CLIENT),
        Some(KernelError::InvalidCapability { slot: 9 })
    );
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Call,
        &[99, message(0, 0)],
        true,
    );
    assert_eq!(
        error_of(&system, CLIENT),
        Some(KernelError::InvalidCapability { slot: 99 })
    );
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Recv,
        &[EP, 0, 0, 0, 0, 0, 0],
        true,
    );
    assert_eq!(
        error_of(&system, CLIENT),
        Some(KernelError::InsufficientRights { slot: EP })
    );
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Call,
        &[NTFN, message(0, 0)],
        true,
    );
    assert_eq!(
        error_of(&system, CLIENT),
        Some(KernelError::IllegalOperation { label: 0 })
    );
    syscall(&mut system, &mut memory, CLIENT, Syscall::Yield, &[], true);
    assert_eq!(
        system.tcb(CLIENT).state,
        ThreadState::Running,
        "the thread goes on after each error"
    );
    let effect = syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::ReplyRecv,
        &[EP, 0, 0, 0, 0, 0, 42],
        true,
    );
    assert_eq!(effect, Effect::None);
    assert_eq!(
        error_of(&system, CLIENT),
        Some(KernelError::InvalidCapability { slot: 42 })
    );
}

/// The server takes a call, faults while serving it, and is restarted by its supervisor.
#[test]
fn restart_answers_waiting_clients_with_the_new_generation_then_serves_again() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::Recv,
        &[EP, 0, 0, 0, 0, 0, abi::REPLY_SLOT],
        true,
    );
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Call,
        &[EP, message(1, 0)],
        true,
    );
    assert_eq!(system.current, SERVER);
    // The server is busy with CLIENT's call; OTHER queues behind it.
    system.tcb_mut(SERVER).state = ThreadState::Inactive; // stands in for "faulted, waiting"
    syscall(
        &mut system,
        &mut memory,
        OTHER,
        Syscall::Call,
        &[EP, message(2, 0)],
        true,
    );
    assert!(matches!(
        system.tcb(OTHER).state,
        ThreadState::BlockedOnSend { .. }
    ));

    assert_eq!(
        system.restart(SERVER, true),
        Effect::ResetServer { tcb: SERVER }
    );
    for client in [CLIENT, OTHER] {
        assert_eq!(
            error_of(&system, client),
            Some(KernelError::Restarted { generation: 1 })
        );
        assert_eq!(system.tcb(client).state, ThreadState::Running);
        assert!(
            matches!(
                system.lookup(client, EP),
                Ok(Cap::Endpoint { generation: 1, .. })
            ),
            "capability refreshed"
        );
    }
    assert_eq!(system.tcb(SERVER).generation, 1);
    assert_eq!(system.endpoints[0].generation, 1);

    // A client that had not called yet holds a stale capability: answered once, then served.
    let mut stale = pools_with_stale_client();
    let mut system2 = system_from(&mut stale);
    syscall(
        &mut system2,
        &mut memory,
        OTHER,
        Syscall::Call,
        &[EP, message(3, 0)],
        true,
    );
    assert_eq!(
        error_of(&system2, OTHER),
        Some(KernelError::Restarted { generation: 1 })
    );

    system.choose_next();
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::Recv,
        &[EP, 0, 0, 0, 0, 0, abi::REPLY_SLOT],
        true,
    );
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Call,
        &[EP, message(5, 0)],
        true,
    );
    let (badge, info, _) = received(&system, SERVER);
    assert_eq!(
        (badge, info.label()),
        (101, 5),
        "served again after the restart"
    );
}

fn pools_with_stale_client() -> Pools {
    let mut pools = pools(&[100, 50, 40]);
    pools.endpoints[0].generation = 1;
    pools
}

fn system_from(pools: &mut Pools) -> System<'_> {
    system(pools)
}

#[test]
fn a_server_left_down_answers_server_down() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    system.restart(SERVER, false);
    assert_eq!(system.tcb(SERVER).state, ThreadState::Inactive);
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Call,
        &[EP, message(1, 0)],
        true,
    );
    assert_eq!(
        error_of(&system, CLIENT),
        Some(KernelError::ServerDown { generation: 1 })
    );
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Call,
        &[EP, message(1, 0)],
        false,
    );
    assert_eq!(
        error_of(&system, CLIENT),
        Some(KernelError::ServerDown { generation: 1 })
    );
}

#[test]
fn a_fault_is_a_call_to_the_handler_and_the_reply_resumes_the_thread() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    system.tcb_mut(CLIENT).fault_handler = Some((0, 0xF1));
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::Recv,
        &[EP, 0, 0, 0, 0, 0, abi::REPLY_SLOT],
        true,
    );
    run_as(&mut system, CLIENT);
    let fault = FaultInfo {
        kind: FaultKind::DataAbort,
        pc: 0x20_0040,
        address: 0xdead_0000,
        syndrome: 0x9200_0007,
    };
    assert_eq!(system.handle_fault(&mut memory, fault), Effect::None);
    system.choose_next();
    let (badge, info, words) = received(&system, SERVER);
    assert_eq!(
        (badge, info.label(), words[..3].to_vec()),
        (0xF1, FaultKind::DataAbort as u64, fault.to_words().to_vec())
    );
    assert!(matches!(
        system.tcb(CLIENT).state,
        ThreadState::BlockedOnReply { .. }
    ));
    let pc_before = system.tcb(CLIENT).context.regs[crate::tcb::PC];
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::ReplyRecv,
        &[EP, message(0, 0), 0, 0, 0, 0, abi::REPLY_SLOT],
        true,
    );
    assert_eq!(system.tcb(CLIENT).state, ThreadState::Running);
    assert_eq!(system.tcb(CLIENT).fault, None);
    assert_eq!(
        system.tcb(CLIENT).context.regs[crate::tcb::PC],
        pc_before,
        "a fault reply does not touch registers"
    );

    // Without a handler the fault stops the system.
    run_as(&mut system, OTHER);
    assert_eq!(
        system.handle_fault(&mut memory, fault),
        Effect::UnhandledFault { tcb: OTHER }
    );
}

#[test]
fn notifications_accumulate_badges_and_wake_waiters_and_irqs_signal() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Signal,
        &[NTFN],
        true,
    );
    syscall(
        &mut system,
        &mut memory,
        OTHER,
        Syscall::Signal,
        &[NTFN],
        true,
    );
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::Wait,
        &[NTFN],
        true,
    );
    assert_eq!(received(&system, SERVER).0, 0b110);
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::Wait,
        &[NTFN],
        true,
    );
    assert_eq!(
        system.tcb(SERVER).state,
        ThreadState::BlockedOnNotification { ntfn: 0 }
    );
    assert!(system.irq_fired(33));
    assert!(!system.irq_fired(34));
    assert_eq!(system.choose_next(), SERVER);
    assert_eq!(received(&system, SERVER).0, 0x80);
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::Poll,
        &[NTFN],
        true,
    );
    assert_eq!(received(&system, SERVER).0, 0);
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Wait,
        &[NTFN],
        true,
    );
    assert_eq!(
        error_of(&system, CLIENT),
        Some(KernelError::InsufficientRights { slot: NTFN })
    );
}

#[test]
fn a_granted_capability_arrives_in_the_receivers_chosen_slot() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    let (server_buffer, client_buffer) =
        (system.tcb(SERVER).ipc_buffer, system.tcb(CLIENT).ipc_buffer);
    memory
        .0
        .insert((server_buffer, abi::message::IPC_BUFFER_RECEIVE_SLOT), 12);
    memory
        .0
        .insert((client_buffer, abi::message::IPC_BUFFER_SEND_CAP), NTFN);
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::Recv,
        &[EP, 0, 0, 0, 0, 0, abi::REPLY_SLOT],
        true,
    );
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Call,
        &[EP, MessageInfo::new(3, 1, 0).raw()],
        true,
    );
    assert_eq!(received(&system, SERVER).1.extra_caps(), 1);
    assert_eq!(
        system.lookup(SERVER, 12),
        Ok(Cap::Notification {
            ntfn: 0,
            badge: 1 << CLIENT,
            rights: Rights::WRITE
        })
    );
}

#[test]
fn cnode_mint_shrinks_rights_and_keeps_badges() {
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    let mint = abi::InvocationLabel::CNodeMint as u64;
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Call,
        &[
            abi::CNODE_SLOT,
            message(mint, 4),
            EP,
            10,
            Rights::WRITE.bits() as u64,
            555,
        ],
        true,
    );
    assert_eq!(
        error_of(&system, CLIENT),
        Some(KernelError::InvalidArgument { index: 3 }),
        "already badged"
    );
    let copy = abi::InvocationLabel::CNodeCopy as u64;
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Call,
        &[
            abi::CNODE_SLOT,
            message(copy, 3),
            EP,
            10,
            Rights::ALL.bits() as u64,
        ],
        true,
    );
    assert_eq!(error_of(&system, CLIENT), None);
    assert_eq!(system.lookup(CLIENT, 10), system.lookup(CLIENT, EP));
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Call,
        &[abi::CNODE_SLOT, message(copy, 3), EP, 10, 0],
        true,
    );
    assert_eq!(
        error_of(&system, CLIENT),
        Some(KernelError::DeleteFirst { slot: 10 })
    );
}

#[test]
fn round_robin_within_a_priority_on_time_slice_expiry() {
    let mut pools = pools(&[50, 50, 50]);
    let mut system = system(&mut pools);
    let first = system.current;
    let mut order = std::vec![first];
    for _ in 0..3 {
        for _ in 0..5 {
            system.tick(5);
        }
        order.push(system.choose_next());
    }
    assert_eq!(order, [0, 1, 2, 0]);
}

#[test]
fn a_guest_exit_reaches_the_vmm_and_its_reply_steps_writes_back_and_injects() {
    use abi::vm::{VmExit, VmExitKind, VmReply};
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    // CLIENT plays the VCPU thread; its exits go to endpoint 0, served by SERVER (the vmm).
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
        kind: VmExitKind::Stage2Abort,
        pc: 0x4008_0100,
        esr: 0x9300_0046,
        words: [0x0900_0000, 0x0900_0000, 0, 0, 0, 0],
    };
    assert_eq!(system.handle_vm_exit(&mut memory, exit), Effect::None);
    system.choose_next();
    let (badge, info, words) = received(&system, SERVER);
    assert_eq!(
        (badge, info.label(), info.length()),
        (0x77, FaultKind::VmExit as u64, abi::vm::VM_EXIT_WORDS)
    );
    let buffer = system.tcb(SERVER).ipc_buffer;
    let all: std::vec::Vec<u64> = words
        .iter()
        .copied()
        .chain((4..9).map(|i| *memory.0.get(&(buffer, i)).unwrap()))
        .collect();
    assert_eq!(VmExit::from_words(all.try_into().unwrap()), Some(exit));
    // The vmm emulates a 32-bit load into x5 and steps over the instruction.
    let action = VmReply::ADVANCE_PC.with(VmReply::WRITE_REGISTER);
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::ReplyRecv,
        &[EP, message(action.0, 2), 5, 0x41, 0, 0, abi::REPLY_SLOT],
        true,
    );
    let guest = &system.tcb(CLIENT).context;
    assert_eq!(
        (guest.regs[crate::tcb::PC], guest.x(5)),
        (0x4008_0104, 0x41)
    );
    assert_eq!(system.tcb(CLIENT).state, ThreadState::Running);

    // A second exit answered with an injected abort: the arch layer is asked to do it.
    run_as(&mut system, CLIENT);
    system.handle_vm_exit(
        &mut memory,
        VmExit {
            words: [0x2000_0000, 0x2000_0010, 0, 0, 0, 0],
            ..exit
        },
    );
    system.choose_next();
    let effect = syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::ReplyRecv,
        &[
            EP,
            message(VmReply::INJECT_ABORT.0, 0),
            0,
            0,
            0,
            0,
            abi::REPLY_SLOT,
        ],
        true,
    );
    assert_eq!(
        effect,
        Effect::InjectException {
            tcb: CLIENT,
            abort: true,
            address: 0x2000_0010,
            exit_syndrome: exit.esr,
        }
    );
    assert_eq!(
        system.tcb(CLIENT).context.regs[crate::tcb::PC],
        0x4008_0104,
        "injection leaves the PC to the arch layer"
    );
}

/// Memory: a RAM range capability in SERVER's slot 8, a VSpace capability in its slot 9.
fn with_memory(system: &mut System<'_>) {
    let base = SERVER as usize * SLOTS as usize;
    // 4 MiB of RAM at 0x4000_0000.
    system.slots[base + 8] = Cap::Frame(crate::cap::FrameCap::new(0, 0x4_0000, 1024, false));
    system.slots[base + 9] = Cap::VSpace { vspace: 0 };
}

fn invoke(
    system: &mut System<'_>,
    memory: &mut MockMemory,
    id: TcbId,
    slot: u64,
    label: abi::InvocationLabel,
    args: [u64; 4],
) -> Effect {
    syscall(
        system,
        memory,
        id,
        Syscall::Call,
        &[
            slot,
            message(label as u64, 4),
            args[0],
            args[1],
            args[2],
            args[3],
        ],
        true,
    )
}

#[test]
fn frames_are_carved_checked_mapped_and_revoked() {
    use abi::InvocationLabel::{FrameCarve, FrameRevoke, VSpaceMap};
    use abi::vm::MapAttributes;
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut vspaces = [crate::memory::VSpaceInfo { free_tables: 4 }];
    let mut system = system(&mut pools);
    system.vspaces = &mut vspaces;
    with_memory(&mut system);
    // A 2 MiB frame at offset 2 MiB, a 4 KiB frame at 4 KiB.
    invoke(
        &mut system,
        &mut memory,
        SERVER,
        8,
        FrameCarve,
        [2 << 20, 2 << 20, 10, 0],
    );
    assert_eq!(error_of(&system, SERVER), None);
    invoke(
        &mut system,
        &mut memory,
        SERVER,
        8,
        FrameCarve,
        [4096, 4096, 11, 0],
    );
    assert_eq!(error_of(&system, SERVER), None);
    let Ok(Cap::Frame(big)) = system.lookup(SERVER, 10) else {
        panic!("no frame")
    };
    assert_eq!(
        (big.base(), big.size(), big.is_carved()),
        (0x4020_0000, 2 << 20, true)
    );
    // Misaligned, oversized and out-of-range carves are refused.
    invoke(
        &mut system,
        &mut memory,
        SERVER,
        8,
        FrameCarve,
        [4096, 2 << 20, 12, 0],
    );
    assert!(matches!(
        error_of(&system, SERVER),
        Some(KernelError::RangeError { index: 0, .. })
    ));
    invoke(
        &mut system,
        &mut memory,
        SERVER,
        8,
        FrameCarve,
        [4 << 20, 4096, 12, 0],
    );
    assert!(matches!(
        error_of(&system, SERVER),
        Some(KernelError::RangeError { .. })
    ));
    invoke(
        &mut system,
        &mut memory,
        SERVER,
        8,
        FrameCarve,
        [0, 8192, 12, 0],
    );
    assert_eq!(
        error_of(&system, SERVER),
        Some(KernelError::InvalidArgument { index: 1 })
    );

    // Map the 2 MiB frame: the effect carries the physical and guest addresses.
    let effect = invoke(
        &mut system,
        &mut memory,
        SERVER,
        9,
        VSpaceMap,
        [10, 0x4020_0000, MapAttributes::WRITE.0, 0],
    );
    assert_eq!(
        effect,
        Effect::Map {
            vspace: 0,
            pa: 0x4020_0000,
            ipa: 0x4020_0000,
            size: 2 << 20,
            attributes: MapAttributes::WRITE
        }
    );
    // The same capability cannot be mapped somewhere else; a misaligned IPA is refused.
    invoke(
        &mut system,
        &mut memory,
        SERVER,
        9,
        VSpaceMap,
        [10, 0x4060_0000, 0, 0],
    );
    assert_eq!(
        error_of(&system, SERVER),
        Some(KernelError::InvalidArgument { index: 0 })
    );
    invoke(
        &mut system,
        &mut memory,
        SERVER,
        9,
        VSpaceMap,
        [11, 0x4000_0800, 0, 0],
    );
    assert_eq!(
        error_of(&system, SERVER),
        Some(KernelError::InvalidArgument { index: 1 })
    );
    // A VSpace without spare tables cannot take a mapping that might need them.
    system.vspaces[0].free_tables = 1;
    invoke(
        &mut system,
        &mut memory,
        SERVER,
        9,
        VSpaceMap,
        [11, 0x4000_1000, 0, 0],
    );
    assert!(matches!(
        error_of(&system, SERVER),
        Some(KernelError::IllegalOperation { .. })
    ));
    // The range itself is not mappable; only carved frames are.
    system.vspaces[0].free_tables = 4;
    invoke(
        &mut system,
        &mut memory,
        SERVER,
        9,
        VSpaceMap,
        [8, 0x4000_0000, 0, 0],
    );
    assert_eq!(
        error_of(&system, SERVER),
        Some(KernelError::InvalidArgument { index: 0 })
    );

    // Lend the 4 KiB frame to CLIENT through a reply (CLIENT named a receive slot).
    let client_buffer = system.tcb(CLIENT).ipc_buffer;
    memory
        .0
        .insert((client_buffer, abi::message::IPC_BUFFER_RECEIVE_SLOT), 13);
    let server_buffer = system.tcb(SERVER).ipc_buffer;
    memory
        .0
        .insert((server_buffer, abi::message::IPC_BUFFER_SEND_CAP), 11);
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::Recv,
        &[EP, 0, 0, 0, 0, 0, abi::REPLY_SLOT],
        true,
    );
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Call,
        &[EP, message(0, 0)],
        true,
    );
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::ReplyRecv,
        &[
            EP,
            MessageInfo::new(0, 1, 0).raw(),
            0,
            0,
            0,
            0,
            abi::REPLY_SLOT,
        ],
        true,
    );
    assert!(
        matches!(system.lookup(CLIENT, 13), Ok(Cap::Frame(f)) if f.first_page == 0x4_0001 && f.is_carved())
    );

    // Revoking the range unmaps the mapped frame and deletes every carved copy, the lent one too.
    syscall(
        &mut system,
        &mut memory,
        CLIENT,
        Syscall::Call,
        &[EP, message(0, 0)],
        true,
    );
    let Effect::Revoke {
        region,
        first_page,
        pages,
    } = invoke(&mut system, &mut memory, SERVER, 8, FrameRevoke, [0; 4])
    else {
        panic!("revoke has an effect");
    };
    let mut unmapped = std::vec::Vec::new();
    let revoked = system.revoke_frames(region, first_page, pages, |vspace, ipa, size, pa| {
        unmapped.push((vspace, ipa, size, pa))
    });
    assert_eq!(
        revoked, 3,
        "the mapped 2 MiB frame, the 4 KiB frame and its lent copy"
    );
    assert_eq!(unmapped, [(0, 0x4020_0000, 2 << 20, 0x4020_0000)]);
    assert_eq!(
        system.lookup(SERVER, 10),
        Err(KernelError::InvalidCapability { slot: 10 })
    );
    assert_eq!(
        system.lookup(CLIENT, 13),
        Err(KernelError::InvalidCapability { slot: 13 })
    );
    assert!(system.lookup(SERVER, 8).is_ok(), "the range itself stays");
}

#[test]
fn a_wfi_reply_parks_the_vcpu_until_it_is_woken() {
    use abi::vm::{VmExit, VmExitKind, VmReply};
    let mut pools = pools(&[100, 50, 40]);
    let mut memory = MockMemory::default();
    let mut system = system(&mut pools);
    system.tcb_mut(CLIENT).vcpu = Some(0);
    system.tcb_mut(CLIENT).fault_handler = Some((0, 1));
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::Recv,
        &[EP, 0, 0, 0, 0, 0, abi::REPLY_SLOT],
        true,
    );
    run_as(&mut system, CLIENT);
    system.tcb_mut(CLIENT).context.regs[crate::tcb::PC] = 0x4008_0200;
    let wfi = VmExit {
        kind: VmExitKind::WaitForInterrupt,
        pc: 0x4008_0200,
        esr: 0x0600_0000,
        words: [0; 6],
    };
    system.handle_vm_exit(&mut memory, wfi);
    system.choose_next();
    let action = VmReply::ADVANCE_PC.with(VmReply::WAIT_FOR_INTERRUPT);
    let effect = syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::ReplyRecv,
        &[EP, message(action.0, 0), 0, 0, 0, 0, abi::REPLY_SLOT],
        true,
    );
    assert_eq!(effect, Effect::WaitForInterrupt { tcb: CLIENT });
    assert_eq!(
        system.tcb(CLIENT).state,
        ThreadState::WaitingForInterrupt,
        "not runnable until woken"
    );
    assert_eq!(
        system.tcb(CLIENT).context.regs[crate::tcb::PC],
        0x4008_0204,
        "the WFI was stepped over"
    );
    assert!(!system.wake_vcpu(SERVER), "only a waiting VCPU is woken");
    assert!(system.wake_vcpu(CLIENT));
    assert_eq!(system.tcb(CLIENT).state, ThreadState::Running);
    // A reset while it waits takes it out of the wait too.
    run_as(&mut system, CLIENT);
    system.handle_vm_exit(&mut memory, wfi);
    system.choose_next();
    syscall(
        &mut system,
        &mut memory,
        SERVER,
        Syscall::ReplyRecv,
        &[EP, message(action.0, 0), 0, 0, 0, 0, abi::REPLY_SLOT],
        true,
    );
    system.restart(CLIENT, true);
    assert_eq!(system.tcb(CLIENT).state, ThreadState::Running);
}
