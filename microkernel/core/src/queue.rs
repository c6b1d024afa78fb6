//! Intrusive FIFO queues of threads, linked through indices stored in the threads themselves.
//!
//! A thread is in at most one scheduler queue ([`crate::tcb::SCHED_LINK`]) and at most one
//! endpoint or notification queue ([`crate::tcb::OBJECT_LINK`]); both are O(1) to join and to
//! leave from the middle, which cancellation (restart, suspend) needs.

use crate::TcbId;
use crate::tcb::Tcb;

/// The "no thread" index.
pub const NONE: TcbId = TcbId::MAX;

/// A thread's place in one queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// Previous thread, or [`NONE`].
    pub prev: TcbId,
    /// Next thread, or [`NONE`].
    pub next: TcbId,
    /// Whether the thread is in a queue through this link.
    pub queued: bool,
}

impl Link {
    /// Not in a queue.
    pub const EMPTY: Self = Self {
        prev: NONE,
        next: NONE,
        queued: false,
    };
}

/// A FIFO queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queue {
    /// First thread, or [`NONE`].
    pub head: TcbId,
    /// Last thread, or [`NONE`].
    pub tail: TcbId,
}

impl Default for Queue {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl Queue {
    /// An empty queue.
    pub const EMPTY: Self = Self {
        head: NONE,
        tail: NONE,
    };

    /// Whether the queue is empty.
    pub const fn is_empty(&self) -> bool {
        self.head == NONE
    }

    /// Appends `id`. A thread already queued through `link` is left where it is.
    #[inline]
    pub fn push_back(&mut self, tcbs: &mut [Tcb], link: usize, id: TcbId) {
        self.insert(tcbs, link, id, false);
    }

    /// Prepends `id`. A thread already queued through `link` is left where it is.
    pub fn push_front(&mut self, tcbs: &mut [Tcb], link: usize, id: TcbId) {
        self.insert(tcbs, link, id, true);
    }

    #[inline]
    fn insert(&mut self, tcbs: &mut [Tcb], link: usize, id: TcbId, front: bool) {
        let Some(entry) = tcbs.get(usize::from(id)).and_then(|t| t.links.get(link)) else {
            return;
        };
        if entry.queued {
            return;
        }
        let (prev, next) = if front {
            (NONE, self.head)
        } else {
            (self.tail, NONE)
        };
        set_link(
            tcbs,
            link,
            id,
            Link {
                prev,
                next,
                queued: true,
            },
        );
        if prev == NONE {
            self.head = id;
        } else {
            update(tcbs, link, prev, |l| l.next = id);
        }
        if next == NONE {
            self.tail = id;
        } else {
            update(tcbs, link, next, |l| l.prev = id);
        }
    }

    /// Removes and returns the first thread.
    #[inline]
    pub fn pop_front(&mut self, tcbs: &mut [Tcb], link: usize) -> Option<TcbId> {
        let head = self.head;
        if head == NONE {
            return None;
        }
        self.remove(tcbs, link, head);
        Some(head)
    }

    /// Removes `id` from wherever it is in this queue; no-op when it is not queued.
    #[inline]
    pub fn remove(&mut self, tcbs: &mut [Tcb], link: usize, id: TcbId) {
        let Some(entry) = tcbs
            .get(usize::from(id))
            .and_then(|t| t.links.get(link))
            .copied()
        else {
            return;
        };
        if !entry.queued {
            return;
        }
        if entry.prev == NONE {
            self.head = entry.next;
        } else {
            update(tcbs, link, entry.prev, |l| l.next = entry.next);
        }
        if entry.next == NONE {
            self.tail = entry.prev;
        } else {
            update(tcbs, link, entry.next, |l| l.prev = entry.prev);
        }
        set_link(tcbs, link, id, Link::EMPTY);
    }
}

fn set_link(tcbs: &mut [Tcb], link: usize, id: TcbId, value: Link) {
    update(tcbs, link, id, |l| *l = value);
}

fn update(tcbs: &mut [Tcb], link: usize, id: TcbId, change: impl FnOnce(&mut Link)) {
    if let Some(entry) = tcbs
        .get_mut(usize::from(id))
        .and_then(|t| t.links.get_mut(link))
    {
        change(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// Pops until empty (at most one more than there are threads, so a broken queue that
    /// never empties fails the test instead of hanging it).
    fn drain(queue: &mut Queue, tcbs: &mut [Tcb]) -> Vec<TcbId> {
        let bound = tcbs.len() + 1;
        core::iter::from_fn(|| queue.pop_front(tcbs, 1))
            .take(bound)
            .collect()
    }

    #[test]
    fn fifo_order_and_removal_from_the_middle() {
        let mut tcbs: Vec<Tcb> = (0..5).map(|_| Tcb::new(1)).collect();
        let mut queue = Queue::EMPTY;
        for id in [3, 1, 4, 0] {
            queue.push_back(&mut tcbs, 1, id);
        }
        queue.push_back(&mut tcbs, 1, 1); // already queued: stays in place
        queue.remove(&mut tcbs, 1, 4);
        queue.push_front(&mut tcbs, 1, 2);
        assert_eq!(drain(&mut queue, &mut tcbs), [2, 3, 1, 0]);
        assert!(queue.is_empty());
        assert!(tcbs.iter().all(|t| t.links[1] == Link::EMPTY));
    }
}
