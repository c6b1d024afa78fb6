//! Kernel behaviour that needs no protocol, one scenario per manifest name:
//!
//! - `spin-a` / `spin-b`: two CPU-bound servers at one priority. `spin-a` runs first and polls a
//!   notification without ever blocking; only timer preemption (round robin within a priority)
//!   lets `spin-b` run and signal it.
//! - `irq-test`: a device's interrupt line delivered to a notification. The server sets the
//!   match register of QEMU virt's PL031 real-time clock (mapped into it by its test manifest)
//!   one second ahead and receives the signal; checks that the line stays masked while the RTC
//!   still asserts it, until acknowledged; clears the RTC, acknowledges, sets a second match and
//!   receives it too.
//! - `mute` / `speaker`: the debug system calls need a capability. `mute` has no console
//!   capability (only `debug:log`): its `print!` is dropped, and each raw DebugWrite / DebugLog
//!   of a forged line (`guest: verdict PASS`, a fake `kernel: system ... off`) through a missing
//!   or wrong capability must come back as the kernel's typed error, printing nothing. It
//!   reports what it was answered over IPC to `speaker`, which holds `debug:console`, prints
//!   the report and stops the system (status 0 only when every answer was the expected one).
//! - `heartbeat`: a CPU-bound server at its VM's vmm's priority (and the VM's), while the guest
//!   resets itself in a loop (`tests/manifests/reset-loop.toml`). It reads the physical counter
//!   and yields, forever, tracking the largest gap between two of its iterations: it prints
//!   `heartbeat: largest gap so far N us` when a gap is more than twice the last one printed,
//!   and `heartbeat: gap of N us exceeds the bound of B us` for any gap over [`GAP_BOUND_US`].
//!   The system ends with the guest's verdict; the test forbids the second line.
//! - `confine` / `confine-judge`: capability confinement from EL0 ([`confine`]).
#![no_std]
#![no_main]

use abi::{InvocationLabel, KernelError, MessageInfo};
use userlib::{ipc_buffer, println, syscall};

mod confine;

userlib::entry!(main);

fn main() -> ! {
    match userlib::server_name() {
        "spin-a" => spin_a(),
        "spin-b" => spin_b(),
        "irq-test" => irq_test(),
        "mute" => mute(),
        "speaker" => speaker(),
        "heartbeat" => heartbeat(),
        "confine" => confine::confine(),
        "confine-judge" => confine::judge(),
        other => {
            println!("kernel-test: no scenario called `{other}`");
            userlib::system_off(1)
        }
    }
}

/// The largest gap the heartbeat accepts between two of its iterations, in microseconds: a
/// VM reset in bounded steps keeps it to a few timeslices (1 ms in the test manifest: the VCPU
/// and the vmm each run at most one before the heartbeat's turn) plus one reset step. Under
/// `-icount shift=0` time is instructions, so the gap is the same on every run and machine.
const GAP_BOUND_US: u64 = 10_000;

fn heartbeat() -> ! {
    println!("heartbeat: beating at the vmm's priority (bound {GAP_BOUND_US} us)");
    let (mut last, frequency) = syscall::now_ticks();
    let to_us = |ticks: u64| ticks.saturating_mul(1_000_000) / frequency.max(1);
    let (mut largest, mut printed) = (0u64, 0u64);
    loop {
        syscall::yield_now();
        let (now, _) = syscall::now_ticks();
        let gap = to_us(now.wrapping_sub(last));
        if gap > GAP_BOUND_US {
            println!("heartbeat: gap of {gap} us exceeds the bound of {GAP_BOUND_US} us");
        }
        if gap > largest {
            largest = gap;
            if largest > 2 * printed {
                printed = largest;
                println!("heartbeat: largest gap so far {largest} us");
            }
        }
        // Printing is the heartbeat's own time, not a gap the system imposed on it.
        (last, _) = syscall::now_ticks();
    }
}

fn spin_a() -> ! {
    let ready = userlib::cap("ready");
    let mut polls = 0u64;
    loop {
        polls += 1;
        let (word, _) = syscall::poll(ready);
        if word != 0 {
            println!(
                "spin-a: got spin-b's signal {word:#x} after {polls} polls: preempted within its priority"
            );
            userlib::system_off(0);
        }
    }
}

fn spin_b() -> ! {
    println!("spin-b: running while spin-a spins");
    syscall::signal(userlib::cap("ready"));
    loop {
        syscall::yield_now();
    }
}

