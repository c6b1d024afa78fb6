//! Running a boot image in QEMU: the command line, the console, the timeout.
//!
//! The system ends itself through semihosting `SYS_EXIT_EXTENDED`, so QEMU's exit status is
//! the system's verdict. Two ways to run:
//!
//! - **captured** (tests, benchmarks, `run` with a timeout or without a terminal): QEMU gets
//!   no stdin and runs in its own process group; its stdout and stderr are read by two threads
//!   into one console buffer (and echoed live when asked). On timeout, on Ctrl-C / SIGTERM /
//!   SIGHUP to xtask, or when xtask unwinds, the whole group is killed: QEMU never outlives us.
//! - **interactive** (`run` from a terminal without `--timeout`): QEMU inherits the terminal,
//!   so the console takes input; quit with Ctrl-A X.
//!
//! QEMU's working directory is the image directory, where the kernel's semihosting file
//! `defmt.log` lands.

use std::ffi::OsString;
use std::io::{IsTerminal, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::build::Image;
use crate::install::QEMU;

/// How to run an image.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `-icount shift=0,sleep=off -seed 1`: one instruction per virtual nanosecond, repeatable.
    pub icount: bool,
    /// `-d int,guest_errors -D <image dir>/qemu.log`.
    pub debug_int: bool,
    /// `-s -S`: gdb server on tcp::1234, CPU halted until gdb continues it.
    pub gdb: bool,
    /// Kill QEMU after this long.
    pub timeout: Option<Duration>,
    /// Copy the console to our stdout/stderr while it runs (else only capture it).
    pub echo: bool,
    /// More QEMU arguments, appended after all the others (e.g. `-d in_asm,exec -D <file>`
    /// for `cargo xtask bench --trace`); empty by default.
    pub extra_args: Vec<String>,
    /// A raw disk image given to the hypervisor as a virtio-blk device on a virtio-mmio
    /// transport (the first `-device` takes transport 31, hw/arm/virt.c); none by default.
    pub disk: Option<PathBuf>,
    /// Console input for a captured run: QEMU's stdin (the serial port) gets each entry's
    /// text once its `after` text has appeared in the console.
    pub input: Vec<Input>,
}

/// One piece of typed console input (a test's `input = [{ after, text }]`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Typed once this text has appeared (after the previous entry's).
    pub after: String,
    /// What is typed (`\n` is Enter).
    pub text: String,
}

/// Types the pending `input` entries whose `after` text `console` now holds; `from` is where
/// the search for the next one starts, `next` the entry it waits for.
fn type_input(
    input: &[Input],
    console: &[u8],
    next: &mut usize,
    from: &mut usize,
    stdin: &mut impl Write,
) -> std::io::Result<()> {
    while let Some(entry) = input.get(*next) {
        let rest = console.get(*from..).unwrap_or_default();
        let Some(at) = find(rest, entry.after.as_bytes()) else {
            return Ok(());
        };
        *from += at + entry.after.len();
        stdin.write_all(entry.text.as_bytes())?;
        stdin.flush()?;
        *next += 1;
    }
    Ok(())
}

/// The first position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// QEMU exited by itself with this status (128 + signal when a signal ended it).
    Exited(i32),
    /// QEMU was killed after the timeout.
    TimedOut(Duration),
}

/// The result of one run.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// How QEMU ended.
    pub status: Status,
    /// stdout and stderr interleaved as they arrived, carriage returns removed (empty in
    /// interactive runs).
    pub console: String,
}

/// The QEMU command line for `image` (without stdio or process-group settings).
pub fn command(image: &Image, options: &Options) -> Command {
    let mut qemu = Command::new(QEMU);
    qemu.args(["-M", "virt,virtualization=on,gic-version=3"])
        .args(["-cpu", "cortex-a72", "-m", "1G", "-smp", "1"])
        // No default devices: the virt machine's default NIC needs a ROM (`efi-virtio.rom`) from
        // `ipxe-qemu`, which a `--no-install-recommends` install leaves out. The console is the
        // PL011 on stdio, multiplexed with the monitor (Ctrl-A X quits, Ctrl-A C the monitor).
        .args([
            "-nodefaults",
            "-display",
            "none",
            "-serial",
            "mon:stdio",
            "-no-reboot",
        ])
        .args(["-semihosting-config", "enable=on,target=native"])
        .arg("-kernel")
        .arg(&image.elf);
    if options.icount {
        qemu.args(["-icount", "shift=0,sleep=off", "-seed", "1"]);
    }
    if options.debug_int {
        qemu.args(["-d", "int,guest_errors", "-D"])
            .arg(image.dir.join("qemu.log"));
    }
    if options.gdb {
        qemu.args(["-s", "-S"]);
    }
    if let Some(disk) = &options.disk {
        qemu.args(disk_args(disk));
    }
    qemu.args(&options.extra_args);
    qemu.current_dir(&image.dir);
    qemu
}

/// `-drive` and `-device` for a raw disk image on virtio-blk (`-nodefaults` adds no other
/// drive). In QEMU's option syntax a comma separates keys, so one in the path is doubled.
pub fn disk_args(disk: &Path) -> [OsString; 4] {
    let mut drive = OsString::from("if=none,format=raw,id=disk0,file=");
    drive.push(disk.to_string_lossy().replace(',', ",,"));
    [
        "-drive".into(),
        drive,
        "-device".into(),
        "virtio-blk-device,drive=disk0".into(),
    ]
}

