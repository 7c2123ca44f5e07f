//! Wiring: store, state, router, listener, expiry sweeper, shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::{Clock, SystemClock};
use axum::serve::ListenerExt as _;

use crate::config::RelayConfig;
use crate::limit::Buckets;
use crate::metrics::Metrics;
use crate::push::Hub;
use crate::records::{RECORD_CACHE_ENTRIES, RecordCache};
use crate::replay::ReplayGuard;
use crate::store::{MailboxStore, SqliteStore, SqliteStoreOptions, StoreError};
use crate::tls::{Certs, TlsListener};

pub(crate) struct AppState {
    pub(crate) store: Arc<dyn MailboxStore>,
    pub(crate) blobs: Arc<dyn crate::blob::BlobStore>,
    pub(crate) config: RelayConfig,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) replay: ReplayGuard,
    pub(crate) hub: Hub,
    pub(crate) metrics: Metrics,
    pub(crate) records: RecordCache,
    /// Token buckets by connection (peer address and port).
    pub(crate) per_connection: Buckets<SocketAddr>,
    /// Token buckets by signing key.
    pub(crate) per_key: Buckets<[u8; 32]>,
    /// TURN credentials and the embedded TURN server.
    pub(crate) turn: Option<crate::turn::Turn>,
}

pub(crate) type Shared = Arc<AppState>;

/// Why the relay could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The data directory could not be created or used.
    #[error("data directory: {0}")]
    DataDir(#[source] std::io::Error),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The listen address could not be bound.
    #[error("cannot listen: {0}")]
    Bind(#[source] std::io::Error),
    /// The server failed while running.
    #[error("server: {0}")]
    Serve(#[source] std::io::Error),
    /// The TURN server could not start.
    #[error("cannot start TURN: {0}")]
    Turn(#[source] std::io::Error),
    /// The TLS certificate or key could not be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// Plain HTTP beyond loopback was not asked for explicitly.
    #[error(
        "refusing to serve plain HTTP on {0}: give --tls-cert and --tls-key, or --plain-http if a TLS proxy on another host sits in front"
    )]
    PlainHttp(SocketAddr),
}

/// A relay ready to be started.
pub struct Relay {
    config: RelayConfig,
    store: Arc<dyn MailboxStore>,
    blobs: Arc<dyn crate::blob::BlobStore>,
    clock: Arc<dyn Clock>,
}

impl Relay {
    /// A relay with the embedded SQLite store in `config.data_dir`.
    pub fn embedded(config: RelayConfig) -> Result<Self, RelayError> {
        create_private_dir(&config.data_dir).map_err(RelayError::DataDir)?;
        let store = SqliteStore::open(
            &config.data_dir,
            SqliteStoreOptions {
                fsync: config.fsync,
                ..SqliteStoreOptions::default()
            },
        )?;
        let blobs = crate::blob::FsBlobStore::open(&config.data_dir.join("blobs"))
            .map_err(|e| RelayError::DataDir(std::io::Error::other(e.to_string())))?;
        Ok(Self::with_stores(config, Arc::new(store), Arc::new(blobs)))
    }

    /// A relay over any store backends.
    pub fn with_stores(
        config: RelayConfig,
        store: Arc<dyn MailboxStore>,
        blobs: Arc<dyn crate::blob::BlobStore>,
    ) -> Self {
        Self {
            config,
            store,
            blobs,
            clock: Arc::new(SystemClock),
        }
    }

    /// Replaces the clock (tests that need time to pass).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Binds the listen address and starts serving in the background.
    pub async fn start(self) -> Result<RunningRelay, RelayError> {
        let listen = self.config.listen;
        if self.config.tls.is_none() && !listen.ip().is_loopback() && !self.config.plain_http {
            return Err(RelayError::PlainHttp(listen));
        }
        let certs = match &self.config.tls {
            Some(files) => Some(Arc::new(
                Certs::load(files.clone()).map_err(RelayError::Tls)?,
            )),
            None => None,
        };
        let listener = TcpListener::bind(self.config.listen)
            .await
            .map_err(RelayError::Bind)?;
        let local_addr = listener.local_addr().map_err(RelayError::Bind)?;
        let turn = match self.config.turn.clone() {
            Some(t) => Some(
                crate::turn::Turn::start(t, self.clock.clone())
                    .await
                    .map_err(RelayError::Turn)?,
            ),
            None => None,
        };
        let turn_addr = turn.as_ref().and_then(|t| t.bound);
        let now = self.clock.now();
        let state: Shared = Arc::new(AppState {
            replay: ReplayGuard::new(
                self.config.max_clock_skew.as_secs(),
                now,
                self.config.replay_cache_entries,
            ),
            store: self.store,
            blobs: self.blobs,
            clock: self.clock,
            hub: Hub::default(),
            metrics: Metrics::default(),
            records: RecordCache::new(RECORD_CACHE_ENTRIES),
            per_connection: Buckets::new(self.config.rate_per_connection),
            per_key: Buckets::new(self.config.rate_per_key),
            config: self.config,
            turn,
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let sweeper = tokio::spawn(sweep(state.clone(), stop_tx.subscribe()));
        let app = crate::router::router(state.clone());
        let tls = certs.is_some();
        let server = match certs {
            Some(certs) => {
                let config = certs.server_config().map_err(RelayError::Tls)?;
                let watcher = tokio::spawn(crate::tls::watch_files(
                    certs,
                    state.config.tls_reload_interval,
                    stop_tx.subscribe(),
                ));
                let listener = TlsListener::new(listener, config).map_err(RelayError::Bind)?;
                tokio::spawn(async move {
                    let r = serve(listener.tap_io(|_| {}), app, stop_rx).await;
                    watcher.abort();
                    sweeper.abort();
                    r
                })
            }
            None => tokio::spawn(async move {
                // Small frames must leave at once: no Nagle delay on pushes.
                let listener = listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                let r = serve(listener, app, stop_rx).await;
                sweeper.abort();
                r
            }),
        };
        tracing::info!(tls, "relay listening");
        Ok(RunningRelay {
            tls,
            local_addr,
            turn_addr,
            stop: stop_tx,
            server,
        })
    }
}

/// Serves `app` on `listener` until `stop`, then finishes in-flight
/// requests.
async fn serve<L>(
    listener: axum::serve::TapIo<L, impl FnMut(&mut L::Io) + Send + 'static>,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
) -> Result<(), RelayError>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stop| *stop).await;
        })
        .await
        .map_err(RelayError::Serve)
}

