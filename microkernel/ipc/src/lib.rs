//! Typed IPC over the kernel's message registers.
//!
//! A message body is a postcard-encoded value of a protocol's request or response enum, packed
//! little-endian into message words; the message label carries the byte count. The kernel moves
//! words; only the two ends interpret them. Every protocol lives in its own `*-api` crate and
//! implements [`Protocol`]; `assert_fits!` proves at compile time that its largest message
//! fits the message registers.
//!
//! Server death is part of every contract (Hubris's rule): a call returns
//! [`CallError::Restarted`] when the server restarted under it, and a protocol marks each
//! request idempotent or not, so [`call`] retries idempotent requests transparently.
//!
//! The server side is [`server`]: the one serve loop; [`state`] is the record a server keeps
//! across its restarts.
#![no_std]
#![forbid(unsafe_code)]

pub mod server;
pub mod state;

use abi::message::MAX_MESSAGE_WORDS;
use abi::{KernelError, MessageInfo};
use serde::{Serialize, de::DeserializeOwned};

/// Largest encoded message body, in bytes.
pub const MAX_MESSAGE_BYTES: usize = MAX_MESSAGE_WORDS * 8;
/// The label of a reply that says "your request did not decode".
pub const LABEL_MALFORMED: u64 = 0xFFFF;

/// A request/response protocol.
pub trait Protocol {
    /// The request enum.
    type Request: Serialize + DeserializeOwned;
    /// The response enum.
    type Response: Serialize + DeserializeOwned;
    /// Whether a request may be sent again after the server restarted (it has no effect that
    /// doubling would change, and takes no writable shared buffer).
    fn is_idempotent(request: &Self::Request) -> bool;
}

/// Proves at compile time that a type's largest postcard encoding fits a message.
#[macro_export]
macro_rules! assert_fits {
    ($ty:ty) => {
        const _: () = assert!(
            <$ty as postcard::experimental::max_size::MaxSize>::POSTCARD_MAX_SIZE
                <= $crate::MAX_MESSAGE_BYTES,
            "message type does not fit the IPC message registers"
        );
    };
}

/// An encoded message: label (byte count) and words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// The label: number of body bytes.
    pub label: u64,
    /// Number of words used.
    pub length: usize,
    /// The words.
    pub words: [u64; MAX_MESSAGE_WORDS],
}

impl Encoded {
    /// The message-info word for sending this message.
    pub fn info(&self) -> MessageInfo {
        MessageInfo::new(self.label, 0, self.length as u64)
    }
}

/// Why a body did not encode or decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed;

/// Encodes `value` into message words.
pub fn encode<T: Serialize>(value: &T) -> Result<Encoded, Malformed> {
    let mut bytes = [0u8; MAX_MESSAGE_BYTES];
    let used = postcard::to_slice(value, &mut bytes)
        .map_err(|_| Malformed)?
        .len();
    let mut words = [0u64; MAX_MESSAGE_WORDS];
    for (word, chunk) in words.iter_mut().zip(bytes[..used].chunks(8)) {
        let mut raw = [0u8; 8];
        raw[..chunk.len()].copy_from_slice(chunk);
        *word = u64::from_le_bytes(raw);
    }
    Ok(Encoded {
        label: used as u64,
        length: used.div_ceil(8),
        words,
    })
}

/// Decodes a message body from its label and words; anything inconsistent is `Malformed`.
pub fn decode<T: DeserializeOwned>(label: u64, words: &[u64]) -> Result<T, Malformed> {
    let used = usize::try_from(label).map_err(|_| Malformed)?;
    if used > MAX_MESSAGE_BYTES || used.div_ceil(8) > words.len() {
        return Err(Malformed);
    }
    let mut bytes = [0u8; MAX_MESSAGE_BYTES];
    for (chunk, word) in bytes.chunks_mut(8).zip(words) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    postcard::from_bytes(&bytes[..used]).map_err(|_| Malformed)
}

/// Why a call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The server restarted while the call was outstanding (or since the client last called);
    /// the request may or may not have been carried out.
    Restarted { generation: u64 },
    /// The server is down for good.
    ServerDown { generation: u64 },
    /// The server could not decode the request.
    Rejected,
    /// The reply did not decode.
    MalformedReply,
    /// The kernel refused the call (bad capability, missing right, ...).
    Kernel(KernelError),
}

