//! Changing live stage-2 tables: map a page or block, unmap (by address, or a given frame's leaf
//! only), write-protect a range, and run the resulting plan.
//!
//! Each operation walks from the root, creating intermediate tables where the walk meets an
//! invalid entry (writing a table descriptor into an invalid entry needs no maintenance: invalid
//! entries are never cached), and stops at the one entry the change is about. There it asks
//! [`prejudge`] what to do and returns the [`Plan`]: the kernel runs it with [`apply`], in order.
//! Until the plan runs, no descriptor the hardware may have cached has changed, so a failed
//! operation (bad address, no memory for a table) leaves the translation as it was.
//!
//! Tables that a change takes out (a table replaced by a block, or unmapped) are returned to the
//! caller, which owns table pages; they may be reused only after the plan ran, because until its
//! TLB invalidation completes a walk cache may still point into them. [`tables_under`] lists a
//! removed table's subtree.
//!
//! A page mapped where a block was replaces the block with a new table holding only that page
//! (the rest of the block faults again and is mapped on demand, as KVM does without eager
//! splitting).

use super::descriptor::{
    Entry, Level, PageSize, decode, leaf_descriptor, table_descriptor, without_write,
};
use super::prejudge::{Action, Plan, Removed, Step, TlbOp, prejudge};
use super::{Attributes, IPA_LIMIT, MapError, PAGE_SIZE, TableMemory, bits};

/// A table that a change removed: free it (and [`tables_under`] it) after the plan ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemovedTable {
    /// Physical address of the table.
    pub table: u64,
    /// The level of the entries inside it.
    pub level: Level,
}

/// What [`map`] or [`unmap`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapOutcome {
    /// The prejudgement at the entry that changes.
    pub action: Action,
    /// The level of that entry.
    pub level: Level,
    /// The writes and maintenance the kernel must run, in order.
    pub plan: Plan,
    /// A table taken out by the change, to free after the plan ran.
    pub removed_table: Option<RemovedTable>,
}

/// What [`unmap`] decided (`NoOp` when nothing was mapped).
pub type UnmapOutcome = MapOutcome;

/// What [`write_protect`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteProtectOutcome {
    /// Leaves whose write permission was removed in place (already done when this returns).
    pub protected: u64,
    /// The maintenance to run now: none when nothing changed.
    pub plan: Plan,
    /// Where the walk stopped: the end of the range when it got through, else the first
    /// address still to do (a bounded walk ran out of its budget there).
    pub next: u64,
}

/// Table entries one bounded write-protect call may visit: the kernel's work per call stays
/// bounded (a few thousand loads and stores) whatever range a caller names, so a guest that
/// turns on dirty logging for all its RAM cannot hold the CPU with interrupts masked.
pub const WRITE_PROTECT_BUDGET: u64 = 4096;

fn check(ipa: u64, pa: u64, bytes: u64) -> Result<(), MapError> {
    let fits = ipa.checked_add(bytes).is_some_and(|end| end <= IPA_LIMIT);
    if !ipa.is_multiple_of(bytes) || !pa.is_multiple_of(bytes) || !fits || pa & !bits::ADDRESS != 0
    {
        return Err(MapError::BadAddress);
    }
    Ok(())
}

fn allocate(memory: &mut impl TableMemory) -> Result<u64, MapError> {
    memory.allocate_table().ok_or(MapError::OutOfTables)
}

/// Maps `ipa` to `pa` with a leaf of `size` in the table rooted at `root` (level 1), and plans the
/// change by the prejudgement (`prejudge`): a no-op when it is already there, in place when only
/// permissions differ, break-before-make otherwise. Nothing cached changes until the plan is
/// applied.
pub fn map(
    memory: &mut impl TableMemory,
    root: u64,
    ipa: u64,
    pa: u64,
    size: PageSize,
    attributes: Attributes,
) -> Result<MapOutcome, MapError> {
    check(ipa, pa, size.bytes())?;
    let target = size.level();
    let leaf = leaf_descriptor(pa, size, attributes);
    let mut table = root;
    for level in Level::ALL {
        let index = level.index(ipa);
        let existing = memory.read(table, index);
        if level == target {
            return Ok(change(table, index, existing, leaf, ipa, level));
        }
        match decode(existing, level) {
            Entry::Table(next) => table = next,
            Entry::Invalid => {
                let next = allocate(memory)?;
                memory.write(table, index, table_descriptor(next));
                table = next;
            }
            Entry::Leaf {
                pa: block_pa,
                size: block_size,
                attributes: block_attributes,
            } if block_attributes == attributes && block_pa + ipa % block_size.bytes() == pa => {
                // The block already maps the target exactly so (a spurious or repeated fault):
                // keep the block, nothing to do.
                return Ok(MapOutcome {
                    action: Action::NoOp,
                    level,
                    plan: Plan::EMPTY,
                    removed_table: None,
                });
            }
            Entry::Leaf { .. } => {
                // A block covers the target: build the new path below it off to the side (not
                // reachable yet), then replace the block by it with break-before-make.
                let top = build_path(memory, level, target, ipa, leaf)?;
                return Ok(change(
                    table,
                    index,
                    existing,
                    table_descriptor(top),
                    ipa,
                    level,
                ));
            }
        }
    }
    Err(MapError::BadAddress) // unreachable: the target level is one of Level::ALL
}

