//! `cargo xtask build`: manifest → servers and guests → payload → kernel image.
//!
//! The order matters: the kernel `include_bytes!`s the payload named by `HV_BOOT_PAYLOAD`, so
//! the servers are built first (all in one cargo invocation for [`TARGET`], so cargo can
//! schedule them together), then the guests of the manifest's VMs (one invocation for
//! [`GUEST_TARGET`]: guests are ordinary EL1 programs with floating point), then everything is
//! packed by the manifest crate into `payload.bin`, then the kernel is built around it. The
//! files of the manifest's Linux VMs (`kernel`, `initrd`) are read before anything is built,
//! fetched first when they are `cargo xtask fetch-guest`'s outputs.
//! Everything of one image lives under `<target>/images/<manifest name>/`: `payload.bin`, one
//! `<server>.elf` copy per server (for defmt decoding and gdb), one `<vm>.elf` copy per VM (for
//! gdb), and QEMU's working files (`defmt.log`, `qemu.log`); the bootable ELF itself is
//! `<name>.elf` beside it. Servers and VMs never share a name (the manifest refuses it).
//!
//! What only the build can know is checked here and reported at the manifest's line and key,
//! like the manifest's own refusals: that each `binary` is a server package and each `image` a
//! guest package of the workspace (`packages.rs`, before cargo runs), that each image the build
//! made lies where the kernel will load it, and that the machine's RAM holds the kernel image
//! with its payload and everything the kernel allocates (`Manifest::check_images`,
//! `Manifest::check_ram`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};

use crate::Workspace;
use manifest::{Manifest, ManifestError};

mod packages;

/// The Rust target of the kernel and the servers.
pub const TARGET: &str = "aarch64-unknown-none-softfloat";

/// The Rust target of guest images (hard float: a guest owns its FP/SIMD state).
pub const GUEST_TARGET: &str = "aarch64-unknown-none";

/// Environment variable through which the kernel build finds the payload.
pub const PAYLOAD_ENV: &str = "HV_BOOT_PAYLOAD";

/// A built boot image and the files that belong to it.
#[derive(Clone, Debug)]
pub struct Image {
    /// The manifest's system name.
    pub name: String,
    /// `<target>/images/<name>/`: payload, server ELF copies, QEMU's working directory.
    pub dir: PathBuf,
    /// `<target>/images/<name>.elf`: what QEMU loads with `-kernel`.
    pub elf: PathBuf,
    /// (server name, path of its ELF copy), in manifest order: protection domain i + 1.
    pub servers: Vec<(String, PathBuf)>,
}

/// Why a manifest did not turn into an image before anything was compiled: the text to show
/// the user (a rendered diagnostic, or "cannot read ...").
pub type Diagnostic = String;

