//! `abi::mmio::MmioMessage::from_words`, the device server's view of a fast-path access: only
//! the widths and flags the kernel sends decode, and what decodes is exactly those words.
#![no_main]

use abi::mmio::{FLAG_WRITE, MMIO_MESSAGE_WORDS, MmioMessage};

libfuzzer_sys::fuzz_target!(|words: [u64; MMIO_MESSAGE_WORDS]| {
    let decoded = MmioMessage::from_words(words);
    let valid = matches!(words[1], 1 | 2 | 4 | 8) && words[3] & !FLAG_WRITE == 0;
    assert_eq!(decoded.is_some(), valid, "{words:#x?}");
    if let Some(message) = decoded {
        assert_eq!(message.to_words(), words);
        // A device server turns it into a `device-api` request; no offset or width panics.
        match device_api::fast::request_of(&message) {
            Some(device_api::Request::Read { offset, width })
            | Some(device_api::Request::Write { offset, width, .. }) => {
                assert_eq!((u64::from(offset), width), (message.offset, message.width));
            }
            Some(other) => panic!("{other:?} from {message:?}"),
            None => assert!(message.offset > u64::from(u32::MAX)),
        }
    }
});