/// Fresh tables from the level below `above` down to `target`, holding only `leaf` for `ipa`;
/// the top one's address. Nothing is linked in if an allocation fails.
fn build_path(
    memory: &mut impl TableMemory,
    above: Level,
    target: Level,
    ipa: u64,
    leaf: u64,
) -> Result<u64, MapError> {
    // At most two tables: a page under a 1 GiB block.
    let Some(mut level) = above.next() else {
        return Err(MapError::BadAddress);
    };
    let first = allocate(memory)?;
    let mut table = first;
    while level < target {
        let Ok(next) = allocate(memory) else {
            memory.free_table(first);
            return Err(MapError::OutOfTables);
        };
        memory.write(table, level.index(ipa), table_descriptor(next));
        table = next;
        level = match level.next() {
            Some(next_level) => next_level,
            None => break,
        };
    }
    memory.write(table, target.index(ipa), leaf);
    Ok(first)
}

fn change(
    table: u64,
    index: usize,
    existing: u64,
    wanted: u64,
    ipa: u64,
    level: Level,
) -> MapOutcome {
    let action = prejudge(existing, wanted, level);
    MapOutcome {
        action,
        level,
        plan: Plan::for_action(action, table, index, wanted, ipa, level),
        removed_table: removed_table(existing, level, action),
    }
}

fn removed_table(existing: u64, level: Level, action: Action) -> Option<RemovedTable> {
    match (decode(existing, level), action, level.next()) {
        (Entry::Table(table), Action::BreakBeforeMake { .. }, Some(below)) => Some(RemovedTable {
            table,
            level: below,
        }),
        _ => None,
    }
}

/// Removes the leaf of `size` at `ipa`, or the table in that entry (returned for freeing).
/// `NoOp` when nothing is mapped there; [`MapError::WouldSplitBlock`] when a larger block
/// covers it.
pub fn unmap(
    memory: &impl TableMemory,
    root: u64,
    ipa: u64,
    size: PageSize,
) -> Result<UnmapOutcome, MapError> {
    check(ipa, 0, size.bytes())?;
    let nothing = |level| MapOutcome {
        action: Action::NoOp,
        level,
        plan: Plan::EMPTY,
        removed_table: None,
    };
    let target = size.level();
    let mut table = root;
    for level in Level::ALL {
        let index = level.index(ipa);
        let existing = memory.read(table, index);
        let entry = decode(existing, level);
        if level == target {
            let removes = match entry {
                Entry::Invalid => return Ok(nothing(level)),
                Entry::Table(_) => Removed::Table,
                Entry::Leaf { .. } => Removed::Leaf,
            };
            let action = Action::BreakBeforeMake { removes };
            return Ok(MapOutcome {
                action,
                level,
                plan: Plan::for_removal(removes, table, index, ipa, level),
                removed_table: removed_table(existing, level, action),
            });
        }
        match entry {
            Entry::Invalid => return Ok(nothing(level)),
            Entry::Table(next) => table = next,
            Entry::Leaf { .. } => return Err(MapError::WouldSplitBlock),
        }
    }
    Err(MapError::BadAddress)
}

