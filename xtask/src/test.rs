//! `cargo xtask test`: the host tests, then the QEMU tests of `tests/qemu-tests.toml`.
//!
//! A QEMU test is one image run to its end: it passes when QEMU exits with the expected status
//! before the timeout, every `expect` text appears in console order, and no `forbid` text
//! appears. Verdicts are plain console text and the exit status, never decoded defmt; the defmt
//! log is decoded only to help explain a failure. The table format is documented at the top of
//! `tests/qemu-tests.toml`.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::Workspace;
use crate::build::ImageCache;
use crate::qemu::{self, Outcome, Status};

/// The QEMU test table, relative to the workspace root.
pub const TABLE: &str = "tests/qemu-tests.toml";

/// One `[[test]]` entry.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct QemuTest {
    /// The test's name; the command-line filter matches substrings of it.
    pub name: String,
    /// The manifest of the image, relative to the workspace root.
    pub manifest: PathBuf,
    /// Seconds before QEMU is killed and the test fails.
    #[serde(default = "default_timeout")]
    pub timeout_s: u64,
    /// The QEMU exit status that means success.
    #[serde(default)]
    pub exit_status: i32,
    /// Texts that must appear in this order (each after the previous one's match, on the same
    /// console line or a later one).
    #[serde(default)]
    pub expect: Vec<String>,
    /// Texts that must not appear anywhere in the console.
    #[serde(default)]
    pub forbid: Vec<String>,
    /// Run under `-icount shift=0,sleep=off -seed 1`: time is instructions, so timing
    /// measurements repeat exactly on any machine, however loaded.
    #[serde(default)]
    pub icount: bool,
}

fn default_timeout() -> u64 {
    120
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestTable {
    #[serde(default)]
    test: Vec<QemuTest>,
}

/// Reads a TOML table file into `T`; errors name the file (and line and column).
pub fn load_table<T: DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml_edit::de::from_str(&text).with_context(|| format!("{}: invalid table", path.display()))
}

/// Parses the QEMU test table and checks names are unique and timeouts positive.
pub fn parse_tests(path: &Path) -> anyhow::Result<Vec<QemuTest>> {
    let table: TestTable = load_table(path)?;
    check_entries(
        path,
        table
            .test
            .iter()
            .map(|test| (test.name.as_str(), test.timeout_s)),
    )?;
    Ok(table.test)
}

/// Refuses empty or duplicate names and zero timeouts in a table of `(name, timeout_s)`.
pub fn check_entries<'a>(
    path: &Path,
    entries: impl Iterator<Item = (&'a str, u64)>,
) -> anyhow::Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for (name, timeout_s) in entries {
        if name.is_empty() {
            bail!("{}: an entry has an empty name", path.display());
        }
        if !seen.insert(name) {
            bail!("{}: name `{name}` is used twice", path.display());
        }
        if timeout_s == 0 {
            bail!("{}: `{name}`: timeout_s must be at least 1", path.display());
        }
    }
    Ok(())
}

/// Runs the host tests and/or the QEMU tests; returns whether everything passed.
pub fn run(
    workspace: &Workspace,
    filter: Option<&str>,
    host: bool,
    qemu_tests: bool,
) -> anyhow::Result<bool> {
    let mut passed = true;
    if host {
        let status = host_tests(workspace, filter)?;
        if !status.success() {
            eprintln!("xtask: host tests failed ({status})");
            passed = false;
        }
        qemu::exit_if_interrupted();
    }
    if qemu_tests {
        passed &= run_qemu_tests(workspace, filter)?;
    }
    Ok(passed)
}

/// `cargo test --workspace [FILTER]`.
fn host_tests(workspace: &Workspace, filter: Option<&str>) -> anyhow::Result<ExitStatus> {
    let mut cargo = workspace.cargo();
    cargo.args(["test", "--workspace"]);
    if let Some(filter) = filter {
        // After `--`: a filter before it makes cargo build test harnesses of `test = false`
        // (target-only) crates too.
        cargo.args(["--", filter]);
    }
    cargo.status().context("starting cargo test")
}

