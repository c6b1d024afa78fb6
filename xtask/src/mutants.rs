//! `cargo xtask mutants`: mutation testing with cargo-mutants over the logic crates.
//!
//! A test suite that passes whatever the code does proves nothing. cargo-mutants changes the
//! code one small edit at a time (a condition inverted, a return value replaced, an operator
//! swapped) and runs the crate's tests against each change: a mutant the tests do not notice
//! ("missed") is either a gap in the tests or an edit that cannot change behaviour. The kill
//! rates and the reasons for every equivalent mutant are kept in docs/TESTING.md.
//!
//! Slow (tens of minutes per crate on two cores), so CI does not run it. cargo-mutants is
//! installed with `cargo install cargo-mutants --locked` when missing. Results land in
//! `<target>/mutants/<package>/mutants.out/` (`missed.txt`, `caught.txt`, `outcomes.json`).

use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::Workspace;

/// The crates whose mutants are tested by default: the kernel's decisions and the MMU server's.
pub const PACKAGES: [&str; 2] = ["kernel-core", "mmu-core"];

/// Runs cargo-mutants over `package` (or every crate of [`PACKAGES`]); returns whether no
/// mutant was missed.
pub fn run(workspace: &Workspace, package: Option<&str>) -> anyhow::Result<bool> {
    ensure_cargo_mutants(workspace)?;
    let packages: Vec<&str> = match package {
        Some(package) => vec![package],
        None => PACKAGES.to_vec(),
    };
    let mut clean = true;
    for package in packages {
        let output = workspace.target_dir.join("mutants").join(package);
        std::fs::create_dir_all(&output)
            .with_context(|| format!("creating {}", output.display()))?;
        eprintln!(
            "xtask: cargo mutants -p {package} (results in {}/mutants.out)",
            output.display()
        );
        let status = workspace
            .cargo()
            .args(["mutants", "--package", package, "--output"])
            .arg(&output)
            // Some queue mutants loop forever allocating: a short timeout keeps them from
            // growing to gigabytes (the unmutated tests take well under a second).
            .args(["--timeout", "20"])
            // The property tests' case count: enough to catch a wrong table, few enough that
            // each mutant runs in seconds (the ordinary test run keeps proptest's default).
            .env("PROPTEST_CASES", "64")
            .status()
            .context("starting cargo mutants")?;
        // cargo-mutants exits 0 when every mutant was caught, 2 when some were missed, 3 on
        // timeouts, 4 when the unmutated tree already fails.
        match status.code() {
            Some(0) => {}
            Some(2 | 3) => clean = false,
            _ => bail!("cargo mutants -p {package} failed ({status})"),
        }
    }
    Ok(clean)
}

fn ensure_cargo_mutants(workspace: &Workspace) -> anyhow::Result<()> {
    let present = workspace
        .cargo()
        .args(["mutants", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if present {
        return Ok(());
    }
    eprintln!("xtask: installing cargo-mutants");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["install", "cargo-mutants", "--locked"])
        .status()
        .context("running cargo install cargo-mutants")?;
    if !status.success() {
        bail!("`cargo install cargo-mutants --locked` failed ({status})");
    }
    Ok(())
}
