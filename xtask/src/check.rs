//! `cargo xtask check`: the static gates CI runs before any test.
//!
//! 1. `cargo fmt --all -- --check`.
//! 2. clippy with `-D warnings` over the host crates (the workspace's `default-members`, every
//!    target: libraries, tests, benches) and over each target-only crate **on its own target**
//!    (the kernel and the servers on [`TARGET`], guests on [`GUEST_TARGET`]), so the lints the
//!    workspace declares `deny` (`undocumented_unsafe_blocks`, ...) really gate the code that
//!    has the `unsafe` blocks.
//! 3. The documentation's links: every relative Markdown link in a `.md` file and every
//!    `docs/<NAME>.md` named anywhere in the sources resolves to a file of the repository.
//!
//! Which crate is which comes from the root `Cargo.toml`: `members` minus `default-members` are
//! target-only; a target-only crate whose `Cargo.toml` has `[package.metadata.xtask] target =
//! "<triple>"` builds for that triple (the guests), every other one for [`TARGET`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::Workspace;
use crate::build::TARGET;

/// Runs every gate, reporting each; returns whether all passed.
pub fn run(workspace: &Workspace) -> anyhow::Result<bool> {
    let crates = Crates::read(&workspace.root)?;
    let mut failed = Vec::new();
    let mut gate = |name: &str, passed: bool| {
        println!("check {name} ... {}", if passed { "ok" } else { "FAILED" });
        if !passed {
            failed.push(name.to_string());
        }
    };

    let fmt = workspace
        .cargo()
        .args(["fmt", "--all", "--", "--check"])
        .status()
        .context("starting cargo fmt")?;
    gate("fmt", fmt.success());

    let host = workspace
        .cargo()
        .args([
            "clippy",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ])
        .status()
        .context("starting cargo clippy")?;
    gate("clippy (host crates)", host.success());

    for (target, packages) in &crates.target_only {
        let mut clippy = workspace.cargo();
        clippy.args(["clippy", "--release", "--target", target]);
        for package in packages {
            clippy.args(["-p", package]);
        }
        clippy.args(["--", "-D", "warnings"]);
        let status = clippy.status().context("starting cargo clippy")?;
        gate(&format!("clippy ({target})"), status.success());
    }

    let broken = broken_links(&workspace.root)?;
    for link in &broken {
        println!("{link}");
    }
    gate("docs links", broken.is_empty());

    if failed.is_empty() {
        println!("every check passed");
    } else {
        println!("failed checks: {}", failed.join(", "));
    }
    Ok(failed.is_empty())
}

/// The workspace's crates by where they build.
#[derive(Debug)]
struct Crates {
    /// Target triple → package names of the target-only crates that build for it.
    target_only: BTreeMap<String, Vec<String>>,
}

impl Crates {
    fn read(root: &Path) -> anyhow::Result<Self> {
        let workspace = read_toml(&root.join("Cargo.toml"))?;
        let list = |key: &str| -> anyhow::Result<Vec<String>> {
            workspace
                .get("workspace")
                .and_then(|workspace| workspace.get(key))
                .and_then(|list| list.as_array())
                .with_context(|| format!("Cargo.toml: no workspace.{key} list"))?
                .iter()
                .map(|path| {
                    path.as_str()
                        .map(str::to_string)
                        .with_context(|| format!("Cargo.toml: workspace.{key} holds a non-string"))
                })
                .collect()
        };
        let members = list("members")?;
        let host = list("default-members")?;
        let mut target_only: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for path in members.iter().filter(|path| !host.contains(path)) {
            let manifest = read_toml(&root.join(path).join("Cargo.toml"))?;
            let package = manifest
                .get("package")
                .with_context(|| format!("{path}/Cargo.toml: no [package]"))?;
            let name = package
                .get("name")
                .and_then(|name| name.as_str())
                .with_context(|| format!("{path}/Cargo.toml: no package.name"))?;
            let target = package
                .get("metadata")
                .and_then(|metadata| metadata.get("xtask"))
                .and_then(|xtask| xtask.get("target"))
                .and_then(|target| target.as_str())
                .unwrap_or(TARGET);
            target_only
                .entry(target.to_string())
                .or_default()
                .push(name.to_string());
        }
        if target_only.is_empty() {
            bail!("Cargo.toml: every member is a default member; no target crate to check");
        }
        Ok(Self { target_only })
    }
}

