//! Payloads damaged at random: whatever the bytes, both passes end with a verdict and never
//! panic (the test build checks every arithmetic overflow), and a refusal names a record.

use super::*;
use proptest::prelude::*;

/// Both passes over `payload`, and what the verdict says about it.
fn verdict(payload: &[u8]) -> Result<(), BootError> {
    let result = check_payload(payload);
    if let Err(error) = result {
        // Every refusal prints as one line starting with its record.
        let line = std::format!("{error}");
        assert!(!line.contains('\n'), "{line}");
        assert!(line.starts_with(&std::format!("{}: ", error.at)), "{line}");
    }
    result
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn flipped_bytes_of_a_good_payload_are_judged(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let mut payload = payload_of(&good());
        // The headers, the description and the servers' ELF are what the checks read.
        let header = bootdesc::PayloadHeader::parse(&payload).expect("a payload");
        let description_end = 16 + header.desc_len as usize;
        let elf = server_elf().len();
        for (at, byte) in flips {
            let at = at % (description_end + elf);
            let at = if at < description_end {
                at
            } else {
                header.images_offset as usize + at - description_end
            };
            payload[at] ^= byte | 1;
        }
        let _ = verdict(&payload);
    }

    #[test]
    fn any_description_is_judged(description in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut payload = bootdesc::PAYLOAD_MAGIC.to_vec();
        payload.extend((description.len() as u32).to_le_bytes());
        payload.extend(((16 + description.len()) as u32).to_le_bytes());
        payload.extend(&description);
        let _ = verdict(&payload);
    }

    #[test]
    fn a_truncated_payload_is_refused(len in 0usize..0x3000) {
        let payload = payload_of(&good());
        prop_assume!(len < payload.len());
        // Cut anywhere before the last image's end, something it names is missing.
        let last_image_end = payload.len() - (0x1000 - 0x100);
        prop_assert!(len >= last_image_end || verdict(&payload[..len]).is_err());
    }
}
