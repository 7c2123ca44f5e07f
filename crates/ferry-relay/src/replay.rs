//! Freshness and replay checks for signed requests.
//!
//! A request is fresh when its timestamp is within `skew` of the relay clock
//! and not older than the moment this relay process started (so the nonces
//! forgotten at a restart cannot be replayed). A fresh request is accepted
//! once: its `(timestamp, nonce)` is remembered until the timestamp leaves
//! the window. Memory is bounded by `max_entries`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use ferry_proto::auth::{NONCE_LEN, Nonce};

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplayError {
    /// Timestamp outside the window.
    Stale,
    /// Seen before.
    Replayed,
    /// The cache is full.
    Busy,
}

pub(crate) struct ReplayGuard {
    seen: Mutex<Seen>,
    skew: u64,
    floor: u64,
    max_entries: usize,
}

#[derive(Default)]
struct Seen {
    by_second: BTreeMap<u64, HashSet<[u8; NONCE_LEN]>>,
    count: usize,
}

impl ReplayGuard {
    pub(crate) fn new(skew: u64, started_at: u64, max_entries: usize) -> Self {
        Self {
            seen: Mutex::new(Seen::default()),
            skew,
            floor: started_at,
            max_entries,
        }
    }

    /// Cheap check before signatures are verified.
    pub(crate) fn check_time(&self, ts: u64, now: u64) -> Result<(), ReplayError> {
        let oldest = now.saturating_sub(self.skew).max(self.floor);
        if ts < oldest || ts > now.saturating_add(self.skew) {
            return Err(ReplayError::Stale);
        }
        Ok(())
    }

    /// Records a verified request; refuses it if seen before.
    pub(crate) fn remember(&self, ts: u64, nonce: &Nonce, now: u64) -> Result<(), ReplayError> {
        self.check_time(ts, now)?;
        let mut seen = self.seen.lock().map_err(|_| ReplayError::Busy)?;
        let cutoff = now.saturating_sub(self.skew);
        while let Some(entry) = seen.by_second.first_entry() {
            if *entry.key() >= cutoff {
                break;
            }
            let n = entry.remove().len();
            seen.count = seen.count.saturating_sub(n);
        }
        if seen.count >= self.max_entries {
            return Err(ReplayError::Busy);
        }
        if seen.by_second.entry(ts).or_default().insert(nonce.0) {
            seen.count += 1;
            Ok(())
        } else {
            Err(ReplayError::Replayed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_floor_and_replay() {
        let g = ReplayGuard::new(60, 1000, 10);
        assert_eq!(
            g.check_time(999, 1000),
            Err(ReplayError::Stale),
            "before start"
        );
        assert_eq!(g.check_time(1061, 1000), Err(ReplayError::Stale), "future");
        assert_eq!(g.check_time(1000, 1000), Ok(()));
        assert_eq!(g.check_time(1100, 1200), Err(ReplayError::Stale), "too old");
        let n = Nonce([1; 16]);
        assert_eq!(g.remember(1000, &n, 1000), Ok(()));
        assert_eq!(g.remember(1000, &n, 1001), Err(ReplayError::Replayed));
        assert_eq!(
            g.remember(1001, &n, 1001),
            Ok(()),
            "same nonce, other second"
        );
        // Once the window has passed, the timestamp itself is refused.
        assert_eq!(g.remember(1000, &n, 1100), Err(ReplayError::Stale));
    }

    #[test]
    fn bounded_and_pruned() {
        let g = ReplayGuard::new(10, 0, 3);
        for i in 0..3u8 {
            assert_eq!(g.remember(100, &Nonce([i; 16]), 100), Ok(()));
        }
        assert_eq!(
            g.remember(100, &Nonce([9; 16]), 100),
            Err(ReplayError::Busy)
        );
        // Old entries are dropped when their second leaves the window.
        assert_eq!(g.remember(200, &Nonce([9; 16]), 200), Ok(()));
    }
}
