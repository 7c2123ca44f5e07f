//! End-to-end tests of the `ferry` CLI: real relay process, real profiles
//! on disk, every command run as the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_testkit::RelayProcess;
use serde_json::Value;

mod common;
use common::*;

#[test]
fn three_profiles_talk_both_ways_across_a_relay_restart() {
    let mut w = world();
    let sent =
        w.a.run(&["send", "Bashir", "did", "the", "parcel", "arrive?"]);
    assert_eq!(sent.of_type("message")[0]["direction"], "out");
    w.a.run(&["send", "Chen", "hello Chen"]);

    let b_in = w.b.run(&["sync"]);
    assert_eq!(b_in.texts(), ["did the parcel arrive?"]);
    let m = b_in.of_type("message")[0];
    assert_eq!(m["contact"], "Amina");
    assert_eq!(m["direction"], "in");
    assert_eq!(m["id"], sent.of_type("message")[0]["id"]);
    assert!(m["sent_at"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(w.c.run(&["sync"]).texts(), ["hello Chen"]);
    w.b.run(&["send", "Amina", "yes, all fine"]);
    assert_eq!(w.a.run(&["sync"]).texts(), ["yes, all fine"]);
    // Nothing is shown twice.
    assert!(w.b.run(&["sync"]).texts().is_empty());

    // The relay is killed and comes back; the conversation goes on.
    w.relay.kill9().unwrap();
    let down = w.a.try_run(&["send", "Bashir", "are you there?"]);
    assert_ne!(down.code, 0, "sending with the relay down reports an error");
    assert_eq!(down.error_code().as_deref(), Some("relay"));
    w.relay.restart().unwrap();
    // The queued message goes out with the next command.
    w.a.run(&["sync"]);
    w.c.run(&["send", "Amina", "back online"]);
    assert_eq!(w.b.run(&["sync"]).texts(), ["are you there?"]);
    assert_eq!(w.a.run(&["sync"]).texts(), ["back online"]);

    let contacts = w.a.run(&["contacts"]);
    let mut names: Vec<(String, String)> = contacts
        .of_type("contact")
        .iter()
        .map(|c| {
            (
                c["alias"].as_str().unwrap().into(),
                c["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("Bashir".into(), "established".into()),
            ("Chen".into(), "established".into())
        ]
    );
    let hist = w.b.run(&["history", "Amina"]);
    assert_eq!(
        hist.texts(),
        ["did the parcel arrive?", "yes, all fine", "are you there?"]
    );
    let _ = &w.dir;
}

#[test]
fn a_client_killed_between_fetch_and_ack_shows_the_message_once() {
    let w = world();
    w.a.run(&["send", "Bashir", "only once please"]);
    let mut c = w.b.cmd(&["sync"]);
    c.env("FERRY_FAULT_EXIT_BEFORE_ACK", "1");
    let crashed = User::run_cmd(c);
    assert_eq!(
        crashed.code, 75,
        "the fault hook ended the process before the ack"
    );
    assert_eq!(crashed.texts(), ["only once please"]);
    // The relay still holds it (never acked); the next sync recognises it.
    assert!(w.b.run(&["sync"]).texts().is_empty());
    assert!(w.b.run(&["sync"]).texts().is_empty());
    assert_eq!(w.b.run(&["history", "Amina"]).texts(), ["only once please"]);
}

#[test]
fn reused_expired_truncated_and_tampered_invites_are_refused() {
    let w = world();
    let d = w.dir.path();
    // Reused by the same person.
    let link = w.a.invite("Dana");
    let dana = User::new(d, "dana");
    dana.run(&["init", "--relay", w.relay.url()]);
    dana.run(&["accept", &link, "--alias", "Amina"]);
    let again = dana.try_run(&["accept", &link, "--alias", "Amina again"]);
    assert_eq!(again.error_code().as_deref(), Some("invite_used"));
    // Reused by someone else once the inviter has synced (the mailbox is gone).
    w.a.run(&["sync"]);
    let eve = User::new(d, "eve");
    eve.run(&["init", "--relay", w.relay.url()]);
    let stolen = eve.try_run(&["accept", &link, "--alias", "Amina"]);
    assert_eq!(
        stolen.error_code().as_deref(),
        Some("invite_used"),
        "{:?}",
        stolen.lines
    );
    assert!(
        eve.run(&["contacts"]).of_type("contact").is_empty(),
        "nothing kept"
    );
    // Truncated and tampered.
    let fresh = w.a.invite("Farid");
    let truncated = &fresh[..fresh.len() - 5];
    assert_eq!(
        eve.try_run(&["accept", truncated, "--alias", "x"])
            .error_code()
            .as_deref(),
        Some("invite_invalid")
    );
    let mut chars: Vec<char> = fresh.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'Q' { 'R' } else { 'Q' };
    let tampered: String = chars.into_iter().collect();
    assert_eq!(
        eve.try_run(&["accept", &tampered, "--alias", "x"])
            .error_code()
            .as_deref(),
        Some("invite_invalid")
    );
    assert_eq!(
        eve.try_run(&["accept", "hello", "--alias", "x"])
            .error_code()
            .as_deref(),
        Some("invite_invalid")
    );
    // Expired: a link whose expiry has passed.
    let mut parsed = ferry_core::InviteLink::parse(&fresh).unwrap();
    parsed.expires_at = 1_000_000;
    let expired = parsed.to_link();
    assert_eq!(
        eve.try_run(&["accept", &expired, "--alias", "x"])
            .error_code()
            .as_deref(),
        Some("invite_expired")
    );
    assert!(eve.run(&["contacts"]).of_type("contact").is_empty());
}

#[test]
fn a_message_injected_by_a_stranger_is_rejected_and_never_shown() {
    let w = world();
    w.a.run(&["send", "Bashir", "real message"]);
    // A malicious relay operator writes forged payloads into every mailbox.
    let db = rusqlite::Connection::open(w.relay.data_dir().join("relay.sqlite3")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    let mut forged = vec![0u8; 256];
    forged[3] = 40;
    forged[4] = 3; // claims to be an MLS message
    for (i, b) in forged.iter_mut().enumerate().skip(5).take(40) {
        *b = i as u8;
    }
    let ids: Vec<Vec<u8>> = db
        .prepare("SELECT id FROM mailboxes")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!ids.is_empty());
    for id in &ids {
        db.execute(
            "INSERT INTO messages (mailbox, seq, expires_at, size, payload)
             SELECT id, next_seq, 4102444800, 256, ?2 FROM mailboxes WHERE id = ?1",
            rusqlite::params![id, forged],
        )
        .unwrap();
        db.execute(
            "UPDATE mailboxes SET next_seq = next_seq + 1, msg_count = msg_count + 1 WHERE id = ?1",
            [id],
        )
        .unwrap();
    }
    let r = w.b.run(&["sync"]);
    assert_eq!(
        r.texts(),
        ["real message"],
        "only the real message is shown"
    );
    let rejected = r.of_type("rejected");
    assert_eq!(rejected.len(), 1, "{:?}", r.lines);
    assert_eq!(rejected[0]["contact"], "Amina");
    assert_eq!(w.b.run(&["history", "Amina"]).texts(), ["real message"]);
    // The conversation still works afterwards.
    w.a.run(&["send", "Bashir", "still here"]);
    assert_eq!(w.b.run(&["sync"]).texts(), ["still here"]);
}

#[test]
fn a_wrong_passphrase_is_refused_and_changes_nothing() {
    let w = world();
    let before = snapshot(&w.b.home);
    let mut c = w.b.cmd(&["contacts"]);
    c.env("FERRY_PASSPHRASE", "not the passphrase");
    let r = User::run_cmd(c);
    assert_eq!(r.code, 1);
    assert_eq!(r.error_code().as_deref(), Some("wrong_passphrase"));
    assert!(r.stderr.is_empty(), "nothing else printed: {}", r.stderr);
    assert_eq!(snapshot(&w.b.home), before, "files changed");
    // The passphrase file works too.
    let pf = w.dir.path().join("pass.txt");
    std::fs::write(&pf, format!("{}\n", w.b.pass)).unwrap();
    let mut c = Command::new(bin());
    c.arg("--home")
        .arg(&w.b.home)
        .arg("--json")
        .arg("--passphrase-file")
        .arg(&pf)
        .arg("contacts");
    c.env_remove("FERRY_PASSPHRASE");
    assert_eq!(User::run_cmd(c).of_type("contact").len(), 1);
}

#[test]
fn no_file_on_either_side_holds_plaintext_aliases_or_headers() {
    let w = world();
    let texts = [
        "MARKER-parcel-7f3a9 at the border",
        "MARKER-reply-c01d2",
        "MARKER-chen-55aa1",
    ];
    w.a.run(&["send", "Bashir", texts[0]]);
    w.b.run(&["send", "Amina", texts[1]]);
    w.c.run(&["send", "Amina", texts[2]]);
    for u in [&w.a, &w.b, &w.c] {
        u.run(&["sync"]);
    }
    assert_eq!(w.a.run(&["history", "Bashir"]).texts().len(), 2);
    let needles: Vec<&str> = texts
        .iter()
        .copied()
        .chain(["Bashir", "Amina", "Chen"])
        .collect();
    let mut scanned = 0;
    for root in [
        w.a.home.clone(),
        w.b.home.clone(),
        w.c.home.clone(),
        w.relay.data_dir(),
    ] {
        let profile = root != w.relay.data_dir();
        for (name, bytes) in snapshot(&root) {
            scanned += 1;
            for n in &needles {
                for form in [n.as_bytes().to_vec(), utf16(n)] {
                    assert!(!contains(&bytes, &form), "{n:?} found in {name}");
                }
            }
            if profile {
                for header in [
                    &b"SQLite format"[..],
                    b"{\"",
                    b"PK\x03\x04",
                    b"\x1f\x8b\x08",
                ] {
                    assert!(
                        !bytes.starts_with(header),
                        "{name} starts with a recognizable header"
                    );
                }
            }
        }
    }
    assert!(scanned >= 4);
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            out.push((
                e.path().display().to_string(),
                std::fs::read(e.path()).unwrap(),
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn watch_prints_messages_as_they_arrive() {
    use std::io::BufRead as _;
    let w = world();
    let mut child =
        w.b.cmd(&["watch"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    // Give watch time to subscribe, then send twice.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    w.a.run(&["send", "Bashir", "live one"]);
    w.a.run(&["send", "Bashir", "live two"]);
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while got.len() < 2 && std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["type"] == "message" {
                got.push(v["text"].as_str().unwrap().to_owned());
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(got, ["live one", "live two"]);
    // Acked live: a later sync shows nothing again; history has both.
    assert!(w.b.run(&["sync"]).texts().is_empty());
    assert_eq!(
        w.b.run(&["history", "Amina"]).texts(),
        ["live one", "live two"]
    );
}

#[test]
fn panic_destroys_the_profile_without_a_passphrase() {
    let w = world();
    w.a.run(&["send", "Bashir", "MARKER-before-panic"]);
    w.b.run(&["sync"]);
    let mut c = Command::new(bin());
    c.arg("--home").arg(&w.b.home).arg("--json").arg("panic");
    c.env_remove("FERRY_PASSPHRASE");
    let r = User::run_cmd(c);
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    assert!(r.of_type("wiped")[0]["millis"].as_u64().is_some());
    assert!(!w.b.home.exists(), "the profile directory is gone");
    assert_eq!(
        w.b.try_run(&["contacts"]).error_code().as_deref(),
        Some("no_profile")
    );
    // A second panic reports that there is nothing left.
    let mut c = Command::new(bin());
    c.arg("--home").arg(&w.b.home).arg("--json").arg("panic");
    assert_eq!(User::run_cmd(c).error_code().as_deref(), Some("no_profile"));
}

#[test]
fn watch_locks_itself_when_idle_and_after_the_maximum_time() {
    let w = world();
    let started = std::time::Instant::now();
    let idle =
        w.b.try_run(&["watch", "--idle-lock", "2s", "--max-unlocked", "1h"]);
    assert_eq!(idle.code, 3);
    assert_eq!(idle.of_type("locked")[0]["reason"], "idle");
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));

    // Activity keeps it unlocked, but not past the maximum.
    let child =
        w.b.cmd(&["watch", "--idle-lock", "6s", "--max-unlocked", "7s"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    let started = std::time::Instant::now();
    // Messages keep coming well inside the idle period, past the maximum.
    let mut i = 0;
    while started.elapsed() < std::time::Duration::from_secs(9) {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        w.a.run(&["send", "Bashir", &format!("keepalive {i}")]);
        i += 1;
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(r#""reason":"max_unlocked""#), "{text}");
    assert!(text.contains("keepalive 0"), "{text}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn a_running_watch_locks_at_once_when_the_profile_is_wiped_from_elsewhere() {
    let w = world();
    let mut child =
        w.b.cmd(&["watch"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let wiped = w.b.run(&["panic"]);
    assert_eq!(wiped.of_type("wiped").len(), 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("watch kept running (and holding keys) after the wipe");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(3));
    let mut text = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut text).unwrap();
    assert!(text.contains(r#""reason":"wiped""#), "{text}");
}

#[test]
fn disappearing_view_once_and_delete_for_both() {
    let w = world();
    // The default timer is 24 h, on both sides.
    let m = w.a.run(&["send", "Bashir", "default timer"]);
    let sent_at = m.of_type("message")[0]["sent_at"].as_u64().unwrap();
    assert_eq!(
        m.of_type("message")[0]["expires_at"].as_u64(),
        Some(sent_at + 86_400)
    );
    let got = w.b.run(&["sync"]);
    let exp = got.of_type("message")[0]["expires_at"].as_u64().unwrap();
    assert!(exp >= sent_at + 86_400 && exp <= sent_at + 86_400 + 60);

    // Message ids are base64url and may start with '-': taken as ids, not
    // as options (one in 64 saves and deletes failed with a usage error).
    let id = "-AAAAAAAAAAAAAAAAAAAAA";
    let r = w.b.try_run(&["save", "Amina", id, "/nonexistent-dir/x"]);
    assert_eq!(
        r.error_code().as_deref(),
        Some("no_attachment"),
        "{}",
        r.stderr
    );
    let r = w.b.run(&["delete", "Amina", id]);
    assert_eq!(r.of_type("deleted")[0]["id"], id);
    w.a.run(&["sync"]);

    // A 2 s timer agreed in the conversation: both sides apply it.
    w.a.run(&["timer", "Bashir", "2s"]);
    let t = w.b.run(&["sync"]);
    assert_eq!(t.of_type("timer")[0]["seconds"], 2);
    w.b.run(&["send", "Amina", "gone soon"]);
    assert_eq!(w.a.run(&["sync"]).texts(), ["gone soon"]);
    std::thread::sleep(std::time::Duration::from_millis(3200));
    assert_eq!(w.a.run(&["history", "Bashir"]).texts(), ["default timer"]);
    assert_eq!(w.b.run(&["history", "Amina"]).texts(), ["default timer"]);

    // Off must be explicit; then messages stay.
    w.b.run(&["timer", "Amina", "off"]);
    assert!(w.a.run(&["sync"]).of_type("timer")[0]["seconds"].is_null());
    let bad = w.a.try_run(&["timer", "Bashir", "soon"]);
    assert_ne!(bad.code, 0);

    // View-once: shown once at arrival, never again, and the sender keeps nothing.
    w.a.run(&["send", "--view-once", "Bashir", "read me once"]);
    let first = w.b.run(&["sync"]);
    assert_eq!(first.texts(), ["read me once"]);
    assert_eq!(first.of_type("message")[0]["view_once"], true);
    assert!(
        !w.b.run(&["history", "Amina"])
            .texts()
            .contains(&"read me once".to_owned())
    );
    assert!(
        !w.a.run(&["history", "Bashir"])
            .texts()
            .contains(&"read me once".to_owned())
    );

    // Delete for both.
    let m = w.a.run(&["send", "Bashir", "regret this"]);
    let id = m.of_type("message")[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(w.b.run(&["sync"]).texts(), ["regret this"]);
    w.a.run(&["delete", "Bashir", &id]);
    let d = w.b.run(&["sync"]);
    assert_eq!(d.of_type("deleted")[0]["id"], id.as_str());
    assert!(
        !w.b.run(&["history", "Amina"])
            .texts()
            .contains(&"regret this".to_owned())
    );
    assert!(
        !w.a.run(&["history", "Bashir"])
            .texts()
            .contains(&"regret this".to_owned())
    );
}

#[test]
fn profiles_on_a_private_relay_use_its_access_token() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "a-long-private-relay-token\n").unwrap();
    let relay =
        RelayProcess::start(bin(), &["--access-token-file", token.to_str().unwrap()]).unwrap();
    let member = User::new(dir.path(), "member");
    member.run(&[
        "init",
        "--relay",
        relay.url(),
        "--relay-token-file",
        token.to_str().unwrap(),
    ]);
    let link = member.invite("Friend");
    assert!(link.starts_with("ferry://invite/v1/"));
    let outsider = User::new(dir.path(), "outsider");
    outsider.run(&["init", "--relay", relay.url()]);
    let refused = outsider.try_run(&["invite", "--alias", "Friend"]);
    assert_eq!(
        refused.error_code().as_deref(),
        Some("relay"),
        "{:?}",
        refused.lines
    );
    assert!(
        outsider.run(&["contacts"]).of_type("contact").is_empty(),
        "no dead invite kept"
    );
    // The outsider can still accept the member's invite: only creating
    // mailboxes on the private relay needs the token... on its own relay.
    let friend = User::new(dir.path(), "friend");
    friend.run(&[
        "init",
        "--relay",
        relay.url(),
        "--relay-token-file",
        token.to_str().unwrap(),
    ]);
    friend.run(&["accept", &link, "--alias", "Member"]);
    member.run(&["sync"]);
    friend.run(&["sync"]);
    member.run(&["send", "Friend", "private hello"]);
    assert_eq!(friend.run(&["sync"]).texts(), ["private hello"]);
}

#[test]
fn duress_unlock_shows_the_decoy_and_destroys_the_real_profile() {
    let w = world();
    let d = w.dir.path();
    w.a.run(&["send", "Bashir", "MARKER-real-secret"]);
    w.b.run(&["sync"]);
    // B prepares a decoy with an innocuous contact.
    let mut set = w.b.cmd(&["duress", "set"]);
    set.env("FERRY_DURESS_PASSPHRASE", "duress words");
    assert_eq!(User::run_cmd(set).of_type("duress_set").len(), 1);
    let granny = User::new(d, "granny");
    granny.run(&["init", "--relay", w.relay.url()]);
    let link =
        w.b.run(&["--decoy", "invite", "--alias", "Granny"])
            .of_type("invite")[0]["link"]
            .as_str()
            .unwrap()
            .to_owned();
    granny.run(&["accept", &link, "--alias", "Grandchild"]);
    w.b.run(&["--decoy", "sync"]);
    granny.run(&["sync"]);
    w.b.run(&["--decoy", "send", "Granny", "see you on sunday"]);
    assert_eq!(granny.run(&["sync"]).texts(), ["see you on sunday"]);
    // The real profile is untouched by all that.
    assert_eq!(w.b.run(&["contacts"]).of_type("contact").len(), 1);
    assert_eq!(
        w.b.run(&["history", "Amina"]).texts(),
        ["MARKER-real-secret"]
    );

    let before: Vec<(String, usize)> = snapshot(&w.b.home)
        .into_iter()
        .map(|(n, b)| (n, b.len()))
        .collect();
    // Coerced unlock with the duress passphrase: the decoy, and only it.
    let mut c = w.b.cmd(&["contacts"]);
    c.env("FERRY_PASSPHRASE", "duress words");
    let shown = User::run_cmd(c);
    assert_eq!(shown.code, 0, "{:?} {}", shown.lines, shown.stderr);
    let aliases: Vec<&str> = shown
        .of_type("contact")
        .iter()
        .map(|c| c["alias"].as_str().unwrap())
        .collect();
    assert_eq!(aliases, ["Granny"]);
    let mut h = w.b.cmd(&["history", "Granny"]);
    h.env("FERRY_PASSPHRASE", "duress words");
    assert_eq!(User::run_cmd(h).texts(), ["see you on sunday"]);
    // Same files, same sizes: nothing shows another profile existed.
    let after: Vec<(String, usize)> = snapshot(&w.b.home)
        .into_iter()
        .map(|(n, b)| (n, b.len()))
        .collect();
    assert_eq!(after, before);
    // The real profile is gone: its passphrase opens nothing any more.
    assert_eq!(
        w.b.try_run(&["contacts"]).error_code().as_deref(),
        Some("wrong_passphrase")
    );
    // And the decoy has no decoy of its own to reveal.
    let mut dd = w.b.cmd(&["--decoy", "contacts"]);
    dd.env("FERRY_PASSPHRASE", "duress words");
    assert_eq!(User::run_cmd(dd).error_code().as_deref(), Some("no_decoy"));
}

/// Runs foremost and photorec over `file`, returns every file they carved.
fn carve(file: &Path, out: &Path) -> Vec<PathBuf> {
    let fm = out.join("foremost");
    let st = Command::new("foremost")
        .args(["-Q", "-t", "all", "-i"])
        .arg(file)
        .arg("-o")
        .arg(&fm)
        .output()
        .expect("foremost is installed (.ci/run installs it)");
    assert!(st.status.success(), "foremost failed");
    let pr = out.join("photorec");
    let st = Command::new("photorec")
        .arg("/log")
        .arg("/d")
        .arg(&pr)
        .arg("/cmd")
        .arg(file)
        .arg("partition_none,options,paranoid,fileopt,everything,enable,search")
        .current_dir(out)
        .output()
        .expect("photorec is installed (testdisk package; .ci/run installs it)");
    assert!(st.status.success(), "photorec failed");
    let mut found = Vec::new();
    let mut stack = vec![out.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let name = e.file_name().to_string_lossy().into_owned();
                if name != "audit.txt" && name != "report.xml" && !name.ends_with(".log") {
                    found.push(e.path());
                }
            }
        }
    }
    found
}

/// Every needle searched in every file under `dir` as it is and in what the
/// carving tools recover from each file; returns the hits.
fn forensic_hits(dir: &Path, needles: &[Vec<u8>], work: &Path) -> Vec<String> {
    let mut hits = Vec::new();
    if !dir.exists() {
        return hits;
    }
    for (i, (name, bytes)) in snapshot(dir).into_iter().enumerate() {
        let out = work.join(format!("carve-{}-{i}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).unwrap();
        let mut sources = vec![(name.clone(), bytes)];
        if !sources[0].1.is_empty() {
            for c in carve(Path::new(&name), &out) {
                sources.push((c.display().to_string(), std::fs::read(&c).unwrap()));
            }
        }
        for (src, data) in &sources {
            for n in needles {
                if contains(data, n) {
                    hits.push(format!("{} in {src}", String::from_utf8_lossy(n)));
                }
            }
        }
    }
    hits
}

fn needles(strings: &[&str]) -> Vec<Vec<u8>> {
    strings
        .iter()
        .flat_map(|s| [s.as_bytes().to_vec(), utf16(s)])
        .collect()
}

/// Pearson's chi-square of the byte histogram against uniform (255 degrees
/// of freedom: mean 255, sd 22.6).
fn chi_square(bytes: &[u8]) -> f64 {
    let mut counts = [0f64; 256];
    for &b in bytes {
        counts[b as usize] += 1.0;
    }
    let e = bytes.len() as f64 / 256.0;
    counts.iter().map(|c| (c - e) * (c - e) / e).sum()
}

fn marker_png(text: &str) -> Vec<u8> {
    fn chunk(t: &[u8], d: &[u8]) -> Vec<u8> {
        let mut v = (d.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(t);
        v.extend_from_slice(d);
        // The CRC is not checked by carvers looking for headers/footers.
        v.extend_from_slice(&[0, 0, 0, 0]);
        v
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]));
    png.extend(chunk(b"tEXt", format!("Comment\0{text}").as_bytes()));
    png.extend(chunk(b"IEND", b""));
    png
}

#[test]
fn forensic_search_finds_nothing_after_expiry_view_once_duress_and_panic() {
    let w = world();
    let work = tempfile::tempdir().unwrap();
    let tag = format!("{:x}", std::process::id() as u64 * 7919 + 17);

    // Positive control: the carving tools do find a planted marker file.
    let planted = work.path().join("planted.img");
    let png = marker_png(&format!("FORENSIC-CONTROL-{tag}"));
    let mut img = vec![0x5au8; 8192];
    img.extend_from_slice(&png);
    img.resize(img.len() + (512 - img.len() % 512) % 512 + 8192, 0x5a);
    std::fs::write(&planted, &img).unwrap();
    let control = work.path().join("control");
    std::fs::create_dir_all(&control).unwrap();
    let carved = carve(&planted, &control);
    assert!(
        carved.iter().any(|c| contains(
            &std::fs::read(c).unwrap(),
            format!("FORENSIC-CONTROL-{tag}").as_bytes()
        )),
        "the carving tools work on a planted file: {carved:?}"
    );

    let expiring = format!("FORENSIC-expire-{tag}");
    let file_marker = format!("FORENSIC-file-{tag}");
    let file_text = format!(
        "MARKERFILE:{}",
        ferry_proto::b64::encode(&marker_png(&file_marker))
    );
    let once = format!("FORENSIC-viewonce-{tag}");
    let real_only = format!("FORENSIC-real-{tag}");
    let link = w.a.invite("Dora");
    let secret_b64 = link.rsplit('/').next().unwrap().to_owned();

    // (a) Messages expire on both sides.
    w.a.run(&["timer", "Bashir", "2s"]);
    w.b.run(&["sync"]);
    w.a.run(&["send", "Bashir", &expiring]);
    w.a.run(&["send", "Bashir", &file_text]);
    assert_eq!(w.b.run(&["sync"]).texts().len(), 2);
    std::thread::sleep(std::time::Duration::from_millis(3200));
    w.a.run(&["contacts"]);
    w.b.run(&["contacts"]);
    let n = needles(&[
        &expiring,
        &file_marker,
        &file_text,
        "Bashir",
        "Amina",
        "Chen",
        "Dora",
        &link,
        &secret_b64,
    ]);
    for home in [&w.a.home, &w.b.home] {
        let hits = forensic_hits(home, &n, work.path());
        assert!(hits.is_empty(), "after expiry: {hits:?}");
    }

    // (b) A view-once message after it was viewed.
    w.a.run(&["send", "--view-once", "Bashir", &once]);
    assert_eq!(w.b.run(&["sync"]).texts(), std::slice::from_ref(&once));
    for home in [&w.a.home, &w.b.home] {
        let hits = forensic_hits(home, &needles(&[&once]), work.path());
        assert!(hits.is_empty(), "after view-once: {hits:?}");
    }

    // The vault files are indistinguishable from random bytes.
    for (name, bytes) in snapshot(&w.b.home) {
        if bytes.len() >= 4096 {
            let chi = chi_square(&bytes);
            assert!(
                chi < 400.0,
                "{name}: chi-square {chi:.0} over {} bytes",
                bytes.len()
            );
        }
    }

    // (c) Duress: B's real messages and contacts are gone from every file.
    w.b.run(&["timer", "Amina", "off"]);
    w.a.run(&["sync"]);
    w.a.run(&["send", "Bashir", &real_only]);
    w.b.run(&["sync"]);
    let mut set = w.b.cmd(&["duress", "set"]);
    set.env("FERRY_DURESS_PASSPHRASE", "under duress");
    assert_eq!(User::run_cmd(set).code, 0);
    let mut open = w.b.cmd(&["contacts"]);
    open.env("FERRY_PASSPHRASE", "under duress");
    assert_eq!(User::run_cmd(open).code, 0);
    let hits = forensic_hits(
        &w.b.home,
        &needles(&[&real_only, &expiring, &once, "Amina"]),
        work.path(),
    );
    assert!(hits.is_empty(), "after duress: {hits:?}");

    // (d) Panic: nothing is left under the profile directory.
    let mut p = Command::new(bin());
    p.arg("--home").arg(&w.a.home).arg("panic");
    assert!(p.output().unwrap().status.success());
    assert!(!w.a.home.exists());
    let parent_hits = forensic_hits(
        w.dir.path(),
        &needles(&[&real_only, &expiring, "Bashir"]),
        work.path(),
    );
    assert!(parent_hits.is_empty(), "after panic: {parent_hits:?}");
}

#[test]
fn wipe_after_wrong_passphrases_is_off_by_default_and_works_when_set() {
    let w = world();
    for _ in 0..5 {
        let mut c = w.c.cmd(&["contacts"]);
        c.env("FERRY_PASSPHRASE", "guess");
        assert_eq!(
            User::run_cmd(c).error_code().as_deref(),
            Some("wrong_passphrase")
        );
    }
    assert_eq!(
        w.c.run(&["contacts"]).of_type("contact").len(),
        1,
        "off by default"
    );
    assert_eq!(
        w.c.run(&["wipe-after", "2"]).of_type("wipe_after")[0]["attempts"],
        2
    );
    for _ in 0..2 {
        let mut c = w.c.cmd(&["contacts"]);
        c.env("FERRY_PASSPHRASE", "guess");
        assert_eq!(
            User::run_cmd(c).error_code().as_deref(),
            Some("wrong_passphrase")
        );
    }
    assert!(!w.c.home.exists(), "wiped after two wrong passphrases");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Writes `payload` into every mailbox of the relay, as a malicious relay could.
fn inject_everywhere(relay: &RelayProcess, payload: &[u8]) {
    let db = rusqlite::Connection::open(relay.data_dir().join("relay.sqlite3")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    let ids: Vec<Vec<u8>> = db
        .prepare("SELECT id FROM mailboxes")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for id in &ids {
        db.execute(
            "INSERT INTO messages (mailbox, seq, expires_at, size, payload)
             SELECT id, next_seq, 4102444800, ?3, ?2 FROM mailboxes WHERE id = ?1",
            rusqlite::params![id, payload, payload.len() as i64],
        )
        .unwrap();
        db.execute(
            "UPDATE mailboxes SET next_seq = next_seq + 1, msg_count = msg_count + 1 WHERE id = ?1",
            [id],
        )
        .unwrap();
    }
}

#[test]
fn coercion_a_duress_unlock_warns_every_contact_silently() {
    let w = world();
    // B also knows C directly.
    let link = w.b.invite("Chen");
    w.c.run(&["accept", &link, "--alias", "Bashir"]);
    w.b.run(&["sync"]);
    w.c.run(&["sync"]);
    let mut set = w.b.cmd(&["duress", "set"]);
    set.env("FERRY_DURESS_PASSPHRASE", "duress words");
    assert_eq!(User::run_cmd(set).code, 0);
    w.b.run(&["contacts"]); // a real session refreshes the capsule
    // The security service images the phone, then forces B to unlock.
    let image = w.dir.path().join("b-image");
    copy_dir(&w.b.home, &image);
    let started = std::time::Instant::now();
    let mut coerced = w.b.cmd(&["contacts"]);
    coerced.env("FERRY_PASSPHRASE", "duress words");
    let shown = User::run_cmd(coerced);
    assert_eq!(shown.code, 0);
    assert!(
        shown.lines.is_empty(),
        "the decoy shows nothing of it: {:?}",
        shown.lines
    );
    assert!(shown.stderr.is_empty(), "{}", shown.stderr);

    let a = w.a.run(&["sync"]);
    let c = w.c.run(&["sync"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(a.of_type("alert")[0]["contact"], "Bashir");
    assert_eq!(a.of_type("alert")[0]["reason"], "duress");
    assert_eq!(c.of_type("alert")[0]["contact"], "Bashir");
    let contacts = w.a.run(&["contacts"]);
    let bashir = contacts
        .of_type("contact")
        .into_iter()
        .find(|x| x["alias"] == "Bashir")
        .unwrap()
        .clone();
    assert_eq!(bashir["compromised"]["reason"], "duress");
    // A second coerced unlock sends nothing more (the capsule is spent).
    let mut again = w.b.cmd(&["contacts"]);
    again.env("FERRY_PASSPHRASE", "duress words");
    User::run_cmd(again);
    assert!(w.a.run(&["sync"]).of_type("alert").is_empty());

    // A message sent from the imaged phone reaches A flagged, not as normal.
    let imaged = User {
        home: image,
        pass: w.b.pass.clone(),
    };
    imaged.run(&["send", "Amina", "all fine, answer me"]);
    let got = w.a.run(&["sync"]);
    assert!(got.texts().is_empty(), "never shown as a normal message");
    assert_eq!(
        got.of_type("compromised")[0]["contact"],
        "Bashir",
        "every sync names it"
    );
    let q = got.of_type("quarantined");
    assert_eq!(q.len(), 1);
    assert_eq!(q[0]["flagged"], true);
    // Sending to a compromised contact needs --force.
    assert_eq!(
        w.a.try_run(&["send", "Bashir", "hello?"])
            .error_code()
            .as_deref(),
        Some("contact_compromised")
    );
    w.a.run(&["send", "--force", "Bashir", "hello?"]);
}

#[test]
fn forged_alerts_from_the_relay_or_a_stranger_change_nothing() {
    let w = world();
    // A sealed-looking alert under a key nobody shares, padded to a bucket.
    let mut forged = vec![0u8; 256];
    forged[3] = 100;
    forged[4] = 4; // alert envelope
    for (i, b) in forged.iter_mut().enumerate().skip(5).take(99) {
        *b = (i * 37 % 251) as u8;
    }
    inject_everywhere(&w.relay, &forged);
    let r = w.a.run(&["sync"]);
    assert!(r.of_type("alert").is_empty());
    assert_eq!(r.of_type("rejected").len(), 2, "{:?}", r.lines);
    for c in w.a.run(&["contacts"]).of_type("contact") {
        assert!(c["compromised"].is_null());
    }
    w.a.run(&["send", "Bashir", "still trusted"]);
    assert_eq!(w.b.run(&["sync"]).texts(), ["still trusted"]);
}

#[test]
fn manual_alerts_reach_the_chosen_contacts() {
    let w = world();
    assert_eq!(
        w.b.run(&["alert", "Amina"]).of_type("alerted")[0]["contacts"],
        1
    );
    let a = w.a.run(&["sync"]);
    assert_eq!(a.of_type("alert")[0]["contact"], "Bashir");
    assert_eq!(a.of_type("alert")[0]["reason"], "manual");
    assert_eq!(
        w.a.run(&["alert", "--all"]).of_type("alerted")[0]["contacts"],
        2
    );
    assert_eq!(w.b.run(&["sync"]).of_type("alert")[0]["reason"], "manual");
    assert_eq!(w.c.run(&["sync"]).of_type("alert")[0]["contact"], "Amina");
    assert_eq!(
        w.c.try_run(&["alert", "Nobody"]).error_code().as_deref(),
        Some("unknown_contact")
    );
}

#[test]
fn prove_its_you_verified_failed_coerced_and_no_reset_by_the_phone_holder() {
    let w = world();
    let with = |u: &User, args: &[&str], env: &[(&str, &str)]| {
        let mut c = u.cmd(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let r = User::run_cmd(c);
        assert_eq!(r.code, 0, "{args:?}: {:?} {}", r.lines, r.stderr);
        r
    };
    let set = with(
        &w.b,
        &["phrase", "set"],
        &[
            ("FERRY_PHRASE", "blue river 1987"),
            ("FERRY_DURESS_PHRASE", "red mountain"),
        ],
    );
    assert_eq!(set.of_type("phrase_set")[0]["contacts"], 1);
    assert_eq!(
        w.a.run(&["sync"]).of_type("verifiers")[0]["contact"],
        "Bashir"
    );

    let mut answers = Vec::new();
    for (phrase, expected) in [
        ("blue river 1987", "verified"),
        ("a guess", "failed"),
        ("red mountain", "coerced"),
    ] {
        w.a.run(&["challenge", "Bashir"]);
        assert_eq!(
            w.b.run(&["sync"]).of_type("challenge")[0]["contact"],
            "Amina"
        );
        let mut c = w.b.cmd(&["answer", "Amina"]);
        c.env("FERRY_PHRASE", phrase);
        let out = c.output().unwrap();
        answers.push((out.status.code(), out.stdout, out.stderr));
        let r = w.a.run(&["sync"]);
        assert_eq!(
            r.of_type("challenge_result")[0]["result"],
            expected,
            "{phrase}"
        );
    }
    // The answering device shows exactly the same thing whatever was typed.
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[1], answers[2]);

    // Whoever holds the unlocked phone cannot reset the verifiers: without the
    // current phrase nothing is sent, and a wrong "current" is refused by A.
    let r = with(
        &w.b,
        &["phrase", "set"],
        &[("FERRY_PHRASE", "mine now"), ("FERRY_DURESS_PHRASE", "x")],
    );
    assert_eq!(r.of_type("phrase_set")[0]["contacts"], 0);
    with(
        &w.b,
        &["phrase", "set"],
        &[
            ("FERRY_PHRASE", "mine now"),
            ("FERRY_DURESS_PHRASE", "x"),
            ("FERRY_CURRENT_PHRASE", "wrong"),
        ],
    );
    let r = w.a.run(&["sync"]);
    assert!(r.of_type("verifiers").is_empty());
    assert_eq!(r.of_type("rejected").len(), 1, "{:?}", r.lines);
    w.a.run(&["challenge", "Bashir"]);
    w.b.run(&["sync"]);
    with(
        &w.b,
        &["answer", "Amina"],
        &[("FERRY_PHRASE", "blue river 1987")],
    );
    assert_eq!(
        w.a.run(&["sync"]).of_type("challenge_result")[0]["result"],
        "verified"
    );
    // The owner can change it with the current phrase.
    with(
        &w.b,
        &["phrase", "set"],
        &[
            ("FERRY_PHRASE", "green lake"),
            ("FERRY_DURESS_PHRASE", "grey sky"),
            ("FERRY_CURRENT_PHRASE", "blue river 1987"),
        ],
    );
    assert_eq!(w.a.run(&["sync"]).of_type("verifiers").len(), 1);
    // Answering without an open challenge is an error, not a silent send.
    let mut c = w.b.cmd(&["answer", "Amina"]);
    c.env("FERRY_PHRASE", "green lake");
    assert_eq!(
        User::run_cmd(c).error_code().as_deref(),
        Some("no_challenge")
    );
}

#[test]
fn dead_man_switch_warns_contacts_when_the_owner_stops_unlocking() {
    let clock_dir = tempfile::tempdir().unwrap();
    let clock = clock_dir.path().join("clock");
    std::fs::write(&clock, "0").unwrap();
    let w = world_on(&[
        "--clock-offset-file",
        clock.to_str().unwrap(),
        "--sweep-interval",
        "1s",
    ]);
    let link = w.b.invite("Chen");
    w.c.run(&["accept", &link, "--alias", "Bashir"]);
    w.b.run(&["sync"]);
    w.c.run(&["sync"]);
    // B keeps a short switch; A and C keep the default 72 h.
    let r = w.b.run(&["canary", "1h"]);
    assert_eq!(r.of_type("canary")[0]["deposited"], 2);
    w.a.run(&["contacts"]);
    w.c.run(&["contacts"]);
    // Half an hour later nothing has fired.
    std::fs::write(&clock, "1800").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert!(w.a.run(&["sync"]).of_type("alert").is_empty());
    // B does not unlock for two hours: the relay releases B's canaries.
    std::fs::write(&clock, "7200").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let a = w.a.run(&["sync"]);
    let c = w.c.run(&["sync"]);
    assert_eq!(a.of_type("alert").len(), 1, "{:?}", a.lines);
    assert_eq!(a.of_type("alert")[0]["contact"], "Bashir");
    assert_eq!(a.of_type("alert")[0]["reason"], "canary");
    assert_eq!(c.of_type("alert").len(), 1, "{:?}", c.lines);
    assert_eq!(c.of_type("alert")[0]["contact"], "Bashir");
    // Turning it off removes the canaries from the relay.
    let off = w.a.run(&["canary", "off"]);
    assert_eq!(off.of_type("canary")[0]["deposited"], 0);
}
