//! Relay settings, with defaults that work with no flags at all.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use zeroize::Zeroizing;

/// The most a stowed account record may ever be: requests are read whole
/// into memory, so this bounds what one can cost.
pub const MAX_STOW_SIZE: u64 = 64 * 1024 * 1024;

/// Everything an operator can tune.
#[derive(Clone)]
pub struct RelayConfig {
    /// Address to listen on (loopback by default).
    pub listen: SocketAddr,
    /// Directory holding the embedded store.
    pub data_dir: PathBuf,
    /// How long an unfetched message is kept.
    pub message_ttl: Duration,
    /// How often expired messages are removed.
    pub sweep_interval: Duration,
    /// Most waiting messages per mailbox.
    pub max_messages_per_mailbox: u64,
    /// Most waiting payload bytes per mailbox.
    pub max_bytes_per_mailbox: u64,
    /// Most mailboxes in one sync or subscribe.
    pub max_mailboxes_per_request: usize,
    /// Largest JSON request body.
    pub max_json_body: usize,
    /// Most messages per mailbox in one fetch or sync answer.
    pub fetch_limit: usize,
    /// Most payload bytes in one fetch or sync answer.
    pub fetch_max_bytes: usize,
    /// Accepted difference between a request's timestamp and the relay clock.
    pub max_clock_skew: Duration,
    /// Most remembered nonces; beyond this requests are refused as busy.
    pub replay_cache_entries: usize,
    /// If set, creating a mailbox needs this token (a private relay).
    pub access_token: Option<Zeroizing<String>>,
    /// fsync at every group commit and before answering an upload PATCH
    /// (power-loss durability).
    pub fsync: bool,
    /// Largest attachment blob.
    pub max_blob_size: u64,
    /// Declared bytes of all live blobs together (uploads beyond are refused
    /// with `blob_storage_full` until blobs expire or are deleted).
    pub max_blob_storage: u64,
    /// How long a blob is kept.
    pub blob_ttl: Duration,
    /// Serve HTTPS and WSS with this certificate and key (reloaded when
    /// the files change).
    pub tls: Option<crate::tls::TlsFiles>,
    /// How long the id of a deleted mailbox stays taken (longer than any
    /// invite lives, so a leaked link cannot re-create its mailbox).
    pub tombstone_ttl: Duration,
    /// Requests (and WebSocket frames) per connection.
    pub rate_per_connection: crate::limit::Rate,
    /// Requests signed by one key.
    pub rate_per_key: crate::limit::Rate,
    /// Mailboxes subscribed on one WebSocket connection, in all.
    pub max_subscriptions_per_connection: usize,
    /// Open WebSocket connections on the whole relay.
    pub max_ws_connections: usize,
    /// Canaries waiting for one mailbox.
    pub max_canaries_per_mailbox: u64,
    /// Blob bytes one key may have reserved at a time (declared sizes of
    /// its live blobs).
    pub blob_budget_per_key: u64,
    /// How often the TLS files are checked for a change.
    pub tls_reload_interval: Duration,
    /// Serve plain HTTP on an address beyond loopback (behind a
    /// TLS-terminating proxy on another host). Off by default: without TLS
    /// the relay listens on loopback only.
    pub plain_http: bool,
    /// Largest stowed account record (at most [`MAX_STOW_SIZE`]).
    pub max_stow_size: u64,
    /// Wrong PINs (access tokens) in a row that delete a stowed account.
    pub stow_pin_tries: u32,
    /// TURN for calls: the embedded server and/or the credentials handed
    /// out (`None`: this relay carries no calls).
    pub turn: Option<crate::turn::TurnSettings>,
}

impl std::fmt::Debug for RelayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayConfig")
            .field("listen", &self.listen)
            .field("message_ttl", &self.message_ttl)
            .field("access_token", &self.access_token.as_ref().map(|_| ".."))
            .field("tls", &self.tls)
            .field("turn", &self.turn)
            .finish_non_exhaustive()
    }
}

impl RelayConfig {
    /// Defaults: loopback port 7070, data under the user's data directory.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            data_dir,
            message_ttl: Duration::from_secs(21 * 24 * 3600),
            sweep_interval: Duration::from_secs(60),
            max_messages_per_mailbox: 10_000,
            max_bytes_per_mailbox: 64 * 1024 * 1024,
            max_mailboxes_per_request: 1000,
            max_json_body: 1024 * 1024,
            fetch_limit: 256,
            fetch_max_bytes: 4 * 1024 * 1024,
            max_clock_skew: Duration::from_secs(120),
            replay_cache_entries: 4_000_000,
            access_token: None,
            fsync: true,
            // A 2 GiB file once padded and sealed: 2 GiB plus a 16-byte tag
            // per 64 KiB segment (checked against the client's layout in
            // ferry-client's tests).
            max_blob_size: 2 * 1024 * 1024 * 1024 + 32_768 * 16,
            max_blob_storage: 20 * 1024 * 1024 * 1024,
            blob_ttl: Duration::from_secs(48 * 3600),
            tombstone_ttl: Duration::from_secs(30 * 24 * 3600),
            rate_per_connection: crate::limit::Rate::new(100.0, 1000.0),
            rate_per_key: crate::limit::Rate::new(20.0, 400.0),
            max_ws_connections: 10_000,
            max_subscriptions_per_connection: 1000,
            max_canaries_per_mailbox: 4,
            max_stow_size: MAX_STOW_SIZE,
            stow_pin_tries: 10,
            blob_budget_per_key: 4 * 1024 * 1024 * 1024 + 1024 * 1024,
            tls: None,
            tls_reload_interval: Duration::from_secs(30),
            plain_http: false,
            turn: None,
        }
    }
}
