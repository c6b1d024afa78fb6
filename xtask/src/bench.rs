//! `cargo xtask bench`: the benchmarks of `tests/benches.toml`, run under `-icount`.
//!
//! With `-icount shift=0,sleep=off -seed 1` QEMU executes exactly one instruction per virtual
//! nanosecond and nothing depends on the host's speed, so a benchmark image can measure with
//! the virtual counter and print exact, repeatable figures. xtask does not interpret them: it
//! collects the console lines of the agreed shapes and prints them,
//!
//! ```text
//! <text>: <N> ticks               e.g. "ipc round trip: 442 ticks"
//! <text>: <N> instructions        e.g. "trace call kernel: 206 instructions"
//! <text> ratio: <X.XX>            e.g. "ipc full/fast ratio: 1.07"
//! ```
//!
//! A program cannot know whether QEMU counts instructions, so it prints counter **ticks** (the
//! PMU cycle counter, or nanoseconds of virtual time); only here, where `-icount shift=0` is
//! known to be on, does the summary call them instructions.
//!
//! A benchmark may report its figures under other texts (`rename`, see [`rename`](mod@rename)):
//! then it reports only those, so one image can serve several benchmarks.
//!
//! A benchmark fails when its image does not build, QEMU does not exit 0 before the timeout, it
//! printed no figure, or a figure its `rename` names is missing; its console is shown then.
//!
//! One benchmark measures what no image of ours can: `bare_qemu = true` also boots the
//! manifest's Linux VM on bare QEMU and compares the two boots (see [`boot`](mod@boot)).

mod boot;
mod rename;
mod trace;

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::Workspace;
use crate::build::ImageCache;
use crate::qemu::{self, Status};
use crate::test::{check_entries, load_table};

/// The benchmark table, relative to the workspace root.
pub const TABLE: &str = "tests/benches.toml";

/// One `[[bench]]` entry.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Bench {
    /// The benchmark's name; the command-line argument matches substrings of it.
    pub name: String,
    /// The manifest of the benchmark image, relative to the workspace root.
    pub manifest: PathBuf,
    /// Seconds before QEMU is killed and the benchmark fails (each run, when there are two).
    pub timeout_s: u64,
    /// Also boot the manifest's Linux VM (its kernel and initramfs) on bare QEMU and print how
    /// far from reset each boot reached init ([`boot`](mod@boot)).
    #[serde(default)]
    pub bare_qemu: bool,
    /// Figure text as the image prints it → the text to report; with it only these figures are
    /// reported ([`rename`](mod@rename)).
    #[serde(default)]
    pub rename: rename::Rename,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BenchTable {
    #[serde(default)]
    bench: Vec<Bench>,
}

/// Runs the selected benchmarks and prints their figures; returns whether all of them ran.
pub fn run(workspace: &Workspace, name: Option<&str>) -> anyhow::Result<bool> {
    let path = workspace.root.join(TABLE);
    let table: BenchTable = load_table(&path)?;
    check_entries(
        &path,
        table
            .bench
            .iter()
            .map(|bench| (bench.name.as_str(), bench.timeout_s)),
    )?;
    for bench in &table.bench {
        rename::check(&bench.rename)
            .map_err(|why| anyhow::anyhow!("{}: `{}`: {why}", path.display(), bench.name))?;
    }
    let selected: Vec<&Bench> = table
        .bench
        .iter()
        .filter(|bench| name.is_none_or(|name| bench.name.contains(name)))
        .collect();
    if selected.is_empty() {
        eprintln!("xtask: no benchmark in {TABLE} matches");
        return Ok(false);
    }
    let mut images = ImageCache::default();
    let mut summary = Vec::new();
    let mut all_ran = true;
    for bench in selected {
        let image = match images.get(workspace, &bench.manifest) {
            Ok(image) => image,
            Err(diagnostic) => {
                println!(
                    "bench {} ... FAILED: image did not build\n{diagnostic}",
                    bench.name
                );
                all_ran = false;
                continue;
            }
        };
        qemu::exit_if_interrupted();
        let options = qemu::Options {
            icount: true,
            timeout: Some(Duration::from_secs(bench.timeout_s)),
            ..qemu::Options::default()
        };
        let outcome = qemu::run(&image, &options)?;
        let mut problem = match outcome.status {
            Status::Exited(0) => None,
            status => Some(qemu::describe(status)),
        };
        let mut lines: Vec<String> = match rename::apply(&figures(&outcome.console), &bench.rename)
        {
            Ok(lines) => lines.iter().map(|line| as_instructions(line)).collect(),
            Err(why) => {
                problem.get_or_insert(why);
                Vec::new()
            }
        };
        if problem.is_none() && bench.bare_qemu {
            let timeout = Duration::from_secs(bench.timeout_s);
            match boot::compare(workspace, &bench.manifest, &outcome.console, timeout) {
                Ok(boot_lines) => lines.extend(boot_lines),
                Err(why) => problem = Some(why),
            }
        }
        if problem.is_none() && lines.is_empty() {
            problem = Some("printed no figures".to_string());
        }
        match problem {
            None => println!("bench {} ... ok", bench.name),
            Some(problem) => {
                println!("bench {} ... FAILED: {problem}", bench.name);
                println!(
                    "---- bench {} console ----\n{}",
                    bench.name, outcome.console
                );
                crate::defmt_log::print(&image);
                all_ran = false;
            }
        }
        summary.extend(lines);
    }
    println!("\nsummary (QEMU -icount shift=0, instructions are exact):");
    for line in &summary {
        println!("{line}");
    }
    if summary.is_empty() {
        println!("(no figures)");
    }
    Ok(all_ran)
}

