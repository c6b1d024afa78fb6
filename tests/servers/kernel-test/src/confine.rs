//! `confine` / `confine-judge`: capability confinement from EL0 (issue #11 item 5;
//! `tests/manifests/confinement.toml`, docs/TESTING.md "Capability confinement").
//!
//! `confine` holds a send-only (WRITE, badge [`CONFINE_BADGE`], no GRANT) capability of the
//! judge's endpoint, a signal-only capability of the judge's notification, the console, and its
//! fixed slots (null, reply, CNode) in a CNode of 16 slots. In its first life it makes every
//! kind of system call through slots it does not hold (0, empty ones, past its CNode, in the
//! range a neighbour's CNode would follow it, `u64::MAX`), on capabilities of the wrong kind
//! and without the right the call uses; it copies and mints its capabilities asking for every
//! right, another badge, and uses the copies for what the originals could not do (a receive
//! through a send-only capability, a capability transfer without GRANT, which the judge checks
//! from its side). It prints each answer of the kernel, `FAILED` after any that is not the
//! expected one, and sends the judge its tally.
//!
//! Then, one per life, the reads of memory it does not own: the start of RAM (where the judge
//! maps its secret page), the kernel image, the judge's secret page by its physical address
//! (the judge learns it with `FrameGetAddress`), the GIC distributor, the kernel's UART, the
//! first address past a server's IPA space and the top of the 64-bit address space. Each must
//! fault: the kernel sends the supervisor a data abort and the supervisor restarts `confine`.
//! What survives the restarts is the judge's count: each life starts by asking the judge what to
//! do, and a new life after a read is the proof that the read faulted (a read that returns is
//! printed as `confine: read of ... succeeded` and reported). The judge holds system control
//! and ends the system with status 0 only when every answer was the expected one, every read
//! faulted and none succeeded.

use abi::message::{IPC_BUFFER_RECEIVE_SLOT, IPC_BUFFER_SEND_CAP};
use abi::{CNODE_SLOT, CPtr, InvocationLabel, KernelError, MessageInfo, REPLY_SLOT, Syscall};
use userlib::{ipc_buffer, println, syscall};

/// The badge of `confine`'s capability of the judge's endpoint (the manifest's).
const CONFINE_BADGE: u64 = 7;
/// Where the judge maps its secret page (the manifest's `judge-secret` region).
const SECRET_VA: u64 = 0x4000_0000;
/// The judge's slot for a capability offered to it (its CNode has room: default size).
const PROBE_SLOT: u64 = 15;

/// Requests to the judge (message labels).
const HELLO: u64 = 1;
const VERDICT: u64 = 2;
const PROBE: u64 = 3;
const READ_SUCCEEDED: u64 = 4;
/// The judge's answers (reply labels): what this life of `confine` does. After the last read
/// the judge ends the system instead of answering.
const DO_CHECKS: u64 = 1;
const DO_READ: u64 = 2;

/// The forbidden reads, in order; `None`: the judge's secret page, whose physical address only
/// the judge knows.
const READS: [(&str, Option<u64>); 7] = [
    (
        "the start of RAM, where the judge maps its secret page",
        Some(0x4000_0000),
    ),
    ("the kernel image", Some(0x4010_0000)),
    ("the judge's secret page by its physical address", None),
    ("the GIC distributor", Some(0x0800_0000)),
    ("the kernel's UART", Some(0x0900_0000)),
    ("the first address past its IPA space", Some(1 << 39)),
    ("the top of the address space", Some(0xFFFF_FFFF_FFFF_F000)),
];

/// A system call's answer: `x0`, the message info, four message registers.
type Answer = (u64, MessageInfo, [u64; 4]);

/// System call `number` with `x0..x6` = `regs`.
fn raw(number: u64, regs: [u64; 7]) -> Answer {
    let (x0, x1, x2, x3, x4, x5);
    // SAFETY: `svc` enters the kernel, which reads x0..x7 and writes at most x0..x5
    // (abi::syscall); the kernel may also write the IPC buffer, so the asm is not `nomem`.
    // Every call made through here names nothing it could block on (the checks only).
    unsafe {
        core::arch::asm!(
            "svc #0",
            inout("x0") regs[0] => x0,
            inout("x1") regs[1] => x1,
            inout("x2") regs[2] => x2,
            inout("x3") regs[3] => x3,
            inout("x4") regs[4] => x4,
            inout("x5") regs[5] => x5,
            in("x6") regs[6],
            in("x7") number,
            options(nostack),
        );
    }
    (x0, MessageInfo::from_raw(x1), [x2, x3, x4, x5])
}

