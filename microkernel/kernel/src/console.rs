//! Kernel console output: `kprintln!` to the PL011, plain text (boot banner, fault reports,
//! verdicts). Servers' text arrives through the DebugWrite system call. Console input, once a
//! server holding `debug:input` asked for it, is buffered here and handed over with
//! `DebugInputRead`.

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

/// Console input not yet read: a ring that drops the oldest bytes when a reader falls behind
/// by more than its size (a human typing never does; a paste longer than this loses its start).
pub struct InputBuffer {
    bytes: [u8; INPUT_CAPACITY],
    start: usize,
    len: usize,
}

/// Bytes of console input the kernel keeps for its reader.
pub const INPUT_CAPACITY: usize = 1024;

impl InputBuffer {
    /// Empty.
    pub const fn new() -> Self {
        Self {
            bytes: [0; INPUT_CAPACITY],
            start: 0,
            len: 0,
        }
    }

    /// Appends a byte, dropping the oldest when full.
    pub fn push(&mut self, byte: u8) {
        if self.len == INPUT_CAPACITY {
            self.start = (self.start + 1) % INPUT_CAPACITY;
            self.len -= 1;
        }
        self.bytes[(self.start + self.len) % INPUT_CAPACITY] = byte;
        self.len += 1;
    }

    /// Takes up to `out.len()` bytes, oldest first; how many.
    pub fn take(&mut self, out: &mut [u8]) -> usize {
        let count = out.len().min(self.len);
        for slot in out.iter_mut().take(count) {
            *slot = self.bytes[self.start];
            self.start = (self.start + 1) % INPUT_CAPACITY;
        }
        self.len -= count;
        count
    }
}
