//! Group chats through a simulated relay log: every member reads the same
//! log in order, and the log takes a commit only against its slot count
//! (compare-and-swap) — the relay's group mailbox in miniature.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::needless_range_loop
)]

use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;

use super::*;

/// An entry of the log: a commit (with its author) or anything else.
#[derive(Clone)]
pub(super) enum Entry {
    Commit { author: usize, bytes: Vec<u8> },
    Other(Vec<u8>),
}

#[derive(Default)]
pub(super) struct Log {
    pub(super) entries: Vec<Entry>,
    /// Commits taken (the relay's epoch).
    pub(super) slots: u64,
}

impl Log {
    /// Takes a commit made when the author had seen `seen` slots.
    pub(super) fn commit(&mut self, author: usize, seen: u64, bytes: Vec<u8>) -> bool {
        if seen != self.slots {
            return false;
        }
        self.slots += 1;
        self.entries.push(Entry::Commit { author, bytes });
        true
    }

    pub(super) fn post(&mut self, bytes: Vec<u8>) {
        self.entries.push(Entry::Other(bytes));
    }
}

pub(super) struct Person {
    pub(super) provider: OpenMlsRustCrypto,
    pub(super) signer: SignatureKeyPair,
    pub(super) chat: Option<GroupChat>,
    pub(super) cursor: usize,
    pub(super) slots: u64,
    pub(super) texts: Vec<(Vec<u8>, Vec<u8>)>,
    /// Bodies of messages from quarantined members.
    pub(super) flagged: Vec<Vec<u8>>,
    /// Alerts refused (a plain member's about someone else).
    pub(super) refused: usize,
    pub(super) skipped: Vec<Refusal>,
    pub(super) removed: bool,
    /// Members who asked to leave.
    pub(super) leaving: Vec<Vec<u8>>,
    /// Log positions of our own commits the relay confirmed.
    pub(super) own: Vec<usize>,
}

impl Person {
    pub(super) fn new() -> Self {
        let provider = OpenMlsRustCrypto::default();
        let signer = new_signer(&provider).unwrap();
        Self {
            provider,
            signer,
            chat: None,
            cursor: 0,
            slots: 0,
            texts: Vec::new(),
            flagged: Vec::new(),
            refused: 0,
            skipped: Vec::new(),
            removed: false,
            leaving: Vec::new(),
            own: Vec::new(),
        }
    }

    pub(super) fn key(&self) -> Vec<u8> {
        self.signer.public().to_vec()
    }

    pub(super) fn chat(&mut self) -> &mut GroupChat {
        self.chat.as_mut().unwrap()
    }

    /// Runs `f` on the chat with this person's provider and signer.
    pub(super) fn act<T>(
        &mut self,
        f: impl FnOnce(&mut GroupChat, &OpenMlsRustCrypto, &SignatureKeyPair) -> T,
    ) -> T {
        f(self.chat.as_mut().unwrap(), &self.provider, &self.signer)
    }

    pub(super) fn key_package(&self, name: &str) -> Vec<u8> {
        key_package(&self.provider, &self.signer, name).unwrap()
    }

    /// Reads the log to its end (skipping its own commits, which the
    /// relay's answer confirmed).
    pub(super) fn catch_up(&mut self, me: usize, log: &Log) {
        while self.cursor < log.entries.len() && !self.removed {
            let entry = log.entries[self.cursor].clone();
            self.cursor += 1;
            let (kind, bytes) = match entry {
                Entry::Commit { author, bytes } => {
                    self.slots += 1;
                    // Our own commits whose answer we got are read past.
                    if author == me && self.own.contains(&(self.cursor - 1)) {
                        continue;
                    }
                    (super::Entry::Commit, bytes)
                }
                Entry::Other(bytes) => (super::Entry::Message, bytes),
            };
            let provider = &self.provider;
            match self
                .chat
                .as_mut()
                .unwrap()
                .receive(provider, kind, &bytes)
                .unwrap()
            {
                Received::Message {
                    from,
                    body,
                    quarantined,
                } => {
                    if quarantined {
                        self.flagged.push(body.clone());
                    }
                    self.texts.push((from, body));
                }
                Received::AlertRefused { .. } => self.refused += 1,
                Received::Skipped(r) => self.skipped.push(r),
                Received::RemovedMe => self.removed = true,
                Received::LeaveRequest { member } => self.leaving.push(member),
                _ => {}
            }
        }
    }

