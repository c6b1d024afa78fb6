//! Check 6: dirty logging (HV_DIRTY_LOG_ENABLE / HV_DIRTY_LOG_GET_AND_CLEAR /
//! HV_DIRTY_LOG_DISABLE) over the 1 MiB dirty window, then dirty-log windows as a bounded
//! resource.
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
//! 6. Windows are bounded ([`windows`]): the dirty window is disabled, then one-page windows
//!    are enabled in a block of their own until one is refused with NO_WINDOW (the console line
//!    says how many the VM got: its manifest's `dirty_log_windows`). Meanwhile a never-touched
//!    block that no window touches faults in as one 2 MiB block, and a window's page as one
//!    4 KiB page that is logged (HV_STAGE2_FAULTS). Every window is disabled and one enabled
//!    again (elsewhere): the windows' block then faults in as one block again, its data intact,
//!    and the window enabled again logs a write; it is disabled, so the later checks run with
//!    no logging. A restarted mmu-server loses windows and counters (docs/MMU-STAGE2.md): a
//!    get-and-clear of a window after each measurement tells, and a measurement that spanned a
//!    restart ends the step unjudged (the mmu-server crash test restarts it every 150 calls).

use crate::checks::Outcome;
use crate::hypercall::{self, HvcError};
use crate::layout::{
    BENCH_BLOCKS, BLOCK_PROBES, BLOCK_SIZE, DIRTY_WINDOW, DIRTY_WINDOW_SIZE, PAGE_SIZE, RAM_BASE,
    RAM_SIZE,
};
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

/// The 2 MiB block (index from [`RAM_BASE`]) of the one-page windows enabled until one is
/// refused; never touched before. Window `n` is its page `n`.
const WINDOWS_BLOCK: u64 = 8;
/// Enables tried before the guest gives up waiting for a refusal: one more than the most
/// windows an mmu-server holds for a VM (16, the manifest's bound).
const MAX_WINDOWS_TRIED: u64 = 17;
/// A 2 MiB block that no other check touches and no window overlaps: its first touch must be
/// one 2 MiB fault while the VM has every window enabled. The window enabled again after all
/// were disabled is its page [`CANARY_PAGE`].
const FREE_BLOCK: u64 = 2;
/// The page of [`FREE_BLOCK`] logged by the window enabled again.
const CANARY_PAGE: u64 = 1;

const _: () = assert!(MAX_WINDOWS_TRIED * PAGE_SIZE <= BLOCK_SIZE);
const _: () = assert!(DIRTY_WINDOW + DIRTY_WINDOW_SIZE <= RAM_BASE + FREE_BLOCK * BLOCK_SIZE);
const _: () = {
    let mut i = 0;
    while i < BLOCK_PROBES.len() {
        assert!(BLOCK_PROBES[i] != FREE_BLOCK && BLOCK_PROBES[i] != WINDOWS_BLOCK);
        i += 1;
    }
    let mut i = 0;
    while i < BENCH_BLOCKS.len() {
        assert!(BENCH_BLOCKS[i] != FREE_BLOCK && BENCH_BLOCKS[i] != WINDOWS_BLOCK);
        i += 1;
    }
    assert!(FREE_BLOCK != WINDOWS_BLOCK && (WINDOWS_BLOCK + 1) * BLOCK_SIZE <= RAM_SIZE);
};

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
    windows()
}

/// The stage-2 fault counters, or the failure.
fn faults() -> Result<hypercall::Stage2Faults, Outcome> {
    hypercall::stage2_faults().map_err(|error| {
        println!("guest: dirty log: HV_STAGE2_FAULTS gave {error:?}");
        Outcome::Failed("HV_STAGE2_FAULTS failed")
    })
}

/// The IPA of window `n` of [`WINDOWS_BLOCK`].
const fn window_page(n: u64) -> u64 {
    RAM_BASE + WINDOWS_BLOCK * BLOCK_SIZE + n * PAGE_SIZE
}

/// Whether `ipa` is a word of [`FREE_BLOCK`] or [`WINDOWS_BLOCK`], the blocks this step owns.
fn owned(ipa: u64) -> bool {
    let in_block = |block: u64| (ipa - RAM_BASE) / BLOCK_SIZE == block;
    ipa >= RAM_BASE && ipa.is_multiple_of(8) && (in_block(FREE_BLOCK) || in_block(WINDOWS_BLOCK))
}

/// Writes the word at `ipa` (in a block this step owns) with a volatile store, so the first
/// touch happens exactly there, between two counter reads.
fn write_word(ipa: u64, value: u64) {
    assert!(owned(ipa), "{ipa:#x} is not this step's");
    // SAFETY: FREE_BLOCK and WINDOWS_BLOCK are RAM above both test windows, mapped read-write
    // by mmu.rs (2 MiB blocks over RAM blocks 1..31); no other check and no Rust object uses
    // them (asserted above); the store is an aligned u64 (checked by `owned`).
    unsafe { (ipa as *mut u64).write_volatile(value) }
}

/// Reads the word at `ipa` (in a block this step owns) with a volatile load.
fn read_word(ipa: u64) -> u64 {
    assert!(owned(ipa), "{ipa:#x} is not this step's");
    // SAFETY: as in `write_word`.
    unsafe { (ipa as *const u64).read_volatile() }
}

