//! Mailbox moves over the shared two-engine helper.

use ferry_proto::MailboxId;
use rand_core::OsRng;

use super::*;
use crate::testing::pair;

/// Long after the pair was set up (a refresh by time is due).
const T: u64 = 100_000;

/// The mailboxes `e` sends to, in the order queued.
fn sends_to(e: &Engine) -> Vec<MailboxId> {
    e.outbox()
        .into_iter()
        .filter_map(|a| match a {
            Action::Send { mailbox, .. } => Some(mailbox),
            _ => None,
        })
        .collect()
}

fn deleted(e: &Engine) -> Vec<MailboxId> {
    e.outbox()
        .into_iter()
        .filter_map(|a| match a {
            Action::DeleteMailbox { mailbox, .. } => Some(mailbox),
            _ => None,
        })
        .collect()
}

fn texts(ev: &[Event]) -> Vec<String> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Message { entry, .. } => Some(entry.text.clone()),
            _ => None,
        })
        .collect()
}

fn mailboxes(e: &Engine) -> Vec<MailboxId> {
    e.inbound().iter().map(|m| m.mailbox).collect()
}

/// The attack: a copy of the profile (the device taken over) holds the
/// recipient key of every mailbox it had, and the relay lets that key
/// fetch and delete. After a move, what the contact sends goes to a
/// mailbox the copy has no key for, and the old one is deleted.
#[test]
fn after_a_move_the_contact_writes_where_an_old_copy_has_no_key() {
    for inviter_moves in [true, false] {
        let (a, b, mut relay) = pair("b", "a");
        let (mut mover, mut other) = if inviter_moves { (a, b) } else { (b, a) };
        let peer = if inviter_moves { "b" } else { "a" };
        let copy = Engine::load(mover.save().unwrap()).unwrap();
        let old = mailboxes(&mover);
        // The contact queued something before it heard of the move.
        let me = if inviter_moves { "a" } else { "b" };
        other
            .send_text(T + 10, &mut OsRng, me, "before", false)
            .unwrap();
        assert_eq!(mover.refresh_all(T + 10, &mut OsRng), 1);
        assert_eq!(mover.move_mailboxes(T + 10, &mut OsRng), 1);
        let new = mover.inbound().last().unwrap().clone();
        assert_eq!(mailboxes(&mover), vec![old[0], new.mailbox]);
        assert!(!old.contains(&new.mailbox));
        assert!(
            copy.inbound().iter().all(|m| m.recipient != new.recipient),
            "the copy holds the new mailbox's key"
        );
        // The relay creates the mailbox before the contact can hear of it.
        let queued = mover.outbox();
        let created = queued
            .iter()
            .position(
                |a| matches!(a, Action::CreateMailbox { mailbox, .. } if *mailbox == new.mailbox),
            )
            .unwrap();
        assert_eq!(created, queued.len() - 2, "created, then announced");
        // Old first: what the contact sent before the move still reads.
        let ev = relay.deliver(&mut other, &mut mover, T + 11);
        assert_eq!(texts(&ev), vec!["before".to_owned()], "{ev:?}");
        let ev = relay.deliver(&mut mover, &mut other, T + 12);
        assert!(
            ev.iter().any(|e| matches!(e, Event::Moved { .. })),
            "{ev:?}"
        );
        // The contact's refresh (a commit or a proposal answered by a
        // commit) may still go out; after the move, everything goes to
        // the new mailbox.
        relay.deliver(&mut other, &mut mover, T + 13);
        relay.deliver(&mut mover, &mut other, T + 13);
        other
            .send_text(T + 14, &mut OsRng, me, "after", false)
            .unwrap();
        assert_eq!(sends_to(&other), vec![new.mailbox]);
        let ev = relay.deliver(&mut other, &mut mover, T + 15);
        assert_eq!(texts(&ev), vec!["after".to_owned()], "{ev:?}");
        // Switched and read to the end: the old mailbox is deleted.
        assert_eq!(mover.retire_moved(&[]), 1);
        assert_eq!(deleted(&mover), vec![old[0]]);
        assert_eq!(mailboxes(&mover), vec![new.mailbox]);
        // Both ways go on, across further refreshes.
        for i in 0..60 {
            mover
                .send_text(T + 20 + i, &mut OsRng, peer, &format!("m{i}"), false)
                .unwrap();
            let ev = relay.deliver(&mut mover, &mut other, T + 20 + i);
            assert_eq!(texts(&ev), vec![format!("m{i}")], "{ev:?}");
            other
                .send_text(T + 20 + i, &mut OsRng, me, &format!("o{i}"), false)
                .unwrap();
            let ev = relay.deliver(&mut other, &mut mover, T + 20 + i);
            assert_eq!(texts(&ev), vec![format!("o{i}")], "{ev:?}");
        }
    }
}

