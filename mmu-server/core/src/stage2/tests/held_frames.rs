//! The frame capabilities the mmu-server holds, against the kernel itself. The server binary
//! receives lent frames in a ring of CNode slots reused in turn, with no bookkeeping per map: it
//! takes the next slot, deletes what the slot holds, receives the frame into it and maps it;
//! slot changes unmap with `VSpaceUnmap`; at every start it deletes the whole ring. Here that
//! protocol runs through kernel-core's decode and perform, with the effects carried out on
//! in-memory stage-2 tables the way the kernel's `trap::apply` does, and after every step:
//!
//! * every leaf in the guest's VSpace has a ring capability whose record is exactly that leaf
//!   (so it can still be taken away);
//! * reusing a slot removes at most the leaf its old capability recorded, and only while that
//!   leaf maps the capability's own frame (the guest refaults that page, at most once per turn
//!   of the ring); it never takes another frame's translation;
//! * after a restart's clearing the VSpace is empty: nothing a capability from before the
//!   restart mapped survives it.

use abi::InvocationLabel;
use abi::vm::MapAttributes;
use kernel_core::cap::{Cap, FrameCap};
use kernel_core::endpoint::Reply;
use kernel_core::memory::VSpaceInfo;
use kernel_core::stage2::{self, Attributes, Entry, Level, MemoryKind, PageSize, TableMemory};
use kernel_core::system::{Effect, System};
use kernel_core::tcb::{SlotRange, Tcb};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::vec::Vec;

const RING: usize = 12;
const VSPACE_SLOT: u64 = 3;
const RANGE_SLOT: u64 = 4;
const FIRST: u64 = 5;
const PAGE: u64 = 4096;
const BLOCK: u64 = 2 << 20;
/// Guest RAM: 8 MiB at IPA 0x4000_0000, backed by physical 0x4000_0000 (region 0).
const GUEST: u64 = 0x4000_0000;
const RAM_PAGES: u32 = 2048;

struct Pools {
    tcbs: Vec<Tcb>,
    replies: Vec<Reply>,
    slots: Vec<Cap>,
    vspaces: Vec<VSpaceInfo>,
}

fn pools() -> Pools {
    let len = FIRST as u32 + RING as u32;
    let mut tcb = Tcb::new(100);
    tcb.cnode = SlotRange { base: 0, len };
    let mut slots = std::vec![Cap::Null; len as usize];
    slots[abi::CNODE_SLOT as usize] = Cap::CNode { owner: 0 };
    slots[VSPACE_SLOT as usize] = Cap::VSpace { vspace: 0 };
    slots[RANGE_SLOT as usize] = Cap::Frame(FrameCap::new(0, 0x4_0000, RAM_PAGES, false));
    Pools {
        tcbs: std::vec![tcb],
        replies: std::vec![Reply::default()],
        slots,
        vspaces: std::vec![VSpaceInfo { free_tables: 64 }],
    }
}

/// The guest's stage-2 table in memory: what the kernel's `vspace.rs` edits. Ordered, so the
/// entries written in one table can be listed without reading all 512.
struct Tables {
    entries: BTreeMap<(u64, usize), u64>,
    next: u64,
    root: u64,
}

impl TableMemory for Tables {
    fn read(&self, table: u64, index: usize) -> u64 {
        self.entries.get(&(table, index)).copied().unwrap_or(0)
    }
    fn write(&mut self, table: u64, index: usize, value: u64) {
        self.entries.insert((table, index), value);
    }
    fn allocate_table(&mut self) -> Option<u64> {
        self.next += 1;
        Some(0x8_0000_0000 + self.next * PAGE)
    }
}

fn page_size(bytes: u64) -> PageSize {
    if bytes == BLOCK {
        PageSize::Size2M
    } else {
        PageSize::Size4K
    }
}

impl Tables {
    fn new() -> Self {
        let mut tables = Self {
            entries: BTreeMap::new(),
            next: 0,
            root: 0,
        };
        tables.root = tables.allocate_table().unwrap();
        tables
    }

