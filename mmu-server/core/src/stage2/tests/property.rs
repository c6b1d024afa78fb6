//! The stage-2 property: after any sequence of guest accesses (faulting where stage 2 does not
//! permit them, with injected mapping failures and backing retries), dirty-log enables,
//! get-and-clears and disables, with fewer windows allowed than there are candidates,
//! * every mapped IPA translates to its slot's backing frame + offset, as Normal memory;
//! * inside a logged range a page is writable only if it is dirty (so no write goes unseen);
//! * a page is dirty exactly when the guest wrote it since enable or the last get, which needs a
//!   successful writable mapping first (dirty-on-success), and get-and-clear reports exactly those;
//! * in the slot that allows blocks, every mapped page of a 2 MiB block that no enabled window
//!   overlaps is mapped by a block (logging, and logging that stopped, costs no other block);
//! * an enable beyond the limit is refused with `DirtyLogWindowsExhausted` and changes nothing.

use super::fakes::{FakeBacking, FakeMapper, region_base};
use super::*;
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::vec::Vec;

const PAGE: u64 = 4096;
/// Slot 0: 4 MiB of RAM, blocks allowed, region 3 from offset 0.
const SLOT0: u64 = 0x4000_0000;
/// Slot 1: 3 MiB, region 5 from offset 0x1000 (never congruent: pages only).
const SLOT1: u64 = 0x8020_0000;

/// Logged-range candidates: (ipa, pages). They do not overlap one another.
const WINDOWS: [(u64, u64); 3] = [(SLOT0, 16), (SLOT0 + 0x20_0000, 256), (SLOT1, 16)];
/// Windows the VM may have at once: fewer than the candidates, so enables are refused too.
const LIMIT: u16 = 2;

/// The pages the guest touches: both ends of each 2 MiB of slot 0, and the start of slot 1.
fn pages() -> Vec<u64> {
    let mut pages = Vec::new();
    for base in [SLOT0, SLOT0 + 0x20_0000, SLOT1] {
        pages.extend((0..20).map(|n| base + n * PAGE));
    }
    pages.extend((0..8).map(|n| SLOT0 + 0x3F_8000 + n * PAGE));
    pages
}

fn expected_pa(ipa: u64) -> u64 {
    if ipa < SLOT1 {
        region_base(3) + (ipa - SLOT0)
    } else {
        region_base(5) + 0x1000 + (ipa - SLOT1)
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// The guest reads or writes page `page` (an index into `pages()`); if that faults, the
    /// mapper fails when `fail` and the backing answers `Retry` `retries` times first.
    Access {
        page: usize,
        write: bool,
        fail: bool,
        retries: u32,
    },
    Enable {
        window: usize,
        fail: bool,
    },
    GetAndClear {
        window: usize,
        fail: bool,
    },
    Disable {
        window: usize,
        fail: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..68usize, any::<bool>(), prop::bool::weighted(0.15), prop_oneof![4 => Just(0u32), 1 => 0..10u32])
            .prop_map(|(page, write, fail, retries)| Op::Access { page, write, fail, retries }),
        1 => (0..3usize, prop::bool::weighted(0.1)).prop_map(|(window, fail)| Op::Enable { window, fail }),
        2 => (0..3usize, prop::bool::weighted(0.1)).prop_map(|(window, fail)| Op::GetAndClear { window, fail }),
        1 => (0..3usize, prop::bool::weighted(0.1)).prop_map(|(window, fail)| Op::Disable { window, fail }),
    ]
}

struct Model {
    vm: Stage2<2, 3>,
    backing: FakeBacking,
    mapper: FakeMapper,
    /// Windows enabled.
    active: [bool; 3],
    /// Pages written by the guest since their window's enable or last get.
    written: BTreeSet<u64>,
}

impl Model {
    fn new() -> Self {
        let mut mapper = FakeMapper::default();
        let mut vm = Stage2::new();
        let flags = |allow_blocks| mmu_api::SlotFlags {
            read_only: false,
            allow_blocks,
        };
        let slot0 = SlotSpec {
            ipa: SLOT0,
            len: 4 << 20,
            region: 3,
            offset: 0,
            flags: flags(true),
        };
        let slot1 = SlotSpec {
            ipa: SLOT1,
            len: 3 << 20,
            region: 5,
            offset: 0x1000,
            flags: flags(true),
        };
        vm.set_slot(0, slot0, &mut mapper).unwrap();
        vm.set_slot(1, slot1, &mut mapper).unwrap();
        assert_eq!(vm.set_dirty_log_limit(LIMIT), LIMIT);
        let backing = FakeBacking {
            contiguous: true,
            ..Default::default()
        };
        Self {
            vm,
            backing,
            mapper,
            active: [false; 3],
            written: BTreeSet::new(),
        }
    }

    fn window_pages(window: usize) -> impl Iterator<Item = u64> {
        let (ipa, count) = WINDOWS[window];
        (0..count).map(move |n| ipa + n * PAGE)
    }

    fn permitted(&self, ipa: u64, write: bool) -> Option<bool> {
        self.mapper
            .translate(ipa)
            .map(|(_, attributes)| !write || attributes.writable)
    }

