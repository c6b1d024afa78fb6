//! What the fuzz targets share: turning fuzzer bytes into message words, and the checks every
//! IPC protocol's decoder must pass. Each target in `fuzz_targets/` is a thin `fuzz_target!`
//! over one of these or over its own harness; docs/TESTING.md ("Fuzzing") lists what each
//! asserts.

pub mod protocol;

use abi::message::MAX_MESSAGE_WORDS;

/// `bytes` packed little-endian into message words, as `ipc::encode` packs a body; bytes past
/// the last word are dropped, missing ones are zero.
pub fn words_of(bytes: &[u8]) -> [u64; MAX_MESSAGE_WORDS] {
    let mut words = [0u64; MAX_MESSAGE_WORDS];
    for (word, chunk) in words.iter_mut().zip(bytes.chunks(8)) {
        let mut raw = [0u8; 8];
        raw[..chunk.len()].copy_from_slice(chunk);
        *word = u64::from_le_bytes(raw);
    }
    words
}