impl core::fmt::Display for CallError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Restarted { generation } => {
                write!(f, "server restarted (generation {generation})")
            }
            Self::ServerDown { generation } => {
                write!(f, "server is down (generation {generation})")
            }
            Self::Rejected => write!(f, "server rejected a malformed request"),
            Self::MalformedReply => write!(f, "malformed reply"),
            Self::Kernel(error) => write!(f, "kernel error: {error}"),
        }
    }
}

/// The kernel side of IPC as the two loops need it: one call, one reply-and-receive.
pub trait Transport {
    /// Call: sends `message` through `endpoint`, returns the reply's info and words.
    fn call(&mut self, endpoint: u64, message: &Encoded)
    -> (MessageInfo, [u64; MAX_MESSAGE_WORDS]);
    /// Replies with `message` (or receives only, when `None`) and waits on `endpoint`; returns
    /// the badge, info and words of the next request.
    fn reply_recv(
        &mut self,
        endpoint: u64,
        message: Option<&Encoded>,
    ) -> (u64, MessageInfo, [u64; MAX_MESSAGE_WORDS]);
}

/// How often an idempotent request is retried after `Restarted` before giving up.
pub const RETRIES: usize = 3;

/// Calls a server: encodes, sends, decodes; retries idempotent requests after a restart.
pub fn call<P: Protocol>(
    transport: &mut impl Transport,
    endpoint: u64,
    request: &P::Request,
) -> Result<P::Response, CallError> {
    let message = encode(request).map_err(|_| CallError::Rejected)?;
    let mut attempt = 0;
    loop {
        let (info, words) = transport.call(endpoint, &message);
        match interpret::<P::Response>(info, &words) {
            Err(CallError::Restarted { .. }) if P::is_idempotent(request) && attempt < RETRIES => {
                attempt += 1
            }
            other => return other,
        }
    }
}

/// Turns a reply into the response or the typed error.
pub fn interpret<R: DeserializeOwned>(info: MessageInfo, words: &[u64]) -> Result<R, CallError> {
    if info.is_error() {
        let details = [words.first(), words.get(1), words.get(2)].map(|w| w.copied().unwrap_or(0));
        return Err(match KernelError::decode(info.label(), details) {
            Some(KernelError::Restarted { generation }) => CallError::Restarted { generation },
            Some(KernelError::ServerDown { generation }) => CallError::ServerDown { generation },
            Some(error) => CallError::Kernel(error),
            None => CallError::MalformedReply,
        });
    }
    if info.label() == LABEL_MALFORMED {
        return Err(CallError::Rejected);
    }
    decode(info.label(), &words[..info.length().min(words.len())])
        .map_err(|_| CallError::MalformedReply)
}

/// The server loop over a [`Transport`], without fault injection or capability transfer: the
/// closure gets the caller's badge and the request. A request that does not decode is answered
/// with [`LABEL_MALFORMED`] and the loop goes on; it never panics on input. It is
/// [`server::serve`], the one loop servers run (through `userlib::server`).
pub fn serve<P: Protocol>(
    transport: &mut impl Transport,
    endpoint: u64,
    handle: impl FnMut(u64, P::Request) -> P::Response,
) -> ! {
    let mut link = TransportLink {
        transport,
        endpoint,
    };
    let mut handler = ClosureHandler::<P, _> {
        handle,
        protocol: core::marker::PhantomData,
    };
    server::serve(&mut link, &mut handler)
}

/// [`serve`]'s closure as a [`server::Handler`].
struct ClosureHandler<P, F> {
    handle: F,
    protocol: core::marker::PhantomData<P>,
}

impl<P: Protocol, F: FnMut(u64, P::Request) -> P::Response> server::Handler
    for ClosureHandler<P, F>
{
    type Protocol = P;
    fn handle(
        &mut self,
        caller: server::Caller,
        request: P::Request,
    ) -> server::Reply<P::Response> {
        (self.handle)(caller.badge, request).into()
    }
}

/// A [`Transport`] as the loop's [`server::Link`]; [`serve`]'s handler transfers no
/// capability.
struct TransportLink<'a, T> {
    transport: &'a mut T,
    endpoint: u64,
}

impl<T: Transport> server::Link for TransportLink<'_, T> {
    fn reply_recv(&mut self, reply: Option<&server::Outgoing>) -> server::Received {
        let (badge, info, words) = self
            .transport
            .reply_recv(self.endpoint, reply.map(|reply| &reply.message));
        server::Received::Message { badge, info, words }
    }
}

#[cfg(test)]
mod tests;
