//! Load benchmark for the relay: N concurrent clients doing send -> fetch ->
//! ack over HTTP and over the WebSocket, pipelined durable sends, live
//! push latency (send -> pushed to a subscriber), and a well-behaved
//! client's send latency alone and while one key and one connection flood
//! a relay with its default abuse limits.
//!
//! ```text
//! cargo bench -p ferry-relay --bench relay_load -- [--seconds 5] [--clients 32] [--no-fsync]
//! ```
//!
//! The relay runs in this process on its own runtime (2 worker threads) and
//! real loopback sockets; the clients run on a second runtime. Every phase is
//! bounded in time. Figures are printed, never asserted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_client::RelayClient;
use ferry_proto::api::ServerFrame;
use ferry_proto::{MailboxId, MailboxKey, Seq};
use ferry_relay::{Relay, RelayConfig};
use rand_core::OsRng;

struct Opts {
    seconds: u64,
    clients: usize,
    fsync: bool,
}

fn opts() -> Opts {
    let mut o = Opts {
        seconds: 5,
        clients: 32,
        fsync: true,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--seconds" => {
                o.seconds = args
                    .get(i + 1)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(o.seconds)
                    .clamp(1, 60);
                i += 1;
            }
            "--clients" => {
                o.clients = args
                    .get(i + 1)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(o.clients)
                    .clamp(1, 512);
                i += 1;
            }
            "--no-fsync" => o.fsync = false,
            _ => {} // cargo bench passes --bench
        }
        i += 1;
    }
    o
}

struct Mb {
    id: MailboxId,
    recipient: MailboxKey,
    sender: MailboxKey,
}

async fn mailbox(c: &RelayClient) -> Mb {
    let m = Mb {
        id: MailboxId::random(&mut OsRng),
        recipient: MailboxKey::generate(&mut OsRng),
        sender: MailboxKey::generate(&mut OsRng),
    };
    c.create_mailbox(m.id, &m.recipient).await.unwrap();
    c.set_sender(m.id, &m.recipient, m.sender.public())
        .await
        .unwrap();
    m
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx].as_secs_f64() * 1000.0
}

fn report(name: &str, clients: usize, took: Duration, mut lat: Vec<Duration>) {
    lat.sort_unstable();
    println!(
        "{name:<34} {clients:>7} {:>9} {:>11.0} {:>9.3} {:>9.3}",
        lat.len(),
        lat.len() as f64 / took.as_secs_f64(),
        pct(&lat, 0.50),
        pct(&lat, 0.99)
    );
}

async fn http_round_trips(
    url: &str,
    clients: usize,
    size: usize,
    secs: u64,
) -> (Duration, Vec<Duration>) {
    let c = Arc::new(RelayClient::new(url).unwrap());
    let mut boxes = Vec::new();
    for _ in 0..clients {
        boxes.push(mailbox(&c).await);
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let tasks = boxes.into_iter().map(|m| {
        let c = Arc::clone(&c);
        tokio::spawn(async move {
            let payload = vec![0xA5u8; size];
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                let seq = c.send(m.id, &m.sender, payload.clone()).await.unwrap();
                let f = c
                    .fetch(m.id, &m.recipient, Seq(seq.0 - 1), None)
                    .await
                    .unwrap();
                assert_eq!(f.messages.len(), 1);
                c.ack(m.id, &m.recipient, seq).await.unwrap();
                lat.push(t.elapsed());
            }
            lat
        })
    });
    let mut all = Vec::new();
    for t in futures_util::future::join_all(tasks).await {
        all.extend(t.unwrap());
    }
    (started.elapsed(), all)
}

