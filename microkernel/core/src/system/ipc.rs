//! The IPC state machine (the slow path): send, call, receive, reply, signal, wait, and fault
//! delivery. The fast path ([`super::fastpath`]) handles the common Call/ReplyRecv shapes and
//! falls back here on anything else; both must leave the same state behind.

use super::{Effect, IpcMemory, System};
use crate::cap::Cap;
use crate::endpoint::EndpointState;
use crate::queue::NONE;
use crate::tcb::{OBJECT_LINK, ThreadState};
use crate::{EndpointId, NotificationId, ReplyId, TcbId};
use abi::message::{
    IPC_BUFFER_RECEIVE_SLOT, IPC_BUFFER_SEND_CAP, MAX_MESSAGE_WORDS, REGISTER_MESSAGE_WORDS,
};
use abi::{FaultInfo, FaultKind, KernelError, MessageInfo, Rights};

/// Slot recorded for a fault message (no capability slot to refresh).
pub(super) const FAULT_SLOT: u32 = u32::MAX;

impl System<'_> {
    /// Send, NBSend and Call: to an endpoint, a notification (Send = Signal), or an invocation of
    /// any other object.
    pub(super) fn sys_send(
        &mut self,
        memory: &mut impl IpcMemory,
        blocking: bool,
        is_call: bool,
    ) -> Effect {
        let me = self.current;
        let cptr = self.tcb(me).context.x(0);
        let cap = match self.lookup(me, cptr) {
            Ok(cap) => cap,
            Err(error) => {
                self.set_error(me, error);
                return Effect::None;
            }
        };
        match cap {
            Cap::Endpoint {
                ep,
                badge,
                rights,
                generation,
            } => {
                if let Err(error) = self.check_send(me, cptr, ep, rights, generation) {
                    self.set_error(me, error);
                    return Effect::None;
                }
                let can_grant = rights.contains(Rights::GRANT);
                self.send_ipc(
                    memory,
                    me,
                    ep,
                    badge,
                    can_grant,
                    is_call,
                    blocking,
                    cptr as u32,
                );
                Effect::None
            }
            Cap::Notification {
                ntfn,
                badge,
                rights,
            } if !is_call => {
                if rights.contains(Rights::WRITE) {
                    self.signal(ntfn, badge);
                } else {
                    self.set_error(me, KernelError::InsufficientRights { slot: cptr });
                }
                Effect::None
            }
            _ if blocking => {
                let info = MessageInfo::from_raw(self.tcb(me).context.x(1));
                let args = [2, 3, 4, 5].map(|r| self.tcb(me).context.x(r));
                match crate::invocation::decode(self, me, cap, cptr, info.label(), args) {
                    Ok(invocation) => self.perform(me, invocation),
                    Err(error) => {
                        self.set_error(me, error);
                        Effect::None
                    }
                }
            }
            _ => {
                self.set_error(me, KernelError::WrongObjectType { slot: cptr });
                Effect::None
            }
        }
    }

    /// Checks a send through an endpoint capability: rights, and the server's generation. A
    /// stale capability is refreshed and answered `Restarted` once.
    pub(super) fn check_send(
        &mut self,
        me: TcbId,
        cptr: u64,
        ep: EndpointId,
        rights: Rights,
        generation: u32,
    ) -> Result<(), KernelError> {
        if !rights.contains(Rights::WRITE) {
            return Err(KernelError::InsufficientRights { slot: cptr });
        }
        let endpoint = self.endpoints[usize::from(ep)];
        if endpoint.down {
            return Err(KernelError::ServerDown {
                generation: u64::from(endpoint.generation),
            });
        }
        if generation != endpoint.generation {
            self.refresh_generation(me, cptr as u32, ep);
            return Err(KernelError::Restarted {
                generation: u64::from(endpoint.generation),
            });
        }
        Ok(())
    }

    /// Brings the endpoint capability in `slot` of `id`'s CNode up to the endpoint's generation.
    pub(super) fn refresh_generation(&mut self, id: TcbId, slot: u32, ep: EndpointId) {
        let current = self.endpoints[usize::from(ep)].generation;
        let Ok(index) = crate::cnode::slot_index(self.tcb(id).cnode, u64::from(slot)) else {
            return;
        };
        if let Some(Cap::Endpoint {
            ep: held,
            generation,
            ..
        }) = self.slots.get_mut(index)
            && *held == ep
        {
            *generation = current;
        }
    }

    /// Sends from `sender` to `ep`: hands the message to a waiting receiver, or queues.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn send_ipc(
        &mut self,
        memory: &mut impl IpcMemory,
        sender: TcbId,
        ep: EndpointId,
        badge: u64,
        can_grant: bool,
        is_call: bool,
        blocking: bool,
        slot: u32,
    ) {
        let endpoint = &mut self.endpoints[usize::from(ep)];
        if endpoint.state == EndpointState::Receiving {
            let Some(receiver) = endpoint.queue.pop_front(self.tcbs, OBJECT_LINK) else {
                return;
            };
            if endpoint.queue.is_empty() {
                endpoint.state = EndpointState::Idle;
            }
            let reply = match self.tcb(receiver).state {
                ThreadState::BlockedOnReceive { reply, .. } => reply,
                _ => None,
            };
            self.transfer(memory, sender, receiver, badge, can_grant);
            if is_call || self.tcb(sender).fault.is_some() {
                self.block_on_reply(sender, reply, ep, slot);
            }
            self.make_runnable(receiver);
            self.inject_on_receive(receiver);
        } else if blocking {
            self.tcb_mut(sender).state = ThreadState::BlockedOnSend {
                ep,
                badge,
                is_call,
                can_grant,
                slot,
            };
            self.sched.dequeue(self.tcbs, sender);
            let endpoint = &mut self.endpoints[usize::from(ep)];
            endpoint.queue.push_back(self.tcbs, OBJECT_LINK, sender);
            endpoint.state = EndpointState::Sending;
        }
    }

    /// Parks a caller on the receiver's reply object. A receive without a reply object cannot
    /// be answered: the caller is told so instead of waiting forever.
    fn block_on_reply(&mut self, caller: TcbId, reply: Option<ReplyId>, ep: EndpointId, slot: u32) {
        match reply {
            Some(reply) => {
                self.replies[usize::from(reply)].caller = Some(caller);
                self.tcb_mut(caller).state = ThreadState::BlockedOnReply { reply, ep, slot };
                self.sched.dequeue(self.tcbs, caller);
            }
            None => {
                // A faulting thread is not told (its registers are its own, a guest's
                // included): it runs the faulting instruction again.
                if !self.abandon_fault(caller) {
                    self.set_error(caller, KernelError::Cancelled);
                }
                self.make_runnable(caller);
            }
        }
    }

    /// Recv: on an endpoint (with the reply object named in `x6`) or a notification.
    pub(super) fn sys_recv(&mut self, memory: &mut impl IpcMemory) {
        let me = self.current;
        let cptr = self.tcb(me).context.x(0);
        match self.lookup(me, cptr) {
            Ok(Cap::Endpoint { ep, rights, .. }) => {
                if !rights.contains(Rights::READ) {
                    return self.set_error(me, KernelError::InsufficientRights { slot: cptr });
                }
                let reply_cptr = self.tcb(me).context.x(6);
                let reply = match reply_cptr {
                    0 => None,
                    _ => match self.lookup(me, reply_cptr) {
                        Ok(Cap::Reply { reply }) => Some(reply),
                        Ok(_) => {
                            return self
                                .set_error(me, KernelError::WrongObjectType { slot: reply_cptr });
                        }
                        Err(error) => return self.set_error(me, error),
                    },
                };
                self.recv_ipc(memory, me, ep, reply);
            }
            Ok(Cap::Notification { .. }) => self.sys_wait(true),
            Ok(_) => self.set_error(me, KernelError::WrongObjectType { slot: cptr }),
            Err(error) => self.set_error(me, error),
        }
    }

    /// Receives on `ep`: takes a waiting sender's message, or queues.
    pub(super) fn recv_ipc(
        &mut self,
        memory: &mut impl IpcMemory,
        receiver: TcbId,
        ep: EndpointId,
        reply: Option<ReplyId>,
    ) {
        if let Some(reply) = reply {
            // A reply object still owed to an earlier caller: that caller will never be
            // answered through it now.
            if let Some(stale) = self.replies[usize::from(reply)].caller.take() {
                if !self.abandon_fault(stale) {
                    self.set_error(stale, KernelError::Cancelled);
                }
                self.make_runnable(stale);
            }
        }
        if let Some(ntfn) = self.tcb(receiver).bound_notification {
            let notification = &mut self.notifications[usize::from(ntfn)];
            if notification.word != 0 {
                // A pending signal of its bound notification is received first (as seL4's
                // receiveIPC does): the thread does not block.
                let word = core::mem::take(&mut notification.word);
                deliver_bound_signal(self.tcb_mut(receiver), word);
                self.inject_on_receive(receiver);
                return;
            }
        }
        let endpoint = &mut self.endpoints[usize::from(ep)];
        if endpoint.state == EndpointState::Sending {
            let Some(sender) = endpoint.queue.pop_front(self.tcbs, OBJECT_LINK) else {
                return;
            };
            if endpoint.queue.is_empty() {
                endpoint.state = EndpointState::Idle;
            }
            let ThreadState::BlockedOnSend {
                badge,
                is_call,
                can_grant,
                slot,
                ..
            } = self.tcb(sender).state
            else {
                return;
            };
            self.transfer(memory, sender, receiver, badge, can_grant);
            if is_call || self.tcb(sender).fault.is_some() {
                self.block_on_reply(sender, reply, ep, slot);
            } else {
                self.make_runnable(sender);
            }
            self.inject_on_receive(receiver);
        } else {
            self.tcb_mut(receiver).state = ThreadState::BlockedOnReceive { ep, reply };
            self.sched.dequeue(self.tcbs, receiver);
            let endpoint = &mut self.endpoints[usize::from(ep)];
            endpoint.queue.push_back(self.tcbs, OBJECT_LINK, receiver);
            endpoint.state = EndpointState::Receiving;
        }
    }

    /// The reply half of ReplyRecv. Returns whether the receive half should go on (false when
    /// `x6` named no reply object: the error is the answer), and what the arch layer must do
    /// (a guest exception to inject).
    pub(super) fn sys_reply(&mut self, memory: &mut impl IpcMemory) -> (bool, Effect) {
        let me = self.current;
        let reply_cptr = self.tcb(me).context.x(6);
        let reply = match self.lookup(me, reply_cptr) {
            Ok(Cap::Reply { reply }) => reply,
            Ok(_) => {
                self.set_error(me, KernelError::WrongObjectType { slot: reply_cptr });
                return (false, Effect::None);
            }
            Err(error) => {
                self.set_error(me, error);
                return (false, Effect::None);
            }
        };
        let Some(caller) = self.replies[usize::from(reply)].caller.take() else {
            return (true, Effect::None);
        };
        let mut effect = Effect::None;
        match self.tcb_mut(caller).fault.take() {
            // A reply may carry a capability: the caller opted in by naming a receive slot in
            // its IPC buffer before calling (how the memory server lends frames).
            None => self.transfer(memory, me, caller, 0, true),
            Some(fault) if fault.kind == FaultKind::Mmio => {
                effect = self.resume_mmio(me, caller, fault);
            }
            Some(fault) if fault.kind == FaultKind::VmExit => {
                effect = self.resume_guest(memory, me, caller);
                if let Effect::WaitForInterrupt { .. } = effect {
                    // The arch layer decides: the line may already be asserted.
                    self.tcb_mut(caller).state = ThreadState::WaitingForInterrupt;
                    return (true, effect);
                }
            }
            // A reply to a fault message resumes the faulting thread where it stopped.
            Some(_) => {}
        }
        self.make_runnable(caller);
        (true, effect)
    }

    /// Copies a message (or a pending fault) from `from` to `to`: registers, buffer words, and
    /// at most one capability when the sender may grant.
    pub(super) fn transfer(
        &mut self,
        memory: &mut impl IpcMemory,
        from: TcbId,
        to: TcbId,
        badge: u64,
        can_grant: bool,
    ) {
        if let Some(fault) = self.tcb(from).fault {
            if let (FaultKind::VmExit, Some(exit)) = (fault.kind, self.tcb(from).vm_exit) {
                return self.deliver_vm_exit(memory, to, badge, exit);
            }
            if let (FaultKind::Mmio, Some(call)) = (fault.kind, self.tcb(from).mmio) {
                return self.deliver_mmio_message(to, badge, call);
            }
            return self.deliver_fault_message(to, badge, fault);
        }
        let info = MessageInfo::from_raw(self.tcb(from).context.x(1));
        let length = info.length().min(MAX_MESSAGE_WORDS);
        let registers = [2, 3, 4, 5].map(|r| self.tcb(from).context.x(r));
        if length > REGISTER_MESSAGE_WORDS {
            let (source, target) = (self.tcb(from), self.tcb(to));
            memory.copy_words(
                source,
                target,
                REGISTER_MESSAGE_WORDS,
                length - REGISTER_MESSAGE_WORDS,
            );
        }
        let caps = if info.extra_caps() > 0 && can_grant {
            self.transfer_cap(memory, from, to)
        } else {
            0
        };
        let context = &mut self.tcb_mut(to).context;
        for (index, value) in registers.iter().enumerate() {
            context.set_x(2 + index, *value);
        }
        context.set_x(0, badge);
        context.set_x(1, MessageInfo::new(info.label(), caps, length as u64).raw());
    }

    /// Moves a copy of the sender's named capability into the receiver's accepting slot.
    /// Returns the number of capabilities transferred (0 or 1); a transfer that cannot happen
    /// is dropped, the message still goes through (seL4's rule).
    fn transfer_cap(&mut self, memory: &mut impl IpcMemory, from: TcbId, to: TcbId) -> u64 {
        let send_cptr = memory.read_word(self.tcb(from), IPC_BUFFER_SEND_CAP);
        let receive_cptr = memory.read_word(self.tcb(to), IPC_BUFFER_RECEIVE_SLOT);
        if receive_cptr == 0 {
            return 0;
        }
        let Ok(cap) = self.lookup(from, send_cptr) else {
            return 0;
        };
        let Ok(copy) = cap.derive(Rights::ALL, None) else {
            return 0;
        };
        // Only into an empty slot: a received capability never overwrites one (which could drop
        // a mapped frame's capability without the unmap its deletion owes).
        let Ok(index) = crate::cnode::empty_slot(self.slots, self.tcb(to).cnode, receive_cptr)
        else {
            return 0;
        };
        self.slots[index] = copy;
        1
    }

    /// Forgets the fault call `client` waits in, which will never be answered (its handler
    /// was restarted or is down, or received it without a reply object): resumed, the thread
    /// runs the faulting instruction again and faults afresh. A guest whose hypercall was lost
    /// is put back on its `hvc` (the exit was taken with the PC already past it); a guest's
    /// MMIO access was never stepped over. Returns false, changing nothing, when `client`
    /// waits in an ordinary call.
    pub(super) fn abandon_fault(&mut self, client: TcbId) -> bool {
        let tcb = self.tcb_mut(client);
        if tcb.fault.take().is_none() {
            return false;
        }
        tcb.mmio = None;
        if let Some(exit) = tcb.vm_exit.take() {
            const HVC64: u64 = 0x16;
            if exit.kind == abi::vm::VmExitKind::Hypercall && exit.esr >> 26 == HVC64 {
                tcb.context.regs[crate::tcb::PC] = exit.pc.wrapping_sub(4);
            }
        }
        true
    }

    fn deliver_fault_message(&mut self, to: TcbId, badge: u64, fault: FaultInfo) {
        let words = fault.to_words();
        let context = &mut self.tcb_mut(to).context;
        context.set_x(0, badge);
        context.set_x(
            1,
            MessageInfo::new(fault.kind as u64, 0, words.len() as u64).raw(),
        );
        for (index, value) in words.iter().enumerate() {
            context.set_x(2 + index, *value);
        }
    }

    /// The current thread faulted: send the fault to its handler as a call, so that the
    /// handler's reply resumes it. A thread with no handler stops the system.
    pub fn handle_fault(&mut self, memory: &mut impl IpcMemory, fault: FaultInfo) -> Effect {
        let me = self.current;
        if me == NONE {
            return Effect::None;
        }
        self.tcb_mut(me).fault = Some(fault);
        match self.tcb(me).fault_handler {
            Some((ep, badge)) => {
                self.send_ipc(memory, me, ep, badge, false, true, true, FAULT_SLOT);
                Effect::None
            }
            None => {
                self.tcb_mut(me).state = ThreadState::Inactive;
                Effect::UnhandledFault { tcb: me }
            }
        }
    }

    pub(super) fn sys_signal(&mut self) {
        let me = self.current;
        let cptr = self.tcb(me).context.x(0);
        match self.lookup(me, cptr) {
            Ok(Cap::Notification {
                ntfn,
                badge,
                rights,
            }) if rights.contains(Rights::WRITE) => self.signal(ntfn, badge),
            Ok(Cap::Notification { .. }) => {
                self.set_error(me, KernelError::InsufficientRights { slot: cptr })
            }
            Ok(_) => self.set_error(me, KernelError::WrongObjectType { slot: cptr }),
            Err(error) => self.set_error(me, error),
        }
    }

    /// ORs `badge` into the notification, or wakes its first waiter with it; with no waiter,
    /// a bound thread blocked receiving on an endpoint leaves that endpoint and takes the
    /// signal (seL4's bound notification).
    pub fn signal(&mut self, ntfn: NotificationId, badge: u64) {
        let notification = &mut self.notifications[usize::from(ntfn)];
        if let Some(waiter) = notification.waiters.pop_front(self.tcbs, OBJECT_LINK) {
            let word = core::mem::take(&mut notification.word) | badge;
            let context = &mut self.tcb_mut(waiter).context;
            context.set_x(0, word);
            context.set_x(1, MessageInfo::new(0, 0, 0).raw());
            self.make_runnable(waiter);
            return;
        }
        let bound = notification.bound;
        if let Some(tcb) = bound
            && let ThreadState::BlockedOnReceive { ep, .. } = self.tcb(tcb).state
        {
            let word = core::mem::take(&mut self.notifications[usize::from(ntfn)].word) | badge;
            let endpoint = &mut self.endpoints[usize::from(ep)];
            endpoint.queue.remove(self.tcbs, OBJECT_LINK, tcb);
            if endpoint.queue.is_empty() {
                endpoint.state = EndpointState::Idle;
            }
            deliver_bound_signal(self.tcb_mut(tcb), word);
            self.make_runnable(tcb);
            self.inject_on_receive(tcb);
            return;
        }
        self.notifications[usize::from(ntfn)].word |= badge;
    }

    /// Wait (blocking) or Poll on the notification named by `x0`.
    pub(super) fn sys_wait(&mut self, blocking: bool) {
        let me = self.current;
        let cptr = self.tcb(me).context.x(0);
        let ntfn = match self.lookup(me, cptr) {
            Ok(Cap::Notification { ntfn, rights, .. }) if rights.contains(Rights::READ) => ntfn,
            Ok(Cap::Notification { .. }) => {
                return self.set_error(me, KernelError::InsufficientRights { slot: cptr });
            }
            Ok(_) => return self.set_error(me, KernelError::WrongObjectType { slot: cptr }),
            Err(error) => return self.set_error(me, error),
        };
        let notification = &mut self.notifications[usize::from(ntfn)];
        if notification.word != 0 || !blocking {
            let word = core::mem::take(&mut notification.word);
            let context = &mut self.tcb_mut(me).context;
            context.set_x(0, word);
            context.set_x(1, MessageInfo::new(0, 0, 0).raw());
        } else {
            notification.waiters.push_back(self.tcbs, OBJECT_LINK, me);
            self.tcb_mut(me).state = ThreadState::BlockedOnNotification { ntfn };
            self.sched.dequeue(self.tcbs, me);
        }
    }
}

/// What a receive returns for a bound notification's signal: the word in `x0`, the label
/// [`abi::message::BOUND_NOTIFICATION_LABEL`], no message words.
fn deliver_bound_signal(tcb: &mut crate::tcb::Tcb, word: u64) {
    tcb.context.set_x(0, word);
    tcb.context.set_x(
        1,
        MessageInfo::new(abi::message::BOUND_NOTIFICATION_LABEL, 0, 0).raw(),
    );
}
