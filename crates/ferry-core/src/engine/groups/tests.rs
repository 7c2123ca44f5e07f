#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ferry_proto::api::{GroupEntry, GroupEntryKind};
use ferry_proto::{MailboxId, Seq};
use rand_core::OsRng;

use super::GroupEvent;
use crate::engine::tests::Mirror;
use crate::{Action, Engine, Event, InviteLink};

/// One group log with the relay's compare-and-swap, and 1:1 mailboxes,
/// between engines in memory.
#[derive(Default)]
struct World {
    people: Vec<Engine>,
    log: Vec<GroupEntry>,
    epoch: u64,
    seqs: std::collections::HashMap<MailboxId, u64>,
    /// What each person saw of the group, in order.
    seen: Vec<Vec<String>>,
    /// Commits the relay refused.
    conflicts: usize,
    /// Answers to commits the relay took, still to lose.
    lose_answers: usize,
    /// Commits still to refuse for good.
    refuse: usize,
}

impl World {
    fn new(n: usize) -> Self {
        let mut w = Self::default();
        for i in 0..n {
            w.people.push(Engine::new(&format!("http://relay-{i}")));
            w.seen.push(Vec::new());
        }
        w
    }

    /// Makes `a` and `b` contacts (`a` knows `b` as `alias_b`).
    fn connect(&mut self, a: usize, b: usize, alias_b: &str, alias_a: &str) {
        let link = self.people[a]
            .create_invite(0, &mut OsRng, alias_b, 3600)
            .unwrap();
        let link = InviteLink::parse(&link.to_link()).unwrap();
        self.people[b]
            .accept_invite(1, &mut OsRng, &link, alias_a)
            .unwrap();
        self.pump();
        assert!(self.people[a].contact(alias_b).is_some());
    }

    /// Performs every queued relay call of everyone until nothing moves.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            for i in 0..self.people.len() {
                while let Some((id, action)) = self.people[i].outbox_first() {
                    moved = true;
                    self.perform(i, id, action);
                    self.people[i].outbox_remove(id);
                }
            }
            for i in 0..self.people.len() {
                moved |= self.read_group(i);
            }
            if !moved {
                return;
            }
        }
    }

    fn perform(&mut self, i: usize, id: crate::ActionId, action: Action) {
        match action {
            Action::Send {
                mailbox, payload, ..
            } => {
                let seq = {
                    let s = self.seqs.entry(mailbox).or_insert(0);
                    *s += 1;
                    *s
                };
                let Some(to) = self
                    .people
                    .iter()
                    .position(|p| p.inbound().iter().any(|m| m.mailbox == mailbox))
                else {
                    return;
                };
                let ev = self.people[to]
                    .receive(2, &mut OsRng, mailbox, seq, &payload)
                    .unwrap();
                if let Event::GroupJoined { group, .. } = ev {
                    self.seen[to].push(format!("joined {group}"));
                }
            }
            Action::GroupPost { epoch, payload, .. } => {
                if epoch != self.epoch {
                    // Stale: sealed again in the epoch now, as the session
                    // does after reading the log.
                    self.read_group(i);
                    self.people[i].group_reseal(id).unwrap();
                    return;
                }
                self.append(GroupEntryKind::Message, payload);
            }
            Action::GroupCommit { local, .. } => {
                let Some(c) = self.people[i].group_commit_to_send(local).unwrap() else {
                    return;
                };
                if self.refuse > 0 {
                    self.refuse -= 1;
                    self.people[i].group_commit_dropped(local).unwrap();
                    return;
                }
                if c.expected != self.epoch {
                    self.conflicts += 1;
                    self.people[i].group_commit_refused(local).unwrap();
                    self.read_group(i);
                    self.people[i].group_retry(local).unwrap();
                    return;
                }
                let seq = self.append(GroupEntryKind::Commit, c.payload);
                self.epoch += 1;
                let epoch = self.epoch;
                if self.lose_answers > 0 {
                    // Taken, but the answer never arrives: the admin reads
                    // its own commit back from the log.
                    self.lose_answers -= 1;
                    return;
                }
                if let Some(GroupEvent::Members { added, removed, .. }) = self.people[i]
                    .group_commit_landed(3, &mut OsRng, local, seq, epoch)
                    .unwrap()
                {
                    self.seen[i].push(format!("own +{} -{}", added.len(), removed.len()));
                }
            }
            _ => {}
        }
    }

    fn append(&mut self, kind: GroupEntryKind, payload: Vec<u8>) -> u64 {
        let seq = self.log.len() as u64 + 1;
        self.log.push(GroupEntry {
            seq: Seq(seq),
            epoch: self.epoch,
            kind,
            payload,
        });
        seq
    }

    /// Reads the group log for person `i`; whether anything was new.
    fn read_group(&mut self, i: usize) -> bool {
        let mut moved = false;
        for r in self.people[i].group_reads() {
            for e in self.log.clone() {
                if e.seq.0 <= r.cursor {
                    continue;
                }
                if self.people[i]
                    .group_reads()
                    .iter()
                    .all(|x| x.local != r.local)
                {
                    break;
                }
                moved = true;
                for ev in self.people[i]
                    .group_receive(4, &mut OsRng, r.local, &e)
                    .unwrap()
                {
                    self.seen[i].push(match ev {
                        GroupEvent::Message { entry, .. } => {
                            format!("{}: {}", entry.from.unwrap_or_default(), entry.text)
                        }
                        GroupEvent::Members { added, removed, .. } => {
                            format!("+{} -{}", added.len(), removed.len())
                        }
                        GroupEvent::Quarantined { member, .. } => format!("quarantined {member}"),
                        GroupEvent::RemovedMe { .. } => "removed".into(),
                    });
                }
            }
            // As the session does after each read: an admin's next commit
            // goes once the log is read past its last one.
            if self.people[i]
                .group_reads()
                .iter()
                .any(|x| x.local == r.local)
            {
                self.people[i].group_retry(r.local).unwrap();
            }
        }
        moved
    }

    fn texts(&self, i: usize) -> Vec<String> {
        self.seen[i]
            .iter()
            .filter(|s| s.contains(": "))
            .map(|s| s.split(": ").nth(1).unwrap().to_owned())
            .collect()
    }
}

