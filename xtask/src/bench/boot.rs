//! `cargo xtask bench boot`: how far from reset Linux is when its init starts, under the
//! hypervisor and on bare QEMU, in instructions.
//!
//! Under `-icount shift=0,sleep=off` virtual time is instructions (one per nanosecond; idle
//! time, skipped at once, counts as the time skipped), and the arch counter runs at 62.5 MHz, 16
//! ns a tick (read from Linux's arch_timer banner, not assumed). The first thing the init script does (tests/linux/init) is read the virtual counter
//! (CNTVCT_EL0) and print `linux-init: started at virtual counter <C>`. Linux's printk
//! timestamps would not do: they count from when Linux registered its sched_clock (time_init),
//! well after reset.
//!
//! - On bare QEMU (`-M virt,gic-version=3 -cpu cortex-a72 -m 256M -nodefaults`, QEMU's own
//!   device tree, no EL2, the RTC at a fixed date) the virtual counter is the physical one,
//!   which starts at QEMU's reset: the boot took `16 C` instructions.
//! - Under the hypervisor each VM's virtual counter starts at 0 when the kernel creates the VM
//!   (CNTVOFF_EL2 is the physical count then), and the kernel prints ``kernel: vm `<name>`:
//!   virtual counter starts at physical tick <N>``: the boot took `16 (N + C)` instructions,
//!   the hypervisor's own boot included.
//!
//! The bare run takes the Linux VM's kernel and initramfs from the manifest and the command line
//! from what the kernel printed under the hypervisor (`Kernel command line:`), and both consoles
//! must agree on the kernel, its command line, its RAM and its counter frequency (see
//! [`SAME_IN_BOTH`]): a figure from two different boots is refused, not printed.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use manifest::Manifest;

use crate::Workspace;
use crate::install::QEMU;
use crate::qemu::{self, Status};

/// The init script's first line (tests/linux/init), before the counter value.
const INIT_STARTED: &str = "linux-init: started at virtual counter ";

/// The kernel's line for each VM (microkernel/kernel/src/boot.rs), around the VM's name.
const VM_COUNTER_PREFIX: &str = "kernel: vm `";
const VM_COUNTER_INFIX: &str = "`: virtual counter starts at physical tick ";

/// The vmm's exit counts at power-off (vmm-server/server/src/main.rs).
const VMM_EXITS: &str = "vmm: exits: ";

/// Linux's console lines (without their printk timestamps) that must read the same under the
/// hypervisor and on bare QEMU: the same kernel with the same command line, the same RAM (one
/// node, so its range is all of it) and the same counter frequency.
const SAME_IN_BOTH: [&str; 4] = [
    "Linux version ",
    "Kernel command line: ",
    "NUMA: Faking a node at ",
    ARCH_TIMER,
];

/// Linux's arch_timer banner (drivers/clocksource/arm_arch_timer.c, `arch_timer_banner`):
/// `... running at <MHz, to two decimals>MHz (virt).`.
const ARCH_TIMER: &str = "arch_timer: cp15 timer(s) running at ";

/// The bare machine: QEMU's virt board with the hypervisor's CPU and interrupt controller, no
/// EL2 (the kernel runs at EL1 as it does in our VM), RAM as manifests/linux.toml gives its VM.
const BARE_MACHINE: [&str; 8] = [
    "-M",
    "virt,gic-version=3",
    "-cpu",
    "cortex-a72",
    "-m",
    "256M",
    "-smp",
    "1",
];

/// The boot figures of one benchmark, in nanoseconds of virtual time (= instructions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootFigures {
    /// From reset to init's counter read, under the hypervisor.
    pub under_hypervisor: u64,
    /// From reset to init's counter read, on bare QEMU.
    pub bare: u64,
}

impl BootFigures {
    /// The summary lines, in the shapes `bench.rs` collects.
    pub fn lines(&self) -> Vec<String> {
        vec![
            format!(
                "boot under the hypervisor: {} instructions",
                self.under_hypervisor
            ),
            format!("boot on bare QEMU: {} instructions", self.bare),
            format!(
                "boot ratio: {:.2}",
                self.under_hypervisor as f64 / self.bare as f64
            ),
        ]
    }
}

