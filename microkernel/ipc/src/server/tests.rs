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

/// A scripted kernel: hands out `incoming` in order, records every reply, rejection and crash.
/// A crash, and the end of the script, panic (the only way out of a `-> !`), caught by the test.
#[derive(Default)]
struct Script {
    incoming: Vec<Received>,
    replies: Vec<Option<Outgoing>>,
    rejections: Vec<(Caller, Rejection)>,
    crash: Option<(FaultPoint, u32)>,
}

impl Link for Script {
    fn reply_recv(&mut self, reply: Option<&Outgoing>) -> Received {
        self.replies.push(reply.copied());
        if self.incoming.is_empty() {
            panic!("script done");
        }
        self.incoming.remove(0)
    }
    fn crash(&mut self, point: FaultPoint, request: u32) -> ! {
        self.crash = Some((point, request));
        panic!("crashed");
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

/// Runs `serve` over the script until it ends or the server crashes.
fn run(incoming: Vec<Received>, faults: FaultPlan) -> (Script, Recorder) {
    let mut script = Script {
        incoming,
        ..Script::default()
    };
    let mut handler = Recorder::default();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        serve(&mut script, &mut handler, faults)
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
    let (script, handler) = run(
        std::vec![message(7, &Request::Echo(1)), message(9, &Request::Echo(2))],
        FaultPlan::NONE,
    );
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
    let (script, handler) = run(
        std::vec![
            garbage(3),
            too_long_label,
            kernel_error,
            message(5, &Request::Echo(8))
        ],
        FaultPlan::NONE,
    );
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
    let (script, _) = run(
        std::vec![
            message(1, &Request::Lend { slot: 40 }),
            message(1, &Request::Echo(0))
        ],
        FaultPlan::NONE,
    );
    let lent = script.replies[1].unwrap();
    assert_eq!(lent.cap, Some(40));
    assert_eq!(lent.info().extra_caps(), 1);
    assert_eq!(response(&script.replies[1]), Ok(Response::Lent));
    let plain = script.replies[2].unwrap();
    assert_eq!((plain.cap, plain.info().extra_caps()), (None, 0));
}

#[test]
fn a_response_that_does_not_encode_is_rejected_not_a_panic() {
    let (script, _) = run(
        std::vec![
            message(2, &Request::Text { len: 600 }),
            message(2, &Request::Text { len: 3 })
        ],
        FaultPlan::NONE,
    );
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
fn the_fault_plan_names_one_request_per_point_and_zero_means_never() {
    let plan = FaultPlan::from_manifest(3, 0);
    assert_eq!(plan.at_request, Some(3));
    assert_eq!(plan.after_request, None);
    assert!(plan.crashes(3, FaultPoint::BeforeHandling));
    assert!(!plan.crashes(3, FaultPoint::BeforeReply));
    assert!(!plan.crashes(2, FaultPoint::BeforeHandling));
    assert!(!plan.crashes(4, FaultPoint::BeforeHandling));
    let after = FaultPlan::from_manifest(0, 5);
    assert!(after.crashes(5, FaultPoint::BeforeReply));
    assert!(!after.crashes(5, FaultPoint::BeforeHandling));
    assert_eq!(FaultPlan::from_manifest(0, 0), FaultPlan::NONE);
    for request in [0, 1, u32::MAX] {
        for point in [FaultPoint::BeforeHandling, FaultPoint::BeforeReply] {
            assert!(!FaultPlan::NONE.crashes(request, point));
        }
    }
}

#[test]
fn a_crash_at_request_n_happens_before_the_handler_sees_it() {
    let requests = (1..=4).map(|n| message(1, &Request::Echo(n))).collect();
    let (script, handler) = run(requests, FaultPlan::from_manifest(3, 0));
    assert_eq!(script.crash, Some((FaultPoint::BeforeHandling, 3)));
    let handled: Vec<_> = handler.handled.iter().map(|(_, r)| r.clone()).collect();
    assert_eq!(handled, [Request::Echo(1), Request::Echo(2)]);
    // Requests 1 and 2 were answered; request 3 got no reply (the kernel answers `Restarted`).
    assert_eq!(script.replies.len(), 3);
}

#[test]
fn a_crash_after_request_n_happens_once_it_was_handled_and_before_its_reply() {
    let requests = (1..=4).map(|n| message(1, &Request::Echo(n))).collect();
    let (script, handler) = run(requests, FaultPlan::from_manifest(0, 2));
    assert_eq!(script.crash, Some((FaultPoint::BeforeReply, 2)));
    let handled: Vec<_> = handler.handled.iter().map(|(_, r)| r.clone()).collect();
    assert_eq!(handled, [Request::Echo(1), Request::Echo(2)]);
    assert_eq!(script.replies.len(), 2, "request 2 was never answered");
    assert_eq!(
        response(&script.replies[1]),
        Ok(Response::Echoed { badge: 1, n: 1 })
    );
}

#[test]
fn only_well_formed_requests_count_and_a_restarted_loop_counts_afresh() {
    let plan = FaultPlan::from_manifest(2, 0);
    let (script, handler) = run(
        std::vec![
            garbage(1),
            message(1, &Request::Echo(1)),
            Received::Notification { word: 0b10 },
            garbage(1),
            message(1, &Request::Echo(2)),
        ],
        plan,
    );
    assert_eq!(script.crash, Some((FaultPoint::BeforeHandling, 2)));
    assert_eq!(handler.handled, [(1, Request::Echo(1))]);
    // The restarted server's loop starts from nothing and crashes at its own second request.
    let (script, handler) = run(
        std::vec![message(1, &Request::Echo(3)), message(1, &Request::Echo(4))],
        plan,
    );
    assert_eq!(script.crash, Some((FaultPoint::BeforeHandling, 2)));
    assert_eq!(handler.handled, [(1, Request::Echo(3))]);
}

#[test]
fn a_notification_reaches_the_handler_and_nothing_is_replied() {
    let (script, handler) = run(
        std::vec![
            message(6, &Request::Echo(1)),
            Received::Notification { word: 0b101 },
            message(6, &Request::Echo(2)),
        ],
        FaultPlan::NONE,
    );
    assert_eq!(handler.notifications, [0b101]);
    assert!(script.replies[1].is_some(), "request 1 answered");
    assert_eq!(script.replies[2], None, "a notification waits for no reply");
    assert_eq!(
        response(&script.replies[3]),
        Ok(Response::Echoed { badge: 6, n: 2 })
    );
}

#[test]
fn serving_counts_requests_only() {
    let mut serving = Serving::new(FaultPlan::NONE);
    let mut script = Script::default();
    let mut handler = Recorder::default();
    assert!(
        serving
            .answer(&mut script, &mut handler, garbage(1))
            .is_some()
    );
    assert_eq!(serving.requests(), 0);
    let received = Received::Notification { word: 1 };
    assert_eq!(serving.answer(&mut script, &mut handler, received), None);
    assert_eq!(serving.requests(), 0);
    serving.answer(&mut script, &mut handler, message(1, &Request::Echo(0)));
    assert_eq!(serving.requests(), 1);
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
    let (script, handler) = run(
        std::vec![
            mmio_access(9, read.to_words()),
            mmio_access(9, write.to_words()),
            // Width 3: no message the kernel sends.
            mmio_access(9, [0, 3, 0, 0]),
            message(9, &Request::Echo(4)),
        ],
        FaultPlan::NONE,
    );
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

#[test]
fn kernel_mmio_accesses_count_as_requests_for_the_fault_plan() {
    let read = MmioMessage {
        offset: 0,
        width: 1,
        value: 0,
        write: false,
    }
    .to_words();
    let (script, handler) = run(
        std::vec![
            message(1, &Request::Echo(1)),
            mmio_access(1, read),
            mmio_access(1, read)
        ],
        FaultPlan::from_manifest(3, 0),
    );
    assert_eq!(script.crash, Some((FaultPoint::BeforeHandling, 3)));
    assert_eq!(
        handler.accesses.len(),
        1,
        "the third request never reached the handler"
    );
    let (script, handler) = run(
        std::vec![mmio_access(1, read), mmio_access(1, read)],
        FaultPlan::from_manifest(0, 2),
    );
    assert_eq!(script.crash, Some((FaultPoint::BeforeReply, 2)));
    assert_eq!(
        handler.accesses.len(),
        2,
        "handled, then crashed before the reply"
    );
    assert_eq!(
        script.replies.len(),
        2,
        "the second access was never answered"
    );
}

/// A device server's handler: its notifications (doorbells) are requests.
#[derive(Default)]
struct Doorbells(Recorder);

impl Handler for Doorbells {
    type Protocol = Test;
    const NOTIFICATIONS_ARE_REQUESTS: bool = true;
    fn handle(&mut self, caller: Caller, request: Request) -> Reply<Response> {
        self.0.handle(caller, request)
    }
    fn notified(&mut self, word: u64) {
        self.0.notified(word);
    }
}

fn run_doorbells(incoming: Vec<Received>, faults: FaultPlan) -> (Script, Doorbells) {
    let mut script = Script {
        incoming,
        ..Script::default()
    };
    let mut handler = Doorbells::default();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        serve(&mut script, &mut handler, faults)
    }));
    assert!(outcome.is_err(), "serve never returns");
    (script, handler)
}

#[test]
fn a_device_servers_doorbells_count_as_requests_at_both_crash_points() {
    let ring = || Received::Notification { word: 1 };
    // On taking the second doorbell: it never reaches the handler.
    let (script, handler) = run_doorbells(
        std::vec![message(1, &Request::Echo(1)), ring(), ring()],
        FaultPlan::from_manifest(3, 0),
    );
    assert_eq!(script.crash, Some((FaultPoint::BeforeHandling, 3)));
    assert_eq!(handler.0.notifications, [1]);
    // After serving the first doorbell, before anything else happens.
    let (script, handler) =
        run_doorbells(std::vec![ring(), ring()], FaultPlan::from_manifest(0, 1));
    assert_eq!(script.crash, Some((FaultPoint::BeforeReply, 1)));
    assert_eq!(handler.0.notifications, [1], "served, then crashed");
    // Other servers' notifications are not requests (the default).
    let (script, _) = run(
        std::vec![ring(), ring(), ring()],
        FaultPlan::from_manifest(1, 0),
    );
    assert_eq!(script.crash, None);
}
