//! Client benchmark: unlock time, engine-only (MLS + framing, no I/O) message
//! rate, and full client send + receive rate through a real relay on loopback
//! with the encrypted vault on disk.
//!
//! ```text
//! cargo bench -p ferry-client --bench client -- [--messages 500]
//! ```
//! Bounded in count; figures are printed, never asserted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Instant;

use ferry_client::{Profile, Shown};
use ferry_core::{Action, Engine, Event, InviteLink};
use ferry_relay::{Relay, RelayConfig};
use rand_core::OsRng;
use secrecy::SecretString;

fn messages_arg() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--messages")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(500usize)
        .clamp(10, 20_000)
}

fn engine_rate(n: usize) -> f64 {
    let mut a = Engine::new("http://a");
    let mut b = Engine::new("http://b");
    let link = a.create_invite(0, &mut OsRng, "b", 3600).unwrap();
    let link = InviteLink::parse(&link.to_link()).unwrap();
    b.accept_invite(1, &mut OsRng, &link, "a").unwrap();
    let mut seq = 0u64;
    let mut pump = |from: &mut Engine, to: &mut Engine| {
        let mut got = 0;
        while let Some(act) = from.outbox().first().cloned() {
            from.outbox_done();
            if let Action::Send {
                mailbox, payload, ..
            } = act
            {
                seq += 1;
                if let Event::Message { .. } =
                    to.receive(2, &mut OsRng, mailbox, seq, &payload).unwrap()
                {
                    got += 1;
                }
            }
        }
        got
    };
    pump(&mut b, &mut a);
    pump(&mut a, &mut b);
    let t = Instant::now();
    let mut got = 0;
    for i in 0..n {
        a.send_text(3, &mut OsRng, "b", &format!("message {i}"), false)
            .unwrap();
        got += pump(&mut a, &mut b);
    }
    assert_eq!(got, n);
    n as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let n = messages_arg();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = RelayConfig::new(dir.path().join("relay"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    let running = rt.block_on(async { Relay::embedded(config).unwrap().start().await.unwrap() });
    let url = running.url();

    println!("ferry client benchmark ({n} messages)");
    let pass = SecretString::from("benchmark passphrase".to_owned());
    let (a_home, b_home) = (dir.path().join("a"), dir.path().join("b"));
    drop(Profile::init(&a_home, &pass, &url, None).unwrap());
    drop(Profile::init(&b_home, &pass, &url, None).unwrap());

    let mut unlocks = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        drop(Profile::unlock(&a_home, &pass).unwrap());
        unlocks.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    unlocks.sort_by(f64::total_cmp);
    println!(
        "unlock (Argon2id 64 MiB, 3 passes + SQLCipher open): median {:.0} ms, min {:.0} ms",
        unlocks[2], unlocks[0]
    );

    println!(
        "engine only (MLS encrypt+decrypt, framing, padding; no I/O): {:.0} messages/s",
        engine_rate(n)
    );

    rt.block_on(async {
        let mut a = Profile::unlock(&a_home, &pass).unwrap();
        let mut b = Profile::unlock(&b_home, &pass).unwrap();
        let link = a.invite("b").await.unwrap();
        b.accept(&link.to_link(), "a").await.unwrap();
        a.sync(|_| {}).await.unwrap();
        b.sync(|_| {}).await.unwrap();

        let t = Instant::now();
        for i in 0..n {
            a.send("b", &format!("message {i}"), false).await.unwrap();
        }
        let send = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut got = 0;
        b.sync(|s| {
            if matches!(s, Shown::Message { .. }) {
                got += 1;
            }
        })
        .await
        .unwrap();
        let recv = t.elapsed().as_secs_f64();
        assert_eq!(got, n);
        println!(
            "client send (vault commit + relay ack per message): {:.0} messages/s",
            n as f64 / send
        );
        println!(
            "client receive (one sync: fetch, MLS, vault commit, ack): {:.0} messages/s",
            n as f64 / recv
        );
        println!(
            "client send+receive end to end: {:.0} messages/s",
            n as f64 / (send + recv)
        );
    });
    rt.block_on(async { running.shutdown().await.unwrap() });
}