    /// Sends a commit through the log: confirmed if taken, else cancelled.
    pub(super) fn push(&mut self, me: usize, log: &mut Log, out: Outgoing) -> bool {
        let taken = log.commit(me, self.slots, out.commit);
        let provider = &self.provider;
        let chat = self.chat.as_mut().unwrap();
        if taken {
            // Read past when the log comes to it.
            chat.confirm(provider).unwrap();
            self.own.push(log.entries.len() - 1);
        } else {
            chat.cancel(provider).unwrap();
        }
        taken
    }

    pub(super) fn send(&mut self, log: &mut Log, text: &str) {
        let provider = &self.provider;
        let bytes = self
            .chat
            .as_mut()
            .unwrap()
            .send(provider, &self.signer, text.as_bytes())
            .unwrap();
        log.post(bytes);
    }
}

/// A group of `n`: person 0 creates it and adds the others one commit at
/// a time; everyone joins from its welcome and reads on from there.
pub(super) fn group_of(n: usize) -> (Vec<Person>, Log) {
    let mut people: Vec<Person> = (0..n).map(|_| Person::new()).collect();
    let mut log = Log::default();
    let chat = GroupChat::create(&people[0].provider, &people[0].signer, "owner", 0).unwrap();
    people[0].chat = Some(chat);
    for i in 1..n {
        let kp = people[i].key_package(&format!("member {i}"));
        let (first, rest) = people.split_at_mut(1);
        let admin = &mut first[0];
        let out = admin.act(|c, p, s| c.add(p, s, &[kp]).unwrap());
        let welcome = out.welcome.clone().unwrap();
        assert!(admin.push(0, &mut log, out));
        admin.catch_up(0, &log);
        let keys = admin.chat().relay_keys().clone();
        let joiner = &mut rest[i - 1];
        let (chat, adder) = GroupChat::join(&joiner.provider, &welcome, keys).unwrap();
        assert_eq!((adder.name.as_str(), adder.role), ("owner", Role::Owner));
        joiner.chat = Some(chat);
        joiner.cursor = log.entries.len();
        joiner.slots = log.slots;
    }
    for (i, p) in people.iter_mut().enumerate() {
        p.catch_up(i, &log);
    }
    (people, log)
}

pub(super) fn same_epoch(people: &mut [Person]) {
    let first = people[0].chat().epoch_authenticator();
    for p in people.iter_mut().filter(|p| !p.removed) {
        assert_eq!(p.chat().epoch_authenticator(), first);
    }
}

#[test]
fn every_member_reads_the_same_transcript_from_one_upload_each() {
    let (mut people, mut log) = group_of(5);
    for round in 0..4 {
        for i in 0..5 {
            people[i].send(&mut log, &format!("{round}: hello from {i}"));
        }
    }
    for (i, p) in people.iter_mut().enumerate() {
        p.catch_up(i, &log);
    }
    // 20 messages stored once each; everyone but the sender reads each.
    assert_eq!(
        log.entries
            .iter()
            .filter(|e| matches!(e, Entry::Other(_)))
            .count(),
        20
    );
    for (i, p) in people.iter().enumerate() {
        assert_eq!(p.texts.len(), 16, "member {i} read every other member's");
    }
    same_epoch(&mut people);
}

