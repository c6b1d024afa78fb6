//! `cargo xtask bench --trace [NAME]`: the kernel's instructions per system call, counted from a
//! QEMU execution trace of a benchmark image.
//!
//! The image runs under `-icount shift=0,sleep=off -seed 1` with `-d in_asm,exec,nochain`:
//! `in_asm` logs every translated block's instructions once, when it is translated, and
//! `exec,nochain` logs every execution of a block (`Trace 0: <host ptr> [<cs_base>/<pc>/<flags>/
//! <cflags>] <symbol>`). A block execution counts the instructions of its translation (found by
//! the host pointer QEMU prints, which is unique per live translation; else by the latest
//! translation of its pc). Two of QEMU's own lines correct that: `Stopped execution of TB chain
//! before ...` means the block just logged did not run at all (an interrupt or the instruction
//! budget was due), `cpu_io_recompile: rewound execution of TB to <pc>` means it ran only up to
//! the device access at `<pc>`, which runs again in a block of its own.
//!
//! A block is kernel code when its pc lies in a loaded segment of the kernel ELF (the image's
//! `<name>.elf`), else user code (servers at EL0, or a guest). An **episode** is a maximal run
//! of kernel blocks between two user blocks: from the exception entry after the user's `svc` to
//! the `eret` that leaves the kernel, both included. It is labelled by the server function that
//! holds the last instruction of the user block before it (the `svc`), from the symbols of the
//! server ELFs whose code matches the block's instruction words (servers share one virtual
//! layout, so the same pc may lie in several ELFs).
//!
//! One function may trap on more than one kernel path (the IPC benchmark's `round_trip` sends
//! one word, then five), so a label's episodes are split by their exact sequence of kernel
//! blocks, and each path seen often enough gets its own figure, named by kernel functions it
//! visits and the label's other paths do not (`trace ipc_bench::round_trip via
//! kernel::trap::slow_path kernel: 562 instructions`); the path that visits no such function
//! keeps the plain label. A timer interrupt is an episode too, labelled by whatever it
//! interrupted: a rare path, left out.
//!
//! The trace file (`<image dir>/trace.log`, hundreds of MB) is read line by line and deleted
//! afterwards unless `XTASK_KEEP_TRACE` is set.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use object::{Object, ObjectSegment, ObjectSymbol, SymbolKind};

use super::{Bench, BenchTable, TABLE};
use crate::Workspace;
use crate::build::{Image, ImageCache};
use crate::qemu::{self, Status};
use crate::test::{check_entries, load_table};

/// The trace file, in the image directory.
const TRACE_FILE: &str = "trace.log";

/// Set (to anything) to keep the trace file.
const KEEP_ENV: &str = "XTASK_KEEP_TRACE";

/// Logging every block is much slower than running: the table's timeout times this.
const TIMEOUT_FACTOR: u64 = 10;

/// Labels and kernel paths seen fewer times than this are not reported (boot, one-off calls,
/// interrupts).
const MIN_EPISODES: usize = 100;

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

// ---------------------------------------------------------------------------------------------
// Symbols

/// Where the kernel is, and the kernel's and the servers' functions.
struct Symbols {
    /// The kernel ELF's loaded segments.
    kernel: Vec<Range<u64>>,
    /// The kernel's functions (its code is not needed).
    kernel_functions: Elf,
    /// One entry per distinct server (or guest) ELF.
    servers: Vec<Elf>,
}

/// What an ELF says about its addresses.
#[derive(Default)]
struct Elf {
    /// Function address ranges and demangled names, sorted by start.
    functions: Vec<(Range<u64>, String)>,
    /// Loaded bytes by address (segments' file contents).
    code: Vec<(u64, Vec<u8>)>,
}

impl Symbols {
    fn load(image: &Image) -> anyhow::Result<Self> {
        let kernel_bytes =
            fs::read(&image.elf).with_context(|| format!("reading {}", image.elf.display()))?;
        let kernel_elf = object::File::parse(&*kernel_bytes)
            .with_context(|| format!("parsing {}", image.elf.display()))?;
        let kernel = kernel_elf
            .segments()
            .map(|segment| segment.address()..segment.address() + segment.size())
            .filter(|range| !range.is_empty())
            .collect();
        let mut kernel_functions = Elf::parse(&kernel_bytes)
            .with_context(|| format!("parsing {}", image.elf.display()))?;
        kernel_functions.code.clear();
        // The servers, then the other ELFs of the image directory: the VMs' guests.
        let mut paths: Vec<PathBuf> = image.servers.iter().map(|(_, path)| path.clone()).collect();
        let mut others: Vec<PathBuf> = fs::read_dir(&image.dir)
            .with_context(|| format!("listing {}", image.dir.display()))?
            .filter_map(|entry| Some(entry.ok()?.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "elf"))
            .filter(|path| !paths.contains(path))
            .collect();
        others.sort();
        paths.extend(others);
        let mut seen: Vec<Vec<u8>> = Vec::new();
        let mut servers = Vec::new();
        for path in &paths {
            let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            if seen.contains(&bytes) {
                continue;
            }
            let elf = Elf::parse(&bytes).with_context(|| format!("parsing {}", path.display()))?;
            servers.push(elf);
            seen.push(bytes);
        }
        Ok(Self {
            kernel,
            kernel_functions,
            servers,
        })
    }

    fn is_kernel(&self, pc: u64) -> bool {
        self.kernel.iter().any(|range| range.contains(&pc))
    }

    /// The label of an episode whose user block started at `first_pc` with the instruction
    /// `words` (empty when unknown) and last executed the instruction at `last_pc`.
    fn label(&self, first_pc: u64, words: &[u32], last_pc: u64) -> String {
        let matching: Vec<&Elf> = self
            .servers
            .iter()
            .filter(|elf| words.is_empty() || elf.holds(first_pc, words))
            .collect();
        let mut names: Vec<&str> = Vec::new();
        for elf in matching {
            if let Some(name) = elf.function_at(last_pc)
                && !names.contains(&name)
            {
                names.push(name);
            }
        }
        if names.is_empty() {
            format!("{last_pc:#x}")
        } else {
            names.join(" | ")
        }
    }
}

impl Elf {
    fn parse(bytes: &[u8]) -> anyhow::Result<Self> {
        let elf = object::File::parse(bytes)?;
        let mut symbols: Vec<(u64, u64, &str)> = elf
            .symbols()
            .filter(|symbol| symbol.kind() == SymbolKind::Text)
            .filter_map(|symbol| Some((symbol.address(), symbol.size(), symbol.name().ok()?)))
            .collect();
        symbols.sort_unstable();
        symbols.dedup_by_key(|(address, _, _)| *address);
        let mut functions = Vec::with_capacity(symbols.len());
        for (index, &(address, size, name)) in symbols.iter().enumerate() {
            // A symbol without a size reaches to the next one.
            let end = match size {
                0 => symbols
                    .get(index + 1)
                    .map_or(address + 4, |(next, _, _)| *next),
                size => address + size,
            };
            functions.push((address..end, demangle(name)));
        }
        let code = elf
            .segments()
            .filter_map(|segment| Some((segment.address(), segment.data().ok()?.to_vec())))
            .filter(|(_, data)| !data.is_empty())
            .collect();
        Ok(Self { functions, code })
    }

