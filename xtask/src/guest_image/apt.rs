//! Finding and downloading Debian's arm64 packages with apt, on any Debian host architecture.
//!
//! Only adding the architecture and refreshing the package lists need root (`dpkg
//! --add-architecture arm64 && apt-get update`); looking packages up and `apt-get download` work
//! as any user. When something is missing we say which command to run, rather than prompt.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::ProgressBar;

/// The architecture of every package we fetch.
pub const ARCH: &str = "arm64";
/// Debian's metapackage for the current arm64 kernel; it depends on the versioned package.
pub const KERNEL_METAPACKAGE: &str = "linux-image-arm64";
/// A statically linked busybox (/bin/busybox): no libraries needed in the initramfs.
pub const BUSYBOX_PACKAGE: &str = "busybox-static";

/// The command that makes arm64 packages known to apt; needs root.
const ENABLE_ARM64: &str = "dpkg --add-architecture arm64 && apt-get update";

/// A package apt will download: its name and the candidate version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    /// The .deb's size from the package record, for the download bar.
    pub size: Option<u64>,
}

/// Resolves the kernel metapackage to its versioned package and finds busybox-static, both for
/// arm64, adding the architecture and refreshing apt's lists first when we are root and they
/// lack arm64.
pub fn resolve_packages(progress: &ProgressBar) -> anyhow::Result<[Package; 2]> {
    require_tool("apt-cache")?;
    require_tool("apt-get")?;
    let mut refreshed = false;
    if !arm64_enabled()? {
        require_root("arm64 is not a dpkg architecture of this machine")?;
        progress.set_message(format!("running {ENABLE_ARM64}"));
        run_captured(Command::new("dpkg").args(["--add-architecture", ARCH]))?;
        apt_get_update()?;
        refreshed = true;
    }
    // One apt-cache call takes seconds (it reads every list): ask for both at once.
    let mut records = show(&[KERNEL_METAPACKAGE, BUSYBOX_PACKAGE])?;
    if find(&records, KERNEL_METAPACKAGE).is_none() && !refreshed {
        require_root("apt's lists have no arm64 packages yet")?;
        progress.set_message("running apt-get update");
        apt_get_update()?;
        records = show(&[KERNEL_METAPACKAGE, BUSYBOX_PACKAGE])?;
    }
    let unknown = |name: &str| format!("apt knows no {name}:{ARCH}, even after apt-get update");
    let metapackage =
        find(&records, KERNEL_METAPACKAGE).with_context(|| unknown(KERNEL_METAPACKAGE))?;
    let busybox = find(&records, BUSYBOX_PACKAGE)
        .with_context(|| unknown(BUSYBOX_PACKAGE))?
        .package()?;
    let depends = metapackage.field("Depends").unwrap_or_default();
    let kernel_name = versioned_kernel(depends).with_context(|| {
        format!("{KERNEL_METAPACKAGE} depends on no versioned kernel package: {depends:?}")
    })?;
    let kernel = find(&show(&[&kernel_name])?, &kernel_name)
        .with_context(|| unknown(&kernel_name))?
        .package()?;
    Ok([kernel, busybox])
}

/// Downloads `package` (exactly its resolved version) into `debs`, advancing `progress` by the
/// bytes that arrive; returns the path of the .deb.
pub fn download(package: &Package, debs: &Path, progress: &ProgressBar) -> anyhow::Result<PathBuf> {
    let spec = format!("{}:{ARCH}={}", package.name, package.version);
    let before = progress.position();
    let mut child = Command::new("apt-get")
        .args(["download", &spec])
        .current_dir(debs)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting apt-get download")?;
    // apt writes the .deb in place as it arrives: its growing size is the progress.
    let prefix = format!("{}_", package.name);
    while child.try_wait()?.is_none() {
        progress.set_position(before + bytes_of_files_starting_with(debs, &prefix));
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "`apt-get download {spec}` failed ({}):\n{}\nIs the network up? Refresh apt's \
             lists as root (sudo apt-get update), then run `cargo xtask fetch-guest` again; to \
             see the failure itself: cd {} && apt-get download {spec}",
            output.status,
            tail(&output),
            debs.display()
        );
    }
    let deb = find_deb(debs, package)?.with_context(|| {
        format!(
            "apt-get download {spec} succeeded but left no such .deb in {}",
            debs.display()
        )
    })?;
    progress.set_position(before + std::fs::metadata(&deb)?.len());
    Ok(deb)
}

