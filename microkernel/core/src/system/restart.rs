//! Taking a thread out of whatever it waits for (suspend, restart) and restarting a server.
//!
//! Restart is the kernel half of the supervisor's policy. It must leave no thread waiting on
//! something that will never answer: every client queued on an endpoint the server receives
//! on, and the client whose call the server was serving, is answered `Restarted` (or
//! `ServerDown` when the server stays down) with its capability refreshed, and the server's
//! own pending call or receive is cancelled.
//!
//! A restart keeps the server's CNode as it is: no capability is dropped by it (so no frame
//! capability's mapping is left without its capability); a restarted server that wants its
//! slots back deletes them, and a mapped frame's deletion unmaps it.

use super::ipc::FAULT_SLOT;
use super::{Effect, System};
use crate::TcbId;
use crate::endpoint::EndpointState;
use crate::tcb::{OBJECT_LINK, ThreadState};
use abi::KernelError;

impl System<'_> {
    /// Removes `id` from every queue and reply object it waits in, leaving it `Inactive`.
    pub fn cancel_ipc(&mut self, id: TcbId) {
        match self.tcb(id).state {
            ThreadState::BlockedOnSend { ep, .. } | ThreadState::BlockedOnReceive { ep, .. } => {
                let endpoint = &mut self.endpoints[usize::from(ep)];
                endpoint.queue.remove(self.tcbs, OBJECT_LINK, id);
                if endpoint.queue.is_empty() {
                    endpoint.state = EndpointState::Idle;
                }
            }
            ThreadState::BlockedOnReply { reply, .. } => {
                let owed = &mut self.replies[usize::from(reply)].caller;
                if *owed == Some(id) {
                    *owed = None;
                }
            }
            ThreadState::BlockedOnNotification { ntfn } => {
                self.notifications[usize::from(ntfn)]
                    .waiters
                    .remove(self.tcbs, OBJECT_LINK, id);
            }
            ThreadState::Running => self.sched.dequeue(self.tcbs, id),
            ThreadState::Inactive | ThreadState::WaitingForInterrupt => {}
        }
        self.tcb_mut(id).state = ThreadState::Inactive;
    }

    /// Suspends a thread.
    pub fn suspend(&mut self, id: TcbId) {
        self.cancel_ipc(id);
    }

    /// Resumes a suspended thread (a thread blocked in IPC is left alone).
    pub fn resume(&mut self, id: TcbId) {
        if self.tcb(id).state == ThreadState::Inactive {
            self.tcb_mut(id).fault = None;
            self.tcb_mut(id).mmio = None;
            self.make_runnable(id);
        }
    }

    /// Restarts server `id`: cancels its IPC, bumps the generation of every endpoint it serves,
    /// answers its waiting clients, and asks the arch layer to reset its memory and registers.
    /// With `start` false the server stays down and its endpoints refuse sends for good.
    pub fn restart(&mut self, id: TcbId, start: bool) -> Effect {
        self.cancel_ipc(id);
        self.tcb_mut(id).fault = None;
        // A VCPU thread reset while its exit waited for the vmm, or its MMIO access for a
        // device server: that exit or access is gone with it.
        self.tcb_mut(id).vm_exit = None;
        self.tcb_mut(id).mmio = None;
        self.tcb_mut(id).generation = self.tcb(id).generation.wrapping_add(1);
        // An injected fault is counted afresh in every life.
        if let Some(plan) = self.tcb_mut(id).injection.as_mut() {
            plan.seen = 0;
        }

        for ep in 0..self.endpoints.len() {
            if self.endpoints[ep].server != Some(id) {
                continue;
            }
            let endpoint = &mut self.endpoints[ep];
            endpoint.generation = endpoint.generation.wrapping_add(1);
            endpoint.down = !start;
            // Only clients can be queued here now: the server's own receive was cancelled.
            while let Some(client) = self.endpoints[ep].queue.pop_front(self.tcbs, OBJECT_LINK) {
                if let ThreadState::BlockedOnSend { slot, .. } = self.tcb(client).state {
                    self.answer_client(client, ep as u16, slot);
                }
            }
            self.endpoints[ep].state = EndpointState::Idle;
        }
        self.mmio_server_restarted(id);

        // The client whose call the server was serving when it died.
        if let Some(client) = self.replies[usize::from(id)].caller.take()
            && let ThreadState::BlockedOnReply { ep, slot, .. } = self.tcb(client).state
        {
            self.answer_client(client, ep, slot);
        }

        if start {
            self.make_runnable(id);
        }
        Effect::ResetServer { tcb: id }
    }

    /// Wakes a client of a restarted (or downed) server with the typed answer.
    fn answer_client(&mut self, client: TcbId, ep: u16, slot: u32) {
        let endpoint = self.endpoints[usize::from(ep)];
        let generation = u64::from(endpoint.generation);
        // A faulting thread whose handler died is not answered: it retries the faulting access
        // when resumed, and faults again to the restarted handler. A guest's fast-path MMIO
        // access to a restarted or downed device server faults again and takes the slow path,
        // since the route's endpoint generation no longer matches (docs/MMIO.md).
        let retries = self.abandon_fault(client);
        if !retries && endpoint.down {
            self.set_error(client, KernelError::ServerDown { generation });
        } else if !retries {
            self.set_error(client, KernelError::Restarted { generation });
            if slot != FAULT_SLOT {
                self.refresh_generation(client, slot, ep);
            }
        }
        self.tcb_mut(client).state = ThreadState::Inactive;
        self.make_runnable(client);
    }
}
