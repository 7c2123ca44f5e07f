//! Real networks, end to end with the real binary: a relay serving TLS
//! itself (with a private CA, an untrusted certificate, a renewal), a relay
//! behind nginx terminating TLS, and a profile that reaches its relay only
//! through a SOCKS5 proxy (microsocks) that alone can resolve the relay's
//! name.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::io::BufRead as _;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{User, bin};
use ferry_testkit::RelayProcess;
use ferry_testkit::net::{Nginx, Socks, TestCa};
use ferry_testkit::proxy::CutProxy;
use serde_json::Value;

/// A relay serving TLS itself with `crt` and `key`, plus `extra` options.
fn tls_relay(crt: &Path, key: &Path, extra: &[&str]) -> RelayProcess {
    let mut args = vec![
        "--tls-cert",
        crt.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    RelayProcess::start(bin(), &args).unwrap()
}

/// Users whose commands trust `ca` through SSL_CERT_FILE.
fn users(dir: &Path, ca: Option<&Path>) -> (User, User) {
    let (mut a, mut b) = (User::new(dir, "a"), User::new(dir, "b"));
    if let Some(ca) = ca {
        for u in [&mut a, &mut b] {
            u.env
                .push(("SSL_CERT_FILE".into(), ca.display().to_string()));
        }
    }
    (a, b)
}

/// A invites B, B accepts, both finish the handshake.
fn pair(a: &User, b: &User, accept_extra: &[&str]) {
    let link = a.invite("Bashir");
    let mut args = vec!["accept", link.as_str(), "--alias", "Amina"];
    args.extend_from_slice(accept_extra);
    b.run(&args);
    assert_eq!(a.run(&["sync"]).of_type("established").len(), 1);
    assert_eq!(b.run(&["sync"]).of_type("established").len(), 1);
}

/// Runs `watch` for `user` while `act` runs; returns the texts it printed
/// (live push over the WebSocket).
fn watched(user: &User, want: usize, act: impl FnOnce()) -> Vec<String> {
    let mut child = user.cmd(&["watch"]).stdout(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(1500));
    act();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < want && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["type"] == "message" {
                got.push(v["text"].as_str().unwrap().to_owned());
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    got
}

/// Pairing, a message, live push and history over `url`.
fn converse(a: &User, b: &User, url: &str, accept_extra: &[&str]) {
    a.run(&["init", "--relay", url]);
    b.run(&["init", "--relay", url]);
    pair(a, b, accept_extra);
    a.run(&["send", "Bashir", "over the wire"]);
    assert_eq!(b.run(&["sync"]).texts(), ["over the wire"]);
    let live = watched(b, 1, || {
        a.run(&["send", "Bashir", "pushed live"]);
    });
    assert_eq!(live, ["pushed live"]);
}

#[test]
fn a_relay_serving_tls_itself_carries_a_whole_conversation() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Ferry test CA").unwrap();
    let ca_file = dir.path().join("ca.pem");
    ca.write_pem(&ca_file).unwrap();
    let (crt, key) = ca
        .issue(dir.path(), "relay", &["127.0.0.1", "localhost"])
        .unwrap();
    let relay = tls_relay(&crt, &key, &[]);
    assert!(relay.url().starts_with("https://"), "{}", relay.url());
    let (a, b) = users(dir.path(), Some(&ca_file));
    converse(&a, &b, relay.url(), &[]);

    // Plain HTTP to the TLS port gets nowhere.
    let plain = relay.url().replace("https://", "http://");
    let c = User::new(dir.path(), "c");
    c.run(&["init", "--relay", &plain]);
    let r = c.try_run(&["invite", "--alias", "x"]);
    assert_eq!(r.error_code().as_deref(), Some("relay"), "{:?}", r.lines);
}

#[test]
fn an_untrusted_certificate_is_reported_as_a_certificate_problem() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Unknown CA").unwrap();
    let (crt, key) = ca.issue(dir.path(), "relay", &["127.0.0.1"]).unwrap();
    let relay = tls_relay(&crt, &key, &[]);
    let (a, _) = users(dir.path(), None);
    a.run(&["init", "--relay", relay.url()]);
    let r = a.try_run(&["invite", "--alias", "Bashir"]);
    assert_eq!(
        r.error_code().as_deref(),
        Some("relay_certificate"),
        "{:?}",
        r.lines
    );
    let message = r.of_type("error")[0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("certificate"), "{message}");
    assert!(!message.contains("unreachable"), "{message}");

    // A certificate for another name, from a trusted CA, is refused too.
    let ca_file = dir.path().join("ca.pem");
    ca.write_pem(&ca_file).unwrap();
    let (wrong_crt, wrong_key) = ca.issue(dir.path(), "other", &["relay.example"]).unwrap();
    let other = tls_relay(&wrong_crt, &wrong_key, &[]);
    let mut b = User::new(dir.path(), "b");
    b.env
        .push(("SSL_CERT_FILE".into(), ca_file.display().to_string()));
    b.run(&["init", "--relay", other.url()]);
    let r = b.try_run(&["invite", "--alias", "Amina"]);
    assert_eq!(r.error_code().as_deref(), Some("relay_certificate"));
}

