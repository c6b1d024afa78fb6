//! The stage-2 prejudgement: how to change one live descriptor, decided before any write, and
//! the exact order of writes, barriers and TLB invalidations that makes it safe (docs/DESIGN.md,
//! "Stage-2 fault prejudgement and dirty-on-success").
//!
//! The rule (KVM arm64 `stage2_map_walker_try_leaf`, ARM ARM D8.14 "Using break-before-make
//! when updating translation table entries"):
//!
//! | existing → wanted                                   | action            | TLB maintenance |
//! |-----------------------------------------------------|-------------------|-----------------|
//! | invalid → anything                                  | `Install`         | none (invalid entries are never cached) |
//! | identical                                           | `NoOp`            | none |
//! | same output address, size and type; permissions only, all widened | `UpdateInPlace` (relax) | none |
//! | same, some permission narrowed                      | `UpdateInPlace` (tighten) | after the write: IPAS2E1IS, VMALLE1IS |
//! | different frame, memory type, size, or a table ↔ leaf change | `BreakBeforeMake` | invalid, then IPAS2E1IS + VMALLE1IS (a leaf went) or VMALLS12E1IS (a table went), then the new descriptor |
//!
//! Every TLB invalidation is followed by `DSB ISH` so it has completed before the next step;
//! every plan that writes a valid descriptor ends with `DSB ISHST` so the walker sees it before
//! the guest runs again. The invalidations act on the VMID in `VTTBR_EL2`, so the kernel runs a
//! plan with the target VSpace's VTTBR loaded.

use super::bits;
use super::descriptor::{Entry, Level, decode};

/// How one descriptor is changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The slot was invalid: write the new descriptor.
    Install,
    /// The same output address and attributes are already there: nothing to do.
    NoOp,
    /// Same output address and size, only permissions differ: written in place, no
    /// break-before-make. `tightened` when any permission was removed (then a stale TLB entry
    /// could still grant the old, wider access, so the IPA is invalidated afterwards).
    UpdateInPlace {
        /// Some access was removed (read, write, or execute).
        tightened: bool,
    },
    /// Anything else: write invalid, invalidate, then write the new descriptor (for an unmap,
    /// only the break).
    BreakBeforeMake {
        /// What the break removes: a leaf, or a whole table (then every entry under it may be
        /// cached, and the walk caches may hold the table itself).
        removes: Removed,
    },
}

/// What a break-before-make takes out of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removed {
    /// A page or block.
    Leaf,
    /// A table (and everything under it).
    Table,
}

/// One TLB maintenance or barrier instruction, in the order the kernel must execute them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlbOp {
    /// `DSB ISH`: prior writes and TLB invalidations are complete for the inner-shareable
    /// domain (ARM ARM D8.13, TLB maintenance: completion needs a DSB).
    DsbIsh,
    /// `DSB ISHST`: prior writes are visible to the table walkers of the inner-shareable domain.
    DsbIshst,
    /// `TLBI IPAS2E1IS, Xt` with `Xt = ipa >> 12`: stage-2-only entries for this IPA and the
    /// current VMID. For a block, an address anywhere in the block removes the whole block's
    /// entry; `level` is the level the entry was at (the FEAT_TTL hint, where implemented).
    Ipas2e1is {
        /// Base of the entry being removed or changed.
        ipa: u64,
        /// The level of that entry.
        level: Level,
    },
    /// `TLBI VMALLE1IS`: stage-1 entries for the current VMID, which may hold the combined
    /// stage-1 + stage-2 translation that IPAS2E1IS does not reach.
    Vmalle1is,
    /// `TLBI VMALLS12E1IS`: every stage-1 and stage-2 entry of the current VMID, walk caches
    /// included; used when a table goes, since any leaf under it may be cached.
    Vmalls12e1is,
}

/// One step of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Store `value` (a single 64-bit store) as entry `index` of the table at `table`.
    Write {
        /// Physical address of the table.
        table: u64,
        /// Entry index.
        index: usize,
        /// The descriptor.
        value: u64,
    },
    /// A barrier or TLB invalidation.
    Tlb(TlbOp),
}

/// The longest plan: break-before-make of a leaf.
pub const MAX_STEPS: usize = 8;

/// An ordered list of steps, at most [`MAX_STEPS`]; no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    steps: [Step; MAX_STEPS],
    length: usize,
}

impl Default for Plan {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl Plan {
    /// Nothing to do.
    pub const EMPTY: Plan = Plan {
        steps: [Step::Tlb(TlbOp::DsbIsh); MAX_STEPS],
        length: 0,
    };

    /// Builds a plan from a list of steps (at most [`MAX_STEPS`]; more is a bug in this module).
    const fn of(list: &[Step]) -> Plan {
        assert!(list.len() <= MAX_STEPS);
        let mut plan = Plan::EMPTY;
        while plan.length < list.len() {
            plan.steps[plan.length] = list[plan.length];
            plan.length += 1;
        }
        plan
    }

