//! Restart-safe state: one page that outlives a server's restarts (`state:<server>`, mapped at
//! `abi::layout::STATE_PAGE_VA`, docs/ARCHITECTURE.md "Restart-safe state"), holding the
//! newest record of what the server must not lose.
//!
//! The page holds two slots; a save writes the slot the newest good record is not in, with the
//! next sequence number and a checksum, so a crash in the middle of a save leaves the previous
//! record whole and the torn one is ignored. What a record means is the server's: this module
//! moves bytes (the virtio servers keep their transport, postcard-encoded; the vmm its vGIC
//! model in a fixed layout).
//!
//! ```text
//! slot (2048 bytes): magic "vst1" | sequence u32 | length u32 | checksum of the payload u32 | payload
//! ```

/// Bytes of the page: two slots of half a page each.
pub const PAGE_BYTES: usize = 4096;
const SLOT_BYTES: usize = PAGE_BYTES / 2;
const HEADER_BYTES: usize = 16;
/// The most a record's payload can hold.
pub const PAYLOAD_BYTES: usize = SLOT_BYTES - HEADER_BYTES;
const MAGIC: u32 = u32::from_le_bytes(*b"vst1");

/// Why a state was not saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveError {
    /// The page is not [`PAGE_BYTES`] long.
    BadPage,
    /// The payload does not fit a slot ([`PAYLOAD_BYTES`]).
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

/// Where the next save goes: the slot after the newest record and its sequence number. Read
/// from the page once per life ([`Saver::new`]) and kept from save to save, since only this
/// server writes its page: a save then checks no record (the vmm saves at every GIC write of
/// a booting guest, and reading both records back each time was most of that cost).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Saver {
    slot: usize,
    sequence: u32,
}

impl Saver {
    /// The position after the newest good record of `page`, or the first slot of an empty one.
    pub fn new(page: &[u8]) -> Self {
        match newest(page) {
            Some((slot, sequence, _)) => Self {
                slot: 1 - slot,
                sequence: sequence.wrapping_add(1),
            },
            None => Self {
                slot: 0,
                sequence: 1,
            },
        }
    }

    /// Saves a record into `page`: `fill` writes the payload into the buffer it is given
    /// ([`PAYLOAD_BYTES`] long) and returns its length, or `None` when it does not fit (the
    /// page then keeps its newest record, and the next save tries the same slot).
    pub fn save_with(
        &mut self,
        page: &mut [u8],
        fill: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> Result<(), SaveError> {
        if page.len() != PAGE_BYTES {
            return Err(SaveError::BadPage);
        }
        let target = &mut page[self.slot * SLOT_BYTES..(self.slot + 1) * SLOT_BYTES];
        // The magic goes first and is wrong until the end: a torn write is never a good record.
        target[..4].copy_from_slice(&0u32.to_le_bytes());
        let payload = &mut target[HEADER_BYTES..];
        let length = fill(payload)
            .filter(|&length| length <= PAYLOAD_BYTES)
            .ok_or(SaveError::TooLarge)?;
        let checksum = fnv1a(&payload[..length]);
        target[4..8].copy_from_slice(&self.sequence.to_le_bytes());
        target[8..12].copy_from_slice(&(length as u32).to_le_bytes());
        target[12..16].copy_from_slice(&checksum.to_le_bytes());
        target[..4].copy_from_slice(&MAGIC.to_le_bytes());
        self.slot = 1 - self.slot;
        self.sequence = self.sequence.wrapping_add(1);
        Ok(())
    }
}

/// Saves a record into `page`, the slot not holding the newest record ([`Saver::save_with`],
/// reading the page first).
pub fn save_with(
    page: &mut [u8],
    fill: impl FnOnce(&mut [u8]) -> Option<usize>,
) -> Result<(), SaveError> {
    Saver::new(page).save_with(page, fill)
}

/// Saves `value`, postcard-encoded.
pub fn save<T: serde::Serialize>(page: &mut [u8], value: &T) -> Result<(), SaveError> {
    save_with(page, |buffer| {
        postcard::to_slice(value, buffer)
            .ok()
            .map(|bytes| bytes.len())
    })
}

/// The payload of the newest good record in `page`, if there is one.
pub fn newest_payload(page: &[u8]) -> Option<&[u8]> {
    newest(page).map(|(_, _, payload)| payload)
}

/// The newest saved value in `page`, postcard-decoded, if there is a good one.
pub fn load<T: serde::de::DeserializeOwned>(page: &[u8]) -> Option<T> {
    postcard::from_bytes(newest_payload(page)?).ok()
}

/// Makes `page` hold no record (for tests and for a page of unknown content).
pub fn clear(page: &mut [u8]) {
    page.fill(0);
}

/// FNV-1a over little-endian 64-bit words (the tail's bytes one by one), folded to 32 bits:
/// catches a torn or stale payload; nothing here defends against a forger (the page is the
/// server's own). Word-wise, because the vmm saves its 1.6 KB record at every GIC write of a
/// booting guest and a byte-wise hash was most of that cost.
fn fnv1a(bytes: &[u8]) -> u32 {
    const PRIME: u64 = 0x0000_0100_0000_01B3;
    let mut words = bytes.chunks_exact(8);
    let mut hash = 0xCBF2_9CE4_8422_2325u64;
    for word in &mut words {
        let mut le = [0u8; 8];
        le.copy_from_slice(word);
        hash = (hash ^ u64::from_le_bytes(le)).wrapping_mul(PRIME);
    }
    for &byte in words.remainder() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(PRIME);
    }
    (hash ^ (hash >> 32)) as u32
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;

