#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::IpAddr;

use rand_core::OsRng;

use super::*;
use crate::engine::{CoreError, Direction, Engine, Event, HistoryEntry};
use crate::envelope::Body;
use crate::sdp::{SdpError, check_local};
use crate::testing::LoopRelay;

const RELAY: [u8; 4] = [127, 0, 0, 2];

fn relay_ip() -> IpAddr {
    RELAY.into()
}

fn offer() -> String {
    crate::sdp::tests::chromium_offer()
}

/// `a` invited `b` (a is the conversation's committer).
fn pair() -> (Engine, Engine, LoopRelay) {
    crate::testing::pair("b", "a")
}

fn update(ev: &[Event]) -> &CallUpdate {
    match ev {
        [Event::Call { update, .. }] => update,
        other => panic!("expected one call event, got {other:?}"),
    }
}

fn ended(ev: &[Event]) -> HistoryEntry {
    match update(ev) {
        CallUpdate::Ended(e) => e.clone(),
        other => panic!("expected the end, got {other:?}"),
    }
}

#[test]
fn a_call_rings_is_answered_and_leaves_one_entry_on_each_side() {
    let (mut a, mut b, mut relay) = pair();
    let (id, sent) = a
        .call_start(100, &mut OsRng, "b", true, &offer(), relay_ip())
        .unwrap();
    assert!(!sent.sdp.contains("127.0.0.1"));
    let ev = relay.deliver(&mut a, &mut b, 101);
    assert!(matches!(update(&ev), CallUpdate::Ringing { video: true }));
    let view = b.call().unwrap();
    assert_eq!(
        (view.id, view.phase, view.outgoing),
        (id, Phase::Ringing, false)
    );
    // Accepting hands the browser the checked offer; nothing is sent yet.
    let got = b.call_accept(102, &mut OsRng, "a", relay_ip()).unwrap();
    assert_eq!(got.sdp, sent.sdp);
    assert_eq!(got.fingerprint, sent.fingerprint);
    assert!(relay.deliver(&mut b, &mut a, 102).is_empty());
    b.call_answer(103, &mut OsRng, "a", &offer()).unwrap();
    let ev = relay.deliver(&mut b, &mut a, 104);
    assert!(matches!(update(&ev), CallUpdate::Answered(_)));
    assert_eq!(a.call().unwrap().phase, Phase::Answered);
    // Ninety seconds later a hangs up.
    let (_, mine) = a.call_end(194, &mut OsRng, "b", EndReason::HangUp).unwrap();
    let theirs = ended(&relay.deliver(&mut a, &mut b, 195));
    assert_eq!(
        mine.call,
        Some(CallLog {
            video: true,
            outcome: CallOutcome::Answered,
            secs: 90
        })
    );
    assert_eq!(mine.direction, Direction::Out);
    assert_eq!(theirs.direction, Direction::In);
    assert_eq!(theirs.call.unwrap().outcome, CallOutcome::Answered);
    assert_eq!(theirs.call.unwrap().secs, 92);
    // Call entries disappear with the conversation's timer.
    assert_eq!(mine.expires_at, Some(194 + crate::DEFAULT_TIMER_SECS));
    assert_eq!(theirs.expires_at, Some(195 + crate::DEFAULT_TIMER_SECS));
    assert!(a.call().is_none() && b.call().is_none());
}

