//! The serve loop's one step, `ipc::server::answer`, over a scripted kernel: any sequence of
//! messages (well-formed requests, raw words, kernel errors, fast-path MMIO accesses,
//! notifications). Checked against a model of the loop after every message: what the handler
//! saw, what was replied and what was reported rejected.
#![no_main]

use abi::message::MAX_MESSAGE_WORDS;
use abi::mmio::{MMIO_MESSAGE_WORDS, MmioAnswer, MmioMessage, REPLY_BUS_ERROR, REPLY_DONE};
use abi::{FaultKind, MessageInfo};
use arbitrary::{Arbitrary, Unstructured};
use ipc::server::{
    Caller, Handler, Link, Outgoing, Received, Rejection, Reply, answer, decode_request,
};
use ipc::{CallError, Protocol};
use serde::{Deserialize, Serialize};

/// A protocol with every shape postcard decodes: integers of each width, signed varints,
/// options, tuples, nested enums, byte arrays, and a response too large to encode.
#[derive(Serialize, Deserialize, Arbitrary, Clone, Debug, PartialEq)]
enum Request {
    Echo(u64),
    /// Answered with `len` bytes of text: more than a message holds for `len` > 500.
    Text {
        len: u16,
    },
    /// Answered with a capability from `slot`.
    Lend {
        slot: u64,
    },
    Shapes(Option<(u8, bool, i32)>, [u8; 5], Inner),
}