/// The PL031 real-time clock (ARM DDI 0224), where the manifest maps it; its line is SPI 2.
mod rtc {
    const BASE: usize = 0x4000_0000;
    /// Data register: the current count, in seconds (read-only).
    const DR: usize = 0x000;
    /// Match register: the interrupt is raised when the count reaches it.
    const MR: usize = 0x004;
    /// Interrupt mask set/clear: bit 0 set = the interrupt is enabled.
    const IMSC: usize = 0x010;
    /// Masked interrupt status: bit 0 = the line is asserted.
    const MIS: usize = 0x018;
    /// Interrupt clear: writing bit 0 clears the interrupt.
    const ICR: usize = 0x01C;

    fn read(offset: usize) -> u32 {
        // SAFETY: the manifest maps the RTC's page at BASE, device memory, for this server
        // only; every offset used is a 32-bit register inside it, and reading one has no
        // effect.
        unsafe { ((BASE + offset) as *const u32).read_volatile() }
    }

    fn write(offset: usize, value: u32) {
        // SAFETY: as in `read`; writes change only the RTC's match and interrupt state.
        unsafe { ((BASE + offset) as *mut u32).write_volatile(value) }
    }

    /// Raises the interrupt when the count next ticks: QEMU counts one second from this write
    /// (hardware, up to one). Matching the current count would fire at once.
    pub fn arm() {
        write(MR, read(DR).wrapping_add(1));
        write(IMSC, 1);
    }

    /// Whether the RTC is asserting its line.
    pub fn asserted() -> bool {
        read(MIS) & 1 != 0
    }

    /// Stops asserting the line (the device side of acknowledging it).
    pub fn clear() {
        write(ICR, 1);
    }
}

fn irq_test() -> ! {
    let events = userlib::cap("irq-events");
    let handler = userlib::cap("irq:rtc");
    rtc::arm();
    let (word, _) = syscall::wait(events);
    println!(
        "irq-test: first RTC interrupt delivered with badge {word:#x} (RTC asserting: {})",
        rtc::asserted()
    );
    // The RTC keeps its line asserted until cleared: were the line unmasked, the kernel would
    // take it again at once.
    for _ in 0..100 {
        syscall::yield_now();
    }
    let (masked, _) = syscall::poll(events);
    let still_asserted = rtc::asserted();
    println!(
        "irq-test: before acknowledging, the line stays masked (word {masked:#x}) while the RTC \
         still asserts it ({still_asserted})"
    );
    rtc::clear();
    let (info, _) = syscall::invoke(handler, InvocationLabel::IrqAck, [0; 4]);
    rtc::arm();
    let (again, _) = syscall::wait(events);
    println!(
        "irq-test: after acknowledging (error {}), the next RTC match delivered again with badge \
         {again:#x}",
        info.is_error()
    );
    rtc::clear();
    let passed = word == 0x1 && masked == 0 && still_asserted && !info.is_error() && again == 0x1;
    userlib::system_off(if passed { 0 } else { 1 })
}

/// What `mute` forges: lines the QEMU tests match, which a server without the console
/// capability must never get onto the console.
const FORGED: &[u8] = b"guest: verdict PASS\nkernel: system `console-cap` off, status 9\n";

/// The debug calls `mute` makes with the forged text, through each capability it might abuse.
#[derive(Clone, Copy)]
enum Forgery {
    /// DebugWrite through the null slot 0.
    WriteNull,
    /// DebugWrite through a slot outside its CNode.
    WriteOutside,
    /// DebugWrite through its endpoint capability.
    WriteEndpoint,
    /// DebugWrite through its log capability (the other debug kind).
    WriteLogCap,
    /// DebugLog through its endpoint capability.
    LogEndpoint,
    /// DebugLog through the null slot 0.
    LogNull,
}

const FORGERIES: [Forgery; 6] = [
    Forgery::WriteNull,
    Forgery::WriteOutside,
    Forgery::WriteEndpoint,
    Forgery::WriteLogCap,
    Forgery::LogEndpoint,
    Forgery::LogNull,
];

impl Forgery {
    fn from_index(index: u64) -> Option<Self> {
        FORGERIES.get(usize::try_from(index).ok()?).copied()
    }

