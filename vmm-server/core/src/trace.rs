//! A ring of the last exits, for the hard-to-debug path: `Copy` records written on every exit
//! and read only when something went wrong: it costs nothing until someone reads it, beyond a few
//! stores per exit.

use crate::exit::Cause;
use abi::vm::VmExitKind;

/// One handled exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceRecord {
    /// Exit number (1 = the first exit).
    pub sequence: u64,
    /// Why the guest stopped.
    pub kind: VmExitKind,
    /// Guest PC at the exit.
    pub pc: u64,
    /// ESR_EL2.
    pub esr: u64,
    /// The exit's first word (IPA of an abort, x0 of a hypercall).
    pub word: u64,
    /// The reply's `VmReply` bits.
    pub reply: u64,
    /// Why the guest resumed that way.
    pub cause: Cause,
}

/// The last `N` records, oldest overwritten first.
#[derive(Clone, Debug)]
pub struct TraceRing<const N: usize> {
    records: [Option<TraceRecord>; N],
    next: usize,
}

impl<const N: usize> Default for TraceRing<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> TraceRing<N> {
    /// An empty ring.
    pub const fn new() -> Self {
        Self {
            records: [None; N],
            next: 0,
        }
    }

    /// Records one exit, dropping the oldest when full.
    pub fn push(&mut self, record: TraceRecord) {
        if let Some(slot) = self.records.get_mut(self.next) {
            *slot = Some(record);
            self.next = (self.next + 1) % N;
        }
    }

    /// The records, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &TraceRecord> {
        let (newer, older) = self.records.split_at(self.next.min(N));
        older.iter().chain(newer).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(sequence: u64) -> TraceRecord {
        TraceRecord {
            sequence,
            kind: VmExitKind::Hypercall,
            pc: 0,
            esr: 0,
            word: 0,
            reply: 0,
            cause: Cause::Hypercall,
        }
    }

    #[test]
    fn keeps_the_last_n_in_order() {
        let mut ring = TraceRing::<3>::new();
        assert_eq!(ring.iter().count(), 0);
        ring.push(record(1));
        ring.push(record(2));
        assert!(ring.iter().map(|r| r.sequence).eq([1, 2]));
        ring.push(record(3));
        ring.push(record(4));
        ring.push(record(5));
        assert!(ring.iter().map(|r| r.sequence).eq([3, 4, 5]));
    }

    #[test]
    fn a_zero_sized_ring_records_nothing() {
        let mut ring = TraceRing::<0>::new();
        ring.push(record(1));
        assert_eq!(ring.iter().count(), 0);
    }
}
