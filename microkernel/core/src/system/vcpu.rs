//! The VCPU side of the system (seL4's `vcpu.c`): a guest exit becomes a call from the VCPU
//! thread to its vmm, the vmm's reply says how the guest resumes, and a VCPU parked on WFI is
//! woken when an interrupt is due. Its list registers and virtual timer are in [`crate::vgic`]
//! (state) and the kernel's `vcpu.rs` (hardware); its invocations are decoded in
//! [`crate::invocation`].

use super::{Effect, IpcMemory, System};
use crate::TcbId;
use crate::queue::NONE;
use crate::tcb::ThreadState;
use abi::message::REGISTER_MESSAGE_WORDS;
use abi::vm::{VmExit, VmReply};
use abi::{FaultInfo, FaultKind, MessageInfo};

impl System<'_> {
    /// Hands a guest exit to the vmm: badge, label `VmExit`, nine words (four in registers,
    /// the rest in its IPC buffer).
    pub(super) fn deliver_vm_exit(
        &mut self,
        memory: &mut impl IpcMemory,
        to: TcbId,
        badge: u64,
        exit: VmExit,
    ) {
        let words = exit.to_words();
        for (index, value) in words.iter().enumerate().skip(REGISTER_MESSAGE_WORDS) {
            memory.write_word(self.tcb(to), index, *value);
        }
        let context = &mut self.tcb_mut(to).context;
        context.set_x(0, badge);
        context.set_x(
            1,
            MessageInfo::new(FaultKind::VmExit as u64, 0, words.len() as u64).raw(),
        );
        for (index, value) in words.iter().take(REGISTER_MESSAGE_WORDS).enumerate() {
            context.set_x(2 + index, *value);
        }
    }

    /// Wakes a VCPU thread waiting for its virtual interrupt line (the guest's WFI completes).
    /// Returns whether it was waiting.
    pub fn wake_vcpu(&mut self, tcb: TcbId) -> bool {
        if self.tcb(tcb).state != ThreadState::WaitingForInterrupt {
            return false;
        }
        self.make_runnable(tcb);
        true
    }

    /// The current thread, a VCPU thread, left its guest: deliver the exit to its vmm as a
    /// call, whose reply resumes the guest.
    #[inline(always)]
    pub fn handle_vm_exit(&mut self, memory: &mut impl IpcMemory, exit: VmExit) -> Effect {
        let me = self.current;
        if me == NONE {
            return Effect::None;
        }
        self.tcb_mut(me).vm_exit = Some(exit);
        let fault = FaultInfo {
            kind: FaultKind::VmExit,
            pc: exit.pc,
            address: exit.words[1],
            syndrome: exit.esr,
        };
        self.handle_fault(memory, fault)
    }

    /// Applies a vmm's reply to a guest exit: step over the instruction, write back an emulated
    /// load, set hypercall results, or ask for an exception to be injected (docs/GUEST-ABI.md).
    pub(super) fn resume_guest(
        &mut self,
        memory: &mut impl IpcMemory,
        vmm: TcbId,
        guest: TcbId,
    ) -> Effect {
        let exit = self.tcb_mut(guest).vm_exit.take();
        let context = &self.tcb(vmm).context;
        let action = VmReply(MessageInfo::from_raw(context.x(1)).label());
        let words = [
            context.x(2),
            context.x(3),
            context.x(4),
            context.x(5),
            memory.read_word(self.tcb(vmm), 4),
            memory.read_word(self.tcb(vmm), 5),
        ];
        let context = &mut self.tcb_mut(guest).context;
        if action.contains(VmReply::WRITE_REGISTER) && words[0] < 31 {
            context.set_x(words[0] as usize, words[1]);
        }
        if action.contains(VmReply::SET_RESULTS) {
            for (register, value) in words[2..6].iter().enumerate() {
                context.set_x(register, *value);
            }
        }
        if action.contains(VmReply::ADVANCE_PC) {
            context.regs[crate::tcb::PC] = context.regs[crate::tcb::PC].wrapping_add(4);
        }
        let (address, exit_syndrome) = exit.map_or((0, 0), |exit| (exit.words[1], exit.esr));
        if action.contains(VmReply::WAIT_FOR_INTERRUPT) {
            Effect::WaitForInterrupt { tcb: guest }
        } else if action.contains(VmReply::INJECT_SERROR) {
            Effect::InjectSError { tcb: guest }
        } else if action.contains(VmReply::INJECT_UNDEFINED) {
            Effect::InjectException {
                tcb: guest,
                abort: false,
                address,
                exit_syndrome,
            }
        } else if action.contains(VmReply::INJECT_ABORT) {
            Effect::InjectException {
                tcb: guest,
                abort: true,
                address,
                exit_syndrome,
            }
        } else {
            Effect::None
        }
    }
}
