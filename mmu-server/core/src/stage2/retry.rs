//! Asking the memory-backing server for a frame, retrying a bounded number of times.
//!
//! The backing server answers `Retry` when the region's state changed under the request (its owner
//! is populating it, a frame was revoked): KVM's `-EAGAIN` from `hva_to_pfn_remapped`,
//! docs/DESIGN.md, "Lazily backed regions with retry". Retrying is right, retrying forever is not:
//! a backing server that keeps answering `Retry` (a bug, or an owner that never finishes) must not
//! hang the guest's fault. After [`MAX_ATTEMPTS`] attempts the fault fails with
//! [`MmuError::BackingRetriesExhausted`], which names the count.
//!
//! Invariant: at most [`MAX_ATTEMPTS`] calls to [`Backing::frame_for`] per frame.

use super::fault::{Backing, BackingError, Frame};
use kernel_core::stage2::PageSize;
use mmu_api::MmuError;

/// Attempts per frame, the first included: `Retry` is accepted `MAX_ATTEMPTS - 1` times.
pub const MAX_ATTEMPTS: u8 = 8;

/// The frame backing `offset` of `region`, at most `size` large.
pub fn frame_with_retry(
    backing: &mut impl Backing,
    region: u16,
    offset: u64,
    size: PageSize,
) -> Result<Frame, MmuError> {
    for attempt in 1..=MAX_ATTEMPTS {
        match backing.frame_for(region, offset, size) {
            Ok(frame) if frame.size <= size => return Ok(frame),
            Ok(_) => return Err(MmuError::BackingFailed), // larger than asked: a broken backing
            Err(BackingError::Retry) => {
                if attempt < MAX_ATTEMPTS {
                    backing.before_retry(attempt);
                }
            }
            Err(BackingError::OutOfRange | BackingError::Failed) => {
                return Err(MmuError::BackingFailed);
            }
        }
    }
    Err(MmuError::BackingRetriesExhausted {
        attempts: MAX_ATTEMPTS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers `Retry` `retries` times, then lends a frame; counts calls and waits.
    struct Flaky {
        retries: u32,
        calls: u32,
        waits: u32,
        then: Result<Frame, BackingError>,
    }

    impl Backing for Flaky {
        fn frame_for(&mut self, _: u16, _: u64, _: PageSize) -> Result<Frame, BackingError> {
            self.calls += 1;
            if self.calls <= self.retries {
                Err(BackingError::Retry)
            } else {
                self.then
            }
        }
        fn before_retry(&mut self, _attempt: u8) {
            self.waits += 1;
        }
    }

    const FRAME: Frame = Frame {
        index: 42,
        size: PageSize::Size4K,
    };

    fn flaky(retries: u32) -> Flaky {
        Flaky {
            retries,
            calls: 0,
            waits: 0,
            then: Ok(FRAME),
        }
    }

    #[test]
    fn retries_below_the_bound_succeed() {
        for k in 0..u32::from(MAX_ATTEMPTS) {
            let mut backing = flaky(k);
            assert_eq!(
                frame_with_retry(&mut backing, 0, 0, PageSize::Size4K),
                Ok(FRAME),
                "k = {k}"
            );
            assert_eq!((backing.calls, backing.waits), (k + 1, k));
        }
    }

    #[test]
    fn retries_at_or_above_the_bound_fail_clearly_after_exactly_the_bound() {
        for k in [u32::from(MAX_ATTEMPTS), u32::from(MAX_ATTEMPTS) + 1, 1000] {
            let mut backing = flaky(k);
            assert_eq!(
                frame_with_retry(&mut backing, 0, 0, PageSize::Size4K),
                Err(MmuError::BackingRetriesExhausted {
                    attempts: MAX_ATTEMPTS
                }),
                "k = {k}"
            );
            assert_eq!(
                backing.calls,
                u32::from(MAX_ATTEMPTS),
                "never more calls than the bound"
            );
        }
    }

    #[test]
    fn other_answers_are_not_retried() {
        for answer in [BackingError::OutOfRange, BackingError::Failed] {
            let mut backing = Flaky {
                then: Err(answer),
                ..flaky(2)
            };
            assert_eq!(
                frame_with_retry(&mut backing, 0, 0, PageSize::Size2M),
                Err(MmuError::BackingFailed)
            );
            assert_eq!(backing.calls, 3);
        }
        let mut too_big = Flaky {
            then: Ok(Frame {
                index: 0,
                size: PageSize::Size2M,
            }),
            ..flaky(0)
        };
        assert_eq!(
            frame_with_retry(&mut too_big, 0, 0, PageSize::Size4K),
            Err(MmuError::BackingFailed)
        );
    }
}
