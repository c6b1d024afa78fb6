//! The exit-routing decision: from a [`VmExit`] to what the server must do next, and from the
//! answers it collected to the reply that resumes the guest.
//!
//! Pure functions with no side effects; the server adapts them to IPC (`vmm-server`). The flow
//! for one exit (docs/VMM.md has the table):
//!
//! ```text
//! plan(exit) ──► Reply(resume)                                   WFx, PSCI, unknown hypercalls,
//!   │                                                            HV_INJECT_SERROR (results +
//!   │                                                            virtual SError), SError exits,
//!   │                                                            other → undefined
//!   ├─► Reply(sysreg::resume(esr))                               system registers (EC 0x18):
//!   │      debug / PMU / CNTP_* ──► RAZ/WI: read = load of 0 (WRITE_REGISTER), step
//!   │      anything else, or a syndrome that does not decode ──► undefined
//!   ├─► PowerOff { verdict }                                     PSCI SYSTEM_OFF
//!   ├─► Mmu(call) ── mmu-server ──► after_mmu(call, answer) ──► Reply   vendor hypercalls
//!   └─► ResolveStage2(fault) ── mmu-server ──► after_stage2(exit, answer, devices)
//!          Mapped / Retry ──► Reply(resume as is: the guest retries the access)
//!          NotMemory ──► Mmio(plan) ── device server ──► after_mmio(plan, answer) ──► Reply
//!                    └─► Reply(abort / skip) for holes and accesses we cannot emulate
//! ```
//!
//! Invariants: every path ends in exactly one reply (or power-off); nothing the guest controls
//! can make these functions panic; an exit the vmm does not understand resumes the guest with an
//! injected exception, never by stopping the vmm. An injected abort never advances the PC
//! (ELR_EL1 must name the faulting instruction; docs/GUEST-ABI.md: the guest decides whether to
//! skip it).

use crate::devices::{Device, DeviceTable};
use crate::hypercall::{
    self, Conduit, HypercallAction, INTERNAL_FAILURE, INVALID_PARAMETER, MmuCall,
};
use crate::syndrome::{self, Abort, FaultStatus, MmioAccess};
use crate::sysreg::{self, Encoding, RegisterClass};
use abi::MessageInfo;
use abi::vm::{VmExit, VmExitKind, VmReply};

/// Words of a reply to an exit: `[register, value, x0, x1, x2, x3]` (`abi::vm::VmReply`).
pub const REPLY_WORDS: usize = 6;

/// Why the guest resumes the way it does: for traces, logs and counters, not for the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Cause {
    /// Resumed unchanged: the mmu-server mapped the IPA (or asked for a retry).
    Mapped,
    /// An MMIO access was emulated.
    Emulated,
    /// A hypercall was answered.
    Hypercall,
    /// WFI/WFE: stepped over, the VCPU waiting until its virtual interrupt line is asserted.
    Idle,
    /// A cache maintenance instruction on a device address was stepped over (KVM does the same:
    /// there is no cache to maintain for emulated MMIO).
    CacheMaintenance,
    /// Abort: the IPA is in no memory slot and no device window.
    Hole,
    /// Abort: no valid instruction syndrome (ISV = 0) or FAR not valid, so the access cannot be
    /// emulated (load/store pair, writeback, SIMD...).
    NoSyndrome,
    /// Abort: an instruction fetch from an address that is not memory.
    InstructionFetch,
    /// Abort: the guest's stage-1 table walk touched an address that is not memory.
    TableWalk,
    /// Abort: a fault status the mmu-server cannot resolve (address size, external, TLB
    /// conflict...).
    Unresolvable(FaultStatus),
    /// Abort: the device answered BusError.
    DeviceBusError,
    /// Abort: the device answered a read with Done or a write with a Value.
    DeviceConfused,
    /// Abort: the device server could not be reached (down for good, or a kernel error).
    DeviceFailed,
    /// Resumed unchanged: the device server restarted under the call before answering, so the
    /// guest executes the access again and it reaches the fresh server. Device servers crash
    /// before touching their state for a request they did not answer, so this is exactly once
    /// for accesses the crash interrupted before their effect, at least once otherwise.
    DeviceRestarted,
    /// Abort: the mmu-server could not resolve the fault.
    MmuFailed,
    /// A trapped debug, PMU or physical-timer register access, read as zero or write ignored
    /// (`sysreg`): the PC steps over it.
    RazWi(RegisterClass),
    /// Undefined: a trapped system register (or system instruction) the vmm does not emulate,
    /// or a direction the register does not have.
    UnknownRegister(Encoding),
    /// Undefined: an exit of a kind the vmm does not emulate, or a syndrome that does not match
    /// its kind.
    Unhandled,
    /// Virtual SError: an SError was taken while the guest ran.
    SError,
    /// Resumed unchanged after a maintenance exit: the vGIC model took the completions and
    /// injected what is due.
    Interrupt,
}

