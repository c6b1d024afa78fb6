extern crate std;

use super::*;
use serde::Deserialize;
use std::string::String;

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
enum Request {
    Ping(u32),
    Store { key: u8, text: String },
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Response {
    Pong(u32),
    Stored,
}

struct Test;
impl Protocol for Test {
    type Request = Request;
    type Response = Response;
    fn is_idempotent(request: &Request) -> bool {
        matches!(request, Request::Ping(_))
    }
}

#[test]
fn every_shape_round_trips_through_words() {
    for request in [
        Request::Ping(0),
        Request::Ping(u32::MAX),
        Request::Store {
            key: 7,
            text: "x".repeat(300),
        },
    ] {
        let encoded = encode(&request).unwrap();
        assert_eq!(encoded.length, (encoded.label as usize).div_ceil(8));
        assert_eq!(
            decode::<Request>(encoded.label, &encoded.words[..encoded.length]),
            Ok(request)
        );
    }
    assert!(
        encode(&Request::Store {
            key: 1,
            text: "y".repeat(600)
        })
        .is_err(),
        "too big for a message"
    );
}

#[test]
fn inconsistent_labels_and_garbage_are_malformed() {
    let encoded = encode(&Request::Ping(5)).unwrap();
    assert_eq!(
        decode::<Request>(encoded.label + 8, &encoded.words[..encoded.length]),
        Err(Malformed)
    );
    assert_eq!(decode::<Request>(u64::MAX, &encoded.words), Err(Malformed));
    assert_eq!(
        decode::<Request>(3, &[0xFFFF_FFFF_FFFF_FFFF]),
        Err(Malformed)
    );
}

/// A transport whose server answers `Restarted` a given number of times before replying.
struct Flaky {
    restarts_left: usize,
    calls: usize,
}

impl Transport for Flaky {
    fn call(
        &mut self,
        _endpoint: u64,
        message: &Encoded,
    ) -> (MessageInfo, [u64; MAX_MESSAGE_WORDS]) {
        self.calls += 1;
        let mut words = [0; MAX_MESSAGE_WORDS];
        if self.restarts_left > 0 {
            self.restarts_left -= 1;
            words[0] = 1;
            return (
                MessageInfo::error(KernelError::Restarted { generation: 1 }.code(), 1),
                words,
            );
        }
        let request: Request = decode(message.label, &message.words).unwrap();
        let response = match request {
            Request::Ping(n) => Response::Pong(n + 1),
            Request::Store { .. } => Response::Stored,
        };
        let reply = encode(&response).unwrap();
        (reply.info(), reply.words)
    }
    fn reply_recv(
        &mut self,
        _: u64,
        _: Option<&Encoded>,
    ) -> (u64, MessageInfo, [u64; MAX_MESSAGE_WORDS]) {
        unreachable!()
    }
}

#[test]
fn idempotent_requests_are_retried_after_a_restart_and_others_report_it() {
    let mut transport = Flaky {
        restarts_left: 2,
        calls: 0,
    };
    assert_eq!(
        call::<Test>(&mut transport, 1, &Request::Ping(41)),
        Ok(Response::Pong(42))
    );
    assert_eq!(transport.calls, 3);
    let mut transport = Flaky {
        restarts_left: 1,
        calls: 0,
    };
    let store = Request::Store {
        key: 1,
        text: String::new(),
    };
    assert_eq!(
        call::<Test>(&mut transport, 1, &store),
        Err(CallError::Restarted { generation: 1 })
    );
    let mut transport = Flaky {
        restarts_left: 10,
        calls: 0,
    };
    assert_eq!(
        call::<Test>(&mut transport, 1, &Request::Ping(1)),
        Err(CallError::Restarted { generation: 1 })
    );
    assert_eq!(transport.calls, RETRIES + 1, "bounded retries");
}

#[test]
fn kernel_errors_and_rejections_are_typed() {
    let words = [0u64; MAX_MESSAGE_WORDS];
    let down = MessageInfo::error(KernelError::ServerDown { generation: 0 }.code(), 1);
    assert_eq!(
        interpret::<Response>(down, &words),
        Err(CallError::ServerDown { generation: 0 })
    );
    let mut slot = words;
    slot[0] = 9;
    let missing = MessageInfo::error(KernelError::InvalidCapability { slot: 9 }.code(), 1);
    assert_eq!(
        interpret::<Response>(missing, &slot),
        Err(CallError::Kernel(KernelError::InvalidCapability {
            slot: 9
        }))
    );
    assert_eq!(
        interpret::<Response>(MessageInfo::new(LABEL_MALFORMED, 0, 0), &words),
        Err(CallError::Rejected)
    );
    assert_eq!(
        interpret::<Response>(MessageInfo::new(2, 0, 1), &[0xFF; MAX_MESSAGE_WORDS]),
        Err(CallError::MalformedReply)
    );
}

/// A scripted client for the server loop: feeds requests, records replies, stops the loop by
/// panicking at the end of the script (caught by the test).
struct Script {
    incoming: std::vec::Vec<(MessageInfo, [u64; MAX_MESSAGE_WORDS])>,
    replies: std::vec::Vec<Option<Encoded>>,
}

impl Transport for Script {
    fn call(&mut self, _: u64, _: &Encoded) -> (MessageInfo, [u64; MAX_MESSAGE_WORDS]) {
        unreachable!()
    }
    fn reply_recv(
        &mut self,
        _: u64,
        message: Option<&Encoded>,
    ) -> (u64, MessageInfo, [u64; MAX_MESSAGE_WORDS]) {
        self.replies.push(message.copied());
        if self.incoming.is_empty() {
            panic!("script done");
        }
        let (info, words) = self.incoming.remove(0);
        (7, info, words)
    }
}

#[test]
fn the_server_loop_answers_malformed_requests_and_keeps_serving() {
    let good = encode(&Request::Ping(1)).unwrap();
    let mut script = Script {
        incoming: std::vec![
            (MessageInfo::new(40, 0, 1), [0xFF; MAX_MESSAGE_WORDS]),
            (good.info(), good.words),
        ],
        replies: std::vec![],
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        serve::<Test>(&mut script, 1, |badge, request| {
            assert_eq!(badge, 7);
            match request {
                Request::Ping(n) => Response::Pong(n),
                Request::Store { .. } => Response::Stored,
            }
        })
    }));
    assert!(result.is_err());
    assert_eq!(script.replies.len(), 3);
    assert_eq!(script.replies[0], None, "first call only receives");
    assert_eq!(script.replies[1].unwrap().label, LABEL_MALFORMED);
    let reply = script.replies[2].unwrap();
    assert_eq!(
        decode::<Response>(reply.label, &reply.words),
        Ok(Response::Pong(1))
    );
}
