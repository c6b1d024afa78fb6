//! Notifications: a word of signal bits and a queue of waiters; interrupt lines.
//!
//! Signal ORs a badge into the word, or hands it straight to the first waiter. Wait returns and
//! clears the word, or blocks. An interrupt is a signal from the kernel; the line stays masked
//! until its handler acknowledges it (seL4's IRQHandler semantics), so a slow driver cannot be
//! flooded.

use crate::NotificationId;
use crate::queue::Queue;

/// A notification object.
#[derive(Clone, Copy, Debug, Default)]
pub struct Notification {
    /// Pending signal bits.
    pub word: u64,
    /// Threads waiting.
    pub waiters: Queue,
    /// The thread it is bound to, if any (`Tcb::bound_notification`).
    pub bound: Option<crate::TcbId>,
}

/// An interrupt line and where it is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqLine {
    /// GIC interrupt id.
    pub intid: u32,
    /// The notification it signals.
    pub notification: NotificationId,
    /// The badge it signals with.
    pub badge: u64,
}