/// The reply that resumes the guest: label bits and words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resume {
    /// What the kernel does to the guest.
    pub reply: VmReply,
    /// `[register, value, x0, x1, x2, x3]`, read only where `reply` asks for them.
    pub words: [u64; REPLY_WORDS],
    /// Why.
    pub cause: Cause,
}

impl Resume {
    const fn new(reply: VmReply, words: [u64; REPLY_WORDS], cause: Cause) -> Self {
        Self {
            reply,
            words,
            cause,
        }
    }

    /// Resume at the same PC (the guest re-executes the access).
    pub const fn retry(cause: Cause) -> Self {
        Self::new(VmReply::RESUME, [0; REPLY_WORDS], cause)
    }

    /// Step over the instruction.
    pub const fn advance(cause: Cause) -> Self {
        Self::new(VmReply::ADVANCE_PC, [0; REPLY_WORDS], cause)
    }

    /// An emulated load: `value` into `x<register>` (`WRITE_REGISTER`), then step over the
    /// instruction. A load into xzr (31) only steps: the kernel is never asked to write it.
    pub const fn load(register: u8, value: u64, cause: Cause) -> Self {
        if register >= 31 {
            return Self::advance(cause);
        }
        Self::new(
            VmReply::ADVANCE_PC.with(VmReply::WRITE_REGISTER),
            [register as u64, value, 0, 0, 0, 0],
            cause,
        )
    }

    /// Inject a synchronous external abort (the PC stays at the access).
    pub const fn abort(cause: Cause) -> Self {
        Self::new(VmReply::INJECT_ABORT, [0; REPLY_WORDS], cause)
    }

    /// Inject an undefined-instruction exception.
    pub const fn undefined(cause: Cause) -> Self {
        Self::new(VmReply::INJECT_UNDEFINED, [0; REPLY_WORDS], cause)
    }

    /// Make a virtual SError pending: the guest takes it when SErrors are unmasked.
    pub const fn serror(cause: Cause) -> Self {
        Self::new(VmReply::INJECT_SERROR, [0; REPLY_WORDS], cause)
    }

    /// Hypercall results in `x0..x3`, stepping over an `smc`.
    pub const fn results(x: [u64; 4], conduit: Conduit) -> Self {
        let reply = if conduit.advances_pc() {
            VmReply::SET_RESULTS.with(VmReply::ADVANCE_PC)
        } else {
            VmReply::SET_RESULTS
        };
        Self::new(reply, [0, 0, x[0], x[1], x[2], x[3]], Cause::Hypercall)
    }

    /// The reply's message info: label = the `VmReply` bits, six words.
    pub const fn info(&self) -> MessageInfo {
        MessageInfo::new(self.reply.0, 0, REPLY_WORDS as u64)
    }

    /// Words 0..4, which travel in registers.
    pub const fn registers(&self) -> [u64; 4] {
        [self.words[0], self.words[1], self.words[2], self.words[3]]
    }

