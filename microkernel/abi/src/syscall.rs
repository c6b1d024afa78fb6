//! System-call numbers and invocation labels.
//!
//! Register convention (aarch64, `svc #0` from EL0):
//!
//! | register | on entry                         | on return                      |
//! |----------|----------------------------------|--------------------------------|
//! | x0       | capability pointer (or argument) | badge of the sender / result   |
//! | x1       | [`MessageInfo`](crate::MessageInfo) | message info of the reply   |
//! | x2..x5   | message registers 0..3           | message registers 0..3         |
//! | x6       | reply capability pointer (Recv/ReplyRecv) | preserved             |
//! | x7       | system-call number ([`Syscall`]) | preserved                      |
//!
//! Message registers beyond the fourth travel in the caller's IPC buffer.

/// System calls, in `x7`.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syscall {
    /// Send on an endpoint and wait for the reply (the receiver gets a one-shot reply right).
    Call = 0,
    /// Reply through the Reply object in `x6`, then wait on the endpoint in `x0`.
    ReplyRecv = 1,
    /// Blocking send on an endpoint, or a capability invocation (`x0` names the object).
    Send = 2,
    /// Non-blocking send: dropped when no receiver waits.
    NBSend = 3,
    /// Wait on an endpoint (reply object in `x6`) or a notification.
    Recv = 4,
    /// Signal a notification: OR the capability's badge into its word.
    Signal = 5,
    /// Wait on a notification: returns and clears its word.
    Wait = 6,
    /// Give up the rest of the time slice.
    Yield = 7,
    /// Non-blocking poll of a notification.
    Poll = 8,
    /// Write bytes from the IPC buffer to the kernel console: `x0` a `DebugConsole`
    /// capability, `x1` the length in bytes (at most the IPC buffer). Answers in `x1` like an
    /// invocation: success, or the error naming the capability, with nothing printed.
    DebugWrite = 9,
    /// Hand one encoded defmt frame from the IPC buffer to the kernel's log, tagged with the
    /// caller's protection domain: `x0` a `DebugLog` capability, `x1` the length in bytes.
    /// Answers like [`Syscall::DebugWrite`].
    DebugLog = 10,
}

impl Syscall {
    /// Decodes a raw number from `x7`.
    pub const fn from_raw(raw: u64) -> Option<Self> {
        Some(match raw {
            0 => Self::Call,
            1 => Self::ReplyRecv,
            2 => Self::Send,
            3 => Self::NBSend,
            4 => Self::Recv,
            5 => Self::Signal,
            6 => Self::Wait,
            7 => Self::Yield,
            8 => Self::Poll,
            9 => Self::DebugWrite,
            10 => Self::DebugLog,
            _ => return None,
        })
    }
}

