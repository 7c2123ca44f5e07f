//! Client benchmark: unlock time, the engine beside bare openmls, session
//! send latency to the relay's durable ack, catching up after a night
//! offline, stowing and restoring a profile with 100 contacts, and what one
//! send writes to the vault with few and with many contacts. A real relay runs in-process on loopback with fsync on; the
//! profiles are real encrypted vaults on disk.
//!
//! ```text
//! cargo bench -p ferry-client --bench client -- [--messages 500] [--contacts 1000] [--engine-only]
//! ```
//! Bounded in count; figures are printed, never asserted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Instant;

use ferry_client::session::{RestoreRequest, restore_files};
use ferry_client::{Event, PhraseLanguage, RecoveryPhrase, Session};
use ferry_core::testing::pair;
use ferry_relay::{Relay, RelayConfig};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use rand_core::OsRng;
use secrecy::SecretString;

fn arg(name: &str, default: usize, max: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .clamp(10, max)
}

#[path = "../tests/support/peer.rs"]
mod peer;
use peer::add_peers;

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

/// The engine: MLS encrypt + decrypt with framing, padding, dedup and the
/// change tracking a session persists; no I/O.
fn engine_rate(n: usize) -> f64 {
    let (mut a, mut b, mut relay) = pair("b", "a");
    a.take_changes().unwrap();
    b.take_changes().unwrap();
    let t = Instant::now();
    let mut got = 0;
    for i in 0..n {
        a.send_text(3, &mut OsRng, "b", &format!("message {i}"), false)
            .unwrap();
        // (The inviter's key refresh after 50 messages is delivered too.)
        got += relay
            .deliver(&mut a, &mut b, 3)
            .iter()
            .filter(|e| matches!(e, ferry_core::Event::Message { .. }))
            .count();
        // What a session writes after each step.
        a.take_changes().unwrap();
        b.take_changes().unwrap();
    }
    assert_eq!(got, n);
    n as f64 / t.elapsed().as_secs_f64()
}

