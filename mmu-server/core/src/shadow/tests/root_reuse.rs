//! A root that left the root cache is not lost: it stays in the pool, in sync, and a later
//! switch to its key adopts it (a cache miss, but no rebuilding and no fault).

use super::helpers::*;
use crate::shadow::pte::{A, D};
use crate::shadow::{PREV_ROOTS, PageSize, RootLoad};
use crate::testing::AccessResult;

const VA: u64 = 0x40_0000;

#[test]
fn a_root_pushed_out_of_the_cache_is_adopted_again_with_its_shadow() {
    let mut g = Guest::new();
    let roots: [u64; PREV_ROOTS + 2] = core::array::from_fn(|_| g.table());
    for (i, &root) in roots.iter().enumerate() {
        let pa = 0x100_0000 * (i as u64 + 1);
        g.map(root, VA, pa, PageSize::Size4K, URW | A | D);
    }
    let mut m = g.boot::<64>(roots[0]);
    let mode = m.mode;
    assert!(matches!(
        run_checked(&mut m, VA, READ, 0),
        AccessResult::Done { .. }
    ));
    for &root in &roots[1..] {
        assert_eq!(m.set_root(root, mode), Ok(RootLoad::Miss));
    }
    assert!(
        m.mmu.cached_roots().all(|key| key.gfn.0 != roots[0] >> 12),
        "root 0 left the cache"
    );
    let pages = m.mmu.pages_in_use();
    assert_eq!(m.set_root(roots[0], mode), Ok(RootLoad::Miss));
    assert_eq!(m.mmu.pages_in_use(), pages, "adopted, not allocated");
    let again = m.access(VA, READ, 0);
    assert_eq!(again.faults, 0, "its shadow is still there: {again:?}");
    check_va(&m, VA).unwrap();
}
