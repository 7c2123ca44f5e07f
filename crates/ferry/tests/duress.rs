//! A duress session as the network and the captor see it, end to end with
//! the real binary: behind nginx (its access log is the watcher), no request
//! a real session does not make, renewals and fires of the same size, and,
//! with the relay unreachable, an unlock as fast as a real one; offline, the
//! decoy keeps trying to warn the contacts while it runs, showing nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{User, bin};
use ferry_testkit::RelayProcess;
use ferry_testkit::net::{Nginx, TestCa};

/// `METHOD PATH BYTES STATUS` → (method, route with ids as `{id}`, bytes).
fn parse(line: &str) -> (String, String, usize) {
    let mut f = line.split(' ');
    let method = f.next().unwrap().to_owned();
    let path = f.next().unwrap();
    let bytes = f.next().unwrap().parse().unwrap();
    let route = path
        .split('/')
        .map(|seg| {
            // Mailbox, canary and blob ids: 16 bytes in base64url.
            if seg.len() == 22
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                "{id}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    (method, route, bytes)
}

/// The requests logged after the first `from`.
fn since(nginx: &Nginx, from: usize) -> Vec<(String, String, usize)> {
    nginx.access_log()[from..]
        .iter()
        .map(|l| parse(l))
        .collect()
}

fn routes(reqs: &[(String, String, usize)]) -> BTreeSet<(String, String)> {
    reqs.iter()
        .map(|(m, r, _)| (m.clone(), r.clone()))
        .collect()
}

/// Runs `args` as `user` with the clock `shift`ed (faketime).
fn later(user: &User, shift: &str, args: &[&str]) -> common::Run {
    user.run_later(shift, args)
}

/// Every payload the relay holds, read from its database.
fn stored_payloads(relay: &RelayProcess) -> Vec<Vec<u8>> {
    let db = rusqlite::Connection::open_with_flags(
        relay.data_dir().join("relay.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = db.prepare("SELECT payload FROM messages").unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The fastest of three runs of `args` by `user` with passphrase `pass`.
fn fastest(user: &User, pass: &str, args: &[&str]) -> Duration {
    (0..3)
        .map(|_| {
            let mut c = user.cmd(args);
            c.env("FERRY_PASSPHRASE", pass);
            let t = Instant::now();
            let r = User::run_cmd(c);
            let took = t.elapsed();
            assert_eq!(r.code, 0, "{}", r.stderr);
            took
        })
        .min()
        .unwrap()
}

#[test]
fn a_duress_session_looks_like_a_real_one_to_whoever_watches_the_relay() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Watcher CA").unwrap();
    let ca_file = dir.path().join("ca.pem");
    ca.write_pem(&ca_file).unwrap();
    let (crt, key) = ca.issue(dir.path(), "nginx", &["127.0.0.1"]).unwrap();
    let relay = RelayProcess::start(bin(), &[]).unwrap();
    let upstream = relay.url().trim_start_matches("http://").to_owned();
    let nginx = Nginx::start(&crt, &key, &upstream).unwrap();
    let (mut a, mut b) = (User::new(dir.path(), "a"), User::new(dir.path(), "b"));
    for u in [&mut a, &mut b] {
        u.env
            .push(("SSL_CERT_FILE".into(), ca_file.display().to_string()));
        u.run(&["init", "--relay", &nginx.url()]);
    }
    let link = a.invite("Bashir");
    b.run(&["accept", &link, "--alias", "Amina"]);
    a.run(&["sync"]);
    b.run(&["sync"]);
    let mut set = b.cmd(&["duress", "set"]);
    set.env("FERRY_DURESS_PASSPHRASE", "duress words");
    assert_eq!(User::run_cmd(set).code, 0);
    b.run(&["contacts"]); // a real session refreshes the capsule
    // Images of the phone for the timing below.
    let (real_image, duress_image) = (dir.path().join("real"), dir.path().join("duress"));
    ferry_testkit::copy_dir(&b.home, &real_image).unwrap();
    ferry_testkit::copy_dir(&b.home, &duress_image).unwrap();

    // A real session that sends one short text, a day and a half later
    // (when the canary is due for renewal: renewals follow each canary's
    // own random schedule, not every unlock).
    let mark = nginx.access_log().len();
    let r = later(&b, "+40h", &["send", "Amina", "hi"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let real = since(&nginx, mark);
    // The captor forces the duress passphrase.
    let mark = nginx.access_log().len();
    let mut coerced = b.cmd(&["contacts"]);
    coerced.env("FERRY_PASSPHRASE", "duress words");
    assert_eq!(User::run_cmd(coerced).code, 0);
    let duress = since(&nginx, mark);
    assert!(!duress.is_empty(), "the duress session sent nothing");
    println!("real {real:?}\nduress {duress:?}");
    assert!(
        routes(&duress).is_subset(&routes(&real)),
        "a duress session made requests a real one does not:\nduress {:?}\nreal {:?}",
        routes(&duress),
        routes(&real)
    );
    // The fire and the renewal are requests of the same size.
    let renew = |reqs: &[(String, String, usize)]| -> BTreeSet<usize> {
        reqs.iter()
            .filter(|(_, r, _)| r.ends_with("/renew"))
            .map(|(_, _, n)| *n)
            .collect()
    };
    assert_eq!(renew(&duress), renew(&real), "{duress:?} {real:?}");
    // What the relay now stores for A: the short text and the duress alert
    // have the same size and share no bytes; nothing tells them apart.
    let stored = stored_payloads(&relay);
    let small: Vec<&Vec<u8>> = stored.iter().filter(|p| p.len() == 256).collect();
    assert!(
        small.len() >= 2,
        "sizes stored: {:?}",
        stored.iter().map(Vec::len).collect::<Vec<_>>()
    );
    // And their bytes look random (before, each began with its length and
    // ended in zeros).
    let mut counts = [0u64; 256];
    let total: usize = stored.iter().map(Vec::len).sum();
    for p in &stored {
        for &x in p {
            counts[usize::from(x)] += 1;
        }
    }
    let expected = total as f64 / 256.0;
    let chi2: f64 = counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum();
    assert!(
        chi2 < 400.0,
        "chi-square {chi2:.0} over {total} stored bytes"
    );
    for (i, a) in stored.iter().enumerate() {
        assert!(ferry_proto::padding::is_bucket_size(a.len()));
        for b in &stored[i + 1..] {
            let runs: BTreeSet<&[u8]> = a.windows(8).collect();
            assert!(
                !b.windows(8).any(|w| runs.contains(w)),
                "two stored payloads share bytes"
            );
        }
    }
    // And the contact was warned.
    let got = a.run(&["sync"]);
    assert_eq!(
        got.of_type("alert")[0]["reason"],
        "duress",
        "{:?}",
        got.lines
    );

    // With the relay unreachable, the decoy opens as fast as the real
    // profile (it took ten times longer when the capsule's sends were
    // retried before the decoy opened).
    drop(nginx);
    let real_user = User {
        home: real_image,
        pass: b.pass.clone(),
        env: b.env.clone(),
    };
    let duress_user = User {
        home: duress_image,
        pass: b.pass.clone(),
        env: b.env.clone(),
    };
    let real_took = fastest(&real_user, &b.pass, &["contacts"]);
    let duress_took = fastest(&duress_user, "duress words", &["contacts"]);
    println!("offline unlock: real {real_took:?}, duress {duress_took:?}");
    assert!(
        duress_took < real_took.mul_f64(1.5) + Duration::from_millis(300),
        "offline unlock: real {real_took:?}, duress {duress_took:?}"
    );
}

#[test]
fn an_offline_decoy_warns_the_contacts_once_the_relay_is_back() {
    let mut w = common::world();
    let mut set = w.b.cmd(&["duress", "set"]);
    set.env("FERRY_DURESS_PASSPHRASE", "duress words");
    assert_eq!(User::run_cmd(set).code, 0);
    w.b.run(&["contacts"]); // a real session refreshes the capsule
    // The phone is offline when the captor forces the duress passphrase
    // and leaves the app running.
    w.relay.kill9().unwrap();
    let mut watch = w.b.cmd(&["watch"]);
    watch
        .env("FERRY_PASSPHRASE", "duress words")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = watch.spawn().unwrap();
    // Longer than any retry inside the unlock itself: only the running
    // decoy can deliver it.
    std::thread::sleep(Duration::from_secs(6));
    w.relay.restart().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let warned = loop {
        let got = w.a.run(&["sync"]);
        if let Some(alert) = got.of_type("alert").first() {
            break alert["reason"].clone();
        }
        assert!(Instant::now() < deadline, "the contact was never warned");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(warned, "duress");
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.stdout.is_empty(),
        "the decoy showed something: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}
