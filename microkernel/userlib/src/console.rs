//! Console output through the kernel's DebugWrite call: `print!` / `println!`; console input
//! through DebugInputRead ([`read_input`]).
//!
//! The call needs the server's `debug:console` capability (the manifest's `debug =
//! ["console"]`), looked up once. A server without one prints nothing: each `print!` is counted
//! in [`dropped`] instead, and neither the IPC buffer nor the kernel is touched.

use crate::caps::CachedCap;
use abi::CPtr;
use abi::message::IPC_BUFFER_WORDS;
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};

const CAPACITY: usize = IPC_BUFFER_WORDS * 8;

static CONSOLE: CachedCap = CachedCap::new(abi::DEBUG_CONSOLE_CAP);
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// How many `print!`s found no console capability and printed nothing.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Buffers text in the IPC buffer and hands full chunks to the kernel.
pub struct Console {
    cap: CPtr,
    bytes: [u8; CAPACITY],
    len: usize,
}

impl Console {
    const fn new(cap: CPtr) -> Self {
        Self {
            cap,
            bytes: [0; CAPACITY],
            len: 0,
        }
    }

    fn flush(&mut self) {
        for (index, chunk) in self.bytes[..self.len].chunks(8).enumerate() {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            crate::ipc_buffer::write(index, u64::from_le_bytes(word));
        }
        crate::syscall::debug_write(self.cap, self.len);
        self.len = 0;
    }
}

impl Write for Console {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        for &byte in text.as_bytes() {
            if self.len == CAPACITY {
                self.flush();
            }
            self.bytes[self.len] = byte;
            self.len += 1;
        }
        Ok(())
    }
}

/// Prints formatted text (one DebugWrite per 528 bytes).
pub fn print(args: core::fmt::Arguments<'_>) {
    let Some(cap) = CONSOLE.get() else {
        // One thread per server: a plain increment, no exclusive monitor needed.
        DROPPED.store(DROPPED.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        return;
    };
    let mut console = Console::new(cap);
    let _ = console.write_fmt(args);
    if console.len > 0 {
        console.flush();
    }
}

/// Prints to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print(format_args!($($arg)*)) };
}

/// Prints a line to the console.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Takes everything the kernel has buffered of the console's input (`DebugInputRead` on the
/// `debug:input` capability `input`, a chunk per call until it answers none) and hands each
/// chunk to `take`, oldest first. A refused call ends it, as an empty buffer does.
pub fn read_input(input: CPtr, mut take: impl FnMut(&[u8])) {
    use abi::message::CONSOLE_INPUT_CHUNK;
    loop {
        let (info, words) =
            crate::syscall::invoke(input, abi::InvocationLabel::DebugInputRead, [0; 4]);
        let count = if info.is_error() {
            0
        } else {
            words[0] as usize
        };
        if count == 0 {
            break;
        }
        let mut bytes = [0u8; CONSOLE_INPUT_CHUNK];
        for (chunk, word) in bytes.chunks_mut(8).zip(&words[1..]) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        take(&bytes[..count.min(CONSOLE_INPUT_CHUNK)]);
    }
}
