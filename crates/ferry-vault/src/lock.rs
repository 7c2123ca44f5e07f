//! One process at a time per profile.
//!
//! A session keeps its profile's state in memory for as long as it runs, so
//! a second process writing the same vault would fork that state. The lock
//! is an advisory `flock` on the profile directory itself (no extra file:
//! every profile directory holds the same files), taken before the
//! passphrase is tried and released when the last handle closes (or the
//! process dies). Panic wipe does not take it: it must work while a
//! session is open.

use std::fs::{File, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::VaultError;

/// How long opening a profile waits for another process to close it.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

/// The held lock; released on drop.
#[derive(Debug)]
pub(crate) struct DirLock {
    _dir: File,
}

impl DirLock {
    /// Takes the lock on `dir`, waiting up to [`LOCK_WAIT`].
    pub(crate) fn acquire(dir: &Path) -> Result<Self, VaultError> {
        let f = File::open(dir)?;
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            match f.try_lock() {
                Ok(()) => return Ok(Self { _dir: f }),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => return Err(VaultError::InUse),
                Err(TryLockError::Error(e)) => return Err(e.into()),
            }
        }
    }
}
