//! `block-api` requests as their server decodes them and replies as the client does:
//! never a panic, and whatever decodes encodes back to itself (`hv_fuzz::protocol`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hv_fuzz::protocol::check::<block_api::Block>(data));
