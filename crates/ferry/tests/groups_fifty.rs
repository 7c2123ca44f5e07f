//! Fifty real profiles (vaults on disk, sessions as the app and the CLI
//! use them) in one group on a real relay process: a thousand messages from
//! random members, and every member ends with the same transcript.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::bin;
use ferry_client::Session;
use ferry_testkit::RelayProcess;
use rand_core::{OsRng, RngCore as _};
use secrecy::SecretString;

const MEMBERS: usize = 50;
const MESSAGES: usize = 1000;
const GROUP: &str = "쉰 명";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_profiles_send_a_thousand_messages_and_every_transcript_is_the_same() {
    let relay = RelayProcess::start(
        bin(),
        // Scripted sends far faster than people type: not what the abuse
        // limits are about here.
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
    let pass = SecretString::from("fifty profiles".to_owned());
    let mut s = Vec::with_capacity(MEMBERS);
    for i in 0..MEMBERS {
        let home = dir.path().join(format!("p{i}"));
        s.push(Session::init(&home, &pass, &url, None).unwrap());
    }
    // The creator has every other profile as a contact.
    let aliases: Vec<String> = (1..MEMBERS).map(|i| format!("m{i}")).collect();
    for (i, alias) in aliases.iter().enumerate() {
        let link = s[0].invite(alias).await.unwrap();
        s[i + 1].accept(&link.to_link(), "owner").await.unwrap();
    }
    s[0].sync().await.unwrap();
    for p in &mut s[1..] {
        p.sync().await.unwrap();
    }

    s[0].create_group(GROUP, "owner").await.unwrap();
    s[0].group_add(GROUP, &aliases).await.unwrap();
    for p in &mut s[1..] {
        p.sync().await.unwrap(); // answers with a key package
    }
    s[0].sync().await.unwrap(); // commits the adds, sends the welcomes
    for (i, p) in s.iter_mut().enumerate().skip(1) {
        p.sync().await.unwrap();
        assert!(p.is_group(GROUP), "member {i} joined");
    }
    for p in &mut s {
        assert_eq!(p.group_members(GROUP).unwrap().len(), MEMBERS);
    }

    let started = std::time::Instant::now();
    for k in 0..MESSAGES {
        let from = OsRng.next_u32() as usize % MEMBERS;
        s[from]
            .group_send(GROUP, &format!("{k:04} from {from}"), false)
            .await
            .unwrap();
    }
    let sent = started.elapsed();
    let started = std::time::Instant::now();
    for p in &mut s {
        p.sync().await.unwrap();
    }
    println!(
        "{MEMBERS} members: {MESSAGES} messages sent in {:.1} s, read by every member in {:.1} s",
        sent.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );

    // Every member holds all thousand, and what it received came in the
    // order the relay logged them (the order they were sent).
    let all: Vec<String> = (0..MESSAGES).map(|k| format!("{k:04} ")).collect();
    for (i, p) in s.iter().enumerate() {
        let history = p.history(GROUP).unwrap();
        let mut texts: Vec<String> = history.iter().map(|e| e.text.clone()).collect();
        let received: Vec<&String> = history
            .iter()
            .filter(|e| e.from.is_some())
            .map(|e| &e.text)
            .collect();
        assert!(
            received.windows(2).all(|w| w[0] < w[1]),
            "member {i} received out of order"
        );
        texts.sort();
        assert_eq!(texts.len(), MESSAGES, "member {i}");
        for (t, prefix) in texts.iter().zip(&all) {
            assert!(t.starts_with(prefix.as_str()), "member {i}: {t}");
        }
    }

    // The relay stored each message once.
    let db = rusqlite::Connection::open_with_flags(
        relay.data_dir().join("relay.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let messages: i64 = db
        .query_row(
            "SELECT count(*) FROM group_entries WHERE kind = 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(messages, MESSAGES as i64);
}