/// A, B and C, with A knowing B and C, and A's group "family" holding
/// all three.
fn family() -> World {
    let mut w = World::new(3);
    w.connect(0, 1, "bora", "ahn");
    w.connect(0, 2, "chul", "ahn");
    w.people[0]
        .create_group(&mut OsRng, "family", "Ahn")
        .unwrap();
    w.people[0]
        .group_add(5, &mut OsRng, "family", "bora")
        .unwrap();
    w.people[0]
        .group_add(5, &mut OsRng, "family", "chul")
        .unwrap();
    w.pump();
    w
}

#[test]
fn contacts_added_over_their_1to1_conversation_join_and_read_each_other() {
    let mut w = family();
    // B's key package came first and went in a commit of its own; B then
    // reads C's add.
    assert_eq!(w.seen[1], ["joined family", "+1 -0"]);
    assert_eq!(w.seen[2], ["joined family"]);
    for i in 0..3 {
        let m = w.people[i].group_members("family").unwrap();
        assert_eq!(m.len(), 3, "person {i}");
        assert_eq!(m.iter().filter(|m| m.you).count(), 1);
    }
    // The admin sees its contacts' aliases beside their names in the group.
    let m = w.people[0].group_members("family").unwrap();
    let mut contacts: Vec<_> = m.iter().filter_map(|m| m.contact.clone()).collect();
    contacts.sort();
    assert_eq!(contacts, ["bora", "chul"]);
    w.people[0]
        .group_send(6, &mut OsRng, "family", "dinner at 7", false)
        .unwrap();
    w.people[1]
        .group_send(6, &mut OsRng, "family", "I'll bring rice", false)
        .unwrap();
    w.pump();
    assert_eq!(w.texts(1), ["dinner at 7"]);
    assert_eq!(w.texts(2), ["dinner at 7", "I'll bring rice"]);
    assert_eq!(
        w.texts(0),
        ["I'll bring rice"],
        "own messages are not read back"
    );
    assert!(w.seen[2].iter().any(|s| s.starts_with("Ahn: ")));
    // One commit per add round, no conflicts.
    assert_eq!(w.conflicts, 0);
    // A group's name and a contact's alias never coincide (`send` takes
    // either).
    assert!(matches!(
        w.people[0].create_invite(9, &mut OsRng, "family", 3600),
        Err(crate::CoreError::AliasTaken)
    ));
    assert!(matches!(
        w.people[0].create_group(&mut OsRng, "bora", "Ahn"),
        Err(crate::CoreError::AliasTaken)
    ));
}

