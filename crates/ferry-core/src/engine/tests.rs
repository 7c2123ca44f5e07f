//! The engine's own tests, over the shared two-engine helper.

use zeroize::Zeroizing;

use super::*;
use crate::state::Saved;
use rand_core::OsRng;

use crate::testing::LoopRelay;

fn pair() -> (Engine, Engine, LoopRelay) {
    crate::testing::pair("bob", "alice")
}

#[test]
fn handshake_then_messages_both_ways_survive_export_restore() {
    let (mut a, mut b, mut seqs) = pair();
    let (_, sent) = a
        .send_text(20, &mut OsRng, "bob", "hello bob", false)
        .unwrap();
    let ev = seqs.deliver(&mut a, &mut b, 10);
    match ev.as_slice() {
        [Event::Message { alias, entry, .. }] => {
            assert_eq!(alias, "alice");
            assert_eq!(entry.text, "hello bob");
            assert_eq!(entry.id, sent.id);
            assert_eq!(entry.direction, Direction::In);
        }
        other => panic!("{other:?}"),
    }
    // Persist and restore both sides, then talk the other way.
    let mut b = Engine::load(b.save().unwrap()).unwrap();
    let mut a = Engine::load(a.save().unwrap()).unwrap();
    b.send_text(30, &mut OsRng, "alice", "hi alice", false)
        .unwrap();
    let ev = seqs.deliver(&mut b, &mut a, 10);
    assert!(matches!(ev.as_slice(), [Event::Message { entry, .. }] if entry.text == "hi alice"));
    assert_eq!(a.contact("bob").unwrap().state, ContactState::Established);
}

