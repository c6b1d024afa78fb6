//! Hostile guest tables: every malformed entry becomes the SDM's page fault, never a panic.

use super::helpers::*;
use crate::shadow::pte::{P, PS, RW, US, XD};
use crate::shadow::{AccessKind, Config, CpuMode, Gpa, GuestCpu, PageSize, PfErrorCode};
use crate::testing::AccessResult;

const VA: u64 = 0x1_4020_3000; // PML4 0, PDPT 5, PD 1, PT 3

fn injected(code: u32) -> AccessResult {
    AccessResult::Injected { error_code: code }
}

const RSVD: u32 = PfErrorCode::PRESENT | PfErrorCode::RSVD;

#[test]
fn reserved_bits_give_rsvd_faults() {
    // (level of the bad entry, value OR-ed into it, expected error code for a supervisor read)
    let cases: [(u8, u64, u32); 6] = [
        (1, 1 << 46, RSVD),        // bit 46 with MAXPHYADDR 46
        (1, 1 << 51, RSVD),        // top reserved address bit
        (4, PS, RSVD),             // PS in a PML4E
        (2, PS | (1 << 13), RSVD), // 2 MiB leaf with address bit 13 set
        (3, PS | (1 << 29), RSVD), // 1 GiB leaf with address bit 29 set
        (1, 0, 0),                 // control: fine (this access succeeds)
    ];
    for (level, bad, code) in cases {
        let mut g = Guest::new();
        let pml4 = g.table();
        g.map(pml4, VA, 0x50_0000, PageSize::Size4K, URW);
        let e = g.entry_gpa(pml4, VA, level);
        let v = g.mem.peek_u64(Gpa(e)).unwrap();
        g.mem.poke_u64(Gpa(e), v | bad);
        let mut m = g.boot::<64>(pml4);
        let r = run_checked(&mut m, VA, READ, 0);
        if code == 0 {
            assert!(matches!(r, AccessResult::Done { .. }), "{r:?}");
        } else {
            assert_eq!(r, injected(code), "level {level} bits {bad:#x}");
            // The access bits are reported too.
            assert_eq!(run_checked(&mut m, VA, UWRITE, 0), injected(code | 6));
        }
    }
}

#[test]
fn xd_without_nxe_and_gbpages_without_support_are_reserved() {
    let mut g = Guest::new();
    let pml4 = g.table();
    g.map(pml4, VA, 0x50_0000, PageSize::Size4K, URW | XD);
    g.map(pml4, 0x80_0000_0000, 1 << 30, PageSize::Size1G, URW);
    let mut mode = CpuMode::long_mode();
    mode.efer_nxe = false;
    let config = Config {
        guest: GuestCpu {
            maxphyaddr: 40,
            gbpages: false,
        },
        ..Config::default()
    };
    let mut m = g.boot_with::<64, 4>(pml4, mode, config);
    assert_eq!(run_checked(&mut m, VA, READ, 0), injected(RSVD));
    // I/D is not reported without NXE or SMEP.
    let fetch = acc(AccessKind::Fetch, true);
    assert_eq!(run_checked(&mut m, VA, fetch, 0), injected(RSVD | 4));
    assert_eq!(run_checked(&mut m, 0x80_0000_0000, READ, 0), injected(RSVD));
}

#[test]
fn tables_outside_all_slots_read_as_all_ones() {
    let mut g = Guest::new();
    let pml4 = g.table();
    g.map(pml4, VA, 0x50_0000, PageSize::Size4K, URW);
    // Point the PD entry at a "table" in MMIO space.
    let pde = g.entry_gpa(pml4, VA, 2);
    g.mem.poke_u64(Gpa(pde), MMIO_GPA | URW);
    // And a root outside all slots.
    let mut m = g.boot::<64>(pml4);
    assert_eq!(run_checked(&mut m, VA, WRITE, 0), injected(RSVD | 2));
    m.set_root(MMIO_GPA, m.mode).unwrap();
    assert_eq!(run_checked(&mut m, VA, UREAD, 0), injected(RSVD | 4));
    assert_eq!(run_checked(&mut m, 0, READ, 0), injected(RSVD));
}

#[test]
fn not_present_and_protection_faults() {
    let mut g = Guest::new();
    let pml4 = g.table();
    g.map(pml4, VA, 0x50_0000, PageSize::Size4K, P | RW | XD); // supervisor, no-exec
    g.map(pml4, VA + 0x1000, 0x51_0000, PageSize::Size4K, P | US); // user read-only
    let mut mode = CpuMode::long_mode();
    mode.cr4_smep = true;
    mode.cr4_smap = true;
    let mut m = g.boot_with::<64, 4>(pml4, mode, Config::default());
    assert_eq!(run_checked(&mut m, VA + 0x5000, READ, 0), injected(0));
    assert_eq!(run_checked(&mut m, VA, UREAD, 0), injected(5));
    assert_eq!(
        run_checked(&mut m, VA, acc(AccessKind::Fetch, false), 0),
        injected(0x11)
    );
    assert_eq!(run_checked(&mut m, VA + 0x1000, UWRITE, 0), injected(7));
    // SMEP: no supervisor fetch from a user page; SMAP: no supervisor read without AC.
    assert_eq!(
        run_checked(&mut m, VA + 0x1000, acc(AccessKind::Fetch, false), 0),
        injected(0x11)
    );
    assert_eq!(run_checked(&mut m, VA + 0x1000, READ, 0), injected(1));
    let ac_read = crate::shadow::MemAccess {
        smap_override: true,
        ..READ
    };
    assert!(matches!(
        run_checked(&mut m, VA + 0x1000, ac_read, 0),
        AccessResult::Done { .. }
    ));
    // ...and after that hit, an AC=0 read is still refused by the (hardware) SMAP check.
    assert_eq!(run_checked(&mut m, VA + 0x1000, READ, 0), injected(1));
    for va in [VA, VA + 0x1000] {
        check_va(&m, va).unwrap();
    }
}

