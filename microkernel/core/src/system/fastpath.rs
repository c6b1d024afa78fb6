//! The IPC fast path: Call and ReplyRecv in their common shapes, straight from the syscall
//! registers to the partner's, with a direct switch and no scheduler queue traffic.
//!
//! Preconditions mirror seL4's `fastpath_call` / `fastpath_reply_recv`: at most four message
//! words, no capability transfer, a valid capability of the right kind and rights, a current
//! generation, a partner already waiting, and a partner whose priority is at least that of every
//! ready thread (so switching to it is what the scheduler would do anyway). Anything else
//! returns [`FastpathOutcome::Fallback`] before any state has changed, and the caller runs the
//! full path.

use super::System;
use crate::cap::Cap;
use crate::endpoint::EndpointState;
use crate::tcb::{OBJECT_LINK, ThreadState};
use abi::message::REGISTER_MESSAGE_WORDS;
use abi::{MessageInfo, Rights};

/// Whether the fast path handled the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FastpathOutcome {
    /// Done: `current` is the thread to run.
    Switched,
    /// Nothing changed; take the full path.
    Fallback,
}

impl System<'_> {
    /// `Call` on an endpoint with a receiver waiting.
    pub fn fastpath_call(&mut self) -> FastpathOutcome {
        let me = self.current;
        let context = &self.tcb(me).context;
        let (cptr, info) = (context.x(0), MessageInfo::from_raw(context.x(1)));
        if info.extra_caps() != 0 || info.length() > REGISTER_MESSAGE_WORDS {
            return FastpathOutcome::Fallback;
        }
        let Ok(Cap::Endpoint {
            ep,
            badge,
            rights,
            generation,
        }) = self.lookup(me, cptr)
        else {
            return FastpathOutcome::Fallback;
        };
        let endpoint = self.endpoints[usize::from(ep)];
        if !rights.contains(Rights::WRITE)
            || endpoint.down
            || endpoint.generation != generation
            || endpoint.state != EndpointState::Receiving
        {
            return FastpathOutcome::Fallback;
        }
        let receiver = endpoint.queue.head;
        let ThreadState::BlockedOnReceive {
            reply: Some(reply), ..
        } = self.tcb(receiver).state
        else {
            return FastpathOutcome::Fallback;
        };
        if !self.outranks_ready(receiver) || self.replies[usize::from(reply)].caller.is_some() {
            return FastpathOutcome::Fallback;
        }

        // Nothing can fail from here on.
        let endpoint = &mut self.endpoints[usize::from(ep)];
        endpoint.queue.remove(self.tcbs, OBJECT_LINK, receiver);
        if endpoint.queue.is_empty() {
            endpoint.state = EndpointState::Idle;
        }
        self.replies[usize::from(reply)].caller = Some(me);
        self.tcb_mut(me).state = ThreadState::BlockedOnReply {
            reply,
            ep,
            slot: cptr as u32,
        };
        self.copy_registers(me, receiver, badge, info);
        self.tcb_mut(receiver).state = ThreadState::Running;
        self.current = receiver;
        FastpathOutcome::Switched
    }

    /// `ReplyRecv`: answer the caller waiting on the reply object, then wait on the endpoint,
    /// when no sender is queued there.
    pub fn fastpath_reply_recv(&mut self) -> FastpathOutcome {
        let me = self.current;
        let context = &self.tcb(me).context;
        let (cptr, info, reply_cptr) = (
            context.x(0),
            MessageInfo::from_raw(context.x(1)),
            context.x(6),
        );
        if info.extra_caps() != 0 || info.length() > REGISTER_MESSAGE_WORDS {
            return FastpathOutcome::Fallback;
        }
        let Ok(Cap::Reply { reply }) = self.lookup(me, reply_cptr) else {
            return FastpathOutcome::Fallback;
        };
        let Ok(Cap::Endpoint { ep, rights, .. }) = self.lookup(me, cptr) else {
            return FastpathOutcome::Fallback;
        };
        let Some(caller) = self.replies[usize::from(reply)].caller else {
            return FastpathOutcome::Fallback;
        };
        if !rights.contains(Rights::READ)
            || self.endpoints[usize::from(ep)].state == EndpointState::Sending
            || self.tcb(caller).fault.is_some()
            || !self.outranks_ready(caller)
        {
            return FastpathOutcome::Fallback;
        }

        // Nothing can fail from here on.
        self.replies[usize::from(reply)].caller = None;
        self.tcb_mut(me).state = ThreadState::BlockedOnReceive {
            ep,
            reply: Some(reply),
        };
        let endpoint = &mut self.endpoints[usize::from(ep)];
        endpoint.queue.push_back(self.tcbs, OBJECT_LINK, me);
        endpoint.state = EndpointState::Receiving;
        self.copy_registers(me, caller, 0, info);
        self.tcb_mut(caller).state = ThreadState::Running;
        self.current = caller;
        FastpathOutcome::Switched
    }

    /// Whether `id` may run ahead of every ready thread.
    fn outranks_ready(&self, id: crate::TcbId) -> bool {
        self.sched
            .highest_priority()
            .is_none_or(|best| self.tcb(id).priority >= best)
    }

    fn copy_registers(
        &mut self,
        from: crate::TcbId,
        to: crate::TcbId,
        badge: u64,
        info: MessageInfo,
    ) {
        let context = &self.tcb(from).context;
        let source = [
            context.regs[2],
            context.regs[3],
            context.regs[4],
            context.regs[5],
        ];
        let target = &mut self.tcb_mut(to).context.regs;
        target[0] = badge;
        target[1] = MessageInfo::new(info.label(), 0, info.length() as u64).raw();
        target[2..6].copy_from_slice(&source);
    }
}