    /// The steps, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps[..self.length]
    }

    /// Only the TLB maintenance and barriers, in order.
    pub fn tlb_ops(&self) -> impl Iterator<Item = TlbOp> + '_ {
        self.steps().iter().filter_map(|step| match step {
            Step::Tlb(op) => Some(*op),
            Step::Write { .. } => None,
        })
    }

    /// Whether the plan does nothing.
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// The plan that carries out `action` on entry `index` of `table` (at `level`, covering
    /// `ipa`), writing `wanted` where a descriptor is written.
    pub const fn for_action(
        action: Action,
        table: u64,
        index: usize,
        wanted: u64,
        ipa: u64,
        level: Level,
    ) -> Plan {
        use TlbOp::{DsbIsh, DsbIshst, Ipas2e1is, Vmalle1is, Vmalls12e1is};
        let write = Step::Write {
            table,
            index,
            value: wanted,
        };
        let invalid = Step::Write {
            table,
            index,
            value: 0,
        };
        let by_ipa = Step::Tlb(Ipas2e1is {
            ipa: ipa & !(level.entry_bytes() - 1),
            level,
        });
        let (dsb, dsb_st) = (Step::Tlb(DsbIsh), Step::Tlb(DsbIshst));
        match action {
            Action::NoOp => Plan::EMPTY,
            Action::Install | Action::UpdateInPlace { tightened: false } => {
                Plan::of(&[write, dsb_st])
            }
            Action::UpdateInPlace { tightened: true } => {
                Plan::of(&[write, dsb, by_ipa, dsb, Step::Tlb(Vmalle1is), dsb])
            }
            Action::BreakBeforeMake {
                removes: Removed::Leaf,
            } => Plan::of(&[
                invalid,
                dsb,
                by_ipa,
                dsb,
                Step::Tlb(Vmalle1is),
                dsb,
                write,
                dsb_st,
            ]),
            Action::BreakBeforeMake {
                removes: Removed::Table,
            } => Plan::of(&[invalid, dsb, Step::Tlb(Vmalls12e1is), dsb, write, dsb_st]),
        }
    }

    /// The break alone (an unmap): the plan for `BreakBeforeMake` without the make.
    pub const fn for_removal(
        removes: Removed,
        table: u64,
        index: usize,
        ipa: u64,
        level: Level,
    ) -> Plan {
        let full = Plan::for_action(
            Action::BreakBeforeMake { removes },
            table,
            index,
            0,
            ipa,
            level,
        );
        Plan {
            steps: full.steps,
            length: full.length - 2,
        }
    }

    /// The maintenance after permissions were narrowed in place on `entries` entries of a
    /// range: one entry is invalidated by address, more by the whole VMID (as KVM does after
    /// write-protecting a memory slot).
    pub const fn after_tightening(entries: u64, ipa: u64, level: Level) -> Plan {
        use TlbOp::{DsbIsh, Ipas2e1is, Vmalle1is, Vmalls12e1is};
        match entries {
            0 => Plan::EMPTY,
            1 => Plan::of(&[
                Step::Tlb(DsbIsh),
                Step::Tlb(Ipas2e1is {
                    ipa: ipa & !(level.entry_bytes() - 1),
                    level,
                }),
                Step::Tlb(DsbIsh),
                Step::Tlb(Vmalle1is),
                Step::Tlb(DsbIsh),
            ]),
            _ => Plan::of(&[
                Step::Tlb(DsbIsh),
                Step::Tlb(Vmalls12e1is),
                Step::Tlb(DsbIsh),
            ]),
        }
    }
}

/// The prejudgement: how to replace the descriptor `existing` by `wanted` in an entry at `level`.
pub const fn prejudge(existing: u64, wanted: u64, level: Level) -> Action {
    let old = decode(existing, level);
    if matches!(old, Entry::Invalid) {
        return Action::Install;
    }
    if existing == wanted {
        return Action::NoOp;
    }
    let new = decode(wanted, level);
    let both_leaves = matches!(old, Entry::Leaf { .. }) && matches!(new, Entry::Leaf { .. });
    if both_leaves && (existing ^ wanted) & !bits::PERMISSIONS == 0 {
        // Same output address, size, memory type, shareability, access flag and software bits.
        // Narrowed: an access bit went, or execute permission changed to anything but "all"
        // (with FEAT_XNX the two XN bits are not ordered, so any other change counts).
        let access = bits::S2AP_READ | bits::S2AP_WRITE;
        let execute = bits::PERMISSIONS & !access;
        let lost_access = existing & !wanted & access != 0;
        let xn_changed = (existing ^ wanted) & execute != 0 && wanted & execute != 0;
        return Action::UpdateInPlace {
            tightened: lost_access || xn_changed,
        };
    }
    Action::BreakBeforeMake {
        removes: match old {
            Entry::Table(_) => Removed::Table,
            _ => Removed::Leaf,
        },
    }
}
