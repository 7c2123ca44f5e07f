//! A watching session killed with SIGKILL in the middle of a burst of 1,000
//! pushed messages loses none of them and shows none twice.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../../ferry-client/tests/support/peer.rs"]
mod peer;

use std::collections::HashSet;
use std::io::BufRead as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{User, bin};
use ferry_client::RelayClient;
use ferry_core::{Engine, InviteLink};
use ferry_testkit::RelayProcess;
use rand_core::OsRng;

const BURST: usize = 1000;

#[test]
fn a_watch_killed_mid_burst_loses_nothing_and_shows_nothing_twice() {
    let relay = RelayProcess::start(
        bin(),
        // A scripted burst far faster than a person types: not what the
        // abuse limits are about here.
        &[
            "--max-messages",
            "5000",
            "--rate-per-key",
            "100000",
            "--burst-per-key",
            "100000",
        ],
    )
    .unwrap();
    let url = relay.url().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let b = User::new(dir.path(), "b");
    b.run(&["init", "--relay", &url]);
    let link = b.invite("Peer");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut peer = peer::Peer {
        engine: Engine::new(&url),
        client: RelayClient::new(&url).unwrap(),
    };
    peer.engine
        .accept_invite(
            ferry_client::session::now(),
            &mut OsRng,
            &InviteLink::parse(&link).unwrap(),
            "owner",
        )
        .unwrap();
    rt.block_on(peer.flush());
    b.run(&["sync"]);
    rt.block_on(peer.receive());

    let mut watch = b
        .cmd(&["watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Let watch subscribe, then push the burst.
    std::thread::sleep(Duration::from_millis(1500));
    rt.block_on(async {
        for i in 0..BURST {
            peer.send_text(&format!("burst {i}")).await;
        }
    });
    let texts = |line: &str| -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        (v["type"] == "message").then(|| v["text"].as_str().unwrap_or_default().to_owned())
    };
    let mut shown: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while shown.len() < 300 && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_secs(1))
            && let Some(t) = texts(&line)
        {
            shown.push(t);
        }
    }
    assert!(
        shown.len() >= 300,
        "watch showed only {} messages",
        shown.len()
    );
    watch.kill().unwrap(); // SIGKILL
    watch.wait().unwrap();
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
        if let Some(t) = texts(&line) {
            shown.push(t);
        }
    }
    assert!(
        shown.len() < BURST,
        "the kill came too late to test anything"
    );
    // The next session shows the rest.
    shown.extend(b.run(&["sync"]).texts());
    let unique: HashSet<&String> = shown.iter().collect();
    assert_eq!(unique.len(), shown.len(), "a message was shown twice");
    let history = b.run(&["history", "Peer"]).texts();
    let want: Vec<String> = (0..BURST).map(|i| format!("burst {i}")).collect();
    assert_eq!(history, want, "the history lost or reordered messages");
    // Only a message committed in the instant before the kill and not yet
    // printed can be missing from the screen; it is in the history.
    assert!(
        shown.len() >= BURST - 1,
        "{} of {BURST} messages were shown",
        shown.len()
    );
    drop(relay);
}