/// Runs the bare-QEMU half of the boot benchmark of `manifest`, whose run under the hypervisor
/// printed `hypervisor_console`; returns the summary lines (the figures and the vmm's exit
/// counts), or why there are none.
pub fn compare(
    workspace: &Workspace,
    manifest: &Path,
    hypervisor_console: &str,
    timeout: Duration,
) -> Result<Vec<String>, String> {
    let (kernel, initrd) = linux_files(workspace, manifest)?;
    let cmdline = linux_line(hypervisor_console, "Kernel command line: ")
        .ok_or("the hypervisor run printed no `Kernel command line:`")?;
    qemu::exit_if_interrupted();
    let (status, bare_console) = run_bare(&kernel, &initrd, cmdline, timeout)
        .map_err(|error| format!("bare QEMU did not run: {error:#}"))?;
    let with_console =
        |problem: String| format!("{problem}\n---- bare QEMU console ----\n{bare_console}");
    if status != Status::Exited(0) {
        return Err(with_console(format!(
            "bare QEMU: {}",
            qemu::describe(status)
        )));
    }
    let figures = figures(hypervisor_console, &bare_console).map_err(with_console)?;
    let mut lines = figures.lines();
    lines.push(exit_counts(hypervisor_console)?.to_string());
    Ok(lines)
}

/// The boot figures from the two consoles, once they are shown to be of the same boot.
fn figures(hypervisor_console: &str, bare_console: &str) -> Result<BootFigures, String> {
    for prefix in SAME_IN_BOTH {
        let under = linux_line(hypervisor_console, prefix)
            .ok_or_else(|| format!("the hypervisor run printed no `{prefix}` line"))?;
        let bare = linux_line(bare_console, prefix)
            .ok_or_else(|| format!("bare QEMU printed no `{prefix}` line"))?;
        if under != bare {
            return Err(format!(
                "the two runs are not the same boot: `{prefix}{under}` under the hypervisor, \
                 `{prefix}{bare}` on bare QEMU"
            ));
        }
    }
    let tick = nanoseconds_per_tick(hypervisor_console)?;
    let start = vm_counter_start(hypervisor_console)?;
    let under = init_counter(hypervisor_console)
        .ok_or("the hypervisor run printed no `linux-init: started at virtual counter`")?;
    let bare = init_counter(bare_console)
        .ok_or("bare QEMU printed no `linux-init: started at virtual counter`")?;
    let ns = |ticks: u64| {
        ticks
            .checked_mul(tick)
            .ok_or_else(|| format!("{ticks} counter ticks overflow"))
    };
    Ok(BootFigures {
        under_hypervisor: ns(start
            .checked_add(under)
            .ok_or("the counter values overflow")?)?,
        bare: ns(bare)?,
    })
}

/// The rest of the first console line that holds `prefix`, after it: Linux's lines carry a
/// printk timestamp before the text.
fn linux_line<'a>(console: &'a str, prefix: &str) -> Option<&'a str> {
    console
        .lines()
        .find_map(|line| line.split_once(prefix).map(|(_, rest)| rest.trim_end()))
}

/// The counter value of init's first line (of the first boot, when there are several).
fn init_counter(console: &str) -> Option<u64> {
    linux_line(console, INIT_STARTED).and_then(|count| count.parse().ok())
}

/// The physical tick at which the one VM's virtual counter started.
fn vm_counter_start(console: &str) -> Result<u64, String> {
    let starts: Vec<(&str, &str)> = console
        .lines()
        .filter_map(|line| line.strip_prefix(VM_COUNTER_PREFIX))
        .filter_map(|rest| rest.split_once(VM_COUNTER_INFIX))
        .collect();
    match starts.as_slice() {
        [(_, tick)] => tick
            .trim_end()
            .parse()
            .map_err(|_| format!("the kernel printed the VM's counter start as `{tick}`")),
        [] => Err("the kernel printed no `kernel: vm ...: virtual counter starts at` line".into()),
        _ => Err(format!(
            "the boot benchmark needs one VM; the kernel created {}",
            starts.len()
        )),
    }
}

/// Nanoseconds per counter tick, from Linux's arch_timer banner; only a frequency that divides
/// 1 GHz into whole nanoseconds is taken (62.50 MHz: 16 ns).
fn nanoseconds_per_tick(console: &str) -> Result<u64, String> {
    let banner = linux_line(console, ARCH_TIMER).ok_or("Linux printed no arch_timer banner")?;
    let hundredths_mhz = banner
        .split_once("MHz")
        .and_then(|(mhz, _)| mhz.split_once('.'))
        .filter(|(_, fraction)| fraction.len() == 2)
        .and_then(|(whole, fraction)| {
            let whole: u64 = whole.parse().ok()?;
            let fraction: u64 = fraction.parse().ok()?;
            whole.checked_mul(100)?.checked_add(fraction)
        })
        .filter(|&hundredths| hundredths > 0)
        .ok_or_else(|| format!("cannot read the counter frequency in `{banner}`"))?;
    // 1 ns per tick is 1000 MHz, 100,000 hundredths of a MHz.
    if 100_000 % hundredths_mhz != 0 {
        return Err(format!(
            "a counter tick at {banner} is not a whole number of nanoseconds"
        ));
    }
    Ok(100_000 / hundredths_mhz)
}

