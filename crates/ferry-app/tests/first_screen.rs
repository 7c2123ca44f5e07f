//! The app's first screen can set a proxy (Tor) before the profile makes
//! any connection, and from then on nothing goes out directly: with the
//! proxy down, the relay never sees a connection and the page says the
//! proxy is unreachable. Positive control: without a proxy, the same
//! relay address is reached at once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{launch, raw, start};

/// A listener where the relay would be: counts connections, answers none.
fn door() -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let count = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&count);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            c.fetch_add(1, Ordering::SeqCst);
            held.push(s);
        }
    });
    (addr, count)
}

fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn enc(s: &str) -> String {
    s.replace(':', "%3A").replace('/', "%2F")
}

async fn create(relay: &str, proxy: &str) -> (common::Running, Vec<String>) {
    let r = start().await;
    let (cookie, csrf) = launch(&r, &r.first).await;
    let head = vec![
        format!("Host: {}", r.addr),
        format!("Cookie: {cookie}"),
        format!("Origin: http://{}", r.addr),
        format!("X-CSRF-Token: {csrf}"),
        "Accept-Language: en".to_owned(),
    ];
    let body = format!(
        "relay={}&passphrase=correct+horse+1&repeat=correct+horse+1&proxy={}",
        enc(relay),
        enc(proxy)
    );
    let a = raw(&r.addr, "POST", "/setup", &head, &body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    (r, head)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_from_the_first_screen_covers_every_connection_and_fails_closed() {
    let (relay, seen) = door();
    let proxy = format!("socks5h://127.0.0.1:{}", dead_port());
    let (r, head) = create(&format!("http://{relay}"), &proxy).await;
    // The session is watching (through the proxy) and the page works.
    let settings = raw(&r.addr, "GET", "/settings", &head[..2], "").await;
    assert_eq!(settings.status, 200);
    assert!(
        settings.body.contains(&proxy),
        "the proxy is shown in the settings"
    );
    // Inviting needs the relay: refused, and the page says why.
    let a = raw(&r.addr, "POST", "/invite", &head, "alias=friend").await;
    assert_eq!(a.status, 422, "{}", a.body);
    assert!(a.body.contains("proxy cannot be reached"), "{}", a.body);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "nothing went to the relay directly"
    );

    // Positive control: the same relay address without a proxy is reached.
    let (relay2, seen2) = door();
    let (_r2, _) = create(&format!("http://{relay2}"), "").await;
    for _ in 0..50 {
        if seen2.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        seen2.load(Ordering::SeqCst) > 0,
        "without a proxy the relay is reached"
    );
}
