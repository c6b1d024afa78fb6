//! `cargo xtask fuzz`: the libFuzzer targets of `fuzz/` (cargo-fuzz, nightly Rust).
//!
//! The fuzz crate is its own workspace (`fuzz/Cargo.toml` has `[workspace]`), so the stable
//! `cargo build` and `cargo test` of the main workspace never see it; only this command builds
//! it, with the nightly toolchain (`rustup run nightly`, installed with `rustup toolchain
//! install nightly --profile minimal` when missing) and cargo-fuzz (`cargo install cargo-fuzz
//! --locked` when missing). The targets and what each asserts are in docs/TESTING.md
//! ("Fuzzing"); `--list` prints them from the first line of each target's documentation.
//!
//! `cargo fuzz build` builds the chosen targets once, for the host; each target's libFuzzer
//! binary then runs for a bounded time (libFuzzer's `-max_total_time`), so a source edited
//! during a long `--all` is not rebuilt half-way through. A run has:
//!
//! - the seeds of `fuzz/corpus/<target>/` (kept small, in the repository) read, and the inputs
//!   libFuzzer finds written to `<target>/fuzz/corpus/<target>/` instead, so a run never grows
//!   the committed corpus but the next run starts from what the last one found;
//! - `fuzz/dict/<target>.dict` as libFuzzer's dictionary, when there is one;
//! - no sanitizer: every crate under test is `forbid(unsafe_code)`, so what there is to find is
//!   panics (overflow checks and debug assertions are on), hangs and runaway memory, and
//!   AddressSanitizer would only halve the executions per second;
//! - one input taking more than [`INPUT_TIMEOUT_S`] counting as a finding (a hang), as does
//!   going over [`RSS_LIMIT_MB`].
//!
//! libFuzzer's own output goes to `<target>/fuzz/logs/<target>.log`; the summary (runs,
//! executions per second, coverage) is printed, and on a finding the log's end and the path of
//! the input that caused it (libFuzzer writes it to `fuzz/artifacts/<target>/`, ignored by
//! git), with the command that reproduces it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::Workspace;

/// One input running longer than this is a hang, reported like a crash.
pub const INPUT_TIMEOUT_S: u64 = 10;
/// Memory a target may use before libFuzzer calls it out of memory (libFuzzer's default).
pub const RSS_LIMIT_MB: u64 = 2048;
/// The toolchain cargo-fuzz needs (`-Z` flags for the coverage instrumentation).
const TOOLCHAIN: &str = "nightly";

/// How one target's run ended.
struct Outcome {
    target: String,
    /// libFuzzer's summary, e.g. `1234567 runs in 21 s, 58788 exec/s, cov 421`.
    summary: String,
    /// The inputs libFuzzer saved because they crashed, hung or ran out of memory.
    findings: Vec<PathBuf>,
    passed: bool,
    wall: Duration,
}

/// `cargo xtask fuzz --list`: every target with the first line of its documentation.
pub fn list(workspace: &Workspace) -> anyhow::Result<()> {
    for target in targets(workspace)? {
        println!("{target:16} {}", summary_line(workspace, &target));
    }
    Ok(())
}