    /// Does what `trap::apply` does with a memory effect (tables are never freed here).
    fn apply(&mut self, effect: Effect) {
        let root = self.root;
        let outcome = match effect {
            Effect::None => return,
            Effect::Map {
                pa,
                ipa,
                size,
                attributes,
                ..
            } => {
                let attributes = Attributes {
                    writable: attributes.0 & MapAttributes::WRITE.0 != 0,
                    executable: attributes.0 & MapAttributes::EXECUTE.0 != 0,
                    kind: MemoryKind::Normal,
                };
                stage2::map(self, root, ipa, pa, page_size(size), attributes)
            }
            // `vspace::unmap`: a page inside a block removes the whole block.
            Effect::Unmap { ipa, size, .. } => {
                match stage2::unmap(self, root, ipa, page_size(size)) {
                    Err(stage2::MapError::WouldSplitBlock) => {
                        stage2::unmap(self, root, ipa & !(BLOCK - 1), PageSize::Size2M)
                    }
                    other => other,
                }
            }
            Effect::UnmapFrame { ipa, size, pa, .. } => {
                stage2::unmap_frame(self, root, ipa, pa, page_size(size))
            }
            other => panic!("not a memory effect: {other:?}"),
        };
        let outcome = outcome.expect("an invocation that passed decode cannot fail");
        stage2::apply(&outcome.plan, self, |_| {});
    }

    /// Every leaf in the table: (IPA, size, physical address), in IPA order.
    fn leaves(&self) -> Vec<(u64, u64, u64)> {
        let mut leaves = Vec::new();
        self.collect(self.root, Level::One, 0, &mut leaves);
        leaves
    }

    fn collect(&self, table: u64, level: Level, base: u64, leaves: &mut Vec<(u64, u64, u64)>) {
        for (&(_, index), &value) in self.entries.range((table, 0)..(table + 1, 0)) {
            let ipa = base + index as u64 * level.entry_bytes();
            match (stage2::decode(value, level), level.next()) {
                (Entry::Leaf { pa, size, .. }, _) => leaves.push((ipa, size.bytes(), pa)),
                (Entry::Table(next), Some(below)) => self.collect(next, below, ipa, leaves),
                _ => {}
            }
        }
    }

    /// Whether RAM page `page` is mapped, to its own memory (guest RAM's IPA is its physical
    /// address).
    fn maps_page(&self, page: u64) -> bool {
        let ipa = GUEST + page * PAGE;
        match stage2::translate(self, self.root, ipa) {
            Some((pa, _)) => {
                assert_eq!(pa, ipa, "page {page} maps other memory");
                true
            }
            None => false,
        }
    }
}

/// The kernel and the guest's table.
struct World<'a> {
    system: System<'a>,
    tables: Tables,
}

