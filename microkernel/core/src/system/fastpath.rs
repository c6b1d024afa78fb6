//! The IPC fast path: Call and ReplyRecv in their common shapes, straight from the syscall
//! registers to the partner's, with a direct switch and no scheduler queue traffic.
//!
//! Preconditions mirror seL4's `fastpath_call` / `fastpath_reply_recv`: at most four message
//! words, no capability transfer, a valid capability of the right kind and rights, a current
//! generation, a partner already waiting, and a partner whose priority is above that of every
//! ready thread (so switching to it is what the scheduler would do anyway: a woken thread joins
//! the tail of its level, so a ready thread of equal priority would run first). Anything else
//! returns [`FastpathOutcome::Fallback`] before any state has changed, and the caller runs the
//! full path.

use super::System;
use crate::cap::Cap;
use crate::endpoint::EndpointState;
use crate::queue::{Link, NONE, Queue};
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
    /// Tries the fast path for system call `number`; on `Switched`, `current` is the thread to
    /// run and no other scheduling decision is needed (the partner outranks every ready thread).
    #[inline(always)]
    pub fn fastpath(&mut self, number: u64) -> FastpathOutcome {
        if number == abi::Syscall::Call as u64 {
            self.fastpath_call()
        } else if number == abi::Syscall::ReplyRecv as u64 {
            self.fastpath_reply_recv()
        } else {
            FastpathOutcome::Fallback
        }
    }

    /// `Call` on an endpoint with a receiver waiting.
    #[inline(always)]
    pub fn fastpath_call(&mut self) -> FastpathOutcome {
        // Disjoint borrows of the pools, so their bases stay in registers.
        let System {
            tcbs,
            endpoints,
            replies,
            slots,
            sched,
            current,
            injections,
            ..
        } = self;
        let me = *current;
        let Some(caller) = tcbs.get(usize::from(me)) else {
            return FastpathOutcome::Fallback;
        };
        let (cptr, info) = (
            caller.context.regs[0],
            MessageInfo::from_raw(caller.context.regs[1]),
        );
        if info.extra_caps() != 0 || info.length() > REGISTER_MESSAGE_WORDS {
            return FastpathOutcome::Fallback;
        }
        let Ok(Cap::Endpoint {
            ep,
            badge,
            rights,
            generation,
        }) = crate::cnode::lookup(slots, caller.cnode, cptr)
        else {
            return FastpathOutcome::Fallback;
        };
        let Some(endpoint) = endpoints.get_mut(usize::from(ep)) else {
            return FastpathOutcome::Fallback;
        };
        if !rights.contains(Rights::WRITE)
            || endpoint.down
            || endpoint.generation != generation
            || endpoint.state != EndpointState::Receiving
        {
            return FastpathOutcome::Fallback;
        }
        let receiver = endpoint.queue.head;
        let Some(target) = tcbs.get(usize::from(receiver)) else {
            return FastpathOutcome::Fallback;
        };
        let ThreadState::BlockedOnReceive {
            reply: Some(reply), ..
        } = target.state
        else {
            return FastpathOutcome::Fallback;
        };
        let next_waiter = target.links[OBJECT_LINK].next;
        if sched
            .highest_priority()
            .is_some_and(|best| target.priority <= best)
            || next_waiter != NONE
            || (*injections && (caller.injection.is_some() || target.injection.is_some()))
            || replies
                .get(usize::from(reply))
                .is_none_or(|r| r.caller.is_some())
        {
            return FastpathOutcome::Fallback;
        }

        // Nothing can fail from here on: the receiver was the only waiter.
        endpoint.queue = Queue::EMPTY;
        endpoint.state = EndpointState::Idle;
        replies[usize::from(reply)].caller = Some(me);
        let registers = {
            let caller = &mut tcbs[usize::from(me)];
            caller.state = ThreadState::BlockedOnReply {
                reply,
                ep,
                slot: cptr as u32,
            };
            let r = &caller.context.regs;
            [r[2], r[3], r[4], r[5]]
        };
        let target = &mut tcbs[usize::from(receiver)];
        target.links[OBJECT_LINK] = Link::EMPTY;
        deliver(target, badge, info, registers);
        *current = receiver;
        FastpathOutcome::Switched
    }

    /// `ReplyRecv`: answer the caller waiting on the reply object, then wait on the endpoint,
    /// when nobody else waits there.
    #[inline(always)]
    pub fn fastpath_reply_recv(&mut self) -> FastpathOutcome {
        let System {
            tcbs,
            endpoints,
            replies,
            slots,
            sched,
            current,
            notifications,
            injections,
            ..
        } = self;
        let me = *current;
        let Some(server) = tcbs.get(usize::from(me)) else {
            return FastpathOutcome::Fallback;
        };
        let context = &server.context;
        let (cptr, info, reply_cptr) = (
            context.regs[0],
            MessageInfo::from_raw(context.regs[1]),
            context.regs[6],
        );
        if info.extra_caps() != 0 || info.length() > REGISTER_MESSAGE_WORDS {
            return FastpathOutcome::Fallback;
        }
        let Ok(Cap::Reply { reply }) = crate::cnode::lookup(slots, server.cnode, reply_cptr) else {
            return FastpathOutcome::Fallback;
        };
        let Ok(Cap::Endpoint { ep, rights, .. }) = crate::cnode::lookup(slots, server.cnode, cptr)
        else {
            return FastpathOutcome::Fallback;
        };
        let Some(Some(caller)) = replies.get(usize::from(reply)).map(|r| r.caller) else {
            return FastpathOutcome::Fallback;
        };
        let Some(endpoint) = endpoints.get_mut(usize::from(ep)) else {
            return FastpathOutcome::Fallback;
        };
        let Some(target) = tcbs.get(usize::from(caller)) else {
            return FastpathOutcome::Fallback;
        };
        if !rights.contains(Rights::READ)
            || endpoint.state != EndpointState::Idle
            || target.fault.is_some()
            || (*injections && server.injection.is_some())
            || server.bound_notification.is_some_and(|ntfn| {
                notifications
                    .get(usize::from(ntfn))
                    .is_none_or(|n| n.word != 0)
            })
            || sched
                .highest_priority()
                .is_some_and(|best| target.priority <= best)
        {
            return FastpathOutcome::Fallback;
        }

        // Nothing can fail from here on: the server becomes the endpoint's only waiter.
        replies[usize::from(reply)].caller = None;
        endpoint.queue = Queue { head: me, tail: me };
        endpoint.state = EndpointState::Receiving;
        let registers = {
            let server = &mut tcbs[usize::from(me)];
            server.state = ThreadState::BlockedOnReceive {
                ep,
                reply: Some(reply),
            };
            server.links[OBJECT_LINK] = Link {
                prev: NONE,
                next: NONE,
                queued: true,
            };
            let r = &server.context.regs;
            [r[2], r[3], r[4], r[5]]
        };
        deliver(&mut tcbs[usize::from(caller)], 0, info, registers);
        *current = caller;
        FastpathOutcome::Switched
    }
}

/// Hands a message to a thread that becomes runnable: badge, message info and four registers.
#[inline(always)]
fn deliver(target: &mut crate::tcb::Tcb, badge: u64, info: MessageInfo, registers: [u64; 4]) {
    let regs = &mut target.context.regs;
    regs[0] = badge;
    regs[1] = MessageInfo::new(info.label(), 0, info.length() as u64).raw();
    regs[2..6].copy_from_slice(&registers);
    target.state = ThreadState::Running;
}
