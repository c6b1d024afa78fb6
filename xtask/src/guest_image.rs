//! `cargo xtask fetch-guest`: the Linux guest's kernel and initramfs, from Debian's packages.
//!
//! Debian's stock arm64 kernel (the package `linux-image-arm64` depends on) gives the Image and
//! the virtio drivers Debian builds as modules; `busybox-static` gives the initramfs its shell
//! and tools; `tests/linux/init` is its init, and `tests/linux/tests/*` the test scripts it
//! runs on request (in `/tests`). Everything lives in `target/guest/linux/`:
//!
//! - `debs/`: the downloaded packages (kept, so a changed init script needs neither root nor
//!   network);
//! - `Image`: the uncompressed arm64 Image (Linux Documentation/arch/arm64/booting.rst);
//! - `initramfs.cpio`: an uncompressed newc archive (see [`initramfs`]);
//! - `version`: the kernel version, as `uname -r` prints it;
//! - `stamp`: the packages the outputs were made from.
//!
//! Outputs newer than every input (the .debs, the init script and the test scripts) are left
//! alone. To take newer Debian packages, delete `target/guest/linux/`.

mod apt;
mod cpio;
mod initramfs;
mod kernel;
mod progress;
mod stamp;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};

use apt::Package;
use kernel::Configured;
use progress::{finish, step};
use stamp::{Stamp, StampedPackage};

/// Bumped whenever what we make from the same packages changes (archive layout, modules), so
/// that existing outputs count as stale. 2: the test scripts in /tests.
const FORMAT: u32 = 2;

/// The virtio transport and device drivers the guest needs, with their config options. Debian
/// 12 builds `virtio` (and `virtio_ring`) in and these three as modules; whichever are modules
/// go into the initramfs with their dependencies.
const VIRTIO_DRIVERS: [(&str, &str); 4] = [
    ("virtio", "CONFIG_VIRTIO"),
    ("virtio_mmio", "CONFIG_VIRTIO_MMIO"),
    ("virtio_blk", "CONFIG_VIRTIO_BLK"),
    ("virtio_console", "CONFIG_VIRTIO_CONSOLE"),
];

/// Where the guest files live, relative to the workspace root.
pub const GUEST_DIR: &str = "target/guest/linux";

/// The two files a Linux guest boots from.
#[allow(dead_code, reason = "the build calls it for manifests that boot Linux")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinuxPaths {
    pub image: PathBuf,
    pub initrd: PathBuf,
}

/// Where `fetch-guest` puts the kernel Image and the initramfs.
#[allow(dead_code, reason = "the build calls it for manifests that boot Linux")]
pub fn linux_paths(root: &Path) -> LinuxPaths {
    let layout = Layout::new(root);
    LinuxPaths {
        image: layout.image,
        initrd: layout.initrd,
    }
}

/// Runs the fetch when `path` is one of its outputs and is missing or older than its inputs;
/// does nothing for any other path.
#[allow(dead_code, reason = "the build calls it for manifests that boot Linux")]
pub fn ensure_fetched(root: &Path, path: &Path) -> anyhow::Result<()> {
    let layout = Layout::new(root);
    let path = root.join(path);
    if layout.outputs().contains(&path.as_path()) && !is_fresh(&layout) {
        fetch_into(&layout)?;
    }
    Ok(())
}

/// `cargo xtask fetch-guest`.
pub fn fetch(root: &Path) -> anyhow::Result<()> {
    let layout = Layout::new(root);
    if is_fresh(&layout) {
        let stamp = Stamp::read(&layout.stamp)?;
        eprintln!(
            "fetch-guest: up to date in {} ({})",
            layout.dir.display(),
            stamp.describe()
        );
        return Ok(());
    }
    fetch_into(&layout)
}

/// The paths of one checkout's guest files.
struct Layout {
    dir: PathBuf,
    debs: PathBuf,
    extracted: PathBuf,
    image: PathBuf,
    initrd: PathBuf,
    version: PathBuf,
    stamp: PathBuf,
    init_script: PathBuf,
    /// `tests/linux/tests/`: the scripts init runs on request, packed as /tests.
    test_scripts: PathBuf,
}

impl Layout {
    fn new(root: &Path) -> Self {
        // Always under the root's `target/`, even with CARGO_TARGET_DIR set: manifests name
        // these files by that path (they are not cargo's outputs).
        let dir = root.join(GUEST_DIR);
        Self {
            debs: dir.join("debs"),
            extracted: dir.join("extracted"),
            image: dir.join("Image"),
            initrd: dir.join("initramfs.cpio"),
            version: dir.join("version"),
            stamp: dir.join("stamp"),
            init_script: root.join("tests/linux/init"),
            test_scripts: root.join("tests/linux/tests"),
            dir,
        }
    }

