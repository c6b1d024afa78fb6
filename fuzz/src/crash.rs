//! Deliberate crashes that a target survives: a server's fault injection ends in `-> !`, which
//! on the target faults the thread; here it unwinds with [`InjectedCrash`] and the target
//! catches it. libFuzzer's panic hook aborts the process on every other panic, which is how a
//! real finding is reported.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

/// The payload of a deliberate crash.
#[derive(Debug)]
pub struct InjectedCrash;

/// Unwinds with [`InjectedCrash`].
pub fn crash() -> ! {
    install_hook();
    panic::panic_any(InjectedCrash)
}

/// Runs `f`; `None` when it crashed deliberately ([`crash`]).
pub fn catching<R>(f: impl FnOnce() -> R) -> Option<R> {
    install_hook();
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Some(value),
        Err(payload) if payload.is::<InjectedCrash>() => None,
        Err(payload) => panic::resume_unwind(payload),
    }
}

/// Keeps libFuzzer's hook (report and abort) for every panic but [`InjectedCrash`].
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<InjectedCrash>() {
                previous(info);
            }
        }));
    });
}
