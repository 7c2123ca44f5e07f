//! End-to-end tests of the seizure defenses with the real binary: the
//! duress decoy, forensic carving of the files, wipe after wrong
//! passphrases, warnings to contacts (duress, manual, dead-man switch) and
//! "prove it's you".

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_testkit::RelayProcess;

mod common;
use common::*;

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

    // (c) Duress: B's real messages and contacts are gone from every file
    // (the timer is off on both devices, so nothing expires meanwhile).
    w.b.run(&["timer", "Amina", "off"]);
    w.a.run(&["timer", "Bashir", "off"]);
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
    ferry_testkit::copy_dir(&w.b.home, &image).unwrap();
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
        env: Vec::new(),
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
    // (The coerced answer quarantined B: what it sends changes nothing.)
    let r = w.a.run(&["sync"]);
    assert!(r.of_type("verifiers").is_empty());
    assert_eq!(
        r.of_type("compromised")[0]["reason"],
        "duress",
        "{:?}",
        r.lines
    );
    // Only the real phrase lifts the quarantine, and A is told.
    w.a.run(&["challenge", "Bashir"]);
    w.b.run(&["sync"]);
    with(
        &w.b,
        &["answer", "Amina"],
        &[("FERRY_PHRASE", "blue river 1987")],
    );
    let r = w.a.run(&["sync"]);
    let result = &r.of_type("challenge_result")[0];
    assert_eq!(result["result"], "verified");
    assert_eq!(result["quarantine_lifted"], true);
    let r = w.a.run(&["sync"]);
    assert!(r.of_type("compromised").is_empty(), "{:?}", r.lines);
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
    // Turned off, the canaries stay (a duress unlock fires them) but the
    // relay holds them for a year: hours later nothing has fired.
    let off = w.a.run(&["canary", "off"]);
    assert_eq!(off.of_type("canary")[0]["deposited"], 2);
    std::fs::write(&clock, "300000").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    for u in [&w.b, &w.c] {
        let r = u.run(&["sync"]);
        assert!(
            r.of_type("alert").iter().all(|a| a["contact"] != "Amina"),
            "{:?}",
            r.lines
        );
    }
}
