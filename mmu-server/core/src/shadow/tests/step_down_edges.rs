//! The step-down looks only inside the region a large leaf would cover: a shadowed guest table
//! just past its end (or just before its start) does not make a 2 MiB guest page step down.

use super::helpers::*;
use crate::shadow::pte::{A, D};
use crate::shadow::{Gpa, Hpa, PageSize};
use crate::testing::AccessResult;

const LARGE_VA: u64 = 0x4000_0000;
const LARGE_GPA: u64 = 0x40_0000;

fn shadow_level_with_root_at(root: u64) -> u8 {
    let mut g = Guest::new();
    // The root table lives at `root`; the other tables come from low memory.
    assert_eq!(g.mem.peek_u64(Gpa(root)), Some(0));
    g.map(root, LARGE_VA, LARGE_GPA, PageSize::Size2M, URW | A | D);
    let mut m = g.boot::<64>(root);
    assert!(m.mmu.is_write_protected(Hpa(HOST_BASE + root)));
    match run_checked(&mut m, LARGE_VA + 0x1000, WRITE, 1) {
        AccessResult::Done { shadow_level, .. } => shadow_level,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_table_on_the_first_frame_after_the_region_does_not_split_it() {
    assert_eq!(shadow_level_with_root_at(LARGE_GPA + (2 << 20)), 2);
}

#[test]
fn a_table_on_the_last_frame_before_the_region_does_not_split_it() {
    assert_eq!(shadow_level_with_root_at(LARGE_GPA - 0x1000), 2);
}

#[test]
fn a_table_on_the_last_frame_of_the_region_splits_it() {
    assert_eq!(shadow_level_with_root_at(LARGE_GPA + (2 << 20) - 0x1000), 1);
}