/// Runs `target` (or every target, when `None`) for `seconds` each; returns whether none found
/// anything.
pub fn run(workspace: &Workspace, target: Option<&str>, seconds: u64) -> anyhow::Result<bool> {
    let known = targets(workspace)?;
    let chosen: Vec<String> = match target {
        Some(name) if known.iter().any(|known| known == name) => vec![name.to_string()],
        Some(name) => bail!(
            "no fuzz target `{name}`; the targets are: {}",
            known.join(", ")
        ),
        None => known,
    };
    ensure_nightly()?;
    ensure_cargo_fuzz(workspace)?;
    let started = Instant::now();
    let host = host_triple()?;
    // One build for all of them: cargo builds the targets' binaries together.
    let mut build = cargo_fuzz(workspace, "build");
    build.args(["--target", &host]);
    if let [only] = chosen.as_slice() {
        build.arg(only);
    }
    eprintln!("xtask: building the fuzz targets (nightly, cargo fuzz build)");
    let status = build.status().context("starting cargo fuzz build")?;
    if !status.success() {
        bail!("cargo fuzz build failed ({status})");
    }
    let binaries = fuzz_target_dir(workspace).join(&host).join("release");
    let mut outcomes = Vec::new();
    for target in &chosen {
        outcomes.push(run_one(workspace, &binaries.join(target), target, seconds)?);
    }
    if outcomes.len() > 1 {
        println!("fuzz summary ({} s per target):", seconds);
        for outcome in &outcomes {
            let verdict = if outcome.passed { "ok" } else { "FOUND" };
            println!(
                "  {:16} {verdict:5} {} ({} s wall)",
                outcome.target,
                outcome.summary,
                outcome.wall.as_secs()
            );
        }
        println!(
            "fuzz: {} targets in {} s",
            outcomes.len(),
            started.elapsed().as_secs()
        );
    }
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| !o.passed).collect();
    for outcome in &failed {
        for finding in &outcome.findings {
            eprintln!(
                "fuzz target `{}` found a failing input: {}\n  reproduce: {} {}",
                outcome.target,
                finding.display(),
                binaries.join(&outcome.target).display(),
                finding.display(),
            );
        }
    }
    Ok(failed.is_empty())
}

/// One target, its libFuzzer binary at `binary`, for `seconds`.
fn run_one(
    workspace: &Workspace,
    binary: &Path,
    target: &str,
    seconds: u64,
) -> anyhow::Result<Outcome> {
    let fuzz_dir = workspace.root.join("fuzz");
    let seeds = fuzz_dir.join("corpus").join(target);
    let found = fuzz_target_dir(workspace).join("corpus").join(target);
    let artifacts = fuzz_dir.join("artifacts").join(target);
    let logs = fuzz_target_dir(workspace).join("logs");
    for dir in [&found, &artifacts, &logs] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let before = files_in(&artifacts)?;
    let log_path = logs.join(format!("{target}.log"));
    let log =
        File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    eprintln!(
        "xtask: fuzzing `{target}` for {seconds} s (libFuzzer's output: {})",
        log_path.display()
    );
    let mut command = Command::new(binary);
    command.current_dir(&workspace.root).arg(&found);
    if seeds.is_dir() {
        command.arg(&seeds);
    }
    command.args([
        format!("-max_total_time={seconds}"),
        format!("-timeout={INPUT_TIMEOUT_S}"),
        format!("-rss_limit_mb={RSS_LIMIT_MB}"),
        format!("-artifact_prefix={}/", artifacts.display()),
    ]);
    let dictionary = fuzz_dir.join("dict").join(format!("{target}.dict"));
    if dictionary.is_file() {
        command.arg(format!("-dict={}", dictionary.display()));
    }
    let started = Instant::now();
    let status = command
        .stdout(log.try_clone().context("sharing the log file")?)
        .stderr(log)
        .status()
        .with_context(|| format!("starting {}", binary.display()))?;
    let wall = started.elapsed();
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let summary = libfuzzer_summary(&text);
    let findings: Vec<PathBuf> = files_in(&artifacts)?
        .into_iter()
        .filter(|file| !before.contains(file) && is_finding(file))
        .collect();
    let passed = status.success() && findings.is_empty();
    if passed {
        println!("fuzz {target} ... ok: {summary}");
    } else {
        println!("fuzz {target} ... FOUND a failing input ({status}): {summary}");
        for line in report_lines(&text) {
            println!("    {line}");
        }
        if findings.is_empty() {
            bail!(
                "fuzz target {target} failed ({status}) without saving an input; see {}",
                log_path.display()
            );
        }
    }
    Ok(Outcome {
        target: target.to_string(),
        summary,
        findings,
        passed,
        wall,
    })
}

