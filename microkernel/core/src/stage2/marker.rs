//! MMIO markers in a stage-2 table ([`crate::mmio`], docs/MMIO.md): reading the entry a walk
//! stops at (the fast path's one look at the table), installing a marker in a level-3 entry,
//! and zapping every marker in bounded steps after the VM's generation wrapped.
//!
//! A marker is an invalid descriptor, and invalid entries are never cached by a TLB or a walk
//! cache (ARM ARM D8.13.1: only entries that do not generate a Translation fault are cached).
//! So writing one over an empty entry or over an older marker, and zapping one back to 0,
//! needs no TLB maintenance. What needs ordering is only what [`crate::stage2::walk::map`]
//! needs too: a table linked on the way down must be seen zeroed by the walker, hence the
//! `DSB ISHST` in the install plan.

use super::descriptor::{Entry, Level, decode, table_descriptor};
use super::prejudge::{Action, Plan};
use super::{ENTRIES, IPA_LIMIT, MapError, PAGE_SIZE, TableMemory};
use abi::mmio::MarkerAction;

/// Table entries one [`zap_markers`] call may read at most: bounded kernel work per call, as
/// [`super::WRITE_PROTECT_BUDGET`] is for write-protection.
pub const ZAP_BUDGET: u64 = 4096;

/// The level and the descriptor where a walk for `ipa` stops: the first entry that is not a
/// table (invalid, a block, or at level 3 whatever is there). An IPA beyond the 39-bit space
/// reads as an empty level-1 entry.
pub fn descriptor_at(memory: &impl TableMemory, root: u64, ipa: u64) -> (Level, u64) {
    if ipa >= IPA_LIMIT {
        return (Level::One, 0);
    }
    let mut table = root;
    for level in Level::ALL {
        let descriptor = memory.read(table, level.index(ipa));
        match (decode(descriptor, level), level.next()) {
            (Entry::Table(next), Some(_)) => table = next,
            _ => return (level, descriptor),
        }
    }
    (Level::Three, 0) // unreachable: level 3 never holds a table
}

/// What [`install_marker`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarkerOutcome {
    /// The answer for the caller.
    pub action: MarkerAction,
    /// The write and barrier to run ([`super::apply`]); empty when nothing is written.
    pub plan: Plan,
}

/// Plans writing `marker` into the level-3 entry for the page at `ipa`, allocating the tables
/// on the way as [`super::map`] does. Only over an empty entry or an older marker: a valid page
/// there is left alone ([`MarkerAction::Occupied`]), and so is a block covering `ipa`
/// ([`MarkerAction::Block`]). Errors: `ipa` not page aligned or beyond the IPA space, or
/// `marker` not a marker (`BadAddress`); no memory for a table (`OutOfTables`, nothing cached
/// changed).
pub fn install_marker(
    memory: &mut impl TableMemory,
    root: u64,
    ipa: u64,
    marker: u64,
) -> Result<MarkerOutcome, MapError> {
    if !ipa.is_multiple_of(PAGE_SIZE) || ipa >= IPA_LIMIT || !crate::mmio::is_marker(marker) {
        return Err(MapError::BadAddress);
    }
    let nothing = |action| MarkerOutcome {
        action,
        plan: Plan::EMPTY,
    };
    let mut table = root;
    for level in [Level::One, Level::Two] {
        let index = level.index(ipa);
        match decode(memory.read(table, index), level) {
            Entry::Table(next) => table = next,
            Entry::Invalid => {
                let next = memory.allocate_table().ok_or(MapError::OutOfTables)?;
                memory.write(table, index, table_descriptor(next));
                table = next;
            }
            Entry::Leaf { .. } => return Ok(nothing(MarkerAction::Block)),
        }
    }
    let index = Level::Three.index(ipa);
    let existing = memory.read(table, index);
    let action = if existing == 0 {
        MarkerAction::Installed
    } else if crate::mmio::is_marker(existing) {
        MarkerAction::Replaced
    } else {
        return Ok(nothing(MarkerAction::Occupied));
    };
    Ok(MarkerOutcome {
        action,
        plan: Plan::for_action(Action::Install, table, index, marker, ipa, Level::Three),
    })
}

/// What [`zap_markers`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZapOutcome {
    /// Markers cleared (already written when this returns).
    pub zapped: u64,
    /// The first IPA still to do; [`IPA_LIMIT`] when the whole space is done.
    pub next: u64,
}

/// Clears every marker from `from` (rounded down to its page) to the end of the IPA space,
/// reading at most `budget` entries (at least three: the walk down to the first page and that
/// page's entry, so every call makes progress); call again
/// from [`ZapOutcome::next`] until it is [`IPA_LIMIT`]. Holes at levels 1 and 2 and blocks are
/// skipped whole; valid entries are never written. No TLB maintenance is needed (module docs).
pub fn zap_markers(memory: &mut impl TableMemory, root: u64, from: u64, budget: u64) -> ZapOutcome {
    // Three reads reach the first page's entry, so a call always gets past at least one page;
    // and every read counts, so a call always ends.
    let budget = budget.max(3);
    let mut address = from & !(PAGE_SIZE - 1);
    let mut visited = 0u64;
    let mut zapped = 0u64;
    'space: while address < IPA_LIMIT && visited < budget {
        let mut table = root;
        for level in Level::ALL {
            let index = level.index(address);
            if level == Level::Three {
                // Sweep the rest of this level-3 table, as far as the budget goes.
                let mut entry = index;
                while entry < ENTRIES && visited < budget {
                    visited += 1;
                    if crate::mmio::is_marker(memory.read(table, entry)) {
                        memory.write(table, entry, 0);
                        zapped += 1;
                    }
                    entry += 1;
                }
                let table_base = address & !(Level::Two.entry_bytes() - 1);
                address = table_base + entry as u64 * PAGE_SIZE;
                continue 'space;
            }
            if visited >= budget {
                break 'space;
            }
            visited += 1;
            match decode(memory.read(table, index), level) {
                Entry::Table(next) => table = next,
                Entry::Invalid | Entry::Leaf { .. } => {
                    address = (address | (level.entry_bytes() - 1)) + 1;
                    continue 'space;
                }
            }
        }
    }
    ZapOutcome {
        zapped,
        next: address.min(IPA_LIMIT),
    }
}

#[cfg(test)]
mod tests;
