//! The system state: every kernel object, the scheduler, and the current thread.
//!
//! The target kernel carves the pools from RAM at boot (sized by the boot description, so there
//! is no fixed ceiling) and hands them to [`System::new`]. From then on every system call,
//! fault and interrupt is a method call on `System`, followed by [`System::choose_next`].

mod fastpath;
mod inject;
mod ipc;
mod mmio;
mod restart;
mod vcpu;

use crate::TcbId;
use crate::cap::Cap;
use crate::endpoint::{Endpoint, Reply};
use crate::notification::{IrqLine, Notification};
use crate::queue::NONE;
use crate::sched::Scheduler;
use crate::tcb::{Tcb, ThreadState};
use abi::{KernelError, MessageInfo, Syscall};

pub use fastpath::FastpathOutcome;
pub use mmio::MmioOutcome;

/// Access to threads' IPC buffers, which only the target kernel can reach.
pub trait IpcMemory {
    /// Reads word `index` of `tcb`'s IPC buffer (0 when it has none or `index` is out of range).
    fn read_word(&self, tcb: &Tcb, index: usize) -> u64;
    /// Writes word `index` of `tcb`'s IPC buffer (ignored when it has none).
    fn write_word(&mut self, tcb: &Tcb, index: usize, value: u64);
    /// Copies `count` message words starting at `first` from `from`'s buffer to `to`'s.
    fn copy_words(&mut self, from: &Tcb, to: &Tcb, first: usize, count: usize) {
        for index in first..first + count {
            let value = self.read_word(from, index);
            self.write_word(to, index, value);
        }
    }
}

/// What the target kernel must do after a call into the core: the parts that touch hardware.
/// Each is performed by a step that cannot fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Nothing.
    None,
    /// Reset the thread's memory from its pristine image and its registers to its entry point.
    ResetServer { tcb: TcbId },
    /// Stop the system with this exit status.
    SystemOff { status: u64 },
    /// Unmask this interrupt line at the interrupt controller.
    UnmaskIrq { intid: u32 },
    /// Print `len` bytes from the current thread's IPC buffer.
    DebugWrite { len: usize },
    /// Log one defmt frame of `len` bytes from the current thread's IPC buffer.
    DebugLog { len: usize },
    /// A thread with no fault handler faulted (the supervisor): stop the system.
    UnhandledFault { tcb: TcbId },
    /// Map `size` bytes at `pa` at `ipa` of guest VSpace `vspace` (the stage-2 mapping path),
    /// answering the caller with the action taken.
    Map {
        vspace: u16,
        pa: u64,
        ipa: u64,
        size: u64,
        attributes: abi::vm::MapAttributes,
    },
    /// Remove the mapping of `size` at `ipa` (`VSpaceUnmap`: whatever is there).
    Unmap { vspace: u16, ipa: u64, size: u64 },
    /// Remove the leaf of `size` at `ipa` of `vspace` only if it still maps the frame at `pa`
    /// ([`crate::stage2::unmap_frame`]): a frame capability's deletion. Its record of where
    /// it is mapped may be stale; a translation to another frame stays.
    UnmapFrame {
        vspace: u16,
        ipa: u64,
        size: u64,
        pa: u64,
    },
    /// Make `ipa .. ipa + len` of `vspace` read-only.
    WriteProtect { vspace: u16, ipa: u64, len: u64 },
    /// Revoke carved frames (see [`System::revoke_frames`]).
    Revoke {
        region: u16,
        first_page: u32,
        pages: u32,
    },
    /// VCPU thread `tcb` waits for its virtual interrupt line: the arch layer wakes it at once
    /// when the line is already asserted ([`System::wake_vcpu`]), else when it asserts.
    WaitForInterrupt { tcb: TcbId },
    /// Inject a synchronous exception into the guest of VCPU thread `tcb` at EL1: an external
    /// abort at `address`, or an undefined instruction. `exit_syndrome` is the syndrome of the
    /// exit being answered (0 when there was none), from which the arch layer tells an
    /// instruction abort from a data abort.
    InjectException {
        tcb: TcbId,
        abort: bool,
        address: u64,
        exit_syndrome: u64,
    },
    /// Make a virtual SError pending for the guest of VCPU thread `tcb`.
    InjectSError { tcb: TcbId },
    /// Answer the current thread with up to 24 bytes of console input (`DebugInputRead`).
    ConsoleInputRead,
    /// Console input is now wanted: unmask the console's receive interrupt.
    ConsoleInputBound,
    /// Make `intid` pending in a free list register of `vcpu` (answering the caller with
    /// `NoFreeListRegister` when there is none; [`crate::vgic::VgicCpu::plan_inject`]), and
    /// wake the VCPU if it waits in WFI.
    VcpuInjectIrq {
        vcpu: u16,
        intid: u32,
        priority: u8,
        level: bool,
    },
    /// Answer the caller [`crate::vgic::VgicCpu::held_intids`] of `vcpu` (its list registers
    /// read from the hardware first when it is loaded).
    VcpuListRegisters { vcpu: u16 },
    /// Record the guest's virtual timer interrupt configuration for `vcpu`.
    VcpuSetVtimer {
        vcpu: u16,
        enabled: bool,
        priority: u8,
    },
    /// `VSpaceMapMmio`: plan writing MMIO marker `marker` into the level-3 entry for the page
    /// at `ipa` of guest VSpace `vspace` ([`crate::stage2::marker::install_marker`]), run the
    /// plan, keep the VSpace's free-table count, and answer the caller MR0 = the
    /// [`abi::mmio::MarkerAction`] it returned (a mapping is never replaced).
    MapMmioMarker { vspace: u16, ipa: u64, marker: u64 },
    /// Zap the MMIO markers of guest VSpace `vspace` from IPA `from` on, one bounded step
    /// ([`crate::stage2::marker::zap_markers`] with
    /// [`crate::stage2::marker::ZAP_BUDGET`]), then report how far it got with
    /// [`System::mmio_zapped`]. The caller's answer is already set.
    ZapMmioMarkers { vspace: u16, from: u64 },
}