/// The kernel's typed error in an answer, `None` for success.
fn error_of(answer: Answer) -> Option<KernelError> {
    let (_, info, mr) = answer;
    if !info.is_error() {
        return None;
    }
    // An unknown code shows as an IllegalOperation naming it, which no check expects.
    Some(
        KernelError::decode(info.label(), [mr[0], mr[1], mr[2]]).unwrap_or(
            KernelError::IllegalOperation {
                label: info.label(),
            },
        ),
    )
}

/// `syscall` through `cptr`: a message of `label` with four words.
fn through(call: Syscall, cptr: CPtr, label: u64, reply: CPtr) -> Option<KernelError> {
    let info = MessageInfo::new(label, 0, 4).raw();
    error_of(raw(call as u64, [cptr, info, 0, 0, 0, 0, reply]))
}

/// An invocation of `cptr` with `label` and `args`.
fn invoke(cptr: CPtr, label: u64, args: [u64; 4]) -> Option<KernelError> {
    let info = MessageInfo::new(label, 0, 4).raw();
    let regs = [cptr, info, args[0], args[1], args[2], args[3], 0];
    error_of(raw(Syscall::Call as u64, regs))
}

/// The printed form of an answer.
struct Shown(Option<KernelError>);

impl core::fmt::Display for Shown {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            None => write!(f, "Ok"),
            Some(error) => write!(f, "{error:?}"),
        }
    }
}

/// Answers that came out as expected, of how many.
#[derive(Default)]
struct Tally {
    passed: u64,
    total: u64,
}

impl Tally {
    fn check(&mut self, what: &str, answer: Option<KernelError>, expected: Option<KernelError>) {
        self.total += 1;
        let ok = answer == expected;
        self.passed += u64::from(ok);
        if ok {
            println!("confine: {what}: {}", Shown(answer));
        } else {
            println!(
                "confine: {what}: {} FAILED (expected {})",
                Shown(answer),
                Shown(expected)
            );
        }
    }

    /// `call` through every slot of `slots`, each answered `InvalidCapability` naming it: one
    /// line when all are.
    fn not_held(&mut self, call: Syscall, slots: &[u64], reply: CPtr) {
        let mut all = true;
        for slot in slots {
            let answer = through(call, *slot, 0, reply);
            let expected = Some(KernelError::InvalidCapability { slot: *slot });
            self.total += 1;
            if answer == expected {
                self.passed += 1;
            } else {
                all = false;
                println!(
                    "confine: {call:?} through slot {slot:#x}: {} FAILED",
                    Shown(answer)
                );
            }
        }
        if all {
            println!("confine: {call:?} through each: InvalidCapability naming the slot");
        }
    }
}

const fn invalid(slot: u64) -> Option<KernelError> {
    Some(KernelError::InvalidCapability { slot })
}
const fn wrong(slot: u64) -> Option<KernelError> {
    Some(KernelError::WrongObjectType { slot })
}
const fn rights(slot: u64) -> Option<KernelError> {
    Some(KernelError::InsufficientRights { slot })
}
const fn illegal(label: u64) -> Option<KernelError> {
    Some(KernelError::IllegalOperation { label })
}
const fn argument(index: u64) -> Option<KernelError> {
    Some(KernelError::InvalidArgument { index })
}

/// Slots `confine` copies into (empty at start: its six capabilities are in slots 0..=5).
const COPY_EP: u64 = 13;
const COPY_BELL: u64 = 14;
const SPARE: u64 = 15;
/// Its CNode's size (the manifest's `cnode_slots`).
const CNODE_SLOTS: u64 = 16;