#[test]
fn a_compromised_contact_can_neither_call_nor_be_called() {
    let (mut a, mut b, mut relay) = pair();
    b.alert(10, &mut OsRng, None, crate::AlertReason::Manual)
        .unwrap();
    let ev = relay.deliver(&mut b, &mut a, 11);
    assert!(matches!(&ev[..], [Event::Compromised { .. }]));
    // No call out, whatever the caller insists.
    assert!(matches!(
        a.call_start(12, &mut OsRng, "b", false, &offer(), relay_ip()),
        Err(CoreError::Compromised)
    ));
    assert!(a.call().is_none());
    // Their offer never rings: it is recorded, flagged, as refused.
    b.call_start(20, &mut OsRng, "a", true, &offer(), relay_ip())
        .unwrap();
    let entry = ended(&relay.deliver(&mut b, &mut a, 21));
    assert!(entry.flagged);
    assert_eq!(entry.call.unwrap().outcome, CallOutcome::Refused);
    assert!(a.call().is_none(), "nothing rings");
    assert!(matches!(
        a.call_accept(22, &mut OsRng, "b", relay_ip()),
        Err(CoreError::Call(CallError::NoCall))
    ));
}

#[test]
fn when_both_call_at_once_the_inviters_call_wins() {
    let (mut a, mut b, mut relay) = pair();
    let (a_id, _) = a
        .call_start(100, &mut OsRng, "b", false, &offer(), relay_ip())
        .unwrap();
    b.call_start(100, &mut OsRng, "a", false, &offer(), relay_ip())
        .unwrap();
    // a (the inviter) ignores b's offer; b drops its own and rings.
    let at_a = relay.deliver(&mut b, &mut a, 101);
    assert!(matches!(&at_a[..], [Event::Ignored { .. }]), "{at_a:?}");
    let at_b = relay.deliver(&mut a, &mut b, 101);
    assert!(matches!(update(&at_b), CallUpdate::Ringing { .. }));
    assert_eq!(a.call().unwrap().id, a_id);
    assert_eq!(b.call().unwrap().id, a_id);
    assert_eq!(b.call().unwrap().phase, Phase::Ringing);
}

#[test]
fn an_offer_fetched_late_is_a_missed_call_and_never_rings() {
    let (mut a, mut b, mut relay) = pair();
    a.call_start(100, &mut OsRng, "b", false, &offer(), relay_ip())
        .unwrap();
    let entry = ended(&relay.deliver(&mut a, &mut b, 100 + STALE_OFFER_SECS + 1));
    assert_eq!(entry.call.unwrap().outcome, CallOutcome::Missed);
    assert!(b.call().is_none());
}

#[test]
fn an_unanswered_call_ends_after_45_seconds_on_both_sides() {
    let (mut a, mut b, mut relay) = pair();
    a.call_start(100, &mut OsRng, "b", false, &offer(), relay_ip())
        .unwrap();
    relay.deliver(&mut a, &mut b, 101);
    assert!(a.call_tick(144, &mut OsRng).is_none());
    let (_, alias, mine) = a.call_tick(145, &mut OsRng).unwrap();
    assert_eq!(alias, "b");
    assert_eq!(mine.call.unwrap().outcome, CallOutcome::NoAnswer);
    let theirs = ended(&relay.deliver(&mut a, &mut b, 145));
    assert_eq!(theirs.call.unwrap().outcome, CallOutcome::Missed);
    assert!(b.call().is_none());
}

#[test]
fn declining_and_busy_reach_the_caller() {
    let (mut a, mut b, mut relay) = pair();
    a.call_start(100, &mut OsRng, "b", false, &offer(), relay_ip())
        .unwrap();
    relay.deliver(&mut a, &mut b, 101);
    let (_, e) = b
        .call_end(102, &mut OsRng, "a", EndReason::Declined)
        .unwrap();
    assert_eq!(e.call.unwrap().outcome, CallOutcome::Declined);
    let e = ended(&relay.deliver(&mut b, &mut a, 103));
    assert_eq!(e.call.unwrap().outcome, CallOutcome::Declined);

    // b is in a call (ringing from a); a second offer from a with another
    // id is answered busy.
    a.call_start(200, &mut OsRng, "b", false, &offer(), relay_ip())
        .unwrap();
    relay.deliver(&mut a, &mut b, 201);
    let cur = b.call.clone().unwrap();
    b.call = Some(Current {
        id: CallId([7; 16]),
        ..cur
    });
    a.call = None;
    a.call_start(202, &mut OsRng, "b", false, &offer(), relay_ip())
        .unwrap();
    let e = ended(&relay.deliver(&mut a, &mut b, 203));
    assert_eq!(e.call.unwrap().outcome, CallOutcome::Missed);
    let e = ended(&relay.deliver(&mut b, &mut a, 204));
    assert_eq!(e.call.unwrap().outcome, CallOutcome::Busy);
}

