//! Installing what a fresh machine lacks, before any subcommand does real work.
//!
//! Two things are needed beyond the Rust toolchain itself: the standard libraries of
//! `aarch64-unknown-none-softfloat` (kernel and servers) and `aarch64-unknown-none` (guests), from
//! rustup, and `qemu-system-aarch64`. QEMU comes from Debian's `qemu-system-arm`
//! package; the tests are known to pass on QEMU 7.2 (Debian 12), and another version is used but
//! named in a warning. Installing QEMU needs root: as any other user we say what to install and
//! stop, rather than prompting for a password in the middle of a test run.

use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::build::{GUEST_TARGET, TARGET};

/// The QEMU binary every subcommand runs.
pub const QEMU: &str = "qemu-system-aarch64";

/// The QEMU version the QEMU tests and benchmark figures are known to be right on.
pub const QEMU_PINNED: &str = "7.2";

/// Every Rust target a build needs.
pub const RUST_TARGETS: [&str; 2] = [TARGET, GUEST_TARGET];

/// Makes sure the Rust targets are installed, installing them when they are missing.
pub fn ensure_rust() -> anyhow::Result<()> {
    ensure_rust_targets()
}

/// Makes sure the Rust targets and a working QEMU are installed, installing them when we can;
/// prints the QEMU version in use.
///
/// "Working" means QEMU boots a trivial image with the tests' own command line (see
/// [`crate::qemu::probe`]): a QEMU that starts but lacks a ROM or a machine option is found here,
/// before any test, once per xtask run.
pub fn ensure_tools(workspace: &crate::Workspace) -> anyhow::Result<()> {
    ensure_rust_targets()?;
    let version = match qemu_version() {
        Some(version) => version,
        None => {
            install_qemu()?;
            qemu_version().with_context(|| {
                format!("{QEMU} still does not run after installing qemu-system-arm")
            })?
        }
    };
    eprintln!("xtask: {version}");
    crate::qemu::probe::boot_probe(&workspace.target_dir.join("xtask-probe"))
        .context("checking the installed QEMU")?;
    if !version_is_pinned(&version) {
        eprintln!(
            "xtask: warning: the QEMU tests are verified on QEMU {QEMU_PINNED} (Debian 12); \
             figures and timings may differ on this version"
        );
    }
    Ok(())
}

/// `rustup target add` for every target of [`RUST_TARGETS`] that `rustup target list
/// --installed` lacks (one invocation for all of them).
fn ensure_rust_targets() -> anyhow::Result<()> {
    let root = crate::Workspace::locate().root;
    // From the workspace root, so rustup picks the toolchain of rust-toolchain.toml.
    let listed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(&root)
        .stderr(Stdio::inherit())
        .output();
    let listed = match listed {
        Ok(output) if output.status.success() => output,
        Ok(output) => bail!(
            "`rustup target list --installed` failed ({})",
            output.status
        ),
        Err(_) => {
            eprintln!(
                "xtask: rustup not found; assuming the toolchain has {}",
                RUST_TARGETS.join(" and ")
            );
            return Ok(());
        }
    };
    let missing = missing_targets(&String::from_utf8_lossy(&listed.stdout));
    if missing.is_empty() {
        return Ok(());
    }
    let missing = missing.join(" ");
    eprintln!("xtask: installing the Rust targets {missing}");
    let status = Command::new("rustup")
        .args(["target", "add"])
        .args(missing.split(' '))
        .current_dir(&root)
        .status()
        .context("running rustup target add")?;
    if !status.success() {
        bail!("`rustup target add {missing}` failed ({status})");
    }
    Ok(())
}

/// The targets of [`RUST_TARGETS`] that `rustup target list --installed` output lacks.
fn missing_targets(installed: &str) -> Vec<&'static str> {
    RUST_TARGETS
        .into_iter()
        .filter(|target| !installed.lines().any(|line| line.trim() == *target))
        .collect()
}

/// The first line of `qemu-system-aarch64 --version`, or `None` when it does not run.
fn qemu_version() -> Option<String> {
    let output = Command::new(QEMU)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    Some(
        text.lines()
            .next()
            .unwrap_or("QEMU (unknown version)")
            .trim()
            .to_string(),
    )
}

/// Whether a `--version` line names the pinned major.minor ("... version 7.2.x ...").
fn version_is_pinned(line: &str) -> bool {
    line.split_whitespace()
        .skip_while(|word| *word != "version")
        .nth(1)
        .is_some_and(|version| {
            version == QEMU_PINNED || version.starts_with(&format!("{QEMU_PINNED}."))
        })
}

/// Installs Debian's qemu-system-arm as root; as anyone else, says what to do and exits 1.
fn install_qemu() -> anyhow::Result<()> {
    if !running_as_root() {
        eprintln!(
            "{QEMU} not found: install Debian's qemu-system-arm \
             (sudo apt-get install qemu-system-arm)"
        );
        std::process::exit(1);
    }
    eprintln!("xtask: {QEMU} not found; installing Debian's qemu-system-arm");
    apt_get(&["update"])?;
    apt_get(&[
        "install",
        "-y",
        "--no-install-recommends",
        "qemu-system-arm",
    ])
}

/// Runs apt-get non-interactively with its output streamed to ours.
fn apt_get(args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .status()
        .context("running apt-get (is this a Debian system?)")?;
    if !status.success() {
        bail!(
            "`apt-get {}` failed ({status}); install qemu-system-arm by hand",
            args.join(" ")
        );
    }
    Ok(())
}

/// Whether `id -u` says 0.
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_targets_are_required() {
        assert_eq!(
            missing_targets("aarch64-unknown-none-softfloat\nx86_64-unknown-linux-gnu\n"),
            ["aarch64-unknown-none"]
        );
        assert_eq!(
            missing_targets("aarch64-unknown-none\n"),
            ["aarch64-unknown-none-softfloat"]
        );
        assert!(
            missing_targets("aarch64-unknown-none\naarch64-unknown-none-softfloat\n").is_empty()
        );
        assert_eq!(missing_targets("").len(), 2);
    }

    #[test]
    fn recognises_the_pinned_version() {
        assert!(version_is_pinned(
            "QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u16)"
        ));
        assert!(version_is_pinned("QEMU emulator version 7.2"));
        assert!(!version_is_pinned(
            "QEMU emulator version 8.2.2 (Debian 1:8.2.2+ds-0ubuntu1)"
        ));
        assert!(!version_is_pinned("QEMU emulator version 7.20.0"));
        assert!(!version_is_pinned("garbage"));
    }
}
