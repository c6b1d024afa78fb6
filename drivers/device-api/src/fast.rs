//! The kernel's MMIO fast path in this protocol's terms (docs/MMIO.md): a guest access the
//! kernel sends straight to a device server (`abi::mmio::MmioMessage`) is the same access as
//! the vmm's [`Request::Read`] or [`Request::Write`], and its answer is the same [`Response`]
//! without the line level, which the device then reports to the vmm itself ([`LineReport`]).

use crate::{Request, Response};
use abi::mmio::{MmioAnswer, MmioMessage};

/// The request a fast-path access is, or `None` for an offset no window has (beyond `u32`).
pub fn request_of(access: &MmioMessage) -> Option<Request> {
    let offset = u32::try_from(access.offset).ok()?;
    Some(if access.write {
        Request::Write {
            offset,
            width: access.width,
            value: access.value,
        }
    } else {
        Request::Read {
            offset,
            width: access.width,
        }
    })
}

/// The kernel's answer for a device's response (the line level is not the kernel's business).
pub const fn answer_of(response: Response) -> MmioAnswer {
    match response {
        Response::Value(value) | Response::ValueLine { value, .. } => MmioAnswer::Done(value),
        Response::Done | Response::DoneLine { .. } => MmioAnswer::Done(0),
        Response::BusError => MmioAnswer::BusError,
    }
}

/// What the vmm knows of a device's interrupt line. On the fast path, and after a doorbell,
/// the vmm sees none of the device's answers, so the device signals the vmm (its bound
/// notification `vmm-events`) when the line changed behind its back; the vmm then asks
/// [`Request::Line`]. The vmm is assumed to know "low" at start, as a fresh device's line is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineReport {
    known: bool,
}

impl LineReport {
    /// The vmm knows the line is low.
    pub const fn new() -> Self {
        Self { known: false }
    }

    /// The vmm learnt the line's level from an answer it received (or asked for).
    pub fn told(&mut self, response: &Response) {
        if let Some(level) = response.line() {
            self.known = level;
        }
    }

    /// The line is `level` after something the vmm did not see: whether to signal the vmm
    /// (only when that is news; the vmm's `Line` query then tells it, see [`Self::told`]).
    pub fn changed_behind_its_back(&mut self, level: bool) -> bool {
        let news = level != self.known;
        self.known = level;
        news
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accesses_become_requests_and_responses_answers() {
        let read = MmioMessage {
            offset: 0x34,
            width: 4,
            value: 0,
            write: false,
        };
        assert_eq!(
            request_of(&read),
            Some(Request::Read {
                offset: 0x34,
                width: 4
            })
        );
        let write = MmioMessage {
            value: 9,
            write: true,
            ..read
        };
        assert_eq!(
            request_of(&write),
            Some(Request::Write {
                offset: 0x34,
                width: 4,
                value: 9
            })
        );
        let far = MmioMessage {
            offset: 1 << 32,
            ..read
        };
        assert_eq!(request_of(&far), None);
        assert_eq!(
            answer_of(Response::ValueLine {
                value: 5,
                line: true
            }),
            MmioAnswer::Done(5)
        );
        assert_eq!(answer_of(Response::Value(6)), MmioAnswer::Done(6));
        assert_eq!(
            answer_of(Response::DoneLine { line: false }),
            MmioAnswer::Done(0)
        );
        assert_eq!(answer_of(Response::BusError), MmioAnswer::BusError);
    }

    #[test]
    fn the_vmm_is_signalled_only_for_news() {
        let mut report = LineReport::default();
        assert!(
            !report.changed_behind_its_back(false),
            "low is what it knows"
        );
        assert!(report.changed_behind_its_back(true));
        assert!(!report.changed_behind_its_back(true), "told once");
        report.told(&Response::DoneLine { line: false });
        assert!(
            report.changed_behind_its_back(true),
            "the vmm saw it go low"
        );
        report.told(&Response::Value(1));
        assert!(
            !report.changed_behind_its_back(true),
            "no level in that answer"
        );
        assert!(report.changed_behind_its_back(false));
    }
}