/// Runs `image` and waits for QEMU to end (or the timeout).
pub fn run(image: &Image, options: &Options) -> anyhow::Result<Outcome> {
    // A stale log from an earlier run must not be decoded as this run's.
    let _ = std::fs::remove_file(image.dir.join(crate::defmt_log::FILE));
    if options.gdb {
        eprintln!(
            "xtask: QEMU waits for gdb: gdb {} -ex 'target remote :1234'",
            image.elf.display()
        );
    }
    let mut qemu = command(image, options);
    let interactive = options.echo && options.timeout.is_none() && std::io::stdin().is_terminal();
    if interactive {
        eprintln!(
            "xtask: running {} (quit with Ctrl-A X)",
            image.elf.display()
        );
        let status = qemu
            .status()
            .with_context(|| format!("starting {QEMU} for {}", image.elf.display()))?;
        return Ok(Outcome {
            status: Status::Exited(exit_code(status)),
            console: String::new(),
        });
    }
    eprintln!("xtask: running {}", image.elf.display());
    run_captured(qemu, options)
}

fn run_captured(mut qemu: Command, options: &Options) -> anyhow::Result<Outcome> {
    let interrupted = interrupt_flag()?;
    let typing = !options.input.is_empty();
    qemu.stdin(if typing {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let child = qemu.spawn().with_context(|| format!("starting {QEMU}"))?;
    let mut group = Group {
        child,
        reaped: false,
    };
    let console = Arc::new(Mutex::new(Vec::new()));
    let readers = [
        group
            .child
            .stdout
            .take()
            .map(|out| copy_console(out, console.clone(), options.echo, false)),
        group
            .child
            .stderr
            .take()
            .map(|err| copy_console(err, console.clone(), options.echo, true)),
    ];

    let mut stdin = group.child.stdin.take();
    let (mut next_input, mut searched_from) = (0, 0);
    let started = Instant::now();
    let status = loop {
        if let Some(stdin) = stdin.as_mut() {
            let seen = console
                .lock()
                .map(|bytes| bytes.clone())
                .unwrap_or_default();
            type_input(
                &options.input,
                &seen,
                &mut next_input,
                &mut searched_from,
                stdin,
            )
            .context("typing console input into QEMU")?;
        }
        if let Some(status) = group.child.try_wait().context("waiting for QEMU")? {
            group.reaped = true;
            break Status::Exited(exit_code(status));
        }
        if interrupted.load(Ordering::Relaxed) {
            group.kill();
            eprintln!("xtask: interrupted; QEMU killed");
            std::process::exit(130);
        }
        if let Some(timeout) = options.timeout
            && started.elapsed() >= timeout
        {
            group.kill();
            break Status::TimedOut(timeout);
        }
        thread::sleep(Duration::from_millis(20));
    };
    for reader in readers.into_iter().flatten() {
        let _ = reader.join();
    }
    let bytes = console
        .lock()
        .map(|bytes| bytes.clone())
        .unwrap_or_default();
    let console = String::from_utf8_lossy(&bytes).replace('\r', "");
    Ok(Outcome { status, console })
}

/// QEMU's process group, killed when dropped unless QEMU was already reaped.
struct Group {
    child: Child,
    reaped: bool,
}

impl Group {
    fn kill(&mut self) {
        // The group id is QEMU's pid (process_group(0)); kill(1) is the safe way to signal a
        // group without libc.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.reaped = true;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill();
        }
    }
}

/// Copies one of QEMU's output pipes into the console buffer, echoing it when asked.
fn copy_console(
    mut pipe: impl Read + Send + 'static,
    console: Arc<Mutex<Vec<u8>>>,
    echo: bool,
    is_stderr: bool,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        loop {
            let count = match pipe.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(count) => count,
            };
            let chunk = &buffer[..count];
            if let Ok(mut console) = console.lock() {
                console.extend_from_slice(chunk);
            }
            if echo {
                // A closed stdout (e.g. `| head`) must not stop the capture.
                let _ = if is_stderr {
                    let mut out = std::io::stderr().lock();
                    out.write_all(chunk).and_then(|()| out.flush())
                } else {
                    let mut out = std::io::stdout().lock();
                    out.write_all(chunk).and_then(|()| out.flush())
                };
            }
        }
    })
}

/// Set by SIGINT, SIGTERM or SIGHUP once the first captured run installed the handlers.
static INTERRUPTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// The interrupt flag, installing the signal handlers on first use.
///
/// From then on these signals no longer end xtask by themselves: the wait loop kills QEMU's
/// group and exits 130, and callers between runs check [`exit_if_interrupted`].
fn interrupt_flag() -> anyhow::Result<Arc<AtomicBool>> {
    if let Some(flag) = INTERRUPTED.get() {
        return Ok(flag.clone());
    }
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(signal, flag.clone())
            .context("installing the interrupt handler")?;
    }
    Ok(INTERRUPTED.get_or_init(|| flag).clone())
}

/// Exits with status 130 when Ctrl-C (or SIGTERM/SIGHUP) arrived since the handlers went in.
pub fn exit_if_interrupted() {
    if INTERRUPTED
        .get()
        .is_some_and(|flag| flag.load(Ordering::Relaxed))
    {
        eprintln!("xtask: interrupted");
        std::process::exit(130);
    }
}

/// A process's exit status as a shell would report it.
fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(1)
}

/// Describes `status` for a test report.
pub fn describe(status: Status) -> String {
    match status {
        Status::Exited(code) => format!("exit status {code}"),
        Status::TimedOut(after) => format!("timeout after {} s", after.as_secs()),
    }
}

pub mod probe;
#[cfg(test)]
mod tests;
