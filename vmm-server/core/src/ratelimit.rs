//! Log records a guest can trigger, rate-limited: a guest that touches a hole in a loop must
//! not flood the log or slow the servers down with one record per access. Each kind of record
//! is written for its first [`FREE`] events, then only for the 2^k-th (256, 512, 1024, ...),
//! so a guest looping on it costs lines logarithmic in its count; the record says how many
//! events it stands for.

/// Events of one kind that are each logged.
pub const FREE: u64 = 16;

/// The count of one kind of guest-triggered event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateLimit {
    count: u64,
}

impl RateLimit {
    /// No event yet.
    pub const fn new() -> Self {
        Self { count: 0 }
    }

    /// Counts one event; `Some(n)` (this is the n-th) when it is to be logged.
    pub fn note(&mut self) -> Option<u64> {
        self.count = self.count.saturating_add(1);
        let n = self.count;
        (n <= FREE || n.is_power_of_two()).then_some(n)
    }

    /// Events counted so far.
    pub const fn count(&self) -> u64 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    #[test]
    fn the_first_events_are_logged_then_only_powers_of_two() {
        let mut limit = RateLimit::new();
        let logged: Vec<u64> = (0..80_000).filter_map(|_| limit.note()).collect();
        let mut expected: Vec<u64> = (1..=FREE).collect();
        expected.extend((5..=16).map(|k| 1u64 << k));
        assert_eq!(logged, expected, "28 records for 80,000 events");
        assert_eq!(limit.count(), 80_000);
    }
}