/// Until something arrives in the new mailbox, the old one stays: the
/// contact may be offline with messages queued for it.
#[test]
fn the_old_mailbox_stays_until_the_contact_has_switched() {
    let (mut a, mut b, mut relay) = pair("b", "a");
    let old = mailboxes(&a)[0];
    a.move_mailboxes(10, &mut OsRng);
    assert_eq!(a.retire_moved(&[]), 0);
    // Something arrives in the old mailbox (queued before the contact
    // heard of the move): not a switch.
    b.send_text(11, &mut OsRng, "a", "queued before", false)
        .unwrap();
    assert_eq!(sends_to(&b), vec![old]);
    let ev = relay.deliver(&mut b, &mut a, 11);
    assert_eq!(texts(&ev), vec!["queued before".to_owned()]);
    assert_eq!(a.retire_moved(&[]), 0);
    relay.deliver(&mut a, &mut b, 12);
    assert_eq!(a.retire_moved(&[]), 0, "the contact has not written since");
    b.send_text(13, &mut OsRng, "a", "hi", false).unwrap();
    assert_ne!(sends_to(&b), vec![old]);
    relay.deliver(&mut b, &mut a, 13);
    assert_eq!(a.retire_moved(&[]), 1);
    assert!(!mailboxes(&a).contains(&old));
}

/// A second move before the contact switched keeps both earlier mailboxes
/// readable; at most three are kept.
#[test]
fn moves_pile_up_to_a_bound_and_all_read() {
    let (mut a, mut b, mut relay) = pair("b", "a");
    for t in 0..5 {
        a.move_mailboxes(10 + t, &mut OsRng);
    }
    assert_eq!(mailboxes(&a).len(), 4);
    // The contact, offline all along, wrote to the first.
    b.send_text(11, &mut OsRng, "a", "offline", false).unwrap();
    let ev = relay.deliver(&mut b, &mut a, 11);
    assert_eq!(texts(&ev), vec!["offline".to_owned()]);
    relay.deliver(&mut a, &mut b, 12);
    b.send_text(13, &mut OsRng, "a", "online", false).unwrap();
    assert_eq!(sends_to(&b), vec![*mailboxes(&a).last().unwrap()]);
    let ev = relay.deliver(&mut b, &mut a, 13);
    assert_eq!(texts(&ev), vec!["online".to_owned()]);
    assert_eq!(a.retire_moved(&[]), 3);
    assert_eq!(mailboxes(&a).len(), 1);
}

/// A contact reported compromised (a captor with their phone) cannot
/// redirect this side's messages, and no contact can send them to
/// another relay.
#[test]
fn a_compromised_contact_or_another_relay_cannot_redirect() {
    let (mut a, mut b, mut relay) = pair("b", "a");
    let id = a.state.contacts[0].id;
    let before = a.outbound_seal(id).unwrap().0.mailbox;
    a.state.contacts.get_mut(0).compromised = Some(crate::engine::Compromise {
        reason: crate::engine::AlertReason::Duress,
        at: 1,
    });
    assert_eq!(b.move_mailboxes(2, &mut OsRng), 1);
    let ev = relay.deliver(&mut b, &mut a, 3);
    assert!(
        ev.iter().any(|e| matches!(e, Event::Ignored { .. })),
        "{ev:?}"
    );
    assert_eq!(a.outbound_seal(id).unwrap().0.mailbox, before);
    // Another relay: refused.
    let c = a.state.contacts[0].clone();
    let ev = a
        .on_mailbox(
            0,
            &c,
            "https://elsewhere.example".into(),
            MailboxId::random(&mut OsRng),
            KeyBytes::random(&mut OsRng),
        )
        .unwrap();
    assert!(
        matches!(
            ev,
            Event::Rejected {
                reason: RejectReason::MailboxElsewhere,
                ..
            }
        ),
        "{ev:?}"
    );
    assert_eq!(a.outbound_seal(id).unwrap().0.mailbox, before);
}

