//! Property tests: no input makes the loader panic, and every error it returns points inside
//! the source it was given.

use manifest::Manifest;
use proptest::prelude::*;

const HELLO: &str = include_str!("../hello.toml");

/// Fragments that make mostly-valid TOML with manifest words in it.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("[system]\nname = \"s\"\n".to_string()),
        "\\[(servers|endpoints|notifications|regions|irqs|vms)\\.[a-zA-Z0-9_-]{0,5}\\]\n",
        "(binary|priority|stack|heap|restart|supervisor|server|clients|waiter|signallers|kind|base|size|map|intid|notification|badge|cnode_slots|test|timeslice_us|image|vmm|mmu|memory|ram_base|ram_size) = ",
        "-?[0-9]{1,20}\n",
        "0x[0-9a-f_]{1,18}\n",
        "\"[a-z -]{0,8}\"\n",
        "(true|false)\n",
        "\\[\\{ ?server = \"[a-z]{1,5}\"(, at = 0x4000_0000)?(, rights = \"r[wx]?\")?(, badge = [0-9])? ?\\}\\]\n",
        "[\\PC\n]{0,12}",
    ]
}

fn check(text: &str) {
    if let Err(error) = Manifest::from_str(text, "fuzz.toml") {
        let lines = text.split('\n').count();
        assert!(
            error.line >= 1 && error.line <= lines,
            "{error} (lines: {lines})"
        );
        assert!(error.column >= 1, "{error}");
        let _ = error.render(text);
        let _ = error.to_string();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn manifest_shaped_garbage_never_panics(parts in proptest::collection::vec(fragment(), 0..40)) {
        check(&parts.concat());
    }

    #[test]
    fn mutated_hello_never_panics(at in 0usize..HELLO.len(), cut in 0usize..40, insert in "[\\PC\n]{0,6}") {
        let mut text = HELLO.to_string();
        let mut start = at;
        while !text.is_char_boundary(start) { start -= 1; }
        let mut end = (start + cut).min(text.len());
        while !text.is_char_boundary(end) { end -= 1; }
        text.replace_range(start..end, &insert);
        check(&text);
    }
}