    /// Words 4 and 5, which go in IPC buffer words 4 and 5.
    pub const fn buffer_words(&self) -> [u64; 2] {
        [self.words[4], self.words[5]]
    }

    /// Whether the reply injects a synchronous exception (an abort or an undefined
    /// instruction, which never step over the instruction); a virtual SError is asynchronous.
    pub const fn injects(&self) -> bool {
        self.reply.0 & (VmReply::INJECT_ABORT.0 | VmReply::INJECT_UNDEFINED.0) != 0
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Resume {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "reply {=u64:#x} words {:#x} ({})",
            self.reply.0,
            self.words,
            self.cause
        );
    }
}

/// A stage-2 fault for the mmu-server to resolve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Stage2Fault {
    /// The faulting IPA (page offset included).
    pub ipa: u64,
    /// Resolving it needs write permission (`Abort::needs_write`).
    pub write: bool,
    /// An instruction fetch: resolving it needs execute permission.
    pub instruction: bool,
    /// Translation, access flag or permission, with the level.
    pub status: FaultStatus,
}

/// What the mmu-server said about a stage-2 fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Stage2Answer {
    /// The IPA is memory and is now mapped as the access needs.
    Mapped,
    /// The IPA is in no memory slot: it may be a device.
    NotMemory,
    /// Nothing was mapped but the access may succeed if retried (the backing changed under the
    /// request, or the mmu-server restarted).
    Retry,
    /// The mmu-server could not resolve it (an error, or the server is down).
    Failed,
}

/// An MMIO access routed to a device server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MmioPlan {
    /// The device (its endpoint slot and name).
    pub device: Device,
    /// The offset of the access in the device's window.
    pub offset: u32,
    /// The access.
    pub access: MmioAccess,
}

impl MmioPlan {
    /// The `device_api` request to send.
    pub const fn request(&self) -> device_api::Request {
        let (offset, width) = (self.offset, self.access.width);
        if self.access.write {
            device_api::Request::Write {
                offset,
                width,
                value: self.access.value,
            }
        } else {
            device_api::Request::Read { offset, width }
        }
    }
}

/// A vendor hypercall for the mmu-server, and how it was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MmuPlan {
    /// The call.
    pub call: MmuCall,
    /// `hvc` or `smc` (whether the answer advances the PC).
    pub conduit: Conduit,
}

/// What the mmu-server answered to a vendor hypercall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MmuAnswer {
    /// Done (HV_DIRTY_LOG_ENABLE, HV_DIRTY_LOG_DISABLE, HV_RAM_ALIAS).
    Done,
    /// The dirty bitmap (HV_DIRTY_LOG_GET_AND_CLEAR): bit n of word w = page 64w + n.
    Bitmap([u64; 4]),
    /// The stage-2 fault counters (HV_STAGE2_FAULTS).
    Counters {
        pages: u64,
        blocks: u64,
        permission: u64,
    },
    /// The arguments do not name guest memory (or another refusal about the request itself).
    Refused,
    /// HV_DIRTY_LOG_ENABLE of a new range while every dirty-log window of the VM is in use.
    NoWindow,
    /// The mmu-server could not answer.
    Failed,
}

/// What the server must do next for one exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ExitPlan {
    /// Ask the mmu-server, then [`after_stage2`].
    ResolveStage2(Stage2Fault),
    /// Call the device server, then [`after_mmio`].
    Mmio(MmioPlan),
    /// Ask the mmu-server to carry out a vendor hypercall, then [`after_mmu`].
    Mmu(MmuPlan),
    /// PSCI SYSTEM_OFF: end the VM (no reply).
    PowerOff { verdict: u64 },
    /// PSCI SYSTEM_RESET: restart the VM from its image (no reply: the reset cancels the exit).
    Reset,
    /// HV_BOOT_COUNT: answer with [`boot_count_reply`].
    BootCount(Conduit),
    /// HV_RESET_LOOP: answer with [`reset_loop_reply`].
    ResetLoop(Conduit),
    /// Reply now.
    Reply(Resume),
    /// An access to the virtual GIC's distributor or redistributor (`layout::VGIC_*`), then
    /// [`after_vgic`].
    Vgic(MmioAccess),
    /// A maintenance exit: the INTIDs the guest completed (`abi::vm::NO_INTID` for none), and
    /// underflow. The guest resumes unchanged once the model has injected what is due.
    Maintenance {
        completed: [u64; 4],
        underflow: bool,
    },
    /// A trapped ICC_SGI1R_EL1 write: hand `value` to the vGIC model, then reply `then`.
    SendSgi { value: u64, then: Resume },
}

