//! The server side of typed IPC: the one serve loop every server runs (docs/ARCHITECTURE.md,
//! "Servers: one serve loop"). `userlib::server` binds it to the kernel; everything here is
//! pure and host-tested.
//!
//! The loop receives, decodes the request of the handler's [`Protocol`], hands it to the
//! [`Handler`] with the caller's badge, encodes the response and replies while receiving the
//! next message. A message that does not decode is answered with [`LABEL_MALFORMED`] (the caller
//! sees [`CallError::Rejected`](crate::CallError::Rejected)), reported once to the [`Link`], and
//! the loop goes on: no IPC input makes it panic.
//!
//! A device server also takes guest accesses the kernel sends it straight from a stage-2 MMIO
//! marker (label `abi::FaultKind::Mmio`, docs/MMIO.md): the loop hands them to
//! [`Handler::mmio`] and replies in the kernel's format.
//!
//! Fault injection for tests is the kernel's (`abi::InjectAt`, docs/TESTING.md): nothing in
//! the loop counts requests or crashes on purpose.

use crate::{Encoded, LABEL_MALFORMED, Malformed, Protocol, decode, encode};
use abi::message::MAX_MESSAGE_WORDS;
use abi::mmio::{MMIO_MESSAGE_WORDS, MmioAnswer, MmioMessage};
use abi::{FaultKind, MessageInfo};

/// Who sent a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The badge of the endpoint capability the caller called through (the manifest's client
    /// badge): the only unforgeable identity a request carries.
    pub badge: u64,
}

/// A handler's answer: the response, and at most one capability that travels with it (the
/// caller must have named a receive slot; `abi::message::MAX_EXTRA_CAPS` is 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply<R> {
    /// The response.
    pub response: R,
    /// The slot, in the server's CNode, of a capability to transfer with the reply.
    pub cap: Option<u64>,
}

impl<R> Reply<R> {
    /// A reply that transfers `cap` with `response`.
    pub const fn with_cap(response: R, cap: u64) -> Self {
        Self {
            response,
            cap: Some(cap),
        }
    }
}

impl<R> From<R> for Reply<R> {
    fn from(response: R) -> Self {
        Self {
            response,
            cap: None,
        }
    }
}

/// What one receive brought.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
// Servers have no heap to box the words in; one value lives on the loop's stack at a time.
#[allow(clippy::large_enum_variant)]
pub enum Received {
    /// A message from a caller, who waits for the reply.
    Message {
        /// The caller's badge.
        badge: u64,
        /// The message info (an error info means the kernel, not a caller, answered).
        info: MessageInfo,
        /// The message words (registers and IPC buffer).
        words: [u64; MAX_MESSAGE_WORDS],
    },
    /// A notification's word, delivered to the endpoint's receiver (seL4's bound notification,
    /// seL4 manual §5.3; docs/ARCHITECTURE.md "Bound notifications"): nobody waits for a reply.
    Notification {
        /// The notification word: the OR of the badges signalled since the last delivery.
        word: u64,
    },
}

/// A reply on its way out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The encoded body.
    pub message: Encoded,
    /// The capability to transfer with it, if any.
    pub cap: Option<u64>,
}

impl Outgoing {
    /// The answer to a message that was not a request of the protocol.
    pub const REJECTED: Self = Self {
        message: Encoded {
            label: LABEL_MALFORMED,
            length: 0,
            words: [0; MAX_MESSAGE_WORDS],
        },
        cap: None,
    };

    /// The message-info word to send it with.
    pub fn info(&self) -> MessageInfo {
        MessageInfo::new(
            self.message.label,
            u64::from(self.cap.is_some()),
            self.message.length as u64,
        )
    }
}

/// Why the loop answered [`Outgoing::REJECTED`] instead of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The receive came back as a kernel error (its label is the error code).
    KernelError {
        /// The `abi::KernelError` code.
        code: u64,
    },
    /// The body is not a postcard request of the protocol (or its label and length disagree).
    Malformed,
    /// The handler's response did not encode: a server bug, answered rather than panicking.
    Unencodable,
}

