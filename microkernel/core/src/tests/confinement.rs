//! Capability confinement (issue #11, item 5): a thread reaches nothing that is not in its own
//! CNode, cannot make a capability it holds do more than it does, and a guest's stage 2 maps
//! nothing but frames carved from RAM that a capability names.
//!
//! - [`slots`]: every system call and every invocation label through a slot the caller does
//!   not hold (empty, just past its CNode, in a neighbour's part of the slot pool, `u64::MAX`),
//!   through a capability of the wrong kind, and without the right it uses. Each refusal is the
//!   kernel's typed error naming the slot, and changes nothing but the caller's answer
//!   ([`World`]).
//! - [`derive`]: copy and mint keep or drop rights, never add one (whatever bits are asked for),
//!   a badge is set once, a reply capability is neither copied nor transferred and answers one
//!   call once, and a capability moves in IPC only from a sender holding GRANT, only into an
//!   empty slot of the receiver's own CNode.
//! - [`guest`]: a guest VSpace built as the boot code builds it (empty, populated only by
//!   `VSpaceMap` of frames carved from its RAM region) and then driven by a hostile holder of
//!   the VSpace and the RAM: a walk of every entry of its stage 2 finds no translation to the
//!   kernel's memory, a server's or its own page tables.
//!
//! The QEMU side is the `confine` scenario of `tests/servers/kernel-test` (docs/TESTING.md,
//! "Capability confinement").

use super::{MockMemory, error_of, run_as};
use crate::TcbId;
use crate::cap::Cap;
use crate::endpoint::Reply;
use crate::notification::IrqLine;
use crate::system::{Effect, System};
use abi::KernelError;
use std::format;
use std::string::String;
use std::vec::Vec;

mod derive;
mod guest;
mod slots;

/// Everything a thread or the scheduler can observe, with the answer registers (`x1..x5`) of
/// one thread left out: what a refused system call must leave exactly as it was.
#[derive(Debug, PartialEq)]
struct World {
    current: TcbId,
    ready_in_run_order: Vec<TcbId>,
    threads: Vec<String>,
    endpoints: Vec<String>,
    replies: Vec<Reply>,
    notifications: Vec<String>,
    slots: Vec<Cap>,
    irqs: Vec<IrqLine>,
    ipc_buffers: Vec<((u64, usize), u64)>,
    vspaces: Vec<crate::memory::VSpaceInfo>,
    console_input: Option<crate::NotificationId>,
}

impl World {
    fn of(system: &System<'_>, memory: &MockMemory, answering: TcbId) -> Self {
        let (mut sched, mut tcbs) = (system.sched.clone(), system.tcbs.to_vec());
        let ready_in_run_order = core::iter::from_fn(|| sched.pop_highest(&mut tcbs))
            .take(system.tcbs.len() + 1)
            .collect();
        let mut threads = system.tcbs.to_vec();
        for register in 1..=5 {
            threads[usize::from(answering)].context.set_x(register, 0);
        }
        let mut ipc_buffers: Vec<_> = memory.0.iter().map(|(key, word)| (*key, *word)).collect();
        ipc_buffers.sort_unstable();
        Self {
            current: system.current,
            ready_in_run_order,
            threads: threads.iter().map(|t| format!("{t:?}")).collect(),
            endpoints: system.endpoints.iter().map(|e| format!("{e:?}")).collect(),
            replies: system.replies.to_vec(),
            notifications: system
                .notifications
                .iter()
                .map(|n| format!("{n:?}"))
                .collect(),
            slots: system.slots.to_vec(),
            irqs: system.irqs.to_vec(),
            ipc_buffers,
            vspaces: system.vspaces.to_vec(),
            console_input: system.console_input,
        }
    }
}

/// Makes `id` the running thread and has it make system call `number` (the raw `x7`) with
/// `regs` in `x0..x6` (missing ones zero), through the fast path first when `fast`, as the
/// exception entry does. Checks that the call was refused: no effect for the kernel, and
/// nothing changed but `id`'s answer registers. Returns the kernel's answer.
fn refused(
    system: &mut System<'_>,
    memory: &mut MockMemory,
    id: TcbId,
    number: u64,
    regs: &[u64],
    fast: bool,
) -> KernelError {
    run_as(system, id);
    for index in 0..7 {
        let value = regs.get(index).copied().unwrap_or(0);
        system.tcb_mut(id).context.set_x(index, value);
    }
    let before = World::of(system, memory, id);
    let effect = system.dispatch_syscall(memory, number, fast);
    let what = format!("thread {id}, system call {number}, registers {regs:x?}, fast {fast}");
    assert_eq!(
        effect,
        Effect::None,
        "{what}: a refusal asks nothing of the kernel"
    );
    let after = World::of(system, memory, id);
    assert_eq!(after, before, "{what}: a refusal changes nothing");
    let error = error_of(system, id).unwrap_or_else(|| panic!("{what}: not refused"));
    system.choose_next();
    error
}