/// The first step for `exit`.
pub fn plan(exit: &VmExit) -> ExitPlan {
    match exit.kind {
        VmExitKind::Stage2Abort => plan_stage2(exit),
        VmExitKind::Hypercall => plan_hypercall(exit),
        // PC at a WFE (ISS.TI set): the kernel steps over WFE itself and yields, so one that
        // still arrives is only stepped over: nothing will send the event it waits for.
        VmExitKind::WaitForInterrupt if exit.esr & 1 != 0 => ExitPlan::Reply(Resume {
            reply: VmReply::ADVANCE_PC,
            words: [0; 6],
            cause: Cause::Idle,
        }),
        // PC at the WFI: step over it and block the VCPU until its virtual interrupt line is
        // asserted (KVM's kvm_vcpu_block): the kernel wakes it when the guest's timer fires.
        VmExitKind::WaitForInterrupt => ExitPlan::Reply(Resume {
            reply: VmReply::ADVANCE_PC.with(VmReply::WAIT_FOR_INTERRUPT),
            words: [0; 6],
            cause: Cause::Idle,
        }),
        // Debug, PMU and physical-timer registers are RAZ/WI; any other register is undefined,
        // as on a CPU without it.
        // A write to ICC_SGI1R_EL1 is a software-generated interrupt for the vGIC model.
        VmExitKind::SystemRegister => match sysreg::action(exit.esr, exit.words[0]) {
            sysreg::Action::Reply(resume) => ExitPlan::Reply(resume),
            sysreg::Action::SendSgi { value, then } => ExitPlan::SendSgi { value, then },
        },
        VmExitKind::Other => ExitPlan::Reply(Resume::undefined(Cause::Unhandled)),
        // An SError taken while the guest ran is the guest's: it gets a virtual SError, as
        // KVM's kvm_handle_guest_serror injects one; the rest of the system is untouched.
        VmExitKind::SError => ExitPlan::Reply(Resume::serror(Cause::SError)),
        // The guest completed level interrupts (their lines are sampled again) or the list
        // registers ran low while interrupts wait: the vGIC model decides what to inject next.
        VmExitKind::VgicMaintenance => ExitPlan::Maintenance {
            completed: [exit.words[0], exit.words[1], exit.words[2], exit.words[3]],
            underflow: exit.words[4] != 0,
        },
    }
}

fn plan_stage2(exit: &VmExit) -> ExitPlan {
    let Some(abort) = Abort::decode(exit.esr) else {
        return ExitPlan::Reply(Resume::abort(Cause::Unhandled));
    };
    if !abort.status.is_resolvable() {
        return ExitPlan::Reply(Resume::abort(Cause::Unresolvable(abort.status)));
    }
    if crate::layout::in_vgic(exit.words[0]) {
        return route_vgic(exit);
    }
    ExitPlan::ResolveStage2(Stage2Fault {
        ipa: exit.words[0],
        write: abort.needs_write(),
        instruction: abort.instruction,
        status: abort.status,
    })
}