/// A server's request handler.
pub trait Handler {
    /// The protocol it serves.
    type Protocol: Protocol;
    /// Answers one well-formed request. Every validation beyond decoding is the handler's:
    /// bad values get the protocol's own error response, never a panic.
    fn handle(
        &mut self,
        caller: Caller,
        request: <Self::Protocol as Protocol>::Request,
    ) -> Reply<<Self::Protocol as Protocol>::Response>;
    /// A notification arrived on the endpoint ([`Received::Notification`]); nothing is
    /// replied. The default ignores it.
    fn notified(&mut self, word: u64) {
        let _ = word;
    }
    /// A guest access from the kernel's MMIO fast path, or `None` when its words are not a
    /// message the kernel sends. The default (a server with no device) is a bus error.
    fn mmio(&mut self, caller: Caller, access: Option<MmioMessage>) -> MmioAnswer {
        let _ = (caller, access);
        MmioAnswer::BusError
    }
}

/// The kernel side of the loop.
pub trait Link {
    /// Sends `reply` to the caller being served (receives only when `None`) and waits for the
    /// next message on the server's endpoint.
    fn reply_recv(&mut self, reply: Option<&Outgoing>) -> Received;
    /// A message was answered with a rejection (for a debug log line); the default does
    /// nothing.
    fn rejected(&mut self, caller: Caller, why: Rejection) {
        let _ = (caller, why);
    }
}

/// Decodes a received message as a request of `P`, or says why it is not one.
pub fn decode_request<P: Protocol>(
    info: MessageInfo,
    words: &[u64],
) -> Result<P::Request, Rejection> {
    if info.is_error() {
        return Err(Rejection::KernelError { code: info.label() });
    }
    let used = &words[..info.length().min(words.len())];
    decode::<P::Request>(info.label(), used).map_err(|Malformed| Rejection::Malformed)
}

/// Handles what one receive brought and returns the reply to send with the next receive
/// (`None` when nobody waits for one: a notification).
pub fn answer<H: Handler>(
    link: &mut impl Link,
    handler: &mut H,
    received: Received,
) -> Option<Outgoing> {
    let (badge, info, words) = match received {
        Received::Message { badge, info, words } => (badge, info, words),
        Received::Notification { word } => {
            handler.notified(word);
            return None;
        }
    };
    let caller = Caller { badge };
    if !info.is_error() && info.label() == FaultKind::Mmio as u64 {
        let mut message = [0; MMIO_MESSAGE_WORDS];
        message.copy_from_slice(&words[..MMIO_MESSAGE_WORDS]);
        let answer = handler.mmio(caller, MmioMessage::from_words(message));
        return Some(mmio_reply(answer));
    }
    let request = match decode_request::<H::Protocol>(info, &words) {
        Ok(request) => request,
        Err(why) => {
            link.rejected(caller, why);
            return Some(Outgoing::REJECTED);
        }
    };
    let reply = handler.handle(caller, request);
    match encode(&reply.response) {
        Ok(message) => Some(Outgoing {
            message,
            cap: reply.cap,
        }),
        Err(Malformed) => {
            link.rejected(caller, Rejection::Unencodable);
            Some(Outgoing::REJECTED)
        }
    }
}

/// The kernel's reply format for an MMIO answer: the label, and word 0 (a read's value).
fn mmio_reply(answer: MmioAnswer) -> Outgoing {
    let (label, value) = answer.reply();
    let mut words = [0; MAX_MESSAGE_WORDS];
    words[0] = value;
    Outgoing {
        message: Encoded {
            label,
            length: 1,
            words,
        },
        cap: None,
    }
}

/// The serve loop: receive, decode, handle, reply, forever.
pub fn serve<H: Handler>(link: &mut impl Link, handler: &mut H) -> ! {
    let mut reply = None;
    loop {
        let received = link.reply_recv(reply.as_ref());
        reply = answer(link, handler, received);
    }
}

#[cfg(test)]
mod tests;
