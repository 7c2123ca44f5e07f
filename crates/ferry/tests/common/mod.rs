//! Helpers shared by the CLI end-to-end tests: run the real binary against
//! a real relay with profiles on disk.

#![allow(dead_code, unreachable_pub)]

pub mod image;
pub mod stow;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ferry_testkit::RelayProcess;
use serde_json::Value;

/// A secured mailbox made straight through the relay API.
pub struct Box_ {
    pub id: ferry_proto::MailboxId,
    pub recipient: ferry_proto::MailboxKey,
    pub sender: ferry_proto::MailboxKey,
}

/// Creates a mailbox and sets its sender key.
pub async fn mailbox(c: &ferry_client::RelayClient) -> Box_ {
    use rand_core::OsRng;
    let b = Box_ {
        id: ferry_proto::MailboxId::random(&mut OsRng),
        recipient: ferry_proto::MailboxKey::generate(&mut OsRng),
        sender: ferry_proto::MailboxKey::generate(&mut OsRng),
    };
    c.create_mailbox(b.id, &b.recipient).await.unwrap();
    c.set_sender(b.id, &b.recipient, b.sender.public())
        .await
        .unwrap();
    b
}

pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ferry"))
}

pub struct User {
    pub home: PathBuf,
    pub pass: String,
    /// Extra environment for every command (e.g. SSL_CERT_FILE).
    pub env: Vec<(String, String)>,
}

pub struct Run {
    pub code: i32,
    pub lines: Vec<Value>,
    pub stderr: String,
}

impl Run {
    pub fn of_type(&self, t: &str) -> Vec<&Value> {
        self.lines.iter().filter(|l| l["type"] == t).collect()
    }

    pub fn texts(&self) -> Vec<String> {
        self.of_type("message")
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_owned())
            .collect()
    }

    pub fn error_code(&self) -> Option<String> {
        self.of_type("error")
            .first()
            .map(|e| e["code"].as_str().unwrap().to_owned())
    }
}

impl User {
    pub fn new(dir: &Path, name: &str) -> Self {
        Self {
            home: dir.join(name),
            pass: format!("passphrase of {name} 🔑"),
            env: Vec::new(),
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("--home").arg(&self.home).arg("--json").args(args);
        c.env("FERRY_PASSPHRASE", &self.pass)
            .env_remove("FERRY_FAULT_EXIT_BEFORE_ACK");
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    pub fn run_cmd(mut c: Command) -> Run {
        let Output {
            status,
            stdout,
            stderr,
        } = c.output().unwrap();
        let lines = String::from_utf8(stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
            .collect();
        Run {
            code: status.code().unwrap_or(-1),
            lines,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    pub fn try_run(&self, args: &[&str]) -> Run {
        Self::run_cmd(self.cmd(args))
    }

    /// Runs `args` with the clock `shift`ed (faketime, e.g. `+25h`).
    #[allow(dead_code)]
    pub fn run_later(&self, shift: &str, args: &[&str]) -> Run {
        let mut c = Command::new("faketime");
        c.args(["-f", shift])
            .arg(bin())
            .arg("--home")
            .arg(&self.home)
            .arg("--json")
            .args(args)
            .env("FERRY_PASSPHRASE", &self.pass)
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            .env_remove("FERRY_FAULT_EXIT_BEFORE_ACK")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        Self::run_cmd(c)
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let r = self.try_run(args);
        assert_eq!(
            r.code, 0,
            "ferry {args:?} failed: {:?} {}",
            r.lines, r.stderr
        );
        r
    }

    pub fn invite(&self, alias: &str) -> String {
        let r = self.run(&["invite", "--alias", alias]);
        r.of_type("invite")[0]["link"].as_str().unwrap().to_owned()
    }
}

/// A relay and three profiles: A invited B and C, all handshakes done.
pub struct World {
    pub relay: RelayProcess,
    pub dir: tempfile::TempDir,
    pub a: User,
    pub b: User,
    pub c: User,
}

pub fn world() -> World {
    world_on(&[])
}

pub fn world_on(relay_args: &[&str]) -> World {
    let relay = RelayProcess::start(bin(), relay_args).unwrap();
    let url = relay.url().to_owned();
    world_at(relay, &url)
}

/// Three profiles whose relay URL is `url` (the relay itself, or a proxy in
/// front of it).
pub fn world_at(relay: RelayProcess, url: &str) -> World {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        User::new(dir.path(), "a"),
        User::new(dir.path(), "b"),
        User::new(dir.path(), "c"),
    );
    for u in [&a, &b, &c] {
        u.run(&["init", "--relay", url]);
    }
    let to_b = a.invite("Bashir");
    let to_c = a.invite("Chen");
    b.run(&["accept", &to_b, "--alias", "Amina"]);
    c.run(&["accept", &to_c, "--alias", "Amina"]);
    let r = a.run(&["sync"]);
    assert_eq!(r.of_type("established").len(), 2, "{:?}", r.lines);
    assert_eq!(b.run(&["sync"]).of_type("established").len(), 1);
    assert_eq!(c.run(&["sync"]).of_type("established").len(), 1);
    World {
        relay,
        dir,
        a,
        b,
        c,
    }
}

pub fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
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
