//! Disappearing messages disappear on time even while the relay (or the
//! proxy) cannot be reached: the app's session keeps expiring them while
//! it waits to reconnect.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

// The app's test helpers (in-process app, raw HTTP, launch exchange).
#[path = "../../ferry-app/tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::Duration;

use common::{launch, raw};
use ferry_testkit::RelayProcess;

fn enc(s: &str) -> String {
    s.replace(':', "%3A").replace('/', "%2F")
}

/// Headers for a person's request to app `r`.
async fn person(r: &common::Running) -> Vec<String> {
    let (cookie, csrf) = launch(r, &r.first).await;
    vec![
        format!("Host: {}", r.addr),
        format!("Cookie: {cookie}"),
        format!("Origin: http://{}", r.addr),
        format!("X-CSRF-Token: {csrf}"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_message_goes_on_time_while_the_relay_is_down() {
    // A relay process, killed later: its connections die with it.
    let mut relay = RelayProcess::start(Path::new(env!("CARGO_BIN_EXE_ferry")), &[]).unwrap();
    let url = relay.url().to_owned();
    let body = format!(
        "relay={}&passphrase=correct+horse+1&repeat=correct+horse+1&proxy=",
        enc(&url)
    );
    let a = common::start().await;
    let b = common::start().await;
    let ha = person(&a).await;
    let hb = person(&b).await;
    assert_eq!(raw(&a.addr, "POST", "/setup", &ha, &body).await.status, 200);
    assert_eq!(raw(&b.addr, "POST", "/setup", &hb, &body).await.status, 200);

    // Pair: A invites, B accepts the link shown on A's page.
    let page = raw(&a.addr, "POST", "/invite", &ha, "alias=b").await;
    let link = page
        .body
        .split("ferry://invite/")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .map(|s| format!("ferry://invite/{s}"))
        .unwrap();
    let accepted = raw(
        &b.addr,
        "POST",
        "/accept",
        &hb,
        &format!("link={}&alias=a", enc(&link)),
    )
    .await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    let mut ready = false;
    for _ in 0..100 {
        let c = raw(&a.addr, "GET", "/c/1", &ha[..2], "").await;
        if c.body.contains("form id=\"compose\"") {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the conversation is set up");

    // A 3-second timer, a message, then the relay goes away.
    assert_eq!(
        raw(&a.addr, "POST", "/c/1/timer", &ha, "secs=3")
            .await
            .status,
        204
    );
    assert_eq!(
        raw(&a.addr, "POST", "/c/1/send", &ha, "text=gone+soon")
            .await
            .status,
        204
    );
    let shown = raw(&a.addr, "GET", "/c/1/messages", &ha[..2], "").await;
    assert!(
        shown.body.contains("gone soon"),
        "positive control: it is shown first"
    );
    relay.kill9().unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = raw(&a.addr, "GET", "/c/1/messages", &ha[..2], "").await;
    assert_eq!(after.status, 200);
    assert!(!after.body.contains("gone soon"), "it went while offline");
}