impl World<'_> {
    /// The mmu-server (thread 0) invokes its capability `cptr`, and the kernel carries out the
    /// effect: the effect, or the kernel's refusal.
    fn invoke(
        &mut self,
        cptr: u64,
        label: InvocationLabel,
        args: [u64; 4],
    ) -> Result<Effect, abi::KernelError> {
        let cap = self.system.lookup(0, cptr)?;
        let invocation =
            kernel_core::invocation::decode(&self.system, 0, cap, cptr, label as u64, args)?;
        let effect = self.system.perform(0, invocation);
        self.tables.apply(effect);
        Ok(effect)
    }

    /// The frame capability in ring slot `index`.
    fn frame(&self, index: usize) -> Option<FrameCap> {
        match self.system.slots[FIRST as usize + index] {
            Cap::Frame(frame) => Some(frame),
            _ => None,
        }
    }

    /// Deletes ring slot `index` and checks that the deletion removed at most that capability's
    /// own recorded leaf, mapping its own frame.
    fn delete(&mut self, index: usize) {
        let old = self.frame(index);
        let before = self.tables.leaves();
        let deleted = self.invoke(
            abi::CNODE_SLOT,
            InvocationLabel::CNodeDelete,
            [FIRST + index as u64, 0, 0, 0],
        );
        assert!(matches!(
            deleted,
            Ok(Effect::None | Effect::UnmapFrame { .. })
        ));
        let after = self.tables.leaves();
        assert!(
            after.iter().all(|leaf| before.contains(leaf)),
            "a deletion changed a leaf"
        );
        let gone: Vec<_> = before.iter().filter(|leaf| !after.contains(leaf)).collect();
        let own = old.and_then(|frame| {
            let (_, page) = frame.mapping()?;
            Some((u64::from(page) * PAGE, frame.size(), frame.base()))
        });
        assert!(
            gone.is_empty() || gone == [&own.unwrap_or_default()],
            "deleting ring slot {index} ({old:?}) took {gone:x?}, not only its own leaf"
        );
    }

    /// Every leaf in the table has a ring capability whose record is exactly it.
    fn check_owned(&self) {
        let records: Vec<(u64, u64, u64)> = (0..RING)
            .filter_map(|index| self.frame(index))
            .filter_map(|frame| {
                let (_, page) = frame.mapping()?;
                Some((u64::from(page) * PAGE, frame.size(), frame.base()))
            })
            .collect();
        for leaf in self.tables.leaves() {
            assert!(
                records.contains(&leaf),
                "leaf {leaf:x?} (IPA, size, PA) has no ring capability whose record is it"
            );
        }
    }
}

/// One thing the mmu-server does.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// A fault at RAM page `page`: take the next slot, receive the frame (a 2 MiB one when
    /// `block`), map it (writable or not: a permission change maps a fresh copy of the same
    /// frame at the same place); `refused` makes the map fail in decode.
    Fault {
        page: u32,
        block: bool,
        writable: bool,
        refused: bool,
    },
    /// The backing lent nothing (Retry): the taken slot stays empty.
    NoFrame,
    /// One `VSpaceUnmap` of the 2 MiB block `block` (slot replacement or deletion).
    Unmap { block: u32 },
    /// The server restarts: it deletes every ring slot first and starts again at slot 0.
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..RAM_PAGES, any::<bool>(), any::<bool>(), prop::bool::weighted(0.1))
            .prop_map(|(page, block, writable, refused)| Step::Fault { page, block, writable, refused }),
        1 => Just(Step::NoFrame),
        1 => (0..RAM_PAGES / 512).prop_map(|block| Step::Unmap { block }),
        1 => Just(Step::Restart),
    ]
}

fn run(steps: &[Step]) {
    run_then(steps, |_| {});
}

/// Runs `steps`, then shows the guest's table to `inspect`.
fn run_then(steps: &[Step], inspect: impl FnOnce(&Tables)) {
    let mut pools = pools();
    let mut system = System::new(
        &mut pools.tcbs,
        &mut [],
        &mut [],
        &mut pools.replies,
        &mut pools.slots,
        &mut [],
    );
    system.vspaces = &mut pools.vspaces;
    let mut world = World {
        system,
        tables: Tables::new(),
    };
    let mut next = 0;
    for step in steps {
        match *step {
            Step::Fault {
                page,
                block,
                writable,
                refused,
            } => {
                let index = next;
                next = (next + 1) % RING;
                world.delete(index);
                let cptr = FIRST + index as u64;
                let size = if block { BLOCK } else { PAGE };
                let offset = (u64::from(page) * PAGE) & !(size - 1);
                let carve = [offset, size, cptr, 0];
                let carved = world.invoke(RANGE_SLOT, InvocationLabel::FrameCarve, carve);
                assert_eq!(carved, Ok(Effect::None));
                let ipa = GUEST + offset;
                // A refusal: an IPA the kernel does not take for this frame.
                let at = if refused { ipa + 1 } else { ipa };
                let attributes = if writable {
                    MapAttributes::WRITE
                } else {
                    MapAttributes::READ_ONLY
                };
                let args = [cptr, at, attributes.0, 0];
                let mapped = world.invoke(VSPACE_SLOT, InvocationLabel::VSpaceMap, args);
                assert_eq!(mapped.is_err(), refused, "{mapped:?}");
                if !refused {
                    assert!(
                        world.tables.maps_page(u64::from(page)),
                        "the fault is answered"
                    );
                }
            }
            Step::NoFrame => {
                let index = next;
                next = (next + 1) % RING;
                world.delete(index);
            }
            Step::Unmap { block } => {
                let args = [GUEST + u64::from(block) * BLOCK, BLOCK, 0, 0];
                let unmapped = world.invoke(VSPACE_SLOT, InvocationLabel::VSpaceUnmap, args);
                assert!(unmapped.is_ok());
            }
            Step::Restart => {
                for index in 0..RING {
                    world.delete(index);
                }
                next = 0;
                assert_eq!(
                    world.tables.leaves(),
                    [],
                    "nothing from before the restart is still mapped"
                );
            }
        }
        world.check_owned();
    }
    inspect(&world.tables);
}

