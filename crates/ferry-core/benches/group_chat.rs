//! Ferry's group engine (`ferry_core::group::GroupChat`, roles checked on
//! every commit) at 100 and 1,000 members: the time to add a member, to
//! send a message and to process one, the sizes of welcomes, commits and
//! the tree, and a member's catch-up after N messages. Prints figures;
//! asserts only that the member stays in step.
//!
//! ```text
//! cargo bench -p ferry-core --bench group_chat -- [--members 100,1000] [--messages 1000]
//! ```
//!
//! The creator (owner) commits; one member (the observer, its own store)
//! joins from the welcome and reads everything the creator sends; the
//! other members' key packages are made in a shared store.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::time::{Duration, Instant};

use ferry_core::group::{self, Entry, GroupChat, Received};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn kib(n: usize) -> String {
    if n < 10 * 1024 {
        format!("{n} B")
    } else {
        format!("{:.1} KiB", n as f64 / 1024.0)
    }
}

struct Person {
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
}

impl Person {
    fn new() -> Self {
        let provider = OpenMlsRustCrypto::default();
        let signer = group::new_signer(&provider).unwrap();
        Self { provider, signer }
    }
}

fn receive(p: &Person, chat: &mut GroupChat, kind: Entry, wire: &[u8]) -> (Duration, Received) {
    let t = Instant::now();
    let r = chat.receive(&p.provider, kind, wire).unwrap();
    (t.elapsed(), r)
}

fn run(members: usize, messages: usize) {
    println!("\n## {members} members");
    let creator = Person::new();
    let observer = Person::new();
    let shared = OpenMlsRustCrypto::default();
    let mut owner = GroupChat::create(&creator.provider, &creator.signer, "owner", 0).unwrap();
    let mut kps =
        vec![group::key_package(&observer.provider, &observer.signer, "observer").unwrap()];
    for i in 2..members {
        let s = group::new_signer(&shared).unwrap();
        kps.push(group::key_package(&shared, &s, &format!("member {i}")).unwrap());
    }
    println!("key package: {}", kib(kps[0].len()));
    let t = Instant::now();
    let out = owner.add(&creator.provider, &creator.signer, &kps).unwrap();
    owner.confirm(&creator.provider).unwrap();
    let welcome = out.welcome.unwrap();
    println!(
        "add {} at once: {}; commit {}, welcome {}",
        kps.len(),
        ms(t.elapsed()),
        kib(out.commit.len()),
        kib(welcome.len())
    );
    let t = Instant::now();
    let (mut seen, _) =
        GroupChat::join(&observer.provider, &welcome, owner.relay_keys().clone()).unwrap();
    println!("join from the welcome: {}", ms(t.elapsed()));

    let t = Instant::now();
    let s = group::new_signer(&shared).unwrap();
    let kp = group::key_package(&shared, &s, "newcomer").unwrap();
    let out = owner
        .add(&creator.provider, &creator.signer, &[kp])
        .unwrap();
    owner.confirm(&creator.provider).unwrap();
    let add = t.elapsed();
    let (took, r) = receive(&observer, &mut seen, Entry::Commit, &out.commit);
    assert!(matches!(r, Received::Applied { .. }), "{r:?}");
    println!(
        "add 1: {} (commit {}, welcome {}); a member checks and applies it in {}",
        ms(add),
        kib(out.commit.len()),
        kib(out.welcome.map_or(0, |w| w.len())),
        ms(took)
    );

    let others: Vec<Vec<u8>> = owner
        .members()
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .filter(|k| *k != owner.own_key() && *k != seen.own_key())
        .collect();
    for (i, victim) in others.iter().step_by(7).take(3).enumerate() {
        let t = Instant::now();
        let out = owner
            .remove(&creator.provider, &creator.signer, victim)
            .unwrap();
        owner.confirm(&creator.provider).unwrap();
        let remove = t.elapsed();
        let (took, r) = receive(&observer, &mut seen, Entry::Commit, &out.commit);
        assert!(
            matches!(r, Received::Applied { rotated: true, .. }),
            "{r:?}"
        );
        println!(
            "remove 1 (#{}), relay keys moved on: {} (commit {}); a member applies it in {}",
            i + 1,
            ms(remove),
            kib(out.commit.len()),
            ms(took)
        );
    }

    let text = [0x61u8; 40];
    let mut wires = Vec::with_capacity(messages);
    let t = Instant::now();
    for _ in 0..messages {
        wires.push(
            owner
                .send(&creator.provider, &creator.signer, &text)
                .unwrap(),
        );
    }
    let send = t.elapsed();
    let t = Instant::now();
    for w in &wires {
        let r = seen.receive(&observer.provider, Entry::Message, w).unwrap();
        assert!(matches!(r, Received::Message { .. }));
    }
    let catch_up = t.elapsed();
    println!(
        "message (40 B text): {} on the wire; {} to send one; a member catches up on {} in {} ({} each)",
        kib(wires[0].len()),
        ms(send / messages as u32),
        messages,
        ms(catch_up),
        ms(catch_up / messages as u32)
    );
    assert_eq!(
        seen.epoch_authenticator(),
        owner.epoch_authenticator(),
        "the member is in step"
    );
}

fn main() {
    let mut members = vec![100, 1000];
    let mut messages = 1000;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--members" => {
                members = args
                    .next()
                    .unwrap()
                    .split(',')
                    .map(|n| n.parse().unwrap())
                    .collect();
            }
            "--messages" => messages = args.next().unwrap().parse().unwrap(),
            _ => {}
        }
    }
    println!("# Ferry group chats (ferry_core::group, openmls 0.9, ciphersuite 0x0003)");
    for n in members {
        run(n.max(30), messages.max(1));
    }
}
