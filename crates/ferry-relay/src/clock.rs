//! The relay's notion of time, injectable so tests can move it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of Unix time in seconds.
pub trait Clock: Send + Sync + 'static {
    /// Seconds since the Unix epoch.
    fn now(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

/// The system clock shifted by an adjustable offset, for tests that need
/// time to pass (expiry, dead-man switches) without waiting.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset: AtomicU64,
}

impl OffsetClock {
    /// Moves the clock forward by `secs`.
    pub fn advance(&self, secs: u64) {
        self.offset.fetch_add(secs, Ordering::Relaxed);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> u64 {
        SystemClock
            .now()
            .saturating_add(self.offset.load(Ordering::Relaxed))
    }
}

/// The system clock plus an offset in seconds read from a file at every
/// call (a missing or unreadable file counts as 0). Only for tests that run
/// the relay as a process and need days to pass (`--clock-offset-file`).
#[derive(Debug)]
pub struct FileOffsetClock {
    path: std::path::PathBuf,
}

impl FileOffsetClock {
    /// A clock offset by the number in `path`.
    pub fn new(path: std::path::PathBuf) -> Self {
        Self { path }
    }
}

impl Clock for FileOffsetClock {
    fn now(&self) -> u64 {
        let offset = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
            .unwrap_or(0);
        SystemClock.now().saturating_add(offset)
    }
}
