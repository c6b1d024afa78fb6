//! Capability rights. A derived capability's rights are the intersection of its source's rights
//! and the requested ones: rights only ever shrink.

use serde::{Deserialize, Serialize};

/// A set of capability rights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Rights(u8);

impl Rights {
    /// No rights.
    pub const NONE: Self = Self(0);
    /// Receive on an endpoint, wait on a notification, read a frame.
    pub const READ: Self = Self(1 << 0);
    /// Send on an endpoint, signal a notification, write a frame.
    pub const WRITE: Self = Self(1 << 1);
    /// Transfer capabilities through an endpoint.
    pub const GRANT: Self = Self(1 << 2);
    /// seL4's right to let the receiver of a Call transfer capabilities in its reply. Reserved:
    /// the kernel does not check it. A reply carries a capability only into the receive slot
    /// the caller named in its IPC buffer before calling, which is the caller's consent
    /// (docs/ARCHITECTURE.md, "Memory lending").
    pub const GRANT_REPLY: Self = Self(1 << 3);
    /// Execute from a frame (frame capabilities only: a mapping may be executable only when
    /// its frame capability carries this right).
    pub const EXECUTE: Self = Self(1 << 4);
    /// Every right.
    pub const ALL: Self = Self(0b1_1111);

    /// Decodes the raw bits; unknown bits are dropped.
    pub const fn from_bits_truncate(bits: u8) -> Self {
        Self(bits & Self::ALL.0)
    }

    /// The raw bits.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Both sets.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Rights in both sets: what a derivation may keep.
    pub const fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// Whether every right of `other` is in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intersection_never_grows() {
        for a in 0..32u8 {
            for b in 0..32u8 {
                let (ra, rb) = (Rights::from_bits_truncate(a), Rights::from_bits_truncate(b));
                let derived = ra.intersection(rb);
                assert!(ra.contains(derived));
                assert!(rb.contains(derived));
            }
        }
    }
}
