//! The decoder check every IPC protocol gets: a server decodes each request with
//! `ipc::server::decode_request` (through `ipc::decode`), a client each reply with
//! `ipc::interpret`, and neither may panic on any words. What decodes must be a value the
//! protocol can send: it encodes again, fits the message registers, and decodes to itself.

use core::fmt::Debug;

use abi::MessageInfo;
use abi::message::MAX_MESSAGE_WORDS;
use ipc::{MAX_MESSAGE_BYTES, Protocol};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::words_of;

/// Input layout: byte 0 chooses, the rest is the body. Bit 0 of byte 0: decode a reply rather
/// than a request. Bit 1: the label is not the body's length but byte 0 >> 2 (a label that
/// disagrees with the words, as a hostile caller may send).
pub fn check<P>(data: &[u8])
where
    P: Protocol,
    P::Request: PartialEq + Debug,
    P::Response: PartialEq + Debug,
{
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let label = if mode & 2 == 0 {
        body.len() as u64
    } else {
        u64::from(mode >> 2)
    };
    let words = words_of(body);
    let length = body.len().div_ceil(8).min(MAX_MESSAGE_WORDS);
    let info = MessageInfo::new(label, 0, length as u64);
    if mode & 1 == 0 {
        let decoded = ipc::server::decode_request::<P>(info, &words);
        // The serve loop's path and the plain decoder agree.
        assert_eq!(
            decoded.as_ref().ok(),
            ipc::decode::<P::Request>(label, &words[..length])
                .as_ref()
                .ok()
        );
        if let Ok(request) = decoded {
            let _ = P::is_idempotent(&request);
            round_trip(&request);
        }
    } else if let Ok(response) = ipc::interpret::<P::Response>(info, &words) {
        round_trip(&response);
    }
}

/// `value` encodes into at most the message registers and decodes to itself.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let encoded = ipc::encode(value).expect("a decoded value encodes again");
    assert!(encoded.label as usize <= MAX_MESSAGE_BYTES);
    assert!(encoded.length <= MAX_MESSAGE_WORDS);
    let again: T = ipc::decode(encoded.label, &encoded.words[..encoded.length])
        .expect("an encoded value decodes");
    assert_eq!(&again, value);
}