#[test]
fn a_removed_member_loses_the_group_and_the_others_go_on() {
    let mut w = family();
    w.people[0].group_remove("family", "chul").unwrap();
    w.pump();
    assert_eq!(w.seen[2].last().unwrap(), "removed");
    assert!(w.people[2].group_id("family").is_none());
    assert!(w.people[2].group_reads().is_empty());
    assert_eq!(w.people[1].group_members("family").unwrap().len(), 2);
    w.people[1]
        .group_send(7, &mut OsRng, "family", "just us", false)
        .unwrap();
    w.pump();
    assert_eq!(w.texts(0).last().unwrap(), "just us");
    assert!(!w.texts(2).contains(&"just us".to_owned()));
    // A member cannot remove anyone.
    assert!(matches!(
        w.people[1].group_remove("family", "Ahn"),
        Err(crate::CoreError::NotGroupAdmin)
    ));
}

#[test]
fn a_member_who_leaves_is_committed_out_by_the_admin() {
    let mut w = family();
    let id = w.people[1].group_leave("family").unwrap();
    assert!(id > 0);
    assert!(w.people[1].group_id("family").is_none());
    w.pump();
    assert_eq!(w.people[0].group_members("family").unwrap().len(), 2);
    assert_eq!(w.people[2].group_members("family").unwrap().len(), 2);
    // The owner is the last owner: it cannot leave while others stay.
    assert!(matches!(
        w.people[0].group_leave("family"),
        Err(crate::CoreError::LastOwner)
    ));
}

#[test]
fn a_group_comes_back_from_the_changes_each_step_wrote() {
    // Every profile saved in full before the group existed, then kept
    // only by the changes each step reported (what the vault holds).
    let mut w = World::new(3);
    w.connect(0, 1, "bora", "ahn");
    w.connect(0, 2, "chul", "ahn");
    let mut mirrors: Vec<Mirror> = w.people.iter_mut().map(Mirror::of).collect();
    w.people[0]
        .create_group(&mut OsRng, "family", "Ahn")
        .unwrap();
    w.people[0]
        .group_add(5, &mut OsRng, "family", "bora")
        .unwrap();
    w.people[0]
        .group_add(5, &mut OsRng, "family", "chul")
        .unwrap();
    w.pump();
    w.people[0].group_remove("family", "chul").unwrap();
    w.pump();
    for (p, m) in w.people.iter_mut().zip(&mut mirrors) {
        m.apply(&p.take_changes().unwrap());
        *p = Engine::load(m.to_saved()).unwrap();
    }
    assert!(w.people[2].group_id("family").is_none());
    w.people[1]
        .group_send(8, &mut OsRng, "family", "after a restart", false)
        .unwrap();
    w.pump();
    assert_eq!(w.texts(0).last().unwrap(), "after a restart");
    assert_eq!(w.people[0].group_members("family").unwrap().len(), 2);
}

#[test]
fn a_hostile_contact_cannot_push_a_group_on_anyone() {
    // B never gave a key package for this ask: an invite out of nowhere is
    // ignored, and so is a key package nobody asked for.
    let mut w = World::new(2);
    w.connect(0, 1, "bora", "ahn");
    w.people[0]
        .create_group(&mut OsRng, "family", "Ahn")
        .unwrap();
    let c = w.people[1].established("ahn").unwrap();
    let ev = w.people[1]
        .on_group_invite(
            &c,
            crate::envelope::GroupInvite {
                ask: vec![1; 16],
                relay: "http://relay-0".into(),
                mailbox: MailboxId::from_bytes([1; 16]),
                read: crate::KeyBytes::from_bytes([2; 32]),
                write: crate::KeyBytes::from_bytes([3; 32]),
                after: 0,
                epoch: 0,
                name: "evil".into(),
                welcome: vec![0; 100],
            },
        )
        .unwrap();
    assert!(matches!(ev, Event::Ignored { .. }));
    assert!(w.people[1].group_reads().is_empty());
    let c = w.people[0].established("bora").unwrap();
    let ev = w.people[0]
        .on_group_key_package(&c, &[9; 16], vec![1, 2, 3])
        .unwrap();
    assert!(matches!(ev, Event::Ignored { .. }));
    assert_eq!(w.people[0].outbox().len(), 1, "only the group's creation");
}