/// Builds the image of `manifest_path`.
///
/// The outer error is a failure of the build machinery (cargo failed, a file could not be
/// written); the inner one is a refused manifest, already rendered for the user.
pub fn build_image(
    workspace: &Workspace,
    manifest_path: &Path,
) -> anyhow::Result<Result<Image, Diagnostic>> {
    let (manifest, source) = match load_manifest(manifest_path) {
        Ok(loaded) => loaded,
        Err(diagnostic) => return Ok(Err(diagnostic)),
    };
    let name = manifest.name().to_string();
    ensure!(
        is_file_name(&name),
        "{}: system name {name:?} cannot be used as a directory name",
        manifest_path.display()
    );
    let kind = if manifest.is_test_system() {
        " (test system)"
    } else {
        ""
    };
    eprintln!(
        "xtask: building image `{name}`{kind} from {}",
        manifest_path.display()
    );

    // Before any compiling: a package that is not the program the manifest says, or a missing
    // kernel, should not wait for every server to build (or for cargo's own error).
    let packages = packages::Packages::read(&workspace.root)?;
    let wrong_package = manifest.programs().iter().find_map(|program| {
        let why = packages.refusal(program)?;
        Some(program.error(why))
    });
    if let Some(refusal) = wrong_package {
        return Ok(Err(refusal.render(&source)));
    }
    let files = match read_guest_files(workspace, &manifest) {
        Ok(files) => files,
        Err(error) => return Ok(Err(error.render(&source))),
    };
    let binaries = manifest.binaries();
    let mut elves = build_packages(workspace, TARGET, &binaries, "server")?;
    let guests = manifest.guests();
    let guest_elves = build_packages(workspace, GUEST_TARGET, &guests, "vm")?;

    let dir = workspace.images_dir().join(&name);
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut servers = Vec::with_capacity(binaries.len());
    for (server, _) in &binaries {
        let copy = dir.join(format!("{server}.elf"));
        let bytes = elves
            .get(server)
            .with_context(|| format!("no ELF was built for server `{server}`"))?;
        fs::write(&copy, bytes).with_context(|| format!("writing {}", copy.display()))?;
        servers.push((server.clone(), copy));
    }
    for (vm, bytes) in guest_elves {
        let copy = dir.join(format!("{vm}.elf"));
        fs::write(&copy, &bytes).with_context(|| format!("writing {}", copy.display()))?;
        // The manifest refuses a VM named like a server, so nothing is replaced here.
        elves.insert(vm, bytes);
    }

    // Each image where the kernel will look for it, at the key naming its package.
    if let Err(refusal) = manifest.check_images(&elves) {
        return Ok(Err(refusal.render(&source)));
    }
    let payload = match manifest.payload_with_files(&elves, &files) {
        Ok(payload) => payload,
        // What is wrong with a Linux VM's files is shown at the manifest key naming them.
        Err(error) => match error.downcast_ref::<ManifestError>() {
            Some(refusal) => return Ok(Err(refusal.render(&source))),
            None => {
                return Err(error.context(format!(
                    "{}: packing the boot payload",
                    manifest_path.display()
                )));
            }
        },
    };
    // The kernel image carries the payload: with it, and the servers' images, the machine's RAM
    // must still hold what the kernel allocates at boot.
    if let Err(refusal) = manifest.check_ram(&elves, payload.len() as u64) {
        return Ok(Err(refusal.render(&source)));
    }
    let payload_path = dir.join("payload.bin");
    fs::write(&payload_path, &payload)
        .with_context(|| format!("writing {}", payload_path.display()))?;
    let payload_path = fs::canonicalize(&payload_path)
        .with_context(|| format!("resolving {}", payload_path.display()))?;

    let kernel = build_kernel(workspace, &payload_path)?;
    let elf = workspace.images_dir().join(format!("{name}.elf"));
    fs::copy(&kernel, &elf)
        .with_context(|| format!("copying {} to {}", kernel.display(), elf.display()))?;
    Ok(Ok(Image {
        name,
        dir,
        elf,
        servers,
    }))
}

/// Loads and validates the manifest, returned with its source; a refusal comes back rendered
/// against the source.
fn load_manifest(path: &Path) -> Result<(Manifest, String), Diagnostic> {
    let source = fs::read_to_string(path)
        .map_err(|error| format!("error: cannot read manifest {}: {error}", path.display()))?;
    match Manifest::load(path) {
        Ok(manifest) => Ok((manifest, source)),
        Err(error) => Err(error.render(&source)),
    }
}

/// Reads every file the manifest's Linux VMs boot from (paths relative to the workspace root),
/// keyed by the path as written. A file `cargo xtask fetch-guest` makes is fetched first when
/// it is missing or stale; a file that cannot be read is an error at the key naming it.
fn read_guest_files(
    workspace: &Workspace,
    manifest: &Manifest,
) -> Result<BTreeMap<PathBuf, Vec<u8>>, ManifestError> {
    let mut files = BTreeMap::new();
    for file in manifest.guest_files() {
        if let Err(error) = crate::guest_image::ensure_fetched(&workspace.root, &file.path) {
            return Err(file.error(format!(
                "fetching {} failed: {error:#}",
                file.path.display()
            )));
        }
        let path = workspace.root.join(&file.path);
        let bytes = fs::read(&path).map_err(|error| {
            file.error(format!(
                "cannot read {} (vm `{}`): {error}",
                path.display(),
                file.vm
            ))
        })?;
        files.insert(file.path, bytes);
    }
    Ok(files)
}

/// Builds every distinct package of `programs` ((server or VM name, cargo package)) for
/// `target` in one cargo invocation; returns name → ELF. `kind` ("server", "vm") is for
/// messages. Nothing is built when `programs` is empty.
fn build_packages(
    workspace: &Workspace,
    target: &str,
    programs: &[(String, String)],
    kind: &str,
) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let packages: BTreeSet<&str> = programs
        .iter()
        .map(|(_, package)| package.as_str())
        .collect();
    if packages.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut cargo = target_build(workspace, target);
    for package in &packages {
        cargo.args(["-p", package]);
    }
    run_cargo(cargo, &format!("the {kind}s ({target})"))?;
    let release = workspace.release_dir(target);
    let mut elves = BTreeMap::new();
    for (name, package) in programs {
        let path = release.join(package);
        let bytes = fs::read(&path)
            .with_context(|| format!("reading {} ({kind} `{name}`)", path.display()))?;
        elves.insert(name.clone(), bytes);
    }
    Ok(elves)
}

