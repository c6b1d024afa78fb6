//! Fakes for the stage-2 tests: a memory-backing server that can answer `Retry` and lends 2 MiB
//! frames where told to, and a mapper that runs `kernel_core::stage2` over in-memory tables,
//! records every call, action and TLB operation, and fails on demand.

use crate::stage2::{Backing, BackingError, Frame, Stage2Mapper};
use kernel_core::stage2::{
    self, Action, Attributes, MapError, PAGE_SIZE, PageSize, TableMemory, TlbOp,
};
use std::collections::HashMap;
use std::vec::Vec;

/// Where region `region` lives in the fake's physical memory.
pub fn region_base(region: u16) -> u64 {
    (u64::from(region) + 1) << 32
}

/// The physical address a frame names (the fake's frame index is its page number).
pub fn frame_pa(frame: Frame) -> u64 {
    u64::from(frame.index) * PAGE_SIZE
}

/// A memory-backing server.
#[derive(Default)]
pub struct FakeBacking {
    /// Answer `Retry` to this many calls before answering anything else.
    pub retries: u32,
    /// Lend 2 MiB frames when asked (the region is 2 MiB contiguous).
    pub contiguous: bool,
    /// Fail every call with this.
    pub fail: Option<BackingError>,
    /// Every call: region, offset, size.
    pub calls: Vec<(u16, u64, PageSize)>,
}

impl Backing for FakeBacking {
    fn frame_for(
        &mut self,
        region: u16,
        offset: u64,
        size: PageSize,
    ) -> Result<Frame, BackingError> {
        self.calls.push((region, offset, size));
        if self.retries > 0 {
            self.retries -= 1;
            return Err(BackingError::Retry);
        }
        if let Some(error) = self.fail {
            return Err(error);
        }
        let size = if size == PageSize::Size2M && self.contiguous {
            PageSize::Size2M
        } else {
            PageSize::Size4K
        };
        let base = region_base(region) + (offset & !(size.bytes() - 1));
        Ok(Frame {
            index: u32::try_from(base / PAGE_SIZE).expect("fake frame index"),
            size,
        })
    }
}

/// In-memory table pages.
#[derive(Default)]
pub struct Tables {
    entries: HashMap<(u64, usize), u64>,
    next: u64,
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
        Some(0x7000_0000_0000 + self.next * PAGE_SIZE)
    }
}

/// A mapper call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// `map`.
    Map {
        /// IPA.
        ipa: u64,
        /// Frame.
        frame: Frame,
        /// Size.
        size: PageSize,
        /// Attributes.
        attributes: Attributes,
    },
    /// `write_protect`.
    WriteProtect(u64, u64),
    /// `unmap`.
    Unmap(u64, u64),
}

/// A guest's stage-2 table, changed through `kernel_core::stage2` as the kernel would.
pub struct FakeMapper {
    /// The tables.
    pub tables: Tables,
    /// The root table.
    pub root: u64,
    /// Every call, failed ones included.
    pub calls: Vec<Call>,
    /// The action of every successful map.
    pub actions: Vec<Action>,
    /// Every TLB operation run, in order.
    pub tlb: Vec<TlbOp>,
    /// Fail the next this-many calls (of any kind) with [`FakeMapper::error`].
    pub fail_next: u32,
    /// The error failures return.
    pub error: MapError,
    /// Pages the engine asked to cache as MMIO, in order.
    pub mmio_cached: Vec<u64>,
    /// Memory-map update brackets: `true` begin, `false` end, in order.
    pub updates: Vec<bool>,
}

impl Default for FakeMapper {
    fn default() -> Self {
        let mut tables = Tables::default();
        let root = tables.allocate_table().expect("root");
        Self {
            tables,
            root,
            calls: Vec::new(),
            actions: Vec::new(),
            tlb: Vec::new(),
            fail_next: 0,
            error: MapError::AlreadyMapped,
            mmio_cached: Vec::new(),
            updates: Vec::new(),
        }
    }
}

impl FakeMapper {
    fn injected(&mut self) -> Result<(), MapError> {
        if self.fail_next > 0 {
            self.fail_next -= 1;
            return Err(self.error);
        }
        Ok(())
    }

    fn run(&mut self, plan: &stage2::Plan) {
        let tlb = &mut self.tlb;
        stage2::apply(plan, &mut self.tables, |op| tlb.push(op));
    }

    /// What the guest's stage 2 says about `ipa`.
    pub fn translate(&self, ipa: u64) -> Option<(u64, Attributes)> {
        stage2::translate(&self.tables, self.root, ipa)
    }

    /// The size of the leaf that maps `ipa`, if any (a 2 MiB block or a 4 KiB page).
    pub fn leaf_size(&self, ipa: u64) -> Option<PageSize> {
        let mut table = self.root;
        for level in stage2::Level::ALL {
            match stage2::decode(self.tables.read(table, level.index(ipa)), level) {
                stage2::Entry::Invalid => return None,
                stage2::Entry::Table(next) => table = next,
                stage2::Entry::Leaf { size, .. } => return Some(size),
            }
        }
        None
    }

    /// The map calls made, failed ones included.
    pub fn maps(&self) -> usize {
        self.calls
            .iter()
            .filter(|call| matches!(call, Call::Map { .. }))
            .count()
    }
}

impl Stage2Mapper for FakeMapper {
    fn cache_mmio(&mut self, page: u64) {
        self.mmio_cached.push(page);
    }

    fn memory_map_update(&mut self, begin: bool) {
        self.updates.push(begin);
    }

    fn map(
        &mut self,
        ipa: u64,
        frame: Frame,
        size: PageSize,
        attributes: Attributes,
    ) -> Result<(), MapError> {
        self.calls.push(Call::Map {
            ipa,
            frame,
            size,
            attributes,
        });
        self.injected()?;
        let outcome = stage2::map(
            &mut self.tables,
            self.root,
            ipa,
            frame_pa(frame),
            size,
            attributes,
        )?;
        self.run(&outcome.plan);
        self.actions.push(outcome.action);
        Ok(())
    }

    fn write_protect(&mut self, ipa: u64, len: u64) -> Result<(), MapError> {
        self.calls.push(Call::WriteProtect(ipa, len));
        self.injected()?;
        let outcome = stage2::write_protect(&mut self.tables, self.root, ipa, len)?;
        self.run(&outcome.plan);
        Ok(())
    }

    fn unmap(&mut self, ipa: u64, len: u64) -> Result<(), MapError> {
        self.calls.push(Call::Unmap(ipa, len));
        self.injected()?;
        let end = ipa + len;
        let mut address = ipa;
        while address < end {
            let block = PageSize::Size2M.bytes();
            let size = if address.is_multiple_of(block) && address + block <= end {
                PageSize::Size2M
            } else {
                PageSize::Size4K
            };
            let outcome = stage2::unmap(&self.tables, self.root, address, size)?;
            self.run(&outcome.plan);
            address += size.bytes();
        }
        Ok(())
    }
}
