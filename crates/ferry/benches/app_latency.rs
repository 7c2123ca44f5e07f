//! The app's latency as a person sees it: "send" pressed in one browser →
//! the message visible in the other, p50/p90/p99 over 200 messages, two
//! `ferry app` processes and a relay on loopback, driven in Debian's
//! chromium (`tests/browser/bench.mjs`).
//!
//! `cargo bench -p ferry --bench app_latency -- [--messages 200]`
//! (needs what `tests/browser/setup.sh` installs).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::process::Command;

use ferry_testkit::RelayProcess;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let messages = args
        .iter()
        .position(|a| a == "--messages")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "200".into());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let status = Command::new("sh")
        .arg(dir.join("setup.sh"))
        .status()
        .unwrap();
    assert!(status.success(), "setup.sh failed");
    let bin = Path::new(env!("CARGO_BIN_EXE_ferry"));
    let relay = RelayProcess::start(bin, &[]).unwrap();
    let work = tempfile::tempdir().unwrap();
    let status = Command::new("node")
        .arg(dir.join("bench.mjs"))
        .current_dir(&dir)
        .env("FERRY_BIN", bin)
        .env("RELAY_URL", relay.url())
        .env("WORK", work.path())
        .env("MESSAGES", messages)
        .status()
        .unwrap();
    assert!(status.success(), "bench.mjs failed");
}
