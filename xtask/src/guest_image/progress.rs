//! Progress for each step of the fetch (indicatif): a spinner while it runs, its result line
//! when done; plain lines when stderr is no terminal, so that logs still say what happened.

use std::borrow::Cow;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Runs one step under a spinner; the step's result message replaces the spinner (or is
/// printed as a line when stderr is no terminal).
pub fn step<T>(
    message: impl Into<Cow<'static, str>>,
    work: impl FnOnce(&ProgressBar) -> anyhow::Result<(String, T)>,
) -> anyhow::Result<T> {
    let bar = ProgressBar::new_spinner()
        .with_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("a valid template"),
        )
        .with_message(message);
    bar.enable_steady_tick(Duration::from_millis(100));
    match work(&bar) {
        Ok((done, value)) => {
            finish(&bar, done);
            Ok(value)
        }
        Err(error) => {
            bar.abandon();
            Err(error)
        }
    }
}

/// A step's last word: in place of its bar on a terminal, as a log line otherwise.
pub fn finish(bar: &ProgressBar, message: String) {
    if bar.is_hidden() {
        eprintln!("fetch-guest: {message}");
    } else {
        bar.set_style(
            ProgressStyle::with_template("fetch-guest: {msg}").expect("a valid template"),
        );
        bar.finish_with_message(message);
    }
}
