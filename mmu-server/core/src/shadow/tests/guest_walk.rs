//! The engine's guest walk as its public interface shows it: the first frame of the guest page,
//! and the accessed/dirty updates (A on every entry used, D on the leaf only and only for a
//! write, as the processor does, SDM Vol. 3 §4.8).

use super::helpers::*;
use crate::shadow::walk::{GuestCpu, walk};
use crate::shadow::{CpuMode, Gfn, Gpa, Gva, PageSize, Role};

/// Accessed and dirty, SDM Vol. 3 §4.5 (written out, not taken from `pte`).
const A: u64 = 1 << 5;
const D: u64 = 1 << 6;

const CPU: GuestCpu = GuestCpu {
    maxphyaddr: 46,
    gbpages: true,
};

#[test]
fn page_base_is_the_first_frame_of_the_guest_page_of_each_size() {
    let mut g = Guest::new();
    let pml4 = g.table();
    g.map(pml4, 0x10_0000, 0x1234_5000, PageSize::Size4K, URW);
    g.map(pml4, 0x4000_0000, 0x60_0000, PageSize::Size2M, URW);
    g.map(pml4, 0x80_0000_0000, 0x8000_0000, PageSize::Size1G, URW);
    let role = Role::root(&CpuMode::long_mode()).unwrap();
    for (va, level, base) in [
        (0x10_0abcu64, 1u8, 0x1234_5000u64),
        (0x4012_3abc, 2, 0x60_0000),
        (0x80_1234_5abc, 3, 0x8000_0000),
    ] {
        let w = walk(&g.mem, Gfn(pml4 >> 12), Gva(va), role, &CPU, READ).unwrap();
        assert_eq!(w.leaf_level, level, "{va:#x}");
        assert_eq!(w.page_base(), Gfn(base >> 12), "{va:#x}");
        assert_eq!(w.gpa.0 - base, va & ((1 << (12 + 9 * (level - 1))) - 1));
    }
}

#[test]
fn a_read_sets_accessed_bits_only_and_a_write_dirties_the_leaf_alone() {
    let mut g = Guest::new();
    let pml4 = g.table();
    let va = 0x10_0000u64;
    g.map(pml4, va, 0x20_0000, PageSize::Size4K, URW);
    let entries: [u64; 4] = core::array::from_fn(|i| g.entry_gpa(pml4, va, 4 - i as u8));
    let mut m = g.boot::<64>(pml4);
    let bits = |m: &crate::testing::Machine<64>| {
        entries.map(|e| m.mem.peek_u64(Gpa(e)).unwrap() & (A | D))
    };
    run_checked(&mut m, va, READ, 0);
    assert_eq!(
        bits(&m),
        [A; 4],
        "PML4E, PDPTE, PDE, PTE: accessed, none dirty"
    );
    run_checked(&mut m, va, WRITE, 1);
    assert_eq!(bits(&m), [A, A, A, A | D], "only the leaf is dirty");
}