    fn outputs(&self) -> [&Path; 3] {
        [&self.image, &self.initrd, &self.version]
    }
}

/// Whether the stamp is of this [`FORMAT`] and every output is newer than every input.
fn is_fresh(layout: &Layout) -> bool {
    let Ok(stamp) = Stamp::read(&layout.stamp) else {
        return false;
    };
    if stamp.format != FORMAT {
        return false;
    }
    let inputs = stamp
        .packages
        .iter()
        .map(|stamped| layout.debs.join(&stamped.file))
        .chain([layout.init_script.clone()])
        .chain(initramfs::test_script_inputs(&layout.test_scripts));
    let Some(newest_input) = inputs
        .map(|input| modified(&input))
        .collect::<Option<Vec<_>>>()
        .and_then(|times| times.into_iter().max())
    else {
        return false;
    };
    layout
        .outputs()
        .iter()
        .all(|output| modified(output).is_some_and(|time| time >= newest_input))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
}

fn fetch_into(layout: &Layout) -> anyhow::Result<()> {
    let init_script = std::fs::read(&layout.init_script)
        .with_context(|| format!("reading the init script {}", layout.init_script.display()))?;
    let test_scripts = initramfs::read_test_scripts(&layout.test_scripts)?;
    std::fs::create_dir_all(&layout.debs)
        .with_context(|| format!("creating {}", layout.debs.display()))?;
    let [kernel_deb, busybox_deb] = download_step(layout)?;

    let kernel_dir = layout.extracted.join("kernel");
    let busybox_dir = layout.extracted.join("busybox");
    step("extracting the packages (dpkg-deb -x)", |_| {
        remove_if_present(&layout.extracted)?;
        std::fs::create_dir_all(&layout.extracted)?;
        apt::extract(&kernel_deb.path, &kernel_dir)?;
        apt::extract(&busybox_deb.path, &busybox_dir)?;
        let done = format!(
            "extracted {} and {}",
            kernel_deb.package.name, busybox_deb.package.name
        );
        Ok((done, ()))
    })?;

    let (version, modules_dir) = kernel::modules_dir(&kernel_dir)?;
    step("writing the uncompressed Image", |_| {
        let vmlinuz = kernel_dir.join(format!("boot/vmlinuz-{version}"));
        let bytes =
            std::fs::read(&vmlinuz).with_context(|| format!("reading {}", vmlinuz.display()))?;
        let was_gzip = bytes.starts_with(kernel::GZIP_MAGIC);
        let image =
            kernel::uncompressed_image(bytes).with_context(|| format!("{}", vmlinuz.display()))?;
        let header = kernel::parse_image_header(&image)?;
        write_atomically(&layout.image, &image)?;
        let done = format!(
            "Image: {} MiB ({}; image_size {:#x}, text_offset {:#x})",
            image.len() >> 20,
            if was_gzip {
                "gunzipped vmlinuz"
            } else {
                "vmlinuz is already uncompressed"
            },
            header.image_size,
            header.text_offset
        );
        Ok((done, ()))
    })?;

    step("building the initramfs", |_| {
        let config_path = kernel_dir.join(format!("boot/config-{version}"));
        let config = std::fs::read_to_string(&config_path)
            .with_context(|| format!("reading {}", config_path.display()))?;
        let (modules, report) = modules_to_load(&config, &modules_dir)?;
        let busybox_path = busybox_dir.join("bin/busybox");
        let busybox = std::fs::read(&busybox_path)
            .with_context(|| format!("reading {}", busybox_path.display()))?;
        let archive = initramfs::build(&busybox, &init_script, &test_scripts, &modules)?;
        write_atomically(&layout.initrd, &archive)?;
        let done = format!("initramfs: {} KiB; {report}", archive.len() >> 10);
        Ok((done, ()))
    })?;

    write_atomically(&layout.version, format!("{version}\n").as_bytes())?;
    let stamp = Stamp {
        format: FORMAT,
        packages: [&kernel_deb, &busybox_deb]
            .map(|deb| StampedPackage {
                name: deb.package.name.clone(),
                version: deb.package.version.clone(),
                file: deb
                    .path
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            })
            .to_vec(),
    };
    write_atomically(&layout.stamp, stamp.render().as_bytes())?;
    // The extracted kernel package is some 350 MiB of modules we no longer need.
    remove_if_present(&layout.extracted)?;
    eprintln!(
        "fetch-guest: Linux {version} in {} ({})",
        layout.dir.display(),
        stamp.describe()
    );
    Ok(())
}