/// The .deb in `dir` that holds exactly `package` (apt names files with an escaped epoch, so
/// we ask each candidate's control fields rather than predict the name).
pub fn find_deb(dir: &Path, package: &Package) -> anyhow::Result<Option<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(None);
    };
    let prefix = format!("{}_", package.name);
    for entry in entries {
        let path = entry?.path();
        let file_name = path.file_name().unwrap_or_default().to_string_lossy();
        if file_name.starts_with(&prefix)
            && file_name.ends_with(".deb")
            && deb_identity(&path)? == (package.name.clone(), package.version.clone())
        {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// The Package and Version control fields of a .deb (`dpkg-deb -f`).
pub fn deb_identity(deb: &Path) -> anyhow::Result<(String, String)> {
    require_tool("dpkg-deb")?;
    let output = run_captured(
        Command::new("dpkg-deb")
            .arg("-f")
            .arg(deb)
            .args(["Package", "Version"]),
    )?;
    let record = Record(String::from_utf8_lossy(&output.stdout).into_owned());
    match (record.field("Package"), record.field("Version")) {
        (Some(name), Some(version)) => Ok((name.to_string(), version.to_string())),
        _ => bail!("{} has no Package or Version field", deb.display()),
    }
}

/// Unpacks a .deb's files into `dir` (`dpkg-deb -x`; nothing is installed).
pub fn extract(deb: &Path, dir: &Path) -> anyhow::Result<()> {
    require_tool("dpkg-deb")?;
    run_captured(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir)).map(drop)
}

/// The first package named in a Depends field that is a versioned kernel image:
/// `linux-image-6.1.0-57-arm64 (= 6.1.192-3)` gives `linux-image-6.1.0-57-arm64`.
pub fn versioned_kernel(depends: &str) -> Option<String> {
    depends
        .split([',', '|'])
        .filter_map(|alternative| alternative.split_whitespace().next())
        .map(|name| name.split(':').next().unwrap_or(name))
        .find(|name| name.starts_with("linux-image-") && *name != KERNEL_METAPACKAGE)
        .map(str::to_string)
}

/// One package record as `apt-cache show` prints it.
#[derive(Debug)]
pub struct Record(pub String);

impl Record {
    /// The value of a single-line field (`Version: 6.1.192-3`).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.0.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key == name).then(|| value.trim())
        })
    }

    fn package(&self) -> anyhow::Result<Package> {
        let name = self
            .field("Package")
            .context("package record without Package")?;
        let version = self
            .field("Version")
            .context("package record without Version")?;
        Ok(Package {
            name: name.to_string(),
            version: version.to_string(),
            size: self.field("Size").and_then(|size| size.parse().ok()),
        })
    }
}

/// The candidate records of `name:arm64` for each of `names` that apt knows.
fn show(names: &[&str]) -> anyhow::Result<Vec<Record>> {
    let output = Command::new("apt-cache")
        .args(["show", "--no-all-versions"])
        .args(names.iter().map(|name| format!("{name}:{ARCH}")))
        .stdin(Stdio::null())
        .output()
        .context("running apt-cache")?;
    // Unknown names only make apt-cache fail and warn; the records of the others still print.
    Ok(records(&String::from_utf8_lossy(&output.stdout)))
}

/// The records of `apt-cache show` output (separated by blank lines).
pub fn records(text: &str) -> Vec<Record> {
    text.split("\n\n")
        .filter(|record| !record.trim().is_empty())
        .map(|record| Record(record.to_string()))
        .collect()
}

fn find<'a>(records: &'a [Record], package: &str) -> Option<&'a Record> {
    records
        .iter()
        .find(|record| record.field("Package") == Some(package))
}

/// Whether dpkg installs arm64 packages here (the native or a foreign architecture).
fn arm64_enabled() -> anyhow::Result<bool> {
    require_tool("dpkg")?;
    let native = run_captured(Command::new("dpkg").arg("--print-architecture"))?;
    let foreign = run_captured(Command::new("dpkg").arg("--print-foreign-architectures"))?;
    Ok([native, foreign].iter().any(|output| {
        String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .any(|arch| arch == ARCH)
    }))
}