fn checks() -> Tally {
    let judge = userlib::cap("confine-judge");
    let bell = userlib::cap("confine-bell");
    let console = userlib::cap(abi::DEBUG_CONSOLE_CAP);
    let mut tally = Tally::default();
    let label = |op: InvocationLabel| op as u64;

    // Slots it does not hold.
    let not_held = [
        0,
        12,
        CNODE_SLOTS,
        CNODE_SLOTS + 1,
        4096,
        (1 << 32) | judge,
        u64::MAX,
    ];
    println!("confine: slots it does not hold: {not_held:?}");
    for call in [
        Syscall::Call,
        Syscall::Send,
        Syscall::NBSend,
        Syscall::Recv,
        Syscall::ReplyRecv,
        Syscall::Signal,
        Syscall::Wait,
        Syscall::Poll,
        Syscall::DebugWrite,
        Syscall::DebugLog,
    ] {
        tally.not_held(call, &not_held, REPLY_SLOT);
    }
    tally.check(
        "ReplyRecv naming slot 12 as its reply object",
        through(Syscall::ReplyRecv, judge, 0, 12),
        invalid(12),
    );
    for number in [11, u64::MAX] {
        let answer = error_of(raw(number, [judge, 0, 0, 0, 0, 0, 0]));
        let what = if number == 11 {
            "system call 11"
        } else {
            "system call u64::MAX"
        };
        tally.check(what, answer, Some(KernelError::InvalidSyscall { number }));
    }

    // Capabilities of the wrong kind.
    let cases = [
        (
            "Signal on its endpoint capability",
            Syscall::Signal,
            judge,
            wrong(judge),
        ),
        (
            "Wait on its endpoint capability",
            Syscall::Wait,
            judge,
            wrong(judge),
        ),
        (
            "Poll on its console capability",
            Syscall::Poll,
            console,
            wrong(console),
        ),
        (
            "Recv on its console capability",
            Syscall::Recv,
            console,
            wrong(console),
        ),
        (
            "Recv on its CNode",
            Syscall::Recv,
            CNODE_SLOT,
            wrong(CNODE_SLOT),
        ),
        (
            "NBSend of an invocation to its CNode",
            Syscall::NBSend,
            CNODE_SLOT,
            wrong(CNODE_SLOT),
        ),
        (
            "DebugWrite through its notification capability",
            Syscall::DebugWrite,
            bell,
            wrong(bell),
        ),
    ];
    for (what, call, cptr, expected) in cases {
        tally.check(what, through(call, cptr, 0, REPLY_SLOT), expected);
    }
    tally.check(
        "ReplyRecv naming its endpoint capability as its reply object",
        through(Syscall::ReplyRecv, judge, 0, judge),
        wrong(judge),
    );
    let invocations = [
        (
            "SystemOff on its CNode",
            CNODE_SLOT,
            InvocationLabel::SystemOff,
        ),
        (
            "SystemOff on its reply capability",
            REPLY_SLOT,
            InvocationLabel::SystemOff,
        ),
        (
            "SystemOff on its notification capability",
            bell,
            InvocationLabel::SystemOff,
        ),
        (
            "SystemOff on its console capability",
            console,
            InvocationLabel::SystemOff,
        ),
        (
            "TcbSuspend on its CNode",
            CNODE_SLOT,
            InvocationLabel::TcbSuspend,
        ),
        (
            "TcbRestart on its CNode",
            CNODE_SLOT,
            InvocationLabel::TcbRestart,
        ),
        (
            "CNodeCopy on its reply capability",
            REPLY_SLOT,
            InvocationLabel::CNodeCopy,
        ),
        (
            "CNodeCopy on its notification capability",
            bell,
            InvocationLabel::CNodeCopy,
        ),
        (
            "IrqAck on its console capability",
            console,
            InvocationLabel::IrqAck,
        ),
        (
            "DebugInputRead on its console capability",
            console,
            InvocationLabel::DebugInputRead,
        ),
        (
            "VSpaceMap on its CNode",
            CNODE_SLOT,
            InvocationLabel::VSpaceMap,
        ),
        (
            "FrameCarve on its CNode",
            CNODE_SLOT,
            InvocationLabel::FrameCarve,
        ),
        (
            "FrameGetAddress on its CNode",
            CNODE_SLOT,
            InvocationLabel::FrameGetAddress,
        ),
        (
            "VcpuInjectIrq on its CNode",
            CNODE_SLOT,
            InvocationLabel::VcpuInjectIrq,
        ),
    ];
    for (what, cptr, op) in invocations {
        tally.check(what, invoke(cptr, label(op), [0; 4]), illegal(label(op)));
    }
    tally.check(
        "operation 999 on its CNode",
        invoke(CNODE_SLOT, 999, [0; 4]),
        illegal(999),
    );

    // Rights it does not have.
    tally.check(
        "Recv through its send-only endpoint capability",
        through(Syscall::Recv, judge, 0, REPLY_SLOT),
        rights(judge),
    );
    tally.check(
        "Wait on its signal-only notification capability",
        through(Syscall::Wait, bell, 0, 0),
        rights(bell),
    );
    tally.check(
        "Poll on its signal-only notification capability",
        through(Syscall::Poll, bell, 0, 0),
        rights(bell),
    );
    tally.check(
        "Signal through its notification capability",
        through(Syscall::Signal, bell, 0, 0),
        None,
    );

    derivations(&mut tally, judge, bell);
    tally
}