/// A member who gets hold of a commit slot (a compromised admin key at
/// the relay, or a forged entry) cannot add anyone: every member skips
/// the commit alike, and the group goes on.
#[test]
fn every_member_skips_an_add_by_a_non_admin_and_garbage() {
    let (mut people, mut log) = group_of(4);
    let outsider = Person::new();
    let kp = outsider.key_package("outsider");
    let epoch_before = people[0].chat().epoch();
    // Member 3 (no admin) makes an add commit anyway; MLS itself lets it.
    let p3 = &mut people[3];
    let (commit, _, _) = {
        let provider = &p3.provider;
        let kp = KeyPackageIn::tls_deserialize_exact(&kp)
            .unwrap()
            .validate(provider.crypto(), ProtocolVersion::Mls10)
            .unwrap();
        p3.chat
            .as_mut()
            .unwrap()
            .group
            .add_members(provider, &p3.signer, &[kp])
            .unwrap()
    };
    let bytes = commit.tls_serialize_detached().unwrap();
    assert!(p3.push(
        3,
        &mut log,
        Outgoing {
            commit: bytes,
            welcome: None,
            rotate: None
        }
    ));
    // And garbage in the next slot.
    let slots = log.slots;
    assert!(log.commit(3, slots, vec![0xAB; 300]));
    for (i, p) in people.iter_mut().enumerate().take(3) {
        p.catch_up(i, &log);
        assert_eq!(p.skipped, [Refusal::NotAdmin], "member {i} skipped the add");
    }
    // Member 3 applied its own commit locally (its client would not: it
    // is refused by its own check before sending); the others did not.
    for p in people.iter_mut().take(3) {
        assert_eq!(p.chat().epoch(), epoch_before);
    }
    assert_eq!(people[0].chat().members().unwrap().len(), 4);
    // The group goes on: the owner removes member 3, everyone else agrees.
    let key3 = people[3].key();
    let p0 = &mut people[0];
    let out = p0.act(|c, p, s| c.remove(p, s, &key3).unwrap());
    assert!(out.rotate.is_some());
    assert!(p0.push(0, &mut log, out));
    for (i, p) in people.iter_mut().enumerate().take(3) {
        p.catch_up(i, &log);
    }
    let mut rest: Vec<Person> = people.into_iter().take(3).collect();
    same_epoch(&mut rest);
    assert_eq!(rest[0].chat().members().unwrap().len(), 3);
}

/// A removed member sees its removal, then reads nothing sent after it;
/// the others move to new relay keys it does not have.
#[test]
fn a_removed_member_sees_its_removal_and_reads_nothing_after() {
    let (mut people, mut log) = group_of(3);
    let old_keys = people[2].chat().relay_keys().clone();
    people[1].send(&mut log, "before");
    let key2 = people[2].key();
    let p0 = &mut people[0];
    let out = p0.act(|c, p, s| c.remove(p, s, &key2).unwrap());
    let rotate = out.rotate.clone().unwrap();
    assert!(p0.push(0, &mut log, out));
    assert_eq!(
        p0.chat().relay_keys(),
        &rotate,
        "the admin moved on with the relay"
    );
    people[0].send(&mut log, "after");
    for (i, p) in people.iter_mut().enumerate() {
        p.catch_up(i, &log);
    }
    assert!(people[2].removed);
    assert_eq!(
        people[2].texts.len(),
        1,
        "it read what preceded its removal"
    );
    assert_eq!(people[2].texts[0].1, b"before");
    // Even handed what was sent after, it cannot read it.
    let Entry::Other(after) = log.entries.last().unwrap().clone() else {
        panic!()
    };
    let p2 = &mut people[2];
    let provider = &p2.provider;
    assert_eq!(
        p2.chat
            .as_mut()
            .unwrap()
            .receive(provider, super::Entry::Message, &after)
            .unwrap(),
        Received::Ignored
    );
    assert_eq!(people[1].texts.last().unwrap().1, b"after");
    assert_eq!(people[1].chat().relay_keys(), &rotate);
    assert_ne!(rotate, old_keys);
}