/// Labels of capability invocations: a `Call` on a capability that is not an endpoint is an
/// invocation of that object; the label in [`MessageInfo`](crate::MessageInfo) selects it.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvocationLabel {
    /// TCB: suspend the thread (cancels any IPC it is blocked in).
    TcbSuspend = 1,
    /// TCB: resume a suspended thread.
    TcbResume = 2,
    /// TCB: reset the server from its pristine image (code, data, bss, stack) and bump the
    /// generation of every endpoint it serves. MR0: 1 to start it again, 0 to leave it down.
    TcbRestart = 3,
    /// TCB: read the server's generation and state.
    TcbReadState = 4,
    /// CNode: copy a capability with the same or fewer rights (MR0 src, MR1 dst, MR2 rights).
    CNodeCopy = 5,
    /// CNode: mint a badged copy (MR0 src, MR1 dst, MR2 rights, MR3 badge).
    CNodeMint = 6,
    /// CNode: delete a capability (MR0 slot).
    CNodeDelete = 7,
    /// IrqHandler: acknowledge the interrupt so it can fire again.
    IrqAck = 8,
    /// System control: stop the whole system with an exit status (MR0).
    SystemOff = 9,
    /// VSpace: map a frame (MR0 frame slot, MR1 IPA, MR2 [`crate::vm::MapAttributes`] bits)
    /// through the stage-2 mapping path (same mapping: no-op; permissions only: in place;
    /// anything else: break-before-make). Answers MR0 = [`crate::vm::MapAction`].
    VSpaceMap = 10,
    /// VSpace: remove the mapping at MR0 (IPA), size MR1 (4 KiB or 2 MiB).
    VSpaceUnmap = 11,
    /// VSpace: make every mapping in MR0 (IPA) .. MR0 + MR1 read-only (dirty logging).
    VSpaceWriteProtect = 12,
    /// Frame: carve a 4 KiB or 2 MiB frame capability (MR1 bytes) at byte offset MR0 of this
    /// frame range into the caller's empty slot MR2.
    FrameCarve = 13,
    /// Frame: revoke every capability carved from this frame range, unmapping each first.
    FrameRevoke = 14,
    /// VCPU: make virtual interrupt MR0 (INTID) pending in a free list register with priority
    /// MR1; MR2 bit 0 asks for a maintenance exit when the guest completes it (level-sensitive
    /// interrupts, whose line the vmm must sample again). `NoFreeListRegister` when all are busy.
    VcpuInjectIrq = 15,
    /// VCPU: the guest's configuration of its virtual timer's interrupt (PPI 27), which the
    /// kernel injects itself: MR0 1 = enabled, MR1 its priority.
    VcpuSetVtimer = 16,
    /// Frame: answer its physical address (MR0) and size in bytes (MR1), for a driver that
    /// programs a device's DMA with it (seL4's `ARM_Page_GetAddress`).
    FrameGetAddress = 17,
    /// DebugInput: signal the notification in slot MR0 (a READ capability the caller waits on)
    /// with [`crate::message::CONSOLE_INPUT_BADGE`] whenever console input arrives.
    DebugInputBind = 18,
    /// DebugInput: take up to 24 bytes of console input: MR0 = how many, MR1..MR3 the bytes
    /// (little-endian, first byte lowest).
    DebugInputRead = 19,
    /// VCPU: set MMIO route MR0 (`0..`[`crate::mmio::MAX_ROUTES`]) of the VM to the endpoint
    /// capability in the caller's slot MR1 (it needs WRITE; its badge is what the device server
    /// sees), covering IPAs MR2 .. MR2 + MR3 (page aligned, non-empty, inside the 39-bit IPA
    /// space, overlapping no other route; an overlap is reported against MR2). Replaces what
    /// the route held, doorbell included. A memory-map change: the VM's generation moves on,
    /// so every marker of the VM misses once (docs/MMIO.md).
    VcpuSetMmioRoute = 20,
    /// VCPU: empty MMIO route MR0 (a memory-map change, like [`Self::VcpuSetMmioRoute`]).
    VcpuClearMmioRoute = 21,
    /// VCPU: a write at offset MR1 (4-byte aligned, inside the route) of MMIO route MR0 signals
    /// the notification capability in the caller's slot MR2 (it needs WRITE) with its badge
    /// and resumes the guest at once, without calling the device server (the value written is
    /// not delivered). One doorbell per route; setting the route again removes it.
    VcpuSetDoorbell = 22,
    /// VSpace: install an MMIO marker for the page holding IPA MR0, naming the route that
    /// covers it and the VM's current generation. Refused with no effect when no route covers
    /// it (`InvalidArgument` 0), while an update bracket is open (`Busy`), or when the VM's
    /// markers are off (`IllegalOperation`). Never replaces a mapping: answers MR0 =
    /// [`crate::mmio::MarkerAction`].
    VSpaceMapMmio = 23,
    /// VSpace: MR0 [`crate::mmio::UPDATE_BEGIN`] opens a memory-map update bracket (every
    /// marker stops matching at once), [`crate::mmio::UPDATE_END`] closes it with a fresh
    /// generation (refused with `InvalidArgument` 0 when none is open). A begin while one is
    /// open is accepted (a restarted mmu-server closes a bracket its predecessor left open
    /// with begin, end). Answers MR0 = the generation.
    VSpaceMmioUpdate = 24,
    /// VCPU: answer which INTIDs below 256 its list registers hold (pending, active, or
    /// completed with its maintenance exit still to come): bit n % 64 of MR(n / 64) for INTID
    /// n. A restarted vmm brings its vGIC model back in line with them (docs/VMM.md,
    /// "Restart"). Reads only; its arguments are ignored.
    VcpuListRegisters = 25,
}

impl InvocationLabel {
    /// Decodes a label; `None` for anything unknown.
    pub const fn from_raw(raw: u64) -> Option<Self> {
        Some(match raw {
            1 => Self::TcbSuspend,
            2 => Self::TcbResume,
            3 => Self::TcbRestart,
            4 => Self::TcbReadState,
            5 => Self::CNodeCopy,
            6 => Self::CNodeMint,
            7 => Self::CNodeDelete,
            8 => Self::IrqAck,
            9 => Self::SystemOff,
            10 => Self::VSpaceMap,
            11 => Self::VSpaceUnmap,
            12 => Self::VSpaceWriteProtect,
            13 => Self::FrameCarve,
            14 => Self::FrameRevoke,
            15 => Self::VcpuInjectIrq,
            16 => Self::VcpuSetVtimer,
            17 => Self::FrameGetAddress,
            18 => Self::DebugInputBind,
            19 => Self::DebugInputRead,
            20 => Self::VcpuSetMmioRoute,
            21 => Self::VcpuClearMmioRoute,
            22 => Self::VcpuSetDoorbell,
            23 => Self::VSpaceMapMmio,
            24 => Self::VSpaceMmioUpdate,
            25 => Self::VcpuListRegisters,
            _ => return None,
        })
    }
}
