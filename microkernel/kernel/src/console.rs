//! Kernel console output: `kprintln!` to the PL011, plain text (boot banner, fault reports,
//! verdicts). Servers' text arrives through the DebugWrite system call.

use crate::arch::{Arch, Current};
use core::fmt::Write;

/// A `fmt::Write` sink for the console.
pub struct Console;

impl Write for Console {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        Current::console_write(text.as_bytes());
        Ok(())
    }
}

/// Prints formatted text to the kernel console.
pub fn print(args: core::fmt::Arguments<'_>) {
    let _ = Console.write_fmt(args);
}

/// Prints a line to the kernel console.
#[macro_export]
macro_rules! kprintln {
    ($($arg:tt)*) => {
        $crate::console::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}
