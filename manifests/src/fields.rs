//! Typed, positioned access to one TOML table of the manifest.
//!
//! [`Fields`] wraps a table node together with its dotted key and a human description ("server
//! `ping`"). Creating one refuses unknown keys; its getters refuse wrong types and out-of-range
//! numbers. Each getter returns a [`Sp`] that remembers its span and dotted key, so checks made
//! later (cross references, overlaps) can still point at the value they are about.

use crate::error::{ManifestError, Reporter};
use crate::span::{Entry, Node, NodeValue, Span, join_key};
use std::ops::RangeInclusive;

/// A checked value with the span and dotted key it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Sp<T> {
    pub value: T,
    pub span: Span,
    pub key: String,
}

/// How an integer is shown in messages.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Radix {
    Decimal,
    /// Addresses and sizes.
    Hex,
}

impl Radix {
    pub fn show(self, value: i128) -> String {
        match self {
            Self::Decimal => value.to_string(),
            Self::Hex if value < 0 => format!("-{:#x}", -value),
            Self::Hex => format!("{value:#x}"),
        }
    }
}

/// The keys of one table, checked against the keys the schema allows there.
pub(crate) struct Fields<'a> {
    pub rep: &'a Reporter<'a>,
    /// Dotted key of the table, e.g. `servers.ping`.
    pub path: String,
    /// The table for messages, e.g. "server `ping`".
    pub what: String,
    /// Where "missing key" errors point: the key naming the table.
    pub anchor: Span,
    entries: &'a [Entry],
}

/// Refuses `node` unless it is a table; returns its entries.
pub(crate) fn expect_table<'a>(
    rep: &Reporter<'_>,
    node: &'a Node,
    key: &str,
) -> Result<&'a [Entry], ManifestError> {
    match &node.value {
        NodeValue::Table(entries) => Ok(entries),
        other => Err(rep.error(
            &node.span,
            key,
            format!("expected a table, found {}", other.type_name()),
        )),
    }
}

impl<'a> Fields<'a> {
    /// Checks that `node` is a table whose keys are all in `allowed`.
    pub fn new(
        rep: &'a Reporter<'a>,
        node: &'a Node,
        path: String,
        what: String,
        anchor: Span,
        allowed: &[&str],
    ) -> Result<Self, ManifestError> {
        let entries = expect_table(rep, node, &path)?;
        if let Some(unknown) = entries.iter().find(|e| !allowed.contains(&e.key.as_str())) {
            let expected = allowed
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(rep.error(
                &unknown.key_span,
                &join_key(&path, &unknown.key),
                format!(
                    "unknown key {} in {what} (expected one of {expected})",
                    crate::names::shown_key(&unknown.key)
                ),
            ));
        }
        Ok(Self {
            rep,
            path,
            what,
            anchor,
            entries,
        })
    }