#[test]
fn the_relay_serves_a_renewed_certificate_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (old_ca, new_ca) = (
        TestCa::new("Old CA").unwrap(),
        TestCa::new("New CA").unwrap(),
    );
    let (old_file, new_file) = (dir.path().join("old.pem"), dir.path().join("new.pem"));
    old_ca.write_pem(&old_file).unwrap();
    new_ca.write_pem(&new_file).unwrap();
    let live = dir.path().join("live");
    std::fs::create_dir(&live).unwrap();
    let (crt, key) = old_ca.issue(&live, "relay", &["127.0.0.1"]).unwrap();
    let relay = tls_relay(&crt, &key, &["--tls-reload-interval", "1s"]);
    let mut a = User::new(dir.path(), "a");
    a.env
        .push(("SSL_CERT_FILE".into(), old_file.display().to_string()));
    a.run(&["init", "--relay", relay.url()]);
    a.run(&["invite", "--alias", "one"]);

    // The renewal rewrites both files in place (as certbot's hooks do).
    let staging = dir.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    let (new_crt, new_key) = new_ca.issue(&staging, "relay", &["127.0.0.1"]).unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    std::fs::copy(&new_crt, &crt).unwrap();

    a.env = vec![("SSL_CERT_FILE".into(), new_file.display().to_string())];
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = a.try_run(&["invite", "--alias", "two"]);
        if r.code == 0 {
            break;
        }
        assert_eq!(r.error_code().as_deref(), Some("relay_certificate"));
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // And the old one is no longer served.
    a.env = vec![("SSL_CERT_FILE".into(), old_file.display().to_string())];
    let r = a.try_run(&["invite", "--alias", "three"]);
    assert_eq!(r.error_code().as_deref(), Some("relay_certificate"));
    // A broken renewal keeps the current certificate.
    std::fs::write(&crt, "not a certificate").unwrap();
    std::thread::sleep(Duration::from_millis(800));
    a.env = vec![("SSL_CERT_FILE".into(), new_file.display().to_string())];
    a.run(&["invite", "--alias", "four"]);
    let log = std::fs::read_to_string(relay.log_path()).unwrap();
    assert!(log.contains("keeping the old one"), "{log}");
}

#[test]
fn a_relay_behind_nginx_terminating_tls_carries_a_whole_conversation() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Proxy CA").unwrap();
    let ca_file = dir.path().join("ca.pem");
    ca.write_pem(&ca_file).unwrap();
    let (crt, key) = ca.issue(dir.path(), "nginx", &["127.0.0.1"]).unwrap();
    let relay = RelayProcess::start(bin(), &[]).unwrap();
    let upstream = relay.url().trim_start_matches("http://").to_owned();
    let nginx = Nginx::start(&crt, &key, &upstream).unwrap();
    let (a, b) = users(dir.path(), Some(&ca_file));
    converse(&a, &b, &nginx.url(), &[]);
}

