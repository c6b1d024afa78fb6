//! The device's transport state, kept in the server's state page (`state:<server>`, mapped at
//! `abi::layout::DEVICE_STATE_VA`, docs/VIRTIO.md "Restart without losing I/O") so that a
//! restarted server takes over the device where its previous instance left it.
//!
//! What is kept is `virtio_core::Transport` (features, status, every queue's size and areas),
//! encoded with postcard. Queue positions need not be fresh in it: `Transport::recover` reads
//! them back from the used rings in guest memory. The page holds two slots; a save writes the
//! slot the last good record is not in, with the next sequence number and a checksum, so a
//! crash in the middle of a save leaves the previous record whole and the torn one is ignored.
//!
//! ```text
//! slot (2048 bytes): magic "vst1" | sequence u32 | length u32 | FNV-1a of the payload u32 | payload
//! ```

use virtio_core::Transport;

/// Bytes of the page: two slots of half a page each.
pub const PAGE_BYTES: usize = 4096;
const SLOT_BYTES: usize = PAGE_BYTES / 2;
const HEADER_BYTES: usize = 16;
const MAGIC: u32 = u32::from_le_bytes(*b"vst1");

/// Why a state was not saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveError {
    /// The page is not [`PAGE_BYTES`] long.
    BadPage,
    /// The encoded state does not fit a slot (it cannot: a transport is a few hundred bytes).
    TooLarge,
}

/// A good record: its sequence number and payload.
fn record(slot: &[u8]) -> Option<(u32, &[u8])> {
    let word = |at: usize| {
        let bytes = slot.get(at..at + 4)?;
        Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    };
    if word(0)? != MAGIC {
        return None;
    }
    let length = usize::try_from(word(8)?).ok()?;
    let payload = slot.get(HEADER_BYTES..HEADER_BYTES.checked_add(length)?)?;
    (fnv1a(payload) == word(12)?).then_some((word(4)?, payload))
}

/// The newest good record of the page: (slot index, sequence, payload).
fn newest(page: &[u8]) -> Option<(usize, u32, &[u8])> {
    let found: [Option<(u32, &[u8])>; 2] = [
        record(page.get(..SLOT_BYTES)?),
        record(page.get(SLOT_BYTES..PAGE_BYTES)?),
    ];
    match found {
        [Some((a, pa)), Some((b, pb))] => {
            // Wrapping comparison: `b` is newer when it is ahead of `a` by less than half the range.
            if b.wrapping_sub(a) < 1 << 31 && b != a {
                Some((1, b, pb))
            } else {
                Some((0, a, pa))
            }
        }
        [Some((a, pa)), None] => Some((0, a, pa)),
        [None, Some((b, pb))] => Some((1, b, pb)),
        [None, None] => None,
    }
}

/// Saves `transport` into `page` (the slot not holding the newest record).
pub fn save(page: &mut [u8], transport: &Transport) -> Result<(), SaveError> {
    if page.len() != PAGE_BYTES {
        return Err(SaveError::BadPage);
    }
    let (slot, sequence) = match newest(page) {
        Some((slot, sequence, _)) => (1 - slot, sequence.wrapping_add(1)),
        None => (0, 1),
    };
    let target = &mut page[slot * SLOT_BYTES..(slot + 1) * SLOT_BYTES];
    // The magic goes first and is wrong until the end: a torn write is never a good record.
    target[..4].copy_from_slice(&0u32.to_le_bytes());
    let payload = postcard::to_slice(transport, &mut target[HEADER_BYTES..])
        .map_err(|_| SaveError::TooLarge)?;
    let (length, checksum) = (payload.len() as u32, fnv1a(payload));
    target[4..8].copy_from_slice(&sequence.to_le_bytes());
    target[8..12].copy_from_slice(&length.to_le_bytes());
    target[12..16].copy_from_slice(&checksum.to_le_bytes());
    target[..4].copy_from_slice(&MAGIC.to_le_bytes());
    Ok(())
}

/// The newest saved state in `page`, if there is a good one.
pub fn load(page: &[u8]) -> Option<Transport> {
    let (_, _, payload) = newest(page)?;
    postcard::from_bytes(payload).ok()
}

/// Makes `page` hold no record (a device reset to nothing worth keeping is saved instead; this
/// is for tests and for a page of unknown content).
pub fn clear(page: &mut [u8]) {
    page.fill(0);
}

/// 32-bit FNV-1a: catches a torn or stale payload; nothing here defends against a forger (the
/// page is the server's own).
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811C_9DC5, |hash, &byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use virtio_core::RamWindow;

    fn transport(status: u8) -> Transport {
        let mut transport =
            Transport::new(2, 0, 1, RamWindow::new(0x4000_0000, 0x100_0000).unwrap());
        for bit in [1u8, 2, 8, 4] {
            if status & bit != 0 {
                transport
                    .write(0x70, 4, u64::from(status & (bit | (bit - 1))))
                    .unwrap();
            }
        }
        transport
    }

    #[test]
    fn a_saved_state_loads_back_and_the_newest_of_two_wins() {
        let mut page = vec![0u8; PAGE_BYTES];
        assert_eq!(load(&page), None, "a zeroed page holds nothing");
        let first = transport(1);
        save(&mut page, &first).unwrap();
        assert_eq!(load(&page), Some(first.clone()));
        let second = transport(3);
        save(&mut page, &second).unwrap();
        assert_eq!(load(&page), Some(second.clone()));
        // The third save goes over the first slot again.
        let third = transport(1);
        save(&mut page, &third).unwrap();
        assert_eq!(load(&page), Some(third));
        assert_eq!(
            newest(&page).map(|(slot, sequence, _)| (slot, sequence)),
            Some((0, 3))
        );
    }

    #[test]
    fn a_torn_save_leaves_the_previous_record() {
        let mut page = vec![0u8; PAGE_BYTES];
        let kept = transport(3);
        save(&mut page, &kept).unwrap();
        let mut torn = page.clone();
        save(&mut torn, &transport(1)).unwrap();
        // The new record's payload half written: its checksum no longer matches.
        torn[SLOT_BYTES + HEADER_BYTES + 2] ^= 0xFF;
        assert_eq!(load(&torn), Some(kept.clone()));
        // Or its magic not yet written.
        let mut early = page.clone();
        save(&mut early, &transport(1)).unwrap();
        early[SLOT_BYTES..SLOT_BYTES + 4].fill(0);
        assert_eq!(load(&early), Some(kept));
    }

    #[test]
    fn sequence_numbers_wrap_and_garbage_is_no_record() {
        let mut page = vec![0u8; PAGE_BYTES];
        save(&mut page, &transport(1)).unwrap();
        // Pretend slot 0 is at u32::MAX: the next save, sequence 0, must be the newer one.
        page[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        let newer = transport(3);
        save(&mut page, &newer).unwrap();
        assert_eq!(
            newest(&page).map(|(slot, sequence, _)| (slot, sequence)),
            Some((1, 0))
        );
        assert_eq!(load(&page), Some(newer));
        let mut garbage = vec![0xA5u8; PAGE_BYTES];
        assert_eq!(load(&garbage), None);
        garbage[..4].copy_from_slice(&MAGIC.to_le_bytes());
        garbage[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(load(&garbage), None, "a length past the slot");
        assert_eq!(
            save(&mut [0u8; 100], &transport(1)),
            Err(SaveError::BadPage)
        );
        clear(&mut page);
        assert_eq!(load(&page), None);
    }
}
