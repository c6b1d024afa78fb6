//! System-call stubs (register convention in `abi::syscall`). Each is one `svc #0`; the kernel
//! preserves every register it does not answer in.

use abi::{CPtr, MessageInfo, Syscall};

/// What a receive returns: the sender's badge, the message info and four message registers.
pub type Received = (u64, MessageInfo, [u64; 4]);

#[inline(always)]
fn svc(number: Syscall, cptr: u64, info: u64, mr: [u64; 4], reply: u64) -> Received {
    let (badge, info_out, m0, m1, m2, m3);
    // SAFETY: `svc` enters the kernel, which reads the argument registers and writes x0..x5.
    // The asm is not `nomem`: the kernel may write this thread's IPC buffer.
    unsafe {
        core::arch::asm!(
            "svc #0",
            inout("x0") cptr => badge,
            inout("x1") info => info_out,
            inout("x2") mr[0] => m0,
            inout("x3") mr[1] => m1,
            inout("x4") mr[2] => m2,
            inout("x5") mr[3] => m3,
            in("x6") reply,
            in("x7") number as u64,
            options(nostack),
        );
    }
    (badge, MessageInfo::from_raw(info_out), [m0, m1, m2, m3])
}

/// Call: send and wait for the reply.
#[inline(always)]
pub fn call(endpoint: CPtr, info: MessageInfo, mr: [u64; 4]) -> (MessageInfo, [u64; 4]) {
    let (_, info, mr) = svc(Syscall::Call, endpoint, info.raw(), mr, 0);
    (info, mr)
}

/// Reply through `reply`, then wait on `endpoint`.
#[inline(always)]
pub fn reply_recv(endpoint: CPtr, reply: CPtr, info: MessageInfo, mr: [u64; 4]) -> Received {
    svc(Syscall::ReplyRecv, endpoint, info.raw(), mr, reply)
}

/// Wait on `endpoint`, answers going to `reply`.
#[inline(always)]
pub fn recv(endpoint: CPtr, reply: CPtr) -> Received {
    svc(Syscall::Recv, endpoint, 0, [0; 4], reply)
}

/// Blocking send (or an invocation whose answer is dropped).
pub fn send(endpoint: CPtr, info: MessageInfo, mr: [u64; 4]) -> MessageInfo {
    svc(Syscall::Send, endpoint, info.raw(), mr, 0).1
}

/// Send only if a receiver waits.
pub fn nb_send(endpoint: CPtr, info: MessageInfo, mr: [u64; 4]) -> MessageInfo {
    svc(Syscall::NBSend, endpoint, info.raw(), mr, 0).1
}

/// Signal a notification.
pub fn signal(notification: CPtr) -> MessageInfo {
    svc(Syscall::Signal, notification, 0, [0; 4], 0).1
}

/// Signals `notification` when there is one and `condition` holds (a device server telling
/// its vmm that a line changed).
pub fn signal_if(notification: Option<CPtr>, condition: bool) {
    if let (true, Some(notification)) = (condition, notification) {
        signal(notification);
    }
}

/// Wait on a notification: returns its word.
pub fn wait(notification: CPtr) -> (u64, MessageInfo) {
    let (word, info, _) = svc(Syscall::Wait, notification, 0, [0; 4], 0);
    (word, info)
}

/// Poll a notification: returns its word (0 when nothing was signalled) without blocking.
pub fn poll(notification: CPtr) -> (u64, MessageInfo) {
    let (word, info, _) = svc(Syscall::Poll, notification, 0, [0; 4], 0);
    (word, info)
}

/// Give the CPU to another thread of the same priority.
pub fn yield_now() {
    svc(Syscall::Yield, 0, 0, [0; 4], 0);
}

/// Invoke a kernel object: `label` selects the operation, `args` go in message registers.
pub fn invoke(
    object: CPtr,
    label: abi::InvocationLabel,
    args: [u64; 4],
) -> (MessageInfo, [u64; 4]) {
    call(object, MessageInfo::new(label as u64, 0, 4), args)
}

/// Write `len` bytes (at most one IPC buffer's worth) that are already in the IPC buffer to the
/// console, through the `DebugConsole` capability `console`. `print!` finds the capability
/// itself; this is the raw call. Answered like an invocation (an error names the slot).
pub fn debug_write(console: CPtr, len: usize) -> (MessageInfo, [u64; 4]) {
    let (_, info, mr) = svc(Syscall::DebugWrite, console, len as u64, [0; 4], 0);
    (info, mr)
}

/// Hand one encoded defmt frame of `len` bytes, already in the IPC buffer, to the kernel's log,
/// through the `DebugLog` capability `log`. Answered like [`debug_write`].
pub fn debug_log(log: CPtr, len: usize) -> (MessageInfo, [u64; 4]) {
    let (_, info, mr) = svc(Syscall::DebugLog, log, len as u64, [0; 4], 0);
    (info, mr)
}

/// The cycle counter (PMCCNTR_EL0, enabled for EL0 by the kernel). Under QEMU with
/// `-icount shift=0` it counts instructions, kernel ones included.
#[inline(always)]
pub fn cycles() -> u64 {
    let value: u64;
    // SAFETY: reading PMCCNTR_EL0 has no side effect; the kernel set PMUSERENR_EL0.EN.
    unsafe { core::arch::asm!("isb", "mrs {}, pmccntr_el0", out(reg) value, options(nostack)) };
    value
}

/// This thread's EL0 thread pointer (TPIDR_EL0), which the kernel keeps per thread.
pub fn thread_pointer() -> u64 {
    let value: u64;
    // SAFETY: reading TPIDR_EL0 has no side effect.
    unsafe { core::arch::asm!("mrs {}, tpidr_el0", out(reg) value, options(nomem, nostack)) };
    value
}

/// Sets this thread's EL0 thread pointer (TPIDR_EL0); no other thread sees the value.
pub fn set_thread_pointer(value: u64) {
    // SAFETY: TPIDR_EL0 is a software register; nothing in userlib gives it a meaning.
    unsafe { core::arch::asm!("msr tpidr_el0, {}", in(reg) value, options(nomem, nostack)) };
}

/// The physical counter (CNTPCT_EL0) and its frequency: time for restart budgets. Physical,
/// not virtual: the virtual counter carries the offset of whichever VM's VCPU is loaded.
pub fn now_ticks() -> (u64, u64) {
    let (count, frequency): (u64, u64);
    // SAFETY: reading the generic timer's counter and frequency has no side effect.
    unsafe {
        core::arch::asm!(
            "isb",
            "mrs {count}, cntpct_el0",
            "mrs {frequency}, cntfrq_el0",
            count = out(reg) count,
            frequency = out(reg) frequency,
            options(nostack),
        );
    }
    (count, frequency)
}
