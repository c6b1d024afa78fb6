//! Between two attempts the planner lets the backing's owner run (`Backing::before_retry`), and
//! only between two: never after the last attempt, which fails the fault at once.

use super::*;
use crate::stage2::retry::{MAX_ATTEMPTS, frame_with_retry};

/// Answers `Retry` to the first `retries` calls, then lends a 4 KiB frame; records the attempt
/// number of every yield.
struct Busy {
    retries: u32,
    calls: u32,
    yields: std::vec::Vec<u8>,
}

impl Backing for Busy {
    fn frame_for(&mut self, _: u16, _: u64, _: PageSize) -> Result<Frame, BackingError> {
        self.calls += 1;
        if self.calls <= self.retries {
            return Err(BackingError::Retry);
        }
        Ok(Frame {
            index: 1,
            size: PageSize::Size4K,
        })
    }

    fn before_retry(&mut self, attempt: u8) {
        self.yields.push(attempt);
    }
}

fn busy(retries: u32) -> Busy {
    Busy {
        retries,
        calls: 0,
        yields: vec![],
    }
}

#[test]
fn a_backing_that_never_settles_is_yielded_to_between_attempts_only() {
    let mut backing = busy(u32::MAX);
    assert_eq!(
        frame_with_retry(&mut backing, 0, 0, PageSize::Size4K),
        Err(MmuError::BackingRetriesExhausted {
            attempts: MAX_ATTEMPTS
        })
    );
    assert_eq!(backing.calls, u32::from(MAX_ATTEMPTS));
    let between: std::vec::Vec<u8> = (1..MAX_ATTEMPTS).collect();
    assert_eq!(backing.yields, between, "no yield after the last attempt");
}

#[test]
fn a_backing_that_settles_on_the_last_attempt_was_yielded_to_before_each_retry() {
    let mut backing = busy(u32::from(MAX_ATTEMPTS) - 1);
    assert!(frame_with_retry(&mut backing, 0, 0, PageSize::Size4K).is_ok());
    assert_eq!(backing.yields.len(), usize::from(MAX_ATTEMPTS) - 1);
    assert_eq!(backing.yields.last(), Some(&(MAX_ATTEMPTS - 1)));
}