/// What to show of libFuzzer's log after a finding: from the panic message or libFuzzer's
/// error on, at most 40 lines (the backtrace's top and the saved input's name), else the end.
fn report_lines(log: &str) -> Vec<&str> {
    let lines: Vec<&str> = log.lines().collect();
    let start = lines
        .iter()
        .position(|line| line.contains("panicked at") || line.contains("ERROR: libFuzzer"))
        .unwrap_or(lines.len().saturating_sub(40));
    lines[start..].iter().take(40).copied().collect()
}

/// `rustup run nightly cargo fuzz <subcommand>` with the options every invocation shares.
fn cargo_fuzz(workspace: &Workspace, subcommand: &str) -> Command {
    let mut command = Command::new("rustup");
    command
        .current_dir(&workspace.root)
        .args(["run", TOOLCHAIN, "cargo", "fuzz", subcommand])
        .args(["--fuzz-dir", "fuzz", "--sanitizer", "none", "--target-dir"])
        .arg(fuzz_target_dir(workspace));
    // The outer (stable) cargo's view of the toolchain must not leak into the nightly build.
    for variable in [
        "CARGO",
        "RUSTC",
        "RUSTDOC",
        "RUSTUP_TOOLCHAIN",
        "CARGO_TARGET_DIR",
    ] {
        command.env_remove(variable);
    }
    command
}

/// The host's target triple (`rustc -vV`), which the targets are built for.
fn host_triple() -> anyhow::Result<String> {
    let output = Command::new("rustup")
        .args(["run", TOOLCHAIN, "rustc", "-vV"])
        .output()
        .context("running rustc -vV")?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_string)
        .with_context(|| format!("`rustc -vV` named no host triple: {text}"))
}

/// Where the fuzz builds, the inputs found and the logs go: `<target>/fuzz`.
fn fuzz_target_dir(workspace: &Workspace) -> PathBuf {
    workspace.target_dir.join("fuzz")
}

/// The `[[bin]]` names of `fuzz/Cargo.toml`, in file order.
fn targets(workspace: &Workspace) -> anyhow::Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Manifest {
        #[serde(default)]
        bin: Vec<Bin>,
    }
    #[derive(Deserialize)]
    struct Bin {
        name: String,
    }
    let path = workspace.root.join("fuzz").join("Cargo.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let manifest: Manifest = toml_edit::de::from_str(&text)
        .with_context(|| format!("{}: not a Cargo manifest", path.display()))?;
    if manifest.bin.is_empty() {
        bail!("{}: no [[bin]] fuzz target", path.display());
    }
    Ok(manifest.bin.into_iter().map(|bin| bin.name).collect())
}

/// The first clause of a target's `//!` documentation (up to its first colon or full stop).
fn summary_line(workspace: &Workspace, target: &str) -> String {
    let path = workspace
        .root
        .join("fuzz")
        .join("fuzz_targets")
        .join(format!("{target}.rs"));
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let paragraph: Vec<&str> = text
        .lines()
        .map_while(|line| line.strip_prefix("//! "))
        .collect();
    let paragraph = paragraph.join(" ");
    let end = [": ", ". "]
        .iter()
        .filter_map(|stop| paragraph.find(stop))
        .min()
        .unwrap_or(paragraph.len());
    paragraph[..end].trim_end_matches('.').to_string()
}