/// Every kernel object and the scheduler.
pub struct System<'a> {
    /// Threads, one per server.
    pub tcbs: &'a mut [Tcb],
    /// Endpoints.
    pub endpoints: &'a mut [Endpoint],
    /// Notifications.
    pub notifications: &'a mut [Notification],
    /// Reply objects, one per thread (same index).
    pub replies: &'a mut [Reply],
    /// All CNode slots; each thread owns a range.
    pub slots: &'a mut [Cap],
    /// Interrupt lines.
    pub irqs: &'a mut [IrqLine],
    /// Guest VSpaces' bookkeeping (set by the boot code; empty without VMs).
    pub vspaces: &'a mut [crate::memory::VSpaceInfo],
    /// Each VM's MMIO routes and marker generation, indexed like `vspaces` (set by the boot
    /// code with [`crate::mmio::MmioState::new`]; empty without VMs, and then no MMIO
    /// invocation or fast path applies).
    pub mmio: &'a mut [crate::mmio::MmioState],
    /// Ready queues.
    pub sched: Scheduler,
    /// The running thread, or [`NONE`] when idle.
    pub current: TcbId,
    /// Set when the current thread must give way at the next scheduling point even if it is
    /// still the highest priority (time slice over, or yield).
    rotate: bool,
    /// The notification console input signals (`DebugInputBind`), if any.
    pub console_input: Option<crate::NotificationId>,
    /// A stop an injected fault left for the arch layer ([`System::take_stop`]).
    stop: Option<Effect>,
    /// Whether any thread has an injected fault planned (test systems only): without one, each
    /// of the injection's checks on the IPC paths is this one flag.
    injections: bool,
}

impl<'a> System<'a> {
    /// A system over pools prepared by the boot code. No thread is running yet.
    pub fn new(
        tcbs: &'a mut [Tcb],
        endpoints: &'a mut [Endpoint],
        notifications: &'a mut [Notification],
        replies: &'a mut [Reply],
        slots: &'a mut [Cap],
        irqs: &'a mut [IrqLine],
    ) -> Self {
        let injections = tcbs.iter().any(|tcb| tcb.injection.is_some());
        Self {
            tcbs,
            endpoints,
            notifications,
            replies,
            slots,
            irqs,
            vspaces: &mut [],
            mmio: &mut [],
            sched: Scheduler::new(),
            current: NONE,
            rotate: false,
            console_input: None,
            stop: None,
            injections,
        }
    }

    /// The thread `id` (the boot code guarantees every stored index is in range; a bad one is a
    /// kernel bug, caught by the slice bounds check).
    #[inline(always)]
    pub fn tcb(&self, id: TcbId) -> &Tcb {
        &self.tcbs[usize::from(id)]
    }

    /// The thread `id`, mutably.
    #[inline(always)]
    pub fn tcb_mut(&mut self, id: TcbId) -> &mut Tcb {
        &mut self.tcbs[usize::from(id)]
    }

    /// Makes a thread runnable (the boot code starts every server this way).
    pub fn make_runnable(&mut self, id: TcbId) {
        self.tcb_mut(id).state = ThreadState::Running;
        if id != self.current {
            self.sched.enqueue(self.tcbs, id);
        }
    }

    /// The system-call entry: the fast path for Call and ReplyRecv when `fastpath` allows and
    /// the call qualifies, else the full path.
    pub fn dispatch_syscall(
        &mut self,
        memory: &mut impl IpcMemory,
        number: u64,
        fastpath: bool,
    ) -> Effect {
        if fastpath && self.fastpath(number) == FastpathOutcome::Switched {
            return Effect::None;
        }
        self.handle_syscall(memory, number)
    }

