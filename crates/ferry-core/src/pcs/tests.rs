//! Post-compromise security, tested over the shared two-engine helper.

use ferry_proto::MailboxId;
use rand_core::OsRng;

use super::*;
use crate::testing::pair;

/// Everything the relay stored, in order: (mailbox, seq, payload).
type Recording = Vec<(MailboxId, u64, Vec<u8>)>;

/// What a copy of a profile reads from the recorded traffic to its own
/// mailbox: the texts it can show.
fn read_with(copy: &mut Engine, rec: &Recording) -> Vec<String> {
    let mine = copy.inbound()[0].mailbox;
    let mut texts = Vec::new();
    for (mailbox, seq, payload) in rec {
        if *mailbox != mine {
            continue;
        }
        if let Ok(Event::Message { entry, .. }) =
            copy.receive(0, &mut OsRng, *mailbox, *seq, payload)
        {
            texts.push(entry.text);
        }
    }
    texts
}

fn epoch(e: &mut Engine) -> u64 {
    let c = e.state.contacts[0].clone();
    e.group_mut(&c).unwrap().0.epoch().as_u64()
}

/// A copy of either side's profile taken at T, run against everything
/// the relay stored after T, reads nothing sent after both sides'
/// next refresh (today, without refreshes, it read everything).
#[test]
fn a_stolen_copy_reads_nothing_after_both_sides_refresh() {
    let (mut a, mut b, mut relay) = pair("b", "a");
    let mut rec = Recording::new();
    let mut copy_a = Engine::load(a.save().unwrap()).unwrap();
    let mut copy_b = Engine::load(b.save().unwrap()).unwrap();
    let start = epoch(&mut a);
    // Sixty messages each way, one at a time.
    for i in 0..60 {
        a.send_text(100 + i, &mut OsRng, "b", &format!("a{i}"), false)
            .unwrap();
        relay.deliver_recorded(&mut a, &mut b, 100 + i, &mut rec);
        b.send_text(100 + i, &mut OsRng, "a", &format!("b{i}"), false)
            .unwrap();
        relay.deliver_recorded(&mut b, &mut a, 100 + i, &mut rec);
    }
    assert!(epoch(&mut a) > start, "no refresh in 60 messages");
    assert_eq!(epoch(&mut a), epoch(&mut b));
    // Both leaves were refreshed: what follows is out of the copies' reach.
    for i in 0..5 {
        a.send_text(500, &mut OsRng, "b", &format!("after a{i}"), false)
            .unwrap();
        let ev = relay.deliver_recorded(&mut a, &mut b, 500, &mut rec);
        assert!(matches!(&ev[..], [Event::Message { .. }]), "{ev:?}");
        b.send_text(500, &mut OsRng, "a", &format!("after b{i}"), false)
            .unwrap();
        let ev = relay.deliver_recorded(&mut b, &mut a, 500, &mut rec);
        assert!(matches!(&ev[..], [Event::Message { .. }]), "{ev:?}");
    }
    let by_b_copy = read_with(&mut copy_b, &rec);
    let by_a_copy = read_with(&mut copy_a, &rec);
    // The copies did read what came before the refresh: the recording
    // is sound.
    assert!(by_b_copy.contains(&"a0".to_owned()), "{by_b_copy:?}");
    assert!(by_a_copy.contains(&"b0".to_owned()), "{by_a_copy:?}");
    for t in by_b_copy.iter().chain(&by_a_copy) {
        assert!(!t.starts_with("after"), "a stolen copy read {t:?}");
    }
    // And not the last of the sixty either.
    assert!(!by_b_copy.contains(&"a59".to_owned()), "{by_b_copy:?}");
    assert!(!by_a_copy.contains(&"b59".to_owned()), "{by_a_copy:?}");
}

