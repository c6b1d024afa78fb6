//! The pool's choice of victim when it is full: unlinked tables first, then linked ones, cached
//! previous roots last, never a pinned one; among equals, round robin from after the last victim
//! (so one table is not evicted again and again while others sit idle).

use crate::shadow::pages::{ParentLink, Pool};
use crate::shadow::{Gfn, Role};

/// A full pool of four tables, none linked.
fn full_pool() -> Pool<4, 1> {
    let mut pool = Pool::new();
    for id in 0..4u16 {
        pool.occupy(id, Gfn(u64::from(id)), Role::from_bits(3));
    }
    pool
}

fn link(pool: &mut Pool<4, 1>, child: u16) {
    pool.add_parent(child, ParentLink { page: 3, index: 7 });
}

#[test]
fn a_linked_table_goes_before_a_cached_root_even_when_the_root_comes_first() {
    let mut pool = full_pool();
    // 0 a cached root, 1 and 2 linked, 3 pinned: nothing is unlinked.
    link(&mut pool, 1);
    link(&mut pool, 2);
    assert_eq!(pool.victim(&[3], |id| id == 0), Some(1));
    assert_eq!(pool.victim(&[3], |id| id == 0), Some(2));
    // Only the cached root is left.
    assert_eq!(pool.victim(&[1, 2, 3], |id| id == 0), Some(0));
}

#[test]
fn equal_candidates_are_taken_round_robin() {
    let mut pool = full_pool();
    let order: [Option<u16>; 6] = core::array::from_fn(|_| pool.victim(&[], |_| false));
    assert_eq!(
        order,
        [Some(0), Some(1), Some(2), Some(3), Some(0), Some(1)]
    );
    // The hand moves past the victim, wherever the scan found it.
    assert_eq!(pool.victim(&[2], |_| false), Some(3));
    assert_eq!(pool.victim(&[], |_| false), Some(0));
}