/// A profile saved in full once, then kept up to date only by the
/// changes each operation reports.
pub(crate) struct Mirror {
    settings: Vec<u8>,
    contacts: std::collections::BTreeMap<u64, Vec<u8>>,
    outbox: std::collections::BTreeMap<u64, Vec<u8>>,
    groups: std::collections::BTreeMap<u64, Vec<u8>>,
    mls: std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Mirror {
    pub(crate) fn of(e: &mut Engine) -> Self {
        e.take_changes().unwrap();
        let saved = e.save().unwrap();
        let mut m = Mirror {
            settings: saved.settings.to_vec(),
            contacts: Default::default(),
            outbox: saved.outbox.iter().map(|(i, r)| (*i, r.to_vec())).collect(),
            groups: e
                .state
                .groups
                .iter()
                .map(|g| g.id)
                .zip(saved.groups.iter().map(|r| r.to_vec()))
                .collect(),
            mls: saved
                .mls
                .iter()
                .map(|(k, v)| (k.clone(), v.to_vec()))
                .collect(),
        };
        for c in e.state.contacts.iter() {
            m.contacts.insert(c.id, Vec::new());
        }
        // Contact records carry their id inside; pair them by order.
        for (id, r) in m.contacts.clone().keys().zip(saved.contacts.iter()) {
            m.contacts.insert(*id, r.to_vec());
        }
        m
    }

    pub(crate) fn apply(&mut self, c: &crate::Changes) {
        if let Some(s) = &c.settings {
            self.settings = s.to_vec();
        }
        for (id, r) in &c.contacts {
            match r {
                Some(r) => self.contacts.insert(*id, r.to_vec()),
                None => self.contacts.remove(id),
            };
        }
        for (id, r) in &c.outbox {
            match r {
                Some(r) => self.outbox.insert(*id, r.to_vec()),
                None => self.outbox.remove(id),
            };
        }
        for (id, r) in &c.groups {
            match r {
                Some(r) => self.groups.insert(*id, r.to_vec()),
                None => self.groups.remove(id),
            };
        }
        for (k, v) in &c.mls {
            match v {
                Some(v) => self.mls.insert(k.clone(), v.to_vec()),
                None => self.mls.remove(k),
            };
        }
    }

    pub(crate) fn to_saved(&self) -> Saved {
        Saved {
            settings: Zeroizing::new(self.settings.clone()),
            contacts: self
                .contacts
                .values()
                .map(|r| Zeroizing::new(r.clone()))
                .collect(),
            outbox: self
                .outbox
                .iter()
                .map(|(i, r)| (*i, Zeroizing::new(r.clone())))
                .collect(),
            groups: self
                .groups
                .values()
                .map(|r| Zeroizing::new(r.clone()))
                .collect(),
            mls: self
                .mls
                .iter()
                .map(|(k, v)| (k.clone(), Zeroizing::new(v.clone())))
                .collect(),
        }
    }
}

#[test]
fn changes_alone_keep_a_saved_profile_exactly_current() {
    let (mut a, mut b, mut relay) = pair();
    let mut ma = Mirror::of(&mut a);
    let mut mb = Mirror::of(&mut b);
    let step = |a: &mut Engine, b: &mut Engine, ma: &mut Mirror, mb: &mut Mirror| {
        ma.apply(&a.take_changes().unwrap());
        mb.apply(&b.take_changes().unwrap());
        assert!(!a.has_changes() && !b.has_changes());
    };
    for i in 0..60u64 {
        a.send_text(20 + i, &mut OsRng, "bob", &format!("a{i}"), false)
            .unwrap();
        step(&mut a, &mut b, &mut ma, &mut mb);
        relay.deliver(&mut a, &mut b, 20 + i);
        step(&mut a, &mut b, &mut ma, &mut mb);
        if i % 7 == 0 {
            b.send_text(20 + i, &mut OsRng, "alice", "b", false)
                .unwrap();
            b.set_timer(20 + i, &mut OsRng, "alice", Some(60 + i))
                .unwrap();
            step(&mut a, &mut b, &mut ma, &mut mb);
            relay.deliver(&mut b, &mut a, 21 + i);
            step(&mut a, &mut b, &mut ma, &mut mb);
        }
    }
    a.create_invite(100, &mut OsRng, "carol", 10).unwrap();
    a.remove_contact("carol");
    step(&mut a, &mut b, &mut ma, &mut mb);
    // What the changes built equals a full save, key for key...
    for (e, m) in [(&a, &ma), (&b, &mb)] {
        let full = Mirror {
            settings: Vec::new(),
            contacts: Default::default(),
            outbox: Default::default(),
            groups: Default::default(),
            mls: e
                .save()
                .unwrap()
                .mls
                .iter()
                .map(|(k, v)| (k.clone(), v.to_vec()))
                .collect(),
        };
        assert_eq!(full.mls, m.mls, "MLS state differs from a full save");
        let saved = e.save().unwrap();
        assert_eq!(saved.settings.to_vec(), m.settings);
        let mut want: Vec<Vec<u8>> = saved.contacts.iter().map(|r| r.to_vec()).collect();
        let mut got: Vec<Vec<u8>> = m.contacts.values().cloned().collect();
        want.sort();
        got.sort();
        assert_eq!(want, got);
    }
    // ...and an engine loaded from it goes on talking.
    let mut a = Engine::load(ma.to_saved()).unwrap();
    let mut b = Engine::load(mb.to_saved()).unwrap();
    a.send_text(500, &mut OsRng, "bob", "after reload", false)
        .unwrap();
    let ev = relay.deliver(&mut a, &mut b, 500);
    assert!(
        matches!(ev.as_slice(), [Event::Message { entry, .. }] if entry.text == "after reload")
    );
}

#[test]
fn contact_records_keep_their_layout_and_refuse_an_impossible_stage() {
    let (a, _b, _relay) = pair();
    let saved = a.save().unwrap();
    let (&version, json) = saved.contacts[0].split_first().unwrap();
    assert_eq!(version, 1);
    let mut v: serde_json::Value = serde_json::from_slice(json).unwrap();
    assert_eq!(v["state"], "established");
    assert!(v["group_id"].is_string() && v["outbound"].is_object());
    assert!(v["invite_secret"].is_null());
    // An "established" record without its group cannot load.
    v["group_id"] = serde_json::Value::Null;
    let mut broken = vec![1u8];
    broken.extend(serde_json::to_vec(&v).unwrap());
    let mut saved = a.save().unwrap();
    saved.contacts[0] = Zeroizing::new(broken);
    assert!(matches!(Engine::load(saved), Err(CoreError::State(_))));
}

#[test]
fn a_duplicate_changes_nothing_to_write() {
    let (mut a, mut b, mut relay) = pair();
    a.send_text(20, &mut OsRng, "bob", "once", false).unwrap();
    let Some((
        _,
        Action::Send {
            mailbox, payload, ..
        },
    )) = a.outbox_first()
    else {
        panic!("nothing queued")
    };
    relay.deliver(&mut a, &mut b, 20);
    b.take_changes().unwrap();
    let seq = b
        .inbound()
        .iter()
        .find(|i| i.mailbox == mailbox)
        .unwrap()
        .cursor;
    let ev = b.receive(21, &mut OsRng, mailbox, seq, &payload).unwrap();
    assert!(matches!(ev, Event::Duplicate));
    assert!(!b.has_changes(), "a duplicate would be written");
}

/// Each canary is renewed on its own random schedule: not at every unlock,
/// and not all together.
#[test]
fn canaries_are_renewed_each_on_its_own_random_schedule() {
    use crate::alert::CanaryScope;
    let (mut a, _b, _relay) = pair();
    let link = a.create_invite(0, &mut OsRng, "carol", 3600).unwrap();
    let mut carol = Engine::new("http://relay-c");
    carol
        .accept_invite(
            1,
            &mut OsRng,
            &crate::InviteLink::parse(&link.to_link()).unwrap(),
            "alice",
        )
        .unwrap();
    LoopRelay::default().deliver(&mut carol, &mut a, 2);
    a.take_changes().unwrap();
    let first = a.canary_deposits(10, &mut OsRng, CanaryScope::Due).unwrap();
    assert_eq!(first.len(), 2, "new canaries are deposited at once");
    assert!(first.iter().all(|d| d.fresh));
    assert_eq!(
        a.take_changes().unwrap().contacts.len(),
        2,
        "first canaries"
    );
    for d in &first {
        a.canary_placed(d.canary.id, 10, &mut OsRng);
    }
    // An unlock an hour later renews nothing.
    assert!(
        a.canary_deposits(3610, &mut OsRng, CanaryScope::Due)
            .unwrap()
            .is_empty()
    );
    let q = crate::DEFAULT_CANARY_SECS / 4;
    let times: Vec<u64> = a
        .state
        .contacts
        .iter()
        .filter_map(|c| c.canary.as_ref().map(|k| k.renew_at))
        .collect();
    assert_eq!(times.len(), 2);
    assert!(
        times.iter().all(|t| (10 + q..10 + 2 * q).contains(t)),
        "{times:?}"
    );
    assert_ne!(times[0], times[1], "renewed together");
    // Each comes due at its own time.
    let (early, late) = (times[0].min(times[1]), times[0].max(times[1]));
    let due = a
        .canary_deposits(early, &mut OsRng, CanaryScope::Due)
        .unwrap();
    assert_eq!(due.len(), 1);
    assert!(!due[0].fresh);
    let due = a
        .canary_deposits(late, &mut OsRng, CanaryScope::Due)
        .unwrap();
    assert_eq!(due.len(), 2, "the first was not placed, so it is still due");
}

#[test]
fn a_send_writes_the_same_whatever_the_number_of_contacts() {
    let written = |contacts: usize| {
        let (mut a, mut b, mut relay) = pair();
        for i in 0..contacts {
            a.create_invite(3, &mut OsRng, &format!("pending {i}"), 3600)
                .unwrap();
        }
        relay.deliver(&mut a, &mut b, 3);
        a.take_changes().unwrap();
        a.send_text(4, &mut OsRng, "bob", "hello", false).unwrap();
        let c = a.take_changes().unwrap();
        assert!(c.contacts.len() <= 1, "at most the conversation's contact");
        assert!(c.settings.is_none());
        (c.bytes(), c.mls.len())
    };
    let (few, few_keys) = written(1);
    let (many, many_keys) = written(200);
    assert_eq!(few_keys, many_keys);
    assert!(
        many.abs_diff(few) < 64,
        "a send wrote {few} bytes with 2 contacts, {many} with 201"
    );
}

#[test]
fn forged_and_replayed_payloads_are_rejected_not_shown() {
    let (mut a, mut b, mut seqs) = pair();
    let mailbox = b.inbound()[0].mailbox;
    // Garbage of a valid bucket size.
    let junk = padding::pad(&envelope::wrap(envelope::MLS, b"not mls")).unwrap();
    let ev = b.receive(40, &mut OsRng, mailbox, 100, &junk).unwrap();
    assert!(matches!(ev, Event::Rejected { .. }));
    // A message encrypted in another group (a stranger) is rejected.
    let (mut c, _, _) = pair();
    c.send_text(41, &mut OsRng, "bob", "from a stranger", false)
        .unwrap();
    let Some(Action::Send { payload, .. }) = c.outbox().first().cloned() else {
        panic!()
    };
    let ev = b.receive(41, &mut OsRng, mailbox, 101, &payload).unwrap();
    assert!(matches!(ev, Event::Rejected { .. }));
    // A replay of an already processed sequence number is a duplicate.
    a.send_text(42, &mut OsRng, "bob", "once", false).unwrap();
    seqs.set_seq(mailbox, 101);
    let ev = seqs.deliver(&mut a, &mut b, 10);
    assert!(matches!(ev.as_slice(), [Event::Message { .. }]));
    let ev = b.receive(42, &mut OsRng, mailbox, 1, &junk).unwrap();
    assert!(matches!(ev, Event::Duplicate));
}

#[test]
fn debug_output_never_shows_secrets() {
    let mut a = Engine::new("http://relay-a");
    let link = a.create_invite(0, &mut OsRng, "bob", 100).unwrap();
    let action = a.outbox()[0].clone();
    insta::assert_snapshot!(
        format!("{a:?} {link:?} {action:?} {:?}", KeyBytes::random(&mut OsRng)),
        @"Engine(..) InviteLink(..) Action::CreateMailbox KeyBytes(..)"
    );
}

#[test]
fn invites_refuse_expiry_reuse_and_bad_aliases() {
    let mut a = Engine::new("http://relay-a");
    let mut b = Engine::new("http://relay-b");
    let link = a.create_invite(0, &mut OsRng, "bob", 100).unwrap();
    assert!(matches!(
        a.create_invite(0, &mut OsRng, "bob", 100),
        Err(CoreError::AliasTaken)
    ));
    assert!(matches!(
        a.create_invite(0, &mut OsRng, "", 100),
        Err(CoreError::BadAlias)
    ));
    assert!(matches!(
        b.accept_invite(101, &mut OsRng, &link, "alice"),
        Err(CoreError::Invite(InviteError::Expired))
    ));
    b.accept_invite(50, &mut OsRng, &link, "alice").unwrap();
    assert!(matches!(
        b.accept_invite(51, &mut OsRng, &link, "alice2"),
        Err(CoreError::InviteReused)
    ));
    assert!(matches!(
        b.send_text(52, &mut OsRng, "alice", "x", false),
        Err(CoreError::NotEstablished)
    ));
}

/// The payloads `e` queued for relays, taken out of its outbox.
fn sent_payloads(e: &mut Engine) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some((id, action)) = e.outbox_first() {
        e.outbox_remove(id);
        if let Action::Send { payload, .. } = action {
            out.push(payload);
        }
    }
    out
}

