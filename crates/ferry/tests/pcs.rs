//! Post-compromise security end to end, with the real binary and a real
//! relay: a copy of a profile taken early (a phone imaged at a checkpoint
//! and handed back) reads nothing its owner receives after the keys were
//! refreshed, even with the passphrase and everything the relay still
//! holds, and what it fetches but cannot open stays on the relay for the
//! phone. Positive control: a copy taken just before reads the same
//! message. A day later the refresh moves the mailbox too, and both
//! copies' keys stop working.

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
    // everything waiting for Bashir: the message is there (it is fetched),
    // but it cannot be read; nor does Ferry on the copy acknowledge what it
    // cannot open, so the relay keeps it for the phone.
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
    let real = b.run(&["sync"]);
    assert!(
        real.texts().iter().any(|t| t.contains("river")),
        "the early copy made the relay drop the message: {:?}",
        real.lines
    );

    // Positive control: a copy taken after the refresh reads what comes
    // next (and, as the README says, takes it from the phone).
    let late = image(&w, b, "imaged just now");
    a.run(&["send", "Bashir", "the second message"]);
    let fresh = late.run(&["sync"]);
    assert!(
        fresh.texts().iter().any(|t| t.contains("second message")),
        "{:?}",
        fresh.lines
    );

    // A day later the key refresh also moves Bashir's mailbox: once Amina
    // has switched and the old one is read, it is deleted, and with it the
    // power of the key both copies hold.
    let day = "+25h";
    a.run_later(day, &["send", "Bashir", "a day later"]);
    b.run_later(day, &["sync"]);
    a.run_later(day, &["sync"]);
    a.run_later(day, &["send", "Bashir", "after the move"]);
    let got = b.run_later(day, &["sync"]);
    assert!(
        got.texts().iter().any(|t| t.contains("after the move")),
        "{:?}",
        got.lines
    );
    for copy in [&early, &late] {
        let r = copy.run_later(day, &["sync"]);
        assert!(r.of_type("rejected").is_empty(), "{:?}", r.lines);
        assert_eq!(
            r.of_type("mailbox_gone").len(),
            1,
            "the copy's mailbox key still works: {:?}",
            r.lines
        );
    }
}
