//! The relay against its own OpenAPI document: schemathesis (a third-party
//! API fuzzer) sends schema-valid and schema-violating requests to a real
//! relay and checks every answer against the document. The exceptions, each
//! a protocol rule JSON Schema cannot express, are in
//! `crates/ferry-relay/schemathesis.toml`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::path::Path;
use std::process::Command;

use common::bin;
use ferry_testkit::RelayProcess;

#[test]
fn the_relay_answers_as_its_openapi_document_says() {
    let relay = RelayProcess::start(bin(), &[]).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ferry-relay");
    // schemathesis keeps its example database in the working directory.
    let work = tempfile::tempdir().unwrap();
    let out = Command::new("schemathesis")
        .arg("--no-color")
        .arg("--config-file")
        .arg(root.join("schemathesis.toml"))
        .arg("run")
        .arg(root.join("openapi.json"))
        .args(["--url", relay.url(), "--seed", "1"])
        .current_dir(work.path())
        .output()
        .expect("schemathesis is not installed (.ci/run installs it with pip)");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("passed"), "{report}");
}
