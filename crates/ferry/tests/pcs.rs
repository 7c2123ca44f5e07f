//! Post-compromise security end to end, with the real binary and a real
//! relay: a copy of a profile taken early (a phone imaged at a checkpoint
//! and handed back) reads nothing its owner receives after the keys were
//! refreshed, even with the passphrase and everything the relay still
//! holds: the mailbox it could fetch from moved along with the refresh.
//! Positive control: a copy taken just before reads the same message; and
//! when the keys are refreshed again within the day (the mailbox stays),
//! that copy fetches what it cannot open and leaves it for the phone.

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
    // everything waiting for Bashir. The mailbox its keys open moved along
    // with the key refresh and is gone: it fetches nothing (so can delete
    // nothing), and is told its copy is out of date.
    let stolen = early.try_run(&["sync"]);
    assert!(
        !stolen.texts().iter().any(|t| t.contains("river")),
        "the early copy read a message sent after the refresh: {:?}",
        stolen.lines
    );
    assert!(
        stolen.of_type("rejected").is_empty(),
        "the early copy fetched the message: {:?}",
        stolen.lines
    );
    assert_eq!(
        stolen.of_type("mailbox_gone").len(),
        1,
        "{:?}",
        stolen.lines
    );
    // The real phone gets the message.
    let real = b.run(&["sync"]);
    assert!(
        real.texts().iter().any(|t| t.contains("river")),
        "the message did not reach the phone: {:?}",
        real.lines
    );

    // Positive control: a copy taken after the refresh reads what comes
    // next.
    let late = image(&w, b, "imaged just now");
    a.run(&["send", "Bashir", "the second message"]);
    let fresh = late.try_run(&["sync"]);
    assert!(
        fresh.texts().iter().any(|t| t.contains("second message")),
        "{:?}",
        fresh.lines
    );
    // (What such a copy can read, it takes, and the phone then misses it:
    // the README says so.)
    b.run(&["sync"]);

    // The keys are refreshed again within the day: the mailbox stays (it
    // moves at most once a day), so the late copy still holds its key. Run
    // by Ferry, it fetches what it can no longer open and leaves it on the
    // relay for the phone.
    for i in 0..26 {
        a.run(&["send", "Bashir", &format!("again from Amina {i}")]);
        b.run(&["sync"]);
        b.run(&["send", "Amina", &format!("again from Bashir {i}")]);
        a.run(&["sync"]);
    }
    a.run(&["send", "Bashir", "the third message"]);
    let stale = late.try_run(&["sync"]);
    assert!(
        !stale.texts().iter().any(|t| t.contains("third message")),
        "the late copy read past the second refresh: {:?}",
        stale.lines
    );
    assert_eq!(
        stale.of_type("rejected").len(),
        1,
        "fetched, not opened: {:?}",
        stale.lines
    );
    let got = b.run(&["sync"]);
    assert!(
        got.texts().iter().any(|t| t.contains("third message")),
        "the late copy made the relay drop it: {:?}",
        got.lines
    );
}
