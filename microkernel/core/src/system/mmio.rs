//! The MMIO fast path in the system (docs/MMIO.md): a guest's access to a page holding a
//! current MMIO marker becomes a call from its VCPU thread straight to the route's device
//! server (or a doorbell signal), the device server's reply completes the load or store, and the
//! MMIO invocations keep each VM's routes and generation. The decision itself is
//! [`crate::mmio::decide`].

use super::ipc::FAULT_SLOT;
use super::{Effect, IpcMemory, System};
use crate::TcbId;
use crate::mmio::{Decision, EndpointStatus, MmioCall, MmioInvocation};
use crate::queue::NONE;
use crate::stage2::Level;
use crate::tcb::PC;
use abi::mmio::{MMIO_MESSAGE_WORDS, MarkerAction, REPLY_DONE};
use abi::{FaultInfo, FaultKind, MessageInfo};

/// Whether [`System::mmio_fastpath`] took the access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmioOutcome {
    /// Done: the VCPU thread called the device server (and waits for it), or rang a doorbell
    /// and runs on past the store. No effect for the arch layer; it schedules as after any
    /// exception.
    Handled,
    /// Nothing changed: deliver the exit to the vmm as usual.
    Fallback,
}

impl System<'_> {
    /// The MMIO fast path for the current thread, a VCPU thread that took a stage-2 data abort:
    /// `syndrome` (ESR_EL2), `far` (FAR_EL2), `ipa` (HPFAR_EL2's page | FAR's low 12 bits),
    /// and `found`, the level and descriptor where the walk for `ipa` stopped
    /// ([`crate::stage2::marker::descriptor_at`] on the VM's stage-2 root). A store's value is
    /// read from the guest's saved registers.
    ///
    /// On [`MmioOutcome::Fallback`] nothing has changed and the exit goes to the vmm; on
    /// `Handled` the access was sent to the device server as a call (as
    /// [`System::handle_fault`] sends an exit to the vmm) or a doorbell was signalled and the
    /// guest stepped over the store.
    pub fn mmio_fastpath(
        &mut self,
        memory: &mut impl IpcMemory,
        syndrome: u64,
        far: u64,
        ipa: u64,
        found: (Level, u64),
    ) -> MmioOutcome {
        let me = self.current;
        if me == NONE {
            return MmioOutcome::Fallback;
        }
        let Some(state) = self
            .tcb(me)
            .vcpu
            .and_then(|vm| self.mmio.get(usize::from(vm)))
        else {
            return MmioOutcome::Fallback;
        };
        let endpoints = &*self.endpoints;
        let endpoint = |ep: crate::EndpointId| {
            endpoints.get(usize::from(ep)).map(|e| EndpointStatus {
                generation: e.generation,
                down: e.down,
            })
        };
        let registers = &self.tcb(me).context.regs[..31];
        match crate::mmio::decide(syndrome, ipa, found, state, endpoint, registers) {
            Decision::Fallback => MmioOutcome::Fallback,
            Decision::Doorbell {
                notification,
                badge,
            } => {
                self.signal(notification, badge);
                let context = &mut self.tcb_mut(me).context;
                context.regs[PC] = context.regs[PC].wrapping_add(4);
                MmioOutcome::Handled
            }
            Decision::Call {
                endpoint,
                badge,
                access,
                message,
            } => {
                let tcb = self.tcb_mut(me);
                tcb.mmio = Some(MmioCall { access, message });
                tcb.fault = Some(FaultInfo {
                    kind: FaultKind::Mmio,
                    pc: tcb.context.regs[PC],
                    address: far,
                    syndrome,
                });
                self.send_ipc(memory, me, endpoint, badge, false, true, true, FAULT_SLOT);
                MmioOutcome::Handled
            }
        }
    }

    /// Hands a fast-path MMIO access to the device server: badge, label
    /// [`FaultKind::Mmio`], the four words of [`abi::mmio::MmioMessage`].
    pub(super) fn deliver_mmio_message(&mut self, to: TcbId, badge: u64, call: MmioCall) {
        let words = call.message.to_words();
        let context = &mut self.tcb_mut(to).context;
        context.set_x(0, badge);
        context.set_x(
            1,
            MessageInfo::new(FaultKind::Mmio as u64, 0, MMIO_MESSAGE_WORDS as u64).raw(),
        );
        for (index, value) in words.iter().enumerate() {
            context.set_x(2 + index, *value);
        }
    }

    /// Applies a device server's reply to a fast-path MMIO call: [`REPLY_DONE`] completes the
    /// access (a load's register written from word 0 as the instruction asks; xzr takes
    /// nothing) and steps the guest over it; any other answer is a bus error, injected as the
    /// vmm's `INJECT_ABORT` would be (the PC stays on the access, as an abort wants).
    pub(super) fn resume_mmio(&mut self, server: TcbId, guest: TcbId, fault: FaultInfo) -> Effect {
        let context = &self.tcb(server).context;
        let (info, value) = (MessageInfo::from_raw(context.x(1)), context.x(2));
        let Some(call) = self.tcb_mut(guest).mmio.take() else {
            // Nothing to complete (cannot happen: set with the fault): run the access again.
            return Effect::None;
        };
        if info.is_error() || info.label() != REPLY_DONE {
            return Effect::InjectException {
                tcb: guest,
                abort: true,
                address: fault.address,
                exit_syndrome: fault.syndrome,
            };
        }
        let context = &mut self.tcb_mut(guest).context;
        if !call.access.write && call.access.register < 31 {
            let result = crate::mmio::load_result(call.access, value);
            context.set_x(usize::from(call.access.register), result);
        }
        context.regs[PC] = context.regs[PC].wrapping_add(4);
        Effect::None
    }

    /// Performs a decoded MMIO invocation for `caller`.
    pub fn perform_mmio(&mut self, caller: TcbId, invocation: MmioInvocation) -> Effect {
        match invocation {
            MmioInvocation::SetRoute { vm, index, route } => {
                self.mmio[usize::from(vm)].set_route(index, route)
            }
            MmioInvocation::ClearRoute { vm, index } => {
                self.mmio[usize::from(vm)].clear_route(index)
            }
            MmioInvocation::SetDoorbell {
                vm,
                index,
                doorbell,
            } => self.mmio[usize::from(vm)].set_doorbell(index, doorbell),
            MmioInvocation::MapMarker { vm, ipa, route } => {
                let state = &self.mmio[usize::from(vm)];
                // Decode refused an open bracket; a zap still under way is driven on by the
                // calls that would otherwise install, so it needs no caller of its own.
                let (live, zap) = (state.live_generation(), state.zap_pending());
                return match (live, zap) {
                    (Some(generation), _) => Effect::MapMmioMarker {
                        vspace: vm,
                        ipa,
                        marker: crate::mmio::encode(route, generation),
                    },
                    (None, from) => {
                        self.set_result(caller, &[MarkerAction::Zapping as u64]);
                        Effect::ZapMmioMarkers {
                            vspace: vm,
                            from: from.unwrap_or(0),
                        }
                    }
                };
            }
            MmioInvocation::Update { vm, begin } => {
                let state = &mut self.mmio[usize::from(vm)];
                if begin {
                    state.begin_update();
                } else {
                    state.end_update();
                }
                let (generation, zap) = (state.generation(), state.zap_pending());
                self.set_result(caller, &[generation]);
                if let Some(from) = zap {
                    return Effect::ZapMmioMarkers { vspace: vm, from };
                }
            }
        }
        Effect::None
    }

    /// The arch layer ran one step of [`Effect::ZapMmioMarkers`] on `vspace` and got as far as
    /// `next`. Returns whether a zap is still pending (markers match again once it is not).
    pub fn mmio_zapped(&mut self, vspace: u16, next: u64) -> bool {
        self.mmio
            .get_mut(usize::from(vspace))
            .is_some_and(|state| state.zapped(next))
    }

    /// Server `server` was restarted (or downed): every VM with a route to an endpoint it serves
    /// gets a fresh generation, so none of its markers matches again. (The routes to it would
    /// miss anyway, their endpoint generation being old, until the vmm sets them anew.)
    pub(super) fn mmio_server_restarted(&mut self, server: TcbId) {
        let endpoints = &*self.endpoints;
        for state in self.mmio.iter_mut() {
            let routes_to_it = state.routes().any(|(_, route)| {
                endpoints
                    .get(usize::from(route.endpoint))
                    .is_some_and(|endpoint| endpoint.server == Some(server))
            });
            if routes_to_it {
                state.bump();
            }
        }
    }
}
