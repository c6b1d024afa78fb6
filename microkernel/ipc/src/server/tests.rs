extern crate std;

use super::*;
use crate::CallError;
use serde::{Deserialize, Serialize};
use std::string::String;
use std::vec::Vec;

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
enum Request {
    /// Answered with the caller's badge and `n`.
    Echo(u32),
    /// Answered with a frame capability from slot `slot`.
    Lend { slot: u64 },
    /// Answered with `len` bytes of text: more than a message holds for `len` > 500.
    Text { len: usize },
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Response {
    Echoed { badge: u64, n: u32 },
    Lent,
    Text(String),
}

struct Test;
impl Protocol for Test {
    type Request = Request;
    type Response = Response;
    fn is_idempotent(_: &Request) -> bool {
        true
    }
}

/// Records what it handled: the effects a crash before the reply must not undo.
#[derive(Default)]
struct Recorder {
    handled: Vec<(u64, Request)>,
    notifications: Vec<u64>,
    accesses: Vec<(u64, Option<MmioMessage>)>,
}

impl Handler for Recorder {
    type Protocol = Test;
    fn handle(&mut self, caller: Caller, request: Request) -> Reply<Response> {
        self.handled.push((caller.badge, request.clone()));
        match request {
            Request::Echo(n) => Response::Echoed {
                badge: caller.badge,
                n,
            }
            .into(),
            Request::Lend { slot } => Reply::with_cap(Response::Lent, slot),
            Request::Text { len } => Response::Text("t".repeat(len)).into(),
        }
    }
    fn notified(&mut self, word: u64) {
        self.notifications.push(word);
    }
    /// Reads answer their offset + 1; writes are done; undecodable accesses are bus errors.
    fn mmio(&mut self, caller: Caller, access: Option<MmioMessage>) -> MmioAnswer {
        self.accesses.push((caller.badge, access));
        match access {
            Some(access) if !access.write => MmioAnswer::Done(access.offset + 1),
            Some(_) => MmioAnswer::Done(0),
            None => MmioAnswer::BusError,
        }
    }
}

/// A scripted kernel: hands out `incoming` in order, records every reply and rejection. The
/// end of the script panics (the only way out of a `-> !`), caught by the test.
#[derive(Default)]
struct Script {
    incoming: Vec<Received>,
    replies: Vec<Option<Outgoing>>,
    rejections: Vec<(Caller, Rejection)>,
}

impl Link for Script {
    fn reply_recv(&mut self, reply: Option<&Outgoing>) -> Received {
        self.replies.push(reply.copied());
        if self.incoming.is_empty() {
            panic!("script done");
        }
        self.incoming.remove(0)
    }
    fn rejected(&mut self, caller: Caller, why: Rejection) {
        self.rejections.push((caller, why));
    }
}

fn message(badge: u64, request: &Request) -> Received {
    let encoded = encode(request).unwrap();
    Received::Message {
        badge,
        info: encoded.info(),
        words: encoded.words,
    }
}

fn garbage(badge: u64) -> Received {
    Received::Message {
        badge,
        info: MessageInfo::new(40, 0, 4),
        words: [u64::MAX; MAX_MESSAGE_WORDS],
    }
}

/// Runs `serve` over the script until it ends.
fn run(incoming: Vec<Received>) -> (Script, Recorder) {
    let mut script = Script {
        incoming,
        ..Script::default()
    };
    let mut handler = Recorder::default();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        serve(&mut script, &mut handler)
    }));
    assert!(outcome.is_err(), "serve never returns");
    (script, handler)
}

fn response(reply: &Option<Outgoing>) -> Result<Response, CallError> {
    let reply = reply.expect("a reply");
    crate::interpret(reply.info(), &reply.message.words)
}

#[test]
fn requests_are_answered_with_the_callers_badge_and_the_first_call_only_receives() {
    let (script, handler) = run(std::vec![
        message(7, &Request::Echo(1)),
        message(9, &Request::Echo(2))
    ]);
    assert_eq!(script.replies.len(), 3);
    assert_eq!(script.replies[0], None);
    assert_eq!(
        response(&script.replies[1]),
        Ok(Response::Echoed { badge: 7, n: 1 })
    );
    assert_eq!(
        response(&script.replies[2]),
        Ok(Response::Echoed { badge: 9, n: 2 })
    );
    assert_eq!(handler.handled.len(), 2);
}

