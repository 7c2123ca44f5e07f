//! Test support shared by Ferry's integration tests: runs the real `ferry`
//! binary as a relay process on loopback, kills it with SIGKILL, restarts it
//! on the same data directory, and keeps its log for inspection.
//!
//! It must never be a dependency of anything but tests and benchmarks.

pub mod impair;
pub mod net;
pub mod proxy;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Copies a directory tree (files and folders only).
pub fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), &target)?;
        }
    }
    Ok(())
}

/// A relay running as a separate process.
pub struct RelayProcess {
    bin: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    url: String,
    turn: Option<SocketAddr>,
    dir: tempfile::TempDir,
}

impl RelayProcess {
    /// Starts `bin relay --listen 127.0.0.1:0 --data <tmp>/data` plus `extra`
    /// arguments, with debug logging to `<tmp>/relay.log`.
    pub fn start(bin: &Path, extra: &[&str]) -> std::io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut p = Self {
            bin: bin.to_owned(),
            args: extra.iter().map(|s| (*s).to_owned()).collect(),
            child: None,
            turn: None,
            url: String::new(),
            dir,
        };
        p.spawn()?;
        Ok(p)
    }

    /// Starts a relay on a fixed `listen` address over a copy of the data
    /// directory `seed` (e.g. one made by an earlier release).
    pub fn start_from(
        bin: &Path,
        listen: &str,
        seed: &Path,
        extra: &[&str],
    ) -> std::io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut p = Self {
            bin: bin.to_owned(),
            args: extra.iter().map(|s| (*s).to_owned()).collect(),
            child: None,
            turn: None,
            url: format!("http://{listen}"),
            dir,
        };
        copy_dir(seed, &p.data_dir())?;
        p.spawn()?;
        Ok(p)
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let listen = self
            .url
            .strip_prefix("http://")
            .or_else(|| self.url.strip_prefix("https://"))
            .map_or_else(|| "127.0.0.1:0".to_owned(), str::to_owned);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let mut child = Command::new(&self.bin)
            .arg("relay")
            .arg("--listen")
            .arg(&listen)
            .arg("--data")
            .arg(self.data_dir())
            // Relays restarted on their port must not fight over TURN's
            // default 3478 with each other: a free port unless a test
            // names one.
            .args(["--turn-listen", "127.0.0.1:0"])
            .args(&self.args)
            .env("FERRY_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
            .ok_or_else(|| {
                let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
                std::io::Error::other(format!("relay did not start: {line:?}\n{log}"))
            })?;
        self.url = url.to_owned();
        self.turn = line
            .split(", TURN on ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|a| a.parse().ok());
        self.child = Some(child);
        Ok(())
    }

    /// The embedded TURN server's address (UDP and TCP), if it runs.
    pub fn turn_addr(&self) -> Option<SocketAddr> {
        self.turn
    }

    /// Base URL of the running relay.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The relay's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The relay's TCP port.
    pub fn port(&self) -> u16 {
        self.url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }

    /// The relay's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The relay's log file (stderr, debug level).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("relay.log")
    }

    /// Kills the process with SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) -> std::io::Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    /// Starts the relay again on the same data directory and address.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.kill9()?;
        self.spawn()
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}
