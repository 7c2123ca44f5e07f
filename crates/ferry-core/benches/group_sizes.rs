//! How large MLS messages get, and how long MLS operations take, in a group
//! of 100 and of 1,000 members (issue 16: "measure sizes first"). Prints a
//! table; asserts nothing about speed.
//!
//! ```text
//! cargo bench -p ferry-core --bench group_sizes -- [--members 100,1000] [--messages 1000]
//! ```
//!
//! openmls with the same ciphersuite and settings as Ferry's conversations
//! (0x0003, ratchet tree in the welcome, one past epoch). One member (the
//! creator) commits; one other member (the observer, with its own store)
//! joins from the welcome and processes what the creator sends; every
//! other member's key package is made in a shared store, as only their
//! public parts matter here.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::time::{Duration, Instant};

use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;

const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519;

struct Member {
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
}

impl Member {
    fn new() -> Self {
        let provider = OpenMlsRustCrypto::default();
        let signer = SignatureKeyPair::new(SUITE.signature_algorithm()).unwrap();
        signer.store(provider.storage()).unwrap();
        Self { provider, signer }
    }

    fn credential(&self) -> CredentialWithKey {
        CredentialWithKey {
            credential: BasicCredential::new(Vec::new()).into(),
            signature_key: self.signer.public().into(),
        }
    }

    fn key_package(&self) -> KeyPackage {
        KeyPackage::builder()
            .build(SUITE, &self.provider, &self.signer, self.credential())
            .unwrap()
            .key_package()
            .clone()
    }
}

/// A key package of a member whose private keys go into `shared`.
fn other_key_package(shared: &OpenMlsRustCrypto) -> KeyPackage {
    let signer = SignatureKeyPair::new(SUITE.signature_algorithm()).unwrap();
    let credential = CredentialWithKey {
        credential: BasicCredential::new(Vec::new()).into(),
        signature_key: signer.public().into(),
    };
    KeyPackage::builder()
        .build(SUITE, shared, &signer, credential)
        .unwrap()
        .key_package()
        .clone()
}

fn size(m: &impl tls_codec::Serialize) -> usize {
    m.tls_serialized_len()
}

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

/// Wire bytes → what the observer's group makes of them.
fn process(observer: &Member, group: &mut MlsGroup, wire: &[u8]) -> Duration {
    let msg = MlsMessageIn::tls_deserialize_exact(wire).unwrap();
    let pm = msg.try_into_protocol_message().unwrap();
    let t = Instant::now();
    let processed = group.process_message(&observer.provider, pm).unwrap();
    if let ProcessedMessageContent::StagedCommitMessage(c) = processed.into_content() {
        group.merge_staged_commit(&observer.provider, *c).unwrap();
    }
    t.elapsed()
}

