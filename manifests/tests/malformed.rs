//! The malformed-manifest corpus: every `tests/malformed/*.toml` must be refused with exactly the
//! error its first line announces.
//!
//! Each file starts with `# expect: <Display of the error>`, where the file is named by its base
//! name alone (`two-supervisors.toml:12:14: ...`). The test loads each file through
//! [`Manifest::load`] with its full path, checks that the error names that path exactly as given,
//! then replaces it with the base name before comparing. All mismatches are reported together.

use manifest::Manifest;
use std::path::{Path, PathBuf};

const MIN_CORPUS: usize = 180;

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/malformed");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap_or_else(|e| panic!("{e}")).path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn corpus_is_large_enough() {
    let count = corpus().len();
    assert!(
        count >= MIN_CORPUS,
        "only {count} malformed manifests, want >= {MIN_CORPUS}"
    );
}

#[test]
fn every_malformed_manifest_fails_with_its_expected_error() {
    let mut failures = Vec::new();
    for path in corpus() {
        let base = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{base}: {e}"));
        let Some(expected) = text
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("# expect: "))
        else {
            failures.push(format!("{base}: first line is not `# expect: <error>`"));
            continue;
        };
        match Manifest::load(&path) {
            Ok(_) => failures.push(format!("{base}: accepted, expected `{expected}`")),
            Err(mut error) => {
                if error.file != path.display().to_string() {
                    failures.push(format!("{base}: error names file `{}`", error.file));
                }
                error.file = base.clone();
                let actual = error.to_string();
                if actual != expected {
                    failures.push(format!(
                        "{base}:\n  expected: {expected}\n  actual:   {actual}"
                    ));
                }
                // Rendering never panics and shows the position.
                let rendered = error.render(&text);
                let position = format!("{base}:{}:{}", error.line, error.column);
                if !rendered.contains(&position) {
                    failures.push(format!("{base}: render lacks {position}:\n{rendered}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn unreadable_files_are_reported_with_the_path_as_given() {
    let error = Manifest::load(Path::new("no/such/manifest.toml")).err();
    let error = error.unwrap_or_else(|| panic!("a missing file loaded"));
    assert_eq!(
        (error.file.as_str(), error.line, error.column),
        ("no/such/manifest.toml", 0, 0)
    );
    assert!(
        error.message.starts_with("cannot read the manifest: "),
        "{error}"
    );
}
