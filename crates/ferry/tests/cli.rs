//! End-to-end tests of the `ferry` CLI: real relay process, real profiles
//! on disk, every command run as the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

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

/// What lands in shell history and /proc/PID/cmdline is readable by anyone
/// who gets the phone or a process list: texts and invite links can come
/// from standard input instead.
#[test]
fn texts_and_links_can_come_from_standard_input() {
    use std::io::Write as _;
    let run_with_stdin = |u: &User, args: &[&str], input: &str| {
        let mut c = u.cmd(args);
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let w = world();
    let d = User::new(w.dir.path(), "d");
    d.run(&["init", "--relay", w.relay.url()]);
    let link = w.a.invite("Dara");
    run_with_stdin(
        &d,
        &["accept", "-", "--alias", "Amina"],
        &format!("{link}\n"),
    );
    w.a.run(&["sync"]);
    d.run(&["sync"]);
    run_with_stdin(
        &w.a,
        &["send", "Dara", "-"],
        "the address is\nbehind the market\n",
    );
    assert_eq!(
        d.run(&["sync"]).texts(),
        ["the address is\nbehind the market"]
    );
}

/// A seized phone whose `watch` locked (or was stopped) must not let the
/// captor scroll back to the messages it showed: the screen and the
/// scrollback are erased. Run on a real terminal (a pty from `script`).
#[test]
fn watch_erases_the_screen_and_scrollback_when_it_locks() {
    let w = world();
    w.a.run(&["send", "Bashir", "MARKER-on-screen"]);
    let command = format!(
        "'{}' --home '{}' watch --idle-lock 3s",
        bin().display(),
        w.b.home.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qefc", &command, "/dev/null"])
        .env("FERRY_PASSPHRASE", &w.b.pass)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let shown = text
        .find("MARKER-on-screen")
        .expect("the message was shown");
    let cleared = text.find("\x1b[3J").expect("the scrollback was erased");
    assert!(cleared > shown, "{text:?}");
    assert!(text[cleared..].contains("locked (idle)"), "{text:?}");
    assert!(!text[cleared..].contains("MARKER"), "{text:?}");
}

/// Both sides of a conversation see the same safety code; another
/// conversation has another one.
#[test]
fn safety_codes_match_on_both_sides() {
    let w = world();
    let code = |u: &User, alias: &str| {
        u.run(&["safety", alias]).of_type("safety")[0]["code"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let ab = code(&w.a, "Bashir");
    assert_eq!(ab, code(&w.b, "Amina"));
    assert_eq!(ab.len(), 35, "{ab}");
    let ac = code(&w.a, "Chen");
    assert_eq!(ac, code(&w.c, "Amina"));
    assert_ne!(ab, ac);
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

    // Only local input is activity: messages pushed from outside (which a
    // captor holding a seized, unlocked phone could keep sending) do not
    // keep it unlocked.
    let child =
        w.b.cmd(&["watch", "--idle-lock", "4s", "--max-unlocked", "1h"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    let started = std::time::Instant::now();
    let mut i = 0;
    while started.elapsed() < std::time::Duration::from_secs(7) {
        std::thread::sleep(std::time::Duration::from_millis(1000));
        w.a.run(&["send", "Bashir", &format!("keepalive {i}")]);
        i += 1;
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(r#""reason":"idle""#), "{text}");
    assert!(text.contains("keepalive 0"), "{text}");

    // And the maximum holds whatever happens.
    let max =
        w.b.try_run(&["watch", "--idle-lock", "1h", "--max-unlocked", "2s"]);
    assert_eq!(max.code, 3);
    assert_eq!(max.of_type("locked")[0]["reason"], "max_unlocked");
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

    // Off must be explicit, on each device: one side turning it off does
    // not turn it off on the other (each keeps the shorter of the two).
    w.b.run(&["timer", "Amina", "off"]);
    assert!(w.a.run(&["sync"]).of_type("timer").is_empty());
    w.a.run(&["timer", "Bashir", "off"]);
    assert!(w.b.run(&["sync"]).of_type("timer").is_empty());
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
