//! Bookkeeping for the fixed pool of shadow tables: who is in use, what each one shadows, who
//! points at it, and which host frames are write-protected because a guest table lives there.
//!
//! Invariants (checked by the property tests through their consequences):
//! * A page is found by `(gfn, role)`; at most one in-use page has a given key.
//! * `wp[id]` is the host frame of the guest table an indirect page shadows (or [`NO_WP`] for
//!   direct pages and for guest tables outside all slots). A host frame is *write-protected*
//!   while any in-use page names it: no writable shadow leaf maps it and no large shadow leaf
//!   covers it.
//! * `parents` lists every shadow entry that links to the page, at most `P` of them; linking
//!   one more first unlinks the oldest (that walk refaults), so the capacity bounds memory, never
//!   correctness.
//! * The counters say which pages need scanning: a page with no writable or large leaves is
//!   skipped when a frame becomes write-protected, and one with no MMIO entries at a wrap.

use super::addr::{Gfn, Hpa};
use super::role::Role;

/// `wp` value of a page that protects nothing.
pub const NO_WP: u64 = u64::MAX;

/// A shadow entry that links to a page: entry `index` of table `page`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParentLink {
    /// The table holding the link.
    pub page: u16,
    /// Entry index in that table.
    pub index: u16,
}

/// Metadata of one pool page.
#[derive(Clone, Copy, Debug)]
pub struct PageMeta<const P: usize> {
    /// Allocated.
    pub in_use: bool,
    /// The guest table shadowed (indirect) or the first frame of the range mapped (direct).
    pub gfn: Gfn,
    /// The role word.
    pub role: Role,
    /// Links pointing at this page (the first `nparents` of the array).
    pub parents: [ParentLink; P],
    /// Number of valid `parents`.
    pub nparents: u8,
    /// Emulated writes since a fault last walked through this page (flood detection).
    pub write_count: u8,
    /// Non-zero entries (present or MMIO).
    pub nonzero: u16,
    /// Writable leaf entries.
    pub writable_leaves: u16,
    /// Leaf entries at level 2 or 3.
    pub large_leaves: u16,
    /// MMIO entries.
    pub mmio: u16,
}

impl<const P: usize> PageMeta<P> {
    /// An unused page.
    pub const EMPTY: PageMeta<P> = PageMeta {
        in_use: false,
        gfn: Gfn(0),
        role: Role::from_bits(0),
        parents: [ParentLink { page: 0, index: 0 }; P],
        nparents: 0,
        write_count: 0,
        nonzero: 0,
        writable_leaves: 0,
        large_leaves: 0,
        mmio: 0,
    };
}

/// Classification of a shadow entry for the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpteClass {
    /// Not zero.
    pub nonzero: bool,
    /// A writable leaf.
    pub writable_leaf: bool,
    /// A leaf at level 2 or 3.
    pub large_leaf: bool,
    /// An MMIO marker.
    pub mmio: bool,
}

/// The pool's metadata arrays.
pub struct Pool<const N: usize, const P: usize> {
    /// Per-page metadata.
    pub meta: [PageMeta<P>; N],
    /// Per-page write-protected host frame address, or [`NO_WP`].
    pub wp: [u64; N],
    /// Pages in use.
    pub used: usize,
    /// Clock hand for eviction.
    pub hand: usize,
}

impl<const N: usize, const P: usize> Pool<N, P> {
    /// An empty pool.
    pub const fn new() -> Self {
        Pool {
            meta: [PageMeta::EMPTY; N],
            wp: [NO_WP; N],
            used: 0,
            hand: 0,
        }
    }

    /// Metadata of an in-use page, if `id` names one.
    pub fn get(&self, id: u16) -> Option<&PageMeta<P>> {
        self.meta.get(id as usize).filter(|m| m.in_use)
    }

    /// Mutable metadata of an in-use page.
    pub fn get_mut(&mut self, id: u16) -> Option<&mut PageMeta<P>> {
        self.meta.get_mut(id as usize).filter(|m| m.in_use)
    }

    /// The in-use page with this key.
    pub fn find(&self, gfn: Gfn, role: Role) -> Option<u16> {
        self.meta
            .iter()
            .position(|m| m.in_use && m.gfn == gfn && m.role == role)
            .map(|i| i as u16)
    }

    /// A free slot.
    pub fn free_slot(&self) -> Option<u16> {
        self.meta.iter().position(|m| !m.in_use).map(|i| i as u16)
    }

    /// Mark `id` in use with this key; the caller sets `wp`.
    pub fn occupy(&mut self, id: u16, gfn: Gfn, role: Role) {
        if let Some(m) = self.meta.get_mut(id as usize) {
            *m = PageMeta {
                in_use: true,
                gfn,
                role,
                ..PageMeta::EMPTY
            };
            self.used += 1;
        }
    }

    /// Return `id` to the free pool (its entries must already be zero).
    pub fn release(&mut self, id: u16) {
        if let Some(m) = self.meta.get_mut(id as usize) {
            if m.in_use {
                self.used -= 1;
            }
            *m = PageMeta::EMPTY;
        }
        if let Some(w) = self.wp.get_mut(id as usize) {
            *w = NO_WP;
        }
    }