/// Copies and mints asking for more than it holds, and what the copies can do.
fn derivations(tally: &mut Tally, judge: CPtr, bell: CPtr) {
    let (copy, mint, delete) = (
        InvocationLabel::CNodeCopy as u64,
        InvocationLabel::CNodeMint as u64,
        InvocationLabel::CNodeDelete as u64,
    );
    let every_right = u64::MAX;
    tally.check(
        "CNodeCopy of its endpoint capability asking for every right",
        invoke(CNODE_SLOT, copy, [judge, COPY_EP, every_right, 0]),
        None,
    );
    tally.check(
        "Recv through that copy",
        through(Syscall::Recv, COPY_EP, 0, REPLY_SLOT),
        rights(COPY_EP),
    );
    tally.check(
        "ReplyRecv through that copy",
        through(Syscall::ReplyRecv, COPY_EP, 0, REPLY_SLOT),
        rights(COPY_EP),
    );
    tally.check(
        "CNodeCopy of its notification capability asking for every right",
        invoke(CNODE_SLOT, copy, [bell, COPY_BELL, every_right, 0]),
        None,
    );
    tally.check(
        "Wait through that copy",
        through(Syscall::Wait, COPY_BELL, 0, 0),
        rights(COPY_BELL),
    );
    for badge in [0xBAD, 0] {
        tally.check(
            if badge == 0 {
                "CNodeMint of its endpoint capability with badge 0"
            } else {
                "CNodeMint of its endpoint capability with badge 0xbad"
            },
            invoke(CNODE_SLOT, mint, [judge, SPARE, every_right, badge]),
            argument(3),
        );
    }
    tally.check(
        "CNodeMint of its notification capability with badge 0xbad",
        invoke(CNODE_SLOT, mint, [bell, SPARE, every_right, 0xBAD]),
        argument(3),
    );
    tally.check(
        "CNodeMint of its endpoint capability with its own badge",
        invoke(CNODE_SLOT, mint, [judge, SPARE, every_right, CONFINE_BADGE]),
        None,
    );
    tally.check(
        "CNodeDelete of that mint",
        invoke(CNODE_SLOT, delete, [SPARE, 0, 0, 0]),
        None,
    );
    let refusals = [
        (
            "CNodeCopy into an occupied slot",
            [judge, COPY_EP],
            Some(KernelError::DeleteFirst { slot: COPY_EP }),
        ),
        ("CNodeCopy from an empty slot", [12, SPARE], invalid(12)),
        (
            "CNodeCopy from slot u64::MAX",
            [u64::MAX, SPARE],
            invalid(u64::MAX),
        ),
        (
            "CNodeCopy into the slot past its CNode",
            [judge, CNODE_SLOTS],
            invalid(CNODE_SLOTS),
        ),
        (
            "CNodeCopy into slot u64::MAX",
            [judge, u64::MAX],
            invalid(u64::MAX),
        ),
        (
            "CNodeCopy of its reply capability",
            [REPLY_SLOT, SPARE],
            argument(0),
        ),
    ];
    for (what, [from, to], expected) in refusals {
        tally.check(
            what,
            invoke(CNODE_SLOT, copy, [from, to, every_right, 0]),
            expected,
        );
    }
    tally.check(
        "CNodeMint of its CNode capability with a badge",
        invoke(CNODE_SLOT, mint, [CNODE_SLOT, SPARE, every_right, 1]),
        argument(0),
    );
    tally.check(
        "CNodeDelete of its own reply capability",
        invoke(CNODE_SLOT, delete, [REPLY_SLOT, 0, 0, 0]),
        argument(0),
    );
    // A capability offered without GRANT, through the original and through the copy: the
    // judge answers how many capabilities arrived, whether its receive slot holds one, and the
    // badge it saw.
    for (what, cptr) in [("its endpoint capability", judge), ("the copy", COPY_EP)] {
        ipc_buffer::write(IPC_BUFFER_SEND_CAP, bell);
        let (info, mr) = syscall::call(cptr, MessageInfo::new(PROBE, 1, 0), [0; 4]);
        let ok = !info.is_error() && mr == [0, 0, CONFINE_BADGE, 0];
        tally.total += 1;
        tally.passed += u64::from(ok);
        println!(
            "confine: its notification capability offered through {what} without GRANT: the \
             judge got {} capabilities, its slot holds one: {}, badge {}{}",
            mr[0],
            mr[1] != 0,
            mr[2],
            if ok { "" } else { " FAILED" }
        );
    }
}