#[test]
fn five_admins_racing_for_a_hundred_rounds_never_fork() {
    let (mut people, mut log) = group_of(6);
    // The owner makes members 1-4 admins.
    let mut settings = people[0].chat().settings().unwrap();
    for i in 1..5 {
        settings = settings.with_role(&people[i].key(), Role::Admin);
    }
    let p0 = &mut people[0];
    let out = p0.act(|c, p, s| c.change_settings(p, s, &settings).unwrap());
    assert!(p0.push(0, &mut log, out));
    for (i, p) in people.iter_mut().enumerate() {
        p.catch_up(i, &log);
    }
    let mut conflicts = 0;
    for round in 0..100 {
        // Each admin, from the same view, tries a commit (a settings
        // change: the timer); one wins the slot, the rest re-read.
        let mut outs = Vec::new();
        for i in 0..5 {
            let p = &mut people[i];
            let mut s = p.chat().settings().unwrap();
            s.timer = round * 10 + i as u32;
            let out = p
                .chat
                .as_mut()
                .unwrap()
                .change_settings(&p.provider, &p.signer, &s)
                .unwrap();
            outs.push(out);
        }
        let winner = (round as usize) % 5;
        let mut order = vec![winner];
        order.extend((0..5).filter(|&i| i != winner));
        let mut outs: Vec<Option<Outgoing>> = outs.into_iter().map(Some).collect();
        for (n, &i) in order.iter().enumerate() {
            let out = outs[i].take().unwrap();
            let taken = people[i].push(i, &mut log, out);
            assert_eq!(taken, n == 0, "exactly one commit per slot");
            if !taken {
                conflicts += 1;
            }
        }
        for (i, p) in people.iter_mut().enumerate() {
            p.catch_up(i, &log);
        }
        same_epoch(&mut people);
        // A message in the new epoch reads everywhere.
        people[5].send(&mut log, &format!("round {round}"));
    }
    for (i, p) in people.iter_mut().enumerate() {
        p.catch_up(i, &log);
        assert!(p.skipped.is_empty(), "member {i} skipped nothing");
    }
    assert_eq!(conflicts, 400);
    assert_eq!(people[0].texts.len(), 100, "nothing undecryptable");
}

#[test]
fn a_member_offline_across_twenty_commits_catches_up() {
    let (mut people, mut log) = group_of(3);
    // Member 2 is away while the owner commits 20 times (timer changes)
    // and member 1 talks.
    for n in 0..20 {
        people[0].catch_up(0, &log);
        let p0 = &mut people[0];
        let mut s = p0.chat().settings().unwrap();
        s.timer = 60 + n;
        let out = p0.act(|c, p, sg| c.change_settings(p, sg, &s)).unwrap();
        assert!(out.rotate.is_none());
        assert!(p0.push(0, &mut log, out));
        people[1].catch_up(1, &log);
        people[1].send(&mut log, &format!("message {n}"));
    }
    people[0].catch_up(0, &log);
    people[2].catch_up(2, &log);
    assert_eq!(people[2].texts.len(), 20);
    assert_eq!(people[2].texts[19].1, b"message 19");
    assert_eq!(people[2].chat().settings().unwrap().timer, 79);
    same_epoch(&mut people);
}

#[test]
fn a_member_asks_to_leave_and_an_admin_removes_it() {
    let (mut people, mut log) = group_of(3);
    let key2 = people[2].key();
    let leave = people[2].act(|c, p, s| c.request_leave(p, s)).unwrap();
    log.post(leave);
    // Nobody stores anything for it: everyone can still send before an
    // admin acts (a stored MLS proposal would stop them).
    people[1].catch_up(1, &log);
    people[1].send(&mut log, "still sending");
    people[0].catch_up(0, &log);
    assert_eq!(people[0].leaving, std::slice::from_ref(&key2));
    let p0 = &mut people[0];
    let out = p0.act(|c, p, s| c.remove(p, s, &key2)).unwrap();
    assert!(out.rotate.is_some(), "a leave moves the relay keys on too");
    assert!(p0.push(0, &mut log, out));
    for (i, p) in people.iter_mut().enumerate() {
        p.catch_up(i, &log);
    }
    assert!(people[2].removed);
    assert_eq!(people[1].chat().members().unwrap().len(), 2);
    // The last owner cannot ask to leave.
    assert!(people[0].act(|c, p, s| c.request_leave(p, s)).is_err());
}