    fn bytes(page: &[u8]) -> Option<std::vec::Vec<u8>> {
        newest_payload(page).map(<[u8]>::to_vec)
    }

    fn put(page: &mut [u8], payload: &[u8]) -> Result<(), SaveError> {
        save_with(page, |buffer| {
            buffer.get_mut(..payload.len())?.copy_from_slice(payload);
            Some(payload.len())
        })
    }

    #[test]
    fn a_saved_record_loads_back_and_the_newest_of_two_wins() {
        let mut page = vec![0u8; PAGE_BYTES];
        assert_eq!(bytes(&page), None, "a zeroed page holds nothing");
        put(&mut page, b"first").unwrap();
        assert_eq!(bytes(&page).as_deref(), Some(&b"first"[..]));
        put(&mut page, b"second").unwrap();
        assert_eq!(bytes(&page).as_deref(), Some(&b"second"[..]));
        // The third save goes over the first slot again.
        put(&mut page, b"third").unwrap();
        assert_eq!(bytes(&page).as_deref(), Some(&b"third"[..]));
        assert_eq!(
            newest(&page).map(|(slot, sequence, _)| (slot, sequence)),
            Some((0, 3))
        );
        // An empty payload is a record too.
        put(&mut page, b"").unwrap();
        assert_eq!(bytes(&page).as_deref(), Some(&b""[..]));
    }

    #[test]
    fn a_torn_save_leaves_the_previous_record() {
        let mut page = vec![0u8; PAGE_BYTES];
        put(&mut page, b"kept").unwrap();
        let mut torn = page.clone();
        put(&mut torn, b"newer").unwrap();
        // The new record's payload half written: its checksum no longer matches.
        torn[SLOT_BYTES + HEADER_BYTES + 2] ^= 0xFF;
        assert_eq!(bytes(&torn).as_deref(), Some(&b"kept"[..]));
        // Or its magic not yet written.
        let mut early = page.clone();
        put(&mut early, b"newer").unwrap();
        early[SLOT_BYTES..SLOT_BYTES + 4].fill(0);
        assert_eq!(bytes(&early).as_deref(), Some(&b"kept"[..]));
    }

    #[test]
    fn a_payload_that_does_not_fit_keeps_the_newest_record() {
        let mut page = vec![0u8; PAGE_BYTES];
        put(&mut page, b"kept").unwrap();
        assert_eq!(
            put(&mut page, &[7u8; PAYLOAD_BYTES + 1]),
            Err(SaveError::TooLarge)
        );
        assert_eq!(
            save_with(&mut page, |_| Some(PAYLOAD_BYTES + 1)),
            Err(SaveError::TooLarge),
            "a fill that claims more than its buffer"
        );
        assert_eq!(bytes(&page).as_deref(), Some(&b"kept"[..]));
        put(&mut page, &[7u8; PAYLOAD_BYTES]).unwrap();
        assert_eq!(bytes(&page).map(|b| b.len()), Some(PAYLOAD_BYTES));
    }