/// Whether `touch`, in an mmu-server life in which `canary` (an enabled one-page window) was
/// kept, cost exactly `expected` = (4 KiB, 2 MiB, permission) stage-2 faults. A restarted
/// mmu-server has lost its windows and counts from zero (docs/MMU-STAGE2.md, "Restart"): its
/// refusal of a get-and-clear of the canary tells, and then nothing is judged (`Ok(false)`).
/// The canary's bits are returned through `bits` (the get-and-clear takes them).
fn costs(
    what: &str,
    expected: (u64, u64, u64),
    canary: u64,
    bits: &mut [u64; 4],
    touch: impl FnOnce(),
) -> Result<bool, Outcome> {
    let before = faults()?;
    touch();
    let after = faults()?;
    match hypercall::dirty_log_get_and_clear(canary, PAGE_SIZE) {
        Ok(taken) => *bits = taken,
        Err(error) => {
            println!(
                "guest: dirty log: the mmu-server restarted during {what} (window {} lost: \
                 {error:?}); windows and counters start afresh, the rest is not judged",
                Hex(canary)
            );
            return Ok(false);
        }
    }
    let seen = (
        after.pages.wrapping_sub(before.pages),
        after.blocks.wrapping_sub(before.blocks),
        after.permission.wrapping_sub(before.permission),
    );
    if seen != expected {
        println!(
            "guest: dirty log: {what} cost {} 4 KiB, {} 2 MiB, {} permission faults; expected \
             {}, {}, {}",
            seen.0, seen.1, seen.2, expected.0, expected.1, expected.2
        );
        return Err(Outcome::Failed("a dirty-log window cost the wrong faults"));
    }
    Ok(true)
}

/// Disables the window `[ipa, ipa + len)`, or says why that failed.
fn disable(ipa: u64, len: u64) -> Result<(), Outcome> {
    hypercall::dirty_log_disable(ipa, len).map_err(|error| {
        println!(
            "guest: dirty log: HV_DIRTY_LOG_DISABLE({}, {len:#x}) gave {error:?}",
            Hex(ipa)
        );
        Outcome::Failed("HV_DIRTY_LOG_DISABLE failed")
    })
}

/// Step 6: windows until refused, a block outside them, all disabled, one enabled again.
fn windows() -> Result<(), Outcome> {
    // The dirty window goes first (a disable of what is not logged is done, so this holds
    // after an mmu-server restart too): the count below is of windows this step got.
    disable(DIRTY_WINDOW, DIRTY_WINDOW_SIZE)?;
    let mut granted = 0;
    loop {
        if granted == MAX_WINDOWS_TRIED {
            println!("guest: dirty log: {granted} windows granted, none refused");
            return Err(Outcome::Failed("dirty-log windows are not bounded"));
        }
        match hypercall::dirty_log_enable(window_page(granted), PAGE_SIZE) {
            Ok(()) => granted += 1,
            Err(HvcError::Failed(hypercall::NO_WINDOW)) => break,
            Err(error) => {
                println!("guest: dirty log: window {} gave {error:?}", granted + 1);
                return Err(Outcome::Failed(
                    "HV_DIRTY_LOG_ENABLE failed before the limit",
                ));
            }
        }
    }
    println!(
        "guest: dirty log: {granted} windows, the next refused with NO_WINDOW ({})",
        hypercall::NO_WINDOW
    );
    if granted == 0 {
        return Err(Outcome::Failed("no dirty-log window at all"));
    }
    let mut bits = [0; 4];
    let free = RAM_BASE + FREE_BLOCK * BLOCK_SIZE;
    let (free_word, logged_word) = (pattern(free, 6), pattern(window_page(0), 6));
    let touch_free = || write_word(free, free_word);
    if !costs(
        "a free block's first touch",
        (0, 1, 0),
        window_page(0),
        &mut bits,
        touch_free,
    )? {
        return Ok(());
    }
    // A window's page: 4 KiB, its block being logged; the write is logged.
    let touch_logged = || write_word(window_page(0), logged_word);
    if !costs(
        "a logged page's first touch",
        (1, 0, 0),
        window_page(0),
        &mut bits,
        touch_logged,
    )? {
        return Ok(());
    }
    if bits != bitmap_of(&[0]) {
        println!(
            "guest: dirty log: the window at the limit logged {}",
            Bitmap(bits)
        );
        return Err(Outcome::Failed("dirty bitmap mismatch"));
    }

    for n in 0..granted {
        disable(window_page(n), PAGE_SIZE)?;
    }
    // One window again, in the free block (not the windows' block, whose block must come
    // back): the disables freed them.
    let canary = free + CANARY_PAGE * PAGE_SIZE;
    if let Err(error) = hypercall::dirty_log_enable(canary, PAGE_SIZE) {
        println!("guest: dirty log: enabling again after disable gave {error:?}");
        return Err(Outcome::Failed(
            "a disabled window could not be enabled again",
        ));
    }
    // Disabling unmapped the windows' block: its next touch maps it as one block, over the
    // same memory.
    let mut seen = 0;
    let touch_again = || seen = read_word(window_page(0));
    if !costs(
        "the windows' block after disable",
        (0, 1, 0),
        canary,
        &mut bits,
        touch_again,
    )? {
        return Ok(());
    }
    if seen != logged_word {
        println!(
            "guest: dirty log: a disabled window's page reads {}",
            Hex(seen)
        );
        return Err(Outcome::Failed("disabling a window lost its data"));
    }
    // The window enabled again logs: a write to its page (write-protected in the free block's
    // block) is one permission fault, and dirty.
    let touch_canary = || write_word(canary, free_word);
    if !costs(
        "the window enabled again",
        (0, 0, 1),
        canary,
        &mut bits,
        touch_canary,
    )? {
        return Ok(());
    }
    if bits != bitmap_of(&[0]) {
        println!(
            "guest: dirty log: the window enabled again logged {}",
            Bitmap(bits)
        );
        return Err(Outcome::Failed("dirty bitmap mismatch"));
    }
    disable(canary, PAGE_SIZE)?;
    println!("guest: dirty log: all {granted} windows disabled, one enabled again and disabled");
    Ok(())
}
