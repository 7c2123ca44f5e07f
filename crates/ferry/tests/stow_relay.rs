//! What a relay learns from a stow and a restore: no plaintext in its
//! database, no locator in its logs, and nothing that tells a duress
//! restore from a real one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::stow::{device, restore, setup_recovery};
use common::{User, world};

#[test]
fn the_relay_keeps_no_plaintext_and_logs_no_locator() {
    let w = world();
    let url = w.relay.url().to_owned();
    w.a.run(&["send", "Bashir", "MARKER-stowed-text"]);
    w.b.run(&["sync"]);
    let phrase = setup_recovery(&w.a, &[]);
    w.a.run(&["stow"]);
    let x = device(w.dir.path(), "x", &w.a);
    assert_eq!(restore(&x, &url, &phrase, &[]).code, 0);
    // History stays behind unless asked for: the conversation is back,
    // its past is not.
    assert!(x.run(&["history", "Bashir"]).texts().is_empty());
    x.run(&["send", "Bashir", "still talking"]);
    assert!(
        w.b.run(&["sync"])
            .texts()
            .contains(&"still talking".to_owned())
    );
    let keys = ferry_core::stow::RecoverySeed::derive(
        &ferry_core::stow::RecoveryPhrase::parse(&phrase).unwrap(),
    )
    .unwrap()
    .relay_keys(&url, None)
    .unwrap();
    let locator = keys.locator();
    let log = std::fs::read(w.relay.log_path()).unwrap();
    assert!(!log.is_empty());
    assert!(
        log.windows(5).any(|x| x == b"stows"),
        "stow requests are logged by route"
    );
    for needle in [
        locator.to_b64().into_bytes(),
        locator.as_bytes().to_vec(),
        b"MARKER-stowed-text".to_vec(),
    ] {
        assert!(
            !common::contains(&log, &needle),
            "the log names the locator or text"
        );
    }
    // The store: the record and everything around it is opaque.
    let mut store = Vec::new();
    for (_, bytes) in common::snapshot(&w.relay.data_dir()) {
        store.extend_from_slice(&bytes);
    }
    assert!(
        common::contains(&store, locator.as_bytes()),
        "control: the row is there"
    );
    for needle in [
        b"MARKER-stowed-text".as_slice(),
        b"Bashir",
        b"Amina",
        phrase.as_bytes(),
    ] {
        assert!(
            !common::contains(&store, needle),
            "{}",
            String::from_utf8_lossy(needle)
        );
    }
}

#[test]
fn the_duress_passphrase_at_restore_warns_and_leaves_only_the_decoy_anywhere() {
    let w = world();
    let d = w.dir.path();
    let url = w.relay.url();
    let mut set = w.a.cmd(&["duress", "set"]);
    set.env("FERRY_DURESS_PASSPHRASE", "duress of a");
    assert_eq!(User::run_cmd(set).of_type("duress_set").len(), 1);
    w.a.run(&["send", "Bashir", "the real conversation"]);
    w.b.run(&["sync"]);
    let phrase = setup_recovery(&w.a, &[]);
    w.a.run(&["stow"]);

    // The captor has the phrase and forces a passphrase out of A: A gives
    // the duress one. The restore looks like any other.
    let captor = User {
        home: d.join("captor"),
        pass: "duress of a".into(),
        env: Vec::new(),
    };
    let r = restore(&captor, url, &phrase, &[]);
    assert_eq!(r.code, 0, "{:?}", r.lines);
    assert_eq!(r.of_type("restored").len(), 1);
    assert!(
        captor.run(&["contacts"]).of_type("contact").is_empty(),
        "only the decoy"
    );
    // B is warned.
    let got = w.b.run(&["sync"]);
    assert!(
        !got.of_type("alert").is_empty(),
        "B was warned: {:?}",
        got.lines
    );

    // The phrase is no master key: the captor takes the account again from
    // the relay and tries the real passphrase. The real profile is gone
    // there too.
    let again = User {
        home: d.join("captor-again"),
        pass: w.a.pass.clone(),
        env: Vec::new(),
    };
    let r = restore(&again, url, &phrase, &["--takeover"]);
    assert_eq!(
        r.error_code().as_deref(),
        Some("wrong_passphrase"),
        "{:?}",
        r.lines
    );
    let r = restore(
        &User {
            pass: "duress of a".into(),
            ..again
        },
        url,
        &phrase,
        &["--takeover"],
    );
    assert_eq!(r.code, 0, "the decoy still opens: {:?}", r.lines);
}