fn read_toml(path: &Path) -> anyhow::Result<toml_edit::DocumentMut> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.parse()
        .with_context(|| format!("{}: not valid TOML", path.display()))
}

/// Every link of the repository's sources and docs that names a file that does not exist, as
/// `file:line: target`.
fn broken_links(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut broken = Vec::new();
    for file in source_files(root)? {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let relative = file.strip_prefix(root).unwrap_or(&file);
        let is_markdown = file.extension().is_some_and(|ext| ext == "md");
        for (index, line) in text.lines().enumerate() {
            let mut targets = docs_mentions(line);
            if is_markdown {
                targets.extend(markdown_links(line).into_iter().filter_map(|link| {
                    let resolved = file.parent()?.join(link);
                    Some((link.to_string(), resolved))
                }));
            }
            for (shown, path) in targets {
                let path = if path.is_absolute() {
                    path
                } else {
                    root.join(path)
                };
                if !path.exists() {
                    broken.push(format!("{}:{}: {shown}", relative.display(), index + 1));
                }
            }
        }
    }
    Ok(broken)
}

/// Every `docs/<NAME>.md` written in `line`, with the path it names (relative to the root).
fn docs_mentions(line: &str) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("docs/") {
        let after = &rest[at..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || "/._-".contains(c)))
            .unwrap_or(after.len());
        let mention = after[..end].trim_end_matches('.');
        // Only mentions at a word start: `../docs/x.md` is resolved by the Markdown pass.
        let starts_word = rest[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || "/._-".contains(c)));
        if starts_word && mention.ends_with(".md") {
            found.push((mention.to_string(), PathBuf::from(mention)));
        }
        rest = &after[end.max(1)..];
    }
    found
}

/// The relative file targets of `[text](target)` links in `line` (anchors dropped; web links,
/// pure anchors and mail links skipped).
fn markdown_links(line: &str) -> Vec<&str> {
    let mut links = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let Some(end) = after.find(')') else { break };
        let target = after[..end].split('#').next().unwrap_or("").trim();
        let external = target.contains("://") || target.starts_with("mailto:");
        if !target.is_empty() && !external {
            links.push(target);
        }
        rest = &after[end..];
    }
    links
}

/// The `.md` and `.rs` files of the repository (outside `target/` and hidden directories).
fn source_files(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name == "target" || name == "mutants.out" {
                continue;
            }
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                pending.push(path);
            } else if name.ends_with(".md") || name.ends_with(".rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_markdown_links_but_not_web_links_or_anchors() {
        // Built at run time: the link check reads this file too, and these files do not exist.
        let missing = concat!("docs", "/A.md");
        let line =
            format!("see [a]({missing}), [b](../B.md#part), [c](https://x.org/y), [d](#top)");
        assert_eq!(markdown_links(&line), [missing, "../B.md"]);
        assert!(markdown_links("no link [here] (x)").is_empty());
    }

    #[test]
    fn finds_docs_mentions_at_word_starts() {
        let found: Vec<String> = docs_mentions("//! see docs/SHADOW.md, and `docs/VMM.md`.")
            .into_iter()
            .map(|(shown, _)| shown)
            .collect();
        assert_eq!(found, ["docs/SHADOW.md", "docs/VMM.md"]);
        let line = format!(
            "[x](../{}) my{} docs/ dir",
            concat!("docs", "/A.md"),
            concat!("docs", "/B.md")
        );
        assert!(docs_mentions(&line).is_empty());
    }

    #[test]
    fn the_repository_has_no_broken_links() {
        let workspace = Workspace::locate();
        assert_eq!(broken_links(&workspace.root).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn target_crates_are_members_outside_the_default_ones() {
        let workspace = Workspace::locate();
        let crates = Crates::read(&workspace.root).unwrap();
        let kernel_side = &crates.target_only[TARGET];
        assert!(kernel_side.contains(&"kernel".to_string()), "{crates:?}");
        assert!(!kernel_side.contains(&"kernel-core".to_string()));
        let guests = &crates.target_only[crate::build::GUEST_TARGET];
        assert_eq!(guests, &["test-guest".to_string()]);
    }
}
