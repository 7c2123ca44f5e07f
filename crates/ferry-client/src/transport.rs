//! One transport for every call to a relay: the JSON API, tus uploads and
//! downloads, and the live WebSocket all go through it.
//!
//! Written once here: request signing at the relay's time, the clock offset
//! learned from `stale_timestamp` answers (shared by every client of the
//! same relay), decoding of error answers with bounded bodies, which errors
//! are worth retrying, and the retry policy. [`crate::relay`],
//! [`crate::transfer`] and [`crate::live`] build on it and not on each other.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry_proto::api::{ErrorBody, ws_signing_path};
use ferry_proto::auth::{HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, RequestAuth};
use ferry_proto::{ErrorCode, MailboxKey, b64};
use rand_core::OsRng;
use reqwest::{Method, RequestBuilder, Response, StatusCode};

use crate::net::Network;

/// Why a relay call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The relay refused the request with a stable error code.
    #[error("relay refused the request: {code:?} (HTTP {status})")]
    Relay {
        /// HTTP status.
        status: u16,
        /// Stable error code.
        code: ErrorCode,
    },
    /// The relay could not be reached or the connection broke.
    #[error("relay unreachable: {0}")]
    Transport(String),
    /// The relay's TLS certificate was not accepted (expired, for another
    /// name, or from a CA this device does not trust: a private CA is added
    /// with `SSL_CERT_FILE`).
    #[error("relay certificate not accepted: {0}")]
    Certificate(String),
    /// The profile's proxy does not answer; nothing was sent directly.
    #[error("proxy unreachable: {0}")]
    Proxy(String),
    /// The relay answered something this client does not understand.
    #[error("unexpected answer from relay: {0}")]
    Protocol(String),
    /// A stowed account's PIN was wrong.
    #[error("wrong PIN; {left} tries left before the stowed account is deleted")]
    WrongPin {
        /// Tries left.
        left: u32,
    },
    /// A group has moved on: a commit was made against another epoch
    /// (`commit_conflict`) or a message sent in an ended one
    /// (`stale_epoch`). Read the log, then send again.
    #[error("the group has moved on to epoch {epoch}")]
    GroupMovedOn {
        /// `commit_conflict` or `stale_epoch`.
        code: ErrorCode,
        /// The group's epoch now.
        epoch: u64,
    },
}

impl ClientError {
    /// The relay's error code, if the relay refused the request.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Relay { code, .. } => Some(*code),
            Self::WrongPin { .. } => Some(ErrorCode::WrongPin),
            Self::GroupMovedOn { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether trying again cannot help: the relay refused for good. A
    /// broken connection, an answer this client did not understand (a proxy
    /// in the way), a busy or failing relay, a wrong clock, a full mailbox
    /// or an upload offset to re-read are worth another try.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Relay { code, .. } => !matches!(
                code,
                ErrorCode::Unavailable
                    | ErrorCode::Internal
                    | ErrorCode::StaleTimestamp
                    | ErrorCode::MailboxFull
                    | ErrorCode::OffsetMismatch
                    | ErrorCode::RateLimited
                    | ErrorCode::TooManyConnections
                    // A newer relay's code: keep what was queued and retry.
                    | ErrorCode::Unknown
            ),
            // Sending the same again cannot help: the log must be read first.
            Self::WrongPin { .. } | Self::GroupMovedOn { .. } => true,
            Self::Transport(_) | Self::Protocol(_) | Self::Certificate(_) | Self::Proxy(_) => false,
        }
    }
}

/// A reqwest error without its URL (URLs contain mailbox ids).
pub(crate) fn transport_err(e: reqwest::Error) -> ClientError {
    ClientError::Transport(e.without_url().to_string())
}

