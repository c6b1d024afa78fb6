//! What the vmm keeps in its state page (`state:<vmm>`, one record of `ipc::state`), so that a
//! restarted vmm takes over a running VM instead of leaving it without interrupts: the vGIC
//! model (`vgic::saved`), the device lines as last answered, how many times the VM was reset,
//! and whether a reset is under way (docs/VMM.md, "Restart").
//!
//! ```text
//! vGIC model (vgic::SAVED_BYTES) | device line levels 4 × u64 | boots u64 | resetting u64 (0, 1)
//! ```
//!
//! What is not kept starts over with each instance: the exit counters and the trace ring (the
//! power-off summary counts the last instance's exits), and the rate limits of logging.

use crate::vgic::{SAVED_BYTES as VGIC_BYTES, Vgic};

/// Bytes of a saved record.
pub const BYTES: usize = VGIC_BYTES + 4 * 8 + 8 + 8;
const _: () = assert!(
    BYTES <= ipc::state::PAYLOAD_BYTES,
    "the vmm's state must fit one record"
);

/// The vmm's state that outlives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Saved {
    pub vgic: Vgic,
    /// The level each device line had at its last answer (bit per INTID below 256).
    pub levels: [u64; 4],
    /// Resets of the VM so far (`HV_BOOT_COUNT` answers it).
    pub boots: u64,
    /// A SYSTEM_RESET was begun and not yet finished (its VCPU not yet resumed): a successor
    /// finishes it.
    pub resetting: bool,
}

/// Writes the record of `vgic`, `levels`, `boots` and `resetting` into `out`; `None` when
/// `out` is shorter than [`BYTES`]. (The parts are borrowed: the loop saves the live model
/// without copying it.)
pub fn encode(
    vgic: &Vgic,
    levels: &[u64; 4],
    boots: u64,
    resetting: bool,
    out: &mut [u8],
) -> Option<usize> {
    let out = out.get_mut(..BYTES)?;
    let (model, rest) = out.split_at_mut(VGIC_BYTES);
    vgic.save(model)?;
    for (chunk, word) in rest
        .chunks_exact_mut(8)
        .zip(levels.iter().chain([boots, u64::from(resetting)].iter()))
    {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    Some(BYTES)
}

impl Saved {
    /// The record in `bytes`; `None` unless they are exactly one [`encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != BYTES {
            return None;
        }
        let (model, rest) = bytes.split_at(VGIC_BYTES);
        let mut words = rest
            .chunks_exact(8)
            .map(|chunk| u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8])));
        let mut levels = [0u64; 4];
        for level in levels.iter_mut() {
            *level = words.next()?;
        }
        let boots = words.next()?;
        let resetting = match words.next()? {
            0 => false,
            1 => true,
            _ => return None,
        };
        Some(Self {
            vgic: Vgic::restore(model)?,
            levels,
            boots,
            resetting,
        })
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn a_record_round_trips_through_the_state_page() {
        let mut vgic = Vgic::new();
        let _ = vgic.write(crate::vgic::GicWindow::Distributor, 0, 4, 0b11);
        let saved = Saved {
            vgic,
            levels: [1 << 48, 0, 0, 1 << 63],
            boots: 7,
            resetting: true,
        };
        let mut page = std::vec![0u8; ipc::state::PAGE_BYTES];
        ipc::state::save_with(&mut page, |buffer| {
            encode(
                &saved.vgic,
                &saved.levels,
                saved.boots,
                saved.resetting,
                buffer,
            )
        })
        .unwrap();
        let payload = ipc::state::newest_payload(&page).unwrap();
        // The layout of the module comment: the model, four level words, the boot count, the
        // reset flag.
        assert_eq!(BYTES, crate::vgic::SAVED_BYTES + 6 * 8);
        assert_eq!(payload.len(), BYTES);
        assert_eq!(&payload[BYTES - 16..BYTES - 8], &7u64.to_le_bytes());
        assert_eq!(&payload[BYTES - 8..], &1u64.to_le_bytes());
        let mut flag_broken = payload.to_vec();
        flag_broken[BYTES - 8] = 2;
        assert_eq!(
            Saved::decode(&flag_broken),
            None,
            "a reset flag neither 0 nor 1"
        );
        flag_broken[BYTES - 8] = 0;
        assert_eq!(
            Saved::decode(&flag_broken).map(|s| s.resetting),
            Some(false)
        );
        assert_eq!(Saved::decode(payload), Some(saved.clone()));
        assert_eq!(Saved::decode(&payload[..BYTES - 1]), None);
        assert_eq!(
            encode(&saved.vgic, &saved.levels, 7, false, &mut [0u8; BYTES - 1]),
            None
        );
        let mut model_broken = payload.to_vec();
        model_broken[0] = 0;
        assert_eq!(Saved::decode(&model_broken), None, "a vGIC of no version");
    }
}