/// Whether `a` and `b` share a run of `n` bytes.
fn share_run(a: &[u8], b: &[u8], n: usize) -> bool {
    let runs: std::collections::HashSet<&[u8]> = a.windows(n).collect();
    b.windows(n).any(|w| runs.contains(w))
}

/// What a relay stores for a short text and for an alert: the same size
/// (the smallest bucket), bytes that look random, and nothing shared
/// between the two mailboxes of a pair (before, each payload began with
/// its length, a kind byte and the MLS group id, the same both ways).
#[test]
fn the_relay_cannot_tell_texts_from_alerts_or_link_a_pair() {
    let (mut a, mut b, mut seqs) = pair();
    a.send_text(10, &mut OsRng, "bob", "hi", false).unwrap();
    let text = sent_payloads(&mut a).remove(0);
    a.alert(11, &mut OsRng, Some("bob"), AlertReason::Manual)
        .unwrap();
    let alert = sent_payloads(&mut a).remove(0);
    b.send_text(12, &mut OsRng, "alice", "hi", false).unwrap();
    let reply = sent_payloads(&mut b).remove(0);
    assert_eq!(
        (text.len(), alert.len(), reply.len()),
        (256, 256, 256),
        "a short text takes the smallest bucket, like an alert"
    );
    assert!(
        !share_run(&text, &reply, 8),
        "the two directions share bytes"
    );
    assert!(!share_run(&text, &alert, 8));
    assert!(!share_run(&alert, &reply, 8));

    // Many payloads of both kinds: every byte value about equally often.
    let mut counts = [0u64; 256];
    for i in 0..100 {
        a.send_text(20 + i, &mut OsRng, "bob", "hi", false).unwrap();
        a.alert(20 + i, &mut OsRng, Some("bob"), AlertReason::Manual)
            .unwrap();
    }
    // (The inviter's key refresh, due after 50 messages, goes along; bob
    // takes it below.)
    let (many, refresh): (Vec<_>, Vec<_>) = sent_payloads(&mut a)
        .into_iter()
        .partition(|p| p.len() == 256);
    assert_eq!(refresh.len(), 1, "one key refresh");
    assert_eq!(many.len(), 200);
    for p in &many {
        for &x in p {
            counts[usize::from(x)] += 1;
        }
    }
    let expected = (200 * 256) as f64 / 256.0;
    let chi2: f64 = counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum();
    // 255 degrees of freedom: mean 255, standard deviation about 22.6.
    assert!(chi2 < 400.0, "chi-square {chi2:.0}: not uniform");

    // And they still arrive as what they are.
    sent_payloads(&mut b);
    let bob_box = b.inbound()[0].mailbox;
    for p in &refresh {
        let seq = seqs.next_seq(bob_box);
        b.receive(400, &mut OsRng, bob_box, seq, p).unwrap();
    }
    a.send_text(500, &mut OsRng, "bob", "hi", false).unwrap();
    let ev = seqs.deliver(&mut a, &mut b, 501);
    assert!(
        matches!(&ev[..], [Event::Message { entry, .. }] if entry.text == "hi"),
        "{ev:?}"
    );
}