    fn step(&mut self, op: &Op) {
        match *op {
            Op::Access {
                page,
                write,
                fail,
                retries,
            } => {
                let ipa = pages()[page] + 0x18;
                let mapped = self.mapper.translate(ipa).is_some();
                if self.permitted(ipa, write) != Some(true) {
                    self.mapper.fail_next = u32::from(fail);
                    self.backing.retries = retries;
                    let fault = Fault {
                        ipa,
                        write,
                        exec: false,
                        permission: mapped,
                    };
                    let result = self
                        .vm
                        .handle_fault(fault, &mut self.backing, &mut self.mapper);
                    self.mapper.fail_next = 0;
                    self.backing.retries = 0;
                    match result {
                        Ok(Resolution::Mapped(_)) => {
                            assert_eq!(self.permitted(ipa, write), Some(true), "resolved {fault:?}")
                        }
                        Ok(Resolution::NotMemory) => panic!("RAM reported as not memory"),
                        Err(_) => {
                            assert!(
                                fail || retries >= u32::from(retry::MAX_ATTEMPTS),
                                "{result:?}"
                            );
                            return; // the access did not happen
                        }
                    }
                }
                if write {
                    self.written.insert(ipa & !(PAGE - 1));
                }
            }
            Op::Enable { window, fail } => {
                self.mapper.fail_next = u32::from(fail);
                let (ipa, count) = WINDOWS[window];
                let result = self
                    .vm
                    .enable_dirty_log(ipa, count * PAGE, &mut self.mapper);
                self.mapper.fail_next = 0;
                let in_use = self.active.iter().filter(|a| **a).count();
                if !self.active[window] && in_use >= usize::from(LIMIT) {
                    let limit = LIMIT;
                    assert_eq!(result, Err(MmuError::DirtyLogWindowsExhausted { limit }));
                    return;
                }
                assert_eq!(result.is_ok(), !fail, "{result:?}");
                if result.is_ok() {
                    self.active[window] = true;
                    for page in Self::window_pages(window) {
                        self.written.remove(&page);
                    }
                }
            }
            Op::GetAndClear { window, fail } => {
                self.mapper.fail_next = u32::from(fail);
                let (ipa, count) = WINDOWS[window];
                let result = self
                    .vm
                    .get_and_clear_dirty_log(ipa, count * PAGE, &mut self.mapper);
                self.mapper.fail_next = 0;
                if !self.active[window] {
                    assert_eq!(result, Err(MmuError::BadRange));
                    return;
                }
                let Ok(bitmap) = result else {
                    assert!(fail, "{result:?}");
                    return;
                };
                for (n, page) in Self::window_pages(window).enumerate() {
                    let reported = bitmap[n / 64] & (1 << (n % 64)) != 0;
                    assert_eq!(reported, self.written.remove(&page), "page {page:#x}");
                }
            }
            Op::Disable { window, fail } => {
                self.mapper.fail_next = u32::from(fail);
                let (ipa, count) = WINDOWS[window];
                let result = self
                    .vm
                    .disable_dirty_log(ipa, count * PAGE, &mut self.mapper);
                self.mapper.fail_next = 0;
                match result {
                    Ok(()) => self.active[window] = false,
                    // Only an unmap can fail, and only an enabled window's disable unmaps.
                    Err(error) => assert!(fail && self.active[window], "{error:?}"),
                }
            }
        }
    }

    fn check(&self) {
        for page in pages() {
            if let Some((pa, attributes)) = self.mapper.translate(page + 0x18) {
                assert_eq!(pa, expected_pa(page) + 0x18, "translation of {page:#x}");
                assert_eq!(attributes.kind, kernel_core::stage2::MemoryKind::Normal);
            }
        }
        let block = 0x20_0000;
        for page in pages().into_iter().filter(|page| *page < SLOT1) {
            let base = page & !(block - 1);
            let logged = (0..3).any(|w| {
                let (ipa, count) = WINDOWS[w];
                self.active[w] && ipa < base + block && base < ipa + count * PAGE
            });
            if let (false, Some(size)) = (logged, self.mapper.leaf_size(page)) {
                assert_eq!(
                    size,
                    PageSize::Size2M,
                    "{page:#x}: no window, yet not a block"
                );
            }
        }
        for window in (0..3).filter(|w| self.active[*w]) {
            for page in Self::window_pages(window) {
                let dirty = self.vm.dirty().is_dirty(page);
                if self.permitted(page, true) == Some(true) {
                    assert!(dirty, "{page:#x} writable but clean: a write would be lost");
                }
                assert_eq!(
                    dirty,
                    self.written.contains(&page),
                    "dirty bit of {page:#x}"
                );
            }
        }
    }
}

/// 256 cases by default; `PROPTEST_CASES` overrides it (an explicit `cases` field would ignore
/// the variable, so it is read here), e.g. fewer for `cargo xtask mutants`, more for a soak.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn translation_and_dirty_bits_follow_the_guest(ops in prop::collection::vec(op(), 1..80)) {
        let mut model = Model::new();
        for op in &ops {
            model.step(op);
            model.check();
        }
    }
}
