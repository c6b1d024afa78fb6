//! The one error type of the manifest loader: where (file, line, column, dotted key) and why.
//!
//! Every validation failure is reported as exactly one [`ManifestError`]: the loader stops at the
//! first problem, so the message can be precise rather than a cascade. `Display` gives the
//! one-line form tools and tests compare (`file:line:column: key: message`); [`ManifestError::render`]
//! draws the offending source line with a caret for people.

use crate::span::{Span, line_column, offset_of};
use annotate_snippets::{Level, Renderer, Snippet};
use std::fmt;

/// A manifest that could not be read, parsed or validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestError {
    /// The file, as given to [`crate::Manifest::load`] or [`crate::Manifest::from_str`].
    pub file: String,
    /// 1-based line of the offending key or value (0 when the file could not be read).
    pub line: usize,
    /// 1-based column, counted in characters (0 when the file could not be read).
    pub column: usize,
    /// The dotted key, e.g. `servers.ping.priority`; empty for TOML syntax errors.
    pub key: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ManifestError {}

impl ManifestError {
    /// Draws the error over `source` (the manifest's text): the title, the file position, and
    /// the offending line with a caret under the key or value. Plain text, no colours.
    pub fn render(&self, source: &str) -> String {
        let title = if self.key.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.key, self.message)
        };
        if self.line == 0 {
            return Renderer::plain()
                .render(Level::Error.title(&title))
                .to_string();
        }
        let start = offset_of(source, self.line, self.column);
        let end = start + token_len(&source[start..]);
        let snippet = Snippet::source(source)
            .line_start(1)
            .origin(&self.file)
            .fold(true)
            .annotation(Level::Error.span(start..end));
        Renderer::plain()
            .term_width(NEVER_TRIM)
            .render(Level::Error.title(&title).snippet(snippet))
            .to_string()
    }
}

/// A terminal width no manifest line reaches, so the renderer never trims a line. Trimming a
/// line wider than the width subtracts with overflow in annotate-snippets 0.11 when the line
/// starts with tabs (counted as four columns of leading whitespace but as one column before
/// the caret), which panicked rendering such a manifest's error (found by the `manifest`
/// fuzz target, fuzz/). Half of `usize::MAX` leaves room for the renderer's own additions.
const NEVER_TRIM: usize = usize::MAX / 2;

/// The length of the TOML token that starts `rest`: a quoted string, or up to the next
/// delimiter. At least one character when any remains on the line, so the caret is visible.
fn token_len(rest: &str) -> usize {
    let mut chars = rest.char_indices();
    match chars.next() {
        None | Some((_, '\n')) => 0,
        Some((_, quote @ ('"' | '\''))) => chars
            .find(|&(_, c)| c == quote || c == '\n')
            .map_or(rest.len(), |(at, c)| if c == quote { at + 1 } else { at }),
        Some((_, first)) => chars
            .find(|&(_, c)| c.is_whitespace() || "=,]}[{.".contains(c))
            .map_or(rest.len(), |(at, _)| at)
            .max(first.len_utf8()),
    }
}

/// Builds errors for one manifest file: knows the file name and the source for positions.
pub(crate) struct Reporter<'a> {
    pub file: &'a str,
    pub source: &'a str,
}

impl Reporter<'_> {
    /// An error at the start of `span`.
    pub fn error(&self, span: &Span, key: &str, message: impl Into<String>) -> ManifestError {
        let (line, column) = line_column(self.source, span.start);
        ManifestError {
            file: self.file.to_string(),
            line,
            column,
            key: key.to_string(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ManifestError {
        ManifestError {
            file: "m.toml".into(),
            line: 2,
            column: 12,
            key: "servers.ping.priority".into(),
            message: "priority 0 is out of range 1..=254".into(),
        }
    }

    #[test]
    fn display_is_one_line_with_or_without_a_key() {
        let error = sample();
        assert_eq!(
            error.to_string(),
            "m.toml:2:12: servers.ping.priority: priority 0 is out of range 1..=254"
        );
        let syntax = ManifestError {
            key: String::new(),
            message: "invalid key".into(),
            ..error
        };
        assert_eq!(syntax.to_string(), "m.toml:2:12: invalid key");
    }

    #[test]
    fn render_points_a_caret_at_the_value() {
        let source = "[servers.ping]\npriority = 0\n";
        let rendered = sample().render(source);
        assert!(rendered.contains("m.toml:2:12"), "{rendered}");
        assert!(rendered.contains("priority = 0"), "{rendered}");
        let caret_line = rendered
            .lines()
            .find(|line| line.contains('^'))
            .unwrap_or_else(|| panic!("no caret in {rendered}"));
        assert_eq!(caret_line.matches('^').count(), 1, "{rendered}");
    }

    /// The fuzz target `manifest` found this panic: four tabs, a character TOML refuses, and a
    /// line wider than the renderer's default terminal width (140).
    #[test]
    fn render_shows_a_long_line_that_starts_with_tabs() {
        let source = format!("\t\t\t\t%{}x\n", " ".repeat(200));
        let error = ManifestError {
            file: "m.toml".into(),
            line: 1,
            column: 5,
            key: String::new(),
            message: "invalid key".into(),
        };
        let rendered = error.render(&source);
        assert!(rendered.contains("m.toml:1:5"), "{rendered}");
        assert!(
            rendered.contains(&format!("%{}x", " ".repeat(200))),
            "{rendered}"
        );
        assert_eq!(rendered.matches('^').count(), 1, "{rendered}");
    }

    #[test]
    fn tokens_end_at_delimiters_and_quotes() {
        assert_eq!(token_len("\"abc\" # x"), 5);
        assert_eq!(token_len("0x1000, x"), 6);
        assert_eq!(token_len("\n"), 0);
        assert_eq!(token_len("="), 1);
    }
}
