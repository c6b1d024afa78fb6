//! The servers' defmt logger: each frame is encoded here and handed to the kernel with the
//! DebugLog system call, which tags it with this server's protection domain and writes it to
//! the log file that `cargo xtask run` decodes against this server's ELF.
//!
//! The call needs the server's `debug:log` capability (the manifest's `debug = ["log"]`),
//! looked up once; without it every frame is dropped before the IPC buffer is touched.

use crate::caps::CachedCap;
use abi::message::IPC_BUFFER_WORDS;
use core::cell::UnsafeCell;

const FRAME_CAPACITY: usize = IPC_BUFFER_WORDS * 8;

struct LogState {
    encoder: defmt::Encoder,
    frame: [u8; FRAME_CAPACITY],
    len: usize,
}

struct LogCell(UnsafeCell<LogState>);

// SAFETY: a server is one thread and never logs from two places at once (no interrupts reach
// user code as handlers); defmt's acquire/release pairing keeps one frame in flight.
unsafe impl Sync for LogCell {}

static LOG: LogCell = LogCell(UnsafeCell::new(LogState {
    encoder: defmt::Encoder::new(),
    frame: [0; FRAME_CAPACITY],
    len: 0,
}));

static LOG_CAP: CachedCap = CachedCap::new(abi::DEBUG_LOG_CAP);

fn state() -> &'static mut LogState {
    // SAFETY: see the `Sync` impl; each caller drops the reference before returning.
    unsafe { &mut *LOG.0.get() }
}

fn append(frame: &mut [u8; FRAME_CAPACITY], len: &mut usize, bytes: &[u8]) {
    let take = bytes.len().min(FRAME_CAPACITY - *len);
    frame[*len..*len + take].copy_from_slice(&bytes[..take]);
    *len += take;
}

#[defmt::global_logger]
struct ServerLogger;

// SAFETY: single-threaded server; acquire/release bracket every frame.
unsafe impl defmt::Logger for ServerLogger {
    fn acquire() {
        let LogState {
            encoder,
            frame,
            len,
        } = state();
        *len = 0;
        encoder.start_frame(|bytes| append(frame, len, bytes));
    }

    unsafe fn flush() {}

    unsafe fn release() {
        let LogState {
            encoder,
            frame,
            len,
        } = state();
        encoder.end_frame(|bytes| append(frame, len, bytes));
        let Some(cap) = LOG_CAP.get() else {
            return;
        };
        for (index, chunk) in frame[..*len].chunks(8).enumerate() {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            crate::ipc_buffer::write(index, u64::from_le_bytes(word));
        }
        crate::syscall::debug_log(cap, *len);
    }

    unsafe fn write(bytes: &[u8]) {
        let LogState {
            encoder,
            frame,
            len,
        } = state();
        encoder.write(bytes, |bytes| append(frame, len, bytes));
    }
}

defmt::timestamp!("{=u64:us}", {
    let (ticks, frequency) = crate::syscall::now_ticks();
    ticks * 1_000_000 / frequency.max(1)
});