fn run_qemu_tests(workspace: &Workspace, filter: Option<&str>) -> anyhow::Result<bool> {
    let tests = parse_tests(&workspace.root.join(TABLE))?;
    let selected: Vec<&QemuTest> = tests
        .iter()
        .filter(|test| filter.is_none_or(|filter| test.name.contains(filter)))
        .collect();
    println!("running {} QEMU tests", selected.len());
    let mut images = ImageCache::default();
    let (mut passed, mut failed) = (Vec::new(), Vec::new());
    for test in selected {
        let image = images.get(workspace, &test.manifest);
        qemu::exit_if_interrupted();
        let (failures, outcome) = match image {
            Err(diagnostic) => (vec![format!("image did not build:\n{diagnostic}")], None),
            Ok(image) => {
                let options = qemu::Options {
                    timeout: Some(std::time::Duration::from_secs(test.timeout_s)),
                    icount: test.icount,
                    ..qemu::Options::default()
                };
                let outcome = qemu::run(&image, &options)?;
                (check(test, &outcome), Some((image, outcome)))
            }
        };
        if failures.is_empty() {
            println!("test qemu::{} ... ok", test.name);
            passed.push(&test.name);
        } else {
            println!("test qemu::{} ... FAILED", test.name);
            report_failure(&test.name, &failures, outcome.as_ref());
            failed.push(&test.name);
        }
    }
    if !failed.is_empty() {
        println!("\nfailures:");
        for name in &failed {
            println!("    qemu::{name}");
        }
    }
    println!("{} passed, {} failed", passed.len(), failed.len());
    Ok(failed.is_empty())
}

fn report_failure(name: &str, failures: &[String], run: Option<&(crate::build::Image, Outcome)>) {
    if let Some((image, outcome)) = run {
        println!("---- qemu::{name} console ----");
        print!("{}", outcome.console);
        if !outcome.console.ends_with('\n') {
            println!();
        }
        println!("---- qemu::{name} end of console ----");
        crate::defmt_log::print(image);
    }
    for failure in failures {
        println!("qemu::{name}: {failure}");
    }
}

/// Everything wrong with `outcome` as the result of `test` (empty when it passed).
pub fn check(test: &QemuTest, outcome: &Outcome) -> Vec<String> {
    let mut failures = Vec::new();
    match outcome.status {
        Status::Exited(code) if code == test.exit_status => {}
        status => failures.push(format!(
            "{}, expected exit status {}",
            qemu::describe(status),
            test.exit_status
        )),
    }
    if let Err(failure) = match_in_order(&outcome.console, &test.expect) {
        failures.push(failure);
    }
    failures.extend(forbidden(&outcome.console, &test.forbid));
    failures
}

/// Finds each of `expect` in the console in order: each one after the end of the previous
/// match, on the same line or a later one. Says which expectation failed and where the search
/// for it started.
pub fn match_in_order(console: &str, expect: &[String]) -> Result<(), String> {
    let mut from = 0;
    for (index, text) in expect.iter().enumerate() {
        match console
            .get(from..)
            .and_then(|rest| rest.find(text.as_str()))
        {
            Some(at) => from += at + text.len(),
            None => {
                let place = if index == 0 {
                    "anywhere in the console".to_string()
                } else {
                    format!(
                        "after the match of expectation {index} (console line {})",
                        line_of(console, from)
                    )
                };
                return Err(format!(
                    "expectation {} of {} not met: {text:?} not found {place}",
                    index + 1,
                    expect.len()
                ));
            }
        }
    }
    Ok(())
}

/// The 1-based line number of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.get(..at)
        .map_or(0, |before| before.matches('\n').count())
        + 1
}