/// A payload moved by the relay from one mailbox of the pair to the other,
/// or one from a newer Ferry, is refused with the reason said plainly.
#[test]
fn a_payload_for_another_mailbox_is_refused() {
    let (mut a, mut b, _) = pair();
    a.send_text(10, &mut OsRng, "bob", "for bob", false)
        .unwrap();
    let to_bob = sent_payloads(&mut a).remove(0);
    // Reflected into alice's own mailbox for bob.
    let alice_box = a.inbound()[0].mailbox;
    let ev = a.receive(11, &mut OsRng, alice_box, 100, &to_bob).unwrap();
    assert!(
        matches!(
            &ev,
            Event::Rejected {
                reason: RejectReason::NotSealedForMailbox,
                ..
            }
        ),
        "{ev:?}"
    );
    let bob_box = b.inbound()[0].mailbox;
    let ev = b.receive(12, &mut OsRng, bob_box, 100, &to_bob).unwrap();
    assert!(matches!(&ev, Event::Message { .. }), "{ev:?}");
}

/// A relay that serves junk or a replay under a forged sequence number
/// (huge, or just ahead) cannot make the mailbox skip what follows.
#[test]
fn a_forged_sequence_number_skips_nothing() {
    let (mut a, mut b, mut seqs) = pair();
    a.send_text(10, &mut OsRng, "bob", "first", false).unwrap();
    let first = sent_payloads(&mut a).remove(0);
    let bob_box = b.inbound()[0].mailbox;
    let seq = seqs.next_seq(bob_box);
    let ev = b.receive(11, &mut OsRng, bob_box, seq, &first).unwrap();
    assert!(matches!(ev, Event::Message { .. }), "{ev:?}");
    let ev = b
        .receive(12, &mut OsRng, bob_box, u64::MAX, &[0; 256])
        .unwrap();
    assert!(matches!(ev, Event::Rejected { .. }), "{ev:?}");
    let ev = b
        .receive(12, &mut OsRng, bob_box, seq + 1000, &[7; 256])
        .unwrap();
    assert!(matches!(ev, Event::Rejected { .. }), "{ev:?}");
    let ev = b
        .receive(12, &mut OsRng, bob_box, seq + 2000, &first)
        .unwrap();
    // A replay: its key was used, so nothing is shown and nothing warns;
    // the cursor stays.
    assert!(matches!(ev, Event::Ignored { .. }), "a replay: {ev:?}");
    a.send_text(13, &mut OsRng, "bob", "second", false).unwrap();
    let ev = seqs.deliver(&mut a, &mut b, 14);
    assert!(
        matches!(&ev[..], [Event::Message { entry, .. }] if entry.text == "second"),
        "{ev:?}"
    );
}

/// A profile keeps at most MAX_CONTACTS contacts (the duress capsule has
/// room for all of them).
#[test]
fn a_profile_keeps_at_most_max_contacts() {
    let mut a = Engine::new("http://relay-a");
    for i in 0..crate::MAX_CONTACTS {
        a.create_invite(0, &mut OsRng, &format!("c{i}"), 3600)
            .unwrap();
    }
    assert!(matches!(
        a.create_invite(0, &mut OsRng, "one more", 3600),
        Err(CoreError::TooManyContacts)
    ));
}