/// Reads `address` and returns the value: it must fault instead.
fn forbidden_read(address: u64) -> u64 {
    let value: u64;
    // SAFETY: none claimed: this load is meant to fault (the address is not in this server's
    // VSpace), and the kernel then sends the supervisor a data abort and the supervisor
    // restarts the server. Should it return, the value is only printed and reported. Written
    // as asm so the compiler assumes nothing about the address.
    unsafe {
        core::arch::asm!("ldr {value}, [{address}]", address = in(reg) address,
            value = out(reg) value, options(nostack, readonly));
    }
    value
}

/// `confine`: asks the judge what this life does, and does it.
pub fn confine() -> ! {
    let judge = userlib::cap("confine-judge");
    let (mut info, mut mr) = syscall::call(judge, MessageInfo::new(HELLO, 0, 0), [0; 4]);
    loop {
        if info.is_error() {
            println!(
                "confine: the judge answered {} FAILED",
                Shown(error_of((0, info, mr)))
            );
            break;
        }
        (info, mr) = match info.label() {
            DO_CHECKS => {
                let tally = checks();
                println!(
                    "confine: {} of {} answers as expected",
                    tally.passed, tally.total
                );
                let words = [tally.passed, tally.total, 0, 0];
                syscall::call(judge, MessageInfo::new(VERDICT, 0, 2), words)
            }
            DO_READ => {
                let (index, address) = (mr[0], mr[1]);
                let what = READS.get(index as usize).map_or("?", |read| read.0);
                println!("confine: reading {what} at {address:#x}");
                let value = forbidden_read(address);
                println!("confine: read of {what} at {address:#x} succeeded: {value:#x}");
                let words = [index, value, 0, 0];
                syscall::call(judge, MessageInfo::new(READ_SUCCEEDED, 0, 2), words)
            }
            _ => break,
        };
    }
    loop {
        syscall::yield_now();
    }
}

/// The judge's count, which outlives `confine`'s restarts.
struct Judge {
    secret_pa: u64,
    checks_handed_out: bool,
    verdict: Option<(u64, u64)>,
    next_read: usize,
    /// The read handed out last, until confine comes back (it faulted) or reports it.
    outstanding: Option<usize>,
    faulted: u64,
    succeeded: u64,
    signalled: u64,
}

/// What the judge answers: a reply, or the end of the system with a status.
enum Answered {
    Reply(u64, [u64; 4]),
    Finish(u64),
}

impl Judge {
    fn address(&self, index: usize) -> u64 {
        READS[index].1.unwrap_or(self.secret_pa)
    }

    /// The next step of `confine`: the checks once, then each read, then done.
    fn next(&mut self) -> Answered {
        if !self.checks_handed_out {
            self.checks_handed_out = true;
            return Answered::Reply(DO_CHECKS, [0; 4]);
        }
        if self.verdict.is_none() {
            println!("judge: confine came back before reporting its checks FAILED");
            return Answered::Finish(1);
        }
        if self.next_read < READS.len() {
            let index = self.next_read;
            self.next_read += 1;
            self.outstanding = Some(index);
            let address = self.address(index);
            println!(
                "judge: read {} of {}: {} at {address:#x}",
                index + 1,
                READS.len(),
                READS[index].0
            );
            return Answered::Reply(DO_READ, [index as u64, address, 0, 0]);
        }
        self.finish()
    }