#[test]
fn a_contact_asking_again_and_again_leaves_a_bounded_trace() {
    let mut w = World::new(2);
    w.connect(0, 1, "bora", "ahn");
    let c = w.people[0].established("bora").unwrap();
    let ask = |w: &mut World, n: usize| {
        for _ in 0..n {
            let ask = crate::engine::random_id(&mut OsRng).to_vec();
            w.people[0]
                .queue(9, &mut OsRng, &c, crate::envelope::Body::GroupAsk { ask })
                .unwrap();
        }
        w.pump();
        w.people[1].save().unwrap().mls.len()
    };
    let after_20 = ask(&mut w, 20);
    let after_100 = ask(&mut w, 80);
    // Every ask is answered (with a fresh key package each time), but only
    // the last 16 key packages and their signing keys are kept.
    assert_eq!(w.people[1].state.settings().group_joins.len(), 16);
    // Each kept ask holds three values (key package, its private key, the
    // signing key): 80 more asks kept would add 240. The 1:1
    // conversation's own key refreshes account for a few.
    assert!(
        after_100 < after_20 + 10,
        "MLS store grew with every ask: {after_20} -> {after_100}"
    );
}

#[test]
fn an_admin_whose_answer_was_lost_still_sends_the_welcome() {
    let mut w = World::new(2);
    w.connect(0, 1, "bora", "ahn");
    w.people[0]
        .create_group(&mut OsRng, "family", "Ahn")
        .unwrap();
    w.lose_answers = 1;
    w.people[0]
        .group_add(5, &mut OsRng, "family", "bora")
        .unwrap();
    w.pump();
    assert_eq!(w.seen[1], ["joined family"]);
    assert_eq!(w.people[1].group_members("family").unwrap().len(), 2);
    w.people[1]
        .group_send(6, &mut OsRng, "family", "I'm in", false)
        .unwrap();
    w.pump();
    assert_eq!(w.texts(0), ["I'm in"]);
    // The admin hears of the add from its own commit read back.
    assert_eq!(w.seen[0][0], "+1 -0");
    let m = w.people[0].group_members("family").unwrap();
    assert!(m.iter().any(|m| m.contact.as_deref() == Some("bora")));
}

#[test]
fn a_member_who_raises_an_alert_is_quarantined_and_the_admin_removes_it() {
    let mut w = family();
    w.people[2].group_alert("family").unwrap();
    w.pump();
    assert!(w.seen[1].iter().any(|s| s.starts_with("quarantined")));
    assert_eq!(w.seen[2].last().unwrap(), "removed");
    assert_eq!(w.people[1].group_members("family").unwrap().len(), 2);
    // An admin's own alert quarantines it, but it does not remove itself.
    w.people[0].group_alert("family").unwrap();
    w.pump();
    assert_eq!(w.people[0].group_members("family").unwrap().len(), 2);
    let m = w.people[1].group_members("family").unwrap();
    assert!(
        m.iter()
            .any(|m| m.quarantined && m.role == crate::group::Role::Owner)
    );
}

#[test]
fn the_admins_timer_is_followed_by_every_member() {
    let mut w = family();
    assert!(matches!(
        w.people[1].group_set_timer("family", Some(600)),
        Err(crate::CoreError::NotGroupAdmin)
    ));
    w.people[0].group_set_timer("family", Some(600)).unwrap();
    w.pump();
    for i in 0..3 {
        assert_eq!(w.people[i].group_timer_of("family").unwrap(), Some(600));
    }
    let (_, sent) = w.people[1]
        .group_send(1000, &mut OsRng, "family", "gone in ten minutes", false)
        .unwrap();
    assert_eq!(sent.expires_at, Some(1600));
    w.people[0].group_set_timer("family", None).unwrap();
    w.pump();
    assert_eq!(w.people[2].group_timer_of("family").unwrap(), None);
}

#[test]
fn a_commit_refused_for_good_goes_with_its_intent_and_the_admin_goes_on() {
    let mut w = family();
    w.refuse = 1;
    w.people[0].group_remove("family", "chul").unwrap();
    w.pump();
    assert_eq!(w.people[1].group_members("family").unwrap().len(), 3);
    let id = w.people[0].group_id("family").unwrap();
    assert!(
        w.people[0]
            .chat(id)
            .unwrap()
            .chat
            .pending_commit()
            .is_none()
    );
    // Nothing is stuck behind it: the admin's next commit goes through.
    w.people[0].group_remove("family", "chul").unwrap();
    w.pump();
    assert_eq!(w.seen[2].last().unwrap(), "removed");
    assert_eq!(w.people[1].group_members("family").unwrap().len(), 2);
}
