//! Calls: short-lived TURN credentials for holders of a mailbox key, and an
//! embedded TURN server (UDP and TCP on one port, built on `medea-turn`) so
//! the default deployment stays one binary. An operator may instead point
//! clients at coturn (`use-auth-secret` with the same secret): the
//! credentials are the TURN REST API scheme either way.
//!
//! What the TURN server sees of a call: the two allocations' client
//! addresses, when they talk, how long and how much. Never a mailbox, a
//! contact or the content (media is DTLS-SRTP end to end).

mod credentials;
mod guard;

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use medea_turn::transport::{TcpServer, Transport};
use medea_turn::{AuthHandler, Server, ServerConfig, TurnConfig};
use rand_core::OsRng;
use secrecy::SecretString;
use tokio::net::{TcpListener, UdpSocket};
use zeroize::Zeroizing;

use crate::clock::Clock;

pub(crate) use credentials::issue;

/// How clients reach TURN through this relay.
#[derive(Clone)]
pub struct TurnSettings {
    /// The embedded server's address (UDP and TCP, same port; port 0 picks
    /// one). `None`: no embedded server, `urls` name an external one.
    pub listen: Option<SocketAddr>,
    /// The address relayed candidates carry (the public address).
    pub relay_ip: IpAddr,
    /// Ports for allocations (embedded server).
    pub ports: RangeInclusive<u16>,
    /// Shared secret (coturn's `static-auth-secret`).
    pub secret: Zeroizing<Vec<u8>>,
    /// URLs given to clients; empty: `turn:` UDP and TCP URLs of `listen`.
    pub urls: Vec<String>,
    /// How long credentials work. A call cannot outlast its credentials
    /// (every refresh is authenticated).
    pub ttl: Duration,
}

impl std::fmt::Debug for TurnSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnSettings")
            .field("listen", &self.listen)
            .field("relay_ip", &self.relay_ip)
            .field("urls", &self.urls)
            .finish_non_exhaustive()
    }
}

impl TurnSettings {
    /// The embedded server on `listen`, relaying on its address, with a
    /// random secret (credentials from an earlier run stop working).
    pub fn embedded(listen: SocketAddr) -> Self {
        let mut secret = Zeroizing::new(vec![0u8; 32]);
        rand_core::RngCore::fill_bytes(&mut OsRng, &mut secret);
        Self {
            listen: Some(listen),
            relay_ip: listen.ip(),
            ports: 49_152..=65_535,
            secret,
            urls: Vec::new(),
            ttl: Duration::from_secs(2 * 3600),
        }
    }
}

/// TURN as the running relay holds it.
pub(crate) struct Turn {
    pub(crate) settings: TurnSettings,
    /// The URLs handed out.
    pub(crate) urls: Vec<String>,
    server: Option<Server>,
    /// The embedded server's bound address.
    pub(crate) bound: Option<SocketAddr>,
    /// Requests dropped for naming a foreign peer.
    pub(crate) refused_peers: Arc<AtomicU64>,
    /// Credentials handed out.
    pub(crate) issued: AtomicU64,
}

impl Turn {
    /// Starts the embedded server if there is one.
    pub(crate) async fn start(
        settings: TurnSettings,
        clock: Arc<dyn Clock>,
    ) -> std::io::Result<Self> {
        if settings.relay_ip.is_unspecified() {
            return Err(std::io::Error::other(
                "give --turn-relay-ip, the public address call media is relayed on (or --no-turn for a relay without calls)",
            ));
        }
        let refused_peers = Arc::new(AtomicU64::new(0));
        let (server, bound) = match settings.listen {
            Some(listen) => {
                let (udp, tcp) = bind_pair(listen).await?;
                let bound = udp.local_addr()?;
                let guard =
                    |inner: Arc<dyn Transport + Send + Sync>| -> Arc<dyn Transport + Send + Sync> {
                        Arc::new(guard::PeerGuard {
                            inner,
                            relay_ip: settings.relay_ip,
                            ports: settings.ports.clone(),
                            refused: refused_peers.clone(),
                        })
                    };
                let tcp = TcpServer::new(tcp).map_err(|e| std::io::Error::other(e.to_string()))?;
                let config = ServerConfig {
                    connections: vec![guard(Arc::new(udp)), guard(Arc::new(tcp))],
                    turn: Some(TurnConfig {
                        relay_addr_generator: medea_turn::relay::Allocator {
                            relay_address: settings.relay_ip,
                            min_port: *settings.ports.start(),
                            max_port: *settings.ports.end(),
                            max_retries: 20,
                            address: listen.ip().to_string(),
                        },
                        realm: "ferry".to_owned(),
                        auth_handler: Arc::new(RestAuth {
                            secret: settings.secret.clone(),
                            clock,
                        }),
                        channel_bind_lifetime: Duration::from_secs(600),
                        alloc_close_notify: None,
                    }),
                };
                (Some(Server::new(config)), Some(bound))
            }
            None => (None, None),
        };
        let urls = match (&settings.urls[..], bound) {
            ([], Some(b)) => vec![
                format!("turn:{b}?transport=udp"),
                format!("turn:{b}?transport=tcp"),
            ],
            (urls, _) => urls.to_vec(),
        };
        Ok(Self {
            settings,
            urls,
            server,
            bound,
            refused_peers,
            issued: AtomicU64::new(0),
        })
    }

    /// Live allocations on the embedded server (`None` without one).
    pub(crate) async fn allocations(&self) -> Option<usize> {
        let server = self.server.as_ref()?;
        server
            .get_allocations_info(None)
            .await
            .ok()
            .map(|m| m.len())
    }

    /// Counts one handout.
    pub(crate) fn count_issued(&self) {
        self.issued.fetch_add(1, Ordering::Relaxed);
    }

    /// Appends the TURN metrics: counts only, never a username or address.
    pub(crate) async fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(
            out,
            "# HELP ferry_turn_credentials_total TURN credentials handed out.\n# TYPE ferry_turn_credentials_total counter\nferry_turn_credentials_total {}",
            self.issued.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP ferry_turn_refused_peers_total TURN requests dropped for naming a peer that is not one of this server's allocations.\n# TYPE ferry_turn_refused_peers_total counter\nferry_turn_refused_peers_total {}",
            self.refused_peers.load(Ordering::Relaxed)
        );
        if let Some(n) = self.allocations().await {
            let _ = writeln!(
                out,
                "# HELP ferry_turn_allocations Live allocations on the embedded TURN server.\n# TYPE ferry_turn_allocations gauge\nferry_turn_allocations {n}"
            );
        }
    }
}

/// Binds UDP and TCP on the same port (a fresh one when `listen`'s port is
/// 0).
async fn bind_pair(listen: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    if listen.port() != 0 {
        return Ok((
            UdpSocket::bind(listen).await?,
            TcpListener::bind(listen).await?,
        ));
    }
    let mut last = None;
    for _ in 0..20 {
        let udp = UdpSocket::bind(listen).await?;
        let addr = udp.local_addr()?;
        match TcpListener::bind(addr).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port for TURN")))
}

/// Checks REST-scheme usernames against the secret and the relay's clock.
struct RestAuth {
    secret: Zeroizing<Vec<u8>>,
    clock: Arc<dyn Clock>,
}

impl AuthHandler for RestAuth {
    fn auth_handle(
        &self,
        username: &str,
        _realm: &str,
        _src: SocketAddr,
    ) -> Result<SecretString, medea_turn::Error> {
        credentials::check(&self.secret, username, self.clock.now())
            .map(|p| SecretString::from(p.as_str()))
            .ok_or(medea_turn::Error::NoSuchUser)
    }
}