fn run(members: usize, messages: usize) {
    println!("\n## {members} members");
    let creator = Member::new();
    let observer = Member::new();
    let shared = OpenMlsRustCrypto::default();
    let config = MlsGroupCreateConfig::builder()
        .ciphersuite(SUITE)
        .use_ratchet_tree_extension(true)
        .max_past_epochs(1)
        .build();
    let mut group = MlsGroup::new(
        &creator.provider,
        &creator.signer,
        &config,
        creator.credential(),
    )
    .unwrap();
    let t = Instant::now();
    let mut kps = vec![observer.key_package()];
    kps.extend((2..members).map(|_| other_key_package(&shared)));
    println!(
        "key packages: {} each, {} to make {}",
        size(&kps[0]),
        ms(t.elapsed()),
        kps.len()
    );

    let t = Instant::now();
    let (commit, welcome, _) = group
        .add_members(&creator.provider, &creator.signer, &kps)
        .unwrap();
    group.merge_pending_commit(&creator.provider).unwrap();
    println!(
        "add {} at once: {}; commit {}, welcome {}",
        kps.len(),
        ms(t.elapsed()),
        kib(size(&commit)),
        kib(size(&welcome))
    );
    println!("ratchet tree: {}", kib(size(&group.export_ratchet_tree())));

    let welcome_bytes = welcome.tls_serialize_detached().unwrap();
    let t = Instant::now();
    let MlsMessageBodyIn::Welcome(w) = MlsMessageIn::tls_deserialize_exact(&welcome_bytes)
        .unwrap()
        .extract()
    else {
        panic!("not a welcome")
    };
    let join = MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(true)
        .max_past_epochs(1)
        .build();
    let mut seen = StagedWelcome::new_from_welcome(&observer.provider, &join, w, None)
        .unwrap()
        .into_group(&observer.provider)
        .unwrap();
    println!("join from the welcome: {}", ms(t.elapsed()));

    // One more member, as an admin adds a contact.
    let t = Instant::now();
    let newcomer = other_key_package(&shared);
    let (commit, welcome, _) = group
        .add_members(&creator.provider, &creator.signer, &[newcomer])
        .unwrap();
    group.merge_pending_commit(&creator.provider).unwrap();
    let add_time = t.elapsed();
    let wire = commit.tls_serialize_detached().unwrap();
    let took = process(&observer, &mut seen, &wire);
    println!(
        "add 1: {} (commit {}, welcome {}); a member processes it in {}",
        ms(add_time),
        kib(wire.len()),
        kib(size(&welcome)),
        ms(took)
    );

    // A removal (leaves a blank in the tree: the next commits' paths
    // grow).
    for i in 0..3u32 {
        let t = Instant::now();
        let (commit, _, _) = group
            .remove_members(
                &creator.provider,
                &creator.signer,
                &[LeafNodeIndex::new(2 + i * 7)],
            )
            .unwrap();
        group.merge_pending_commit(&creator.provider).unwrap();
        let remove_time = t.elapsed();
        let wire = commit.tls_serialize_detached().unwrap();
        let took = process(&observer, &mut seen, &wire);
        println!(
            "remove 1 (#{}): {} (commit {}); a member processes it in {}",
            i + 1,
            ms(remove_time),
            kib(wire.len()),
            ms(took)
        );
    }

    let t = Instant::now();
    let bundle = group
        .self_update(
            &creator.provider,
            &creator.signer,
            LeafNodeParameters::default(),
        )
        .unwrap();
    group.merge_pending_commit(&creator.provider).unwrap();
    let update_time = t.elapsed();
    let wire = bundle.commit().tls_serialize_detached().unwrap();
    let took = process(&observer, &mut seen, &wire);
    println!(
        "key update commit: {} ({}); a member processes it in {}",
        ms(update_time),
        kib(wire.len()),
        ms(took)
    );
    println!(
        "ratchet tree after: {}",
        kib(size(&group.export_ratchet_tree()))
    );

    // Messages: one short text's size, the time to make one, and a
    // member's catch-up over `messages` of them.
    let text = [0x61u8; 40];
    let mut wires = Vec::with_capacity(messages);
    let t = Instant::now();
    for _ in 0..messages {
        let m = group
            .create_message(&creator.provider, &creator.signer, &text)
            .unwrap();
        wires.push(m.tls_serialize_detached().unwrap());
    }
    let send = t.elapsed();
    let t = Instant::now();
    for w in &wires {
        process(&observer, &mut seen, w);
    }
    let catch_up = t.elapsed();
    println!(
        "message (40 B text): {} on the wire; {} to send one; a member catches up on {} in {} ({} each)",
        wires[0].len(),
        ms(send / messages as u32),
        messages,
        ms(catch_up),
        ms(catch_up / messages as u32)
    );
    assert_eq!(
        seen.epoch_authenticator().as_slice(),
        group.epoch_authenticator().as_slice(),
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
    println!("# MLS group sizes and times (openmls, ciphersuite 0x0003)");
    for n in members {
        run(n.max(3), messages.max(1));
    }
}