const fn plan_hypercall(exit: &VmExit) -> ExitPlan {
    let Some(conduit) = Conduit::from_esr(exit.esr) else {
        return ExitPlan::Reply(Resume::undefined(Cause::Unhandled));
    };
    match hypercall::dispatch(exit.esr, exit.words) {
        HypercallAction::Return(x) => ExitPlan::Reply(Resume::results(x, conduit)),
        HypercallAction::PowerOff { verdict } => ExitPlan::PowerOff { verdict },
        HypercallAction::Reset => ExitPlan::Reset,
        HypercallAction::BootCount => ExitPlan::BootCount(conduit),
        HypercallAction::ResetLoop => ExitPlan::ResetLoop(conduit),
        HypercallAction::InjectSError => ExitPlan::Reply(inject_serror_reply(conduit)),
        HypercallAction::Mmu(call) => ExitPlan::Mmu(MmuPlan { call, conduit }),
    }
}

/// The reply to HV_BOOT_COUNT: `x0 = 0`, `x1 = boots`.
pub const fn boot_count_reply(conduit: Conduit, boots: u64) -> Resume {
    Resume::results([0, boots, 0, 0], conduit)
}

/// The reply to HV_RESET_LOOP: `x0 = 0`, `x1 = resets` (the manifest's `resets`, 0 when none).
pub const fn reset_loop_reply(conduit: Conduit, resets: u32) -> Resume {
    Resume::results([0, resets as u64, 0, 0], conduit)
}

/// The reply to HV_INJECT_SERROR: `x0 = 0` (stepping over an `smc` as any answer does) and a
/// virtual SError made pending for the calling VCPU. Unlike an injected abort this may step:
/// the SError is asynchronous, taken wherever the guest next runs with PSTATE.A clear, and
/// ELR_EL1 then names the instruction it interrupted, not the call.
pub const fn inject_serror_reply(conduit: Conduit) -> Resume {
    let results = Resume::results([0; 4], conduit);
    Resume {
        reply: results.reply.with(VmReply::INJECT_SERROR),
        ..results
    }
}

/// The step after the mmu-server answered a [`ExitPlan::ResolveStage2`] for `exit`.
pub fn after_stage2(exit: &VmExit, answer: Stage2Answer, devices: &DeviceTable) -> ExitPlan {
    match answer {
        Stage2Answer::Mapped | Stage2Answer::Retry => ExitPlan::Reply(Resume::retry(Cause::Mapped)),
        Stage2Answer::Failed => ExitPlan::Reply(Resume::abort(Cause::MmuFailed)),
        Stage2Answer::NotMemory => route_mmio(exit, devices),
    }
}

/// Routes a stage-2 abort on an IPA that is not memory: to a device, or to an abort.
pub fn route_mmio(exit: &VmExit, devices: &DeviceTable) -> ExitPlan {
    let access = match emulable_access(exit) {
        Ok(access) => access,
        Err(plan) => return plan,
    };
    match devices.lookup(access.ipa, access.width) {
        Some(route) => ExitPlan::Mmio(MmioPlan {
            device: route.device,
            offset: route.offset,
            access,
        }),
        None => ExitPlan::Reply(Resume::abort(Cause::Hole)),
    }
}

/// The data access of a stage-2 abort on an address that is not memory, when it can be
/// emulated; otherwise the reply (an abort, or stepping over cache maintenance).
fn emulable_access(exit: &VmExit) -> Result<MmioAccess, ExitPlan> {
    let Some(abort) = Abort::decode(exit.esr) else {
        return Err(ExitPlan::Reply(Resume::abort(Cause::Unhandled)));
    };
    let refuse = |cause| Err(ExitPlan::Reply(Resume::abort(cause)));
    if abort.instruction {
        return refuse(Cause::InstructionFetch);
    }
    if abort.s1ptw {
        return refuse(Cause::TableWalk);
    }
    if abort.cache_maintenance {
        return Err(ExitPlan::Reply(Resume::advance(Cause::CacheMaintenance)));
    }
    if abort.far_not_valid {
        return refuse(Cause::NoSyndrome);
    }
    match syndrome::decode_mmio(exit.esr, exit.words[0], exit.words[2]) {
        Ok(access) => Ok(access),
        Err(_) => refuse(Cause::NoSyndrome),
    }
}

