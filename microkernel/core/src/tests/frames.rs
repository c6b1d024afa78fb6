//! Frame capabilities end to end: a mapping belongs to its capability (deleting the capability
//! unmaps it, so no mapping outlives every capability that could revoke it, and a record made
//! stale by a later map or unmap removes nothing) and frame rights bound mappings and only
//! shrink. The effects are carried out on in-memory stage-2 tables the way the kernel's
//! `trap::apply` does, so "the mapping is gone" (or "stays") is checked on the translation
//! itself, not on the capability's record.

use super::{MockMemory, SERVER, SLOTS, error_of, invoke, pools, put_cap, system, with_memory};
use crate::cap::Cap;
use crate::memory::VSpaceInfo;
use crate::stage2::{self, Attributes, MemoryKind, PageSize, TableMemory};
use crate::system::{Effect, System};
use abi::InvocationLabel::{CNodeCopy, CNodeDelete, FrameCarve, VSpaceMap};
use abi::KernelError;
use abi::vm::MapAttributes;
use std::collections::HashMap;
use std::vec::Vec;

mod lifetime;
mod property;
mod rights;

/// SERVER's slots from `with_memory`: the 4 MiB RAM range at 0x4000_0000 (region 0), guest
/// VSpace 0. Slot 2 is SERVER's own CNode.
const RANGE: u64 = 8;
const VSPACE: u64 = 9;
const CNODE: u64 = abi::CNODE_SLOT;
/// SERVER's slot for guest VSpace 1 (another VM's, or a server's window onto guest RAM).
const OTHER_VSPACE: u64 = 7;
const PAGE: u64 = 4096;
const BLOCK: u64 = 2 << 20;
/// Where guest RAM starts in the IPA space.
const GUEST: u64 = 0x4000_0000;
/// The physical base of the range `with_memory` gives SERVER.
const RAM: u64 = 0x4000_0000;

/// Stage-2 tables of `N` VSpaces in memory: what the kernel's `vspace.rs` edits.
struct Tables {
    entries: HashMap<(u64, usize), u64>,
    next: u64,
    roots: Vec<u64>,
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

impl Tables {
    fn new(vspaces: usize) -> Self {
        let mut tables = Self {
            entries: HashMap::new(),
            next: 0,
            roots: Vec::new(),
        };
        for _ in 0..vspaces {
            let root = tables.allocate_table().unwrap();
            tables.roots.push(root);
        }
        tables
    }

    /// Does what `trap::apply` does with a memory effect (tables are never freed here).
    fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::Map {
                vspace,
                pa,
                ipa,
                size,
                attributes,
            } => {
                let attributes = Attributes {
                    writable: attributes.0 & MapAttributes::WRITE.0 != 0,
                    executable: attributes.0 & MapAttributes::EXECUTE.0 != 0,
                    kind: MemoryKind::Normal,
                };
                let root = self.roots[usize::from(vspace)];
                let outcome = stage2::map(self, root, ipa, pa, page_size(size), attributes)
                    .expect("a map that passed decode cannot fail");
                stage2::apply(&outcome.plan, self, |_| {});
            }
            Effect::Unmap { vspace, ipa, size } => self.unmap(vspace, ipa, size),
            Effect::UnmapFrame {
                vspace,
                ipa,
                size,
                pa,
            } => self.unmap_frame(vspace, ipa, size, pa),
            // The test runs `revoke_frames` itself, as the kernel does, to see what it reports.
            Effect::None | Effect::Revoke { .. } => {}
            other => panic!("not a memory effect: {other:?}"),
        }
    }

    /// `vspace::unmap`: a page inside a block removes the whole block.
    fn unmap(&mut self, vspace: u16, ipa: u64, size: u64) {
        let root = self.roots[usize::from(vspace)];
        let outcome = match stage2::unmap(self, root, ipa, page_size(size)) {
            Err(stage2::MapError::WouldSplitBlock) => {
                stage2::unmap(self, root, ipa & !(BLOCK - 1), PageSize::Size2M)
            }
            other => other,
        };
        if let Ok(outcome) = outcome {
            stage2::apply(&outcome.plan, self, |_| {});
        }
    }

    /// `vspace::unmap_frame`: the leaf at `ipa` goes only if it maps the frame at `pa`.
    fn unmap_frame(&mut self, vspace: u16, ipa: u64, size: u64, pa: u64) {
        let root = self.roots[usize::from(vspace)];
        let outcome = stage2::unmap_frame(self, root, ipa, pa, page_size(size))
            .expect("a recorded mapping is aligned");
        stage2::apply(&outcome.plan, self, |_| {});
    }

    /// `vspace::clear` (VM reset): `vspace` starts again from an empty root.
    fn clear(&mut self, vspace: u16) {
        let root = self.allocate_table().unwrap();
        self.roots[usize::from(vspace)] = root;
    }

    /// The leaf that maps `ipa` of `vspace`, if any: its IPA, size and physical address.
    fn leaf(&self, vspace: u16, ipa: u64) -> Option<(u64, u64, u64)> {
        let mut table = self.roots[usize::from(vspace)];
        for level in stage2::Level::ALL {
            match stage2::decode(self.read(table, level.index(ipa)), level) {
                stage2::Entry::Invalid => return None,
                stage2::Entry::Table(next) => table = next,
                stage2::Entry::Leaf { pa, size, .. } => {
                    let bytes = size.bytes();
                    return Some((ipa & !(bytes - 1), bytes, pa));
                }
            }
        }
        None
    }

    /// The physical address `ipa` of `vspace` translates to, if any.
    fn translate(&self, vspace: u16, ipa: u64) -> Option<u64> {
        stage2::translate(self, self.roots[usize::from(vspace)], ipa).map(|(pa, _)| pa)
    }
}