/// A package and its .deb in `debs/`.
struct Deb {
    package: Package,
    path: PathBuf,
}

/// The kernel and busybox .debs: those of the stamp when they are still there (no apt needed),
/// else the current ones apt resolves, downloaded unless already present. Other .debs are
/// removed.
fn download_step(layout: &Layout) -> anyhow::Result<[Deb; 2]> {
    if let Ok(stamp) = Stamp::read(&layout.stamp)
        && let [kernel, busybox] = stamp.packages.as_slice()
        && [kernel, busybox]
            .iter()
            .all(|stamped| layout.debs.join(&stamped.file).is_file())
    {
        return Ok([kernel, busybox].map(|stamped| Deb {
            package: Package {
                name: stamped.name.clone(),
                version: stamped.version.clone(),
                size: None,
            },
            path: layout.debs.join(&stamped.file),
        }));
    }
    let packages = step(
        "resolving linux-image-arm64 and busybox-static for arm64",
        |bar| {
            let packages = apt::resolve_packages(bar)?;
            let names = packages.iter().map(|p| format!("{} {}", p.name, p.version));
            let done = format!("resolved {}", names.collect::<Vec<_>>().join(", "));
            Ok((done, packages))
        },
    )?;
    let mut debs = Vec::new();
    let mut missing = Vec::new();
    for package in packages {
        match apt::find_deb(&layout.debs, &package)? {
            Some(path) => debs.push(Deb { package, path }),
            None => missing.push(package),
        }
    }
    if !missing.is_empty() {
        let total: u64 = missing.iter().filter_map(|package| package.size).sum();
        let bar = ProgressBar::new(total).with_style(
            ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {msg} ({elapsed})")
                .expect("a valid template"),
        );
        for package in missing {
            bar.set_message(format!("downloading {}", package.name));
            let path =
                apt::download(&package, &layout.debs, &bar).inspect_err(|_| bar.abandon())?;
            debs.push(Deb { package, path });
        }
        finish(
            &bar,
            format!(
                "downloaded {} MiB into {}",
                bar.position() >> 20,
                layout.debs.display()
            ),
        );
    }
    for entry in std::fs::read_dir(&layout.debs)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "deb")
            && !debs.iter().any(|deb| deb.path == path)
        {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    debs.sort_by_key(|deb| deb.package.name == apt::BUSYBOX_PACKAGE);
    let [kernel, busybox]: [Deb; 2] = debs
        .try_into()
        .map_err(|_| anyhow::anyhow!("expected two packages"))?;
    Ok([kernel, busybox])
}

/// The virtio modules Debian's config leaves as modules, with their dependencies, in load
/// order; and a report of how each driver is configured.
fn modules_to_load(
    config: &str,
    modules_dir: &Path,
) -> anyhow::Result<(Vec<initramfs::ModuleFile>, String)> {
    let mut wanted = Vec::new();
    let mut report = Vec::new();
    for (name, option) in VIRTIO_DRIVERS {
        match kernel::configured(config, option) {
            Configured::BuiltIn => report.push(format!("{name} built in")),
            Configured::Module => wanted.push(name.to_string()),
            Configured::Absent => bail!("the kernel's config lacks {option}: no {name} driver"),
        }
    }
    let builtin = match std::fs::read_to_string(modules_dir.join("modules.builtin")) {
        Ok(text) => kernel::builtin_names(&text),
        Err(_) => Vec::new(),
    };
    let index = kernel::index_modules(modules_dir)?;
    let mut contents: HashMap<String, Vec<u8>> = HashMap::new();
    let order = kernel::load_order(
        &wanted,
        &|name| builtin.iter().any(|built| built == name),
        &mut |name| {
            let (_, path) = index
                .iter()
                .find(|(indexed, _)| indexed == name)
                .with_context(|| format!("module {name} is neither built in nor in the package"))?;
            if path.extension().is_none_or(|ext| ext != "ko") {
                bail!(
                    "module {name} is compressed ({}): busybox insmod takes plain .ko files; \
                     decompressing it is not implemented yet",
                    path.display()
                );
            }
            let module =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let depends = kernel::modinfo_depends(&kernel::modinfo_section(&module)?);
            contents.insert(name.to_string(), module);
            Ok(depends)
        },
    )?;
    report.push(format!("modules loaded by init: {}", order.join(", ")));
    let modules = order
        .into_iter()
        .map(|name| initramfs::ModuleFile {
            contents: contents.remove(&name).unwrap_or_default(),
            name,
        })
        .collect();
    Ok((modules, report.join(", ")))
}