/// Messages sent in the epoch the other side just left still open.
#[test]
fn messages_in_flight_across_a_commit_still_arrive() {
    let (mut a, mut b, mut relay) = pair("b", "a");
    a.commit_update(10, &mut OsRng, 0).unwrap();
    let commit = a.outbox_first().unwrap();
    a.outbox_remove(commit.0);
    // B has not seen the commit yet and writes in the old epoch.
    b.send_text(11, &mut OsRng, "a", "sent before the commit", false)
        .unwrap();
    let ev = relay.deliver(&mut b, &mut a, 12);
    assert!(
        matches!(&ev[..], [Event::Message { entry, .. }] if entry.text == "sent before the commit"),
        "{ev:?}"
    );
    // Then the commit reaches B, and both go on in the new epoch.
    let Action::Send {
        mailbox, payload, ..
    } = commit.1
    else {
        panic!("not a send");
    };
    let seq = relay.next_seq(mailbox);
    let ev = b.receive(13, &mut OsRng, mailbox, seq, &payload).unwrap();
    assert!(matches!(ev, Event::Rekeyed { .. }), "{ev:?}");
    a.send_text(14, &mut OsRng, "b", "new epoch", false)
        .unwrap();
    let ev = relay.deliver(&mut a, &mut b, 15);
    assert!(matches!(&ev[..], [Event::Message { .. }]), "{ev:?}");
}

/// A stale copy of the inviter's phone commits in an epoch the real
/// inviter also committed in: whichever comes second, B quarantines
/// A instead of following either history silently.
#[test]
fn two_commits_for_one_epoch_quarantine_the_contact() {
    for stale_first in [false, true] {
        let (mut a, mut b, mut relay) = pair("b", "a");
        let mut stale = Engine::load(a.save().unwrap()).unwrap();
        a.commit_update(10, &mut OsRng, 0).unwrap();
        stale.commit_update(10, &mut OsRng, 0).unwrap();
        let (first, second) = if stale_first {
            (&mut stale, &mut a)
        } else {
            (&mut a, &mut stale)
        };
        let ev = relay.deliver(first, &mut b, 11);
        assert!(matches!(&ev[..], [Event::Rekeyed { .. }]), "{ev:?}");
        let ev = relay.deliver(second, &mut b, 12);
        assert!(
            matches!(
                &ev[..],
                [Event::Compromised {
                    reason: AlertReason::Fork,
                    ..
                }]
            ),
            "{ev:?}"
        );
        assert_eq!(
            b.contact("a").unwrap().compromised.map(|c| c.reason),
            Some(AlertReason::Fork)
        );
    }
}

/// A stale copy of the invitee's phone proposes a refresh first and the
/// inviter commits it; the phone's own proposal for that epoch then
/// reveals the fork.
#[test]
fn two_proposals_for_one_epoch_quarantine_the_contact() {
    let (mut a, mut b, mut relay) = pair("b", "a");
    let mut stale = Engine::load(b.save().unwrap()).unwrap();
    let epoch = epoch(&mut b);
    stale.propose_update(&mut OsRng, 0, epoch).unwrap();
    b.propose_update(&mut OsRng, 0, epoch).unwrap();
    let ev = relay.deliver(&mut stale, &mut a, 10);
    assert!(matches!(&ev[..], [Event::Rekeyed { .. }]), "{ev:?}");
    let ev = relay.deliver(&mut b, &mut a, 11);
    assert!(
        matches!(
            &ev[..],
            [Event::Compromised {
                reason: AlertReason::Fork,
                ..
            }]
        ),
        "{ev:?}"
    );
}

/// A canary deposited before a rotation still warns after it.
#[test]
fn an_alert_sealed_before_a_rotation_still_verifies() {
    let (mut a, mut b, mut relay) = pair("b", "a");
    let deposit = b
        .canary_deposits(5, &mut OsRng, crate::alert::CanaryScope::All)
        .unwrap()
        .remove(0);
    a.commit_update(10, &mut OsRng, 0).unwrap();
    relay.deliver(&mut a, &mut b, 11);
    // The rotation asks for the canary to be deposited again.
    assert!(b.canary_missing());
    let seq = relay.next_seq(deposit.mailbox);
    let ev = a
        .receive(20, &mut OsRng, deposit.mailbox, seq, &deposit.fire_payload)
        .unwrap();
    assert!(
        matches!(
            ev,
            Event::Compromised {
                reason: AlertReason::Duress,
                ..
            }
        ),
        "{ev:?}"
    );
}

