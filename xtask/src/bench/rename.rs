//! A benchmark's `rename` table: figure text as the image prints it → the text to report.
//!
//! One image can serve several benchmarks (the test guest prints its MMIO round trips whether its
//! markers are on or off), and the figure's own text cannot say which system printed it. A
//! benchmark with `rename` therefore reports exactly its renamed figures, under their new texts,
//! in console order; the image's other figures belong to other benchmarks and are left out. A
//! rename whose figure the console never printed fails the benchmark: a renamed guest line, or a
//! guest that stopped before printing it, must not pass as a benchmark with one figure fewer.
//!
//! A figure's *text* is everything before its last `": "` (`guest mmio read round trip` of
//! `guest mmio read round trip: 1843 ticks`, `ipc full/fast ratio` of `ipc full/fast ratio:
//! 1.07`); the value after it is kept as printed.

use std::collections::{BTreeMap, BTreeSet};

/// The table of one benchmark, keyed by the image's figure text.
pub type Rename = BTreeMap<String, String>;

/// Refuses a table whose texts are empty or span lines, or that reports two figures under one
/// text (the summary could not tell them apart).
pub fn check(rename: &Rename) -> Result<(), String> {
    let mut targets = BTreeSet::new();
    for (from, to) in rename {
        for text in [from, to] {
            if text.trim().is_empty() || text.contains(['\n', '\r']) {
                return Err(format!(
                    "rename {from:?} = {to:?}: a figure text must be one non-blank line"
                ));
            }
        }
        if !targets.insert(to.as_str()) {
            return Err(format!(
                "rename: two figures are renamed to {to:?}; the summary could not tell them apart"
            ));
        }
    }
    Ok(())
}

/// The figure lines a benchmark reports: all of `figures` without a rename table; with one, each
/// renamed figure under its new text, in console order, or an error naming every renamed text
/// the console did not print.
pub fn apply(figures: &[&str], rename: &Rename) -> Result<Vec<String>, String> {
    if rename.is_empty() {
        return Ok(figures.iter().map(|line| line.to_string()).collect());
    }
    let mut reported = Vec::new();
    let mut seen = BTreeSet::new();
    for line in figures {
        let Some((text, value)) = line.rsplit_once(": ") else {
            continue;
        };
        if let Some(to) = rename.get(text) {
            seen.insert(text);
            reported.push(format!("{to}: {value}"));
        }
    }
    let missing: Vec<String> = rename
        .keys()
        .filter(|from| !seen.contains(from.as_str()))
        .map(|from| format!("{from:?}"))
        .collect();
    if missing.is_empty() {
        return Ok(reported);
    }
    let printed: Vec<String> = figures
        .iter()
        .filter_map(|line| line.rsplit_once(": "))
        .map(|(text, _)| format!("{text:?}"))
        .collect();
    let printed = if printed.is_empty() {
        "none".to_string()
    } else {
        printed.join(", ")
    };
    Err(format!(
        "`rename` names {} the console never printed as a figure (it printed: {printed})",
        missing.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(&str, &str)]) -> Rename {
        pairs
            .iter()
            .map(|(from, to)| (from.to_string(), to.to_string()))
            .collect()
    }

    const GUEST: [&str; 4] = [
        "guest mmio read round trip: 1843 ticks",
        "guest mmio write round trip: 1852 ticks",
        "guest hvc round trip: 1867 ticks",
        "guest mmio read round trip ratio: 1.00",
    ];

    #[test]
    fn without_a_table_every_figure_is_reported_as_printed() {
        assert_eq!(apply(&GUEST, &Rename::new()).unwrap(), GUEST);
    }

    #[test]
    fn with_a_table_only_the_renamed_figures_are_reported_in_console_order() {
        // Keyed in the opposite order to the console's: the console's order wins.
        let rename = table(&[
            ("guest mmio write round trip", "mmio fast path, write"),
            ("guest mmio read round trip", "mmio fast path"),
        ]);
        assert_eq!(
            apply(&GUEST, &rename).unwrap(),
            [
                "mmio fast path: 1843 ticks",
                "mmio fast path, write: 1852 ticks"
            ]
        );
    }

    #[test]
    fn the_text_is_everything_before_the_last_colon_and_must_match_whole() {
        let figures = ["mmio: fast path: 300 instructions", "x ratio: 1.07"];
        let rename = table(&[("mmio: fast path", "fast"), ("x ratio", "y ratio")]);
        assert_eq!(
            apply(&figures, &rename).unwrap(),
            ["fast: 300 instructions", "y ratio: 1.07"]
        );
        // A prefix of a figure's text is not that figure.
        let prefix = table(&[("guest mmio", "mmio")]);
        assert!(apply(&GUEST, &prefix).is_err());
    }

    #[test]
    fn a_rename_whose_figure_was_not_printed_fails_and_says_which() {
        let rename = table(&[
            ("guest mmio read round trip", "mmio slow path"),
            ("guest mmio doorbell write", "mmio doorbell"),
        ]);
        let error = apply(&GUEST, &rename).unwrap_err();
        assert!(
            error.starts_with(
                "`rename` names \"guest mmio doorbell write\" the console never printed"
            ),
            "{error}"
        );
        assert!(error.contains("\"guest hvc round trip\""), "{error}");
        let nothing = apply(&[], &rename).unwrap_err();
        assert!(
            nothing.contains("\"guest mmio doorbell write\", \"guest mmio read round trip\""),
            "{nothing}"
        );
        assert!(nothing.ends_with("(it printed: none)"), "{nothing}");
    }

    #[test]
    fn tables_with_blank_multi_line_or_colliding_texts_are_refused() {
        assert_eq!(check(&table(&[("a", "b"), ("c", "d")])), Ok(()));
        assert!(check(&table(&[("a", " ")])).is_err());
        assert!(check(&table(&[("", "b")])).is_err());
        assert!(check(&table(&[("a", "b\nc")])).is_err());
        let collision = check(&table(&[("a", "same"), ("b", "same")])).unwrap_err();
        assert!(
            collision.contains("two figures are renamed to \"same\""),
            "{collision}"
        );
    }
}