/// A stage-2 abort inside the virtual GIC's windows: emulated by the vmm itself, without
/// asking the mmu-server (those windows are never memory).
fn route_vgic(exit: &VmExit) -> ExitPlan {
    match emulable_access(exit) {
        Ok(access) => ExitPlan::Vgic(access),
        Err(plan) => plan,
    }
}

/// The reply after the vGIC model answered an [`ExitPlan::Vgic`] access: `Some(value)` for a
/// read, `Some(0)` for an accepted write, `None` for an access that does not decode (a bus
/// error, as a device's).
pub const fn after_vgic(access: &MmioAccess, answer: Option<u64>) -> Resume {
    match answer {
        Some(raw) if !access.write => {
            Resume::load(access.register, access.load_value(raw), Cause::Emulated)
        }
        Some(_) => Resume::advance(Cause::Emulated),
        None => Resume::abort(Cause::DeviceBusError),
    }
}

/// The reply after the device answered (or failed to answer) an [`ExitPlan::Mmio`].
pub fn after_mmio(plan: &MmioPlan, answer: Result<device_api::Response, ipc::CallError>) -> Resume {
    use device_api::Response;
    let access = &plan.access;
    match (access.write, answer) {
        (false, Ok(Response::Value(raw) | Response::ValueLine { value: raw, .. })) => {
            Resume::load(access.register, access.load_value(raw), Cause::Emulated)
        }
        (true, Ok(Response::Done | Response::DoneLine { .. })) => Resume::advance(Cause::Emulated),
        (_, Ok(Response::BusError)) => Resume::abort(Cause::DeviceBusError),
        (_, Ok(_)) => Resume::abort(Cause::DeviceConfused),
        (_, Err(ipc::CallError::Restarted { .. })) => Resume::retry(Cause::DeviceRestarted),
        (_, Err(_)) => Resume::abort(Cause::DeviceFailed),
    }
}

/// The reply after the mmu-server answered an [`ExitPlan::Mmu`].
///
/// HV_DIRTY_LOG_GET_AND_CLEAR returns four bitmap words in `x1..x4`, one more than
/// SET_RESULTS carries: the fourth goes to `x4` through WRITE_REGISTER, which the kernel applies
/// before SET_RESULTS (they touch different registers, so the order does not matter).
pub const fn after_mmu(plan: &MmuPlan, answer: MmuAnswer) -> Resume {
    let conduit = plan.conduit;
    match (plan.call, answer) {
        (
            MmuCall::DirtyLogEnable { .. }
            | MmuCall::DirtyLogDisable { .. }
            | MmuCall::RamAlias { .. }
            | MmuCall::RamAliasRemove,
            MmuAnswer::Done,
        ) => Resume::results([0; 4], conduit),
        (MmuCall::DirtyLogEnable { .. }, MmuAnswer::NoWindow) => {
            Resume::results([hypercall::NO_WINDOW, 0, 0, 0], conduit)
        }
        (MmuCall::DirtyLogGetAndClear { .. }, MmuAnswer::Bitmap(bitmap)) => {
            let results = Resume::results([0, bitmap[0], bitmap[1], bitmap[2]], conduit);
            Resume {
                reply: results.reply.with(VmReply::WRITE_REGISTER),
                words: [4, bitmap[3], 0, bitmap[0], bitmap[1], bitmap[2]],
                cause: Cause::Hypercall,
            }
        }
        (
            MmuCall::Stage2Faults,
            MmuAnswer::Counters {
                pages,
                blocks,
                permission,
            },
        ) => Resume::results([0, pages, blocks, permission], conduit),
        (_, MmuAnswer::Refused) => Resume::results([INVALID_PARAMETER, 0, 0, 0], conduit),
        // Failed, or an answer that does not fit the call.
        _ => Resume::results([INTERNAL_FAILURE, 0, 0, 0], conduit),
    }
}

#[cfg(test)]
mod tests;
