//! How a client reaches relays: directly or through a SOCKS5 proxy that
//! resolves names itself (Tor's `socks5h://127.0.0.1:9050`), over TLS for
//! `https://` and `wss://`.
//!
//! Every connection a client opens (the JSON API, tus transfers, canaries
//! and the live WebSocket) is built from one [`Network`], and a proxy, once
//! set, is never bypassed: when it is down the call fails with
//! [`crate::ClientError::Proxy`], nothing goes out directly, and no name is
//! looked up locally. Proxy settings in the environment (`ALL_PROXY`,
//! `HTTPS_PROXY`) are ignored: only the profile's own setting counts, so
//! what a session does never depends on the shell it was started from.

mod proxy;
mod stream;
mod tls;

pub use proxy::{ProxyError, ProxyUrl};
pub(crate) use stream::{IoStream, connect_stream};
pub(crate) use tls::client_config;

/// How to reach relays.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Network {
    proxy: Option<ProxyUrl>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.proxy {
            Some(p) => write!(f, "Network(via {p:?})"),
            None => f.write_str("Network(direct)"),
        }
    }
}

impl Network {
    /// Straight to the relay.
    pub fn direct() -> Self {
        Self { proxy: None }
    }

    /// Through a proxy.
    pub fn via(proxy: ProxyUrl) -> Self {
        Self { proxy: Some(proxy) }
    }

    /// The proxy, if any.
    pub fn proxy(&self) -> Option<&ProxyUrl> {
        self.proxy.as_ref()
    }
}

/// The TLS problem somewhere in an error's chain, if there is one.
fn tls_problem(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return Some(t.to_string());
        }
        // An I/O error's `source` skips the error it wraps: descend into
        // the wrapped error itself (rustls's sits inside one or two).
        cur = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// An I/O error from a TLS connection: a certificate problem is said as
/// such, anything else is a broken connection.
pub(crate) fn classify_io(e: &std::io::Error) -> crate::ClientError {
    match tls_problem(e) {
        Some(t) => crate::ClientError::Certificate(t),
        None => crate::ClientError::Transport(e.to_string()),
    }
}

/// A failed HTTP request, told apart: TLS trouble, a proxy that does not
/// answer, or an unreachable relay. The URL (which names mailboxes) is
/// left out.
pub(crate) async fn classify_http(network: &Network, e: reqwest::Error) -> crate::ClientError {
    if let Some(t) = tls_problem(&e) {
        return crate::ClientError::Certificate(t);
    }
    if let Some(p) = network.proxy() {
        if e.is_connect() && !p.accepts().await {
            return crate::ClientError::Proxy(format!("{}: connection refused", p.address()));
        }
        if e.is_connect() {
            return crate::ClientError::Transport(format!(
                "relay unreachable through the proxy: {}",
                e.without_url()
            ));
        }
    }
    crate::ClientError::Transport(e.without_url().to_string())
}