/// Builds the kernel around `payload` (an absolute path); returns the path of its ELF.
pub(crate) fn build_kernel(workspace: &Workspace, payload: &Path) -> anyhow::Result<PathBuf> {
    let mut cargo = target_build(workspace, TARGET);
    cargo.args(["-p", "kernel"]).env(PAYLOAD_ENV, payload);
    run_cargo(cargo, "the kernel")?;
    Ok(workspace.release_dir(TARGET).join("kernel"))
}

/// defmt's compile-time log filter when the user set none: defmt's own default keeps only
/// `error!` frames, which would leave the decoded log nearly empty.
pub const DEFAULT_DEFMT_LOG: &str = "info";

/// `cargo build --release --target <target>`, from the workspace root, with `DEFMT_LOG`
/// defaulted (a user's `DEFMT_LOG` wins).
fn target_build(workspace: &Workspace, target: &str) -> Command {
    let mut cargo = workspace.cargo();
    cargo.args(["build", "--release", "--target", target]);
    if std::env::var_os("DEFMT_LOG").is_none() {
        cargo.env("DEFMT_LOG", DEFAULT_DEFMT_LOG);
    }
    cargo
}

fn run_cargo(mut cargo: Command, what: &str) -> anyhow::Result<()> {
    let status = cargo
        .status()
        .with_context(|| format!("starting cargo to build {what}"))?;
    if !status.success() {
        bail!("cargo build of {what} failed ({status})");
    }
    Ok(())
}

/// Whether `name` is usable as one path component.
fn is_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

/// Builds each distinct manifest once per xtask run, remembering failures as well.
#[derive(Default)]
pub struct ImageCache {
    images: BTreeMap<PathBuf, Result<Image, String>>,
}

impl ImageCache {
    /// The image of `manifest` (relative to the workspace root), built on first request; a
    /// refused manifest or a failed build comes back as the text to report.
    ///
    /// Two manifests with the same system name would share one image directory, so the
    /// second one is refused before it can overwrite the first one's image.
    pub fn get(&mut self, workspace: &Workspace, manifest: &Path) -> Result<Image, String> {
        let path = workspace.root.join(manifest);
        if let Some(image) = self.images.get(&path) {
            return image.clone();
        }
        let image = match self.name_clash(&path) {
            Some(clash) => Err(clash),
            None => match build_image(workspace, &path) {
                Ok(Ok(image)) => Ok(image),
                Ok(Err(diagnostic)) => Err(diagnostic),
                Err(error) => Err(format!("error: {error:#}")),
            },
        };
        self.images.insert(path, image.clone());
        image
    }