    #[test]
    fn sequence_numbers_wrap_and_garbage_is_no_record() {
        let mut page = vec![0u8; PAGE_BYTES];
        put(&mut page, b"old").unwrap();
        // Pretend slot 0 is at u32::MAX: the next save, sequence 0, must be the newer one.
        page[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        put(&mut page, b"new").unwrap();
        assert_eq!(
            newest(&page).map(|(slot, sequence, _)| (slot, sequence)),
            Some((1, 0))
        );
        assert_eq!(bytes(&page).as_deref(), Some(&b"new"[..]));
        let mut garbage = vec![0xA5u8; PAGE_BYTES];
        assert_eq!(bytes(&garbage), None);
        garbage[..4].copy_from_slice(&MAGIC.to_le_bytes());
        garbage[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(bytes(&garbage), None, "a length past the slot");
        assert_eq!(put(&mut [0u8; 100], b"x"), Err(SaveError::BadPage));
        clear(&mut page);
        assert_eq!(bytes(&page), None);
    }

    #[test]
    fn a_kept_saver_writes_where_reading_the_page_would() {
        let mut page = vec![0u8; PAGE_BYTES];
        let mut saver = Saver::new(&page);
        for n in 0..5u8 {
            let mut fresh = page.clone();
            put(&mut fresh, &[n; 3]).unwrap();
            saver
                .save_with(&mut page, |buffer| {
                    buffer[..3].fill(n);
                    Some(3)
                })
                .unwrap();
            assert_eq!(page, fresh, "save {n}");
            assert_eq!(Saver::new(&page), saver);
        }
        // A payload that does not fit leaves the slot to the next save.
        let before = saver;
        assert_eq!(
            saver.save_with(&mut page, |_| None),
            Err(SaveError::TooLarge)
        );
        assert_eq!(saver, before);
        assert_eq!(bytes(&page).as_deref(), Some(&[4u8; 3][..]));
    }

    #[test]
    fn the_checksum_and_the_layout_are_the_formats() {
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c (the published test vector), folded to 32
        // bits; the word-wise values come from an independent implementation of the same rule.
        assert_eq!(fnv1a(b""), 0x4FD0_BFC1);
        assert_eq!(fnv1a(b"a"), 0x2962_30C0);
        assert_eq!(fnv1a(b"abcdefgh"), 0x37F8_083C);
        assert_eq!(fnv1a(b"abcdefghij"), 0xC869_92E7);
        assert_eq!(PAYLOAD_BYTES, 2048 - 16);
    }

    #[test]
    fn of_two_records_half_the_sequence_range_apart_the_first_slot_wins() {
        let mut page = vec![0u8; PAGE_BYTES];
        put(&mut page, b"zero").unwrap();
        put(&mut page, b"one").unwrap();
        // Slot 1 exactly 2^31 ahead of slot 0: not "ahead by less than half", so slot 0.
        page[4..8].copy_from_slice(&0u32.to_le_bytes());
        page[SLOT_BYTES + 4..SLOT_BYTES + 8].copy_from_slice(&(1u32 << 31).to_le_bytes());
        assert_eq!(bytes(&page).as_deref(), Some(&b"zero"[..]));
        page[SLOT_BYTES + 4..SLOT_BYTES + 8].copy_from_slice(&((1u32 << 31) - 1).to_le_bytes());
        assert_eq!(bytes(&page).as_deref(), Some(&b"one"[..]));
    }

    #[test]
    fn postcard_values_round_trip() {
        let mut page = vec![0u8; PAGE_BYTES];
        save(&mut page, &(3u32, 0xABCDu64, true)).unwrap();
        assert_eq!(load::<(u32, u64, bool)>(&page), Some((3, 0xABCD, true)));
        assert_eq!(
            load::<(u32, u64, bool, u64)>(&page),
            None,
            "a payload too short"
        );
    }
}