    /// Whether this ELF's bytes at `pc` are `words`.
    fn holds(&self, pc: u64, words: &[u32]) -> bool {
        let expected: Vec<u8> = words.iter().flat_map(|word| word.to_le_bytes()).collect();
        self.code.iter().any(|(address, data)| {
            pc.checked_sub(*address)
                .and_then(|offset| usize::try_from(offset).ok())
                .and_then(|offset| data.get(offset..offset.checked_add(expected.len())?))
                .is_some_and(|bytes| bytes == expected)
        })
    }

    fn function_at(&self, pc: u64) -> Option<&str> {
        let index = self
            .functions
            .partition_point(|(range, _)| range.start <= pc)
            .checked_sub(1)?;
        let (range, name) = &self.functions[index];
        range.contains(&pc).then_some(name.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// The trace parser

/// One translated block, from `in_asm`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Translation {
    /// Its first instruction's address.
    pc: u64,
    /// (address, encoding) of every instruction, in order.
    instructions: Vec<(u64, u32)>,
}

/// One logged block execution, not yet counted (QEMU may still say it did not run, or not
/// completely).
#[derive(Clone, Copy, Debug)]
struct Execution {
    pc: u64,
    /// The index of its translation in `Tracer::translations`, when known.
    translation: Option<usize>,
    /// How many of the translation's instructions ran.
    count: usize,
    /// Whether QEMU's flags for it say EL2 (see [`runs_at_el2`]).
    el2: bool,
}

/// The user block an episode started from.
#[derive(Clone, Copy, Debug)]
struct UserBlock {
    execution: Execution,
}

/// The kernel run in progress.
#[derive(Clone, Copy, Debug)]
struct Episode {
    from: Option<UserBlock>,
    instructions: u64,
    /// FNV-1a over its blocks' (pc, instructions): equal for episodes on one kernel path.
    path: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv(hash: u64, value: u64) -> u64 {
    value.to_le_bytes().iter().fold(hash, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The state machine over the trace's lines.
struct Tracer<'a> {
    symbols: &'a Symbols,
    translations: Vec<Translation>,
    by_host: HashMap<u64, usize>,
    by_pc: HashMap<u64, usize>,
    /// The `in_asm` block being read.
    reading: Option<Translation>,
    /// The latest translation, until the execution line that follows binds it to its host
    /// pointer.
    fresh: Option<usize>,
    pending: Option<Execution>,
    episode: Option<Episode>,
    /// The pcs of the current episode's blocks (to name a new kernel path).
    episode_blocks: Vec<u64>,
    last_user: Option<UserBlock>,
    /// (translation, count) of a trapping user block → label index.
    label_of: HashMap<(Option<usize>, u64, usize), usize>,
    report: Report,
}

/// What a trace came to.
#[derive(Debug, Default)]
struct Report {
    /// The image's name.
    title: String,
    labels: Vec<Label>,
    blocks: u64,
    kernel_instructions: u64,
    user_instructions: u64,
    /// Block executions whose translation was never logged (counted as 0 instructions).
    unknown_blocks: u64,
    /// Block executions whose address says kernel but whose flags say not EL2, or the other
    /// way round (a guest at the kernel's addresses, or another QEMU's flag layout).
    misplaced_blocks: u64,
    /// Kernel instructions before the first user block (boot) and after the last (shutdown).
    unlabelled_instructions: u64,
    trace_bytes: u64,
    run_time: Duration,
    parse_time: Duration,
}

/// The episodes of one label.
#[derive(Debug, Default)]
struct Label {
    name: String,
    /// Kernel instructions of each episode, in trace order.
    episodes: Vec<u64>,
    /// Its episodes split by the kernel path they took (path hash → index).
    path_index: HashMap<u64, usize>,
    paths: Vec<KernelPath>,
    /// Seen often enough to be reported (set by `Tracer::finish`).
    shown: bool,
}

/// The episodes of one label that took one kernel path (the same blocks).
#[derive(Debug, Default)]
struct KernelPath {
    /// The kernel functions its blocks lie in, in order of first appearance.
    functions: Vec<String>,
    /// Kernel instructions of each episode.
    episodes: Vec<u64>,
    /// Seen often enough (in a shown label) to be reported (set by `Tracer::finish`).
    shown: bool,
    /// What tells it from the label's other shown paths: empty, ` via <its own functions>`,
    /// or ` #<n>` (set by `Tracer::finish`).
    suffix: String,
}

impl<'a> Tracer<'a> {
    fn new(symbols: &'a Symbols) -> Self {
        Self {
            symbols,
            translations: Vec::new(),
            by_host: HashMap::new(),
            by_pc: HashMap::new(),
            reading: None,
            fresh: None,
            pending: None,
            episode: None,
            episode_blocks: Vec::new(),
            last_user: None,
            label_of: HashMap::new(),
            report: Report::default(),
        }
    }

    /// Takes one line of the log (with or without its line end).
    fn line(&mut self, line: &str) {
        let line = line.trim_end();
        if let Some(reading) = &mut self.reading {
            if let Some(instruction) = parse_instruction(line) {
                reading.instructions.push(instruction);
                return;
            }
            self.end_translation();
        }
        if let Some(rest) = line.strip_prefix("Trace ") {
            if let Some((host, pc, flags)) = parse_execution(rest) {
                self.execution(host, pc, runs_at_el2(flags));
            }
        } else if line.starts_with("IN:") {
            self.reading = Some(Translation::default());
        } else if let Some(rest) = line.strip_prefix("Stopped execution of TB chain before ") {
            // The block just logged was not entered.
            if let Some((_, pc)) = parse_stopped(rest)
                && self.pending.is_some_and(|pending| pending.pc == pc)
            {
                self.pending = None;
            }
        } else if let Some(rest) =
            line.strip_prefix("cpu_io_recompile: rewound execution of TB to ")
        {
            // The block just logged ran up to (not including) the device access at `pc`.
            if let (Some(pc), Some(pending)) = (parse_hex(rest.trim()), &mut self.pending)
                && let Some(index) = pending.translation
            {
                let ran = self.translations[index]
                    .instructions
                    .iter()
                    .take_while(|(address, _)| *address != pc)
                    .count();
                pending.count = pending.count.min(ran);
            }
        }
    }

    fn end_translation(&mut self) {
        if let Some(translation) = self.reading.take()
            && let Some(&(pc, _)) = translation.instructions.first()
        {
            let index = self.translations.len();
            self.translations.push(Translation { pc, ..translation });
            self.by_pc.insert(pc, index);
            self.fresh = Some(index);
        }
    }

    fn execution(&mut self, host: u64, pc: u64, el2: bool) {
        if let Some(pending) = self.pending.take() {
            self.count(pending);
        }
        if let Some(index) = self.fresh.take()
            && self.translations[index].pc == pc
        {
            self.by_host.insert(host, index);
        }
        let translation = self
            .by_host
            .get(&host)
            .filter(|&&index| self.translations[index].pc == pc)
            .or_else(|| self.by_pc.get(&pc))
            .copied();
        let count = translation.map_or(0, |index| self.translations[index].instructions.len());
        self.pending = Some(Execution {
            pc,
            translation,
            count,
            el2,
        });
    }

    /// Counts one block that ran.
    fn count(&mut self, execution: Execution) {
        self.report.blocks += 1;
        if execution.translation.is_none() {
            self.report.unknown_blocks += 1;
        }
        let instructions = execution.count as u64;
        let kernel = self.symbols.is_kernel(execution.pc);
        if kernel != execution.el2 {
            self.report.misplaced_blocks += 1;
        }
        if kernel {
            self.report.kernel_instructions += instructions;
            let episode = self.episode.get_or_insert_with(|| {
                self.episode_blocks.clear();
                Episode {
                    from: self.last_user,
                    instructions: 0,
                    path: FNV_OFFSET,
                }
            });
            episode.instructions += instructions;
            episode.path = fnv(fnv(episode.path, execution.pc), instructions);
            self.episode_blocks.push(execution.pc);
        } else {
            self.report.user_instructions += instructions;
            if let Some(episode) = self.episode.take() {
                match episode.from {
                    Some(from) => self.record(from, episode),
                    None => self.report.unlabelled_instructions += episode.instructions,
                }
            }
            self.last_user = Some(UserBlock { execution });
        }
    }

    fn record(&mut self, from: UserBlock, episode: Episode) {
        let execution = from.execution;
        let key = (execution.translation, execution.pc, execution.count);
        let index = match self.label_of.get(&key) {
            Some(&index) => index,
            None => {
                let name = self.label_name(execution);
                let index = match self.report.labels.iter().position(|l| l.name == name) {
                    Some(index) => index,
                    None => {
                        self.report.labels.push(Label {
                            name,
                            ..Label::default()
                        });
                        self.report.labels.len() - 1
                    }
                };
                self.label_of.insert(key, index);
                index
            }
        };
        let label = &mut self.report.labels[index];
        label.episodes.push(episode.instructions);
        let path = match label.path_index.get(&episode.path) {
            Some(&path) => path,
            None => {
                let mut functions: Vec<String> = Vec::new();
                for &pc in &self.episode_blocks {
                    let name = self.symbols.kernel_functions.function_at(pc);
                    let name = name.map_or_else(|| format!("{pc:#x}"), str::to_string);
                    if !functions.contains(&name) {
                        functions.push(name);
                    }
                }
                label.paths.push(KernelPath {
                    functions,
                    ..KernelPath::default()
                });
                label.path_index.insert(episode.path, label.paths.len() - 1);
                label.paths.len() - 1
            }
        };
        label.paths[path].episodes.push(episode.instructions);
    }

    fn label_name(&self, execution: Execution) -> String {
        let Some(index) = execution.translation else {
            return self.symbols.label(execution.pc, &[], execution.pc);
        };
        let ran = &self.translations[index].instructions[..execution.count];
        let words: Vec<u32> = ran.iter().map(|(_, word)| *word).collect();
        let last_pc = ran.last().map_or(execution.pc, |(address, _)| *address);
        self.symbols.label(execution.pc, &words, last_pc)
    }

    fn finish(mut self) -> Report {
        self.end_translation();
        if let Some(pending) = self.pending.take() {
            self.count(pending);
        }
        // A kernel run the trace ends in never returned to a user (system off).
        if let Some(episode) = self.episode.take() {
            self.report.unlabelled_instructions += episode.instructions;
        }
        for label in &mut self.report.labels {
            label.shown = label.episodes.len() >= MIN_EPISODES;
            for path in &mut label.paths {
                path.shown = label.shown && path.episodes.len() >= MIN_EPISODES;
            }
            name_paths(&mut label.paths);
        }
        self.report
    }
}

/// Names the shown `paths` of one label apart by kernel functions each visits and others do
/// not: greedily the function that the most of the remaining other paths do not visit (the
/// earliest on a tie), until none remains or no function rules more out. A path that visits no
/// function the others lack keeps the plain label; paths left with the same name (the same
/// functions, with a loop run more often) are numbered in order of instructions.
fn name_paths(paths: &mut [KernelPath]) {
    let shown: Vec<usize> = (0..paths.len()).filter(|&i| paths[i].shown).collect();
    let mut names = Vec::with_capacity(shown.len());
    for &path in &shown {
        let mut others: Vec<usize> = shown.iter().copied().filter(|&i| i != path).collect();
        let mut chosen: Vec<&str> = Vec::new();
        while !others.is_empty() {
            let best = paths[path]
                .functions
                .iter()
                .map(|name| {
                    let rules_out = others
                        .iter()
                        .filter(|&&other| !paths[other].functions.contains(name))
                        .count();
                    (name, rules_out)
                })
                .filter(|&(_, rules_out)| rules_out > 0)
                .min_by_key(|&(_, rules_out)| std::cmp::Reverse(rules_out));
            let Some((name, _)) = best else {
                break;
            };
            chosen.push(name);
            others.retain(|&other| paths[other].functions.contains(name));
        }
        names.push(if chosen.is_empty() {
            String::new()
        } else {
            format!(" via {}", chosen.join(" + "))
        });
    }
    let mut order: Vec<usize> = (0..shown.len()).collect();
    order.sort_by_key(|&index| median(&paths[shown[index]].episodes));
    let mut numbered: HashMap<&str, usize> = HashMap::new();
    for &index in &order {
        let name = names[index].as_str();
        let suffix = if names.iter().filter(|other| *other == name).count() > 1 {
            let n = numbered.entry(name).or_default();
            *n += 1;
            format!("{name} #{n}")
        } else {
            name.to_string()
        };
        paths[shown[index]].suffix = suffix;
    }
}

/// `0x40100004:  d5384253  mrs      x19, currentel` → (address, encoding).
fn parse_instruction(line: &str) -> Option<(u64, u32)> {
    let (address, rest) = line.strip_prefix("0x")?.split_once(':')?;
    let address = u64::from_str_radix(address, 16).ok()?;
    let word = rest.split_whitespace().next()?;
    let word = u32::from_str_radix(word, 16).ok()?;
    Some((address, word))
}

/// `0: 0x7fc960000240 [0000000000000000/0000000040100004/00000061/ff020200] sym` (after
/// "Trace ") → (host pointer, pc).
fn parse_execution(rest: &str) -> Option<(u64, u64, u32)> {
    let (_cpu, rest) = rest.split_once(": ")?;
    let (host, rest) = rest.split_once(" [")?;
    let (fields, _symbol) = rest.split_once(']')?;
    let mut fields = fields.split('/');
    let _cs_base = fields.next()?;
    let pc = u64::from_str_radix(fields.next()?, 16).ok()?;
    let flags = u32::from_str_radix(fields.next()?, 16).ok()?;
    Some((parse_hex(host)?, pc, flags))
}

/// Whether a block's TB flags say it runs at EL2: QEMU 7.2's `TBFLAG_ANY.MMUIDX` (bits 4..8)
/// is then `E20_2`, `E20_2_PAN` or `E2` (3, 5, 6). Only a cross-check of the classification by
/// address, which does not depend on QEMU's internals.
fn runs_at_el2(flags: u32) -> bool {
    matches!((flags >> 4) & 0xf, 3 | 5 | 6)
}

/// `0x7fc9600aa280 [0000000000203d00] sym` (after "Stopped execution of TB chain before ") →
/// (host pointer, pc).
fn parse_stopped(rest: &str) -> Option<(u64, u64)> {
    let (host, rest) = rest.split_once(" [")?;
    let (pc, _) = rest.split_once(']')?;
    Some((parse_hex(host)?, u64::from_str_radix(pc, 16).ok()?))
}

/// Hexadecimal with or without `0x`.
fn parse_hex(text: &str) -> Option<u64> {
    u64::from_str_radix(text.strip_prefix("0x").unwrap_or(text), 16).ok()
}

// ---------------------------------------------------------------------------------------------
// The report

/// The lower median (an instruction count that occurred) of non-empty `values`.
fn median(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted[(sorted.len() - 1) / 2]
}

impl Report {
    /// The figure lines: per shown label, one per shown kernel path (the label's median when
    /// no path was frequent enough).
    fn figures(&self) -> Vec<(String, u64)> {
        let mut figures = Vec::new();
        for label in self.labels.iter().filter(|label| label.shown) {
            let mut paths: Vec<&KernelPath> =
                label.paths.iter().filter(|path| path.shown).collect();
            paths.sort_by_key(|path| median(&path.episodes));
            if paths.is_empty() {
                figures.push((label.name.clone(), median(&label.episodes)));
            }
            for path in paths {
                figures.push((
                    format!("{}{}", label.name, path.suffix),
                    median(&path.episodes),
                ));
            }
        }
        figures
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "trace {}: kernel instructions per system call (QEMU -icount shift=0 exec trace)\n\
             \x20 An episode runs from the exception entry after a user's svc to the eret that \
             leaves the kernel, both\n\
             \x20 included. It is labelled by the user function that trapped and split by the \
             kernel path it took;\n\
             \x20 a path is named by kernel functions it visits and the label's other paths do \
             not. Timer interrupts\n\
             \x20 count as episodes of whatever they interrupted: rare paths, left out (like \
             any label or path seen\n\
             \x20 < {MIN_EPISODES} times) but included in a label's median/min/max.",
            self.title
        )?;
        writeln!(
            f,
            "  {} blocks, {} kernel + {} user instructions ({} kernel outside episodes: boot, \
             shutdown);\n  {} MB of trace, QEMU ran {:.1} s, reading it took {:.1} s",
            self.blocks,
            self.kernel_instructions,
            self.user_instructions,
            self.unlabelled_instructions,
            self.trace_bytes / 1_000_000,
            self.run_time.as_secs_f64(),
            self.parse_time.as_secs_f64()
        )?;
        if self.unknown_blocks > 0 {
            writeln!(
                f,
                "  warning: {} block executions had no logged translation (counted as 0)",
                self.unknown_blocks
            )?;
        }
        if self.misplaced_blocks > 0 {
            writeln!(
                f,
                "  warning: {} block executions ran at another exception level than their \
                 address says (kernel = inside the kernel ELF's segments = EL2)",
                self.misplaced_blocks
            )?;
        }
        let shown: Vec<&Label> = self.labels.iter().filter(|label| label.shown).collect();
        if shown.is_empty() {
            return writeln!(f, "  (no label with {MIN_EPISODES} episodes)");
        }
        writeln!(f, "  episodes  median     min     max  label / kernel path")?;
        let row = |f: &mut std::fmt::Formatter<'_>, values: &[u64], name: &str| {
            writeln!(
                f,
                "  {:>8}  {:>6}  {:>6}  {:>6}  {name}",
                values.len(),
                median(values),
                values.iter().min().copied().unwrap_or(0),
                values.iter().max().copied().unwrap_or(0),
            )
        };
        for label in &shown {
            row(f, &label.episodes, &label.name)?;
            let mut paths: Vec<&KernelPath> =
                label.paths.iter().filter(|path| path.shown).collect();
            paths.sort_by_key(|path| median(&path.episodes));
            let single = paths.len() == 1;
            for path in paths {
                let name = match path.suffix.strip_prefix(' ') {
                    _ if single => "one kernel path".to_string(),
                    None => "base path (no kernel function the others lack)".to_string(),
                    Some(suffix) => suffix.to_string(),
                };
                row(f, &path.episodes, &format!("  {name}"))?;
            }
        }
        for (name, instructions) in self.figures() {
            writeln!(f, "trace {name} kernel: {instructions} instructions")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Demangling (rustc's legacy `_ZN...E` and v0 `_R...` schemes), without the hashes

/// `symbol` demangled as `rustc-demangle`'s alternate form would print it, or unchanged when
/// it is not a Rust symbol this understands.
fn demangle(symbol: &str) -> String {
    let demangled = if let Some(rest) = symbol.strip_prefix("_ZN") {
        demangle_legacy(rest)
    } else if let Some(rest) = symbol.strip_prefix("_R") {
        V0::demangle(rest)
    } else {
        None
    };
    demangled.unwrap_or_else(|| symbol.to_string())
}

/// The legacy scheme after `_ZN`: length-prefixed path elements up to `E`, the last one a
/// `h<16 hex digits>` hash, `$..$` escapes and `..` for `::`.
fn demangle_legacy(mut rest: &str) -> Option<String> {
    let mut elements = Vec::new();
    loop {
        // Anything after `E` is a suffix like `.llvm.1234`.
        if rest.starts_with('E') {
            break;
        }
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let length: usize = rest[..digits].parse().ok()?;
        let element = rest.get(digits..digits + length)?;
        elements.push(element);
        rest = &rest[digits + length..];
    }
    if let Some(last) = elements.last()
        && last.len() == 17
        && last.starts_with('h')
        && last[1..].bytes().all(|byte| byte.is_ascii_hexdigit())
    {
        elements.pop();
    }
    if elements.is_empty() {
        return None;
    }
    let mut out = String::new();
    for (index, element) in elements.iter().enumerate() {
        if index > 0 {
            out.push_str("::");
        }
        // An element that begins with an escape is written `_$...`.
        let mut element = match element.strip_prefix('_') {
            Some(rest) if rest.starts_with('$') => rest,
            _ => element,
        };
        while !element.is_empty() {
            if let Some(after) = element.strip_prefix("..") {
                out.push_str("::");
                element = after;
            } else if let Some(after) = element.strip_prefix('.') {
                out.push('.');
                element = after;
            } else if let Some(after) = element.strip_prefix('$') {
                let (escape, after) = after.split_once('$')?;
                out.push(legacy_escape(escape)?);
                element = after;
            } else {
                let plain = element.find(['.', '$']).unwrap_or(element.len());
                out.push_str(&element[..plain]);
                element = &element[plain..];
            }
        }
    }
    Some(out)
}

fn legacy_escape(escape: &str) -> Option<char> {
    Some(match escape {
        "SP" => '@',
        "BP" => '*',
        "RF" => '&',
        "LT" => '<',
        "GT" => '>',
        "LP" => '(',
        "RP" => ')',
        "C" => ',',
        _ => char::from_u32(u32::from_str_radix(escape.strip_prefix('u')?, 16).ok()?)?,
    })
}

/// A reader of the v0 scheme (RFC 2603), printing paths without crate hashes.
struct V0<'a> {
    text: &'a [u8],
    position: usize,
    depth: u32,
    /// Lifetimes bound by the `for<..>` binders around the current position.
    bound_lifetimes: u64,
    out: String,
}

impl<'a> V0<'a> {
    /// Backreferences may nest; a symbol that nests deeper than this is not demangled.
    const MAX_DEPTH: u32 = 100;

    fn demangle(rest: &'a str) -> Option<String> {
        let mut reader = Self {
            text: rest.as_bytes(),
            position: 0,
            depth: 0,
            bound_lifetimes: 0,
            out: String::new(),
        };
        // An optional encoding version.
        if reader.peek()?.is_ascii_digit() {
            return None;
        }
        reader.path(true)?;
        // An instantiating crate and vendor suffixes may follow; they are not printed.
        Some(reader.out)
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.position).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.position += 1;
        Some(byte)
    }

    fn eat(&mut self, byte: u8) -> bool {
        let ate = self.peek() == Some(byte);
        if ate {
            self.position += 1;
        }
        ate
    }

    /// `{0-9a-zA-Z} _`: `_` alone is 0, else the base-62 value plus one.
    fn base62(&mut self) -> Option<u64> {
        if self.eat(b'_') {
            return Some(0);
        }
        let mut value: u64 = 0;
        loop {
            let digit = match self.next()? {
                byte @ b'0'..=b'9' => byte - b'0',
                byte @ b'a'..=b'z' => byte - b'a' + 10,
                byte @ b'A'..=b'Z' => byte - b'A' + 36,
                b'_' => return value.checked_add(1),
                _ => return None,
            };
            value = value.checked_mul(62)?.checked_add(u64::from(digit))?;
        }
    }

    /// `[<tag> base62]`: 0 when absent, else the number plus one.
    fn optional_number(&mut self, tag: u8) -> Option<u64> {
        if self.eat(tag) {
            self.base62()?.checked_add(1)
        } else {
            Some(0)
        }
    }

    /// `0` or a decimal number without leading zeros (`00` is two numbers).
    fn decimal(&mut self) -> Option<usize> {
        if self.eat(b'0') {
            return Some(0);
        }
        let start = self.position;
        while self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
            self.position += 1;
        }
        std::str::from_utf8(&self.text[start..self.position])
            .ok()?
            .parse()
            .ok()
    }

    /// `[u] <decimal> [_] <bytes>`; punycode (`u`) is not decoded.
    fn name(&mut self) -> Option<&'a str> {
        if self.eat(b'u') {
            return None;
        }
        let length = self.decimal()?;
        self.eat(b'_');
        let start = self.position;
        let end = start.checked_add(length)?;
        let bytes = self.text.get(start..end)?;
        self.position = end;
        std::str::from_utf8(bytes).ok()
    }

    /// Runs `parse` at the position a backreference points to, then continues after it.
    fn backref(&mut self, parse: impl FnOnce(&mut Self) -> Option<()>) -> Option<()> {
        let at = self.position - 1;
        let target = usize::try_from(self.base62()?).ok()?;
        if target >= at || self.depth >= Self::MAX_DEPTH {
            return None;
        }
        let resume = self.position;
        self.position = target;
        self.depth += 1;
        parse(self)?;
        self.depth -= 1;
        self.position = resume;
        Some(())
    }

    /// Parses without printing.
    fn skip(&mut self, parse: impl FnOnce(&mut Self) -> Option<()>) -> Option<()> {
        let mark = self.out.len();
        parse(self)?;
        self.out.truncate(mark);
        Some(())
    }

    /// `in_value`: generic arguments print as `::<..>` (an expression path), else `<..>`.
    fn path(&mut self, in_value: bool) -> Option<()> {
        match self.next()? {
            b'C' => {
                self.optional_number(b's')?;
                let name = self.name()?;
                self.out.push_str(name);
            }
            b'N' => {
                let namespace = self.next()?;
                self.path(in_value)?;
                let disambiguator = self.optional_number(b's')?;
                let name = self.name()?;
                if namespace.is_ascii_uppercase() {
                    let kind = match namespace {
                        b'C' => "closure".to_string(),
                        b'S' => "shim".to_string(),
                        other => char::from(other).to_string(),
                    };
                    let _ = write!(self.out, "::{{{kind}");
                    if !name.is_empty() {
                        let _ = write!(self.out, ":{name}");
                    }
                    let _ = write!(self.out, "#{disambiguator}}}");
                } else if !name.is_empty() {
                    self.out.push_str("::");
                    self.out.push_str(name);
                }
            }
            b'M' => {
                self.optional_number(b's')?;
                self.skip(|reader| reader.path(false))?;
                self.out.push('<');
                self.type_()?;
                self.out.push('>');
            }
            b'X' => {
                self.optional_number(b's')?;
                self.skip(|reader| reader.path(false))?;
                self.trait_impl()?;
            }
            b'Y' => self.trait_impl()?,
            b'I' => {
                self.path(in_value)?;
                if in_value {
                    self.out.push_str("::");
                }
                self.out.push('<');
                let mut first = true;
                while !self.eat(b'E') {
                    if !first {
                        self.out.push_str(", ");
                    }
                    first = false;
                    self.generic_arg()?;
                }
                self.out.push('>');
            }
            b'B' => self.backref(|reader| reader.path(in_value))?,
            _ => return None,
        }
        Some(())
    }

    /// `<type> <path>` → `<type as path>`.
    fn trait_impl(&mut self) -> Option<()> {
        self.out.push('<');
        self.type_()?;
        self.out.push_str(" as ");
        self.path(false)?;
        self.out.push('>');
        Some(())
    }

    /// After `L`: `'_` when erased, else the name of a bound lifetime (`'a`, `'b`, ..).
    fn lifetime(&mut self) -> Option<()> {
        let index = self.base62()?;
        if index == 0 {
            self.out.push_str("'_");
        } else {
            let depth = self.bound_lifetimes.checked_sub(index)?;
            self.lifetime_name(depth);
        }
        Some(())
    }

    /// `[G base62]`: prints `for<'a, ..> ` and binds that many lifetimes; returns how many.
    fn binder(&mut self) -> Option<u64> {
        let count = self.optional_number(b'G')?;
        if count > 0 {
            self.out.push_str("for<");
            for index in 0..count {
                if index > 0 {
                    self.out.push_str(", ");
                }
                self.bound_lifetimes += 1;
                self.lifetime_name(self.bound_lifetimes - 1);
            }
            self.out.push_str("> ");
        }
        Some(count)
    }

    fn lifetime_name(&mut self, depth: u64) {
        match u8::try_from(depth).ok().filter(|depth| *depth < 26) {
            Some(depth) => {
                self.out.push('\'');
                self.out.push(char::from(b'a' + depth));
            }
            None => {
                let _ = write!(self.out, "'_{depth}");
            }
        }
    }

    fn generic_arg(&mut self) -> Option<()> {
        if self.eat(b'L') {
            self.lifetime()
        } else if self.eat(b'K') {
            self.constant()
        } else {
            self.type_()
        }
    }

    fn basic_type(tag: u8) -> Option<&'static str> {
        Some(match tag {
            b'a' => "i8",
            b'b' => "bool",
            b'c' => "char",
            b'd' => "f64",
            b'e' => "str",
            b'f' => "f32",
            b'h' => "u8",
            b'i' => "isize",
            b'j' => "usize",
            b'l' => "i32",
            b'm' => "u32",
            b'n' => "i128",
            b'o' => "u128",
            b's' => "i16",
            b't' => "u16",
            b'u' => "()",
            b'v' => "...",
            b'x' => "i64",
            b'y' => "u64",
            b'z' => "!",
            b'p' => "_",
            _ => return None,
        })
    }

    fn type_(&mut self) -> Option<()> {
        let tag = self.next()?;
        if let Some(basic) = Self::basic_type(tag) {
            self.out.push_str(basic);
            return Some(());
        }
        match tag {
            b'R' | b'Q' => {
                self.out.push('&');
                if self.eat(b'L') {
                    let mark = self.out.len();
                    self.lifetime()?;
                    if self.out[mark..] == *"'_" {
                        self.out.truncate(mark);
                    } else {
                        self.out.push(' ');
                    }
                }
                if tag == b'Q' {
                    self.out.push_str("mut ");
                }
                self.type_()?;
            }
            b'P' => {
                self.out.push_str("*const ");
                self.type_()?;
            }
            b'O' => {
                self.out.push_str("*mut ");
                self.type_()?;
            }
            b'A' | b'S' => {
                self.out.push('[');
                self.type_()?;
                if tag == b'A' {
                    self.out.push_str("; ");
                    self.constant()?;
                }
                self.out.push(']');
            }
            b'T' => {
                self.out.push('(');
                let mut count = 0;
                while !self.eat(b'E') {
                    if count > 0 {
                        self.out.push_str(", ");
                    }
                    self.type_()?;
                    count += 1;
                }
                if count == 1 {
                    self.out.push(',');
                }
                self.out.push(')');
            }
            b'F' => self.fn_type()?,
            b'D' => {
                self.out.push_str("dyn ");
                let bound = self.binder()?;
                let mut first = true;
                while !self.eat(b'E') {
                    if !first {
                        self.out.push_str(" + ");
                    }
                    first = false;
                    self.dyn_trait()?;
                }
                if !self.eat(b'L') {
                    return None;
                }
                let mark = self.out.len();
                self.out.push_str(" + ");
                self.lifetime()?;
                if self.out[mark..] == *" + '_" {
                    self.out.truncate(mark);
                }
                self.bound_lifetimes -= bound;
            }
            b'B' => self.backref(Self::type_)?,
            _ => {
                // A named type: a path.
                self.position -= 1;
                self.path(false)?;
            }
        }
        Some(())
    }

    /// A trait of a `dyn` type: its associated-type bindings join its generic arguments.
    fn dyn_trait(&mut self) -> Option<()> {
        let open = self.path_open_generics()?;
        let mut open = open;
        while self.eat(b'p') {
            self.out.push_str(if open { ", " } else { "<" });
            open = true;
            let name = self.name()?;
            let _ = write!(self.out, "{name} = ");
            self.type_()?;
        }
        if open {
            self.out.push('>');
        }
        Some(())
    }

    /// A type path whose final generic arguments are left open (no `>`); returns whether
    /// there were any.
    fn path_open_generics(&mut self) -> Option<bool> {
        if self.eat(b'B') {
            let mut open = false;
            self.backref(|reader| {
                open = reader.path_open_generics()?;
                Some(())
            })?;
            return Some(open);
        }
        if !self.eat(b'I') {
            self.path(false)?;
            return Some(false);
        }
        self.path(false)?;
        self.out.push('<');
        let mut first = true;
        while !self.eat(b'E') {
            if !first {
                self.out.push_str(", ");
            }
            first = false;
            self.generic_arg()?;
        }
        Some(true)
    }

    fn fn_type(&mut self) -> Option<()> {
        let bound = self.binder()?;
        if self.eat(b'U') {
            self.out.push_str("unsafe ");
        }
        if self.eat(b'K') {
            if self.eat(b'C') {
                self.out.push_str("extern \"C\" ");
            } else {
                let abi = self.name()?.replace('_', "-");
                let _ = write!(self.out, "extern \"{abi}\" ");
            }
        }
        self.out.push_str("fn(");
        let mut first = true;
        while !self.eat(b'E') {
            if !first {
                self.out.push_str(", ");
            }
            first = false;
            self.type_()?;
        }
        self.out.push(')');
        if !self.eat(b'u') {
            self.out.push_str(" -> ");
            self.type_()?;
        }
        self.bound_lifetimes -= bound;
        Some(())
    }

    fn constant(&mut self) -> Option<()> {
        match self.next()? {
            b'p' => self.out.push('_'),
            b'B' => self.backref(Self::constant)?,
            tag => {
                let negative = self.eat(b'n');
                let start = self.position;
                while self.peek().is_some_and(|byte| byte.is_ascii_hexdigit()) {
                    self.position += 1;
                }
                let digits = std::str::from_utf8(&self.text[start..self.position]).ok()?;
                if !self.eat(b'_') {
                    return None;
                }
                let value = if digits.is_empty() {
                    0
                } else {
                    u128::from_str_radix(digits, 16).ok()?
                };
                match tag {
                    b'b' => self.out.push_str(if value == 0 { "false" } else { "true" }),
                    b'c' => self.out.push(char::from_u32(u32::try_from(value).ok()?)?),
                    _ if Self::basic_type(tag).is_some() => {
                        if negative {
                            self.out.push('-');
                        }
                        let _ = write!(self.out, "{value}");
                    }
                    _ => return None,
                }
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kernel at 0x4010_0000.. and one server with `ipc_bench::round_trip` at 0x20_0100 and
    /// `ipc_bench::serve` at 0x20_0200, whose code is the words used below.
    fn symbols() -> Symbols {
        let mut code = vec![0u8; 0x300];
        for (offset, word) in [
            (0x100, 0xd280_0020u32),
            (0x104, 0xd400_0001),
            (0x200, 0xd280_0040),
            (0x204, 0xd400_0001),
        ] {
            code[offset..offset + 4].copy_from_slice(&u32::to_le_bytes(word));
        }
        let server = Elf {
            functions: vec![
                (0x20_0100..0x20_0180, "ipc_bench::round_trip".into()),
                (0x20_0200..0x20_0280, "ipc_bench::serve".into()),
            ],
            code: vec![(0x20_0000, code)],
        };
        // A second server at the same addresses with other code: never matches.
        let other = Elf {
            functions: vec![(0x20_0000..0x20_1000, "supervisor::main".into())],
            code: vec![(0x20_0000, vec![0xff; 0x1000])],
        };
        let kernel_functions = Elf {
            functions: vec![
                (0x4010_0000..0x4010_0800, "kernel_main".into()),
                (0x4010_0800..0x4010_0810, "exception_vectors".into()),
                (0x4010_0810..0x4010_0820, "kernel::trap::eret_path".into()),
                (0x4010_0820..0x4010_0900, "kernel::trap::reply_path".into()),
                (0x4010_0900..0x4010_0a00, "kernel::trap::slow_path".into()),
            ],
            code: Vec::new(),
        };
        Symbols {
            // Two segments, as a kernel ELF has (code, then data).
            kernel: vec![0x4010_0000..0x4018_0000, 0x4018_0000..0x4020_0000],
            kernel_functions,
            servers: vec![other, server],
        }
    }

    /// The trace of two round trips: the client's block at 0x200100 (2 instructions, ending in
    /// `svc`) enters the kernel (vector block of 3, then 2), which returns to the server at
    /// 0x200200 (2 instructions, `svc`), whose kernel run (3, then 4) returns to the client.
    /// The second time round the kernel's 4-instruction block is logged but stopped before
    /// it ran, and the client's block is a fresh 1-instruction translation (icount budget).
    const TRACE: &str = "\
----------------
IN: kernel_main
0x40100000:  d5034fdf  msr      daifset, #0xf
0x40100004:  d65f03e0  eret

Trace 0: 0x7f0000000100 [0000000000000000/0000000040100000/00000061/ff020200] kernel_main
----------------
IN: 
0x00200100:  d2800020  movz     x0, #0x1
0x00200104:  d4000001  svc      #0

Trace 0: 0x7f0000000200 [0000000000000000/0000000000200100/00000101/ff020200] 
----------------
IN: vector
0x40100800:  d10443ff  sub      sp, sp, #0x110
0x40100804:  a90007e0  stp      x0, x1, [sp]
0x40100808:  14000002  b        #0x40100810

Trace 0: 0x7f0000000300 [0000000000000000/0000000040100800/00000061/ff020200] vector
----------------
IN: eret_path
0x40100810:  d2800000  mov      x0, #0
0x40100814:  d69f03e0  eret

Trace 0: 0x7f0000000400 [0000000000000000/0000000040100810/00000061/ff020200] eret_path
----------------
IN: 
0x00200200:  d2800040  movz     x0, #0x2
0x00200204:  d4000001  svc      #0

Trace 0: 0x7f0000000500 [0000000000000000/0000000000200200/00000101/ff020200] 
Trace 0: 0x7f0000000300 [0000000000000000/0000000040100800/00000061/ff020200] vector
----------------
IN: reply_path
0x40100820:  d2800000  mov      x0, #0
0x40100824:  d2800001  mov      x1, #0
0x40100828:  d2800002  mov      x2, #0
0x4010082c:  d69f03e0  eret

Trace 0: 0x7f0000000600 [0000000000000000/0000000040100820/00000061/ff020200] reply_path
Trace 0: 0x7f0000000200 [0000000000000000/0000000000200100/00000101/ff020200] 
Trace 0: 0x7f0000000300 [0000000000000000/0000000040100800/00000061/ff020200] vector
Trace 0: 0x7f0000000400 [0000000000000000/0000000040100810/00000061/ff020200] eret_path
Trace 0: 0x7f0000000500 [0000000000000000/0000000000200200/00000101/ff020200] 
Trace 0: 0x7f0000000300 [0000000000000000/0000000040100800/00000061/ff020200] vector
Trace 0: 0x7f0000000600 [0000000000000000/0000000040100820/00000061/ff020200] reply_path
Stopped execution of TB chain before 0x7f0000000600 [0000000040100820] reply_path
Trace 0: 0x7f0000000600 [0000000000000000/0000000040100820/00000061/ff020200] reply_path
----------------
IN: 
0x00200100:  d2800020  movz     x0, #0x1

Trace 0: 0x7f0000000700 [0000000000000000/0000000000200100/00000101/ff020201] 
Trace 0: 0x7f0000000200 [0000000000000000/0000000000200100/00000101/ff020200] 
";

    fn run(trace: &str) -> Report {
        let symbols = symbols();
        let mut tracer = Tracer::new(&symbols);
        for line in trace.split_inclusive('\n') {
            tracer.line(line);
        }
        tracer.finish()
    }

    fn episodes(report: &Report) -> Vec<(&str, Vec<u64>)> {
        report
            .labels
            .iter()
            .map(|label| (label.name.as_str(), label.episodes.clone()))
            .collect()
    }

    #[test]
    fn parses_the_line_shapes_of_qemu_7_2() {
        assert_eq!(
            parse_instruction("0x40100004:  d5384253  mrs      x19, currentel"),
            Some((0x4010_0004, 0xd538_4253))
        );
        assert_eq!(parse_instruction(""), None);
        assert_eq!(parse_instruction("IN: kernel_main"), None);
        assert_eq!(
            parse_execution(
                "0: 0x7fc960000240 [0000000000000000/0000000040100004/00000061/ff020200] "
            ),
            Some((0x7fc9_6000_0240, 0x4010_0004, 0x61))
        );
        assert!(runs_at_el2(0x61));
        assert!(runs_at_el2(0x261));
        assert!(!runs_at_el2(0x101));
        assert!(!runs_at_el2(0x121));
        assert_eq!(
            parse_stopped("0x7fc9600aa280 [0000000000203d00] "),
            Some((0x7fc9_600a_a280, 0x20_3d00))
        );
    }

    #[test]
    fn counts_blocks_by_translation_and_drops_the_stopped_one() {
        let report = run(TRACE);
        // Executed: boot 2; client 2, kernel 3+2; server 2, kernel 3+4; client 2, kernel 3+2;
        // server 2, kernel 3 + (4 stopped, then 4); client 1 (budget), then 2.
        assert_eq!(report.blocks, 15);
        assert_eq!(report.unknown_blocks, 0);
        assert_eq!(report.misplaced_blocks, 0);
        assert_eq!(report.kernel_instructions, 2 + 5 + 7 + 5 + 7);
        assert_eq!(report.user_instructions, 2 + 2 + 2 + 2 + 1 + 2);
        assert_eq!(report.unlabelled_instructions, 2);
    }

    #[test]
    fn labels_episodes_by_the_trapping_function_in_the_matching_elf() {
        let report = run(TRACE);
        assert_eq!(
            episodes(&report),
            vec![
                ("ipc_bench::round_trip", vec![5, 5]),
                ("ipc_bench::serve", vec![7, 7]),
            ]
        );
    }

    #[test]
    fn a_block_rewound_for_io_counts_up_to_the_access_only() {
        let trace = "\
IN: 
0x00200100:  d2800020  movz     x0, #0x1
0x00200104:  d4000001  svc      #0

Trace 0: 0x10 [0000000000000000/0000000000200100/00000101/ff020200] 
IN: 
0x40100800:  d10443ff  sub      sp, sp, #0x110
0x40100804:  b9400000  ldr      w0, [x0]
0x40100808:  d69f03e0  eret

Trace 0: 0x20 [0000000000000000/0000000040100800/00000061/ff020200] 
cpu_io_recompile: rewound execution of TB to 0000000040100804
IN: 
0x40100804:  b9400000  ldr      w0, [x0]

Trace 0: 0x30 [0000000000000000/0000000040100804/00000061/ff038201] 
IN: 
0x40100808:  d69f03e0  eret

Trace 0: 0x40 [0000000000000000/0000000040100808/00000061/ff020200] 
Trace 0: 0x10 [0000000000000000/0000000000200100/00000101/ff020200] 
";
        let report = run(trace);
        assert_eq!(episodes(&report), vec![("ipc_bench::round_trip", vec![3])]);
    }

    #[test]
    fn classifies_by_the_kernel_segments() {
        let symbols = symbols();
        assert!(symbols.is_kernel(0x4010_0000));
        assert!(symbols.is_kernel(0x401f_fffc));
        assert!(!symbols.is_kernel(0x4020_0000));
        assert!(!symbols.is_kernel(0x20_0100));
    }

    #[test]
    fn labels_fall_back_to_the_address_or_name_every_candidate() {
        let symbols = symbols();
        // Code no ELF holds (a guest): the address.
        assert_eq!(
            symbols.label(0x20_0100, &[0x1234_5678], 0x20_0100),
            "0x200100"
        );
        // Code unknown: every ELF with a function there.
        assert_eq!(
            symbols.label(0x20_0104, &[], 0x20_0104),
            "supervisor::main | ipc_bench::round_trip"
        );
        assert_eq!(
            symbols.label(0x20_0100, &[0xd280_0020, 0xd400_0001], 0x20_0104),
            "ipc_bench::round_trip"
        );
    }

    #[test]
    fn median_is_the_lower_middle_value() {
        assert_eq!(median(&[5]), 5);
        assert_eq!(median(&[9, 1, 5]), 5);
        assert_eq!(median(&[206, 206, 1500, 206, 214, 214]), 206);
        assert_eq!(median(&[4, 3, 2, 1]), 2);
    }

    #[test]
    fn splits_a_label_by_the_kernel_path_and_names_the_paths_apart() {
        // The client traps twice: once the kernel goes vector → eret_path, once vector →
        // slow_path → eret_path; the server's blocks end each kernel run.
        let trace = "\
IN: 
0x00200100:  d2800020  movz     x0, #0x1
0x00200104:  d4000001  svc      #0

Trace 0: 0x10 [0000000000000000/0000000000200100/00000101/ff020200] 
IN: 
0x40100800:  d10443ff  sub      sp, sp, #0x110
0x40100804:  a90007e0  stp      x0, x1, [sp]

Trace 0: 0x20 [0000000000000000/0000000040100800/00000061/ff020200] 
IN: 
0x40100810:  d69f03e0  eret

Trace 0: 0x30 [0000000000000000/0000000040100810/00000061/ff020200] 
IN: 
0x00200200:  d2800040  movz     x0, #0x2

Trace 0: 0x40 [0000000000000000/0000000000200200/00000101/ff020200] 
Trace 0: 0x10 [0000000000000000/0000000000200100/00000101/ff020200] 
Trace 0: 0x20 [0000000000000000/0000000040100800/00000061/ff020200] 
IN: 
0x40100900:  d2800000  mov      x0, #0
0x40100904:  d2800000  mov      x0, #0
0x40100908:  d2800000  mov      x0, #0

Trace 0: 0x50 [0000000000000000/0000000040100900/00000061/ff020200] 
Trace 0: 0x30 [0000000000000000/0000000040100810/00000061/ff020200] 
Trace 0: 0x40 [0000000000000000/0000000000200200/00000101/ff020200] 
";
        let mut report = run(trace);
        assert_eq!(
            episodes(&report),
            vec![("ipc_bench::round_trip", vec![3, 6])]
        );
        let label = &mut report.labels[0];
        let functions: Vec<&[String]> = label.paths.iter().map(|p| &p.functions[..]).collect();
        assert_eq!(
            functions,
            vec![
                &[
                    "exception_vectors".to_string(),
                    "kernel::trap::eret_path".into()
                ][..],
                &[
                    "exception_vectors".to_string(),
                    "kernel::trap::slow_path".into(),
                    "kernel::trap::eret_path".into()
                ][..],
            ]
        );
        label.shown = true;
        for path in &mut label.paths {
            path.shown = true;
        }
        name_paths(&mut label.paths);
        let figures: Vec<String> = report
            .figures()
            .into_iter()
            .map(|(name, n)| format!("{name}: {n}"))
            .collect();
        assert_eq!(
            figures,
            vec![
                "ipc_bench::round_trip: 3",
                "ipc_bench::round_trip via kernel::trap::slow_path: 6",
            ]
        );
    }

    #[test]
    fn paths_are_named_by_functions_the_others_do_not_visit() {
        let path = |functions: &[&str], instructions: u64| KernelPath {
            functions: functions.iter().map(|name| name.to_string()).collect(),
            episodes: vec![instructions],
            shown: true,
            suffix: String::new(),
        };
        let mut paths = vec![
            path(&["a", "b"], 20),
            path(&["a", "c", "b"], 30),
            path(&["a", "c", "d", "b"], 40),
            path(&["a", "b"], 10),
            KernelPath {
                shown: false,
                ..path(&["a", "x"], 1)
            },
        ];
        name_paths(&mut paths);
        let suffixes: Vec<&str> = paths.iter().map(|path| path.suffix.as_str()).collect();
        assert_eq!(suffixes, vec![" #2", " via c", " via d", " #1", ""]);
    }

    #[test]
    fn report_lines_are_figures_bench_accepts() {
        let mut report = run(TRACE);
        for label in &mut report.labels {
            label.shown = true;
        }
        let text = report.to_string();
        let figures = super::super::figures(&text);
        assert_eq!(
            figures,
            vec![
                "trace ipc_bench::round_trip kernel: 5 instructions",
                "trace ipc_bench::serve kernel: 7 instructions",
            ]
        );
    }

    #[test]
    fn demangles_legacy_and_v0_symbols() {
        for (mangled, demangled) in [
            (
                "_ZN12hello_client4main17h7436312e3f346ad6E",
                "hello_client::main",
            ),
            (
                "_ZN100_$LT$core..iter..adapters..take..Take$LT$I$GT$$u20$as$u20$core..iter..\
                 traits..iterator..Iterator$GT$3nth17h7001e052934ac640E",
                "<core::iter::adapters::take::Take<I> as core::iter::traits::iterator::\
                 Iterator>::nth",
            ),
            (
                "_ZN11kernel_core6system3ipc45_$LT$impl$u20$kernel_core..system..System$GT$\
                 8recv_ipc17h3d0be55a4899a371E",
                "kernel_core::system::ipc::<impl kernel_core::system::System>::recv_ipc",
            ),
            (
                "_ZN9ipc_bench5serve17h0123456789abcdefE.llvm.42",
                "ipc_bench::serve",
            ),
            (
                "_RNvMsa_NtCs3g5Gb6bJpu0_4core3fmtNtB5_9Formatter3pad",
                "<core::fmt::Formatter>::pad",
            ),
            (
                "_RNvXs0_NtNtCs3g5Gb6bJpu0_4core3fmt8buildersNtB5_10PadAdapterNtB7_5Write9\
                 write_str",
                "<core::fmt::builders::PadAdapter as core::fmt::Write>::write_str",
            ),
            (
                "_RNvXs1i_NtCs3g5Gb6bJpu0_4core3fmtReNtB6_7Display3fmtB8_",
                "<&str as core::fmt::Display>::fmt",
            ),
            (
                "_RNvNvMsa_NtCs3g5Gb6bJpu0_4core3fmtNtB7_9Formatter12pad_integral12write_prefix",
                "<core::fmt::Formatter>::pad_integral::write_prefix",
            ),
            (
                "_RNvCsfLfy6EI15iL_7___rustc17rust_begin_unwind",
                "__rustc::rust_begin_unwind",
            ),
            (
                "_RNvXs0_NtNtCs7OxSQD10jZQ_18tracing_subscriber3fmt4timeFG0_QL1_INtNtB7_6format6\
                 WriterL0_EEINtNtCsgEmfK2I1SDS_4core6result6ResultuNtNtB1u_3fmt5ErrorENtB5_10\
                 FormatTime11format_time",
                "<for<'a, 'b> fn(&'a mut tracing_subscriber::fmt::format::Writer<'b>) -> \
                 core::result::Result<(), core::fmt::Error> as tracing_subscriber::fmt::time::\
                 FormatTime>::format_time",
            ),
            (
                "_RNvMsn_NtCslNYArtu3iFV_5alloc4syncINtB5_3ArcDINtNtNtCsgEmfK2I1SDS_4core3ops8\
                 function2FnuEp6OutputNtNtNtCsdadwybgsbvk_12rustc_middle5query5stack20QueryStack\
                 FrameExtraNtNtCs3MG2ofusW15_21rustc_data_structures6marker7DynSyncNtB2F_7DynSend\
                 EL_E9drop_slowB1D_",
                "<alloc::sync::Arc<dyn core::ops::function::Fn<(), Output = rustc_middle::query::\
                 stack::QueryStackFrameExtra> + rustc_data_structures::marker::DynSync + \
                 rustc_data_structures::marker::DynSend>>::drop_slow",
            ),
            ("memcpy", "memcpy"),
            ("_ZN3foo", "_ZN3foo"),
        ] {
            assert_eq!(demangle(mangled), demangled, "{mangled}");
        }
    }
}