    /// The error to report when `path` names its system like an already built image.
    fn name_clash(&self, path: &Path) -> Option<String> {
        let manifest = Manifest::load(path).ok()?;
        let (other, _) = self.images.iter().find(|(_, built)| {
            built
                .as_ref()
                .is_ok_and(|built| built.name == manifest.name())
        })?;
        Some(format!(
            "error: {} and {} both name their system `{}`; images are stored by system name",
            other.display(),
            path.display(),
            manifest.name()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_names_must_be_one_path_component() {
        assert!(is_file_name("hello"));
        assert!(is_file_name("ipc-bench"));
        assert!(!is_file_name(""));
        assert!(!is_file_name(".."));
        assert!(!is_file_name("a/b"));
    }

    #[test]
    fn guests_build_for_the_hard_float_target() {
        let workspace = Workspace::locate();
        let args = |target| {
            let cargo = target_build(&workspace, target);
            let args: Vec<String> = cargo
                .get_args()
                .map(|arg| arg.to_string_lossy().into_owned())
                .collect();
            args.join(" ")
        };
        assert_eq!(
            args(GUEST_TARGET),
            "build --release --target aarch64-unknown-none"
        );
        assert_eq!(
            args(TARGET),
            "build --release --target aarch64-unknown-none-softfloat"
        );
        assert_eq!(
            workspace.release_dir(GUEST_TARGET),
            workspace.target_dir.join("aarch64-unknown-none/release")
        );
    }

    #[test]
    fn a_missing_guest_file_is_a_diagnostic_at_its_key() {
        let workspace = Workspace::locate();
        let dir = std::env::temp_dir().join(format!("xtask-guest-file-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("a temporary directory");
        let path = dir.join("linux.toml");
        let text = fs::read_to_string(workspace.root.join("manifests/linux.toml"))
            .expect("manifests/linux.toml")
            .replace(
                "\"target/guest/linux/Image\"",
                "\"target/guest/no-such-kernel/Image\"",
            );
        fs::write(&path, &text).expect("writing the manifest");
        let result = build_image(&workspace, &path).expect("a missing file is not a failure");
        let _ = fs::remove_dir_all(&dir);
        let diagnostic = result.expect_err("a missing kernel cannot build");
        assert!(diagnostic.contains("vms.linux.kernel"), "{diagnostic}");
        assert!(
            diagnostic.contains("cannot read") && diagnostic.contains("no-such-kernel/Image"),
            "{diagnostic}"
        );
    }

    #[test]
    fn packages_are_classified_from_the_workspace() {
        use packages::Kind;
        let packages = packages::Packages::read(&Workspace::locate().root).expect("the workspace");
        let cases = [
            ("hello-server", Kind::Server),
            ("vmm-server", Kind::Server),
            ("supervisor", Kind::Server),
            ("test-guest", Kind::Guest),
            ("abi", Kind::Library),
            ("userlib", Kind::Library),
            ("xtask", Kind::Host),
            ("kernel", Kind::Other),
        ];
        for (name, kind) in cases {
            assert_eq!(packages.kind(name), Some(kind), "{name}");
        }
        assert_eq!(packages.kind("no-such-package"), None);
    }

    /// Builds `manifest` (the text of test-guest.toml with `from` replaced by `to`) and returns
    /// the refusal, which must come before cargo runs.
    fn refusal_of_test_guest_with(from: &str, to: &str) -> String {
        let workspace = Workspace::locate();
        let dir =
            std::env::temp_dir().join(format!("xtask-package-{}-{}", std::process::id(), to.len()));
        fs::create_dir_all(&dir).expect("a temporary directory");
        let path = dir.join("test-guest.toml");
        let text = fs::read_to_string(workspace.root.join("manifests/test-guest.toml"))
            .expect("manifests/test-guest.toml");
        assert!(text.contains(from), "{from}");
        fs::write(&path, text.replacen(from, to, 1)).expect("writing the manifest");
        let result = build_image(&workspace, &path).expect("a refusal is not a failure");
        let _ = fs::remove_dir_all(&dir);
        result.expect_err("the manifest names the wrong package")
    }

    #[test]
    fn a_wrong_package_is_refused_at_its_key_before_cargo_runs() {
        let cases = [
            (
                "binary = \"vmm-server\"",
                "binary = \"test-guest\"",
                "servers.vmm.binary: package `test-guest` is a guest",
            ),
            (
                "binary = \"vmm-server\"",
                "binary = \"vmm-core\"",
                "servers.vmm.binary: package `vmm-core` is a library",
            ),
            (
                "binary = \"vmm-server\"",
                "binary = \"vmm-srever\"",
                "servers.vmm.binary: no package `vmm-srever` in the workspace",
            ),
            (
                "binary = \"vmm-server\"",
                "binary = \"kernel\"",
                "servers.vmm.binary: package `kernel` is not a server",
            ),
            (
                "binary = \"vmm-server\"",
                "binary = \"xtask\"",
                "servers.vmm.binary: package `xtask` is a host tool",
            ),
            (
                "image = \"test-guest\"",
                "image = \"hello-server\"",
                "vms.guest.image: package `hello-server` is a server",
            ),
        ];
        for (from, to, expected) in cases {
            let diagnostic = refusal_of_test_guest_with(from, to);
            assert!(diagnostic.contains(expected), "{to}: {diagnostic}");
            // The rendered form points at the manifest's line, like the compiler's refusals.
            assert!(diagnostic.contains("test-guest.toml:"), "{diagnostic}");
        }
        let choices = refusal_of_test_guest_with("image = \"test-guest\"", "image = \"abi\"");
        assert!(
            choices.contains("the guest packages are `test-guest`"),
            "{choices}"
        );
    }

    #[test]
    fn missing_manifest_is_a_diagnostic_not_an_error() {
        let workspace = Workspace::locate();
        let result = build_image(&workspace, Path::new("/nonexistent/manifest.toml"))
            .expect("a missing manifest is not a machinery failure");
        let diagnostic = result.expect_err("a missing manifest cannot build");
        assert!(diagnostic.contains("cannot read manifest /nonexistent/manifest.toml"));
    }
}
