//! Source positions: a span-carrying tree built from `toml_edit`'s parse, and byte-offset to
//! line:column conversion.
//!
//! The manifest is parsed once with `toml_edit::ImDocument`, which keeps the byte span of every
//! key and value, and immediately converted into the small [`Node`] tree below. Every later pass
//! reads only this tree, so each value it checks still knows where it came from and every error
//! can point at the exact key or value. Implicit tables (`servers` in `[servers.ping]`) have no
//! span of their own; they borrow the span of the key that names them, so no node is ever
//! without a position.

use std::ops::Range;
use toml_edit::{ImDocument, Item, Key, Value as TomlValue};

/// A byte range in the manifest source.
pub(crate) type Span = Range<usize>;

/// One TOML value with its source span.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub value: NodeValue,
    pub span: Span,
}

/// The kinds of value the schema distinguishes.
#[derive(Clone, Debug)]
pub(crate) enum NodeValue {
    /// A table, its entries in file order.
    Table(Vec<Entry>),
    Array(Vec<Node>),
    String(String),
    Integer(i64),
    Boolean(bool),
    /// A float or a date-time: never valid in a manifest; the name is for the error message.
    Other(&'static str),
}

/// A key of a table with the value it names.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub key: String,
    pub key_span: Span,
    pub node: Node,
}

impl NodeValue {
    /// The noun for "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Table(_) => "a table",
            Self::Array(_) => "an array",
            Self::String(_) => "a string",
            Self::Integer(_) => "an integer",
            Self::Boolean(_) => "a boolean",
            Self::Other(name) => name,
        }
    }
}

/// Parses `source` into a [`Node`] tree (the root table), or returns toml's own error with its
/// message and span.
pub(crate) fn parse(source: &str) -> Result<Node, (String, Span)> {
    let document = ImDocument::parse(source).map_err(|error| {
        let message = error
            .message()
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect::<Vec<_>>()
            .join(": ");
        let span = error.span().unwrap_or(0..0);
        (explain_syntax(source, &span, message), span)
    })?;
    Ok(from_item(document.as_item(), 0..0).unwrap_or(Node {
        value: NodeValue::Table(Vec::new()),
        span: 0..0,
    }))
}

/// TOML's message for a syntax error at `span`, with what is wrong in words where TOML's own
/// words are only what it expected: numbers TOML cannot write.
fn explain_syntax(source: &str, span: &Span, message: String) -> String {
    let token = token_around(source, span.start);
    if message.contains("number too large to fit in target type") {
        return format!(
            "integer `{token}` is too large: TOML integers are 64-bit signed, at most {}",
            i64::MAX
        );
    }
    let digits = token.trim_start_matches(['-', '+']);
    let signed = digits.len() < token.len();
    let radix = ["0x", "0o", "0b"]
        .iter()
        .any(|prefix| digits.starts_with(prefix));
    if signed && radix {
        return format!(
            "{message} (`{token}`: TOML has no signed hexadecimal, octal or binary integers; \
             write a negative number in decimal)"
        );
    }
    let leading_zero = digits.len() > 1
        && digits.starts_with('0')
        && digits.chars().all(|c| c.is_ascii_digit() || c == '_');
    if leading_zero {
        return format!("{message} (`{token}`: TOML integers have no leading zeros)");
    }
    message
}

/// The word of `source` around byte `at`: up to whitespace or TOML punctuation either side.
fn token_around(source: &str, at: usize) -> &str {
    let stop = |c: char| c.is_whitespace() || "=,[]{}#\"'".contains(c);
    let mut at = at.min(source.len());
    while !source.is_char_boundary(at) {
        at -= 1;
    }
    // After the stop character's last byte: whitespace may be several bytes (U+0085, U+2029).
    let start = source[..at]
        .char_indices()
        .rev()
        .find(|&(_, c)| stop(c))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let end = source[at..].find(stop).map_or(source.len(), |i| at + i);
    &source[start..end]
}

fn key_span(key: &Key, fallback: &Span) -> Span {
    key.span().unwrap_or_else(|| fallback.clone())
}

fn from_item(item: &Item, fallback: Span) -> Option<Node> {
    let span = item.span().unwrap_or_else(|| fallback.clone());
    let value = match item {
        Item::None => return None,
        Item::Value(value) => return Some(from_value(value, fallback)),
        Item::Table(table) => NodeValue::Table(
            table
                .iter()
                .filter_map(|(name, _)| {
                    let (key, item) = table.get_key_value(name)?;
                    let key_span = key_span(key, &span);
                    let node = from_item(item, key_span.clone())?;
                    Some(Entry {
                        key: name.to_string(),
                        key_span,
                        node,
                    })
                })
                .collect(),
        ),
        Item::ArrayOfTables(array) => NodeValue::Array(
            array
                .iter()
                .filter_map(|table| from_item(&Item::Table(table.clone()), span.clone()))
                .collect(),
        ),
    };
    Some(Node { value, span })
}

