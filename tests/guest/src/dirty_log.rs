//! Check 6: dirty logging (HV_DIRTY_LOG_ENABLE / HV_DIRTY_LOG_GET_AND_CLEAR) over the 1 MiB
//! dirty window.
//!
//! The sequence is chosen so that each ABI promise is what makes it pass:
//!
//! 1. Before the enable, every page of the window is written once, so at stage 2 the whole
//!    window is mapped and writable (possibly as part of a 2 MiB block that the hypervisor must
//!    now split). "Starts clean" means none of these writes may show.
//! 2. After the enable, pages [`WRITTEN`] are written and pages [`READ_ONLY`] only read: the
//!    first get-and-clear must return exactly [`WRITTEN`] (reads never dirty a page).
//! 3. One of those pages is written again: it must have been write-protected again by the
//!    clear, so the second get-and-clear returns exactly that page.
//! 4. A third get-and-clear with no writes in between returns nothing.
//! 5. Every word written along the way reads back its last value (a write that took a
//!    permission fault completed after the hypervisor resolved it).

use crate::checks::Outcome;
use crate::hypercall::{self, HvcError};
use crate::layout::{DIRTY_WINDOW, DIRTY_WINDOW_SIZE, PAGE_SIZE};
use crate::memory::{self, Window, pattern};
use crate::println;
use crate::uart::{Bitmap, Hex};

/// Pages written after the enable: both ends of the window, one in the first bitmap word, one
/// starting the second.
const WRITTEN: [u64; 4] = [0, 3, 64, 255];
/// Pages read (never written) after the enable.
const READ_ONLY: [u64; 2] = [1, 100];
/// The page written again after the first get-and-clear.
const REWRITTEN: u64 = 3;
/// Pages in the window: one bit each in the four-word bitmap.
const PAGES: u64 = DIRTY_WINDOW_SIZE / PAGE_SIZE;

/// The word of `page` that the check writes: a different offset in each page.
fn offset(page: u64) -> u64 {
    page * PAGE_SIZE + (page * 56) % PAGE_SIZE
}

/// The value written into `page` in generation `generation`.
fn value(window: &Window, page: u64, generation: u64) -> u64 {
    pattern(window.base() + offset(page), generation)
}

/// The bitmap with exactly `pages` set.
fn bitmap_of(pages: &[u64]) -> [u64; 4] {
    let mut bitmap = [0; 4];
    for &page in pages {
        if let Some(word) = bitmap.get_mut((page / 64) as usize) {
            *word |= 1 << (page % 64);
        }
    }
    bitmap
}

/// One get-and-clear, compared with `expected`.
fn get_and_compare(round: u32, expected: [u64; 4]) -> Result<(), Outcome> {
    match hypercall::dirty_log_get_and_clear(DIRTY_WINDOW, DIRTY_WINDOW_SIZE) {
        Ok(bitmap) if bitmap == expected => Ok(()),
        Ok(bitmap) => {
            println!(
                "guest: dirty log round {round}: pages {} dirty, expected {}",
                Bitmap(bitmap),
                Bitmap(expected)
            );
            Err(Outcome::Failed("dirty bitmap mismatch"))
        }
        Err(error) => {
            println!("guest: dirty log round {round}: HV_DIRTY_LOG_GET_AND_CLEAR gave {error:?}");
            Err(Outcome::Failed("HV_DIRTY_LOG_GET_AND_CLEAR failed"))
        }
    }
}

/// Check 6.
pub fn check() -> Outcome {
    match run() {
        Ok(()) => {
            println!("guest: dirty log ok");
            Outcome::Passed
        }
        Err(outcome) => outcome,
    }
}

fn run() -> Result<(), Outcome> {
    let window = memory::dirty_window();
    for page in 0..PAGES {
        window.write(offset(page), value(&window, page, 0));
    }

    match hypercall::dirty_log_enable(DIRTY_WINDOW, DIRTY_WINDOW_SIZE) {
        Ok(()) => {}
        Err(HvcError::NoHypervisor(absence)) => {
            println!(
                "guest: dirty log skipped (no hypervisor: {})",
                absence.describe()
            );
            return Err(Outcome::Skipped);
        }
        Err(HvcError::Failed(status)) => {
            println!("guest: HV_DIRTY_LOG_ENABLE failed with status {status}");
            return Err(Outcome::Failed("HV_DIRTY_LOG_ENABLE failed"));
        }
    }

    for page in WRITTEN {
        window.write(offset(page), value(&window, page, 1));
    }
    for page in READ_ONLY {
        let (read, expected) = (window.read(offset(page)), value(&window, page, 0));
        if read != expected {
            println!(
                "guest: dirty window page {page} reads {} after enable, expected {}",
                Hex(read),
                Hex(expected)
            );
            return Err(Outcome::Failed("dirty window changed by enable"));
        }
    }
    get_and_compare(1, bitmap_of(&WRITTEN))?;

    window.write(offset(REWRITTEN), value(&window, REWRITTEN, 2));
    get_and_compare(2, bitmap_of(&[REWRITTEN]))?;
    get_and_compare(3, bitmap_of(&[]))?;

    for page in 0..PAGES {
        let generation = match page {
            REWRITTEN => 2,
            _ if WRITTEN.contains(&page) => 1,
            _ => 0,
        };
        let (read, expected) = (window.read(offset(page)), value(&window, page, generation));
        if read != expected {
            println!(
                "guest: dirty window page {page} reads {}, expected {}",
                Hex(read),
                Hex(expected)
            );
            return Err(Outcome::Failed("dirty window lost a write"));
        }
    }
    Ok(())
}
