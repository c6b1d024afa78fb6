//! The scheduler: 256 priority levels, round-robin within a level, a bitmap to find the highest
//! non-empty level in constant time.
//!
//! The current thread is never in a ready queue; it is put back (at the tail after its time
//! slice or a yield, at the head when a higher-priority thread preempts it) when it stops being
//! current.

use crate::TcbId;
use crate::queue::Queue;
use crate::tcb::{SCHED_LINK, Tcb};

/// Ready queues and their occupancy bitmap.
#[derive(Clone, Debug)]
pub struct Scheduler {
    queues: [Queue; 256],
    bitmap: [u64; 4],
    /// Bit `w` set when `bitmap[w]` is non-zero: the highest level is two `clz` away.
    summary: u64,
}

impl Default for Scheduler {
    fn default() -> Self {
        Self::new()
    }
}

impl Scheduler {
    /// No thread ready.
    pub const fn new() -> Self {
        Self {
            queues: [Queue::EMPTY; 256],
            bitmap: [0; 4],
            summary: 0,
        }
    }

    /// Makes `id` ready at the tail of its level.
    pub fn enqueue(&mut self, tcbs: &mut [Tcb], id: TcbId) {
        self.insert(tcbs, id, false);
    }

    /// Makes `id` ready at the head of its level (it was preempted, not done).
    pub fn enqueue_front(&mut self, tcbs: &mut [Tcb], id: TcbId) {
        self.insert(tcbs, id, true);
    }

    fn insert(&mut self, tcbs: &mut [Tcb], id: TcbId, front: bool) {
        let Some(priority) = tcbs.get(usize::from(id)).map(|t| t.priority) else {
            return;
        };
        let level = usize::from(priority);
        if let Some(queue) = self.queues.get_mut(level) {
            if front {
                queue.push_front(tcbs, SCHED_LINK, id);
            } else {
                queue.push_back(tcbs, SCHED_LINK, id);
            }
            self.bitmap[level / 64] |= 1 << (level % 64);
            self.summary |= 1 << (level / 64);
        }
    }

    /// Takes `id` out of the ready queues (it blocked or was suspended).
    pub fn dequeue(&mut self, tcbs: &mut [Tcb], id: TcbId) {
        let Some(priority) = tcbs.get(usize::from(id)).map(|t| t.priority) else {
            return;
        };
        let level = usize::from(priority);
        if let Some(queue) = self.queues.get_mut(level) {
            queue.remove(tcbs, SCHED_LINK, id);
            if queue.is_empty() {
                self.bitmap[level / 64] &= !(1 << (level % 64));
                if self.bitmap[level / 64] == 0 {
                    self.summary &= !(1 << (level / 64));
                }
            }
        }
    }

    /// The highest ready priority, if any thread is ready.
    #[inline(always)]
    pub fn highest_priority(&self) -> Option<u8> {
        if self.summary == 0 {
            return None;
        }
        let word = (63 - self.summary.leading_zeros()) as usize & 3;
        let bits = self.bitmap[word];
        Some((word * 64 + 63 - bits.leading_zeros() as usize) as u8)
    }

    /// Removes and returns the first thread of the highest ready level.
    pub fn pop_highest(&mut self, tcbs: &mut [Tcb]) -> Option<TcbId> {
        let level = usize::from(self.highest_priority()?);
        let id = self.queues.get(level)?.head;
        self.dequeue(tcbs, id);
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn highest_priority_first_round_robin_within_a_level() {
        let mut tcbs: Vec<Tcb> = [5u8, 200, 5, 64, 200].into_iter().map(Tcb::new).collect();
        let mut sched = Scheduler::new();
        for id in 0..5 {
            sched.enqueue(&mut tcbs, id);
        }
        assert_eq!(sched.highest_priority(), Some(200));
        let order: Vec<TcbId> = core::iter::from_fn(|| sched.pop_highest(&mut tcbs))
            .take(6)
            .collect();
        assert_eq!(order, [1, 4, 3, 0, 2]);
        assert_eq!(sched.highest_priority(), None);
    }

    #[test]
    fn dequeue_clears_the_level_bit_and_front_insertion_keeps_place() {
        let mut tcbs: Vec<Tcb> = [7u8, 7, 7].into_iter().map(Tcb::new).collect();
        let mut sched = Scheduler::new();
        sched.enqueue(&mut tcbs, 0);
        sched.dequeue(&mut tcbs, 0);
        assert_eq!(sched.highest_priority(), None);
        sched.enqueue(&mut tcbs, 1);
        sched.enqueue_front(&mut tcbs, 2);
        assert_eq!(sched.pop_highest(&mut tcbs), Some(2));
        assert_eq!(sched.pop_highest(&mut tcbs), Some(1));
    }
}
