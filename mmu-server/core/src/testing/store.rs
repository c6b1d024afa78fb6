//! A fake shadow-table pool: `capacity` zeroed tables at consecutive host addresses.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::shadow::{Hpa, ShadowTableStore, TableId};

/// Where the fake pool lives in host physical memory: far above the guest RAM the tests use.
pub const POOL_BASE: Hpa = Hpa(0x80_0000_0000);

/// Shadow tables for tests and benchmarks.
pub struct FakeTableStore {
    tables: Vec<Box<[u64; 512]>>,
}

impl FakeTableStore {
    /// A pool of `capacity` zeroed tables.
    pub fn new(capacity: usize) -> Self {
        FakeTableStore {
            tables: (0..capacity).map(|_| Box::new([0u64; 512])).collect(),
        }
    }

    /// The table at host address `hpa` (page-aligned), if it is one of ours.
    pub fn id_of(&self, hpa: Hpa) -> Option<TableId> {
        let off = hpa.0.checked_sub(POOL_BASE.0)?;
        let id = off >> 12;
        (off & 0xfff == 0 && (id as usize) < self.tables.len()).then_some(TableId(id as u16))
    }

    /// Read the entry at host physical address `pa` (8-aligned) if it lies in a pool table.
    pub fn read_phys(&self, pa: u64) -> Option<u64> {
        let id = self.id_of(Hpa(pa & !0xfff))?;
        Some(self.read_entry(id, ((pa & 0xfff) / 8) as usize))
    }

    /// Non-zero entries across the pool (to check that freed tables are left clean).
    pub fn nonzero_entries(&self) -> usize {
        self.tables
            .iter()
            .map(|t| t.iter().filter(|&&e| e != 0).count())
            .sum()
    }
}

impl ShadowTableStore for FakeTableStore {
    fn capacity(&self) -> usize {
        self.tables.len()
    }

    fn table_hpa(&self, id: TableId) -> Hpa {
        Hpa(POOL_BASE.0 + ((id.0 as u64) << 12))
    }

    fn read_entry(&self, id: TableId, index: usize) -> u64 {
        self.tables
            .get(id.0 as usize)
            .and_then(|t| t.get(index))
            .copied()
            .unwrap_or(0)
    }

    fn write_entry(&mut self, id: TableId, index: usize, value: u64) {
        if let Some(e) = self
            .tables
            .get_mut(id.0 as usize)
            .and_then(|t| t.get_mut(index))
        {
            *e = value;
        }
    }
}
