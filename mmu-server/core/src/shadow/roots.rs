//! The root cache: the current shadow root plus the three most recently used previous ones
//! (docs/DESIGN.md, "Root caching keyed by the full role"; KVM's `prev_roots`).
//!
//! Guests switch CR3 on every context switch. Rebuilding a shadow tree each time would cost a
//! fault per page touched, so the last roots are kept, keyed by the guest root frame **and the
//! full canonical [`Role`]**: a root is reused only when both match, because a tree built under
//! another role (say CR0.WP=0, or NXE off) contains entries that would be wrong now. Because the
//! role is canonical (see `role.rs`), equal configurations always produce equal keys and hit.
//!
//! Order is most recently used first. A switch to a cached root swaps it with the current one; a
//! switch to a new root pushes the current one to the front and drops the least recently used.
//! A dropped root is not freed: it stays in the pool as an ordinary unlinked page (still in sync
//! with its guest table, still findable by key) until eviction reclaims it.

use heapless::Vec;

use super::addr::Gfn;
use super::role::Role;

/// Previous roots kept besides the current one.
pub const PREV_ROOTS: usize = 3;

/// What identifies a shadow root.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RootKey {
    /// The guest root table frame (CR3 bits 51:12); 0 with paging off.
    pub gfn: Gfn,
    /// The canonical root role.
    pub role: Role,
}

/// A cached root: its key and pool page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CachedRoot {
    /// Key.
    pub key: RootKey,
    /// Pool page of the root table.
    pub page: u16,
}

/// How a root switch was served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootLoad {
    /// Same key as the current root: nothing to do.
    Current,
    /// Found among the previous roots.
    CacheHit,
    /// Not cached: an existing table with the key was adopted or a new one allocated.
    Miss,
}

/// Current root plus up to [`PREV_ROOTS`] previous ones, most recent first.
#[derive(Clone, Debug)]
pub struct RootCache {
    /// The root in use.
    pub current: CachedRoot,
    prev: Vec<CachedRoot, PREV_ROOTS>,
}

impl RootCache {
    /// A cache holding only `current`.
    pub const fn new(current: CachedRoot) -> Self {
        RootCache {
            current,
            prev: Vec::new(),
        }
    }

    /// Take the previous root with `key` out of the cache.
    pub fn take_prev(&mut self, key: RootKey) -> Option<CachedRoot> {
        let pos = self.prev.iter().position(|r| r.key == key)?;
        Some(self.prev.remove(pos))
    }

    /// Make `root` current; the old current becomes the most recent previous root. Returns the
    /// root pushed out of the cache, if any.
    pub fn switch_to(&mut self, root: CachedRoot) -> Option<CachedRoot> {
        let old = core::mem::replace(&mut self.current, root);
        let evicted = if self.prev.is_full() {
            self.prev.pop()
        } else {
            None
        };
        // Cannot fail: there is room after the pop above.
        let _ = self.prev.insert(0, old);
        evicted
    }

    /// Is `page` a cached previous root?
    pub fn is_prev(&self, page: u16) -> bool {
        self.prev.iter().any(|r| r.page == page)
    }

    /// Drop a previous root whose page is being freed.
    pub fn forget(&mut self, page: u16) {
        self.prev.retain(|r| r.page != page);
    }

    /// The previous roots, most recent first.
    pub fn previous(&self) -> &[CachedRoot] {
        &self.prev
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(gfn: u64, page: u16) -> CachedRoot {
        CachedRoot {
            key: RootKey {
                gfn: Gfn(gfn),
                role: Role::from_bits(4),
            },
            page,
        }
    }

    #[test]
    fn lru_order_and_eviction() {
        let mut c = RootCache::new(root(1, 1));
        assert_eq!(c.switch_to(root(2, 2)), None);
        assert_eq!(c.switch_to(root(3, 3)), None);
        assert_eq!(c.switch_to(root(4, 4)), None);
        // Current 4; previous 3, 2, 1. A fifth root pushes out 1, the least recent.
        assert_eq!(c.switch_to(root(5, 5)), Some(root(1, 1)));
        let back = c.take_prev(root(2, 2).key).unwrap();
        assert_eq!(c.switch_to(back), None);
        assert_eq!(c.current, root(2, 2));
        let order: heapless::Vec<u16, 3> = c.previous().iter().map(|r| r.page).collect();
        assert_eq!(&order[..], &[5, 4, 3]);
        c.forget(4);
        assert!(!c.is_prev(4) && c.is_prev(3));
    }
}