/// A move survives saving and loading on both sides, half done.
#[test]
fn a_move_half_done_survives_a_restart() {
    let (mut a, mut b, mut relay) = pair("b", "a");
    a.move_mailboxes(10, &mut OsRng);
    let new = *mailboxes(&a).last().unwrap();
    let mut a = Engine::load(a.save().unwrap()).unwrap();
    relay.deliver(&mut a, &mut b, 11);
    let mut b = Engine::load(b.save().unwrap()).unwrap();
    b.send_text(12, &mut OsRng, "a", "after restart", false)
        .unwrap();
    assert_eq!(sends_to(&b), vec![new]);
    let ev = relay.deliver(&mut b, &mut a, 12);
    assert_eq!(texts(&ev), vec!["after restart".to_owned()]);
    assert_eq!(mailboxes(&a).len(), 2);
    assert_eq!(a.retire_moved(&[]), 1);
}

/// The same announcement again (a device restored from a copy that still
/// had it queued, or a relay replaying it) changes nothing and warns
/// nobody.
#[test]
fn an_announcement_sent_twice_is_a_duplicate() {
    let (mut a, mut b, mut relay) = pair("b", "a");
    a.move_mailboxes(10, &mut OsRng);
    let (mailbox, payload) = a
        .outbox()
        .into_iter()
        .find_map(|x| match x {
            Action::Send {
                mailbox, payload, ..
            } => Some((mailbox, payload)),
            _ => None,
        })
        .unwrap();
    let ev = relay.deliver(&mut a, &mut b, 11);
    assert!(
        ev.iter().any(|e| matches!(e, Event::Moved { .. })),
        "{ev:?}"
    );
    let seq = relay.next_seq(mailbox);
    let again = b.receive(12, &mut OsRng, mailbox, seq, &payload).unwrap();
    assert!(matches!(again, Event::Ignored { .. }), "{again:?}");
}

/// The relay refuses to create the new mailbox: the move is undone and
/// its announcement withdrawn, so the contact never switches to nothing.
#[test]
fn a_refused_mailbox_undoes_the_move() {
    let (mut a, mut b, mut relay) = pair("b", "a");
    let old = mailboxes(&a);
    a.move_mailboxes(10, &mut OsRng);
    let new = *mailboxes(&a).last().unwrap();
    assert!(a.move_refused(new));
    assert_eq!(mailboxes(&a), old);
    assert!(
        a.outbox().iter().all(|x| !matches!(x, Action::Send { .. })),
        "the announcement is withdrawn"
    );
    let ev = relay.deliver(&mut a, &mut b, 11);
    assert!(ev.is_empty(), "{ev:?}");
    b.send_text(12, &mut OsRng, "a", "still here", false)
        .unwrap();
    assert_eq!(sends_to(&b), old);
    let ev = relay.deliver(&mut b, &mut a, 12);
    assert_eq!(texts(&ev), vec!["still here".to_owned()]);
}

/// A lost earlier mailbox is forgotten quietly; a lost current one names
/// the contact (this copy is out of date). The newest mailbox waits for
/// the older ones while the contact may still write there.
#[test]
fn lost_mailboxes_and_waiting() {
    let (mut a, mut b, mut relay) = pair("b", "a");
    let old = mailboxes(&a)[0];
    a.move_mailboxes(10, &mut OsRng);
    let new = *mailboxes(&a).last().unwrap();
    assert!(a.waits_for_older(&new));
    assert!(!a.waits_for_older(&old));
    relay.deliver(&mut a, &mut b, 11);
    b.send_text(12, &mut OsRng, "a", "x", false).unwrap();
    relay.deliver(&mut b, &mut a, 12);
    assert!(!a.waits_for_older(&new), "switched");
    assert_eq!(a.mailbox_lost(old), None);
    assert_eq!(mailboxes(&a), vec![new]);
    assert_eq!(a.mailbox_lost(new).as_deref(), Some("b"));
}