    /// Is the host frame at `hpa` write-protected (does a guest table shadowed live there)?
    pub fn is_write_protected(&self, hpa: Hpa) -> bool {
        self.wp.contains(&hpa.0)
    }

    /// Does `[start, start + len)` contain a write-protected host frame?
    pub fn protects_any(&self, start: Hpa, len: u64) -> bool {
        self.wp
            .iter()
            .any(|&w| w != NO_WP && w >= start.0 && w - start.0 < len)
    }

    /// Record that entry `link` points at `child`. When the list is full the oldest link is
    /// removed from the list and returned: the caller must clear that shadow entry.
    pub fn add_parent(&mut self, child: u16, link: ParentLink) -> Option<ParentLink> {
        let m = self.get_mut(child)?;
        let n = m.nparents as usize;
        if n < P {
            if let Some(slot) = m.parents.get_mut(n) {
                *slot = link;
                m.nparents += 1;
            }
            return None;
        }
        let oldest = m.parents.first().copied();
        m.parents.rotate_left(1);
        if let Some(last) = m.parents.last_mut() {
            *last = link;
        }
        oldest
    }

    /// Forget that entry `link` points at `child`.
    pub fn remove_parent(&mut self, child: u16, link: ParentLink) {
        if let Some(m) = self.get_mut(child) {
            let n = m.nparents as usize;
            if let Some(pos) = m.parents.iter().take(n).position(|&l| l == link) {
                m.parents.copy_within(pos + 1..n, pos);
                m.nparents -= 1;
            }
        }
    }

    /// Update the counters of `id` for one entry changing from class `old` to class `new`.
    pub fn account(&mut self, id: u16, old: SpteClass, new: SpteClass) {
        if let Some(m) = self.get_mut(id) {
            let adj = |count: &mut u16, was: bool, is: bool| match (was, is) {
                (false, true) => *count = count.saturating_add(1),
                (true, false) => *count = count.saturating_sub(1),
                _ => {}
            };
            adj(&mut m.nonzero, old.nonzero, new.nonzero);
            adj(&mut m.writable_leaves, old.writable_leaf, new.writable_leaf);
            adj(&mut m.large_leaves, old.large_leaf, new.large_leaf);
            adj(&mut m.mmio, old.mmio, new.mmio);
        }
    }

    /// Choose a page to evict, never one in `pinned`. Preference: unlinked non-root pages, then
    /// any non-root page, then cached previous roots (`is_cached_root`).
    pub fn victim(&mut self, pinned: &[u16], is_cached_root: impl Fn(u16) -> bool) -> Option<u16> {
        for tier in 0..3 {
            for k in 0..N {
                let id = ((self.hand + k) % N) as u16;
                let Some(m) = self.get(id) else { continue };
                if pinned.contains(&id) {
                    continue;
                }
                let cached = is_cached_root(id);
                let ok = match tier {
                    0 => !cached && m.nparents == 0,
                    1 => !cached,
                    _ => true,
                };
                if ok {
                    self.hand = (id as usize + 1) % N;
                    return Some(id);
                }
            }
        }
        None
    }
}

impl<const N: usize, const P: usize> Default for Pool<N, P> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_overflow_displaces_the_oldest() {
        let mut pool: Pool<8, 2> = Pool::new();
        pool.occupy(3, Gfn(7), Role::from_bits(1));
        let l = |page, index| ParentLink { page, index };
        assert_eq!(pool.add_parent(3, l(0, 1)), None);
        assert_eq!(pool.add_parent(3, l(0, 2)), None);
        assert_eq!(pool.add_parent(3, l(1, 9)), Some(l(0, 1)));
        pool.remove_parent(3, l(0, 2));
        let m = pool.get(3).unwrap();
        assert_eq!(&m.parents[..m.nparents as usize], &[l(1, 9)]);
    }

    #[test]
    fn victims_prefer_unlinked_pages_and_skip_pinned() {
        let mut pool: Pool<4, 2> = Pool::new();
        for id in 0..4 {
            pool.occupy(id, Gfn(id as u64), Role::from_bits(1));
        }
        pool.add_parent(1, ParentLink { page: 0, index: 0 });
        // 0 pinned, 1 linked, 2 a cached root, 3 unlinked: 3 goes first.
        assert_eq!(pool.victim(&[0], |id| id == 2), Some(3));
        pool.release(3);
        assert_eq!(pool.victim(&[0], |id| id == 2), Some(1));
        pool.release(1);
        assert_eq!(pool.victim(&[0], |id| id == 2), Some(2));
        pool.release(2);
        assert_eq!(pool.victim(&[0], |_| false), None);
    }

    #[test]
    fn write_protection_queries() {
        let mut pool: Pool<4, 1> = Pool::new();
        pool.occupy(0, Gfn(1), Role::from_bits(1));
        pool.wp[0] = 0x20_3000;
        assert!(pool.is_write_protected(Hpa(0x20_3000)));
        assert!(pool.protects_any(Hpa(0x20_0000), 0x20_0000));
        assert!(!pool.protects_any(Hpa(0x40_0000), 0x20_0000));
        assert!(!pool.protects_any(Hpa(0x20_4000), 0x1000));
    }
}
