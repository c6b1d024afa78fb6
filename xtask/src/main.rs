//! `cargo xtask`: the host-side driver of the project.
//!
//! Turns a capability manifest into a bootable image (`build`), runs an image in QEMU (`run`),
//! runs the host and QEMU test suites (`test`), the deterministic `-icount` benchmarks
//! (`bench`) and the fuzz targets (`fuzz`). Every subcommand first makes sure the machine has
//! what it needs (see [`install`]).
//!
//! Paths are resolved against the workspace root (the parent of this crate's directory), never
//! the current directory, so `cargo xtask` behaves the same from anywhere in the checkout.

mod bench;
mod build;
mod check;
mod defmt_log;
mod fuzz;
mod guest_image;
mod install;
mod mutants;
mod qemu;
mod test;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{ArgGroup, Parser, Subcommand};

/// Command line of `cargo xtask`.
#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Build, run, test and benchmark the hypervisor"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the boot image described by a manifest; prints the path of the image ELF.
    Build {
        /// The manifest (TOML), relative to the workspace root or absolute.
        manifest: PathBuf,
    },
    /// Build an image and run it in QEMU; exits with QEMU's (= the system's) exit status.
    Run {
        /// The manifest (TOML); default manifests/linux.toml (Debian's Linux with a shell).
        manifest: Option<PathBuf>,
        /// Kill QEMU after this many seconds and exit 124.
        #[arg(long, value_name = "SECS")]
        timeout: Option<u64>,
        /// Deterministic instruction counting: `-icount shift=0,sleep=off -seed 1`.
        #[arg(long)]
        icount: bool,
        /// Log interrupts and guest errors to target/images/<name>/qemu.log.
        #[arg(long)]
        debug_int: bool,
        /// Wait for gdb on tcp::1234 before starting (`-s -S`).
        #[arg(long)]
        gdb: bool,
    },
    /// Run the host tests (`cargo test --workspace`) and the QEMU tests of tests/qemu-tests.toml.
    Test {
        /// Only tests whose name contains this (also passed to `cargo test`).
        filter: Option<String>,
        /// Skip `cargo test --workspace`.
        #[arg(long, conflicts_with = "host_only")]
        qemu_only: bool,
        /// Skip the QEMU tests.
        #[arg(long)]
        host_only: bool,
    },
    /// Run the benchmarks of tests/benches.toml under `-icount` and print their figures.
    Bench {
        /// Only benchmarks whose name contains this.
        name: Option<String>,
        /// Instead of the figures, count the kernel's instructions per system call of one
        /// steady-state round trip from a QEMU exec trace of the named benchmark.
        #[arg(long)]
        trace: bool,
    },
    /// Static gates: rustfmt, clippy -D warnings on host and target crates, docs links.
    Check,
    /// Download Debian's arm64 kernel and busybox-static and build the Linux guest's Image and
    /// initramfs in target/guest/linux/ (skipped when up to date).
    FetchGuest,
    /// Mutation testing (cargo-mutants) of the crates the system's logic lives in; slow.
    Mutants {
        /// One package (default: kernel-core and mmu-core).
        package: Option<String>,
    },
    /// Run a libFuzzer target of fuzz/ (cargo-fuzz, nightly Rust; both installed when
    /// missing) for a bounded time; fails with the failing input's path when it finds one.
    #[command(group(ArgGroup::new("which").required(true).args(["target", "all", "list"])))]
    Fuzz {
        /// The target (`--list` names them).
        target: Option<String>,
        /// Every target in turn, each for `--seconds`.
        #[arg(long)]
        all: bool,
        /// List the targets and what each exercises.
        #[arg(long)]
        list: bool,
        /// How long each target runs (libFuzzer's -max_total_time).
        #[arg(long, value_name = "N", default_value_t = 60)]
        seconds: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::locate();
    match cli.command {
        Command::Check | Command::Build { .. } => install::ensure_rust()?,
        Command::Mutants { .. } | Command::FetchGuest | Command::Fuzz { .. } => {}
        Command::Run { .. } | Command::Test { .. } | Command::Bench { .. } => {
            install::ensure_tools(&workspace)?
        }
    }
    match cli.command {
        Command::Build { manifest } => {
            let manifest = workspace.resolve(&manifest);
            match build::build_image(&workspace, &manifest)? {
                Ok(image) => {
                    println!("{}", image.elf.display());
                    Ok(ExitCode::SUCCESS)
                }
                Err(diagnostic) => {
                    eprintln!("{diagnostic}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Run {
            manifest,
            timeout,
            icount,
            debug_int,
            gdb,
        } => {
            let manifest = workspace
                .resolve(&manifest.unwrap_or_else(|| PathBuf::from("manifests/linux.toml")));
            let image = match build::build_image(&workspace, &manifest)? {
                Ok(image) => image,
                Err(diagnostic) => {
                    eprintln!("{diagnostic}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            let options = qemu::Options {
                icount,
                debug_int,
                gdb,
                timeout: timeout.map(std::time::Duration::from_secs),
                echo: true,
                extra_args: Vec::new(),
                disk: None,
                input: Vec::new(),
            };
            let outcome = qemu::run(&image, &options)?;
            let code = match outcome.status {
                qemu::Status::Exited(code) => exit_byte(code),
                qemu::Status::TimedOut(after) => {
                    eprintln!("timeout after {} s", after.as_secs());
                    124
                }
            };
            defmt_log::print(&image);
            Ok(ExitCode::from(code))
        }
        Command::Test {
            filter,
            qemu_only,
            host_only,
        } => {
            let passed = test::run(&workspace, filter.as_deref(), !qemu_only, !host_only)?;
            Ok(if passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Check => Ok(status(check::run(&workspace)?)),
        Command::FetchGuest => {
            guest_image::fetch(&workspace.root)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Mutants { package } => Ok(status(mutants::run(&workspace, package.as_deref())?)),
        Command::Fuzz { list: true, .. } => {
            fuzz::list(&workspace)?;
            Ok(ExitCode::SUCCESS)
        }
        // The argument group leaves `target` empty only with `--all`.
        Command::Fuzz {
            target, seconds, ..
        } => Ok(status(fuzz::run(&workspace, target.as_deref(), seconds)?)),
        Command::Bench { name, trace } => {
            let passed = if trace {
                bench::trace(&workspace, name.as_deref())?
            } else {
                bench::run(&workspace, name.as_deref())?
            };
            Ok(if passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

fn status(passed: bool) -> ExitCode {
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// An exit status as the byte a process can return (QEMU's statuses fit; others saturate).
fn exit_byte(code: i32) -> u8 {
    u8::try_from(code).unwrap_or(u8::MAX)
}

/// Where things are in the checkout.
#[derive(Clone, Debug)]
pub struct Workspace {
    /// The workspace root (holds the top-level Cargo.toml).
    pub root: PathBuf,
    /// Cargo's target directory: `$CARGO_TARGET_DIR` when set, else `<root>/target`.
    pub target_dir: PathBuf,
}

impl Workspace {
    /// The workspace this xtask binary was built from.
    pub fn locate() -> Self {
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = crate_dir.parent().unwrap_or(crate_dir).to_path_buf();
        let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) if !dir.is_empty() => root.join(dir),
            _ => root.join("target"),
        };
        Self { root, target_dir }
    }

    /// `path` relative to the workspace root unless it is absolute.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            // Relative paths given on the command line are meant from where the user stands
            // when that file exists there, else from the workspace root.
            match std::env::current_dir() {
                Ok(cwd) if cwd.join(path).exists() => cwd.join(path),
                _ => self.root.join(path),
            }
        }
    }

    /// The cargo that runs us (`$CARGO`), so child builds use the same toolchain.
    pub fn cargo(&self) -> std::process::Command {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = std::process::Command::new(cargo);
        command.current_dir(&self.root);
        command
    }

    /// Where built images go: `<target>/images`.
    pub fn images_dir(&self) -> PathBuf {
        self.target_dir.join("images")
    }

    /// Cargo's output directory for release builds for `target` (`build::TARGET` for the
    /// kernel and the servers, `build::GUEST_TARGET` for guests).
    pub fn release_dir(&self, target: &str) -> PathBuf {
        self.target_dir.join(target).join("release")
    }
}
