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

    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[0], v[v.len() - 1])
    };
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64() * 1000.0
    };
    let plain: Vec<f64> = (0..7)
        .map(|_| time(&mut || drop(Profile::unlock(&a_home, &pass).unwrap())))
        .collect();
    let (m, lo, hi) = median(plain);
    println!(
        "unlock, no duress set (2 x Argon2id 64 MiB + SQLCipher): median {m:.0} ms (min {lo:.0}, max {hi:.0})"
    );

    // Real and duress unlocks of the same profile, side by side. A duress
    // unlock destroys the real profile, so each one runs on a fresh copy.
    let d_home = dir.path().join("d");
    {
        let mut d = Profile::init(&d_home, &pass, &url, None).unwrap();
        d.set_duress(&SecretString::from("duress words".to_owned()), &url)
            .unwrap();
    }
    let duress = SecretString::from("duress words".to_owned());
    let mut real = Vec::new();
    let mut coerced = Vec::new();
    for i in 0..7 {
        real.push(time(&mut || drop(Profile::unlock(&d_home, &pass).unwrap())));
        let copy = dir.path().join(format!("copy{i}"));
        std::fs::create_dir_all(&copy).unwrap();
        for e in std::fs::read_dir(&d_home).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
        }
        coerced.push(time(&mut || drop(Profile::unlock(&copy, &duress).unwrap())));
    }
    let (r, rlo, rhi) = median(real);
    let (c, clo, chi) = median(coerced);
    println!("unlock with the real passphrase:   median {r:.0} ms (min {rlo:.0}, max {rhi:.0})");
    println!(
        "unlock with the duress passphrase: median {c:.0} ms (min {clo:.0}, max {chi:.0}) (opens the decoy, destroys the real profile)"
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
            a.send("b", &format!("message {i}"), false, false)
                .await
                .unwrap();
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
