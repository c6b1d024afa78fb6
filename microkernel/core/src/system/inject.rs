//! Kernel-made fault injection for test systems (Hubris's `fault_task`, made by the kernel at
//! a point the manifest names instead of by a hook in each server; docs/TESTING.md, "Fault
//! matrix").
//!
//! A thread with an [`Injection`](crate::tcb::Injection) counts its arrivals at one point
//! ([`InjectAt`]) since it last started; at the `count`-th it takes a
//! [`FaultKind::Injected`] fault there instead of going on, exactly as if it had faulted: its
//! handler (the supervisor) gets the fault message and restarts it or leaves it down. A
//! system-call point fires before the call does anything; a receive fires after the message
//! was taken (its caller waits on the thread's reply object) and before the thread runs.
//! Armed threads take the full IPC path, so the fast paths need no counting of their own.

use super::ipc::FAULT_SLOT;
use super::{Effect, IpcMemory, System};
use crate::TcbId;
use crate::cap::Cap;
use crate::tcb::{PC, Tcb};
use abi::{FaultInfo, FaultKind, InjectAt, Syscall};

/// A fault message never touches IPC buffers ([`System::transfer`] delivers it from
/// registers), so sending one needs no access to them.
struct NoBuffers;

impl IpcMemory for NoBuffers {
    fn read_word(&self, _tcb: &Tcb, _index: usize) -> u64 {
        0
    }
    fn write_word(&mut self, _tcb: &Tcb, _index: usize, _value: u64) {}
}

impl System<'_> {
    /// At the entry of system call `syscall` of the current thread (full path): fires its
    /// injection when the call is the point it counts, and then returns what the fault needs
    /// (the call itself is not performed).
    #[inline(always)]
    pub(super) fn inject_at_syscall(&mut self, syscall: Syscall) -> Option<Effect> {
        if !self.injections {
            return None;
        }
        self.inject_at_syscall_armed(syscall)
    }

    #[inline(never)]
    fn inject_at_syscall_armed(&mut self, syscall: Syscall) -> Option<Effect> {
        let me = self.current;
        let at = self.tcb(me).injection?.at;
        let context = &self.tcb(me).context;
        let reaches = match (at, syscall) {
            (InjectAt::Call, Syscall::Call) => {
                matches!(self.lookup(me, context.x(0)), Ok(Cap::Endpoint { .. }))
            }
            (InjectAt::Reply, Syscall::ReplyRecv) => match self.lookup(me, context.x(6)) {
                Ok(Cap::Reply { reply }) => self.replies[usize::from(reply)].caller.is_some(),
                _ => false,
            },
            (InjectAt::Signal, Syscall::Signal | Syscall::Send | Syscall::NBSend) => {
                matches!(self.lookup(me, context.x(0)), Ok(Cap::Notification { .. }))
            }
            _ => false,
        };
        if reaches && self.arrive(me) {
            Some(self.fire(me))
        } else {
            None
        }
    }

    /// Thread `receiver` took a message or a bound signal through a receive: fires its
    /// injection when receives are the point it counts.
    #[inline(always)]
    pub(super) fn inject_on_receive(&mut self, receiver: TcbId) {
        if self.injections {
            self.inject_on_receive_armed(receiver);
        }
    }

    #[inline(never)]
    fn inject_on_receive_armed(&mut self, receiver: TcbId) {
        let armed = self
            .tcb(receiver)
            .injection
            .is_some_and(|plan| plan.at == InjectAt::Receive);
        if armed && self.arrive(receiver) {
            let effect = self.fire(receiver);
            if effect != Effect::None {
                // Only a thread without a fault handler (the supervisor) stops the system; the
                // arch layer collects it after the call in progress ([`System::take_stop`]).
                self.stop = Some(effect);
            }
        }
    }

    /// Plans a kernel-made fault for thread `id` (the boot code sets the TCB's before the system
    /// exists; this is for a system already running).
    pub fn arm_injection(&mut self, id: TcbId, at: InjectAt, count: u32) {
        self.tcb_mut(id).injection = Some(crate::tcb::Injection { at, count, seen: 0 });
        self.injections = true;
    }

    /// What a receive-point injection into a thread without a fault handler left for the arch
    /// layer to do (stop the system), once.
    pub fn take_stop(&mut self) -> Option<Effect> {
        self.stop.take()
    }

    fn arrive(&mut self, id: TcbId) -> bool {
        self.tcb_mut(id)
            .injection
            .as_mut()
            .is_some_and(|plan| plan.arrive())
    }

    /// Makes `id` fault as if it had: the fault goes to its handler as a call, or, with no
    /// handler, the thread stops and so does the system.
    fn fire(&mut self, id: TcbId) -> Effect {
        let Some(plan) = self.tcb(id).injection else {
            debug_assert!(false, "fired an injection thread {id} does not have");
            return Effect::None;
        };
        let fault = FaultInfo {
            kind: FaultKind::Injected,
            pc: self.tcb(id).context.regs[PC],
            address: u64::from(plan.count),
            syndrome: plan.at as u64,
        };
        match self.tcb(id).fault_handler {
            Some((ep, badge)) => {
                self.tcb_mut(id).fault = Some(fault);
                self.send_ipc(&mut NoBuffers, id, ep, badge, false, true, true, FAULT_SLOT);
                Effect::None
            }
            None => {
                self.cancel_ipc(id);
                self.tcb_mut(id).fault = Some(fault);
                Effect::UnhandledFault { tcb: id }
            }
        }
    }
}
