//! The relay's abuse limits, each tried as an abuser would, against the
//! real binary: a key and a connection that flood, too many WebSockets and
//! subscriptions, canaries piled on one mailbox, and blob space grabbed
//! without a key or beyond a key's budget. Each refusal carries its code
//! and is counted in /metrics; well-behaved clients lose nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::time::Duration;

use common::{User, bin, mailbox};
use ferry_client::RelayClient;
use ferry_client::transfer::BlobClient;
use ferry_proto::api::ServerFrame;
use ferry_proto::{ErrorCode, MailboxId, MailboxKey, Seq};
use ferry_testkit::RelayProcess;
use rand_core::OsRng;

fn http() -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap()
}

/// The count of refusals by `limit` in /metrics (served to loopback).
async fn limited(url: &str, limit: &str) -> u64 {
    let text = http()
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = format!("ferry_limited_total{{limit=\"{limit}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(line.as_str()))
        .unwrap_or_else(|| panic!("no {line} in metrics"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_key_is_limited_while_another_key_is_served() {
    let r = RelayProcess::start(bin(), &["--rate-per-key", "5", "--burst-per-key", "10"]).unwrap();
    let c = RelayClient::new(r.url()).unwrap();
    let (flood, calm) = (mailbox(&c).await, mailbox(&c).await);
    let (mut accepted, mut refused) = (0u64, 0u64);
    let started = std::time::Instant::now();
    for i in 0..40u8 {
        match c.send(flood.id, &flood.sender, vec![i; 256]).await {
            Ok(_) => accepted += 1,
            Err(e) => {
                assert_eq!(e.code(), Some(ErrorCode::RateLimited), "{e}");
                assert!(!e.is_permanent(), "a client retries rate_limited");
                refused += 1;
            }
        }
    }
    // The burst of 10, plus 5 a second for as long as the flood lasted.
    let allowance = 10 + (5.0 * started.elapsed().as_secs_f64()).ceil() as u64;
    assert!(
        accepted >= 10 && accepted <= allowance,
        "{accepted} accepted, allowance {allowance}"
    );
    assert_eq!(accepted + refused, 40);
    assert!(refused > 0);
    // Another key is not held back.
    for i in 0..5u8 {
        c.send(calm.id, &calm.sender, vec![i; 256]).await.unwrap();
    }
    // What was accepted is all there, once, in order; the flooder's
    // allowance comes back with time.
    let got = c
        .fetch(flood.id, &flood.recipient, Seq(0), None)
        .await
        .unwrap();
    assert_eq!(got.messages.len() as u64, accepted);
    tokio::time::sleep(Duration::from_millis(600)).await;
    c.send(flood.id, &flood.sender, vec![0xEE; 256])
        .await
        .unwrap();
    assert!(limited(r.url(), "key").await >= refused);
}

/// One keep-alive HTTP/1.1 connection, spoken by hand so that it really
/// stays one connection (a pooled client may open another at any time).
struct RawConnection(std::io::BufReader<std::net::TcpStream>);

impl RawConnection {
    fn open(url: &str) -> Self {
        let addr = url.trim_start_matches("http://");
        Self(std::io::BufReader::new(
            std::net::TcpStream::connect(addr).unwrap(),
        ))
    }

    /// POSTs `{}` to /v1/sync; returns (status, Retry-After, body).
    fn post_sync(&mut self) -> (u16, Option<String>, String) {
        use std::io::{BufRead as _, Read as _, Write as _};
        self.0
            .get_mut()
            .write_all(b"POST /v1/sync HTTP/1.1\r\nHost: relay\r\nContent-Length: 2\r\n\r\n{}")
            .unwrap();
        let (mut status, mut retry, mut length) = (0u16, None, 0usize);
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                self.0.read_line(&mut line).unwrap() > 0,
                "connection closed"
            );
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let lower = l.to_ascii_lowercase();
            if let Some(rest) = l.strip_prefix("HTTP/1.1 ") {
                status = rest[..3].parse().unwrap();
            } else if let Some(v) = lower.strip_prefix("content-length: ") {
                length = v.parse().unwrap();
            } else if let Some(v) = lower.strip_prefix("retry-after: ") {
                retry = Some(v.to_owned());
            }
        }
        let mut body = vec![0u8; length];
        self.0.read_exact(&mut body).unwrap();
        (status, retry, String::from_utf8(body).unwrap())
    }
}

#[test]
fn a_flooding_connection_is_limited_and_others_are_not() {
    let r = RelayProcess::start(
        bin(),
        &[
            "--rate-per-connection",
            "0.5",
            "--burst-per-connection",
            "10",
        ],
    )
    .unwrap();
    let mut one = RawConnection::open(r.url());
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let (status, retry, body) = one.post_sync();
        statuses.push(status);
        if status == 429 {
            assert_eq!(retry.as_deref(), Some("1"));
            assert!(body.contains("rate_limited"), "{body}");
        }
    }
    // The burst of 10 passes; then about one request in eight (each refusal
    // is answered after a pause, during which the bucket refills a little).
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    assert!(statuses[..10].iter().all(|&s| s != 429), "{statuses:?}");
    assert!(refused >= 12, "{statuses:?}");
    // A new connection has its own allowance: answered on the request's
    // own merits, not refused for the other's flood.
    let (status, _, _) = RawConnection::open(r.url()).post_sync();
    assert_ne!(status, 429);
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert!(rt.block_on(limited(r.url(), "connection")) >= refused as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_connections_and_subscriptions_are_capped() {
    let r = RelayProcess::start(
        bin(),
        &["--max-ws-connections", "2", "--max-subscriptions", "1"],
    )
    .unwrap();
    let c = RelayClient::new(r.url()).unwrap();
    let (a, b) = (mailbox(&c).await, mailbox(&c).await);
    let mut first = c.connect_live().await.unwrap();
    let second = c.connect_live().await.unwrap();
    let third = c.connect_live().await.unwrap_err();
    assert_eq!(third.code(), Some(ErrorCode::TooManyConnections), "{third}");
    assert!(!third.is_permanent());
    // One mailbox per connection here: the second is refused.
    let req = first
        .subscribe(&[(a.id, &a.recipient, Seq(0))])
        .await
        .unwrap();
    first.wait_for(req, |_| {}).await.unwrap();
    let req = first
        .subscribe(&[(b.id, &b.recipient, Seq(0))])
        .await
        .unwrap();
    let answer = first.wait_for(req, |_| {}).await.unwrap();
    assert!(
        matches!(
            answer,
            ServerFrame::Error {
                code: ErrorCode::TooManyMailboxes,
                ..
            }
        ),
        "{answer:?}"
    );
    // A closed connection frees its place.
    second.close().await.unwrap();
    let mut again = None;
    for _ in 0..50 {
        if let Ok(conn) = c.connect_live().await {
            again = Some(conn);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again.is_some(), "the freed place was never given back");
    assert!(limited(r.url(), "ws_connections").await >= 1);
    assert!(limited(r.url(), "subscriptions").await >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canaries_are_capped_per_mailbox_and_hold_a_place_in_its_quota() {
    // The limits come from a config file here (and the command line would
    // override them).
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("relay.toml");
    std::fs::write(
        &config,
        "# a relay for one family\nmax-canaries-per-mailbox = 1\nmax_messages = 2\n",
    )
    .unwrap();
    let r = RelayProcess::start(bin(), &["--config", config.to_str().unwrap()]).unwrap();
    let c = RelayClient::new(r.url()).unwrap();
    let target = mailbox(&c).await;
    let release = c.now() + 3600;
    let owner = MailboxKey::generate(&mut OsRng);
    let deposit = |id| {
        c.deposit_canary(
            id,
            &owner,
            &target.sender,
            target.id,
            release,
            vec![7; 256],
            None,
        )
    };
    let first = MailboxId::random(&mut OsRng);
    deposit(first).await.unwrap();
    // Renewing or replacing one's own canary is fine; a second is not.
    deposit(first).await.unwrap();
    let err = deposit(MailboxId::random(&mut OsRng)).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::TooManyCanaries), "{err}");
    // The canary holds one of the two places: one message fits, then the
    // mailbox is full, so the canary can always be delivered.
    c.send(target.id, &target.sender, vec![1; 256])
        .await
        .unwrap();
    let full = c
        .send(target.id, &target.sender, vec![2; 256])
        .await
        .unwrap_err();
    assert_eq!(full.code(), Some(ErrorCode::MailboxFull));
    c.fire_canary(first, &owner).await.unwrap();
    let got = c
        .fetch(target.id, &target.recipient, Seq(0), None)
        .await
        .unwrap();
    assert_eq!(got.messages.len(), 2, "the message and the canary");
    assert!(limited(r.url(), "canaries").await >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_space_needs_a_key_and_each_key_has_its_own_budget() {
    let r = RelayProcess::start(bin(), &["--blob-budget-per-key", "1000"]).unwrap();
    let c = RelayClient::new(r.url()).unwrap();
    let (greedy, other) = (mailbox(&c).await, mailbox(&c).await);
    let blobs = BlobClient::new(r.url()).unwrap();
    // No key, no space (this relay is public).
    let anonymous = blobs.create(10, None).await.unwrap_err();
    assert_eq!(
        anonymous.code(),
        Some(ErrorCode::MissingAuth),
        "{anonymous}"
    );
    blobs
        .create(600, Some((greedy.id, &greedy.sender)))
        .await
        .unwrap();
    let over = blobs
        .create(600, Some((greedy.id, &greedy.sender)))
        .await
        .unwrap_err();
    assert_eq!(over.code(), Some(ErrorCode::BlobBudgetExceeded), "{over}");
    // Another key is not held back.
    blobs
        .create(1000, Some((other.id, &other.sender)))
        .await
        .unwrap();
    assert!(limited(r.url(), "blob_budget").await >= 1);
}

#[test]
fn well_behaved_users_lose_nothing_under_tight_limits() {
    // Limits far tighter than the defaults: the client waits and retries
    // (or keeps the message queued) and every message arrives once.
    let relay = RelayProcess::start(
        bin(),
        &[
            "--rate-per-key",
            "4",
            "--burst-per-key",
            "6",
            "--rate-per-connection",
            "20",
            "--burst-per-connection",
            "30",
        ],
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (User::new(dir.path(), "a"), User::new(dir.path(), "b"));
    a.run(&["init", "--relay", relay.url()]);
    b.run(&["init", "--relay", relay.url()]);
    let link = a.invite("Bashir");
    b.run(&["accept", &link, "--alias", "Amina"]);
    a.run(&["sync"]);
    b.run(&["sync"]);
    let sent: Vec<String> = (0..12).map(|i| format!("message {i}")).collect();
    for text in &sent {
        a.run(&["send", "Bashir", text]);
    }
    let mut got = Vec::new();
    for _ in 0..10 {
        a.try_run(&["sync"]); // flushes anything still queued
        got.extend(b.run(&["sync"]).texts());
        if got.len() >= sent.len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(got, sent);
}
