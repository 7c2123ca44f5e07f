//! Call set-up as a person sees it: "Call" pressed in one browser → the
//! call connected (ICE and DTLS up, through the relay's embedded TURN
//! server on 127.0.0.2), with the other side accepting as soon as it rings;
//! p50/p90 over 20 calls, two `ferry app` processes and a relay on
//! loopback, in Debian's chromium (`tests/browser/call-bench.mjs`).
//!
//! `cargo bench -p ferry --bench call_setup -- [--calls 20]`
//! (needs what `tests/browser/setup.sh` installs).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::process::Command;

use ferry_testkit::RelayProcess;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let calls = args
        .iter()
        .position(|a| a == "--calls")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "20".into());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let status = Command::new("sh")
        .arg(dir.join("setup.sh"))
        .status()
        .unwrap();
    assert!(status.success(), "setup.sh failed");
    let bin = Path::new(env!("CARGO_BIN_EXE_ferry"));
    let relay = RelayProcess::start(bin, &["--turn-listen", "127.0.0.2:0"]).unwrap();
    let work = tempfile::tempdir().unwrap();
    let status = Command::new("node")
        .arg(dir.join("call-bench.mjs"))
        .current_dir(&dir)
        .env("FERRY_BIN", bin)
        .env("RELAY_URL", relay.url())
        .env("WORK", work.path())
        .env("CALLS", calls)
        .status()
        .unwrap();
    assert!(status.success(), "call-bench.mjs failed");
}