async fn sweep(s: Shared, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(
        s.config
            .sweep_interval
            .max(std::time::Duration::from_millis(100)),
    );
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        match s.store.expire(s.clock.now()).await {
            Ok(n) => {
                s.metrics.messages_expired.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
        }
        if let Err(e) = crate::service::release_canaries(&s, None).await {
            tracing::warn!(code = e.code.as_str(), "canary release failed");
        }
        if let Err(e) = s.blobs.expire(s.clock.now()).await {
            tracing::warn!(error = %e, "blob expiry failed");
        }
    }
}

fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// A relay serving in the background.
pub struct RunningRelay {
    tls: bool,
    local_addr: SocketAddr,
    turn_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    server: JoinHandle<Result<(), RelayError>>,
}

impl RunningRelay {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The embedded TURN server's address (UDP and TCP), if it runs.
    pub fn turn_addr(&self) -> Option<SocketAddr> {
        self.turn_addr
    }

    /// Base URL, `http://ADDR` (`https://ADDR` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// Stops accepting, finishes in-flight requests and returns.
    pub async fn shutdown(self) -> Result<(), RelayError> {
        let _ = self.stop.send(true);
        self.server
            .await
            .map_err(|e| RelayError::Serve(std::io::Error::other(e.to_string())))?
    }

    /// Waits until the server stops on its own (or fails).
    pub async fn wait(self) -> Result<(), RelayError> {
        self.server
            .await
            .map_err(|e| RelayError::Serve(std::io::Error::other(e.to_string())))?
    }

    /// Asks the server to stop; [`RunningRelay::wait`] then returns.
    pub fn stop_handle(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }
}