fn from_value(value: &TomlValue, fallback: Span) -> Node {
    let span = value.span().unwrap_or(fallback);
    let value = match value {
        TomlValue::String(text) => NodeValue::String(text.value().clone()),
        TomlValue::Integer(number) => NodeValue::Integer(*number.value()),
        TomlValue::Boolean(flag) => NodeValue::Boolean(*flag.value()),
        TomlValue::Float(_) => NodeValue::Other("a float"),
        TomlValue::Datetime(_) => NodeValue::Other("a date-time"),
        TomlValue::Array(array) => NodeValue::Array(
            array
                .iter()
                .map(|element| from_value(element, span.clone()))
                .collect(),
        ),
        TomlValue::InlineTable(table) => NodeValue::Table(
            table
                .iter()
                .filter_map(|(name, _)| {
                    let (key, item) = table.get_key_value(name)?;
                    let key_span = key_span(key, &span);
                    let node = from_item(item, key_span.clone())?;
                    Some(Entry {
                        key: name.to_string(),
                        key_span,
                        node,
                    })
                })
                .collect(),
        ),
    };
    Node { value, span }
}

/// Converts a byte offset into a 1-based line and a 1-based column counted in characters.
pub(crate) fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let column = source[line_start..offset].chars().count() + 1;
    (line, column)
}

/// The byte offset of a 1-based line and character column; clamps to the end of the line.
pub(crate) fn offset_of(source: &str, line: usize, column: usize) -> usize {
    let mut line_start = 0;
    for _ in 1..line {
        match source[line_start..].find('\n') {
            Some(newline) => line_start += newline + 1,
            None => return source.len(),
        }
    }
    let line_text = source[line_start..].split('\n').next().unwrap_or("");
    line_start
        + line_text
            .char_indices()
            .nth(column.saturating_sub(1))
            .map_or(line_text.len(), |(at, _)| at)
}

/// Formats a dotted key path, quoting segments that are not bare TOML keys.
pub(crate) fn join_key(parent: &str, child: &str) -> String {
    let bare = !child.is_empty()
        && child
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let child = if bare {
        child.to_string()
    } else {
        format!("{child:?}")
    };
    if parent.is_empty() {
        child
    } else {
        format!("{parent}.{child}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_convert_to_one_based_line_and_character_column() {
        let source = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_column(source, 0), (1, 1));
        assert_eq!(line_column(source, 4), (1, 5));
        assert_eq!(line_column(source, 6), (2, 1));
        // `=` after the two-byte `é` is the fourth character of line 2.
        let equals = source
            .find('=')
            .map(|_| source.rfind('=').unwrap_or(0))
            .unwrap_or(0);
        assert_eq!(line_column(source, equals), (2, 4));
        assert_eq!(offset_of(source, 2, 4), equals);
        assert_eq!(line_column(source, source.len() + 10), (3, 1));
    }

    #[test]
    fn numbers_toml_cannot_write_are_explained() {
        let error = |source: &str| parse(source).err().map(|(message, _)| message);
        let negative_hex = error("base = -0x1000\n").unwrap_or_default();
        assert!(
            negative_hex.ends_with(
                "(`-0x1000`: TOML has no signed hexadecimal, octal or binary integers; write a \
                 negative number in decimal)"
            ),
            "{negative_hex}"
        );
        let leading_zero = error("priority = 090\n").unwrap_or_default();
        assert!(
            leading_zero.ends_with("(`090`: TOML integers have no leading zeros)"),
            "{leading_zero}"
        );
        assert_eq!(
            error("badge = 9223372036854775808\n").as_deref(),
            Some(
                "integer `9223372036854775808` is too large: TOML integers are 64-bit signed, at \
                 most 9223372036854775807"
            )
        );
        // Other errors keep TOML's words.
        let other = error("a = \n").unwrap_or_default();
        assert!(!other.contains("TOML"), "{other}");
        assert_eq!(token_around("x = 12 # c", 5), "12");
        assert_eq!(token_around("é", 1), "é");
    }

    /// Found by the `manifest` fuzz target (fuzz/): a syntax error just after a whitespace
    /// character of more than one byte sliced the source inside that character.
    #[test]
    fn a_token_after_multibyte_whitespace_starts_after_it() {
        assert_eq!(token_around("#\u{85}x\0", 4), "x\0");
        assert_eq!(token_around("a\u{2000}b", 4), "b");
        assert!(parse("#\u{85}x\0").is_err());
    }

    #[test]
    fn keys_are_quoted_only_when_needed() {
        assert_eq!(join_key("", "servers"), "servers");
        assert_eq!(join_key("servers", "ping-2"), "servers.ping-2");
        assert_eq!(join_key("servers", "a.b"), "servers.\"a.b\"");
    }

    #[test]
    fn spans_survive_into_the_tree() {
        let source = "[servers.b]\nbinary = \"q\"\n[servers.a]\n";
        let root = parse(source).unwrap_or_else(|(message, _)| panic!("{message}"));
        let NodeValue::Table(top) = root.value else {
            panic!("root is a table")
        };
        let NodeValue::Table(servers) = &top[0].node.value else {
            panic!("servers is a table")
        };
        let names: Vec<_> = servers.iter().map(|entry| entry.key.as_str()).collect();
        assert_eq!(names, ["b", "a"]);
        assert_eq!(&source[servers[1].key_span.clone()], "a");
    }
}