async fn ws_round_trips(
    url: &str,
    clients: usize,
    size: usize,
    secs: u64,
) -> (Duration, Vec<Duration>) {
    let c = Arc::new(RelayClient::new(url).unwrap());
    let mut boxes = Vec::new();
    for _ in 0..clients {
        boxes.push(mailbox(&c).await);
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let tasks = boxes.into_iter().map(|m| {
        let c = Arc::clone(&c);
        tokio::spawn(async move {
            let mut live = c.connect_live().await.unwrap();
            let r = live
                .subscribe(&[(m.id, &m.recipient, Seq(0))])
                .await
                .unwrap();
            live.wait_for(r, |_| {}).await.unwrap();
            let r = live.authorize_send(&[(m.id, &m.sender)]).await.unwrap();
            live.wait_for(r, |_| {}).await.unwrap();
            let payload = vec![0x5Au8; size];
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                live.send(m.id, payload.clone()).await.unwrap();
                // Wait for both the durable `sent` and the pushed message.
                let (mut sent, mut got) = (None, None);
                while sent.is_none() || got.is_none() {
                    match live.next().await.unwrap().unwrap() {
                        ServerFrame::Sent { seq, .. } => sent = Some(seq),
                        ServerFrame::Message { message, .. } => got = Some(message.seq),
                        other => panic!("unexpected {other:?}"),
                    }
                }
                let r = live.ack(m.id, got.unwrap()).await.unwrap();
                live.wait_for(r, |_| {}).await.unwrap();
                lat.push(t.elapsed());
            }
            lat
        })
    });
    let mut all = Vec::new();
    for t in futures_util::future::join_all(tasks).await {
        all.extend(t.unwrap());
    }
    (started.elapsed(), all)
}

