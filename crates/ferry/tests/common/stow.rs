//! Stow and restore through the real binary: another device of the same
//! person, a recovery phrase, a restore command.

use std::process::Command;

use super::User;

/// Another device of the same person: a new profile directory, the same
/// passphrase.
pub fn device(dir: &std::path::Path, name: &str, owner: &User) -> User {
    let mut u = User::new(dir, name);
    u.pass = owner.pass.clone();
    u
}

pub fn setup_recovery(u: &User, extra: &[&str]) -> String {
    let mut args = vec!["recovery", "setup", "--lang", "en"];
    args.extend_from_slice(extra);
    let r = u.run(&args);
    assert_eq!(r.of_type("recovery_set").len(), 1, "{:?}", r.lines);
    let phrase = r.of_type("recovery_phrase")[0]["phrase"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(phrase.split(' ').count(), 12);
    phrase
}

pub fn restore_cmd(u: &User, relay: &str, phrase: &str, extra: &[&str]) -> Command {
    let mut args = vec!["restore", "--relay", relay];
    args.extend_from_slice(extra);
    let mut c = u.cmd(&args);
    c.env("FERRY_RECOVERY_PHRASE", phrase);
    c
}

pub fn restore(u: &User, relay: &str, phrase: &str, extra: &[&str]) -> super::Run {
    User::run_cmd(restore_cmd(u, relay, phrase, extra))
}

/// Rows in one of the relay's tables (read-only, beside the running relay).
pub fn count_rows(relay: &ferry_testkit::RelayProcess, table: &str) -> usize {
    let db = rusqlite::Connection::open_with_flags(
        relay.data_dir().join("relay.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    db.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}