#[test]
fn malformed_messages_are_rejected_reported_once_and_serving_goes_on() {
    let too_long_label = Received::Message {
        badge: 4,
        info: MessageInfo::new(9999, 0, 0),
        words: [0; MAX_MESSAGE_WORDS],
    };
    let kernel_error = Received::Message {
        badge: 0,
        info: MessageInfo::error(3, 1),
        words: [0; MAX_MESSAGE_WORDS],
    };
    let (script, handler) = run(std::vec![
        garbage(3),
        too_long_label,
        kernel_error,
        message(5, &Request::Echo(8))
    ]);
    for reply in &script.replies[1..4] {
        assert_eq!(*reply, Some(Outgoing::REJECTED));
        assert_eq!(response(reply), Err(CallError::Rejected));
    }
    assert_eq!(
        script.rejections,
        [
            (Caller { badge: 3 }, Rejection::Malformed),
            (Caller { badge: 4 }, Rejection::Malformed),
            (Caller { badge: 0 }, Rejection::KernelError { code: 3 }),
        ]
    );
    assert_eq!(
        response(&script.replies[4]),
        Ok(Response::Echoed { badge: 5, n: 8 })
    );
    assert_eq!(handler.handled, [(5, Request::Echo(8))]);
}

#[test]
fn a_reply_carries_the_handlers_capability() {
    let (script, _) = run(std::vec![
        message(1, &Request::Lend { slot: 40 }),
        message(1, &Request::Echo(0))
    ]);
    let lent = script.replies[1].unwrap();
    assert_eq!(lent.cap, Some(40));
    assert_eq!(lent.info().extra_caps(), 1);
    assert_eq!(response(&script.replies[1]), Ok(Response::Lent));
    let plain = script.replies[2].unwrap();
    assert_eq!((plain.cap, plain.info().extra_caps()), (None, 0));
}

#[test]
fn a_response_that_does_not_encode_is_rejected_not_a_panic() {
    let (script, _) = run(std::vec![
        message(2, &Request::Text { len: 600 }),
        message(2, &Request::Text { len: 3 })
    ]);
    assert_eq!(script.replies[1], Some(Outgoing::REJECTED));
    assert_eq!(
        script.rejections,
        [(Caller { badge: 2 }, Rejection::Unencodable)]
    );
    assert_eq!(
        response(&script.replies[2]),
        Ok(Response::Text("ttt".into()))
    );
}

#[test]
fn a_notification_reaches_the_handler_and_nothing_is_replied() {
    let (script, handler) = run(std::vec![
        message(6, &Request::Echo(1)),
        Received::Notification { word: 0b101 },
        message(6, &Request::Echo(2)),
    ]);
    assert_eq!(handler.notifications, [0b101]);
    assert!(script.replies[1].is_some(), "request 1 answered");
    assert_eq!(script.replies[2], None, "a notification waits for no reply");
    assert_eq!(
        response(&script.replies[3]),
        Ok(Response::Echoed { badge: 6, n: 2 })
    );
}

fn mmio_access(badge: u64, words: [u64; abi::mmio::MMIO_MESSAGE_WORDS]) -> Received {
    let mut all = [0; MAX_MESSAGE_WORDS];
    all[..words.len()].copy_from_slice(&words);
    Received::Message {
        badge,
        info: MessageInfo::new(abi::FaultKind::Mmio as u64, 0, words.len() as u64),
        words: all,
    }
}

#[test]
fn kernel_mmio_accesses_reach_the_handler_and_are_answered_in_the_kernels_format() {
    let read = MmioMessage {
        offset: 0x18,
        width: 4,
        value: 0,
        write: false,
    };
    let write = MmioMessage {
        offset: 0x50,
        width: 4,
        value: 1,
        write: true,
    };
    let (script, handler) = run(std::vec![
        mmio_access(9, read.to_words()),
        mmio_access(9, write.to_words()),
        // Width 3: no message the kernel sends.
        mmio_access(9, [0, 3, 0, 0]),
        message(9, &Request::Echo(4)),
    ]);
    assert_eq!(
        handler.accesses,
        [(9, Some(read)), (9, Some(write)), (9, None)]
    );
    let reply = |n: usize| {
        let outgoing = script.replies[n].expect("a reply");
        let info = outgoing.info();
        (info.label(), info.length(), outgoing.message.words[0])
    };
    assert_eq!(reply(1), (abi::mmio::REPLY_DONE, 1, 0x19));
    assert_eq!(reply(2), (abi::mmio::REPLY_DONE, 1, 0));
    assert_eq!(reply(3), (abi::mmio::REPLY_BUS_ERROR, 1, 0));
    assert_eq!(
        response(&script.replies[4]),
        Ok(Response::Echoed { badge: 9, n: 4 }),
        "the protocol is served beside the accesses"
    );
}