/// The vmm's exit counts line.
fn exit_counts(console: &str) -> Result<&str, String> {
    console
        .lines()
        .find(|line| line.starts_with(VMM_EXITS))
        .map(str::trim_end)
        .ok_or_else(|| "the vmm printed no `vmm: exits:` line".to_string())
}

/// The kernel and initramfs of the manifest's Linux VM, as absolute paths.
fn linux_files(workspace: &Workspace, manifest: &Path) -> Result<(PathBuf, PathBuf), String> {
    let path = workspace.root.join(manifest);
    let manifest = Manifest::load(&path).map_err(|error| error.to_string())?;
    let files = manifest.guest_files();
    let find = |key: &str| {
        files
            .iter()
            .find(|file| file.key().ends_with(key))
            .map(|file| workspace.root.join(&file.path))
            .ok_or_else(|| {
                format!(
                    "{}: the boot benchmark needs a Linux VM with `{}`",
                    path.display(),
                    &key[1..]
                )
            })
    };
    Ok((find(".kernel")?, find(".initrd")?))
}

/// Boots `kernel` with `initrd` and `cmdline` on bare QEMU under `-icount`; returns how it
/// ended and its console (stdout, then stderr).
///
/// QEMU stays in xtask's process group, so a Ctrl-C reaches it as well; xtask exits 130 after
/// it (the handlers `qemu::run` installed keep the signal from ending xtask itself).
fn run_bare(
    kernel: &Path,
    initrd: &Path,
    cmdline: &str,
    timeout: Duration,
) -> anyhow::Result<(Status, String)> {
    let mut command = Command::new(QEMU);
    command
        .args(BARE_MACHINE)
        .args(["-nodefaults", "-display", "none", "-serial", "stdio"])
        .arg("-no-reboot")
        .args(["-icount", "shift=0,sleep=off", "-seed", "1"])
        // The board's PL031 would start at the host's wall-clock time, and Linux's boot differs
        // by a few instructions with the date it reads; a fixed date on virtual time makes the
        // figure exact. The hypervisor's VMs have no RTC.
        .args(["-rtc", "base=2000-01-01T00:00:00,clock=vm"])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", cmdline])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    eprintln!("xtask: running {} on bare QEMU", kernel.display());
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {QEMU}"))?;
    let readers = [
        child.stdout.take().map(read_all),
        child.stderr.take().map(read_all),
    ];
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for QEMU")? {
            // As a shell reports it: 128 + the signal when one ended QEMU.
            let code = status
                .code()
                .or_else(|| status.signal().map(|signal| 128 + signal));
            break Status::Exited(code.unwrap_or(1));
        }
        if started.elapsed() >= timeout {
            let _ = child.kill();
            let _ = child.wait();
            break Status::TimedOut(timeout);
        }
        thread::sleep(Duration::from_millis(20));
    };
    qemu::exit_if_interrupted();
    let mut console = String::new();
    for reader in readers.into_iter().flatten() {
        let bytes = reader.join().unwrap_or_default();
        console.push_str(&String::from_utf8_lossy(&bytes).replace('\r', ""));
    }
    Ok((status, console))
}

