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

mod patch;

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
    /// A fresh zeroed raw disk image, `<target>/images/<test>/disk.img`, created before the run
    /// and given to the hypervisor as a virtio-blk device.
    #[serde(default)]
    pub disk: Option<DiskSpec>,
    /// What the disk image must hold after the run.
    #[serde(default)]
    pub disk_expect: Vec<DiskExpect>,
    /// Console input, typed in order: each entry's `text` once its `after` text has appeared
    /// in the console (after the previous entry's match).
    #[serde(default)]
    pub input: Vec<qemu::Input>,
    /// A hand-made payload: one field of one record of the manifest's payload set to another
    /// value before the kernel is built around it (`test/patch.rs`).
    #[serde(default)]
    pub patch: Option<patch::PayloadPatch>,
}

fn default_timeout() -> u64 {
    120
}

/// `disk = { size_mib = N }`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DiskSpec {
    /// The image's size in MiB, 1..=MAX_DISK_MIB.
    pub size_mib: u64,
}

/// The largest disk image a test may ask for (it is sparse, but it is read back whole).
pub const MAX_DISK_MIB: u64 = 1024;

impl DiskSpec {
    /// The image's size in bytes.
    pub fn bytes(&self) -> u64 {
        self.size_mib << 20
    }
}

/// One entry of `disk_expect`: the bytes from `offset` are exactly `hex` (repeated to `len`
/// bytes when `len` is given), or `len` bytes of `pattern`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DiskExpect {
    /// Byte offset in the image.
    pub offset: u64,
    /// Exact bytes, as hex digits (two per byte; spaces and `_` allowed between bytes); with
    /// `len`, repeated to `len` bytes.
    #[serde(default)]
    pub hex: Option<String>,
    /// A generated pattern, counted from `offset`.
    #[serde(default)]
    pub pattern: Option<Pattern>,
    /// How many bytes of `pattern` (required with it), or of `hex` repeated (a multiple of its
    /// length; without `len`, `hex` is checked once).
    #[serde(default)]
    pub len: Option<u64>,
}

/// The byte patterns `disk_expect` can generate. Each is counted from the entry's `offset`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Pattern {
    /// Every byte 0.
    Zero,
    /// 4-byte little-endian words counting up from 0: word `n` holds `n`.
    Counter32,
    /// 16-byte text records counting up from 0: record `n` is `n` in decimal, zero-padded to
    /// 15 digits, and a newline. A shell makes it with
    /// `awk 'BEGIN { for (i = 0; i < N; i++) printf "%015d\n", i }'` (so a 1 MiB disk is
    /// 65,536 records, and block `b` of 4 KiB holds records `256 b .. 256 b + 255`).
    CounterLines,
}

impl Pattern {
    /// Byte `index` of the pattern.
    pub fn byte(self, index: u64) -> u8 {
        match self {
            Self::Zero => 0,
            Self::Counter32 => ((index / 4) as u32).to_le_bytes()[(index % 4) as usize],
            Self::CounterLines => match index % 16 {
                15 => b'\n',
                // Digit d (0 = most significant) of the record number.
                digit => {
                    let record = index / 16;
                    let place = 10u64.pow(14 - digit as u32);
                    b'0' + ((record / place) % 10) as u8
                }
            },
        }
    }
}

/// The bytes `hex` names: pairs of hex digits, with spaces and `_` allowed between pairs.
pub fn parse_hex(hex: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = hex
        .bytes()
        .filter(|byte| !matches!(byte, b' ' | b'_'))
        .collect();
    if digits.is_empty() {
        return Err("hex is empty".into());
    }
    if !digits.len().is_multiple_of(2) {
        return Err(format!(
            "hex has an odd number of digits ({})",
            digits.len()
        ));
    }
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).map_err(|_| "hex is not ASCII".to_string())?;
            u8::from_str_radix(text, 16).map_err(|_| format!("hex has a bad digit pair {text:?}"))
        })
        .collect()
}