    /// Handles a system call from the current thread on the full path. `number` is the raw `x7`.
    pub fn handle_syscall(&mut self, memory: &mut impl IpcMemory, number: u64) -> Effect {
        let me = self.current;
        let Some(syscall) = Syscall::from_raw(number) else {
            self.set_error(me, KernelError::InvalidSyscall { number });
            return Effect::None;
        };
        if let Some(effect) = self.inject_at_syscall(syscall) {
            return effect;
        }
        match syscall {
            Syscall::Call => self.sys_send(memory, true, true),
            Syscall::Send => self.sys_send(memory, true, false),
            Syscall::NBSend => self.sys_send(memory, false, false),
            Syscall::Recv => {
                self.sys_recv(memory);
                Effect::None
            }
            Syscall::ReplyRecv => {
                let (go_on, effect) = self.sys_reply(memory);
                if go_on {
                    self.sys_recv(memory);
                }
                effect
            }
            Syscall::Signal => {
                self.sys_signal();
                Effect::None
            }
            Syscall::Wait => {
                self.sys_wait(true);
                Effect::None
            }
            Syscall::Poll => {
                self.sys_wait(false);
                Effect::None
            }
            Syscall::Yield => {
                self.rotate = true;
                Effect::None
            }
            Syscall::DebugWrite | Syscall::DebugLog => self.sys_debug(syscall),
        }
    }

    /// DebugWrite / DebugLog: `x0` must name a `DebugConsole` / `DebugLog` capability, `x1` is
    /// the length (clamped to the IPC buffer). Checked before anything happens: without the
    /// capability the caller gets the error naming the slot and nothing is printed or logged.
    fn sys_debug(&mut self, syscall: Syscall) -> Effect {
        let me = self.current;
        let context = &self.tcb(me).context;
        let (cptr, len) = (context.x(0), context.x(1));
        let len = usize::try_from(len)
            .unwrap_or(usize::MAX)
            .min(abi::message::IPC_BUFFER_WORDS * 8);
        let effect = match (self.lookup(me, cptr), syscall) {
            (Err(error), _) => Err(error),
            (Ok(Cap::DebugConsole), Syscall::DebugWrite) => Ok(Effect::DebugWrite { len }),
            (Ok(Cap::DebugLog), Syscall::DebugLog) => Ok(Effect::DebugLog { len }),
            (Ok(_), _) => Err(KernelError::WrongObjectType { slot: cptr }),
        };
        match effect {
            Ok(effect) => {
                self.set_result(me, &[]);
                effect
            }
            Err(error) => {
                self.set_error(me, error);
                Effect::None
            }
        }
    }

    /// A timer tick: charges the current thread; at the end of its slice it goes to the back of
    /// its level.
    pub fn tick(&mut self, slice_ticks: u32) {
        let me = self.current;
        if me == NONE {
            return;
        }
        let tcb = self.tcb_mut(me);
        tcb.timeslice_left = tcb.timeslice_left.saturating_sub(1);
        if tcb.timeslice_left == 0 {
            tcb.timeslice_left = slice_ticks;
            self.rotate = true;
        }
    }

    /// Picks the thread to run next and makes it current; [`NONE`] means idle.
    pub fn choose_next(&mut self) -> TcbId {
        let me = self.current;
        let runnable = me != NONE && self.tcb(me).state.is_runnable();
        let rotate = core::mem::replace(&mut self.rotate, false);
        match self.sched.highest_priority() {
            None => {
                if !runnable {
                    self.current = NONE;
                }
            }
            Some(best) => {
                let keep = runnable
                    && (self.tcb(me).priority > best || (self.tcb(me).priority == best && !rotate));
                if !keep {
                    if runnable {
                        if rotate {
                            self.sched.enqueue(self.tcbs, me);
                        } else {
                            self.sched.enqueue_front(self.tcbs, me);
                        }
                    }
                    self.current = self.sched.pop_highest(self.tcbs).unwrap_or(NONE);
                }
            }
        }
        self.current
    }

    /// Answers the thread's system call with a kernel error.
    pub fn set_error(&mut self, id: TcbId, error: KernelError) {
        let (details, count) = error.details();
        let context = &mut self.tcb_mut(id).context;
        context.set_x(1, MessageInfo::error(error.code(), count as u64).raw());
        for (index, value) in details.iter().enumerate() {
            context.set_x(2 + index, *value);
        }
    }

    /// Answers the thread's call with success and `values` in message registers.
    pub fn set_result(&mut self, id: TcbId, values: &[u64]) {
        let context = &mut self.tcb_mut(id).context;
        context.set_x(1, MessageInfo::new(0, 0, values.len() as u64).raw());
        for (index, value) in values.iter().take(4).enumerate() {
            context.set_x(2 + index, *value);
        }
    }

    /// The capability at `cptr` in `id`'s CNode.
    #[inline(always)]
    pub fn lookup(&self, id: TcbId, cptr: u64) -> Result<Cap, KernelError> {
        crate::cnode::lookup(self.slots, self.tcb(id).cnode, cptr)
    }

    /// Delivers an interrupt: signals its notification. The caller masks the line until the
    /// handler acknowledges it.
    pub fn irq_fired(&mut self, intid: u32) -> bool {
        let Some(line) = self.irqs.iter().find(|line| line.intid == intid).copied() else {
            return false;
        };
        self.signal(line.notification, line.badge);
        true
    }
}
