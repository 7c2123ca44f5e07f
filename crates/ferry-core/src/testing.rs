//! Two engines talking with no network: the one helper every test and
//! benchmark shares. A [`LoopRelay`] numbers what it carries per mailbox,
//! as a relay does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use ferry_proto::MailboxId;
use rand_core::OsRng;

use crate::{Action, Engine, Event, InviteLink};

/// Carries queued sends from one engine to another.
#[derive(Default)]
pub struct LoopRelay {
    seqs: HashMap<MailboxId, u64>,
}

impl LoopRelay {
    /// Delivers every queued send of `from` to `to` at time `now` (other
    /// relay calls are dropped) and returns what `to` made of them.
    pub fn deliver(&mut self, from: &mut Engine, to: &mut Engine, now: u64) -> Vec<Event> {
        self.deliver_recorded(from, to, now, &mut Vec::new())
    }

    /// [`LoopRelay::deliver`], also appending what the relay stored to
    /// `record` as (mailbox, sequence number, payload): the traffic an
    /// adversary watching the relay keeps.
    pub fn deliver_recorded(
        &mut self,
        from: &mut Engine,
        to: &mut Engine,
        now: u64,
        record: &mut Vec<(MailboxId, u64, Vec<u8>)>,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some((id, action)) = from.outbox_first() {
            from.outbox_remove(id);
            if let Action::Send {
                mailbox, payload, ..
            } = action
            {
                let seq = self.next_seq(mailbox);
                events.push(to.receive(now, &mut OsRng, mailbox, seq, &payload).unwrap());
                record.push((mailbox, seq, payload));
            }
        }
        events
    }

    /// The next sequence number of `mailbox` (counted as used).
    pub fn next_seq(&mut self, mailbox: MailboxId) -> u64 {
        let seq = self.seqs.entry(mailbox).or_insert(0);
        *seq += 1;
        *seq
    }

    /// Makes the next sequence number of `mailbox` `after + 1`.
    pub fn set_seq(&mut self, mailbox: MailboxId, after: u64) {
        self.seqs.insert(mailbox, after);
    }
}

/// Two engines with an established conversation: `a` knows `b` as
/// `alias_of_b`, `b` knows `a` as `alias_of_a`.
pub fn pair(alias_of_b: &str, alias_of_a: &str) -> (Engine, Engine, LoopRelay) {
    let mut a = Engine::new("http://relay-a");
    let mut b = Engine::new("http://relay-b");
    let mut relay = LoopRelay::default();
    let link = a.create_invite(0, &mut OsRng, alias_of_b, 3600).unwrap();
    let link = InviteLink::parse(&link.to_link()).unwrap();
    b.accept_invite(1, &mut OsRng, &link, alias_of_a).unwrap();
    let ev = relay.deliver(&mut b, &mut a, 2);
    assert!(matches!(ev.as_slice(), [Event::Established { alias }] if alias == alias_of_b));
    let ev = relay.deliver(&mut a, &mut b, 2);
    assert!(matches!(ev.as_slice(), [Event::Established { alias }] if alias == alias_of_a));
    (a, b, relay)
}
