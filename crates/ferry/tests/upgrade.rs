//! Profiles and a relay data directory made by an earlier release (see
//! `tests/data/v1/make.sh`) open with this one and keep working: history,
//! a message waiting on the relay, replies both ways, the duress decoy.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::{User, bin};
use ferry_testkit::{RelayProcess, copy_dir};

/// The address the fixture profiles name.
const FIXTURE_RELAY: &str = "127.0.0.1:29473";

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/v1"))
}

fn user(dir: &Path, name: &str, pass: &str) -> User {
    let home = dir.join(name);
    copy_dir(&fixtures().join(name), &home).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    User {
        home,
        pass: pass.to_owned(),
        env: Vec::new(),
    }
}

#[test]
fn profiles_and_relay_data_from_the_previous_release_keep_working() {
    let relay = RelayProcess::start_from(
        bin(),
        FIXTURE_RELAY,
        &fixtures().join("relay"),
        &["--message-ttl", "36500d"],
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let alice = user(dir.path(), "alice", "alice fixture passphrase");
    let bob = user(dir.path(), "bob", "bob fixture passphrase");

    // History written by the old release reads back.
    assert_eq!(
        bob.run(&["history", "Alice"]).texts(),
        [
            "fixture: before the upgrade",
            "fixture: reply before the upgrade"
        ]
    );
    let contacts = alice.run(&["contacts"]);
    assert_eq!(contacts.of_type("contact")[0]["alias"], "Bob");
    assert_eq!(contacts.of_type("contact")[0]["state"], "established");
    // The message the old release left on the relay arrives, once.
    assert_eq!(
        bob.run(&["sync"]).texts(),
        ["fixture: waiting on the relay"]
    );
    assert!(bob.run(&["sync"]).texts().is_empty());
    // The MLS state carried over: both sides go on talking.
    bob.run(&["send", "Alice", "after the upgrade"]);
    assert_eq!(alice.run(&["sync"]).texts(), ["after the upgrade"]);
    alice.run(&["send", "Bob", "still works"]);
    assert_eq!(bob.run(&["sync"]).texts(), ["still works"]);
    // Reopened in the new layout, everything is still there.
    assert_eq!(
        alice.run(&["history", "Bob"]).texts(),
        [
            "fixture: before the upgrade",
            "fixture: reply before the upgrade",
            "fixture: waiting on the relay",
            "after the upgrade",
            "still works"
        ]
    );

    // The decoy made by the old release opens with the duress passphrase,
    // destroys the real profile and warns Bob from its capsule.
    let coerced = User {
        home: alice.home.clone(),
        pass: "alice fixture duress".to_owned(),
        env: Vec::new(),
    };
    assert!(coerced.run(&["contacts"]).of_type("contact").is_empty());
    let alerts = bob.run(&["sync"]);
    assert_eq!(alerts.of_type("alert").len(), 1, "{:?}", alerts.lines);
    assert_eq!(
        alice.try_run(&["contacts"]).error_code().as_deref(),
        Some("wrong_passphrase")
    );
    drop(relay);
}
