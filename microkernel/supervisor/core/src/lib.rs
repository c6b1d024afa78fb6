//! The supervisor's decisions, apart from the system calls that carry them out.
//!
//! A server's restart policy comes from the manifest: `never`, `always`, or a budget of N
//! restarts within any window of T milliseconds (Hubris's supervisor plus a rate limit). The
//! ledger remembers the times of the last restarts of each server; past the budget the server
//! stays down, and its clients get `ServerDown` from the kernel.
#![no_std]
#![forbid(unsafe_code)]

use bootdesc::RestartPolicy;
use heapless::{Deque, Vec};

/// Most restarts a budget may allow (the ledger keeps one timestamp per restart).
pub const MAX_BUDGET: usize = 16;
/// Most servers one supervisor tracks budgets for.
pub const MAX_SERVERS: usize = 64;

/// What to do about a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Restart the server from its image.
    Restart,
    /// Leave it down: its policy says never.
    StayDownByPolicy,
    /// Leave it down: it used up its budget.
    BudgetExhausted,
}

/// Restart times per server, for budget policies.
#[derive(Default)]
pub struct Ledger {
    entries: Vec<(u64, Deque<u64, MAX_BUDGET>), MAX_SERVERS>,
}

impl Ledger {
    /// An empty ledger.
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Decides for the server with fault badge `badge` faulting at `now_ms`, and records a
    /// restart when the answer is to restart.
    pub fn decide(&mut self, badge: u64, policy: RestartPolicy, now_ms: u64) -> Decision {
        match policy {
            RestartPolicy::Never => Decision::StayDownByPolicy,
            RestartPolicy::Always => Decision::Restart,
            RestartPolicy::Budget {
                restarts,
                within_ms,
            } => {
                let allowed = (restarts as usize).min(MAX_BUDGET);
                let Some(history) = self.history(badge) else {
                    // More servers than the ledger holds: be conservative.
                    return Decision::BudgetExhausted;
                };
                while history
                    .front()
                    .is_some_and(|&at| now_ms.saturating_sub(at) >= u64::from(within_ms))
                {
                    history.pop_front();
                }
                if history.len() >= allowed {
                    return Decision::BudgetExhausted;
                }
                let _ = history.push_back(now_ms);
                Decision::Restart
            }
        }
    }

    fn history(&mut self, badge: u64) -> Option<&mut Deque<u64, MAX_BUDGET>> {
        let position = match self.entries.iter().position(|(b, _)| *b == badge) {
            Some(position) => position,
            None => {
                self.entries.push((badge, Deque::new())).ok()?;
                self.entries.len() - 1
            }
        };
        self.entries.get_mut(position).map(|(_, history)| history)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_and_always_are_unconditional() {
        let mut ledger = Ledger::new();
        for now in [0, 1, 1_000_000] {
            assert_eq!(
                ledger.decide(1, RestartPolicy::Never, now),
                Decision::StayDownByPolicy
            );
            assert_eq!(
                ledger.decide(1, RestartPolicy::Always, now),
                Decision::Restart
            );
        }
    }

    #[test]
    fn a_budget_allows_n_restarts_per_window_then_refuses() {
        let mut ledger = Ledger::new();
        let policy = RestartPolicy::Budget {
            restarts: 2,
            within_ms: 1000,
        };
        assert_eq!(ledger.decide(7, policy, 0), Decision::Restart);
        assert_eq!(ledger.decide(7, policy, 10), Decision::Restart);
        assert_eq!(ledger.decide(7, policy, 20), Decision::BudgetExhausted);
        // another server has its own budget
        assert_eq!(ledger.decide(8, policy, 20), Decision::Restart);
        // once the window has moved past the first restart, one more is allowed
        assert_eq!(ledger.decide(7, policy, 1000), Decision::Restart);
        assert_eq!(ledger.decide(7, policy, 1001), Decision::BudgetExhausted);
    }
}
