//! `cargo xtask bench --trace [NAME]`: the kernel's instructions per system call, counted from a
//! QEMU execution trace of a benchmark image.
//!
//! The image runs under `-icount shift=0,sleep=off -seed 1` with `-d in_asm,exec,nochain`,
//! which logs every block translation and every block execution ([`parse`]). Blocks in the
//! kernel ELF's segments are kernel code ([`symbols`]); an **episode** is a maximal run of
//! kernel blocks between two user blocks, from the exception entry after the user's `svc` to
//! the `eret` that leaves the kernel, labelled by the server function that trapped and split by
//! the kernel path it took ([`episodes`]). The report prints one figure per label and frequent
//! path (`trace ipc_bench::round_trip via kernel::trap::slow_path kernel: 562 instructions`,
//! [`report`]).
//!
//! The trace file (`<image dir>/trace.log`, hundreds of MB) is read line by line, never whole,
//! and deleted afterwards unless `XTASK_KEEP_TRACE` is set.

mod episodes;
#[cfg(test)]
mod fixture;
mod parse;
mod report;
mod symbols;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::{Bench, BenchTable, TABLE};
use crate::Workspace;
use crate::build::{Image, ImageCache};
use crate::qemu::{self, Status};
use crate::test::{check_entries, load_table};
use episodes::Episodes;
use parse::Parser;
use report::Report;
use symbols::Symbols;

/// The trace file, in the image directory.
const TRACE_FILE: &str = "trace.log";

/// Set (to anything) to keep the trace file.
const KEEP_ENV: &str = "XTASK_KEEP_TRACE";

/// Logging every block is much slower than running: the table's timeout times this.
const TIMEOUT_FACTOR: u64 = 10;

/// Traces the selected benchmarks and prints their kernel instructions per system call;
/// returns whether every one ran and gave at least one figure.
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
    let mut all_ran = true;
    for bench in selected {
        all_ran &= trace_bench(workspace, &mut images, bench)?;
    }
    Ok(all_ran)
}

/// Builds, runs and traces one benchmark, printing its report.
fn trace_bench(
    workspace: &Workspace,
    images: &mut ImageCache,
    bench: &Bench,
) -> anyhow::Result<bool> {
    let image = match images.get(workspace, &bench.manifest) {
        Ok(image) => image,
        Err(diagnostic) => {
            println!(
                "trace {} ... FAILED: image did not build\n{diagnostic}",
                bench.name
            );
            return Ok(false);
        }
    };
    qemu::exit_if_interrupted();
    let log = image.dir.join(TRACE_FILE);
    let _ = fs::remove_file(&log);
    let timeout = Duration::from_secs(bench.timeout_s.saturating_mul(TIMEOUT_FACTOR));
    let options = qemu::Options {
        icount: true,
        timeout: Some(timeout),
        extra_args: vec![
            "-d".into(),
            "in_asm,exec,nochain".into(),
            "-D".into(),
            log.to_string_lossy().into_owned(),
        ],
        ..qemu::Options::default()
    };
    let started = Instant::now();
    let outcome = qemu::run(&image, &options)?;
    let ran = started.elapsed();
    let result = match outcome.status {
        Status::Exited(0) => analyse(&image, &log, ran).map(|report| {
            print!("{report}");
            report.labels.iter().any(|label| label.shown)
        }),
        status => {
            println!(
                "trace {} ... FAILED: {}\n---- bench {} console ----\n{}",
                bench.name,
                qemu::describe(status),
                bench.name,
                outcome.console
            );
            crate::defmt_log::print(&image);
            Ok(false)
        }
    };
    if std::env::var_os(KEEP_ENV).is_some() {
        eprintln!("xtask: trace kept in {}", log.display());
    } else {
        let _ = fs::remove_file(&log);
    }
    result
}

/// Reads the trace of `image` at `log` (the run took `ran`).
fn analyse(image: &Image, log: &Path, ran: Duration) -> anyhow::Result<Report> {
    let symbols = Symbols::load(image)?;
    let file = fs::File::open(log).with_context(|| format!("opening {}", log.display()))?;
    let size = file.metadata().map(|meta| meta.len()).unwrap_or(0);
    let started = Instant::now();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut tracer = Tracer::new(&symbols);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("reading {}", log.display()))?;
        if read == 0 {
            break;
        }
        // QEMU's log is ASCII; a line that is not UTF-8 cannot be one we look at.
        if let Ok(text) = std::str::from_utf8(&line) {
            tracer.line(text);
        }
    }
    let mut report = tracer.finish();
    report.title = image.name.clone();
    report.trace_bytes = size;
    report.run_time = ran;
    report.parse_time = started.elapsed();
    Ok(report)
}

/// The trace's lines through the parser, the blocks that ran into the episodes.
struct Tracer<'a> {
    parser: Parser,
    episodes: Episodes<'a>,
}

impl<'a> Tracer<'a> {
    fn new(symbols: &'a Symbols) -> Self {
        Self {
            parser: Parser::default(),
            episodes: Episodes::new(symbols),
        }
    }

    /// Takes one line of the log (with or without its line end).
    fn line(&mut self, line: &str) {
        if let Some(execution) = self.parser.line(line) {
            self.episodes.count(execution, self.parser.translations());
        }
    }

    fn finish(mut self) -> Report {
        if let Some(execution) = self.parser.finish() {
            self.episodes.count(execution, self.parser.translations());
        }
        self.episodes.finish()
    }
}
