//! The one name grammar of a manifest, and how messages show names and keys.
//!
//! Every name a manifest gives — the system's, and each server, vm, endpoint, notification,
//! region and irq — starts with a lowercase ASCII letter and has only lowercase letters, digits,
//! `-` and `_`, at most [`MAX_NAME_LEN`] characters. Names end up in places that trust them: file
//! names under `target/images/<system>/` (so no `/`, `..` or NUL, and no two names that differ
//! only in case, which a case-insensitive file system would merge), the kernel's console lines
//! (so no newline to forge one with), capability names (so no `:`, which separates the compiler's
//! prefixes). A name a message quotes is shown escaped unless it is a valid name, so nothing a
//! manifest says can start a new line in a message either.

/// The longest name, in characters.
pub(crate) const MAX_NAME_LEN: usize = 32;

/// The grammar, as messages state it.
pub(crate) const NAME_RULE: &str = "a name starts with a lowercase letter and has only \
                                    lowercase letters, digits, `-` and `_`, at most 32 characters";

/// What is wrong with `name`, if anything, in words ("it contains '/'").
pub(crate) fn name_problem(name: &str) -> Option<String> {
    let Some(first) = name.chars().next() else {
        return Some("it is empty".into());
    };
    if !first.is_ascii_lowercase() {
        return Some(format!("it starts with {first:?}"));
    }
    // A character that does not belong says more than the length (a newline, a `/`).
    let stray = name
        .chars()
        .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'));
    if let Some(stray) = stray {
        return Some(format!("it contains {stray:?}"));
    }
    let length = name.chars().count();
    (length > MAX_NAME_LEN).then(|| format!("it is {length} characters long"))
}

/// Whether `name` follows the grammar.
pub(crate) fn valid_name(name: &str) -> bool {
    name_problem(name).is_none()
}

/// The refusal of a bad `kind` name ("server", "vm", "system").
pub(crate) fn bad_name(kind: &str, name: &str) -> Option<String> {
    name_problem(name)
        .map(|problem| format!("bad {kind} name {}: {problem}; {NAME_RULE}", shown(name)))
}

/// A name as a message shows it: in backticks when it is a valid name, else quoted and escaped
/// like a Rust string (a newline shows as `\n`), a long one cut short.
pub(crate) fn shown(name: &str) -> String {
    if valid_name(name) {
        return format!("`{name}`");
    }
    const LONGEST: usize = 48;
    if name.chars().count() > LONGEST {
        let start: String = name.chars().take(LONGEST).collect();
        return format!("{start:?}...");
    }
    format!("{name:?}")
}

/// A TOML key as a message shows it: in backticks when it is a bare key (letters, digits, `-`,
/// `_`), else quoted and escaped.
pub(crate) fn shown_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare { format!("`{key}`") } else { shown(key) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammar_says_what_is_wrong() {
        for good in [
            "a",
            "hello",
            "ipc-bench",
            "mmu_2",
            "a-b_c-9",
            &"x".repeat(32),
        ] {
            assert_eq!(name_problem(good), None, "{good}");
        }
        let cases = [
            ("", "it is empty"),
            ("Ping", "it starts with 'P'"),
            ("9lives", "it starts with '9'"),
            ("-x", "it starts with '-'"),
            ("_x", "it starts with '_'"),
            ("..", "it starts with '.'"),
            ("a/b", "it contains '/'"),
            ("a.b", "it contains '.'"),
            ("a\nb", "it contains '\\n'"),
            ("a\0b", "it contains '\\0'"),
            ("exits:x", "it contains ':'"),
            ("pinG", "it contains 'G'"),
            ("é", "it starts with 'é'"),
        ];
        for (name, problem) in cases {
            assert_eq!(name_problem(name).as_deref(), Some(problem), "{name:?}");
        }
        assert_eq!(
            name_problem(&"x".repeat(33)).as_deref(),
            Some("it is 33 characters long")
        );
        let forged = format!("{}\nkernel: x", "a".repeat(40));
        assert_eq!(name_problem(&forged).as_deref(), Some("it contains '\\n'"));
    }

    #[test]
    fn bad_names_never_reach_a_message_raw() {
        assert_eq!(shown("ping"), "`ping`");
        assert_eq!(shown("a\nkernel: x"), "\"a\\nkernel: x\"");
        assert!(!shown("a\nb").contains('\n'));
        let long = shown(&"y".repeat(5000));
        assert!(long.len() < 60 && long.ends_with("..."), "{long}");
        assert_eq!(shown_key("ram_size"), "`ram_size`");
        assert_eq!(shown_key("a\rb"), "\"a\\rb\"");
    }
}