#[test]
fn cr0_wp_off_supervisor_writes_to_read_only_pages() {
    let mut g = Guest::new();
    let pml4 = g.table();
    g.map(pml4, VA, 0x50_0000, PageSize::Size4K, P | US); // user read-only
    let mut mode = CpuMode::long_mode();
    mode.cr0_wp = false;
    mode.cr4_smep = true;
    let mut m = g.boot_with::<64, 4>(pml4, mode, Config::default());
    // Supervisor write allowed by WP=0: mapped writable, supervisor-only, non-executable.
    let r = run_checked(&mut m, VA, WRITE, 1);
    assert!(matches!(r, AccessResult::Done { .. }), "{r:?}");
    check_va(&m, VA).unwrap();
    // The user may still read (one fault re-shadows the page user-readable, read-only) and not
    // write; the supervisor may write again (one fault back).
    for (access, ok) in [(UREAD, true), (UWRITE, false), (WRITE, true), (UREAD, true)] {
        let r = run_checked(&mut m, VA, access, 2);
        assert_eq!(
            matches!(r, AccessResult::Done { .. }),
            ok,
            "{access:?} {r:?}"
        );
        check_va(&m, VA).unwrap();
    }
    // Under SMAP (and EFLAGS.AC=1, else SMAP forbids it) no single shadow leaf expresses this
    // write: writable+supervisor-only would let AC=0 accesses through. It is emulated.
    let mut smap = mode;
    smap.cr4_smap = true;
    m.set_root(pml4, smap).unwrap();
    assert_eq!(
        run_checked(&mut m, VA, WRITE, 3),
        AccessResult::Injected { error_code: 3 }
    );
    let ac_write = crate::shadow::MemAccess {
        smap_override: true,
        ..WRITE
    };
    let r = run_checked(&mut m, VA, ac_write, 3);
    assert!(matches!(r, AccessResult::Emulated { .. }), "{r:?}");
    check_va(&m, VA).unwrap();
}

/// Found by the property test: two guest 2 MiB leaves over the same frames, one clean and one
/// dirty, split into 4 KiB shadows. A CR0.WP=0 write through the dirty one must not create a
/// writable shadow that the clean one shares (its own write must still set its D bit).
#[test]
fn wp0_write_through_one_large_leaf_does_not_leak_to_a_clean_alias() {
    use crate::shadow::PageSize::Size4K;
    let mut g = Guest::new();
    let pml4 = g.table();
    let clean = 0x4000_0000u64;
    let dirty = clean + (2 << 20);
    g.map(pml4, clean, 0x40_0000, PageSize::Size2M, P | US | (1 << 5));
    g.map(
        pml4,
        dirty,
        0x40_0000,
        PageSize::Size2M,
        P | US | (1 << 5) | (1 << 6),
    );
    let mut mode = CpuMode::long_mode();
    mode.cr0_wp = false;
    let config = Config {
        host_max_page: Size4K,
        ..Config::default()
    };
    let mut m = g.boot_with::<64, 4>(pml4, mode, config);
    assert!(matches!(
        run_checked(&mut m, clean, UREAD, 0),
        AccessResult::Done { .. }
    ));
    assert!(matches!(
        run_checked(&mut m, dirty, WRITE, 0),
        AccessResult::Done { .. }
    ));
    check_va(&m, clean).unwrap();
    check_va(&m, dirty).unwrap();
    // The clean alias's own write faults once and dirties its own entry.
    let report = m.access(clean, WRITE, 0);
    assert_eq!(report.fixed, 1, "{report:?}");
    check_va(&m, clean).unwrap();
}

#[test]
fn a_maxphyaddr_outside_the_architectural_range_is_refused_not_a_panic() {
    for (maxphyaddr, accepted) in [
        (31, false),
        (32, true),
        (52, true),
        (53, false),
        (64, false),
        (255, false),
    ] {
        let g = Guest::new();
        let config = Config {
            guest: GuestCpu {
                maxphyaddr,
                gbpages: true,
            },
            ..Config::default()
        };
        let outcome = crate::testing::Machine::<64, 4>::new(config, g.mem, 0, CpuMode::long_mode());
        match (outcome, accepted) {
            (Ok(_), true) => {}
            (Err(crate::shadow::NewError::MaxPhysicalAddress(value)), false) => {
                assert_eq!(value, maxphyaddr);
            }
            (Ok(_), false) => panic!("MAXPHYADDR {maxphyaddr} accepted"),
            (Err(error), _) => panic!("MAXPHYADDR {maxphyaddr}: {error:?}"),
        }
    }
}
