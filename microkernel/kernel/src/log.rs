//! The kernel's binary log: defmt frames from the kernel (protection domain 0) and from every
//! server (domain = server index + 1, relayed by the DebugLog system call), written as records
//! `[pd: u8][len: u16 LE][frame]` to the host file `defmt.log` through semihosting. `cargo
//! xtask run` decodes each record against the ELF of its domain (docs/DESIGN.md, "Logging").
//!
//! Logging is for debugging only: verdicts and the banner go to the console as plain text.

use crate::arch::aarch64::semihosting;
use core::cell::UnsafeCell;

/// Most bytes of one frame (longer frames are cut, which the decoder reports as malformed).
const FRAME_CAPACITY: usize = 512;

struct LogState {
    handle: Option<u64>,
    encoder: defmt::Encoder,
    frame: [u8; FRAME_CAPACITY],
    len: usize,
}

struct LogCell(UnsafeCell<LogState>);

// SAFETY: the kernel is uniprocessor and runs with interrupts masked; defmt's acquire/release
// pairing (checked below) keeps one frame in flight.
unsafe impl Sync for LogCell {}

static LOG: LogCell = LogCell(UnsafeCell::new(LogState {
    handle: None,
    encoder: defmt::Encoder::new(),
    frame: [0; FRAME_CAPACITY],
    len: 0,
}));

fn state() -> &'static mut LogState {
    // SAFETY: see the `Sync` impl: only one kernel context exists, and every caller finishes
    // with the reference before returning.
    unsafe { &mut *LOG.0.get() }
}

/// Opens the log file. Without semihosting the log is simply off.
pub fn init() {
    state().handle = semihosting::open_for_writing(c"defmt.log");
}

/// Appends one record for protection domain `pd`.
pub fn write_record(pd: u8, frame: &[u8]) {
    let Some(handle) = state().handle else { return };
    let len = frame.len().min(usize::from(u16::MAX));
    let [low, high] = (len as u16).to_le_bytes();
    semihosting::write(handle, &[pd, low, high]);
    semihosting::write(handle, &frame[..len]);
}

#[defmt::global_logger]
struct KernelLogger;

// SAFETY: acquire/release bracket every frame and the kernel never nests logging (one context,
// interrupts masked), so the encoder state is never used concurrently.
unsafe impl defmt::Logger for KernelLogger {
    fn acquire() {
        let state = state();
        state.len = 0;
        let LogState {
            encoder,
            frame,
            len,
            ..
        } = state;
        encoder.start_frame(|bytes| append(frame, len, bytes));
    }

    unsafe fn flush() {}

    unsafe fn release() {
        let state = state();
        {
            let LogState {
                encoder,
                frame,
                len,
                ..
            } = &mut *state;
            encoder.end_frame(|bytes| append(frame, len, bytes));
        }
        write_record(0, &state.frame[..state.len]);
    }

    unsafe fn write(bytes: &[u8]) {
        let LogState {
            encoder,
            frame,
            len,
            ..
        } = state();
        encoder.write(bytes, |bytes| append(frame, len, bytes));
    }
}

fn append(frame: &mut [u8; FRAME_CAPACITY], len: &mut usize, bytes: &[u8]) {
    let room = FRAME_CAPACITY - *len;
    let take = bytes.len().min(room);
    frame[*len..*len + take].copy_from_slice(&bytes[..take]);
    *len += take;
}

defmt::timestamp!("{=u64:us}", {
    let ticks: u64;
    let frequency: u64;
    // SAFETY: reading the generic timer's counter and frequency has no side effect.
    unsafe {
        core::arch::asm!(
            "mrs {ticks}, cntpct_el0",
            "mrs {frequency}, cntfrq_el0",
            ticks = out(reg) ticks,
            frequency = out(reg) frequency,
        );
    }
    ticks * 1_000_000 / frequency.max(1)
});
