//! The protocol every emulated-device server speaks with the vmm-server: one guest MMIO access
//! per call, at an offset inside the device's window. Variant order is wire ABI: append only.
//!
//! Server death: reads are not idempotent for devices with side effects on read (a UART's data
//! register pops its FIFO), so no access is retried automatically; a `Restarted` error reaches
//! the vmm, which answers the guest's access as a bus error or retries by policy. `Reset` is
//! the one request sent again after a restart (a restarted server is a device in its reset
//! state, so doing it twice is doing it once).
#![no_std]
#![forbid(unsafe_code)]

pub mod fast;

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
    /// No access: the VM is being reset (PSCI SYSTEM_RESET). The device goes back to the state
    /// its server starts in, as a power-on reset would put it, and answers once it is there:
    /// `DoneLine { line: false }` from a device with an interrupt line (a device out of reset
    /// has its line low, and saying so keeps every record of what the vmm knows of the line
    /// right, such as [`fast::LineReport`]), `Done` from one without. The vmm sends it to
    /// every device of the VM with the VCPU stopped, before the guest runs again
    /// (docs/VMM.md, "Reset").
    Reset,
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
    /// Only `Reset`: a second reset leaves the device where the first did, and a server that
    /// restarted under the call already starts in that state.
    fn is_idempotent(request: &Request) -> bool {
        matches!(request, Request::Reset)
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
            Request::Line,
            Request::Reset,
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

    /// The wire ABI: variants are numbered in declaration order, so an older device server
    /// still decodes the requests it knows, and `Reset` is appended after them.
    #[test]
    fn variant_numbers_are_the_wire_abi() {
        let first_word = |request: Request| ipc::encode(&request).unwrap().words[0] & 0xFF;
        assert_eq!(
            first_word(Request::Read {
                offset: 0,
                width: 1
            }),
            0
        );
        assert_eq!(
            first_word(Request::Write {
                offset: 0,
                width: 1,
                value: 0
            }),
            1
        );
        assert_eq!(first_word(Request::Line), 2);
        assert_eq!(first_word(Request::Reset), 3);
    }

    #[test]
    fn only_a_reset_is_sent_again_after_a_restart() {
        use ipc::Protocol;
        assert!(Mmio::is_idempotent(&Request::Reset));
        assert!(!Mmio::is_idempotent(&Request::Read {
            offset: 0,
            width: 4
        }));
        assert!(!Mmio::is_idempotent(&Request::Write {
            offset: 0,
            width: 4,
            value: 0
        }));
        assert!(!Mmio::is_idempotent(&Request::Line));
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