fn page_size(bytes: u64) -> PageSize {
    if bytes == BLOCK {
        PageSize::Size2M
    } else {
        PageSize::Size4K
    }
}

/// A system with the RAM range and guest VSpace 0 in SERVER's CNode, VSpace 1 in slot
/// [`OTHER_VSPACE`], and enough table pages for anything these tests map.
struct Fixture {
    memory: MockMemory,
    tables: Tables,
}

fn fixture(system: &mut System<'_>) -> Fixture {
    with_memory(system);
    put_cap(system, SERVER, OTHER_VSPACE, Cap::VSpace { vspace: 1 });
    Fixture {
        memory: MockMemory::default(),
        tables: Tables::new(2),
    }
}

fn vspaces() -> [VSpaceInfo; 2] {
    [VSpaceInfo { free_tables: 64 }; 2]
}

impl Fixture {
    /// Invokes `label` on SERVER's `slot` and carries out its effect; the error, if refused.
    fn invoke(
        &mut self,
        system: &mut System<'_>,
        slot: u64,
        label: abi::InvocationLabel,
        args: [u64; 4],
    ) -> Result<Effect, KernelError> {
        let effect = invoke(system, &mut self.memory, SERVER, slot, label, args);
        if let Some(error) = error_of(system, SERVER) {
            assert_eq!(effect, Effect::None, "a refused invocation has no effect");
            return Err(error);
        }
        self.tables.apply(effect);
        Ok(effect)
    }

    fn carve(&mut self, system: &mut System<'_>, offset: u64, size: u64, slot: u64) {
        let carved = self.invoke(system, RANGE, FrameCarve, [offset, size, slot, 0]);
        assert_eq!(carved, Ok(Effect::None), "carve {size:#x} at {offset:#x}");
    }

    fn map(
        &mut self,
        system: &mut System<'_>,
        vspace: u64,
        frame: u64,
        ipa: u64,
        attributes: MapAttributes,
    ) -> Result<Effect, KernelError> {
        self.invoke(system, vspace, VSpaceMap, [frame, ipa, attributes.0, 0])
    }

    fn delete(&mut self, system: &mut System<'_>, slot: u64) -> Effect {
        self.invoke(system, CNODE, CNodeDelete, [slot, 0, 0, 0])
            .expect("delete is never refused here")
    }

    fn copy(
        &mut self,
        system: &mut System<'_>,
        from: u64,
        to: u64,
        rights: abi::Rights,
    ) -> Result<Effect, KernelError> {
        let rights = u64::from(rights.bits());
        self.invoke(system, CNODE, CNodeCopy, [from, to, rights, 0])
    }
}

/// The frame capability in SERVER's `slot`.
fn frame_at(system: &System<'_>, slot: u64) -> crate::cap::FrameCap {
    match system.lookup(SERVER, slot) {
        Ok(Cap::Frame(frame)) => frame,
        other => panic!("slot {slot} holds {other:?}"),
    }
}

/// Every capability in the pool that records a mapping: (pool index, VSpace, IPA page).
fn recorded_mappings(system: &System<'_>) -> Vec<(usize, u16, u32)> {
    system
        .slots
        .iter()
        .enumerate()
        .filter_map(|(index, cap)| match cap {
            Cap::Frame(frame) => frame.mapping().map(|(v, page)| (index, v, page)),
            _ => None,
        })
        .collect()
}

/// The pool index of SERVER's `slot`.
fn pool_index(slot: u64) -> usize {
    usize::from(SERVER) * SLOTS as usize + slot as usize
}
