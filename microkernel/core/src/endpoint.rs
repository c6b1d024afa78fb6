//! Endpoints and reply objects: the passive halves of synchronous IPC.
//!
//! An endpoint holds one queue, of senders or of receivers (never both: a sender meeting a
//! waiting receiver, or the reverse, completes at once). It also carries the *generation* of
//! the server that receives on it: restarting that server bumps the generation, and a client
//! capability minted under an older generation is answered `Restarted` once, then refreshed.

use crate::TcbId;
use crate::queue::Queue;

/// Which kind of thread an endpoint's queue holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointState {
    /// Nobody waits.
    Idle,
    /// Senders wait for a receiver.
    Sending,
    /// Receivers wait for a sender.
    Receiving,
}

/// A synchronous endpoint.
#[derive(Clone, Copy, Debug)]
pub struct Endpoint {
    /// The waiting threads.
    pub queue: Queue,
    /// What kind of threads wait.
    pub state: EndpointState,
    /// How many times its server was restarted.
    pub generation: u32,
    /// Its server is down for good: sends are answered `ServerDown`.
    pub down: bool,
    /// The server that receives on it, if the manifest named one.
    pub server: Option<TcbId>,
}

impl Endpoint {
    /// An idle endpoint served by `server`.
    pub const fn new(server: Option<TcbId>) -> Self {
        Self {
            queue: Queue::EMPTY,
            state: EndpointState::Idle,
            generation: 0,
            down: false,
            server,
        }
    }
}

/// A reply object: holds the caller a server owes an answer to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// The blocked caller, if any.
    pub caller: Option<TcbId>,
}