#[derive(Serialize, Deserialize, Arbitrary, Clone, Debug, PartialEq)]
enum Inner {
    A,
    B(i16, u32),
    C { x: Option<u128> },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
enum Response {
    Echoed { badge: u64, n: u64 },
    Text(String),
    Lent,
    Shapes(Request),
}

struct Shapes;
impl Protocol for Shapes {
    type Request = Request;
    type Response = Response;
    fn is_idempotent(_: &Request) -> bool {
        true
    }
}

fn response_to(badge: u64, request: &Request) -> Reply<Response> {
    match request {
        Request::Echo(n) => Response::Echoed { badge, n: *n }.into(),
        Request::Text { len } => Response::Text("t".repeat(usize::from(*len))).into(),
        Request::Lend { slot } => Reply::with_cap(Response::Lent, *slot),
        Request::Shapes(..) => Response::Shapes(request.clone()).into(),
    }
}

/// What the loop handed the handler.
#[derive(Default)]
struct Recorder {
    handled: Vec<(u64, Request)>,
    notifications: Vec<u64>,
    accesses: Vec<(u64, Option<MmioMessage>)>,
}

impl Handler for Recorder {
    type Protocol = Shapes;
    fn handle(&mut self, caller: Caller, request: Request) -> Reply<Response> {
        self.handled.push((caller.badge, request.clone()));
        response_to(caller.badge, &request)
    }
    fn notified(&mut self, word: u64) {
        self.notifications.push(word);
    }
    fn mmio(&mut self, caller: Caller, access: Option<MmioMessage>) -> MmioAnswer {
        self.accesses.push((caller.badge, access));
        mmio_answer(access)
    }
}

/// Reads answer their offset; writes are done; what does not decode is a bus error.
fn mmio_answer(access: Option<MmioMessage>) -> MmioAnswer {
    match access {
        Some(access) if !access.write => MmioAnswer::Done(access.offset),
        Some(_) => MmioAnswer::Done(0),
        None => MmioAnswer::BusError,
    }
}

/// The kernel side: records rejections.
#[derive(Default)]
struct Script {
    rejections: Vec<(Caller, Rejection)>,
}

impl Link for Script {
    fn reply_recv(&mut self, _: Option<&Outgoing>) -> Received {
        unreachable!("the target calls answer, never the loop")
    }
    fn rejected(&mut self, caller: Caller, why: Rejection) {
        self.rejections.push((caller, why));
    }
}

/// One receive, built to reach every branch of the loop.
fn received(u: &mut Unstructured<'_>) -> arbitrary::Result<Received> {
    let badge = u64::arbitrary(u)?;
    Ok(match u.int_in_range(0u8..=4)? {
        0 => Received::Notification {
            word: u64::arbitrary(u)?,
        },
        1 => {
            let encoded =
                ipc::encode(&Request::arbitrary(u)?).unwrap_or(Outgoing::REJECTED.message);
            Received::Message {
                badge,
                info: encoded.info(),
                words: encoded.words,
            }
        }
        2 => {
            let mut words = [0; MAX_MESSAGE_WORDS];
            words[..MMIO_MESSAGE_WORDS].copy_from_slice(&[
                u64::arbitrary(u)?,
                u64::from(u.choose(&[1u8, 2, 4, 8, 0, 3, 16])?.to_owned()),
                u64::arbitrary(u)?,
                u64::from(u8::arbitrary(u)? % 3),
            ]);
            Received::Message {
                badge,
                info: MessageInfo::new(FaultKind::Mmio as u64, 0, MMIO_MESSAGE_WORDS as u64),
                words,
            }
        }
        3 => Received::Message {
            badge,
            info: MessageInfo::error(u64::from(u8::arbitrary(u)?), 3),
            words: [u64::arbitrary(u)?; MAX_MESSAGE_WORDS],
        },
        _ => {
            let info = MessageInfo::from_raw(u64::arbitrary(u)?);
            let bytes: Vec<u8> = Vec::arbitrary(u)?;
            Received::Message {
                badge,
                info,
                words: hv_fuzz::words_of(&bytes),
            }
        }
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let mut link = Script::default();
    let mut handler = Recorder::default();
    // Unstructured answers zeros once the data is used up: stop there.
    while !u.is_empty() {
        let Ok(message) = received(&mut u) else {
            return;
        };
        step(&mut link, &mut handler, message);
    }
});

/// Answers one message and checks the answer against the model.
fn step(link: &mut Script, handler: &mut Recorder, message: Received) {
    let before = (
        handler.handled.len(),
        handler.accesses.len(),
        handler.notifications.len(),
        link.rejections.len(),
    );
    let reply = answer(link, handler, message);
    let (badge, info, words) = match message {
        Received::Notification { word } => {
            assert_eq!(reply, None, "a notification is not answered");
            assert_eq!(handler.notifications.last(), Some(&word));
            return;
        }
        Received::Message { badge, info, words } => (badge, info, words),
    };
    assert_eq!(handler.notifications.len(), before.2);
    let is_mmio = !info.is_error() && info.label() == FaultKind::Mmio as u64;
    let decoded = decode_request::<Shapes>(info, &words);
    if !is_mmio && let Err(why) = decoded {
        // Not a request: rejected, reported once, nothing handled.
        assert_eq!(reply, Some(Outgoing::REJECTED));
        assert_eq!(link.rejections.last(), Some(&(Caller { badge }, why)));
        assert_eq!(link.rejections.len(), before.3 + 1);
        assert_eq!(handler.handled.len(), before.0);
        assert_eq!(handler.accesses.len(), before.1);
        return;
    }
    let handled = handler.handled.len() + handler.accesses.len() - before.0 - before.1;
    assert_eq!(handled, 1, "exactly one handler call per request");
    let reply = reply.expect("a message is answered");
    if is_mmio {
        let mut access = [0; MMIO_MESSAGE_WORDS];
        access.copy_from_slice(&words[..MMIO_MESSAGE_WORDS]);
        let access = MmioMessage::from_words(access);
        assert_eq!(handler.accesses.last(), Some(&(badge, access)));
        let (label, value) = mmio_answer(access).reply();
        assert!(label == REPLY_DONE || label == REPLY_BUS_ERROR);
        assert_eq!(
            (reply.message.label, reply.message.words[0]),
            (label, value)
        );
        assert_eq!(reply.cap, None);
        return;
    }
    let request = decoded.expect("checked above");
    assert_eq!(handler.handled.last(), Some(&(badge, request.clone())));
    let expected = response_to(badge, &request);
    match ipc::encode(&expected.response) {
        Ok(_) => {
            assert_eq!(reply.cap, expected.cap);
            assert_eq!(
                reply.info().extra_caps(),
                usize::from(expected.cap.is_some())
            );
            let answer: Result<Response, CallError> =
                ipc::interpret(reply.info(), &reply.message.words);
            assert_eq!(answer, Ok(expected.response));
        }
        Err(_) => {
            assert_eq!(reply, Outgoing::REJECTED);
            assert_eq!(
                link.rejections.last(),
                Some(&(Caller { badge }, Rejection::Unencodable))
            );
        }
    }
}