    fn handle(&mut self, badge: u64, info: MessageInfo, mr: [u64; 4]) -> Answered {
        if badge != CONFINE_BADGE {
            println!("judge: a message with badge {badge} FAILED");
        }
        match info.label() {
            HELLO => {
                if let Some(index) = self.outstanding.take() {
                    self.faulted += 1;
                    println!(
                        "judge: confine started again after reading {}: the read faulted",
                        READS[index].0
                    );
                }
                self.next()
            }
            VERDICT => {
                self.verdict = Some((mr[0], mr[1]));
                let (word, _) = syscall::poll(userlib::cap("confine-bell"));
                self.signalled = word;
                self.next()
            }
            PROBE => {
                let caps = info.extra_caps() as u64;
                // The receive slot holds something if a Poll on it is not InvalidCapability.
                let (_, answer) = syscall::poll(PROBE_SLOT);
                let holds = !(answer.is_error()
                    && answer.label() == KernelError::InvalidCapability { slot: 0 }.code());
                if holds {
                    let delete = InvocationLabel::CNodeDelete;
                    syscall::invoke(CNODE_SLOT, delete, [PROBE_SLOT, 0, 0, 0]);
                }
                Answered::Reply(0, [caps, u64::from(holds), badge, 0])
            }
            READ_SUCCEEDED => {
                self.outstanding = None;
                self.succeeded += 1;
                let index = mr[0] as usize;
                let what = READS.get(index).map_or("?", |read| read.0);
                println!("judge: confine read {what}: value {:#x} FAILED", mr[1]);
                self.next()
            }
            other => {
                println!("judge: unknown request {other} FAILED");
                Answered::Finish(1)
            }
        }
    }

    fn finish(&self) -> Answered {
        let (passed, total) = self.verdict.unwrap_or((0, 0));
        let intact = (0..512u64).all(|i| secret_word(i) == SECRET ^ i);
        println!("judge: confine's checks: {passed} of {total} answers as expected");
        println!(
            "judge: confine's signal arrived with word {:#x}; its {} forbidden reads: {} \
             faulted, {} returned",
            self.signalled,
            READS.len(),
            self.faulted,
            self.succeeded
        );
        println!("judge: its secret page still holds its pattern: {intact}");
        let passed = total > 0
            && passed == total
            && self.signalled == 1
            && self.faulted == READS.len() as u64
            && self.succeeded == 0
            && intact;
        Answered::Finish(if passed { 0 } else { 1 })
    }
}

/// The pattern the judge keeps in its secret page.
const SECRET: u64 = 0x5EC2_E7C0_FFEE_0000;

fn secret_word(index: u64) -> u64 {
    // SAFETY: the manifest maps the judge's secret page (one 4 KiB RAM region) read-write at
    // SECRET_VA into the judge only; `index` is below 512, so the word is inside it.
    unsafe { ((SECRET_VA + 8 * index) as *const u64).read_volatile() }
}

fn write_secret(index: u64, value: u64) {
    // SAFETY: as in `secret_word`.
    unsafe { ((SECRET_VA + 8 * index) as *mut u64).write_volatile(value) }
}

/// `confine-judge`: keeps the count across `confine`'s lives and ends the system.
pub fn judge() -> ! {
    let endpoint = userlib::cap("confine-judge");
    let frames = userlib::cap("frames:judge-secret");
    let (info, mr) = syscall::invoke(frames, InvocationLabel::FrameGetAddress, [0; 4]);
    if info.is_error() {
        println!("judge: FrameGetAddress refused FAILED");
        userlib::system_off(1);
    }
    for i in 0..512 {
        write_secret(i, SECRET ^ i);
    }
    println!(
        "judge: its secret page is at physical {:#x}, mapped at {SECRET_VA:#x} into the judge only",
        mr[0]
    );
    let mut judge = Judge {
        secret_pa: mr[0],
        checks_handed_out: false,
        verdict: None,
        next_read: 0,
        outstanding: None,
        faulted: 0,
        succeeded: 0,
        signalled: 0,
    };
    ipc_buffer::write(IPC_BUFFER_RECEIVE_SLOT, PROBE_SLOT);
    let (mut badge, mut info, mut mr) = syscall::recv(endpoint, REPLY_SLOT);
    loop {
        match judge.handle(badge, info, mr) {
            Answered::Reply(label, words) => {
                // Printing stages text in the IPC buffer: name the receive slot again.
                ipc_buffer::write(IPC_BUFFER_RECEIVE_SLOT, PROBE_SLOT);
                let reply = MessageInfo::new(label, 0, 4);
                (badge, info, mr) = syscall::reply_recv(endpoint, REPLY_SLOT, reply, words);
            }
            Answered::Finish(status) => userlib::system_off(status),
        }
    }
}
