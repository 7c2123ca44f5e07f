//! A seeded UDP impairment proxy for call tests: it sits between clients
//! and a UDP server (a TURN server) and drops and delays datagrams in both
//! directions, the same way for the same seed. Loss 1.0 is a network that
//! blocks UDP.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the link misbehaves.
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    /// Share of datagrams dropped, each way (0.0 to 1.0).
    pub loss: f64,
    /// Each datagram is held back up to this long (uniformly), so some
    /// arrive out of order.
    pub jitter: Duration,
    /// Seed of the drop and delay choices.
    pub seed: u64,
}

/// A datagram waiting for its time: (due, order, bytes, socket, to).
type Due = (Instant, u64, Vec<u8>, Arc<UdpSocket>, Option<SocketAddr>);

struct Queue {
    heap: Mutex<BinaryHeap<Reverse<DueOrd>>>,
    ready: Condvar,
}

struct DueOrd(Due);

impl PartialEq for DueOrd {
    fn eq(&self, o: &Self) -> bool {
        (self.0.0, self.0.1) == (o.0.0, o.0.1)
    }
}
impl Eq for DueOrd {}
impl PartialOrd for DueOrd {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for DueOrd {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.0.0, self.0.1).cmp(&(o.0.0, o.0.1))
    }
}

struct Shared {
    imp: Impairment,
    rng: Mutex<u64>,
    queue: Queue,
    order: AtomicU64,
    stop: AtomicBool,
    dropped: AtomicU64,
    forwarded: AtomicU64,
}

impl Shared {
    /// xorshift64*: a test's dice, not cryptography.
    fn next(&self) -> f64 {
        let mut s = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        let v = s.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (v >> 11) as f64 / (1u64 << 53) as f64
    }

    fn schedule(&self, bytes: Vec<u8>, via: &Arc<UdpSocket>, to: Option<SocketAddr>) {
        if self.next() < self.imp.loss {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let delay = self.imp.jitter.mul_f64(self.next());
        let due = Instant::now() + delay;
        let order = self.order.fetch_add(1, Ordering::Relaxed);
        let mut heap = self
            .queue
            .heap
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        heap.push(Reverse(DueOrd((due, order, bytes, via.clone(), to))));
        self.queue.ready.notify_one();
    }
}

/// A running impairment proxy.
pub struct UdpImpair {
    addr: SocketAddr,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl UdpImpair {
    /// Listens on `listen` and relays to `upstream` with `imp`.
    pub fn start(
        listen: SocketAddr,
        upstream: SocketAddr,
        imp: Impairment,
    ) -> std::io::Result<Self> {
        let front = Arc::new(UdpSocket::bind(listen)?);
        front.set_read_timeout(Some(Duration::from_millis(100)))?;
        let addr = front.local_addr()?;
        let shared = Arc::new(Shared {
            imp,
            rng: Mutex::new(imp.seed | 1),
            queue: Queue {
                heap: Mutex::new(BinaryHeap::new()),
                ready: Condvar::new(),
            },
            order: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
        });
        let sender = {
            let shared = shared.clone();
            std::thread::spawn(move || send_loop(&shared))
        };
        let receiver = {
            let shared = shared.clone();
            std::thread::spawn(move || front_loop(&shared, &front, upstream, listen))
        };
        Ok(Self {
            addr,
            shared,
            threads: vec![sender, receiver],
        })
    }

    /// Where clients send.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Datagrams dropped so far (both ways).
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Datagrams passed on so far (both ways).
    pub fn forwarded(&self) -> u64 {
        self.shared.forwarded.load(Ordering::Relaxed)
    }
}

impl Drop for UdpImpair {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.queue.ready.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn send_loop(shared: &Shared) {
    let mut heap = shared
        .queue
        .heap
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    while !shared.stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        let wait = match heap.peek() {
            Some(Reverse(DueOrd(d))) if d.0 <= now => None,
            Some(Reverse(DueOrd(d))) => Some(d.0 - now),
            None => Some(Duration::from_millis(100)),
        };
        if let Some(w) = wait {
            heap = shared
                .queue
                .ready
                .wait_timeout(heap, w)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            continue;
        }
        if let Some(Reverse(DueOrd((_, _, bytes, via, to)))) = heap.pop() {
            let sent = match to {
                Some(to) => via.send_to(&bytes, to),
                None => via.send(&bytes),
            };
            if sent.is_ok() {
                shared.forwarded.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Reads from clients; each client gets its own upstream socket (so the
/// server sees one address per client) with a thread reading the answers.
fn front_loop(
    shared: &Arc<Shared>,
    front: &Arc<UdpSocket>,
    upstream: SocketAddr,
    listen: SocketAddr,
) {
    let mut clients: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut backs = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while !shared.stop.load(Ordering::SeqCst) {
        let Ok((n, from)) = front.recv_from(&mut buf) else {
            continue;
        };
        let up = match clients.get(&from) {
            Some(s) => s.clone(),
            None => {
                let Ok(s) = UdpSocket::bind(SocketAddr::new(listen.ip(), 0)) else {
                    continue;
                };
                if s.connect(upstream).is_err()
                    || s.set_read_timeout(Some(Duration::from_millis(100)))
                        .is_err()
                {
                    continue;
                }
                let s = Arc::new(s);
                clients.insert(from, s.clone());
                let (shared, front, back) = (shared.clone(), front.clone(), s.clone());
                backs.push(std::thread::spawn(move || {
                    let mut buf = vec![0u8; 65_536];
                    while !shared.stop.load(Ordering::SeqCst) {
                        if let Ok(n) = back.recv(&mut buf) {
                            shared.schedule(buf[..n].to_vec(), &front, Some(from));
                        }
                    }
                }));
                s
            }
        };
        shared.schedule(buf[..n].to_vec(), &up, None);
    }
    for b in backs {
        let _ = b.join();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn echo() -> (UdpSocket, SocketAddr) {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let a = s.local_addr().unwrap();
        (s, a)
    }

    #[test]
    fn drops_about_the_share_asked_for_and_relays_the_rest_both_ways() {
        let (server, server_addr) = echo();
        std::thread::spawn(move || {
            let mut b = [0u8; 64];
            while let Ok((n, from)) = server.recv_from(&mut b) {
                let _ = server.send_to(&b[..n], from);
            }
        });
        let p = UdpImpair::start(
            "127.0.0.1:0".parse().unwrap(),
            server_addr,
            Impairment {
                loss: 0.2,
                jitter: Duration::from_millis(5),
                seed: 7,
            },
        )
        .unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        // Paced, so that no socket buffer on the way drops anything the
        // proxy did not.
        for i in 0..500u32 {
            c.send_to(&i.to_le_bytes(), p.addr()).unwrap();
            std::thread::sleep(Duration::from_micros(200));
        }
        let mut got = 0;
        let mut b = [0u8; 64];
        while c.recv(&mut b).is_ok() {
            got += 1;
        }
        // Two lossy legs: about 0.8 * 0.8 of 500 come back.
        assert!((250..390).contains(&got), "{got} of 500 came back");
        assert!(p.dropped() > 100, "{}", p.dropped());
        // What the proxy itself decided: about a fifth dropped.
        let share = p.dropped() as f64 / (p.dropped() + p.forwarded()) as f64;
        assert!((0.15..0.25).contains(&share), "dropped {share:.3}");
    }
}