/// A conversation where nobody writes is still refreshed once a day by the
/// long-running session.
#[test]
fn an_idle_conversation_is_refreshed_by_time() {
    let (mut a, mut b, mut relay) = pair("b", "a");
    let start = epoch(&mut a);
    assert_eq!(b.refresh_due(100, &mut OsRng), 0, "not due yet");
    let day = 2 + UPDATE_EVERY_SECS;
    assert_eq!(b.refresh_due(day, &mut OsRng), 1);
    assert_eq!(b.refresh_due(day, &mut OsRng), 0, "proposed once per epoch");
    // The proposal, and the mailbox moving along with the refresh.
    let ev = relay.deliver(&mut b, &mut a, day);
    assert!(
        matches!(&ev[..], [Event::Rekeyed { .. }, Event::Moved { .. }]),
        "{ev:?}"
    );
    // The commit, and the inviter's mailbox moving along too.
    let ev = relay.deliver(&mut a, &mut b, day);
    assert!(
        matches!(&ev[..], [Event::Rekeyed { .. }, Event::Moved { .. }]),
        "{ev:?}"
    );
    assert_eq!(epoch(&mut a), start + 1);
    assert_eq!(epoch(&mut b), start + 1);
    // Both refreshed: nothing more is due for a day.
    assert_eq!(a.refresh_due(day + 1, &mut OsRng), 0);
    assert_eq!(b.refresh_due(day + 1, &mut OsRng), 0);
}

/// A copy of either side's profile (a phone imaged at T) tries to write
/// into the conversation with the keys it holds. Once the real phone has
/// moved to a newer epoch (the inviter by its commit, the invitee by
/// writing in the new epoch), what the copy sends is refused as stale,
/// never shown as the contact's; before that it cannot be told apart (the
/// positive control).
#[test]
fn a_stolen_copy_cannot_write_once_the_phone_moved_on() {
    const T: u64 = 100_000;
    let (mut a, mut b, mut relay) = pair("b", "a");
    let mut copy_a = Engine::load(a.save().unwrap()).unwrap();
    let mut copy_b = Engine::load(b.save().unwrap()).unwrap();
    // Control: while nobody has moved on, the copy's message is taken.
    // (The copies write at times when no refresh of their own is due.)
    copy_a
        .send_text(10, &mut OsRng, "b", "control from a's copy", false)
        .unwrap();
    let ev = relay.deliver(&mut copy_a, &mut b, 10);
    assert!(
        matches!(&ev[..], [Event::Message { entry, .. }] if entry.text == "control from a's copy"),
        "{ev:?}"
    );
    // The inviter refreshes: its commit moves the conversation on.
    assert_eq!(a.refresh_all(T, &mut OsRng), 1);
    let ev = relay.deliver(&mut a, &mut b, T + 1);
    assert!(matches!(&ev[..], [Event::Rekeyed { .. }, ..]), "{ev:?}");
    copy_a
        .send_text(20, &mut OsRng, "b", "forged by a's copy", false)
        .unwrap();
    let ev = relay.deliver(&mut copy_a, &mut b, T + 2);
    assert!(
        matches!(
            &ev[..],
            [Event::Rejected {
                reason: RejectReason::StaleEpoch,
                ..
            }]
        ),
        "{ev:?}"
    );
    // The invitee writes in the new epoch; from then on its copy cannot.
    b.send_text(T + 3, &mut OsRng, "a", "b in the new epoch", false)
        .unwrap();
    let ev = relay.deliver(&mut b, &mut a, T + 3);
    assert!(
        ev.iter().any(
            |e| matches!(e, Event::Message { entry, .. } if entry.text == "b in the new epoch")
        ),
        "{ev:?}"
    );
    copy_b
        .send_text(30, &mut OsRng, "a", "forged by b's copy", false)
        .unwrap();
    let ev = relay.deliver(&mut copy_b, &mut a, T + 4);
    assert!(
        ev.iter().all(|e| !matches!(e, Event::Message { .. })),
        "the copy's message was shown: {ev:?}"
    );
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Event::Rejected {
                reason: RejectReason::StaleEpoch,
                ..
            }
        )),
        "{ev:?}"
    );
    // The conversation goes on.
    a.send_text(T + 5, &mut OsRng, "b", "still fine", false)
        .unwrap();
    let ev = relay.deliver(&mut a, &mut b, T + 5);
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Message { entry, .. } if entry.text == "still fine")),
        "{ev:?}"
    );
}