/// A hostile contact's descriptions: an offer or answer that would make
/// this side's browser reveal or reach an address ends the call instead.
#[test]
fn a_hostile_description_ends_the_call() {
    let (mut a, mut b, mut relay) = pair();
    // An offer with a host candidate: accepting refuses it and ends.
    let clean = check_local(&offer(), relay_ip()).unwrap().sdp;
    let c = b.established("a").unwrap();
    b.queue(
        100,
        &mut OsRng,
        &c,
        Body::Call {
            id: CallId([1; 16]),
            signal: Signal::Offer {
                video: false,
                sdp: clean.replacen("typ relay", "typ host", 1),
            },
        },
    )
    .unwrap();
    relay.deliver(&mut b, &mut a, 101);
    assert!(matches!(
        a.call_accept(102, &mut OsRng, "b", relay_ip()),
        Err(CoreError::Call(CallError::Sdp(SdpError::NotRelayed)))
    ));
    assert!(a.call().is_none());
    // The end was sent (b, which forged its offer without a call of its
    // own, has nothing to end).
    let ev = relay.deliver(&mut a, &mut b, 103);
    assert!(matches!(&ev[..], [Event::Ignored { .. }]), "{ev:?}");

    // An answer naming another server ends our call.
    a.call_start(200, &mut OsRng, "b", false, &offer(), relay_ip())
        .unwrap();
    relay.deliver(&mut a, &mut b, 201);
    b.call_accept(202, &mut OsRng, "a", relay_ip()).unwrap();
    let id = b.call().unwrap().id;
    b.call = None;
    b.queue(
        203,
        &mut OsRng,
        &c,
        Body::Call {
            id,
            signal: Signal::Answer {
                sdp: clean.replace("127.0.0.2", "203.0.113.5"),
            },
        },
    )
    .unwrap();
    let e = ended(&relay.deliver(&mut b, &mut a, 204));
    assert_eq!(e.call.unwrap().outcome, CallOutcome::Failed);
    assert!(a.call().is_none());
}

#[test]
fn one_call_at_a_time() {
    let (mut a, _b, _relay) = pair();
    a.call_start(100, &mut OsRng, "b", false, &offer(), relay_ip())
        .unwrap();
    assert!(matches!(
        a.call_start(101, &mut OsRng, "b", false, &offer(), relay_ip()),
        Err(CoreError::Call(CallError::Busy))
    ));
}

#[test]
fn signals_survive_the_wire_format() {
    use crate::envelope::AppMessage;
    for signal in [
        Signal::Offer {
            video: true,
            sdp: offer(),
        },
        Signal::Answer { sdp: "v=0".into() },
        Signal::Restart { sdp: "v=0".into() },
        Signal::RestartAnswer { sdp: "x".into() },
        Signal::End {
            reason: EndReason::Busy,
        },
    ] {
        let m = AppMessage {
            id: vec![1; 16],
            sent_at: 5,
            expire_after: None,
            body: Body::Call {
                id: CallId([3; 16]),
                signal: signal.clone(),
            },
        };
        let bytes = crate::wire::encode(&m).unwrap();
        let back = crate::wire::decode(&bytes).unwrap();
        assert!(
            matches!(back.body, Body::Call { id, signal: s } if id == CallId([3; 16]) && s == signal)
        );
        // Truncated anywhere: refused, never a panic.
        for n in 0..bytes.len() {
            assert!(crate::wire::decode(&bytes[..n]).is_none());
        }
    }
}
