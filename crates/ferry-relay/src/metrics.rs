//! Prometheus metrics: counts and latencies by route template and status.
//! Nothing here may carry an identifier, an address or a size.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

const BOUNDS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default, Clone)]
struct Histogram {
    buckets: [u64; BOUNDS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (b, bound) in self.buckets.iter_mut().zip(BOUNDS) {
            if secs <= bound {
                *b += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (b, bound) in self.buckets.iter().zip(BOUNDS) {
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {b}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {}", self.count);
        let plain = labels.trim_end_matches(',');
        let set = if plain.is_empty() {
            String::new()
        } else {
            format!("{{{plain}}}")
        };
        let _ = writeln!(out, "{name}_sum{set} {}", self.sum);
        let _ = writeln!(out, "{name}_count{set} {}", self.count);
    }
}

#[derive(Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<(String, &'static str, u16), u64>>,
    latency: Mutex<BTreeMap<(String, &'static str), Histogram>>,
    commit: Mutex<Histogram>,
    pub(crate) messages_stored: AtomicU64,
    pub(crate) messages_pushed: AtomicU64,
    pub(crate) messages_expired: AtomicU64,
    pub(crate) ws_connections: AtomicI64,
    pub(crate) ws_frames: AtomicU64,
    /// Refusals by abuse limit.
    pub(crate) limited: crate::limit::Refusals,
}

impl Metrics {
    pub(crate) fn observe_request(
        &self,
        route: &str,
        method: &'static str,
        status: u16,
        took: Duration,
    ) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((route.to_owned(), method, status)).or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            l.entry((route.to_owned(), method))
                .or_default()
                .observe(took.as_secs_f64());
        }
    }

    pub(crate) fn observe_store_write(&self, took: Duration) {
        if let Ok(mut h) = self.commit.lock() {
            h.observe(took.as_secs_f64());
        }
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP ferry_http_requests_total HTTP requests by route template, method and status.\n");
        out.push_str("# TYPE ferry_http_requests_total counter\n");
        if let Ok(r) = self.requests.lock() {
            for ((route, method, status), n) in r.iter() {
                let _ = writeln!(
                    out,
                    "ferry_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str(
            "# HELP ferry_http_request_duration_seconds Time to answer, by route template.\n",
        );
        out.push_str("# TYPE ferry_http_request_duration_seconds histogram\n");
        if let Ok(l) = self.latency.lock() {
            for ((route, method), h) in l.iter() {
                let labels = format!("route=\"{route}\",method=\"{method}\",");
                h.render(&mut out, "ferry_http_request_duration_seconds", &labels);
            }
        }
        out.push_str(
            "# HELP ferry_store_write_seconds Time from queuing a write to its durable commit.\n",
        );
        out.push_str("# TYPE ferry_store_write_seconds histogram\n");
        if let Ok(h) = self.commit.lock() {
            h.render(&mut out, "ferry_store_write_seconds", "");
        }
        let counters = [
            (
                "ferry_messages_stored_total",
                "Messages durably stored.",
                &self.messages_stored,
            ),
            (
                "ferry_messages_pushed_total",
                "Messages pushed over WebSockets.",
                &self.messages_pushed,
            ),
            (
                "ferry_messages_expired_total",
                "Messages removed unfetched at expiry.",
                &self.messages_expired,
            ),
            (
                "ferry_ws_frames_total",
                "WebSocket frames received.",
                &self.ws_frames,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP ferry_ws_connections Open WebSocket connections.\n# TYPE ferry_ws_connections gauge\nferry_ws_connections {}",
            self.ws_connections.load(Ordering::Relaxed)
        );
        self.limited.render(&mut out);
        out
    }
}
