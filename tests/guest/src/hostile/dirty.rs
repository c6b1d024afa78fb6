//! Class 7 of the attack: dirty-log windows opened until the typed exhaustion answer, then all
//! disabled (docs/GUEST-ABI.md, HV_DIRTY_LOG_ENABLE / _DISABLE; docs/MMU-STAGE2.md).
//!
//! One operation opens windows of random sizes (1 to 256 pages), one per MiB of the dirty area,
//! until HV_DIRTY_LOG_ENABLE answers NO_WINDOW (-4), with bad requests in between that must be
//! refused with INVALID_PARAMETER (-3) and change nothing: a range overlapping a window without
//! being it, an unaligned IPA, an empty range, one longer than 1 MiB, one outside RAM. Enabling
//! an open window again must answer 0 without taking another. It writes a random page of the
//! first window and expects exactly that page in its bitmap (HV_DIRTY_LOG_GET_AND_CLEAR), then
//! disables every window (0), and one of them again (0: already not logged).
//!
//! The number of windows before NO_WINDOW is the manifest's `dirty_log_windows`: it must be the
//! same in every operation, or the mmu-server leaked or lost one. Any other answer is counted
//! as wrong and the first is printed.

use super::DIRTY_AREA;
use super::rng::Rng;
use crate::hypercall::{self, HvcError, NO_WINDOW};
use crate::layout::{MIB, PAGE_SIZE, RAM_BASE, RAM_SIZE};
use crate::println;

/// INVALID_PARAMETER as the wrappers report it.
const REFUSED: Result<(), HvcError> = Err(HvcError::Failed(-3));
/// The most windows tried before giving up on seeing NO_WINDOW (an mmu-server holds 16).
const MOST: usize = 20;

/// What class 7 found.
#[derive(Clone, Copy, Default)]
pub struct Dirty {
    /// Operations done.
    pub rounds: u64,
    /// Windows before NO_WINDOW in the first round (the others must match).
    pub windows: Option<usize>,
    /// Answers outside the ABI.
    pub wrong: u64,
}

impl Dirty {
    fn wrong(&mut self, what: &str, answer: Result<(), HvcError>) {
        self.wrong += 1;
        if self.wrong == 1 {
            super::registers::pl011_sane();
            println!("hostile: dirty log: {what}: {answer:?}");
        }
    }
}

/// Class 7: one round.
pub fn round(rng: &mut Rng, found: &mut Dirty) {
    found.rounds += 1;
    let mut lengths = [0u64; MOST];
    let mut open = 0;
    while open < MOST {
        let ipa = DIRTY_AREA + open as u64 * MIB;
        let len = (1 + rng.below(256)) * PAGE_SIZE;
        match hypercall::dirty_log_enable(ipa, len) {
            Ok(()) => {
                lengths[open] = len;
                open += 1;
            }
            Err(HvcError::Failed(NO_WINDOW)) => break,
            answer => {
                found.wrong("enable of a free range", answer);
                break;
            }
        }
        if open == 1 {
            bad_requests(rng, found, len);
        }
    }
    match found.windows {
        None => found.windows = Some(open),
        Some(windows) if windows != open => found.wrong("window count changed", Ok(())),
        Some(_) => {}
    }
    if open > 0 {
        check_bitmap(rng, found, lengths[0]);
    }
    for (i, &len) in lengths.iter().enumerate().take(open) {
        let answer = hypercall::dirty_log_disable(DIRTY_AREA + i as u64 * MIB, len);
        if answer.is_err() {
            found.wrong("disable of a window", answer);
        }
    }
    if open > 0 {
        let answer = hypercall::dirty_log_disable(DIRTY_AREA, lengths[0]);
        if answer.is_err() {
            found.wrong("disable of a disabled window", answer);
        }
    }
}

/// The refusals, made while window 0 (`len` bytes at DIRTY_AREA) is open.
fn bad_requests(rng: &mut Rng, found: &mut Dirty, len: u64) {
    let bad = [
        (DIRTY_AREA, len + PAGE_SIZE),
        (DIRTY_AREA + 1 + rng.below(PAGE_SIZE - 1), PAGE_SIZE),
        (DIRTY_AREA + 64 * MIB, 0),
        (DIRTY_AREA + 8 * MIB, MIB + PAGE_SIZE * (1 + rng.below(16))),
        (
            RAM_BASE + RAM_SIZE + rng.below(MIB) / PAGE_SIZE * PAGE_SIZE,
            PAGE_SIZE,
        ),
        (RAM_BASE - PAGE_SIZE, 2 * PAGE_SIZE),
        (!(PAGE_SIZE - 1), PAGE_SIZE),
    ];
    let (ipa, bad_len) = rng.pick(&bad);
    // An overlap of more than 1 MiB is refused for its length: still -3.
    let answer = hypercall::dirty_log_enable(ipa, bad_len);
    if answer != REFUSED {
        found.wrong("a bad enable was not refused", answer);
    }
    let again = hypercall::dirty_log_enable(DIRTY_AREA, len);
    if again.is_err() {
        found.wrong("enabling an open window again", again);
    }
}

/// Writes one random page of window 0 and expects exactly it in the bitmap.
fn check_bitmap(rng: &mut Rng, found: &mut Dirty, len: u64) {
    // Clean first: the previous round's writes were in the window's pages too.
    let _ = hypercall::dirty_log_get_and_clear(DIRTY_AREA, len);
    let page = rng.below(len / PAGE_SIZE);
    let word = (DIRTY_AREA + page * PAGE_SIZE + rng.below(PAGE_SIZE / 8) * 8) as *mut u64;
    // SAFETY: a word of the dirty area, RAM mapped read-write by the identity map, that holds no
    // Rust object (only this class writes there).
    unsafe { word.write_volatile(rng.next()) };
    let mut expected = [0u64; 4];
    expected[(page / 64) as usize] = 1 << (page % 64);
    match hypercall::dirty_log_get_and_clear(DIRTY_AREA, len) {
        Ok(bitmap) if bitmap == expected => {}
        Ok(_) => found.wrong("the bitmap did not show exactly the page written", Ok(())),
        Err(error) => found.wrong("get and clear of a window", Err(error)),
    }
}