/// Writes through a temporary file and a rename, so that an interrupted fetch never leaves a
/// truncated output that looks newer than its inputs.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let temporary = path.with_extension("partial");
    std::fs::write(&temporary, bytes)
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("renaming to {}", path.display()))
}

fn remove_if_present(dir: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(error).with_context(|| format!("removing {}", dir.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn scratch_root(name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        remove_if_present(&root).unwrap();
        root
    }

    fn set_modified(path: &Path, time: SystemTime) {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(time).unwrap();
    }

    #[test]
    fn outputs_newer_than_the_inputs_are_left_alone() {
        let root = scratch_root("guest-image-fresh");
        let layout = Layout::new(&root);
        std::fs::create_dir_all(&layout.debs).unwrap();
        std::fs::create_dir_all(layout.init_script.parent().unwrap()).unwrap();
        let stamp = Stamp {
            format: FORMAT,
            packages: ["linux-image-6.1.0-57-arm64", "busybox-static"]
                .map(|name| StampedPackage {
                    name: name.into(),
                    version: "1".into(),
                    file: format!("{name}_1_arm64.deb"),
                })
                .to_vec(),
        };
        std::fs::write(&layout.stamp, stamp.render()).unwrap();
        // Not real packages: a fetch would reuse them and fail in dpkg-deb.
        let inputs = stamp.packages.iter().map(|p| layout.debs.join(&p.file));
        let inputs: Vec<PathBuf> = inputs.chain([layout.init_script.clone()]).collect();
        let start = SystemTime::now() - Duration::from_secs(100);
        for input in &inputs {
            std::fs::write(input, b"not a deb").unwrap();
            set_modified(input, start);
        }
        for output in layout.outputs() {
            std::fs::write(output, b"made").unwrap();
            set_modified(output, start + Duration::from_secs(10));
        }
        assert!(is_fresh(&layout));
        ensure_fetched(&root, &layout.initrd).expect("fresh: no fetch");

        let script = layout.test_scripts.join("disk.sh");
        std::fs::create_dir_all(&layout.test_scripts).unwrap();
        std::fs::write(&script, b"#!/bin/sh\n").unwrap();
        assert!(!is_fresh(&layout), "a test script was added");
        set_modified(&script, start);
        std::fs::File::open(&layout.test_scripts)
            .and_then(|dir| dir.set_modified(start))
            .unwrap();
        assert!(is_fresh(&layout));
        set_modified(&script, start + Duration::from_secs(20));
        assert!(!is_fresh(&layout), "a test script changed");
        set_modified(&script, start);

        set_modified(&layout.init_script, start + Duration::from_secs(20));
        assert!(!is_fresh(&layout), "the init script changed");
        let error = ensure_fetched(&root, &layout.image).expect_err("a fetch, from the .debs");
        assert!(format!("{error:#}").contains("dpkg-deb"), "{error:#}");

        set_modified(&layout.init_script, start);
        let other_format = Stamp {
            format: FORMAT + 1,
            packages: stamp.packages.clone(),
        };
        std::fs::write(&layout.stamp, other_format.render()).unwrap();
        assert!(!is_fresh(&layout), "made by another fetch-guest");
        std::fs::write(&layout.stamp, stamp.render()).unwrap();
        std::fs::remove_file(&layout.version).unwrap();
        assert!(!is_fresh(&layout), "an output is missing");
        remove_if_present(&root).unwrap();
    }

    #[test]
    fn only_the_outputs_trigger_a_fetch() {
        let root = scratch_root("guest-image-outputs");
        // No init script, no packages: a fetch would fail, so Ok proves none was attempted.
        assert!(ensure_fetched(&root, Path::new("target/guest/linux/debs")).is_ok());
        assert!(ensure_fetched(&root, Path::new("Cargo.toml")).is_ok());
        let paths = linux_paths(&root);
        let error = ensure_fetched(&root, &paths.initrd).unwrap_err();
        assert!(
            format!("{error:#}").contains("tests/linux/init"),
            "{error:#}"
        );
        let relative = paths.image.strip_prefix(&root).unwrap();
        assert!(
            ensure_fetched(&root, relative).is_err(),
            "relative to the root"
        );
        assert!(!root.exists(), "nothing was made");
    }
}
