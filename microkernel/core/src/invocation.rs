//! Capability invocations: `decode` checks everything and changes nothing; `perform` applies
//! a decoded invocation and cannot fail (seL4's decode/invoke split).

use crate::TcbId;
use crate::cap::{Cap, DeriveError};
use crate::system::{Effect, System};
use crate::tcb::ThreadState;
use abi::{InvocationLabel, KernelError, Rights};

/// A fully validated invocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invocation {
    /// Suspend a thread.
    TcbSuspend { tcb: TcbId },
    /// Resume a thread.
    TcbResume { tcb: TcbId },
    /// Restart a server from its image; `start` false leaves it down.
    TcbRestart { tcb: TcbId, start: bool },
    /// Read a thread's generation and whether it is runnable.
    TcbReadState { tcb: TcbId },
    /// Store `cap` in the empty pool slot `index`.
    CNodeInsert { index: usize, cap: Cap },
    /// Empty the pool slot `index` (a mapped frame capability is unmapped first).
    CNodeDelete { index: usize },
    /// Unmask an interrupt line.
    IrqAck { intid: u32 },
    /// Stop the system.
    SystemOff { status: u64 },
    /// Carve, revoke or map memory.
    Memory(crate::memory::MemoryInvocation),
    /// Make a virtual interrupt pending for a VCPU (the list register is chosen when it is
    /// performed, from the VCPU's live state).
    VcpuInjectIrq {
        vcpu: u16,
        intid: u32,
        priority: u8,
        level: bool,
    },
    /// Console input signals this notification.
    DebugInputBind { ntfn: crate::NotificationId },
    /// Hand over pending console input.
    DebugInputRead,
    /// Answer a frame capability's physical address and size.
    FrameGetAddress { pa: u64, size: u64 },
    /// Answer the INTIDs the VCPU's list registers hold.
    VcpuListRegisters { vcpu: u16 },
    /// Mirror the guest's configuration of its virtual timer interrupt.
    VcpuSetVtimer {
        vcpu: u16,
        enabled: bool,
        priority: u8,
    },
    /// An MMIO route, doorbell, marker or update bracket (docs/MMIO.md).
    Mmio(crate::mmio::MmioInvocation),
}