/// Bare openmls with the same ciphersuite: two groups kept in memory,
/// create_message + process_message.
fn bare_openmls_rate(n: usize) -> f64 {
    let cs = Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519;
    let (pa, pb) = (OpenMlsRustCrypto::default(), OpenMlsRustCrypto::default());
    let cred = |p: &OpenMlsRustCrypto| {
        let s = SignatureKeyPair::new(cs.signature_algorithm()).unwrap();
        s.store(p.storage()).unwrap();
        let c = CredentialWithKey {
            credential: BasicCredential::new(Vec::new()).into(),
            signature_key: s.public().into(),
        };
        (s, c)
    };
    let (sa, ca) = cred(&pa);
    let (sb, cb) = cred(&pb);
    let kp = KeyPackage::builder().build(cs, &pb, &sb, cb).unwrap();
    let config = MlsGroupCreateConfig::builder()
        .ciphersuite(cs)
        .use_ratchet_tree_extension(true)
        .build();
    let mut ga = MlsGroup::new(&pa, &sa, &config, ca).unwrap();
    let (_, welcome, _) = ga
        .add_members(&pa, &sa, &[kp.key_package().clone()])
        .unwrap();
    ga.merge_pending_commit(&pa).unwrap();
    let welcome =
        MlsMessageIn::tls_deserialize_exact(welcome.tls_serialize_detached().unwrap()).unwrap();
    let MlsMessageBodyIn::Welcome(welcome) = welcome.extract() else {
        panic!("not a welcome")
    };
    let join = MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(true)
        .build();
    let mut gb = StagedWelcome::new_from_welcome(&pb, &join, welcome, None)
        .unwrap()
        .into_group(&pb)
        .unwrap();
    let t = Instant::now();
    for i in 0..n {
        let text = format!("message {i}");
        let out = ga.create_message(&pa, &sa, text.as_bytes()).unwrap();
        let wire = out.tls_serialize_detached().unwrap();
        let msg = MlsMessageIn::tls_deserialize_exact(wire).unwrap();
        let pm = msg.try_into_protocol_message().unwrap();
        let processed = gb.process_message(&pb, pm).unwrap();
        assert!(matches!(
            processed.into_content(),
            ProcessedMessageContent::ApplicationMessage(_)
        ));
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let n = arg("--messages", 500, 20_000);
    let many = arg("--contacts", 1000, 5000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = RelayConfig::new(dir.path().join("relay"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.max_messages_per_mailbox = 100_000;
    // The benchmark measures the client, not the relay's abuse limits.
    config.rate_per_key = ferry_relay::limit::Rate::new(1e9, 1e9);
    config.rate_per_connection = ferry_relay::limit::Rate::new(1e9, 1e9);
    let running = rt.block_on(async { Relay::embedded(config).unwrap().start().await.unwrap() });
    let url = running.url();

    println!("ferry client benchmark ({n} messages; relay on loopback with fsync on)");
    let pass = SecretString::from("benchmark passphrase".to_owned());
    let home = |name: &str| dir.path().join(name);
    drop(Session::init(&home("a"), &pass, &url, None).unwrap());
    drop(Session::init(&home("b"), &pass, &url, None).unwrap());

    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64() * 1000.0
    };
    let mut plain: Vec<f64> = (0..7)
        .map(|_| time(&mut || drop(rt.block_on(Session::unlock(&home("a"), &pass)).unwrap())))
        .collect();
    println!(
        "unlock, no duress set (2 x Argon2id 64 MiB + SQLCipher + engine load): median {:.0} ms",
        percentile(&mut plain, 0.5)
    );

    let (mut engine, mut bare) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        engine.push(engine_rate(n));
        bare.push(bare_openmls_rate(n));
    }
    let (e, b) = (percentile(&mut engine, 0.5), percentile(&mut bare, 0.5));
    println!(
        "engine only (MLS encrypt+decrypt, framing, padding, change tracking; no I/O): {e:.0} messages/s; bare openmls in the same run: {b:.0} messages/s; engine = {:.0}% of bare openmls",
        100.0 * e / b
    );

    if std::env::args().any(|a| a == "--engine-only") {
        return;
    }
    rt.block_on(async {
        // Send latency: session send until the relay's durable ack.
        let mut a = Session::unlock(&home("a"), &pass).await.unwrap();
        let mut b = Session::unlock(&home("b"), &pass).await.unwrap();
        let link = a.invite("b").await.unwrap();
        b.accept(&link.to_link(), "a").await.unwrap();
        a.sync().await.unwrap();
        b.sync().await.unwrap();
        let before = a.write_stats();
        let mut lat = Vec::with_capacity(n);
        for i in 0..n {
            let t = Instant::now();
            a.send("b", &format!("message {i}"), false, false)
                .await
                .unwrap();
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let after = a.write_stats();
        println!(
            "send latency p50 {:.2} ms p99 {:.2} ms (session send to the relay's durable ack; {} vault commits and {} bytes per send)",
            percentile(&mut lat, 0.5),
            percentile(&mut lat, 0.99),
            (after.commits - before.commits) / n as u64,
            (after.bytes - before.bytes) / n as u64,
        );
        let got = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = got.clone();
        b.set_listener(Some(Box::new(move |ev| {
            if matches!(ev, Event::Received { .. }) {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })));
        let t = Instant::now();
        b.sync().await.unwrap();
        let recv = t.elapsed().as_secs_f64();
        assert_eq!(got.load(std::sync::atomic::Ordering::Relaxed), n);
        println!(
            "receive {n} messages from one contact in one sync: {:.0} messages/s",
            n as f64 / recv
        );
        drop((a, b));

        // Catch-up: 100 contacts sent 100 messages each while we were away.
        drop(Session::init(&home("c"), &pass, &url, None).unwrap());
        let mut c = Session::unlock(&home("c"), &pass).await.unwrap();
        let mut peers = add_peers(&mut c, &url, 100, 0).await;
        for (i, p) in peers.iter_mut().enumerate() {
            for j in 0..100 {
                p.queue_text(&format!("from {i}: message {j}"));
            }
            p.flush().await;
        }
        drop(c);
        let got = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = got.clone();
        let t = Instant::now();
        let mut c = Session::unlock(&home("c"), &pass).await.unwrap();
        let unlocked = t.elapsed().as_secs_f64();
        c.set_listener(Some(Box::new(move |ev| {
            if matches!(ev, Event::Received { .. }) {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })));
        let t = Instant::now();
        c.sync().await.unwrap();
        let caught = t.elapsed().as_secs_f64();
        assert_eq!(got.load(std::sync::atomic::Ordering::Relaxed), 10_000);
        println!(
            "catch-up 10000 messages from 100 contacts {caught:.2} s (one session's sync, after an unlock of {unlocked:.2} s)"
        );

        // Stow and restore the same profile (100 contacts; its history of
        // 10000 messages stays behind, as by default).
        let phrase = RecoveryPhrase::generate(&mut OsRng, PhraseLanguage::English);
        let t = Instant::now();
        c.recovery_setup(&phrase, None, &[]).await.unwrap();
        let setup = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let stowed = c.stow(false).await.unwrap();
        let stow = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let restoring = restore_files(RestoreRequest {
            home: &home("c-restored"),
            relay: &url,
            phrase: &phrase,
            pin: None,
            takeover: false,
            network: ferry_client::Network::direct(),
        })
        .await
        .unwrap();
        let claimed = t.elapsed().as_secs_f64();
        let mut c = Session::unlock_restored(restoring, &pass, None).await.unwrap();
        let restored = t.elapsed().as_secs_f64();
        assert_eq!(c.contacts().len(), 100);
        let t = Instant::now();
        c.sync().await.unwrap();
        let synced = t.elapsed().as_secs_f64();
        println!(
            "stow with 100 contacts: {:.1} MB sealed record, {stow:.2} s (canaries renewed, history destroyed, sealed, uploaded, wiped; recovery setup {setup:.2} s); restore {restored:.2} s (phrase Argon2id, claim, install: {claimed:.2} s; then unlock, checkpoint upload, key refresh and mailbox move queued in 100 conversations); first sync after it (sends them) {synced:.2} s",
            stowed.bytes as f64 / 1e6
        );
        drop((c, peers));

        // What one send writes, with 10 and with many contacts.
        for (name, count) in [("few", 10usize), ("many", many)] {
            drop(Session::init(&home(name), &pass, &url, None).unwrap());
            let mut s = Session::unlock(&home(name), &pass).await.unwrap();
            let t = Instant::now();
            let mut peers = add_peers(&mut s, &url, count, 0).await;
            let setup = t.elapsed().as_secs_f64();
            let before = s.write_stats();
            let sends = 200usize;
            let mut lat = Vec::with_capacity(sends);
            for i in 0..sends {
                let alias = format!("peer {}", i % count);
                let t = Instant::now();
                s.send(&alias, "hello", false, false).await.unwrap();
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            let after = s.write_stats();
            println!(
                "with {count} contacts: {} vault bytes written per send ({} commits), send p50 {:.2} ms p99 {:.2} ms (set-up {setup:.1} s)",
                (after.bytes - before.bytes) / sends as u64,
                (after.commits - before.commits) / sends as u64,
                percentile(&mut lat, 0.5),
                percentile(&mut lat, 0.99),
            );
            peers.clear();
        }
    });
    rt.block_on(async { running.shutdown().await.unwrap() });
}