/// Largest API answer accepted from a relay (a full sync answer is ~6 MiB).
pub(crate) const MAX_RESPONSE: usize = 16 * 1024 * 1024;
/// Largest error body read.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// A JSON API call that takes longer than this failed.
const API_TIMEOUT: Duration = Duration::from_secs(60);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Reads a body, refusing one larger than `max`.
pub(crate) async fn read_limited(mut resp: Response, max: usize) -> Result<Vec<u8>, ClientError> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(ClientError::Protocol("relay answer too large".into()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport_err)? {
        if body.len() + chunk.len() > max {
            return Err(ClientError::Protocol("relay answer too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Turns a non-success answer into an error: its stable code, read from
/// at most 64 KiB of body (a bare 404 means "not found").
pub(crate) async fn refusal(resp: Response) -> ClientError {
    let status = resp.status();
    let body = read_limited(resp, MAX_ERROR_BODY).await.unwrap_or_default();
    match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(b) => ClientError::Relay {
            status: status.as_u16(),
            code: b.code,
        },
        Err(_) if status == StatusCode::NOT_FOUND => ClientError::Relay {
            status: status.as_u16(),
            code: ErrorCode::NotFound,
        },
        Err(_) => ClientError::Protocol(format!("HTTP {status} without error code")),
    }
}

/// The connection to one relay.
pub struct Transport {
    http: reqwest::Client,
    network: Network,
    base: String,
    /// Relay clock minus local clock, learned from `stale_timestamp` answers.
    offset: AtomicI64,
    access_token: Option<String>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Transport(..)")
    }
}

impl Transport {
    /// A direct transport to the relay at `base` (`http://` or `https://`).
    pub fn new(base: &str) -> Result<Self, ClientError> {
        Self::with_network(base, &Network::direct())
    }

    /// A transport to the relay at `base` that goes out as `network` says.
    /// No overall timeout for transfers (a part may take long on a slow
    /// link), but a connection that stalls for 30 s fails (60 s to connect
    /// through a proxy, which Tor may need).
    pub fn with_network(base: &str, network: &Network) -> Result<Self, ClientError> {
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Protocol(
                "relay URL must start with http:// or https://".into(),
            ));
        }
        let tls = crate::net::client_config()?;
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .no_proxy()
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .read_timeout(Duration::from_secs(30));
        builder = match network.proxy() {
            Some(p) => builder
                .proxy(p.reqwest().map_err(transport_err)?)
                .connect_timeout(Duration::from_secs(60)),
            None => builder.connect_timeout(Duration::from_secs(10)),
        };
        let http = builder.build().map_err(transport_err)?;
        Ok(Self {
            http,
            network: network.clone(),
            base: base.trim_end_matches('/').to_owned(),
            offset: AtomicI64::new(0),
            access_token: None,
        })
    }

    /// A separate transport to the same relay (same connection pool and
    /// learned clock offset at this moment).
    pub fn duplicate(&self) -> Self {
        Self {
            http: self.http.clone(),
            network: self.network.clone(),
            base: self.base.clone(),
            offset: AtomicI64::new(self.clock_offset()),
            access_token: self.access_token.clone(),
        }
    }

    /// Sends the operator's access token where the relay asks for it
    /// (creating mailboxes and blobs on a private relay).
    pub fn with_access_token(mut self, token: Option<String>) -> Self {
        self.access_token = token;
        self
    }

    /// The relay's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// How this transport reaches its relay.
    pub fn network(&self) -> &Network {
        &self.network
    }

    pub(crate) fn access_token(&self) -> Option<&str> {
        self.access_token.as_deref()
    }

    /// The current time as the relay sees it (local clock plus offset).
    pub fn now(&self) -> u64 {
        unix_now().saturating_add_signed(self.offset.load(Ordering::Relaxed))
    }

    /// The relay-minus-local clock offset in seconds.
    pub fn clock_offset(&self) -> i64 {
        self.offset.load(Ordering::Relaxed)
    }

    /// Sets the relay-minus-local clock offset (normally learned).
    pub fn set_clock_offset(&self, secs: i64) {
        self.offset.store(secs, Ordering::Relaxed);
    }

    fn learn_time(&self, server_time: u64) {
        let off =
            i64::try_from(server_time).unwrap_or(i64::MAX) - i64::try_from(unix_now()).unwrap_or(0);
        self.offset.store(off, Ordering::Relaxed);
    }

    /// A request to `path` (unsigned).
    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{}", self.base, path))
    }

    /// Sends an unsigned request; a non-success answer is an error.
    pub(crate) async fn send(&self, req: RequestBuilder) -> Result<Response, ClientError> {
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Err(crate::net::classify_http(&self.network, e).await),
        };
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(refusal(resp).await)
        }
    }

    /// Sends a request signed by `keys` over method, path and `body` at the
    /// relay's time; `extra` adds the other headers. On `stale_timestamp`
    /// the relay's time is learned and the request signed and sent again,
    /// once. A non-success answer is an error.
    pub(crate) async fn send_signed(
        &self,
        method: Method,
        path: &str,
        keys: &[&MailboxKey],
        body: Vec<u8>,
        extra: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, ClientError> {
        let mut retried = false;
        loop {
            let auth =
                RequestAuth::sign(keys, method.as_str(), path, &body, self.now(), &mut OsRng);
            let req = self
                .request(method.clone(), path)
                .header(HEADER_TIMESTAMP, auth.timestamp_value())
                .header(HEADER_NONCE, auth.nonce_value())
                .header(HEADER_SIGNATURE, auth.signatures_value())
                .body(body.clone());
            let resp = match extra(req).send().await {
                Ok(r) => r,
                Err(e) => return Err(crate::net::classify_http(&self.network, e).await),
            };
            let status = resp.status();
            if status.is_success() {
                return Ok(resp);
            }
            let bytes = read_limited(resp, MAX_ERROR_BODY).await?;
            let err: ErrorBody = serde_json::from_slice(&bytes)
                .map_err(|_| ClientError::Protocol(format!("HTTP {status} without error code")))?;
            if let (ErrorCode::StaleTimestamp, false, Some(t)) =
                (err.code, retried, err.server_time)
            {
                self.learn_time(t);
                retried = true;
                continue;
            }
            if let (ErrorCode::WrongPin, Some(left)) = (err.code, err.left) {
                return Err(ClientError::WrongPin { left });
            }
            if let (ErrorCode::StaleEpoch | ErrorCode::CommitConflict, Some(epoch)) =
                (err.code, err.epoch)
            {
                return Err(ClientError::GroupMovedOn {
                    code: err.code,
                    epoch,
                });
            }
            return Err(ClientError::Relay {
                status: status.as_u16(),
                code: err.code,
            });
        }
    }

    /// A signed JSON API call: answers with the body (bounded).
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        keys: &[&MailboxKey],
        body: Vec<u8>,
        content_type: &'static str,
        with_token: bool,
    ) -> Result<Vec<u8>, ClientError> {
        let token = with_token.then_some(self.access_token.as_deref()).flatten();
        let resp = self
            .send_signed(method, path, keys, body, |r| {
                let r = r
                    .header(reqwest::header::CONTENT_TYPE, content_type)
                    .timeout(API_TIMEOUT);
                match token {
                    Some(t) => r.header(ferry_proto::auth::HEADER_ACCESS_TOKEN, t),
                    None => r,
                }
            })
            .await?;
        read_limited(resp, MAX_RESPONSE).await
    }

    /// The WebSocket URL of the relay.
    pub(crate) fn ws_url(&self) -> Result<String, ClientError> {
        if let Some(rest) = self.base.strip_prefix("https://") {
            Ok(format!("wss://{rest}/v1/ws"))
        } else if let Some(rest) = self.base.strip_prefix("http://") {
            Ok(format!("ws://{rest}/v1/ws"))
        } else {
            Err(ClientError::Protocol(
                "relay URL must start with http:// or https://".into(),
            ))
        }
    }

    /// Signs a WebSocket operation at the relay's time: timestamp, nonce
    /// and one signature per key.
    pub(crate) fn sign_ws(
        &self,
        op: &str,
        keys: &[&MailboxKey],
        body: &str,
    ) -> (u64, String, Vec<String>) {
        let auth = RequestAuth::sign(
            keys,
            "WS",
            &ws_signing_path(op),
            body.as_bytes(),
            self.now(),
            &mut OsRng,
        );
        let sigs = auth.signatures.iter().map(|s| b64::encode(s)).collect();
        (auth.timestamp, auth.nonce_value(), sigs)
    }
}

/// The retry policy of relay calls: up to 4 attempts, 200 ms doubling,
/// only for errors worth another try.
pub async fn retry<T, F, Fut>(mut f: F) -> Result<T, ClientError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    let mut delay = Duration::from_millis(200);
    let mut attempt = 0;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < 3 && !e.is_permanent() => {
                tracing::debug!("relay call failed, retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}