/// Removes the leaf of `size` at `ipa` only if it maps the frame at `pa`: a page or block of
/// exactly that size and output address, whatever its permissions. This is the unmap a frame
/// capability's deletion or revocation asks for, checked against the table because the
/// capability's record of where it is mapped may be stale (a later map replaced that entry, or
/// an unmap removed it). `NoOp` when the entry holds anything else: nothing, a table (a page
/// mapped into the block split it), a leaf of another frame, or a larger block over `ipa`. So a
/// stale record removes nothing, and never a translation to other memory. No table is removed.
pub fn unmap_frame(
    memory: &impl TableMemory,
    root: u64,
    ipa: u64,
    pa: u64,
    size: PageSize,
) -> Result<UnmapOutcome, MapError> {
    check(ipa, pa, size.bytes())?;
    let target = size.level();
    let mut table = root;
    for level in Level::ALL {
        let index = level.index(ipa);
        match decode(memory.read(table, index), level) {
            Entry::Table(next) if level < target => table = next,
            Entry::Leaf { pa: leaf_pa, .. } if level == target && leaf_pa == pa => {
                let removes = Removed::Leaf;
                return Ok(MapOutcome {
                    action: Action::BreakBeforeMake { removes },
                    level,
                    plan: Plan::for_removal(removes, table, index, ipa, level),
                    removed_table: None,
                });
            }
            _ => {
                return Ok(MapOutcome {
                    action: Action::NoOp,
                    level,
                    plan: Plan::EMPTY,
                    removed_table: None,
                });
            }
        }
    }
    Err(MapError::BadAddress) // unreachable: the target level is one of Level::ALL
}

/// Removes write permission, in place, from every writable leaf that maps any part of
/// `[ipa, ipa + len)` (a block partly inside is protected whole), and returns the maintenance
/// to run. Walks the whole range whatever it finds: holes and read-only leaves are skipped,
/// never a reason to stop half-way.
pub fn write_protect(
    memory: &mut impl TableMemory,
    root: u64,
    ipa: u64,
    len: u64,
) -> Result<WriteProtectOutcome, MapError> {
    write_protect_bounded(memory, root, ipa, len, u64::MAX)
}

/// [`write_protect`] that visits at most `budget` table entries (at least one, so every call
/// makes progress) and says in [`WriteProtectOutcome::next`] where it stopped; calling again
/// from there finishes the range. Stopping is always between two entries, so the range is
/// never left with a leaf half done.
pub fn write_protect_bounded(
    memory: &mut impl TableMemory,
    root: u64,
    ipa: u64,
    len: u64,
    budget: u64,
) -> Result<WriteProtectOutcome, MapError> {
    check(ipa, 0, PAGE_SIZE)?;
    let end = ipa
        .checked_add(len)
        .filter(|end| *end <= IPA_LIMIT && len.is_multiple_of(PAGE_SIZE));
    let Some(end) = end else {
        return Err(MapError::BadAddress);
    };
    let mut protected = 0;
    let mut last = (ipa, Level::Three);
    let mut address = ipa;
    let mut visited = 0u64;
    'range: while address < end {
        if visited >= budget.max(1) {
            break;
        }
        let mut table = root;
        for level in Level::ALL {
            visited += 1;
            let index = level.index(address);
            let existing = memory.read(table, index);
            let next_entry = (address | (level.entry_bytes() - 1)) + 1;
            match decode(existing, level) {
                Entry::Table(next) => table = next,
                Entry::Invalid => {
                    address = next_entry;
                    continue 'range;
                }
                Entry::Leaf { attributes, .. } => {
                    if attributes.writable {
                        memory.write(table, index, without_write(existing));
                        protected += 1;
                        last = (address, level);
                    }
                    address = next_entry;
                    continue 'range;
                }
            }
        }
    }
    Ok(WriteProtectOutcome {
        protected,
        plan: Plan::after_tightening(protected, last.0, last.1),
        next: address.min(end),
    })
}

/// Runs a plan: writes through `memory`, barriers and invalidations through `tlb`, in order.
/// It cannot fail; the kernel's `tlb` executes the instruction each [`TlbOp`] names.
pub fn apply(plan: &Plan, memory: &mut impl TableMemory, mut tlb: impl FnMut(TlbOp)) {
    for step in plan.steps() {
        match *step {
            Step::Write {
                table,
                index,
                value,
            } => memory.write(table, index, value),
            Step::Tlb(op) => tlb(op),
        }
    }
}

/// Calls `visit` with every table in the subtree of a removed table, the table itself last
/// (children first, so a caller may free as it goes).
pub fn tables_under(memory: &impl TableMemory, removed: RemovedTable, visit: &mut impl FnMut(u64)) {
    if let Some(below) = removed.level.next() {
        for index in 0..super::ENTRIES {
            if let Entry::Table(child) = decode(memory.read(removed.table, index), removed.level) {
                tables_under(
                    memory,
                    RemovedTable {
                        table: child,
                        level: below,
                    },
                    visit,
                );
            }
        }
    }
    visit(removed.table);
}