/// An image of the phone holds the mailbox's recipient key, which lets
/// whoever takes it out fetch and delete at the relay. The daily key
/// refresh moves the mailbox along: what the contact sends afterwards goes
/// where that key is worthless, and the old mailbox is retired.
#[test]
fn a_key_refresh_moves_the_mailbox_along_once_a_day() {
    let (mut a, mut b, mut relay) = pair("b", "a");
    let copy = Engine::load(b.save().unwrap()).unwrap();
    let day = 2 + MOVE_EVERY_SECS;
    assert_eq!(b.refresh_due(day, &mut OsRng), 1);
    let ev = relay.deliver(&mut b, &mut a, day);
    assert!(
        ev.iter().any(|e| matches!(e, Event::Moved { .. })),
        "{ev:?}"
    );
    relay.deliver(&mut a, &mut b, day);
    a.send_text(day + 1, &mut OsRng, "b", "after the refresh", false)
        .unwrap();
    let to = sends_to(&a);
    assert!(
        copy.inbound().iter().all(|m| !to.contains(&m.mailbox)),
        "the contact still writes where the image's key works"
    );
    let ev = relay.deliver(&mut a, &mut b, day + 1);
    assert_eq!(texts(&ev), vec!["after the refresh".to_owned()]);
    assert_eq!(b.retire_moved(&[]), 1);
    assert!(
        b.inbound()
            .iter()
            .all(|m| copy.inbound().iter().all(|c| c.recipient != m.recipient)),
        "a mailbox key of the image still reads"
    );
    // Not again within the day, whatever is refreshed.
    let moved_at = b.state.contacts[0].moved_at;
    for i in 0..60 {
        a.send_text(day + 10 + i, &mut OsRng, "b", "x", false)
            .unwrap();
        relay.deliver(&mut a, &mut b, day + 10 + i);
        b.send_text(day + 10 + i, &mut OsRng, "a", "y", false)
            .unwrap();
        relay.deliver(&mut b, &mut a, day + 10 + i);
    }
    assert_eq!(b.state.contacts[0].moved_at, moved_at);
}

/// A refresh that comes due as a message is taken moves the mailbox right
/// there: the old one must stay until the contact has heard of the move
/// and written to the new one (else what the contact sends next, a commit
/// above all, goes to a deleted mailbox).
#[test]
fn a_move_made_while_receiving_keeps_the_old_mailbox() {
    let (mut a, mut b, mut relay) = pair("b", "a");
    let old = mailboxes(&b)[0];
    let day = 2 + MOVE_EVERY_SECS;
    a.send_text(day, &mut OsRng, "b", "hello", false).unwrap();
    // (a's own refresh and move, due too, go along.)
    let ev = relay.deliver(&mut a, &mut b, day);
    assert!(texts(&ev).contains(&"hello".to_owned()), "{ev:?}");
    assert_eq!(mailboxes(&b).len(), 2, "b moved as it took the message");
    assert_eq!(
        b.retire_moved(&[]),
        0,
        "the old mailbox was retired at once"
    );
    assert!(mailboxes(&b).contains(&old));
    relay.deliver(&mut b, &mut a, day + 1);
    relay.deliver(&mut a, &mut b, day + 1);
    a.send_text(day + 2, &mut OsRng, "b", "after", false)
        .unwrap();
    let ev = relay.deliver(&mut a, &mut b, day + 2);
    assert_eq!(texts(&ev), vec!["after".to_owned()]);
    assert_eq!(b.retire_moved(&[]), 1);
    assert!(!mailboxes(&b).contains(&old));
}