impl DiskExpect {
    /// What the bytes from `offset` must be, checked against a disk of `disk_bytes`.
    pub fn expected(&self, disk_bytes: u64) -> Result<Vec<u8>, String> {
        let (hex, pattern, len) = match (&self.hex, self.pattern, self.len) {
            (Some(hex), None, None) => {
                let bytes = parse_hex(hex)?;
                let len = bytes.len() as u64;
                (Some(bytes), None, len)
            }
            (Some(hex), None, Some(len)) => {
                let bytes = parse_hex(hex)?;
                if len == 0 || !len.is_multiple_of(bytes.len() as u64) {
                    return Err(format!(
                        "`len` {len} is not a multiple of the {} bytes of `hex` it repeats",
                        bytes.len()
                    ));
                }
                (Some(bytes), None, len)
            }
            (None, Some(pattern), Some(len)) if len > 0 => (None, Some(pattern), len),
            (None, Some(_), Some(_)) => return Err("`len` must be at least 1".into()),
            (None, Some(_), None) => return Err("`pattern` needs `len`".into()),
            (Some(_), Some(_), _) => return Err("give `hex` or `pattern`, not both".into()),
            (None, None, _) => return Err("give `hex` or `pattern`".into()),
        };
        if self
            .offset
            .checked_add(len)
            .is_none_or(|end| end > disk_bytes)
        {
            return Err(format!(
                "{:#x} + {len} bytes runs past the end of the {disk_bytes}-byte disk",
                self.offset
            ));
        }
        Ok(match (hex, pattern) {
            (Some(bytes), _) => bytes.iter().copied().cycle().take(len as usize).collect(),
            (None, Some(pattern)) => (0..len).map(|index| pattern.byte(index)).collect(),
            (None, None) => Vec::new(),
        })
    }

    /// The entry for messages: `hex at 0x200` or `counter32 at 0x0, 4096 bytes`.
    fn describe(&self) -> String {
        match (&self.pattern, self.len) {
            (Some(pattern), Some(len)) => {
                format!("{pattern:?} at {:#x}, {len} bytes", self.offset)
            }
            _ => format!("hex at {:#x}", self.offset),
        }
    }
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
    for test in &table.test {
        check_disk_keys(test)
            .map_err(|error| anyhow::anyhow!("{}: `{}`: {error}", path.display(), test.name))?;
    }
    Ok(table.test)
}

/// `disk` has a size in range, and every `disk_expect` entry has a disk and is well formed and
/// inside it.
fn check_disk_keys(test: &QemuTest) -> Result<(), String> {
    if let Some(disk) = &test.disk
        && !(1..=MAX_DISK_MIB).contains(&disk.size_mib)
    {
        return Err(format!(
            "disk.size_mib {} is out of range 1..={MAX_DISK_MIB}",
            disk.size_mib
        ));
    }
    if test.disk_expect.is_empty() {
        return Ok(());
    }
    let Some(disk) = &test.disk else {
        return Err("disk_expect needs a `disk`".into());
    };
    for (index, entry) in test.disk_expect.iter().enumerate() {
        entry
            .expected(disk.bytes())
            .map_err(|error| format!("disk_expect[{index}]: {error}"))?;
    }
    Ok(())
}

/// Creates the fresh zeroed disk image of `test` (sparse), replacing any earlier one.
pub fn create_disk(
    workspace: &Workspace,
    test: &QemuTest,
    disk: &DiskSpec,
) -> anyhow::Result<PathBuf> {
    let dir = workspace.images_dir().join(&test.name);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = std::path::absolute(dir.join("disk.img"))?;
    let file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    file.set_len(disk.bytes())
        .with_context(|| format!("sizing {}", path.display()))?;
    Ok(path)
}

