//! The documented encodings other code relies on: page sizes and their levels, the exact role
//! word of each field (docs/SHADOW.md's table), and the pool size a link's child index covers.

use crate::shadow::pte::{ACC_ALL, ACC_U, ACC_W, MAX_POOL_PAGES, link_child, shadow_link};
use crate::shadow::{CpuMode, Hpa, PageSize, Role};

#[test]
fn page_sizes_match_their_levels_and_byte_counts() {
    let table = [
        (PageSize::Size4K, 1u8, 4u64 << 10),
        (PageSize::Size2M, 2, 2 << 20),
        (PageSize::Size1G, 3, 1 << 30),
    ];
    for (size, level, bytes) in table {
        assert_eq!(size.level(), level);
        assert_eq!(PageSize::from_level(level), Some(size));
        assert_eq!(size.bytes(), bytes, "{size:?}");
    }
    assert_eq!(PageSize::from_level(0), None);
    assert_eq!(PageSize::from_level(4), None);
}

#[test]
fn role_words_have_the_documented_layout() {
    // Level 4 (bits 2:0), 4-level mode (bits 5:4 = 1), CR0.WP (6), EFER.NXE (10), access all
    // (13:11).
    let long = Role::root(&CpuMode::long_mode()).unwrap();
    assert_eq!(long.bits(), 4 | 1 << 4 | 1 << 6 | 1 << 10 | 0b111 << 11);
    assert_eq!((long.level(), long.access()), (4, ACC_ALL));
    assert!(long.paging() && !long.direct() && long.nxe() && !long.cr4_pse());
    // Paging off: level 4, direct (3), access all, nothing else.
    let off = Role::root(&CpuMode::paging_off()).unwrap();
    assert_eq!(off.bits(), 4 | 1 << 3 | 0b111 << 11);
    assert_eq!((off.level(), off.access()), (4, ACC_ALL));
    // SMEP (8) and SMAP (9).
    let smep_smap = CpuMode {
        cr4_smep: true,
        cr4_smap: true,
        ..CpuMode::long_mode()
    };
    assert_eq!(
        Role::root(&smep_smap).unwrap().bits(),
        long.bits() | 1 << 8 | 1 << 9
    );
    // A child keeps the context and takes its own level and access.
    let child = long.child(2, false, ACC_U | ACC_W);
    assert_eq!(
        child.bits(),
        (long.bits() & !0b111 & !(0b111 << 11)) | 2 | 0b011 << 11
    );
    // Raw words round-trip, and bit 7 reads as CR4.PSE (never set by `root` in 4-level mode).
    for bits in [0u32, 1, 0x3854, (1 << 14) - 1] {
        assert_eq!(Role::from_bits(bits).bits(), bits);
    }
    assert!(Role::from_bits(1 << 7).cr4_pse());
}

#[test]
fn the_largest_pool_is_the_one_every_child_index_of_a_link_can_name() {
    let hpa = Hpa(0x1234_5000);
    let last = (MAX_POOL_PAGES - 1) as u16;
    assert_eq!(link_child(shadow_link(hpa, last)), last);
    // One more table would not fit in the index field.
    let beyond = MAX_POOL_PAGES as u16;
    assert_ne!(link_child(shadow_link(hpa, beyond)), beyond);
}