/// `cargo xtask bench --trace [NAME]`: the kernel's instructions per system call of the
/// selected benchmark, counted from a QEMU exec trace (see [`trace`](mod@trace)); returns
/// whether it ran.
pub fn trace(workspace: &Workspace, name: Option<&str>) -> anyhow::Result<bool> {
    trace::run(workspace, name)
}

/// The console lines that are benchmark figures, in console order.
pub fn figures(console: &str) -> Vec<&str> {
    console
        .lines()
        .map(|line| line.trim_end_matches('\r'))
        .filter(|line| is_instruction_count(line) || is_ratio(line))
        .collect()
}

/// `^<text>: <N> instructions$` or `^<text>: <N> ticks$` with a non-empty text and a
/// decimal N.
fn is_instruction_count(line: &str) -> bool {
    line.strip_suffix(" instructions")
        .or_else(|| line.strip_suffix(" ticks"))
        .and_then(|rest| rest.rsplit_once(": "))
        .is_some_and(|(text, count)| !text.is_empty() && is_digits(count))
}

/// A figure line as the summary prints it: under `-icount shift=0` one counter tick is one
/// instruction.
fn as_instructions(line: &str) -> String {
    match line.strip_suffix(" ticks") {
        Some(count) => format!("{count} instructions"),
        None => line.to_string(),
    }
}

/// `^<text> ratio: <X.XX>$` with a non-empty text and a decimal fraction.
fn is_ratio(line: &str) -> bool {
    line.rsplit_once(" ratio: ").is_some_and(|(text, value)| {
        !text.is_empty()
            && value
                .split_once('.')
                .is_some_and(|(whole, fraction)| is_digits(whole) && is_digits(fraction))
    })
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn collects_exactly_the_figure_lines() {
        let console = "boot banner\n\
                       ipc call+reply_recv: 812 instructions\r\n\
                       ipc vs seL4 ratio: 1.07\n\
                       : 5 instructions\n\
                       x: 5.0 instructions\n\
                       x: 12 instructions!\n\
                       y ratio: 1\n\
                       y ratio: 1.\n\
                       ratio: 1.00\n\
                       mmio: fast path: 300 instructions\n\
                       guest hvc: 1396 ticks\n\
                       z: 3 tick\n\
                       done\n";
        assert_eq!(
            figures(console),
            vec![
                "ipc call+reply_recv: 812 instructions",
                "ipc vs seL4 ratio: 1.07",
                "mmio: fast path: 300 instructions",
                "guest hvc: 1396 ticks",
            ]
        );
        assert_eq!(
            as_instructions("guest hvc: 1396 ticks"),
            "guest hvc: 1396 instructions"
        );
        assert_eq!(as_instructions("x ratio: 1.00"), "x ratio: 1.00");
    }

    #[test]
    fn the_repository_table_parses() {
        let workspace = Workspace::locate();
        let path = workspace.root.join(TABLE);
        let table: BenchTable = load_table(&path).expect("tests/benches.toml");
        assert!(table.bench.iter().any(|bench| bench.name == "ipc"
            && bench.manifest == Path::new("manifests/ipc-bench.toml")
            && !bench.bare_qemu));
        assert!(table.bench.iter().any(|bench| bench.name == "boot"
            && bench.manifest == Path::new("manifests/linux.toml")
            && bench.bare_qemu));
        for bench in &table.bench {
            assert_eq!(rename::check(&bench.rename), Ok(()), "{}", bench.name);
        }
        // `cargo xtask bench mmio` runs both MMIO benchmarks, each on its own system, and each
        // reports the guest's read and write round trips under its own path's name.
        let mmio: Vec<(&str, &Path)> = table
            .bench
            .iter()
            .filter(|bench| bench.name.contains("mmio"))
            .map(|bench| (bench.name.as_str(), bench.manifest.as_path()))
            .collect();
        assert_eq!(
            mmio,
            [
                ("mmio-fast", Path::new("manifests/test-guest.toml")),
                (
                    "mmio-slow",
                    Path::new("tests/manifests/test-guest-no-markers.toml")
                ),
            ]
        );
        let renamed = |name: &str, from: &str| {
            let bench = table.bench.iter().find(|bench| bench.name == name);
            bench.and_then(|bench| bench.rename.get(from).cloned())
        };
        for (bench, path) in [
            ("mmio-fast", "mmio fast path"),
            ("mmio-slow", "mmio slow path"),
        ] {
            let read = renamed(bench, "guest mmio read round trip");
            let write = renamed(bench, "guest mmio write round trip");
            assert_eq!(read.as_deref(), Some(path), "{bench}");
            assert_eq!(write, Some(format!("{path}, write")), "{bench}");
        }
        let guest_exits = table.bench.iter().find(|bench| bench.name == "guest-exits");
        assert!(guest_exits.is_some_and(|bench| bench.rename.is_empty()));
    }
}