/// libFuzzer's last status line (`#N DONE cov: C ft: F corp: ... exec/s: E ...`) and its
/// `Done N runs in S second(s)` line, as one short sentence.
fn libfuzzer_summary(log: &str) -> String {
    let field = |line: &str, name: &str| {
        let mut words = line.split_whitespace();
        words.find(|word| *word == name)?;
        words.next().map(str::to_string)
    };
    let status = log
        .lines()
        .rev()
        .find(|line| line.starts_with('#') && line.contains("cov:"));
    let done = log.lines().rev().find(|line| line.starts_with("Done "));
    let mut parts = Vec::new();
    if let Some(done) = done {
        let words: Vec<&str> = done.split_whitespace().collect();
        if let [_, runs, _, _, seconds, ..] = words.as_slice() {
            parts.push(format!("{runs} runs in {seconds} s"));
        }
    }
    if let Some(status) = status {
        if let Some(rate) = field(status, "exec/s:") {
            parts.push(format!("{rate} exec/s"));
        }
        if let Some(coverage) = field(status, "cov:") {
            parts.push(format!("coverage {coverage}"));
        }
        if let Some(corpus) = field(status, "corp:") {
            parts.push(format!("corpus {corpus}"));
        }
    }
    if parts.is_empty() {
        "no libFuzzer summary".to_string()
    } else {
        parts.join(", ")
    }
}

/// An input libFuzzer saved because it failed: a crash (a panic), a hang, too much memory or
/// a leak. (It also saves slow inputs, which are no failure.)
fn is_finding(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("");
    ["crash-", "timeout-", "oom-", "leak-"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// The files directly in `dir` (none when it does not exist).
fn files_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Installs the nightly toolchain (minimal profile) when rustup does not have it.
fn ensure_nightly() -> anyhow::Result<()> {
    let present = Command::new("rustup")
        .args(["run", TOOLCHAIN, "rustc", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running rustup (cargo xtask fuzz needs rustup for the nightly toolchain)")?
        .success();
    if present {
        return Ok(());
    }
    eprintln!(
        "xtask: installing the {TOOLCHAIN} toolchain for cargo-fuzz \
         (rustup toolchain install {TOOLCHAIN} --profile minimal)"
    );
    let status = Command::new("rustup")
        .args(["toolchain", "install", TOOLCHAIN, "--profile", "minimal"])
        .status()
        .context("running rustup toolchain install")?;
    if !status.success() {
        bail!("`rustup toolchain install {TOOLCHAIN} --profile minimal` failed ({status})");
    }
    Ok(())
}

/// Installs cargo-fuzz when `cargo fuzz` does not run.
fn ensure_cargo_fuzz(workspace: &Workspace) -> anyhow::Result<()> {
    let present = Command::new("rustup")
        .current_dir(&workspace.root)
        .args(["run", TOOLCHAIN, "cargo", "fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if present {
        return Ok(());
    }
    eprintln!(
        "xtask: installing cargo-fuzz (cargo install cargo-fuzz --locked; a few minutes, once)"
    );
    let status = Command::new("rustup")
        .args([
            "run",
            TOOLCHAIN,
            "cargo",
            "install",
            "cargo-fuzz",
            "--locked",
        ])
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTUP_TOOLCHAIN")
        .status()
        .context("running cargo install cargo-fuzz")?;
    if !status.success() {
        bail!("`cargo install cargo-fuzz --locked` failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_runs_rate_and_coverage() {
        let log = "INFO: Seed: 1\n\
                   #1393061\tREDUCE cov: 421 ft: 2512 corp: 849/448Kb lim: 4096 exec/s: 46435 rss: 35Mb\n\
                   #1399553\tDONE   cov: 421 ft: 2512 corp: 849/448Kb lim: 4096 exec/s: 45146 rss: 35Mb\n\
                   Done 1399553 runs in 31 second(s)\n";
        assert_eq!(
            libfuzzer_summary(log),
            "1399553 runs in 31 s, 45146 exec/s, coverage 421, corpus 849/448Kb"
        );
        assert_eq!(libfuzzer_summary("garbage"), "no libFuzzer summary");
    }

    #[test]
    fn every_target_has_a_source_file_and_documentation() {
        let workspace = Workspace::locate();
        let targets = targets(&workspace).expect("fuzz/Cargo.toml lists the targets");
        assert!(targets.len() >= 10, "{targets:?}");
        for target in targets {
            assert!(
                !summary_line(&workspace, &target).is_empty(),
                "fuzz/fuzz_targets/{target}.rs has no //! documentation"
            );
        }
    }
}