fn apt_get_update() -> anyhow::Result<()> {
    let output = Command::new("apt-get")
        .arg("update")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .output()
        .context("running apt-get update")?;
    if !output.status.success() {
        bail!(
            "`apt-get update` failed ({}):\n{}\nIs the network up? Run `apt-get update` as \
             root to see why, then `cargo xtask fetch-guest` again",
            output.status,
            tail(&output)
        );
    }
    Ok(())
}

/// Stops with the command to run when we are not root.
fn require_root(why: &str) -> anyhow::Result<()> {
    if !running_as_root() {
        bail!(
            "{why}, and fixing that needs root: run `sudo sh -c '{ENABLE_ARM64}'`, then \
             `cargo xtask fetch-guest` again"
        );
    }
    Ok(())
}

/// Stops when a Debian tool is missing: without apt the packages cannot be had at all.
fn require_tool(tool: &str) -> anyhow::Result<()> {
    let found = Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        bail!(
            "{tool} not found: fetch-guest takes Debian's arm64 kernel and busybox-static with \
             apt. On a Debian 12 machine run `sudo sh -c '{ENABLE_ARM64}'`, then `cargo xtask \
             fetch-guest`"
        );
    }
    Ok(())
}

/// Whether `id -u` says 0 (as install.rs asks).
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// Runs a command with its output captured; its stderr goes into the error when it fails.
fn run_captured(command: &mut Command) -> anyhow::Result<Output> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!("{command:?} failed ({}):\n{}", output.status, tail(&output));
    }
    Ok(output)
}

/// The last lines of a command's stderr (and stdout), enough to see why it failed.
fn tail(output: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(12)..].join("\n")
}

fn bytes_of_files_starting_with(dir: &Path, prefix: &str) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(prefix))
        .filter_map(|entry| entry.metadata().ok())
        .map(|metadata| metadata.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metapackage_dependency_names_the_versioned_kernel() {
        assert_eq!(
            versioned_kernel("linux-image-6.1.0-57-arm64 (= 6.1.192-3)").as_deref(),
            Some("linux-image-6.1.0-57-arm64")
        );
        let alternatives = "initramfs-tools | linux-initramfs-tool, linux-image-6.1.0-50-arm64:arm64 (= 6.1.176-1)";
        assert_eq!(
            versioned_kernel(alternatives).as_deref(),
            Some("linux-image-6.1.0-50-arm64"),
            "alternatives and an architecture qualifier"
        );
        assert_eq!(versioned_kernel("linux-image-arm64, busybox"), None);
        assert_eq!(versioned_kernel(""), None);
    }

    #[test]
    fn records_are_split_and_found_by_package() {
        let text = "Package: linux-image-arm64\nVersion: 6.1.192-3\n\
                    Depends: linux-image-6.1.0-57-arm64 (= 6.1.192-3)\n\n\
                    Package: busybox-static\nVersion: 1:1.35.0-4+deb12u1+b1\n\n";
        let records = records(text);
        assert_eq!(records.len(), 2);
        let busybox = find(&records, "busybox-static").unwrap();
        assert_eq!(busybox.field("Version"), Some("1:1.35.0-4+deb12u1+b1"));
        assert_eq!(
            busybox.field("Depends"),
            None,
            "not the other record's field"
        );
        assert!(find(&records, "linux-image").is_none(), "whole names only");
    }

    #[test]
    fn record_fields_are_read_by_exact_name() {
        let record = Record(
            "Package: busybox-static\nSource: busybox (1:1.35.0-4+deb12u1)\n\
             Version: 1:1.35.0-4+deb12u1+b1\nInstalled-Size: 2025\nSize: 822236\n"
                .to_string(),
        );
        let package = record.package().unwrap();
        assert_eq!(package.name, "busybox-static");
        assert_eq!(package.version, "1:1.35.0-4+deb12u1+b1", "epoch colon kept");
        assert_eq!(package.size, Some(822_236), "Size, not Installed-Size");
        assert_eq!(record.field("Depends"), None);
    }
}