/// Decodes an invocation of `cap` (held in `cptr` by `caller`) with `label` and message
/// registers `args`. Pure: the system is only read.
pub fn decode(
    system: &System<'_>,
    caller: TcbId,
    cap: Cap,
    cptr: u64,
    label: u64,
    args: [u64; 4],
) -> Result<Invocation, KernelError> {
    let operation =
        InvocationLabel::from_raw(label).ok_or(KernelError::IllegalOperation { label })?;
    match (cap, operation) {
        (Cap::Tcb { tcb }, InvocationLabel::TcbSuspend) => Ok(Invocation::TcbSuspend { tcb }),
        (Cap::Tcb { tcb }, InvocationLabel::TcbResume) => Ok(Invocation::TcbResume { tcb }),
        // A VM is reset in bounded steps (each invocation rebuilds part of its RAM and answers
        // what remains) with the thread left down, then resumed: starting it at once would run
        // the guest on half-rebuilt memory.
        (Cap::Tcb { tcb }, InvocationLabel::TcbRestart)
            if args[0] == 1 && system.tcb(tcb).vcpu.is_some() =>
        {
            Err(KernelError::InvalidArgument { index: 0 })
        }
        (Cap::Tcb { tcb }, InvocationLabel::TcbRestart) => match args[0] {
            0 | 1 => Ok(Invocation::TcbRestart {
                tcb,
                start: args[0] == 1,
            }),
            _ => Err(KernelError::RangeError {
                index: 0,
                min: 0,
                max: 1,
            }),
        },
        (Cap::Tcb { tcb }, InvocationLabel::TcbReadState) => Ok(Invocation::TcbReadState { tcb }),
        (Cap::CNode { owner }, InvocationLabel::CNodeCopy | InvocationLabel::CNodeMint) => {
            let cnode = system.tcb(owner).cnode;
            let source = crate::cnode::lookup(system.slots, cnode, args[0])
                .map_err(|_| KernelError::InvalidCapability { slot: args[0] })?;
            let index = crate::cnode::empty_slot(system.slots, cnode, args[1])?;
            let rights = Rights::from_bits_truncate(args[2] as u8);
            let badge = (operation == InvocationLabel::CNodeMint).then_some(args[3]);
            let cap = source.derive(rights, badge).map_err(|error| match error {
                DeriveError::NullSource => KernelError::InvalidCapability { slot: args[0] },
                DeriveError::NotCopyable | DeriveError::NotBadgeable => {
                    KernelError::InvalidArgument { index: 0 }
                }
                DeriveError::AlreadyBadged => KernelError::InvalidArgument { index: 3 },
            })?;
            Ok(Invocation::CNodeInsert { index, cap })
        }
        (Cap::CNode { owner }, InvocationLabel::CNodeDelete) => {
            let cnode = system.tcb(owner).cnode;
            let index = crate::cnode::slot_index(cnode, args[0])?;
            if args[0] == abi::REPLY_SLOT && owner == caller {
                // The reply object is the thread's own; deleting it would strand its callers.
                return Err(KernelError::InvalidArgument { index: 0 });
            }
            Ok(Invocation::CNodeDelete { index })
        }
        (Cap::IrqHandler { irq }, InvocationLabel::IrqAck) => {
            let line = system
                .irqs
                .get(usize::from(irq))
                .ok_or(KernelError::InvalidCapability { slot: cptr })?;
            Ok(Invocation::IrqAck { intid: line.intid })
        }
        (Cap::SystemControl, InvocationLabel::SystemOff) => {
            Ok(Invocation::SystemOff { status: args[0] })
        }
        (Cap::Vcpu { vcpu }, InvocationLabel::VcpuInjectIrq) => {
            let (intid, priority, level) = crate::vgic::check_inject(args)?;
            Ok(Invocation::VcpuInjectIrq {
                vcpu,
                intid,
                priority,
                level,
            })
        }
        (Cap::Vcpu { vcpu }, InvocationLabel::VcpuListRegisters) => {
            Ok(Invocation::VcpuListRegisters { vcpu })
        }
        (Cap::Vcpu { vcpu }, InvocationLabel::VcpuSetVtimer) => {
            let (enabled, priority) = crate::vgic::check_vtimer(args)?;
            Ok(Invocation::VcpuSetVtimer {
                vcpu,
                enabled,
                priority,
            })
        }
        (Cap::DebugInput, InvocationLabel::DebugInputBind) => {
            match crate::cnode::lookup(system.slots, system.tcb(caller).cnode, args[0]) {
                Ok(Cap::Notification { ntfn, rights, .. }) if rights.contains(Rights::READ) => {
                    Ok(Invocation::DebugInputBind { ntfn })
                }
                Ok(Cap::Notification { .. }) => {
                    Err(KernelError::InsufficientRights { slot: args[0] })
                }
                Ok(_) => Err(KernelError::WrongObjectType { slot: args[0] }),
                Err(_) => Err(KernelError::InvalidCapability { slot: args[0] }),
            }
        }
        (Cap::DebugInput, InvocationLabel::DebugInputRead) => Ok(Invocation::DebugInputRead),
        (Cap::Frame(frame), InvocationLabel::FrameGetAddress) => Ok(Invocation::FrameGetAddress {
            pa: frame.base(),
            size: frame.size(),
        }),
        (Cap::Vcpu { .. } | Cap::VSpace { .. }, _) if crate::mmio::is_mmio_operation(operation) => {
            crate::mmio::decode_invocation(system, caller, cap, operation, args)
                .map(Invocation::Mmio)
        }
        (Cap::Frame(_) | Cap::VSpace { .. }, _) => {
            crate::memory::decode(system, caller, cap, operation, args).map(Invocation::Memory)
        }
        _ => Err(KernelError::IllegalOperation { label }),
    }
}

impl System<'_> {
    /// Performs a decoded invocation for `caller` and answers it.
    pub fn perform(&mut self, caller: TcbId, invocation: Invocation) -> Effect {
        self.set_result(caller, &[]);
        match invocation {
            Invocation::TcbSuspend { tcb } => self.suspend(tcb),
            Invocation::TcbResume { tcb } => self.resume(tcb),
            Invocation::TcbRestart { tcb, start } => return self.restart(tcb, start),
            Invocation::TcbReadState { tcb } => {
                let target = self.tcb(tcb);
                let runnable = u64::from(target.state != ThreadState::Inactive);
                let generation = u64::from(target.generation);
                self.set_result(caller, &[generation, runnable]);
            }
            Invocation::CNodeInsert { index, cap } => self.slots[index] = cap,
            Invocation::CNodeDelete { index } => return self.delete_slot(index),
            Invocation::IrqAck { intid } => return Effect::UnmaskIrq { intid },
            Invocation::SystemOff { status } => return Effect::SystemOff { status },
            Invocation::Memory(memory) => return self.perform_memory(memory),
            Invocation::Mmio(mmio) => return self.perform_mmio(caller, mmio),
            Invocation::FrameGetAddress { pa, size } => self.set_result(caller, &[pa, size]),
            Invocation::DebugInputBind { ntfn } => {
                self.console_input = Some(ntfn);
                return Effect::ConsoleInputBound;
            }
            Invocation::DebugInputRead => return Effect::ConsoleInputRead,
            Invocation::VcpuInjectIrq {
                vcpu,
                intid,
                priority,
                level,
            } => {
                return Effect::VcpuInjectIrq {
                    vcpu,
                    intid,
                    priority,
                    level,
                };
            }
            Invocation::VcpuListRegisters { vcpu } => {
                return Effect::VcpuListRegisters { vcpu };
            }
            Invocation::VcpuSetVtimer {
                vcpu,
                enabled,
                priority,
            } => {
                return Effect::VcpuSetVtimer {
                    vcpu,
                    enabled,
                    priority,
                };
            }
        }
        Effect::None
    }
}
