//! Post-compromise security end to end, with the real binary and a real
//! relay: a copy of a profile taken early (a phone imaged at a checkpoint
//! and handed back) reads nothing its owner receives after the keys were
//! refreshed, even with the passphrase and everything the relay still
//! holds. Positive control: a copy taken just before reads the same
//! message.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
use common::*;

/// The profile of `u` copied to `name` (same passphrase).
fn image(w: &World, u: &User, name: &str) -> User {
    let copy = User::new(w.dir.path(), name);
    let copy = User {
        pass: u.pass.clone(),
        ..copy
    };
    ferry_testkit::copy_dir(&u.home, &copy.home).unwrap();
    copy
}

#[test]
fn a_copy_taken_before_the_keys_were_refreshed_reads_nothing_sent_after() {
    let w = world();
    let (a, b) = (&w.a, &w.b);
    let early = image(&w, b, "imaged at the checkpoint");

    // 60 messages both ways: each side refreshes its keys (every 50).
    for i in 0..30 {
        a.run(&["send", "Bashir", &format!("from Amina {i}")]);
        let got = b.run(&["sync"]);
        assert!(
            got.texts().contains(&format!("from Amina {i}")),
            "{:?}",
            got.lines
        );
        b.run(&["send", "Amina", &format!("from Bashir {i}")]);
        let got = a.run(&["sync"]);
        assert!(
            got.texts().contains(&format!("from Bashir {i}")),
            "{:?}",
            got.lines
        );
    }

    a.run(&["send", "Bashir", "meet at the river, not the station"]);

    // The early copy, unlocked with the passphrase, asks the relay for
    // everything waiting for Bashir: the message is there (it is fetched
    // and refused), but it cannot be read.
    let stolen = early.try_run(&["sync"]);
    assert!(
        !stolen.texts().iter().any(|t| t.contains("river")),
        "the early copy read a message sent after the refresh: {:?}",
        stolen.lines
    );
    assert_eq!(
        stolen.of_type("rejected").len(),
        1,
        "the message was fetched: {:?}",
        stolen.lines
    );
    // Nor can it delete it: what a copy cannot open it does not
    // acknowledge, so the relay keeps it for the real phone.
    let real = b.run(&["sync"]);
    assert!(
        real.texts().iter().any(|t| t.contains("river")),
        "the early copy made the relay drop the message: {:?}",
        real.lines
    );

    // Positive control: a copy taken after the refresh reads what comes
    // next.
    let late = image(&w, b, "imaged just now");
    a.run(&["send", "Bashir", "the second message"]);
    let fresh = late.run(&["sync"]);
    assert!(
        fresh.texts().iter().any(|t| t.contains("second message")),
        "{:?}",
        fresh.lines
    );
}
