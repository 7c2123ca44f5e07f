//! A TCP proxy on loopback that counts the bytes it forwards and can cut
//! every connection at chosen points: a flaky link between a client and a
//! relay, for resumption tests.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Which way bytes flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to server.
    Up,
    /// Server to client.
    Down,
}

#[derive(Default)]
struct State {
    up: AtomicU64,
    down: AtomicU64,
    cuts: AtomicU64,
    /// Byte counts (per direction) at which every connection is cut.
    planned: Mutex<Vec<(Direction, u64)>>,
    conns: Mutex<Vec<TcpStream>>,
    /// The address of every client that connected, in order.
    peers: Mutex<Vec<std::net::SocketAddr>>,
}

impl State {
    fn cut_all(&self) {
        // Counted first: a client that sees its connection cut may report
        // (and a test read the count) before the last socket is shut.
        self.cuts.fetch_add(1, Ordering::SeqCst);
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        for c in conns.drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    fn forwarded(&self, dir: Direction, n: u64) {
        let total = match dir {
            Direction::Up => self.up.fetch_add(n, Ordering::SeqCst) + n,
            Direction::Down => self.down.fetch_add(n, Ordering::SeqCst) + n,
        };
        let due = {
            let mut planned = self.planned.lock().unwrap_or_else(|e| e.into_inner());
            let before = planned.len();
            planned.retain(|(d, at)| !(*d == dir && total >= *at));
            planned.len() != before
        };
        if due {
            self.cut_all();
        }
    }
}

/// The proxy; it runs until the process ends.
pub struct CutProxy {
    port: u16,
    state: Arc<State>,
}

impl CutProxy {
    /// Listens on a free loopback port and forwards to `target_port`.
    pub fn start(target_port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(State::default());
        let st = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if let Ok(peer) = client.peer_addr() {
                    st.peers
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(peer);
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                {
                    let mut conns = st.conns.lock().unwrap_or_else(|e| e.into_inner());
                    for s in [&client, &server] {
                        if let Ok(c) = s.try_clone() {
                            conns.push(c);
                        }
                    }
                }
                for (from, to, dir) in [
                    (client.try_clone(), server.try_clone(), Direction::Up),
                    (server.try_clone(), client.try_clone(), Direction::Down),
                ] {
                    let (Ok(mut from), Ok(mut to)) = (from, to) else {
                        continue;
                    };
                    let st = st.clone();
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                            st.forwarded(dir, n as u64);
                        }
                        let _ = to.shutdown(Shutdown::Write);
                    });
                }
            }
        });
        Ok(Self { port, state })
    }

    /// The proxy's URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Bytes forwarded so far in `dir`.
    pub fn forwarded(&self, dir: Direction) -> u64 {
        match dir {
            Direction::Up => self.state.up.load(Ordering::SeqCst),
            Direction::Down => self.state.down.load(Ordering::SeqCst),
        }
    }

    /// Cuts every connection once `dir` has forwarded `at` bytes in all.
    pub fn cut_at(&self, dir: Direction, at: u64) {
        self.state
            .planned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((dir, at));
    }

    /// The address of every client that connected so far.
    pub fn peers(&self) -> Vec<std::net::SocketAddr> {
        self.state
            .peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many times connections were cut.
    pub fn cuts(&self) -> u64 {
        self.state.cuts.load(Ordering::SeqCst)
    }
}
