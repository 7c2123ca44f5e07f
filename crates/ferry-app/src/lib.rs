//! Ferry's app: the client as a long-lived local service on loopback, with
//! a graphical interface opened in a browser, in Korean and English.
//!
//! One process serves one profile. The profile's session runs on a thread
//! of its own (`actor`); the HTTP routes (`routes`) render server-side
//! pages (`pages`, maud) in the reader's language (`i18n`, Fluent) and
//! pass every request through the local security guard (`guard`) first.
//! The page learns that something changed through a server-sent event
//! stream and asks for what it shows again; it keeps nothing itself.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ferry_client::LockLimits;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

mod actor;
mod guard;
mod i18n;
mod page_lock;
mod pages;
mod routes;
mod state;
mod upload;

/// Why the app could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The address is not a loopback address.
    #[error("the app listens on loopback only (127.0.0.1 or ::1), not {0}")]
    NotLoopback(SocketAddr),
    /// The socket could not be opened or served.
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
}

/// How to run the app.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The profile's directory.
    pub home: PathBuf,
    /// Where to listen (loopback; port 0 picks one).
    pub listen: SocketAddr,
    /// When the session locks itself.
    pub limits: LockLimits,
}

/// A bound app, ready to serve.
pub struct App {
    listener: TcpListener,
    state: Arc<state::AppState>,
    links: mpsc::UnboundedReceiver<String>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("App(..)")
    }
}

impl App {
    /// Binds the listening socket (loopback only).
    pub async fn bind(config: AppConfig) -> Result<Self, AppError> {
        if !config.listen.ip().is_loopback() {
            return Err(AppError::NotLoopback(config.listen));
        }
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let (tx, links) = mpsc::unbounded_channel();
        let guard = guard::Guard::new(addr.to_string());
        let state = Arc::new(state::AppState::new(guard, config.home, config.limits, tx));
        state.announce_link();
        Ok(Self {
            listener,
            state,
            links,
        })
    }

    /// The address the app serves (`http://127.0.0.1:PORT`).
    pub fn origin(&self) -> &str {
        self.state.guard.origin()
    }

    /// Every launch link, first the one to open now, then a fresh one
    /// each time a link has been used (a used link is dead).
    pub fn take_links(&mut self) -> mpsc::UnboundedReceiver<String> {
        let (_, empty) = mpsc::unbounded_channel();
        std::mem::replace(&mut self.links, empty)
    }

    /// Serves until `stop` resolves; the session is locked on the way out.
    pub async fn serve(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let state = Arc::clone(&self.state);
        let app = routes::router()
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(&state),
                routes::page_gate,
            ))
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(&state),
                guard::middleware,
            ))
            .layer(axum::extract::DefaultBodyLimit::max(256 * 1024))
            .with_state(Arc::clone(&state));
        let server = axum::serve(self.listener, app);
        // Event streams never end by themselves, so the server is not
        // drained: it stops with `stop`, and the session locks.
        tokio::select! {
            r = server => r?,
            () = stop => {}
        }
        // Both slots evened out, keys dropped, before the process ends.
        let _ = state.lock_and_wait().await;
        Ok(())
    }
}