/// `ferry relay ARGS` refuses to start; what it says.
fn relay_refuses(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin())
        .arg("relay")
        .args(args)
        .arg("--data")
        .arg(dir.path().join("data"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn plain_http_beyond_loopback_needs_an_explicit_flag() {
    let err = relay_refuses(&["--listen", "0.0.0.0:0"]);
    assert!(
        err.contains("refusing to serve plain HTTP") && err.contains("--tls-cert"),
        "{err}"
    );
}

/// On a public address the embedded TURN server must be told the address
/// call media is relayed on; the relay says so instead of guessing.
#[test]
fn turn_on_an_unspecified_address_needs_the_relay_ip() {
    let err = relay_refuses(&["--listen", "0.0.0.0:0", "--plain-http"]);
    assert!(
        err.contains("--turn-relay-ip") && err.contains("--no-turn"),
        "{err}"
    );
}

/// The relay's name, known only inside the proxy's namespace.
const RELAY_NAME: &str = "relay.ferry.test";
/// Where the proxy's outgoing connections come from.
const PROXY_SOURCE: &str = "127.0.0.2";

#[test]
fn through_a_socks_proxy_everything_works_and_nothing_goes_direct() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(bin(), &[]).unwrap();
    // The relay's door: records who connects.
    let door = CutProxy::start(relay.port()).unwrap();
    let mut socks = Socks::start(&[RELAY_NAME], PROXY_SOURCE).unwrap();
    let url = format!(
        "http://{RELAY_NAME}:{}",
        door.url().rsplit(':').next().unwrap()
    );
    let (a, b) = users(dir.path(), None);

    // Without the proxy the name does not even resolve here.
    let lost = User::new(dir.path(), "lost");
    lost.run(&["init", "--relay", &url]);
    assert_eq!(
        lost.try_run(&["invite", "--alias", "x"])
            .error_code()
            .as_deref(),
        Some("relay")
    );
    assert!(door.peers().is_empty());

    // A sets the proxy at init, B with the first accept.
    let proxy = socks.url();
    a.run(&["init", "--relay", &url, "--proxy", &proxy]);
    b.run(&["init", "--relay", &url]);
    pair(&a, &b, &["--proxy", &proxy]);
    let shown = a.run(&["proxy", &proxy]);
    assert_eq!(shown.of_type("proxy")[0]["proxy"], proxy.as_str());

    // Messages, live push, an attachment, canaries.
    a.run(&["send", "Bashir", "through the proxy"]);
    assert_eq!(b.run(&["sync"]).texts(), ["through the proxy"]);
    let live = watched(&b, 1, || {
        a.run(&["send", "Bashir", "live through the proxy"]);
    });
    assert_eq!(live, ["live through the proxy"]);
    let photo = dir.path().join("photo.jpg");
    std::fs::write(&photo, vec![0x5a; 200_000]).unwrap();
    a.run(&["send-file", "Bashir", photo.to_str().unwrap()]);
    let got = b.run(&["sync"]);
    let id = got.of_type("message")[0]["id"].as_str().unwrap().to_owned();
    let saved = dir.path().join("saved.jpg");
    b.run(&["save", "Amina", &id, saved.to_str().unwrap()]);
    assert_eq!(std::fs::read(&saved).unwrap(), vec![0x5a; 200_000]);
    assert_eq!(
        b.run(&["canary", "1h"]).of_type("canary")[0]["deposited"],
        1
    );

    // A duress unlock warns A through the proxy too.
    let mut set = b.cmd(&["duress", "set"]);
    set.env("FERRY_DURESS_PASSPHRASE", "duress words");
    assert_eq!(User::run_cmd(set).code, 0);
    let mut coerced = b.cmd(&["contacts"]);
    coerced.env("FERRY_PASSPHRASE", "duress words");
    let r = User::run_cmd(coerced);
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    // (The duress warning and the fired dead-man switch both arrive.)
    let alerts = a.run(&["sync"]);
    let reasons: Vec<&str> = alerts
        .of_type("alert")
        .iter()
        .map(|a| a["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.contains(&"duress"), "{:?}", alerts.lines);

    // Stow and restore through the proxy: without it the relay's name does
    // not even resolve; with it the account comes back and keeps the proxy.
    let r = a.run(&["recovery", "setup", "--lang", "en"]);
    let phrase = r.of_type("recovery_phrase")[0]["phrase"]
        .as_str()
        .unwrap()
        .to_owned();
    a.run(&["stow"]);
    let mut a2 = User::new(dir.path(), "a2");
    a2.pass = a.pass.clone();
    let mut direct = a2.cmd(&["restore", "--relay", &url]);
    direct.env("FERRY_RECOVERY_PHRASE", &phrase);
    assert_eq!(User::run_cmd(direct).error_code().as_deref(), Some("relay"));
    let mut proxied = a2.cmd(&["restore", "--relay", &url, "--proxy", &proxy]);
    proxied.env("FERRY_RECOVERY_PHRASE", &phrase);
    let r = User::run_cmd(proxied);
    assert_eq!(r.code, 0, "{:?} {}", r.lines, r.stderr);
    let a = a2;
    let contacts = a.run(&["contacts"]);
    assert!(
        contacts
            .of_type("contact")
            .iter()
            .any(|c| c["alias"] == "Bashir"),
        "{:?}",
        contacts.lines
    );

    // The relay saw connections from the proxy only.
    let peers = door.peers();
    assert!(peers.len() >= 10, "{peers:?}");
    assert!(
        peers.iter().all(|p| p.ip().to_string() == PROXY_SOURCE),
        "direct connections reached the relay: {peers:?}"
    );

    // With the proxy down, nothing goes out, and the error says why.
    socks.stop();
    let before = door.peers().len();
    let r = a.try_run(&["invite", "--alias", "Dara"]);
    assert_eq!(r.error_code().as_deref(), Some("proxy_unreachable"));
    let r = a.try_run(&["sync"]);
    assert_eq!(
        r.error_code().as_deref(),
        Some("proxy_unreachable"),
        "{:?} {}",
        r.lines,
        r.stderr
    );
    let message = r.of_type("error")[0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("proxy"), "{message}");
    // The decoy (now B's profile) goes out through the proxy or not at all.
    let mut decoy = b.cmd(&["invite", "--alias", "Eun"]);
    decoy.env("FERRY_PASSPHRASE", "duress words");
    assert_eq!(
        User::run_cmd(decoy).error_code().as_deref(),
        Some("proxy_unreachable")
    );
    assert_eq!(door.peers().len(), before, "nothing reached the relay");

    // `proxy off` goes direct again (here the name then fails to resolve).
    let off = a.run(&["proxy", "off"]);
    assert!(off.of_type("proxy")[0]["proxy"].is_null());
}