#[test]
fn the_ring_keeps_every_mapping_owned_through_wraps_pages_over_blocks_and_a_restart() {
    // More faults than slots: the ring wraps, pages are mapped over blocks and back, the same
    // page again with other permissions (a fresh copy over the same frame).
    let mut steps = Vec::new();
    for round in 0..3u32 {
        for page in 0..(RING as u32 + 4) {
            steps.push(Step::Fault {
                page: (page * 37 + round) % RAM_PAGES,
                block: page % 3 == 0,
                writable: page % 2 == 0,
                refused: page % 7 == 6,
            });
        }
        steps.push(Step::Fault {
            page: round,
            block: false,
            writable: true,
            refused: false,
        });
        steps.push(Step::Unmap { block: round });
        steps.push(Step::NoFrame);
        if round == 1 {
            steps.push(Step::Restart);
        }
    }
    steps.push(Step::Restart);
    run(&steps);
}

#[test]
fn reusing_a_slot_takes_its_old_page_only_while_that_frame_is_still_mapped_there() {
    let faults = |pages: &mut dyn Iterator<Item = (u32, bool, bool)>| -> Vec<Step> {
        pages
            .map(|(page, block, writable)| Step::Fault {
                page,
                block,
                writable,
                refused: false,
            })
            .collect()
    };
    // Slot 0's page is still live when the ring comes round: its deletion takes it (the guest
    // refaults it), and only it.
    let mut steps = faults(&mut (0..RING as u32).map(|page| (page, false, true)));
    steps.extend(faults(&mut [(600, false, true)].into_iter()));
    run_then(&steps, |tables| {
        assert!(!tables.maps_page(0), "slot 0's page went with the slot");
        for page in 1..RING as u64 {
            assert!(tables.maps_page(page), "page {page} stays");
        }
        assert!(tables.maps_page(600));
    });

    // Slot 0's read-only block was split by a writable page of it (slot 1) before the ring came
    // round: the block's deletion finds a table there and leaves the page.
    let mut steps = faults(&mut [(0, true, false), (5, false, true)].into_iter());
    steps.extend(faults(
        &mut (600..600 + RING as u32 - 2).map(|page| (page, false, true)),
    ));
    steps.extend(faults(&mut [(1200, false, true)].into_iter()));
    run_then(&steps, |tables| {
        assert!(tables.maps_page(5), "the page that split the block stays");
        assert!(!tables.maps_page(0), "the rest of the block refaults");
        assert!(tables.maps_page(1200));
    });
}

proptest! {
    #[test]
    fn the_ring_keeps_every_mapping_owned_over_random_server_runs(
        steps in prop::collection::vec(step(), 1..80)
    ) {
        run(&steps);
    }
}
