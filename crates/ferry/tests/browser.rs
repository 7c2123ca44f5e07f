//! The app in a real browser: Debian's chromium driven by playwright-core
//! (scripts in `tests/browser/*.mjs`), against real `ferry app` processes
//! and a real relay. What they need is installed when missing
//! (`tests/browser/setup.sh`), so `cargo test` runs them on a new machine.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use ferry_testkit::RelayProcess;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ferry"))
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Installs chromium, fonts and the npm packages once per test run.
fn setup() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let r = DONE.get_or_init(|| {
        let out = Command::new("sh")
            .arg(dir().join("setup.sh"))
            .output()
            .map_err(|e| format!("cannot run setup.sh: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    });
    if let Err(e) = r {
        panic!("browser test setup failed: {e}");
    }
}

/// Runs one script against a fresh relay; fails with its output.
fn run(script: &str, extra_env: &[(&str, &str)]) {
    run_with(script, &[], extra_env);
}

/// [`run`] with options for the relay; its TURN address is in
/// `RELAY_TURN`.
fn run_with(script: &str, relay_args: &[&str], extra_env: &[(&str, &str)]) {
    // Two browsers per script already fill two cores: one script at a time.
    static ONE: Mutex<()> = Mutex::new(());
    let _one = ONE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    setup();
    let relay = RelayProcess::start(bin(), relay_args).expect("relay starts");
    let turn = relay.turn_addr().map(|a| a.to_string()).unwrap_or_default();
    let work = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new("node")
        .arg(dir().join(script))
        .current_dir(dir())
        .env("FERRY_BIN", bin())
        .env("RELAY_URL", relay.url())
        .env("RELAY_TURN", &turn)
        .env("WORK", work.path())
        .envs(extra_env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node runs");
    let started = Instant::now();
    let limit = Duration::from_secs(600);
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    print!("{stdout}");
    assert!(
        out.status.success(),
        "{script} failed after {:?}:\n{stdout}\n{stderr}\nrelay log: {}",
        started.elapsed(),
        std::fs::read_to_string(relay.log_path()).unwrap_or_default()
    );
}

#[test]
fn two_people_pair_and_chat_in_two_browsers_in_korean_and_english() {
    run("chat.mjs", &[]);
}

#[test]
fn a_group_made_in_the_app_carries_messages_with_names_and_a_member_leaves() {
    run("group.mjs", &[]);
}

#[test]
fn a_warning_marks_the_contact_duress_opens_the_decoy_and_panic_needs_a_hold() {
    run("seizure.mjs", &[]);
}

#[test]
fn the_app_stows_the_account_and_restores_it_from_the_phrase() {
    run("stow.mjs", &[]);
}

/// Also writes the Korean screenshots with FERRY_SCREENSHOTS=DIR (how
/// `docs/screenshots` was made).
#[test]
fn every_screen_passes_axe_in_korean_and_english_at_phone_and_desktop_width() {
    run("screens.mjs", &[]);
}

#[test]
fn a_persistent_browser_profile_keeps_no_message_alias_link_or_passphrase() {
    run("traces.mjs", &[]);
}

#[test]
fn a_photo_and_a_video_play_inline_on_the_other_side_and_go_with_their_message() {
    run("media.mjs", &[]);
}

#[test]
fn a_voice_note_recorded_in_the_browser_plays_on_the_other_side() {
    run("voice.mjs", &[]);
}

/// Voice and video calls through the relay's embedded TURN server, on an
/// address of its own (127.0.0.2) so no browser address can hide in one.
#[test]
fn two_browsers_call_each_other_through_turn_and_a_compromised_contact_cannot() {
    run_with("call.mjs", &["--turn-listen", "127.0.0.2:0"], &[]);
}

/// The same calls through Debian's coturn (`use-auth-secret`, the secret
/// the relay hands credentials for) instead of the embedded server: the
/// relay runs no TURN of its own. coturn is told to relay only to its own
/// relayed address, as the embedded server does.
#[test]
fn two_browsers_call_each_other_through_coturn() {
    if Command::new("turnserver")
        .arg("--version")
        .output()
        .is_err()
    {
        setup();
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut random = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut random);
    let secret: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let secret_file = dir.path().join("turn-secret");
    std::fs::write(&secret_file, &secret).expect("secret");
    let port = free_port_on_turn_ip();
    let conf = dir.path().join("turnserver.conf");
    std::fs::write(
        &conf,
        format!(
            "listening-ip=127.0.0.2\nlistening-port={port}\nrelay-ip=127.0.0.2\n\
             min-port=49152\nmax-port=65535\nuse-auth-secret\nstatic-auth-secret={secret}\n\
             realm=ferry\nno-tls\nno-dtls\nno-cli\nno-tcp-relay\nallow-loopback-peers\n\
             denied-peer-ip=0.0.0.0-255.255.255.255\n\
             denied-peer-ip=::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\nallowed-peer-ip=127.0.0.2\n\
             pidfile={}\nlog-file=stdout\nsimple-log\nverbose\n",
            dir.path().join("turn.pid").display()
        ),
    )
    .expect("coturn config");
    let log = std::fs::File::create(dir.path().join("coturn.log")).expect("log");
    let mut coturn = Command::new("turnserver")
        .args(["-c"])
        .arg(&conf)
        .stdout(log)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("coturn (turnserver) runs; .ci/run installs it");
    ferry_testkit::net::wait_listening(
        format!("127.0.0.2:{port}").parse().expect("addr"),
        Duration::from_secs(10),
    )
    .expect("coturn listens");
    let urls = format!("turn:127.0.0.2:{port}?transport=udp,turn:127.0.0.2:{port}?transport=tcp");
    let secret_arg = secret_file.to_string_lossy().into_owned();
    let turn = format!("127.0.0.2:{port}");
    run_with(
        "call.mjs",
        &[
            "--no-turn",
            "--turn-urls",
            &urls,
            "--turn-relay-ip",
            "127.0.0.2",
            "--turn-secret-file",
            &secret_arg,
        ],
        &[("RELAY_TURN", &turn), ("CALL_VOICE_VIDEO_ONLY", "1")],
    );
    let _ = coturn.kill();
    let _ = coturn.wait();
    let log = std::fs::read_to_string(dir.path().join("coturn.log")).unwrap_or_default();
    // coturn granted allocations and deleted them again (hang-up sends a
    // zero-lifetime refresh).
    let granted = log.matches("ALLOCATE processed, success").count();
    let released = log.matches("REFRESH processed, success").count();
    assert!(
        granted >= 4,
        "coturn allocated for both sides of two calls:\n{log}"
    );
    assert!(
        released >= 1,
        "allocations were released at hang-up:\n{log}"
    );
}

/// A call through a seeded impairment proxy in front of the embedded TURN
/// server (UDP), with `loss` each way and up to 30 ms of jitter.
fn lossy_call(loss: f64, min_packets: &str) {
    let turn = free_port_on_turn_ip();
    let upstream: std::net::SocketAddr = format!("127.0.0.2:{turn}").parse().expect("addr");
    let proxy = ferry_testkit::impair::UdpImpair::start(
        "127.0.0.3:0".parse().expect("addr"),
        upstream,
        ferry_testkit::impair::Impairment {
            loss,
            jitter: Duration::from_millis(30),
            seed: 20_261_128,
        },
    )
    .expect("impairment proxy");
    let url = format!("turn:{}?transport=udp", proxy.addr());
    let listen = upstream.to_string();
    run_with(
        "call-network.mjs",
        &["--turn-listen", &listen, "--turn-urls", &url],
        &[
            ("CALL_SECS", "20"),
            ("EXPECT_RELAY", "udp"),
            ("MIN_PACKETS", min_packets),
        ],
    );
    assert!(proxy.dropped() > 0, "the proxy dropped datagrams");
}

#[test]
fn a_call_stays_up_for_20_seconds_with_10_percent_loss_and_jitter() {
    // 20 s of Opus is 1,000 packets; two lossy legs pass about 81%.
    lossy_call(0.10, "500");
}

#[test]
fn a_call_stays_up_for_20_seconds_with_20_percent_loss_and_jitter() {
    // About 64% pass two legs at 20% each (Chromium adds redundancy
    // under loss, so the count varies; staying up is the point).
    lossy_call(0.20, "300");
}

/// UDP to the TURN server is dropped (a network that blocks it): the call
/// goes through TURN over TCP.
#[test]
fn with_udp_blocked_a_call_runs_over_turn_tcp() {
    let turn = free_port_on_turn_ip();
    let upstream: std::net::SocketAddr = format!("127.0.0.2:{turn}").parse().expect("addr");
    let blocked = ferry_testkit::impair::UdpImpair::start(
        "127.0.0.3:0".parse().expect("addr"),
        upstream,
        ferry_testkit::impair::Impairment {
            loss: 1.0,
            jitter: Duration::ZERO,
            seed: 1,
        },
    )
    .expect("blocking proxy");
    let urls = format!(
        "turn:{}?transport=udp,turn:{upstream}?transport=tcp",
        blocked.addr()
    );
    let listen = upstream.to_string();
    run_with(
        "call-network.mjs",
        &["--turn-listen", &listen, "--turn-urls", &urls],
        &[
            ("CALL_SECS", "10"),
            ("EXPECT_RELAY", "tcp"),
            ("MIN_PACKETS", "250"),
        ],
    );
    assert_eq!(blocked.forwarded(), 0, "no UDP got through");
}

/// A port for a TURN server on 127.0.0.2 (UDP and TCP).
fn free_port_on_turn_ip() -> u16 {
    ferry_testkit::net::free_udp_tcp_port([127, 0, 0, 2].into()).expect("a free port")
}