fn read_all(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What matters of a hypervisor run's console: Linux's lines and ours.
    fn hypervisor_console(start: u64, counter: u64) -> String {
        format!(
            "hvkernel 0.1.0 at EL2: capability microkernel hypervisor\n\
             kernel: vm `linux`: virtual counter starts at physical tick {start}\n\
             [    0.000000] Linux version 6.1.0-57-arm64 (debian-kernel@lists.debian.org)\n\
             [    0.000000] NUMA: Faking a node at [mem 0x0000000040000000-0x000000004fffffff]\n\
             [    0.000000] Kernel command line: console=ttyAMA0 rdinit=/init\n\
             [    0.000000] arch_timer: cp15 timer(s) running at 62.50MHz (virt).\n\
             linux-init: started at virtual counter {counter}\n\
             vmm: guest powered off, verdict 0\n\
             vmm: exits: stage2=40 mmio=9000 hvc=12\n"
        )
    }

    fn bare_console(counter: u64) -> String {
        format!(
            "[    0.000000] Linux version 6.1.0-57-arm64 (debian-kernel@lists.debian.org)\n\
             [    0.000000] NUMA: Faking a node at [mem 0x0000000040000000-0x000000004fffffff]\n\
             [    0.000000] Kernel command line: console=ttyAMA0 rdinit=/init\n\
             [    0.000000] arch_timer: cp15 timer(s) running at 62.50MHz (virt).\n\
             [    0.775656] Run /init as init process\n\
             linux-init: started at virtual counter {counter}\n"
        )
    }

    #[test]
    fn the_hypervisors_boot_is_added_to_the_guests_counter() {
        let figures = figures(&hypervisor_console(1_000, 60_000), &bare_console(50_000)).unwrap();
        assert_eq!(
            figures,
            BootFigures {
                under_hypervisor: 976_000,
                bare: 800_000,
            }
        );
        assert_eq!(
            figures.lines(),
            vec![
                "boot under the hypervisor: 976000 instructions",
                "boot on bare QEMU: 800000 instructions",
                "boot ratio: 1.22",
            ]
        );
        assert_eq!(
            exit_counts(&hypervisor_console(1, 1)),
            Ok("vmm: exits: stage2=40 mmio=9000 hvc=12")
        );
    }

    #[test]
    fn two_different_boots_are_refused() {
        let hypervisor = hypervisor_console(1_000, 60_000);
        for (line, changed) in [
            ("rdinit=/init", "rdinit=/init quiet"),
            ("0x000000004fffffff", "0x000000005fffffff"),
            ("6.1.0-57-arm64 (", "6.1.0-58-arm64 ("),
            ("62.50MHz", "50.00MHz"),
        ] {
            let bare = bare_console(50_000).replace(line, changed);
            let error = figures(&hypervisor, &bare).unwrap_err();
            assert!(error.contains("not the same boot"), "{line}: {error}");
        }
        let no_init = bare_console(50_000).replace("linux-init: started", "linux-init: begun");
        assert!(figures(&hypervisor, &no_init).is_err());
    }

    #[test]
    fn the_vms_counter_start_is_read_once() {
        let console = hypervisor_console(1_000, 60_000);
        assert_eq!(vm_counter_start(&console), Ok(1_000));
        let second = "kernel: vm `other`: virtual counter starts at physical tick 1000\n";
        let two_vms = console.replacen("[    0.000000] Linux", &format!("{second}[ 0.0] Linux"), 1);
        assert!(vm_counter_start(&two_vms).unwrap_err().contains("one VM"));
        assert!(vm_counter_start(&bare_console(5)).is_err());
        let bad = console.replace("physical tick 1000", "physical tick 10x");
        assert!(vm_counter_start(&bad).is_err());
    }

    #[test]
    fn the_tick_is_read_from_the_timer_banner() {
        let banner = |mhz: &str| format!("[ 0.0] {ARCH_TIMER}{mhz}MHz (virt).\n");
        assert_eq!(nanoseconds_per_tick(&banner("62.50")), Ok(16));
        assert_eq!(nanoseconds_per_tick(&banner("1000.00")), Ok(1));
        assert_eq!(nanoseconds_per_tick(&banner("25.00")), Ok(40));
        for refused in ["24.00", "62.5", "0.00", "x.50", ""] {
            assert!(nanoseconds_per_tick(&banner(refused)).is_err(), "{refused}");
        }
        assert!(nanoseconds_per_tick("no banner").is_err());
    }

    #[test]
    fn the_first_boots_init_line_counts() {
        let two_boots = format!("{}{}", bare_console(50_000), bare_console(70_000));
        assert_eq!(init_counter(&two_boots), Some(50_000));
        assert_eq!(
            init_counter("linux-init: started at virtual counter "),
            None
        );
    }

    #[test]
    fn the_repository_manifest_names_its_linux_files() {
        let workspace = Workspace::locate();
        let (kernel, initrd) = linux_files(&workspace, Path::new("manifests/linux.toml")).unwrap();
        assert!(kernel.ends_with("target/guest/linux/Image"), "{kernel:?}");
        assert!(
            initrd.ends_with("target/guest/linux/initramfs.cpio"),
            "{initrd:?}"
        );
        let error = linux_files(&workspace, Path::new("manifests/hello.toml")).unwrap_err();
        assert!(error.contains("needs a Linux VM with `kernel`"), "{error}");
    }
}
