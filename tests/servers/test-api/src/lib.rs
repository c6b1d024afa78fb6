//! The test protocol spoken by `hello-server` and its clients. Variant order is wire ABI.
#![no_std]
#![forbid(unsafe_code)]

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

/// Requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum Request {
    /// Add two numbers (idempotent).
    Add { a: u64, b: u64 },
    /// Increment the server's counter, which starts at [`COUNTER_START`] in its `.data`, and
    /// return the new value.
    Increment,
    /// Touch an address outside the server's VSpace.
    Crash,
}

/// Responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum Response {
    /// The sum.
    Sum(u64),
    /// The counter after incrementing.
    Count(u64),
}

/// The counter's initial value: non-zero, so it lives in `.data`, which a restart must reload.
pub const COUNTER_START: u64 = 100;

/// The protocol.
pub struct Test;

impl ipc::Protocol for Test {
    type Request = Request;
    type Response = Response;
    fn is_idempotent(request: &Request) -> bool {
        matches!(request, Request::Add { .. })
    }
}

ipc::assert_fits!(Request);
ipc::assert_fits!(Response);

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn every_variant_round_trips() {
        for request in [
            Request::Add { a: 1, b: u64::MAX },
            Request::Increment,
            Request::Crash,
        ] {
            let encoded = ipc::encode(&request).unwrap();
            assert_eq!(
                ipc::decode::<Request>(encoded.label, &encoded.words),
                Ok(request)
            );
        }
        for response in [Response::Sum(3), Response::Count(COUNTER_START)] {
            let encoded = ipc::encode(&response).unwrap();
            assert_eq!(
                ipc::decode::<Response>(encoded.label, &encoded.words),
                Ok(response)
            );
        }
    }
}
