//! The protocol every emulated-device server speaks with the vmm-server: one guest MMIO access
//! per call, at an offset inside the device's window. Variant order is wire ABI: append only.
//!
//! Server death: reads are not idempotent for devices with side effects on read (a UART's data
//! register pops its FIFO), so neither request is retried automatically; a `Restarted` error
//! reaches the vmm, which answers the guest's access as a bus error or retries by policy.
#![no_std]
#![forbid(unsafe_code)]

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

/// A guest access to a device register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum Request {
    /// Read `width` bytes (1, 2, 4 or 8) at `offset` from the window's base.
    Read { offset: u32, width: u8 },
    /// Write the low `width` bytes of `value` at `offset`.
    Write { offset: u32, width: u8, value: u64 },
    /// No access: the level of the device's interrupt line now (the vmm asks after the device
    /// signalled that it changed on its own, e.g. input arrived). Answered `DoneLine`.
    Line,
}

/// The device's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum Response {
    /// The value read (zero-extended to 64 bits).
    Value(u64),
    /// The write was accepted.
    Done,
    /// No register there, or a width the register does not take: the vmm injects a bus error.
    BusError,
    /// The value read, and the level of the device's interrupt line after the access (a
    /// device with an interrupt answers this instead of `Value`; the vmm drives the line's
    /// virtual interrupt from it).
    ValueLine { value: u64, line: bool },
    /// The write was accepted; the interrupt line's level after it.
    DoneLine { line: bool },
}

impl Response {
    /// The device's interrupt line level, when the answer carries one.
    pub const fn line(&self) -> Option<bool> {
        match *self {
            Self::ValueLine { line, .. } | Self::DoneLine { line } => Some(line),
            Self::Value(_) | Self::Done | Self::BusError => None,
        }
    }
}

/// The protocol.
pub struct Mmio;

impl ipc::Protocol for Mmio {
    type Request = Request;
    type Response = Response;
    fn is_idempotent(_: &Request) -> bool {
        false
    }
}

ipc::assert_fits!(Request);
ipc::assert_fits!(Response);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_round_trips() {
        for request in [
            Request::Read {
                offset: 0x18,
                width: 4,
            },
            Request::Write {
                offset: 0,
                width: 1,
                value: u64::from(b'x'),
            },
        ] {
            let encoded = ipc::encode(&request).unwrap();
            assert_eq!(
                ipc::decode::<Request>(encoded.label, &encoded.words),
                Ok(request)
            );
        }
        for response in [
            Response::Value(0x90),
            Response::Done,
            Response::BusError,
            Response::ValueLine {
                value: u64::MAX,
                line: true,
            },
            Response::DoneLine { line: false },
        ] {
            let encoded = ipc::encode(&response).unwrap();
            assert_eq!(
                ipc::decode::<Response>(encoded.label, &encoded.words),
                Ok(response)
            );
        }
    }

    #[test]
    fn only_the_line_variants_carry_a_level() {
        assert_eq!(
            Response::ValueLine {
                value: 1,
                line: true
            }
            .line(),
            Some(true)
        );
        assert_eq!(Response::DoneLine { line: false }.line(), Some(false));
        assert_eq!(Response::Value(1).line(), None);
        assert_eq!(Response::Done.line(), None);
        assert_eq!(Response::BusError.line(), None);
    }
}
