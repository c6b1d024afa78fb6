//! MMIO shadow entries: remembering "this address is MMIO" in the shadow table itself (KVM's
//! MMIO sptes).
//!
//! The first fault on a guest address whose frame is in no memory slot costs a guest walk and a
//! slot search. The engine then installs a *not-present* shadow entry marked as MMIO, holding the
//! guest frame, the guest's effective rights and the memory-slot generation. The next fault there
//! is recognised from that entry alone: no guest walk, no slot search (docs/DESIGN.md, "MMIO
//! caching with generations").
//!
//! Encoding (P=0, so the processor ignores bits 63:1, SDM Vol. 3 §4.5 Figure 4-11: the whole
//! entry is ours):
//!
//! ```text
//!  63                         24 23               5 4   2  1   0
//! +-----------------------------+------------------+-----+----+---+
//! |  guest frame number (40)    | generation (19)  | XUW | M=1| P=0|
//! +-----------------------------+------------------+-----+----+---+
//! ```
//!
//! * `M` (bit 1) tells an MMIO entry from an empty one (all zero).
//! * `XUW` (bits 4:2) are the guest's effective rights for the page, so a cached hit still obeys
//!   the guest's protection: an access they do not allow takes the slow path and gets the proper
//!   guest page fault.
//! * The generation holds the low [`GEN_BITS`] bits of the memory-slot generation at creation.
//!   An entry is valid only if these equal the current generation's low bits **and** no slot
//!   update is in progress. The "update in progress" state is never stored: an entry is not
//!   installed while an update is in progress, so entries made during an update always miss.
//! * Wrap: 19 bits wrap after 2^19 slot changes, when an old entry's bits could match again. The
//!   engine remembers the high part (the *epoch*) of the generation it last saw; when it changes,
//!   every MMIO entry is zapped before any is trusted (KVM zaps all shadow pages at wrap).
//! * The frame field holds 40 bits, all guest frames of a 52-bit physical address space.
//!
//! Why not-present rather than KVM's present-with-reserved-bits form: a present entry with
//! reserved bits lets the hardware report RSVD and spares the engine the shadow walk, but needs a
//! reserved physical-address bit, which CPUs with MAXPHYADDR=52 do not have (KVM disables MMIO
//! caching there). The not-present form works on every CPU; the cost is a walk of at most four
//! shadow entries in the engine, still without touching guest tables or slots.

use super::addr::Gfn;
use super::backing::MemslotGeneration;
use super::pte::{ACC_ALL, P, Rights};

/// Generation bits stored in an MMIO entry.
pub const GEN_BITS: u32 = 19;
const GEN_MASK: u64 = (1 << GEN_BITS) - 1;
const MARKER: u64 = 1 << 1;
const ACCESS_SHIFT: u32 = 2;
const GEN_SHIFT: u32 = 5;
const GFN_SHIFT: u32 = 24;
const GFN_BITS: u32 = 40;

/// A decoded MMIO shadow entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioSpte {
    /// The guest frame the access targets.
    pub gfn: Gfn,
    /// The guest's effective rights for the page.
    pub access: Rights,
    /// Low bits of the memory-slot generation at creation.
    pub generation: u32,
}

/// The epoch of a generation: the part above the stored bits. A change means "wrapped".
pub const fn epoch(generation: MemslotGeneration) -> u64 {
    generation.value >> GEN_BITS
}

/// Encode an MMIO entry, or `None` when the generation must not be cached (update in progress)
/// or the frame does not fit.
pub const fn encode(gfn: Gfn, access: Rights, generation: MemslotGeneration) -> Option<u64> {
    if generation.update_in_progress || gfn.0 >> GFN_BITS != 0 {
        return None;
    }
    Some(
        (gfn.0 << GFN_SHIFT)
            | ((generation.value & GEN_MASK) << GEN_SHIFT)
            | (((access & ACC_ALL) as u64) << ACCESS_SHIFT)
            | MARKER,
    )
}

/// Is this shadow entry an MMIO marker (of any generation)?
pub const fn is_mmio(spte: u64) -> bool {
    spte & (P | MARKER) == MARKER
}

/// Decode an MMIO entry.
pub const fn decode(spte: u64) -> Option<MmioSpte> {
    if !is_mmio(spte) {
        return None;
    }
    Some(MmioSpte {
        gfn: Gfn(spte >> GFN_SHIFT),
        access: ((spte >> ACCESS_SHIFT) as u8) & ACC_ALL,
        generation: ((spte >> GEN_SHIFT) & GEN_MASK) as u32,
    })
}

impl MmioSpte {
    /// Is this entry valid under the current generation?
    pub const fn is_current(&self, now: MemslotGeneration) -> bool {
        !now.update_in_progress && self.generation as u64 == now.value & GEN_MASK
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shadow::pte::{ACC_U, ACC_W};

    const fn generation(value: u64) -> MemslotGeneration {
        MemslotGeneration {
            value,
            update_in_progress: false,
        }
    }

    #[test]
    fn round_trip_and_validity() {
        let spte = encode(Gfn((1 << 40) - 1), ACC_U | ACC_W, generation(0x7_ffff)).unwrap();
        assert!(is_mmio(spte));
        assert_eq!(spte & P, 0, "MMIO entries are not present");
        let m = decode(spte).unwrap();
        assert_eq!(m.gfn, Gfn((1 << 40) - 1));
        assert_eq!(m.access, ACC_U | ACC_W);
        assert!(m.is_current(generation(0x7_ffff)));
        assert!(!m.is_current(generation(0x8_0000)));
        // Same low bits after a wrap: only the epoch tells them apart.
        assert!(m.is_current(generation(0xf_ffff)));
        assert_ne!(epoch(generation(0x7_ffff)), epoch(generation(0xf_ffff)));
        let busy = MemslotGeneration {
            value: 0x7_ffff,
            update_in_progress: true,
        };
        assert!(!m.is_current(busy));
        assert_eq!(
            encode(Gfn(1), 0, busy),
            None,
            "never stored while in progress"
        );
        assert_eq!(encode(Gfn(1 << 40), 0, generation(0)), None);
        assert!(!is_mmio(0));
        assert_eq!(decode(0), None);
    }
}
