//! Abuse limits: token buckets per connection and per signing key, and
//! counts of what each limit refused (for /metrics).
//!
//! A bucket holds up to `burst` tokens and refills at `per_sec`; each
//! request (or WebSocket frame) takes one. Buckets live in memory, keyed by
//! the connection's peer address and port or by the public key that signed;
//! idle (full) buckets are forgotten when the table grows, so its size is
//! bounded by the number of recently active connections and keys.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A token-bucket rate: sustained requests per second and burst size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_sec: f64,
    /// Most tokens held (and the first burst allowed).
    pub burst: f64,
}

impl Rate {
    /// A rate of `per_sec` with a burst of `burst`.
    pub const fn new(per_sec: f64, burst: f64) -> Self {
        Self { per_sec, burst }
    }
}

/// How long a refused request waits for its answer. Requests on one
/// connection come one after another, so this slows a flood down instead
/// of letting it keep the relay busy answering refusals.
pub(crate) const REFUSAL_DELAY: std::time::Duration = std::time::Duration::from_millis(250);

/// Forget idle buckets once the table holds this many.
const PRUNE_AT: usize = 100_000;

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key.
pub(crate) struct Buckets<K> {
    rate: Rate,
    table: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    pub(crate) fn new(rate: Rate) -> Self {
        Self {
            rate,
            table: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `key`'s bucket; false (taking nothing) if it
    /// is empty.
    pub(crate) fn take(&self, key: &K, now: Instant) -> bool {
        self.take_each(std::slice::from_ref(key), now)
    }

    /// Takes one token from each key's bucket if every one of them has
    /// one; otherwise takes nothing and returns false.
    pub(crate) fn take_each(&self, keys: &[K], now: Instant) -> bool {
        let Ok(mut table) = self.table.lock() else {
            return true;
        };
        let rate = self.rate;
        if table.len() >= PRUNE_AT {
            table.retain(|_, b| refill(rate, *b, now).tokens < rate.burst);
        }
        let enough = keys.iter().all(|k| {
            table
                .get(k)
                .is_none_or(|b| refill(rate, *b, now).tokens >= 1.0)
        });
        if !enough {
            return false;
        }
        for k in keys {
            let b = table.entry(k.clone()).or_insert(Bucket {
                tokens: rate.burst,
                at: now,
            });
            *b = refill(rate, *b, now);
            b.tokens -= 1.0;
        }
        true
    }

    /// Forgets a key (a closed connection).
    pub(crate) fn forget(&self, key: &K) {
        if let Ok(mut t) = self.table.lock() {
            t.remove(key);
        }
    }
}

fn refill(rate: Rate, b: Bucket, now: Instant) -> Bucket {
    let secs = now.saturating_duration_since(b.at).as_secs_f64();
    Bucket {
        tokens: (b.tokens + secs * rate.per_sec).min(rate.burst),
        at: now,
    }
}

/// Which limit refused something, for /metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// Requests or frames on one connection.
    Connection,
    /// Requests signed by one key.
    Key,
    /// Open WebSocket connections on the relay.
    WsConnections,
    /// Mailboxes subscribed on one WebSocket connection.
    Subscriptions,
    /// Canaries waiting for one mailbox.
    Canaries,
    /// Blob bytes reserved by one key.
    BlobBudget,
}

impl Limit {
    const ALL: [Limit; 6] = [
        Self::Connection,
        Self::Key,
        Self::WsConnections,
        Self::Subscriptions,
        Self::Canaries,
        Self::BlobBudget,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Connection => "connection",
            Self::Key => "key",
            Self::WsConnections => "ws_connections",
            Self::Subscriptions => "subscriptions",
            Self::Canaries => "canaries",
            Self::BlobBudget => "blob_budget",
        }
    }
}

/// Refusals by limit.
#[derive(Default)]
pub(crate) struct Refusals([AtomicU64; 6]);

impl Refusals {
    pub(crate) fn count(&self, limit: Limit) {
        if let Some(c) = self.0.get(limit as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        out.push_str(
            "# HELP ferry_limited_total Requests, frames or deposits refused by an abuse limit.\n",
        );
        out.push_str("# TYPE ferry_limited_total counter\n");
        for l in Limit::ALL {
            let n = self
                .0
                .get(l as usize)
                .map_or(0, |c| c.load(Ordering::Relaxed));
            let _ = writeln!(out, "ferry_limited_total{{limit=\"{}\"}} {n}", l.label());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let b = Buckets::new(Rate::new(10.0, 5.0));
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(b.take(&1u8, t0));
        }
        assert!(!b.take(&1u8, t0), "burst spent");
        assert!(b.take(&2u8, t0), "another key has its own bucket");
        let later = t0 + Duration::from_millis(100);
        assert!(b.take(&1u8, later), "one token back after 100 ms");
        assert!(!b.take(&1u8, later));
        let much_later = t0 + Duration::from_secs(60);
        for _ in 0..5 {
            assert!(b.take(&1u8, much_later));
        }
        assert!(!b.take(&1u8, much_later), "never more than the burst");
    }

    #[test]
    fn several_keys_are_charged_all_or_none() {
        let b = Buckets::new(Rate::new(0.001, 2.0));
        let t0 = Instant::now();
        assert!(
            b.take(&1u8, t0) && b.take(&1u8, t0),
            "key 1 spends its burst"
        );
        assert!(!b.take_each(&[2u8, 1u8], t0), "key 1 has nothing left");
        assert!(b.take_each(&[2u8, 3u8], t0));
        assert!(b.take_each(&[2u8], t0), "key 2 was charged once, not twice");
        assert!(!b.take_each(&[2u8], t0));
    }

    #[test]
    fn idle_buckets_are_forgotten_when_the_table_is_full() {
        let b = Buckets::new(Rate::new(1000.0, 1.0));
        let t0 = Instant::now();
        for k in 0..PRUNE_AT as u32 {
            b.take(&k, t0);
        }
        let later = t0 + Duration::from_secs(1);
        assert!(b.take(&u32::MAX, later));
        assert!(b.table.lock().unwrap().len() < 10);
    }
}