/// `(METHOD, route)` of every request the relay logged after byte `from`.
fn requests_since(log: &std::path::Path, from: usize) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(log).unwrap();
    text[from..]
        .lines()
        .filter(|l| l.contains(" request route="))
        .map(|l| {
            let field = |name: &str| {
                let start = l.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                l[start..start + l[start..].find('"').unwrap()].to_owned()
            };
            (field("method"), field("route"))
        })
        .collect()
}

fn stored_record_len(relay: &ferry_testkit::RelayProcess) -> usize {
    let db = rusqlite::Connection::open_with_flags(
        relay.data_dir().join("relay.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    db.query_row("SELECT length(record) FROM stows", [], |r| r.get(0))
        .unwrap()
}

/// What the relay sees of a restore: apart from the contacts' alerts (the
/// documented burst), the duress passphrase makes no request the real one
/// does not, and stores back a record of the same size (the decoy and the
/// random filler take the real profile's room). (The real one makes more:
/// its first sync sends every conversation's key refresh and mailbox move,
/// which a decoy without conversations has none of; the README says so.)
#[test]
fn the_relay_cannot_tell_a_duress_restore_from_a_real_one() {
    let w = world();
    let d = w.dir.path();
    let url = w.relay.url();
    let log = w.relay.log_path();
    let mut set = w.a.cmd(&["duress", "set"]);
    set.env("FERRY_DURESS_PASSPHRASE", "duress of a");
    assert_eq!(User::run_cmd(set).of_type("duress_set").len(), 1);
    let phrase = setup_recovery(&w.a, &[]);
    w.a.run(&["stow"]);

    let from = std::fs::metadata(&log).unwrap().len() as usize;
    let real = device(d, "real", &w.a);
    assert_eq!(restore(&real, url, &phrase, &[]).code, 0);
    let real_requests = requests_since(&log, from);
    let real_len = stored_record_len(&w.relay);
    real.run(&["stow"]);

    let from = std::fs::metadata(&log).unwrap().len() as usize;
    let coerced = User {
        home: d.join("coerced"),
        pass: "duress of a".into(),
        env: Vec::new(),
    };
    assert_eq!(restore(&coerced, url, &phrase, &[]).code, 0);
    let duress_requests = requests_since(&log, from);
    let duress_len = stored_record_len(&w.relay);

    assert!(
        real_requests.contains(&("PUT".into(), "/v1/stows/{locator}".into())),
        "control: the checkpoint is logged: {real_requests:?}"
    );
    // The one difference is the documented residual leak (ARCHITECTURE,
    // "the alerts leave a duress session at once"): one renewal-shaped
    // fire per contact right at unlock, where this real restore, a moment
    // after the stow renewed everything, renews nothing.
    let fire = ("POST".to_owned(), "/v1/canaries/{id}/renew".to_owned());
    assert_eq!(
        duress_requests.iter().filter(|r| **r == fire).count(),
        2,
        "one fire per contact: {duress_requests:?}"
    );
    for r in duress_requests.iter().filter(|r| **r != fire) {
        assert!(
            real_requests.contains(r),
            "the duress restore made a request no real restore makes: {r:?}\nreal: {real_requests:?}"
        );
    }
    assert_eq!(
        real_len, duress_len,
        "the stored-back records differ in size"
    );
}