/// Durable sends only, each connection keeping `window` sends in flight.
async fn ws_pipelined_sends(
    url: &str,
    clients: usize,
    size: usize,
    secs: u64,
) -> (Duration, Vec<Duration>) {
    const WINDOW: usize = 32;
    let c = Arc::new(RelayClient::new(url).unwrap());
    let mut boxes = Vec::new();
    for _ in 0..clients {
        boxes.push(mailbox(&c).await);
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let tasks = boxes.into_iter().map(|m| {
        let c = Arc::clone(&c);
        tokio::spawn(async move {
            let mut live = c.connect_live().await.unwrap();
            let r = live.authorize_send(&[(m.id, &m.sender)]).await.unwrap();
            live.wait_for(r, |_| {}).await.unwrap();
            let payload = vec![0x33u8; size];
            let mut lat = Vec::new();
            let mut in_flight = std::collections::HashMap::new();
            loop {
                let open = Instant::now() < deadline;
                while open && in_flight.len() < WINDOW {
                    let r = live.send(m.id, payload.clone()).await.unwrap();
                    in_flight.insert(r, Instant::now());
                }
                if in_flight.is_empty() {
                    break;
                }
                match live.next().await.unwrap().unwrap() {
                    ServerFrame::Sent { req, .. } => {
                        if let Some(t) = in_flight.remove(&req) {
                            lat.push(t.elapsed());
                        }
                    }
                    ServerFrame::Error { code, .. } => panic!("send failed: {code:?}"),
                    _ => {}
                }
            }
            let _ = c.ack(m.id, &m.recipient, Seq(u64::MAX >> 1)).await;
            lat
        })
    });
    let mut all = Vec::new();
    for t in futures_util::future::join_all(tasks).await {
        all.extend(t.unwrap());
    }
    (started.elapsed(), all)
}

/// Time from a send leaving the sender to the push reaching a subscriber.
async fn push_latency(url: &str, samples: usize, over_ws: bool) -> Vec<Duration> {
    let c = RelayClient::new(url).unwrap();
    let m = mailbox(&c).await;
    let mut sub = c.connect_live().await.unwrap();
    let r = sub
        .subscribe(&[(m.id, &m.recipient, Seq(0))])
        .await
        .unwrap();
    sub.wait_for(r, |_| {}).await.unwrap();
    let mut sender = c.connect_live().await.unwrap();
    let r = sender.authorize_send(&[(m.id, &m.sender)]).await.unwrap();
    sender.wait_for(r, |_| {}).await.unwrap();
    let payload = vec![7u8; 256];
    let mut lat = Vec::with_capacity(samples);
    let until = Instant::now() + Duration::from_secs(20);
    for _ in 0..samples {
        if Instant::now() > until {
            break;
        }
        let t = Instant::now();
        let seq;
        let sent_req = if over_ws {
            sender.send(m.id, payload.clone()).await.unwrap()
        } else {
            let c2 = &c;
            let (id, key, p) = (m.id, &m.sender, payload.clone());
            // HTTP send runs concurrently with waiting for the push.
            let send = c2.send(id, key, p);
            let recv = async {
                loop {
                    if let ServerFrame::Message { message, .. } = sub.next().await.unwrap().unwrap()
                    {
                        return message.seq;
                    }
                }
            };
            let (sent, pushed) = tokio::join!(send, recv);
            lat.push(t.elapsed());
            let _ = sent.unwrap();
            let r = sub.ack(m.id, pushed).await.unwrap();
            sub.wait_for(r, |_| {}).await.unwrap();
            continue;
        };
        loop {
            if let ServerFrame::Message { message, .. } = sub.next().await.unwrap().unwrap() {
                seq = message.seq;
                break;
            }
        }
        lat.push(t.elapsed());
        // Drain the sender's `sent` and ack on the subscriber.
        sender.wait_for(sent_req, |_| {}).await.unwrap();
        let r = sub.ack(m.id, seq).await.unwrap();
        sub.wait_for(r, |_| {}).await.unwrap();
    }
    lat
}

/// A well-behaved sender: `rate` sends per second until `until`; returns
/// each send's latency.
async fn steady_sender(url: &str, rate: u32, until: Instant) -> Vec<Duration> {
    let c = RelayClient::new(url).unwrap();
    let m = mailbox(&c).await;
    let payload = vec![0x11u8; 256];
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
    let mut lat = Vec::new();
    while Instant::now() < until {
        tick.tick().await;
        let t = Instant::now();
        c.send(m.id, &m.sender, payload.clone()).await.unwrap();
        lat.push(t.elapsed());
    }
    lat
}

/// Sends as fast as possible with one key from `tasks` tasks; returns
/// (accepted, refused as rate_limited).
async fn key_flood(url: &str, tasks: usize, until: Instant) -> (u64, u64) {
    let c = Arc::new(RelayClient::new(url).unwrap());
    let m = Arc::new(mailbox(&c).await);
    let jobs = (0..tasks).map(|_| {
        let (c, m) = (Arc::clone(&c), Arc::clone(&m));
        tokio::spawn(async move {
            let (mut ok, mut limited) = (0, 0);
            while Instant::now() < until {
                match c.send(m.id, &m.sender, vec![0x22u8; 256]).await {
                    Ok(_) => ok += 1,
                    Err(e) if e.code() == Some(ferry_proto::ErrorCode::RateLimited) => limited += 1,
                    Err(e) => panic!("flood: {e}"),
                }
            }
            (ok, limited)
        })
    });
    let mut total = (0, 0);
    for j in futures_util::future::join_all(jobs).await {
        let (a, b) = j.unwrap();
        total = (total.0 + a, total.1 + b);
    }
    total
}

/// Unauthenticated requests as fast as possible on one keep-alive
/// connection (raw HTTP/1.1, so it really is one connection); returns
/// (answered otherwise, refused as rate_limited).
async fn connection_flood(url: &str, until: Instant) -> (u64, u64) {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
    let addr = url.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut conn = tokio::io::BufReader::new(stream);
    let request =
        format!("POST /v1/sync HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 2\r\n\r\n{{}}");
    let (mut other, mut limited) = (0, 0);
    while Instant::now() < until {
        conn.get_mut().write_all(request.as_bytes()).await.unwrap();
        let mut status = 0u16;
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            if conn.read_line(&mut line).await.unwrap() == 0 {
                panic!("the relay closed the connection");
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some(rest) = l.strip_prefix("HTTP/1.1 ") {
                status = rest[..3].parse().unwrap();
            } else if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length: ") {
                length = v.parse().unwrap();
            }
        }
        let mut body = vec![0u8; length];
        conn.read_exact(&mut body).await.unwrap();
        if status == 429 {
            limited += 1;
        } else {
            other += 1;
        }
    }
    (other, limited)
}