#[test]
fn a_member_cannot_make_itself_admin_or_remove_anyone() {
    let (mut people, _log) = group_of(3);
    let key0 = people[0].key();
    let key1 = people[1].key();
    let p1 = &mut people[1];
    let s = p1.chat().settings().unwrap().with_role(&key1, Role::Owner);
    let e = p1
        .chat
        .as_mut()
        .unwrap()
        .change_settings(&p1.provider, &p1.signer, &s)
        .unwrap_err();
    assert!(matches!(e, GroupError::NotAdmin), "{e}");
    let e = p1
        .chat
        .as_mut()
        .unwrap()
        .remove(&p1.provider, &p1.signer, &key0)
        .unwrap_err();
    assert!(matches!(e, GroupError::NotAdmin), "{e}");
    // Garbage and someone else's group's bytes are ignored.
    let provider = &p1.provider;
    let chat = p1.chat.as_mut().unwrap();
    assert_eq!(
        chat.receive(provider, super::Entry::Message, b"not mls")
            .unwrap(),
        Received::Ignored
    );
    assert_eq!(
        chat.receive(provider, super::Entry::Commit, &[]).unwrap(),
        Received::Ignored
    );
}

/// An admin who makes itself owner (bypassing its own client's check) is
/// skipped by everyone: only an owner changes who is admin or owner.
#[test]
fn an_admin_cannot_make_itself_owner() {
    let (mut people, mut log) = group_of(3);
    let key1 = people[1].key();
    let s = people[0]
        .chat()
        .settings()
        .unwrap()
        .with_role(&key1, Role::Admin);
    let out = people[0]
        .act(|c, p, sg| c.change_settings(p, sg, &s))
        .unwrap();
    assert!(people[0].push(0, &mut log, out));
    for (i, p) in people.iter_mut().enumerate() {
        p.catch_up(i, &log);
    }
    assert_eq!(
        people[2].chat().settings().unwrap().role_of(&key1),
        Role::Admin
    );
    let grab = people[1]
        .chat()
        .settings()
        .unwrap()
        .with_role(&key1, Role::Owner);
    let ext = grab.extensions().unwrap();
    let bytes = people[1].act(|c, p, sg| {
        let (commit, _, _) = c.group.update_group_context_extensions(p, ext, sg).unwrap();
        commit.tls_serialize_detached().unwrap()
    });
    let slots = log.slots;
    assert!(log.commit(1, slots, bytes));
    people[0].catch_up(0, &log);
    people[2].catch_up(2, &log);
    assert_eq!(people[0].skipped, [Refusal::NotOwner]);
    assert_eq!(people[2].skipped, [Refusal::NotOwner]);
    assert_eq!(
        people[2].chat().settings().unwrap().role_of(&key1),
        Role::Admin
    );
    // An admin may still change the timer.
    let people1 = &mut people[1];
    people1.act(|c, p, _| c.cancel(p)).unwrap();
    people1.catch_up(1, &log);
    let mut t = people1.chat().settings().unwrap();
    t.timer = 3600;
    let out = people1
        .act(|c, p, sg| c.change_settings(p, sg, &t))
        .unwrap();
    assert!(people1.push(1, &mut log, out));
    people[0].catch_up(0, &log);
    assert_eq!(people[0].chat().settings().unwrap().timer, 3600);
}