/// Everything wrong with `image` (the disk after the run) against `test`'s `disk_expect`.
pub fn check_disk(test: &QemuTest, image: &[u8]) -> Vec<String> {
    let disk_bytes = test.disk.map_or(0, |disk| disk.bytes());
    let mut failures = Vec::new();
    for (index, entry) in test.disk_expect.iter().enumerate() {
        let what = format!("disk_expect[{index}] ({})", entry.describe());
        let expected = match entry.expected(disk_bytes) {
            Ok(expected) => expected,
            Err(error) => {
                failures.push(format!("{what}: {error}"));
                continue;
            }
        };
        // Both fit in memory: the offset is below the disk's size, which is at most 1 GiB.
        let start = entry.offset as usize;
        let Some(found) = image.get(start..start + expected.len()) else {
            failures.push(format!("{what}: the image has only {} bytes", image.len()));
            continue;
        };
        if let Some(at) = found.iter().zip(&expected).position(|(a, b)| a != b) {
            let context = at.saturating_sub(8)..(at + 8).min(expected.len());
            failures.push(format!(
                "{what}: byte {:#x} of the image is {:#04x}, expected {:#04x}; from {:#x}: \
                 found {}, expected {}",
                entry.offset + at as u64,
                found[at],
                expected[at],
                entry.offset + context.start as u64,
                hex(&found[context.clone()]),
                hex(&expected[context]),
            ));
        }
    }
    failures
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
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
        let mut image = images.get(workspace, &test.manifest);
        if let (Some(patch), Ok(built)) = (&test.patch, &image) {
            image = patch::patched_image(workspace, built, patch, &test.name)
                .map_err(|error| format!("error: {error:#}"));
        }
        qemu::exit_if_interrupted();
        let (failures, outcome) = match image {
            Err(diagnostic) => (vec![format!("image did not build:\n{diagnostic}")], None),
            Ok(image) => {
                let disk = match &test.disk {
                    Some(disk) => Some(create_disk(workspace, test, disk)?),
                    None => None,
                };
                let options = qemu::Options {
                    timeout: Some(std::time::Duration::from_secs(test.timeout_s)),
                    icount: test.icount,
                    disk: disk.clone(),
                    input: test.input.clone(),
                    ..qemu::Options::default()
                };
                let outcome = qemu::run(&image, &options)?;
                let mut failures = check(test, &outcome);
                if let Some(disk) = disk.filter(|_| !test.disk_expect.is_empty()) {
                    match std::fs::read(&disk) {
                        Ok(bytes) => failures.extend(check_disk(test, &bytes)),
                        Err(error) => failures.push(format!("reading {}: {error}", disk.display())),
                    }
                }
                (failures, Some((image, outcome)))
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
            disk: None,
            disk_expect: Vec::new(),
            input: Vec::new(),
            patch: None,
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

    fn parse_text(name: &str, text: &str) -> anyhow::Result<Vec<QemuTest>> {
        let dir = std::env::temp_dir().join(format!("xtask-disk-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        let parsed = parse_tests(&path);
        std::fs::remove_dir_all(&dir).unwrap();
        parsed
    }

    const DISK_TEST: &str = "[[test]]\nname = \"blk\"\nmanifest = \"m.toml\"\n";

    fn disk_error(name: &str, keys: &str) -> String {
        match parse_text(name, &format!("{DISK_TEST}{keys}")) {
            Ok(tests) => panic!("accepted {keys}: {tests:?}"),
            Err(error) => format!("{error:#}"),
        }
    }

    #[test]
    fn disk_keys_parse() {
        let tests = parse_text(
            "disk",
            &format!(
                "{DISK_TEST}disk = {{ size_mib = 2 }}\ndisk_expect = [\n  \
                 {{ offset = 0, hex = \"62 6c_6B\" }},\n  \
                 {{ offset = 0x1000, len = 4096, pattern = \"counter32\" }},\n  \
                 {{ offset = 0x2000, len = 16, pattern = \"counter-lines\" }},\n  \
                 {{ offset = 0x1FFFFF, len = 1, pattern = \"zero\" }},\n]\n"
            ),
        )
        .unwrap();
        let test = &tests[0];
        assert_eq!(test.disk, Some(DiskSpec { size_mib: 2 }));
        assert_eq!(test.disk_expect.len(), 4);
        assert_eq!(test.disk_expect[0].expected(2 << 20), Ok(b"blk".to_vec()));
        let repeated = DiskExpect {
            offset: 0,
            hex: Some("5a a5".into()),
            pattern: None,
            len: Some(6),
        };
        assert_eq!(
            repeated.expected(2 << 20),
            Ok(vec![0x5a, 0xa5, 0x5a, 0xa5, 0x5a, 0xa5])
        );
        assert_eq!(test.disk_expect[1].pattern, Some(Pattern::Counter32));
        assert_eq!(test.disk_expect[2].pattern, Some(Pattern::CounterLines));
        assert_eq!(test.disk_expect[3].pattern, Some(Pattern::Zero));
        // Without the keys: no disk.
        let plain = parse_text("plain", DISK_TEST).unwrap();
        assert_eq!((plain[0].disk, plain[0].disk_expect.len()), (None, 0));
    }

    #[test]
    fn bad_disk_keys_are_refused_naming_the_test_and_entry() {
        let error = disk_error("size", "disk = { size_mib = 0 }\n");
        assert!(
            error.contains("`blk`: disk.size_mib 0 is out of range 1..=1024"),
            "{error}"
        );
        let error = disk_error("nodisk", "disk_expect = [{ offset = 0, hex = \"00\" }]\n");
        assert!(
            error.contains("`blk`: disk_expect needs a `disk`"),
            "{error}"
        );
        // The first bad entry is named, by its index.
        let error = disk_error(
            "first",
            "disk = { size_mib = 1 }\ndisk_expect = [{ offset = 0, hex = \"00\" }, { offset = 0 }]\n",
        );
        assert!(
            error.contains("`blk`: disk_expect[1]: give `hex` or `pattern`"),
            "{error}"
        );
        let one = |entry: &str| {
            disk_error(
                "one",
                &format!("disk = {{ size_mib = 1 }}\ndisk_expect = [{entry}]\n"),
            )
        };
        for (entry, message) in [
            (
                "{ offset = 0, hex = \"abc\" }",
                "hex has an odd number of digits (3)",
            ),
            (
                "{ offset = 0, hex = \"zz\" }",
                "hex has a bad digit pair \"zz\"",
            ),
            ("{ offset = 0, hex = \"\" }", "hex is empty"),
            (
                "{ offset = 0, hex = \"0000\", len = 3 }",
                "`len` 3 is not a multiple of the 2 bytes of `hex` it repeats",
            ),
            (
                "{ offset = 0, hex = \"00\", len = 0 }",
                "`len` 0 is not a multiple of the 1 bytes of `hex` it repeats",
            ),
            (
                "{ offset = 0, pattern = \"zero\" }",
                "`pattern` needs `len`",
            ),
            (
                "{ offset = 0, len = 0, pattern = \"zero\" }",
                "`len` must be at least 1",
            ),
            (
                "{ offset = 0, len = 1, pattern = \"zero\", hex = \"00\" }",
                "give `hex` or `pattern`, not both",
            ),
            (
                "{ offset = 0xFFFFF, hex = \"0000\" }",
                "0xfffff + 2 bytes runs past the end of the 1048576-byte disk",
            ),
            (
                "{ offset = 0, len = 0x1_0000_0000_0000, pattern = \"zero\" }",
                "0x0 + 281474976710656 bytes runs past the end of the 1048576-byte disk",
            ),
        ] {
            let error = one(entry);
            assert!(
                error.contains(&format!("disk_expect[0]: {message}")),
                "{entry}: {error}"
            );
        }
        // Unknown patterns and keys are serde's errors, naming the file.
        let error = one("{ offset = 0, len = 1, pattern = \"counter64\" }");
        assert!(
            error.contains("counter64") && error.contains("one.toml"),
            "{error}"
        );
        let error = disk_error("typo", "disk = { size_mb = 1 }\n");
        assert!(error.contains("size_mb"), "{error}");
    }

    #[test]
    fn patterns_are_what_their_documentation_says() {
        let bytes = |pattern: Pattern, from: u64, len: u64| -> Vec<u8> {
            (from..from + len).map(|i| pattern.byte(i)).collect()
        };
        assert_eq!(bytes(Pattern::Zero, 77, 3), [0, 0, 0]);
        assert_eq!(
            bytes(Pattern::Counter32, 0, 12),
            [0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]
        );
        assert_eq!(
            bytes(Pattern::Counter32, 4 * 0x0102_0304, 4),
            [4, 3, 2, 1],
            "little-endian"
        );
        assert_eq!(
            bytes(Pattern::CounterLines, 0, 32),
            b"000000000000000\n000000000000001\n"
        );
        // What `printf "%015d\n", 65535` writes: record 65535, the last of a 1 MiB disk.
        let last = format!("{:015}\n", 65535);
        assert_eq!(
            bytes(Pattern::CounterLines, 65535 * 16, 16),
            last.as_bytes()
        );
        let big = format!("{:015}\n", 123_456_789_012_345u64);
        assert_eq!(
            bytes(Pattern::CounterLines, 123_456_789_012_345 * 16, 16),
            big.as_bytes()
        );
    }

    #[test]
    fn check_disk_names_the_first_differing_byte() {
        let mut test = hello();
        test.disk = Some(DiskSpec { size_mib: 1 });
        test.disk_expect = vec![
            DiskExpect {
                offset: 0,
                hex: Some("626c6b".into()),
                pattern: None,
                len: None,
            },
            DiskExpect {
                offset: 0x1000,
                hex: None,
                pattern: Some(Pattern::Counter32),
                len: Some(64),
            },
        ];
        let mut image = vec![0u8; 1 << 20];
        image[..3].copy_from_slice(b"blk");
        for (i, byte) in image[0x1000..0x1040].iter_mut().enumerate() {
            *byte = Pattern::Counter32.byte(i as u64);
        }
        assert_eq!(check_disk(&test, &image), Vec::<String>::new());
        image[0x1000 + 21] = 0xFF;
        let failures = check_disk(&test, &image);
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(
            failures[0].starts_with(
                "disk_expect[1] (Counter32 at 0x1000, 64 bytes): byte 0x1015 of the image is \
                 0xff, expected 0x00; from 0x100d: found"
            ),
            "{}",
            failures[0]
        );
        image[1] = b'L';
        assert_eq!(check_disk(&test, &image).len(), 2);
        let failures = check_disk(&test, &image[..0x1010]);
        assert!(
            failures[1].ends_with("the image has only 4112 bytes"),
            "{failures:?}"
        );
    }

    #[test]
    fn a_disk_becomes_a_virtio_blk_drive_on_the_command_line() {
        let image = crate::build::Image {
            name: "x".into(),
            dir: "/tmp".into(),
            elf: "/tmp/x.elf".into(),
            servers: Vec::new(),
        };
        let args = |options: &qemu::Options| -> Vec<String> {
            qemu::command(&image, options)
                .get_args()
                .map(|arg| arg.to_string_lossy().into_owned())
                .collect()
        };
        let plain = args(&qemu::Options::default());
        assert!(plain.contains(&"-nodefaults".to_string()));
        assert!(
            !plain
                .iter()
                .any(|arg| arg == "-drive" || arg.contains("virtio"))
        );
        let options = qemu::Options {
            disk: Some("/work/target/images/a,b/disk.img".into()),
            ..qemu::Options::default()
        };
        let with_disk = args(&options);
        let at = with_disk.iter().position(|arg| arg == "-drive").unwrap();
        assert_eq!(
            with_disk[at..at + 4],
            [
                "-drive",
                "if=none,format=raw,id=disk0,file=/work/target/images/a,,b/disk.img",
                "-device",
                "virtio-blk-device,drive=disk0"
            ]
        );
        assert!(with_disk.contains(&"-nodefaults".to_string()));
    }

    #[test]
    fn a_disk_image_is_created_fresh_and_zeroed() {
        let workspace = Workspace::locate();
        let mut test = hello();
        test.name = format!("xtask-disk-test-{}", std::process::id());
        let spec = DiskSpec { size_mib: 1 };
        let path = create_disk(&workspace, &test, &spec).unwrap();
        assert!(path.is_absolute());
        assert!(path.ends_with(format!("images/{}/disk.img", test.name)));
        std::fs::write(&path, b"old contents").unwrap();
        let again = create_disk(&workspace, &test, &spec).unwrap();
        let bytes = std::fs::read(&again).unwrap();
        assert_eq!(bytes.len(), 1 << 20);
        assert!(
            bytes.iter().all(|&byte| byte == 0),
            "a fresh image each run"
        );
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