    /// The entry for `name`, if present.
    pub fn entry(&self, name: &str) -> Option<&'a Entry> {
        self.entries.iter().find(|e| e.key == name)
    }

    /// The dotted key of `name` in this table.
    pub fn key(&self, name: &str) -> String {
        join_key(&self.path, name)
    }

    /// An error about key `name` at `span`.
    pub fn error(&self, span: &Span, name: &str, message: impl Into<String>) -> ManifestError {
        self.rep.error(span, &self.key(name), message)
    }

    /// The "missing required key" error for `name`.
    pub fn missing(&self, name: &str) -> ManifestError {
        self.error(
            &self.anchor,
            name,
            format!("missing required key `{name}` in {}", self.what),
        )
    }

    /// A type error for `node` under key `key`.
    pub fn wrong_type(&self, key: &str, node: &Node, expected: &str) -> ManifestError {
        self.rep.error(
            &node.span,
            key,
            format!("expected {expected}, found {}", node.value.type_name()),
        )
    }

    /// An optional string.
    pub fn string(&self, name: &str) -> Result<Option<Sp<String>>, ManifestError> {
        let Some(entry) = self.entry(name) else {
            return Ok(None);
        };
        match &entry.node.value {
            NodeValue::String(text) => Ok(Some(self.sp(name, &entry.node, text.clone()))),
            _ => Err(self.wrong_type(&self.key(name), &entry.node, "a string")),
        }
    }

    /// A required string.
    pub fn required_string(&self, name: &str) -> Result<Sp<String>, ManifestError> {
        self.string(name)?.ok_or_else(|| self.missing(name))
    }

    /// An optional boolean.
    pub fn boolean(&self, name: &str) -> Result<Option<Sp<bool>>, ManifestError> {
        let Some(entry) = self.entry(name) else {
            return Ok(None);
        };
        match entry.node.value {
            NodeValue::Boolean(flag) => Ok(Some(self.sp(name, &entry.node, flag))),
            _ => Err(self.wrong_type(&self.key(name), &entry.node, "a boolean")),
        }
    }

    /// An optional integer inside `range`; `T` must hold every value of the range.
    pub fn integer<T: TryFrom<i64>>(
        &self,
        name: &str,
        range: RangeInclusive<i64>,
        radix: Radix,
    ) -> Result<Option<Sp<T>>, ManifestError> {
        let Some(entry) = self.entry(name) else {
            return Ok(None);
        };
        let NodeValue::Integer(number) = entry.node.value else {
            return Err(self.wrong_type(&self.key(name), &entry.node, "an integer"));
        };
        let converted = T::try_from(number).ok().filter(|_| range.contains(&number));
        match converted {
            Some(value) => Ok(Some(self.sp(name, &entry.node, value))),
            None => Err(self.error(
                &entry.node.span,
                name,
                out_of_range(name, number, &range, radix),
            )),
        }
    }

    /// A required integer inside `range`.
    pub fn required_integer<T: TryFrom<i64>>(
        &self,
        name: &str,
        range: RangeInclusive<i64>,
        radix: Radix,
    ) -> Result<Sp<T>, ManifestError> {
        self.integer(name, range, radix)?
            .ok_or_else(|| self.missing(name))
    }

    /// An optional byte count: a multiple of the page size inside `range`.
    pub fn pages(
        &self,
        name: &str,
        range: RangeInclusive<i64>,
    ) -> Result<Option<Sp<u64>>, ManifestError> {
        let value = self.integer::<u64>(name, range, Radix::Hex)?;
        if let Some(value) = &value
            && value.value % abi::layout::PAGE_SIZE != 0
        {
            return Err(self.error(
                &value.span,
                name,
                format!(
                    "{name} {:#x} is not a multiple of the page size ({:#x})",
                    value.value,
                    abi::layout::PAGE_SIZE
                ),
            ));
        }
        Ok(value)
    }

    /// The raw node of `name`, for values with more than one accepted shape.
    pub fn node(&self, name: &str) -> Option<&'a Node> {
        self.entry(name).map(|entry| &entry.node)
    }

    /// Wraps a value read from `node` under `name`.
    pub fn sp<T>(&self, name: &str, node: &Node, value: T) -> Sp<T> {
        Sp {
            value,
            span: node.span.clone(),
            key: self.key(name),
        }
    }
}

/// "priority 0 is out of range 1..=254"; for ranges that end at `u32::MAX` or beyond (counts,
/// badges, sizes), which side was crossed: "is too small: it must be at least 1", "is too large:
/// it must be at most 4294967295".
fn out_of_range(name: &str, number: i64, range: &RangeInclusive<i64>, radix: Radix) -> String {
    let shown = radix.show(number.into());
    let (start, end) = (
        radix.show((*range.start()).into()),
        radix.show((*range.end()).into()),
    );
    if *range.end() < i64::from(u32::MAX) {
        format!("{name} {shown} is out of range {start}..={end}")
    } else if number < *range.start() {
        format!("{name} {shown} is too small: it must be at least {start}")
    } else {
        format!("{name} {shown} is too large: it must be at most {end}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_says_which_side() {
        let wide = 1..=i64::from(u32::MAX);
        assert_eq!(
            out_of_range("n", 0, &wide, Radix::Decimal),
            "n 0 is too small: it must be at least 1"
        );
        assert_eq!(
            out_of_range("n", 1 << 32, &wide, Radix::Decimal),
            "n 4294967296 is too large: it must be at most 4294967295"
        );
        assert_eq!(
            out_of_range("priority", 255, &(1..=254), Radix::Decimal),
            "priority 255 is out of range 1..=254"
        );
        assert_eq!(
            out_of_range("size", -4096, &(4096..=i64::MAX), Radix::Hex),
            "size -0x1000 is too small: it must be at least 0x1000"
        );
    }
}