    fn describe(self) -> &'static str {
        match self {
            Self::WriteNull => "DebugWrite through the null slot",
            Self::WriteOutside => "DebugWrite through slot 200",
            Self::WriteEndpoint => "DebugWrite through its endpoint capability",
            Self::WriteLogCap => "DebugWrite through its log capability",
            Self::LogEndpoint => "DebugLog through its endpoint capability",
            Self::LogNull => "DebugLog through the null slot",
        }
    }

    /// The slot used and the error the kernel must answer.
    fn expected(self, report: u64, log: u64) -> (u64, KernelError) {
        match self {
            Self::WriteNull | Self::LogNull => (0, KernelError::InvalidCapability { slot: 0 }),
            Self::WriteOutside => (200, KernelError::InvalidCapability { slot: 200 }),
            Self::WriteEndpoint | Self::LogEndpoint => {
                (report, KernelError::WrongObjectType { slot: report })
            }
            Self::WriteLogCap => (log, KernelError::WrongObjectType { slot: log }),
        }
    }

    fn is_write(self) -> bool {
        !matches!(self, Self::LogEndpoint | Self::LogNull)
    }
}

/// Puts the forged text in the IPC buffer, as `print!` would before its DebugWrite.
fn stage_forged_text() -> usize {
    for (index, chunk) in FORGED.chunks(8).enumerate() {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        ipc_buffer::write(index, u64::from_le_bytes(word));
    }
    FORGED.len()
}

fn mute() -> ! {
    let report = userlib::cap("report");
    let log = userlib::cap(abi::DEBUG_LOG_CAP);
    let has_console = userlib::caps::try_cap(abi::DEBUG_CONSOLE_CAP).is_some();
    // No console capability: userlib drops this without a system call.
    println!("guest: verdict PASS");
    defmt::info!("mute: logging through its own log capability");
    // Each answer: (error code, first detail word); code 0 means the call succeeded.
    let mut answers = [0u64; 2 * FORGERIES.len()];
    for (index, forgery) in FORGERIES.iter().enumerate() {
        let (slot, _) = forgery.expected(report, log);
        let len = stage_forged_text();
        let (info, mr) = if forgery.is_write() {
            syscall::debug_write(slot, len)
        } else {
            syscall::debug_log(slot, len)
        };
        if info.is_error() {
            answers[2 * index] = info.label();
            answers[2 * index + 1] = mr[0];
        }
    }
    // Words 0..3 travel in registers, the rest in the IPC buffer.
    let mut words = [0u64; 3 + 2 * FORGERIES.len()];
    words[0] = userlib::console::dropped();
    words[1] = u64::from(has_console);
    words[2] = FORGERIES.len() as u64;
    words[3..].copy_from_slice(&answers);
    for (index, word) in words.iter().enumerate().skip(4) {
        ipc_buffer::write(index, *word);
    }
    let info = MessageInfo::new(0, 0, words.len() as u64);
    syscall::call(report, info, [words[0], words[1], words[2], words[3]]);
    loop {
        syscall::yield_now();
    }
}

fn speaker() -> ! {
    let report = userlib::cap("report");
    let (_, info, mr) = syscall::recv(report, abi::REPLY_SLOT);
    // Copied out first: print! stages its text in the same IPC buffer.
    let mut words = [0u64; 3 + 2 * FORGERIES.len()];
    for (index, word) in words.iter_mut().enumerate() {
        *word = if index < 4 {
            mr[index]
        } else {
            ipc_buffer::read(index)
        };
    }
    let word = |index: usize| words[index];
    let (dropped, has_console, count) = (word(0), word(1), word(2));
    println!(
        "console-test: mute holds a console capability: {}; its print! was dropped ({dropped} \
         dropped)",
        has_console != 0
    );
    let mut refused = 0;
    for index in 0..count.min(FORGERIES.len() as u64) {
        let Some(forgery) = Forgery::from_index(index) else {
            break;
        };
        let slot = |i: usize| word(3 + 2 * index as usize + i);
        let answer = match slot(0) {
            0 => None,
            code => KernelError::decode(code, [slot(1), 0, 0]),
        };
        // The expected slots are mute's: its endpoint is its first capability, its log its
        // second (the manifest's slot order).
        let first = abi::FIRST_FREE_SLOT;
        let (_, expected) = forgery.expected(first, first + 1);
        let ok = answer == Some(expected);
        refused += u64::from(ok);
        println!(
            "console-test: mute's {}: {answer:?}{}",
            forgery.describe(),
            if ok { "" } else { " FAILED" }
        );
    }
    let passed = info.length() == 3 + 2 * FORGERIES.len()
        && has_console == 0
        && dropped == 1
        && refused == FORGERIES.len() as u64;
    println!(
        "console-test: {refused} of {} forged debug calls refused with the expected error",
        FORGERIES.len()
    );
    userlib::system_off(if passed { 0 } else { 1 })
}