/// One message per `forbid` text that occurs in the console, naming the first line.
pub fn forbidden(console: &str, forbid: &[String]) -> Vec<String> {
    forbid
        .iter()
        .filter_map(|text| {
            let line = console
                .lines()
                .position(|line| line.contains(text.as_str()))?;
            Some(format!(
                "forbidden text {text:?} appears on console line {}",
                line + 1
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|text| text.to_string()).collect()
    }

    #[test]
    fn expectations_match_in_order() {
        let console = "boot\nping: 10000 round trips ok\nbye\n";
        assert!(match_in_order(console, &strings(&["boot", "round trips ok", "bye"])).is_ok());
        assert!(match_in_order(console, &[]).is_ok());
        let error = match_in_order(console, &strings(&["bye", "boot"])).unwrap_err();
        assert!(error.contains("expectation 2 of 2"), "{error}");
        assert!(
            error.contains("after the match of expectation 1 (console line 3)"),
            "{error}"
        );
        let error = match_in_order(console, &strings(&["missing"])).unwrap_err();
        assert!(error.contains("anywhere"), "{error}");
    }

    #[test]
    fn expectations_may_continue_on_the_same_line_but_not_overlap() {
        let line = "KERNEL: `sup` faulted: data abort at pc 0x200384, address 0x8000; stopping\n";
        let expect = strings(&["faulted: data abort", "address 0x8000", "stopping"]);
        assert!(match_in_order(line, &expect).is_ok());
        assert!(match_in_order(line, &strings(&["stopping", "address"])).is_err());
        // The same text twice needs two occurrences.
        assert!(match_in_order("ok\n", &strings(&["ok", "ok"])).is_err());
        assert!(match_in_order("ok ok\n", &strings(&["ok", "ok"])).is_ok());
    }

    #[test]
    fn forbidden_texts_are_reported_with_their_line() {
        let console = "ok\nKERNEL PANIC at x\n";
        assert_eq!(
            forbidden(console, &strings(&["KERNEL PANIC", "fault"])),
            vec!["forbidden text \"KERNEL PANIC\" appears on console line 2".to_string()]
        );
    }

    fn hello() -> QemuTest {
        QemuTest {
            name: "hello".into(),
            manifest: "manifests/hello.toml".into(),
            timeout_s: 120,
            exit_status: 0,
            expect: strings(&["ping: 10000 round trips ok"]),
            forbid: strings(&["KERNEL PANIC"]),
            icount: false,
        }
    }

    #[test]
    fn check_reports_status_timeout_expectations_and_forbidden_text() {
        let test = hello();
        let pass = Outcome {
            status: Status::Exited(0),
            console: "ping: 10000 round trips ok\n".into(),
        };
        assert!(check(&test, &pass).is_empty());
        let timed_out = Outcome {
            status: Status::TimedOut(std::time::Duration::from_secs(120)),
            console: "KERNEL PANIC\n".into(),
        };
        let failures = check(&test, &timed_out);
        assert_eq!(failures.len(), 3, "{failures:?}");
        assert!(failures[0].starts_with("timeout after 120 s"));
        let wrong_status = Outcome {
            status: Status::Exited(3),
            ..pass
        };
        assert_eq!(
            check(&test, &wrong_status),
            vec!["exit status 3, expected exit status 0".to_string()]
        );
    }

    #[test]
    fn the_repository_table_parses() {
        let workspace = Workspace::locate();
        let tests = parse_tests(&workspace.root.join(TABLE)).expect("tests/qemu-tests.toml");
        let hello = tests.iter().find(|test| test.name == "hello");
        let hello = hello.expect("the table has a `hello` test");
        assert_eq!(hello.manifest, Path::new("manifests/hello.toml"));
        assert!(
            hello
                .expect
                .contains(&"ping: 10000 round trips ok".to_string()),
            "{hello:?}"
        );
    }

    #[test]
    fn table_defaults_and_errors() {
        let dir = std::env::temp_dir().join(format!("xtask-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let minimal = write(
            "minimal.toml",
            "[[test]]\nname = \"a\"\nmanifest = \"m.toml\"\n",
        );
        let tests = parse_tests(&minimal).unwrap();
        assert_eq!(tests[0].timeout_s, 120);
        assert_eq!(tests[0].exit_status, 0);
        assert!(tests[0].expect.is_empty() && tests[0].forbid.is_empty());
        assert!(!tests[0].icount, "icount is off by default");

        let timed = write(
            "icount.toml",
            "[[test]]\nname = \"a\"\nmanifest = \"m.toml\"\nicount = true\n",
        );
        assert!(parse_tests(&timed).unwrap()[0].icount);
        let wrong = write(
            "icount-type.toml",
            "[[test]]\nname = \"a\"\nmanifest = \"m.toml\"\nicount = 1\n",
        );
        let error = format!("{:#}", parse_tests(&wrong).unwrap_err());
        assert!(error.contains("icount-type.toml"), "{error}");

        let typo = write(
            "typo.toml",
            "[[test]]\nname = \"a\"\nmanifest = \"m\"\nexpct = []\n",
        );
        let error = format!("{:#}", parse_tests(&typo).unwrap_err());
        assert!(
            error.contains("typo.toml") && error.contains("expct"),
            "{error}"
        );

        let twice = write(
            "twice.toml",
            "[[test]]\nname = \"a\"\nmanifest = \"m\"\n[[test]]\nname = \"a\"\nmanifest = \"n\"\n",
        );
        let error = format!("{:#}", parse_tests(&twice).unwrap_err());
        assert!(error.contains("used twice"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
