//! Threads: the saved user context, the scheduling and IPC state, and what a thread owns.
//!
//! [`UserContext`] is the first field of a `#[repr(C)]` [`Tcb`] because the exception entry
//! assembly saves and restores registers straight into it (the kernel stack pointer points at
//! the current thread's context while user code runs, as in seL4).

use crate::queue::Link;
use crate::{EndpointId, NotificationId, ReplyId};
use abi::FaultInfo;

/// Saved user registers: x0..x30, then SP_EL0, ELR_EL2, SPSR_EL2, and TPIDR_EL0.
///
/// TPIDR_EL0 is writable at EL0 and readable by whatever runs next at EL0, so it is part of
/// every thread's context (saved on every entry, restored on every exit): otherwise it would be
/// a channel between protection domains, and any server could read or change a guest's EL0
/// thread pointer (docs/ARCHITECTURE.md, "EL1 and EL0 state").
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserContext {
    /// The registers, indexed by the constants below.
    pub regs: [u64; CONTEXT_WORDS],
}

/// Number of words of a [`UserContext`].
pub const CONTEXT_WORDS: usize = 36;
/// Index of the user stack pointer.
pub const SP: usize = 31;
/// Index of the resume address (ELR_EL2).
pub const PC: usize = 32;
/// Index of the saved program status (SPSR_EL2).
pub const PSTATE: usize = 33;
/// Index of the EL0 thread pointer (TPIDR_EL0); index 35 pads the context to 16 bytes.
pub const TPIDR_EL0: usize = 34;

impl UserContext {
    /// A context that starts at `pc` with stack `sp` at EL0, interrupts unmasked.
    pub const fn new(pc: u64, sp: u64) -> Self {
        let mut regs = [0; CONTEXT_WORDS];
        regs[SP] = sp;
        regs[PC] = pc;
        regs[PSTATE] = 0; // EL0t, DAIF clear
        Self { regs }
    }

    /// Register `n` (x0..x30).
    pub fn x(&self, n: usize) -> u64 {
        self.regs.get(n).copied().unwrap_or(0)
    }

    /// Sets register `n` (x0..x30); out-of-range indices are ignored.
    pub fn set_x(&mut self, n: usize, value: u64) {
        if let Some(slot) = self.regs.get_mut(n) {
            *slot = value;
        }
    }
}

/// What a thread is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadState {
    /// Not runnable: never started, suspended, or down for good.
    Inactive,
    /// Runnable: current, or in the ready queue.
    Running,
    /// Queued on an endpoint to send. `slot` is the caller's capability slot, refreshed when the
    /// kernel answers `Restarted`.
    BlockedOnSend {
        ep: EndpointId,
        badge: u64,
        is_call: bool,
        can_grant: bool,
        slot: u32,
    },
    /// Queued on an endpoint to receive, replies going to `reply`.
    BlockedOnReceive {
        ep: EndpointId,
        reply: Option<ReplyId>,
    },
    /// Waiting for the holder of `reply` to answer. `slot` is the endpoint slot it called
    /// through (`u32::MAX` for a fault message).
    BlockedOnReply {
        reply: ReplyId,
        ep: EndpointId,
        slot: u32,
    },
    /// Waiting on a notification.
    BlockedOnNotification { ntfn: NotificationId },
    /// A VCPU thread whose guest executed WFI: waiting until its virtual interrupt line is
    /// asserted ([`crate::system::System::wake_vcpu`]).
    WaitingForInterrupt,
}

impl ThreadState {
    /// Whether the thread can run.
    pub const fn is_runnable(&self) -> bool {
        matches!(self, Self::Running)
    }
}

/// A contiguous range of slots in the system's slot pool: one thread's CNode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SlotRange {
    /// First slot.
    pub base: u32,
    /// Number of slots.
    pub len: u32,
}

/// A thread control block.
#[repr(C)]
#[derive(Clone, Debug)]
pub struct Tcb {
    /// Saved registers; must stay the first field (see the module docs).
    pub context: UserContext,
    /// IPC and scheduling state.
    pub state: ThreadState,
    /// Priority, 1..=254; higher runs first.
    pub priority: u8,
    /// Scheduler queue link and object (endpoint / notification) queue link.
    pub links: [Link; 2],
    /// The thread's CNode.
    pub cnode: SlotRange,
    /// Where faults go: an endpoint and the badge the handler sees.
    pub fault_handler: Option<(EndpointId, u64)>,
    /// The fault being delivered, while the thread waits for its handler.
    pub fault: Option<FaultInfo>,
    /// Arch-opaque address-space root (VTTBR value).
    pub vspace_root: u64,
    /// Arch-opaque physical address of the IPC buffer (0 = none).
    pub ipc_buffer: u64,
    /// How many times the thread was restarted.
    pub generation: u32,
    /// Ticks left in its time slice.
    pub timeslice_left: u32,
    /// The VCPU bound to this thread: it runs a guest at EL1 instead of a server at EL0.
    pub vcpu: Option<u16>,
    /// The guest exit being delivered, while a VCPU thread waits for its vmm.
    pub vm_exit: Option<abi::vm::VmExit>,
    /// The guest MMIO access a VCPU thread's fast-path call to a device server carries, while
    /// it waits for the answer (set with `fault`, kind [`abi::FaultKind::Mmio`]).
    pub mmio: Option<crate::mmio::MmioCall>,
    /// A notification bound to this thread: a signal to it ends the thread's receive on any
    /// endpoint (seL4's bound notification), so a server can wait for requests and for events
    /// at once.
    pub bound_notification: Option<crate::NotificationId>,
    /// A fault the kernel makes this thread take (test systems only; [`Injection`]).
    pub injection: Option<Injection>,
}

/// A kernel-made fault ([`abi::FaultKind::Injected`], `crate::system::inject`): the `count`-th
/// time the thread reaches `at` since it last started, it faults there instead of going on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Injection {
    /// Where.
    pub at: abi::InjectAt,
    /// At which occurrence (at least 1).
    pub count: u32,
    /// How many times it reached `at` in this life.
    pub seen: u32,
}

impl Injection {
    /// Counts one arrival at `at`; true when this one fires.
    pub fn arrive(&mut self) -> bool {
        self.seen = self.seen.saturating_add(1);
        self.seen == self.count
    }
}

/// Index into [`Tcb::links`] of the scheduler queue link.
pub const SCHED_LINK: usize = 0;
/// Index into [`Tcb::links`] of the endpoint / notification queue link.
pub const OBJECT_LINK: usize = 1;

impl Tcb {
    /// An inactive thread with no capabilities.
    pub const fn new(priority: u8) -> Self {
        Self {
            context: UserContext::new(0, 0),
            state: ThreadState::Inactive,
            priority,
            links: [Link::EMPTY, Link::EMPTY],
            cnode: SlotRange { base: 0, len: 0 },
            fault_handler: None,
            fault: None,
            vspace_root: 0,
            ipc_buffer: 0,
            generation: 0,
            timeslice_left: 0,
            vcpu: None,
            vm_exit: None,
            mmio: None,
            bound_notification: None,
            injection: None,
        }
    }
}