/// The abuse phase, against a relay with the default limits.
async fn abuse(url: &str, secs: u64) {
    // Let the earlier phases' writes settle first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rate = 50;
    let mut alone = steady_sender(url, rate, Instant::now() + Duration::from_secs(secs)).await;
    let until = Instant::now() + Duration::from_secs(secs);
    let (flooded, keys, conns) = tokio::join!(
        steady_sender(url, rate, until),
        key_flood(url, 4, until),
        connection_flood(url, until),
    );
    let mut flooded = flooded;
    alone.sort_unstable();
    flooded.sort_unstable();
    println!(
        "abuse (default limits): a client sending {rate}/s, alone: p50 {:.3} ms p99 {:.3} ms; \
         during floods: p50 {:.3} ms p99 {:.3} ms ({:.2}x p99)",
        pct(&alone, 0.5),
        pct(&alone, 0.99),
        pct(&flooded, 0.5),
        pct(&flooded, 0.99),
        pct(&flooded, 0.99) / pct(&alone, 0.99),
    );
    println!(
        "  one key, 4 tasks: {} accepted, {} rate_limited; one connection: {} answered, {} rate_limited",
        keys.0, keys.1, conns.0, conns.1
    );
}

fn main() {
    let o = opts();
    let dir = tempfile::tempdir().unwrap();
    let mut config = RelayConfig::new(dir.path().to_owned());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.max_messages_per_mailbox = 10_000_000;
    config.max_bytes_per_mailbox = 1 << 40;
    config.fsync = o.fsync;
    config.replay_cache_entries = 50_000_000;
    // Throughput phases measure the relay, not its abuse limits (the last
    // phase runs a second relay with the defaults).
    config.rate_per_key = ferry_relay::limit::Rate::new(1e9, 1e9);
    config.rate_per_connection = ferry_relay::limit::Rate::new(1e9, 1e9);
    let mut defaults = RelayConfig::new(dir.path().join("abuse"));
    defaults.listen = "127.0.0.1:0".parse().unwrap();
    defaults.fsync = o.fsync;

    let relay_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("relay")
        .enable_all()
        .build()
        .unwrap();
    let running =
        relay_rt.block_on(async { Relay::embedded(config).unwrap().start().await.unwrap() });
    let url = running.url();
    let guarded =
        relay_rt.block_on(async { Relay::embedded(defaults).unwrap().start().await.unwrap() });

    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("client")
        .enable_all()
        .build()
        .unwrap();
    println!(
        "ferry relay load: {} s per phase, {} clients, fsync {}, {} cores",
        o.seconds,
        o.clients,
        if o.fsync { "on" } else { "off" },
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "{:<34} {:>7} {:>9} {:>11} {:>9} {:>9}",
        "phase", "clients", "messages", "messages/s", "p50 ms", "p99 ms"
    );
    client_rt.block_on(async {
        for size in [256usize, 16 * 1024] {
            let (t, lat) = http_round_trips(&url, o.clients, size, o.seconds).await;
            report(&format!("http send+fetch+ack {size} B"), o.clients, t, lat);
            let (t, lat) = ws_round_trips(&url, o.clients, size, o.seconds).await;
            report(&format!("ws send+push+ack {size} B"), o.clients, t, lat);
        }
        for size in [256usize, 16 * 1024] {
            let (t, lat) = ws_pipelined_sends(&url, o.clients, size, o.seconds).await;
            report(
                &format!("ws durable sends {size} B (x32 pipelined)"),
                o.clients,
                t,
                lat,
            );
        }
        let mut lat = push_latency(&url, 2000, true).await;
        lat.sort_unstable();
        println!(
            "push latency ws send -> subscriber:   p50 {:.3} ms  p99 {:.3} ms  ({} samples)",
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            lat.len()
        );
        let mut lat = push_latency(&url, 2000, false).await;
        lat.sort_unstable();
        println!(
            "push latency http send -> subscriber: p50 {:.3} ms  p99 {:.3} ms  ({} samples)",
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            lat.len()
        );
        abuse(&guarded.url(), o.seconds).await;
    });
    relay_rt.block_on(async {
        running.shutdown().await.unwrap();
        guarded.shutdown().await.unwrap();
    });
}
