//! Typed client for a relay's HTTP API.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use ferry_proto::api::{
    Ack, Acked, CreateMailbox, ErrorBody, Fetched, Sent, SetSender, SyncEntry, SyncRequest,
    SyncResponse,
};
use ferry_proto::auth::{
    HEADER_ACCESS_TOKEN, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, RequestAuth,
};
use ferry_proto::{ErrorCode, MailboxId, MailboxKey, PublicKey, Seq};
use rand_core::OsRng;
use reqwest::Method;

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
    /// The relay answered something this client does not understand.
    #[error("unexpected answer from relay: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The relay's error code, if the relay refused the request.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Relay { code, .. } => Some(*code),
            _ => None,
        }
    }
}

fn transport(e: reqwest::Error) -> ClientError {
    // Strip the URL: it contains mailbox ids.
    ClientError::Transport(e.without_url().to_string())
}

/// Largest answer accepted from a relay (a full sync answer is ~6 MiB).
const MAX_RESPONSE: usize = 16 * 1024 * 1024;

/// Reads a response body, refusing one larger than [`MAX_RESPONSE`].
async fn read_limited(mut resp: reqwest::Response) -> Result<Vec<u8>, ClientError> {
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE as u64)
    {
        return Err(ClientError::Protocol("relay answer too large".into()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_RESPONSE {
            return Err(ClientError::Protocol("relay answer too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// One mailbox in a [`RelayClient::sync`].
pub struct SyncItem<'a> {
    /// The mailbox.
    pub id: MailboxId,
    /// Its recipient key.
    pub key: &'a MailboxKey,
    /// Read after this cursor.
    pub after: Seq,
    /// Ack up to here first.
    pub ack_up_to: Option<Seq>,
}

/// A client for one relay.
pub struct RelayClient {
    http: reqwest::Client,
    base: String,
    /// Relay clock minus local clock, learned from `stale_timestamp` answers.
    offset: AtomicI64,
    access_token: Option<String>,
}

impl std::fmt::Debug for RelayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayClient").finish_non_exhaustive()
    }
}

impl RelayClient {
    /// A client for the relay at `base` (e.g. `http://127.0.0.1:7070`).
    pub fn new(base: &str) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(transport)?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            offset: AtomicI64::new(0),
            access_token: None,
        })
    }

    /// Sends the operator's access token when creating mailboxes.
    pub fn with_access_token(mut self, token: impl Into<String>) -> Self {
        self.access_token = Some(token.into());
        self
    }

    /// The relay's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The current time as the relay sees it (local clock plus learned offset).
    pub fn now(&self) -> u64 {
        let local = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        local.saturating_add_signed(self.offset.load(Ordering::Relaxed))
    }

    /// The relay-minus-local clock offset in seconds.
    pub fn clock_offset(&self) -> i64 {
        self.offset.load(Ordering::Relaxed)
    }

    /// Sets the relay-minus-local clock offset (normally learned from the
    /// relay's `stale_timestamp` answers).
    pub fn set_clock_offset(&self, secs: i64) {
        self.offset.store(secs, Ordering::Relaxed);
    }

    fn learn_time(&self, server_time: u64) {
        let local = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let off =
            i64::try_from(server_time).unwrap_or(i64::MAX) - i64::try_from(local).unwrap_or(0);
        self.offset.store(off, Ordering::Relaxed);
    }

    /// Signs and sends one request; on `stale_timestamp` corrects the clock
    /// offset from the relay's answer and retries once with a new signature.
    async fn call(
        &self,
        method: Method,
        path: &str,
        keys: &[&MailboxKey],
        body: Vec<u8>,
        content_type: &str,
        with_token: bool,
    ) -> Result<Vec<u8>, ClientError> {
        let mut retried = false;
        loop {
            let auth =
                RequestAuth::sign(keys, method.as_str(), path, &body, self.now(), &mut OsRng);
            let mut req = self
                .http
                .request(method.clone(), format!("{}{}", self.base, path))
                .header(HEADER_TIMESTAMP, auth.timestamp_value())
                .header(HEADER_NONCE, auth.nonce_value())
                .header(HEADER_SIGNATURE, auth.signatures_value())
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body.clone());
            if let (true, Some(t)) = (with_token, &self.access_token) {
                req = req.header(HEADER_ACCESS_TOKEN, t.as_str());
            }
            let resp = req.send().await.map_err(transport)?;
            let status = resp.status();
            let bytes = read_limited(resp).await?;
            if status.is_success() {
                return Ok(bytes.to_vec());
            }
            let err: ErrorBody = serde_json::from_slice(&bytes)
                .map_err(|_| ClientError::Protocol(format!("HTTP {status} without error code")))?;
            if let (ErrorCode::StaleTimestamp, false, Some(t)) =
                (err.code, retried, err.server_time)
            {
                self.learn_time(t);
                retried = true;
                continue;
            }
            return Err(ClientError::Relay {
                status: status.as_u16(),
                code: err.code,
            });
        }
    }

    async fn call_json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        keys: &[&MailboxKey],
        body: &impl serde::Serialize,
    ) -> Result<T, ClientError> {
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let out = self
            .call(method, path, keys, body, "application/json", false)
            .await?;
        serde_json::from_slice(&out).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Creates a mailbox owned by `recipient` (idempotent).
    pub async fn create_mailbox(
        &self,
        id: MailboxId,
        recipient: &MailboxKey,
    ) -> Result<(), ClientError> {
        let body = serde_json::to_vec(&CreateMailbox {
            id,
            recipient_key: recipient.public(),
        })
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.call(
            Method::POST,
            "/v1/mailboxes",
            &[recipient],
            body,
            "application/json",
            true,
        )
        .await
        .map(|_| ())
    }

    /// Sets the mailbox's sender key (once).
    pub async fn set_sender(
        &self,
        id: MailboxId,
        recipient: &MailboxKey,
        sender: PublicKey,
    ) -> Result<(), ClientError> {
        let body = serde_json::to_vec(&SetSender { sender_key: sender })
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let path = format!("/v1/mailboxes/{}/sender", id.to_b64());
        self.call(
            Method::PUT,
            &path,
            &[recipient],
            body,
            "application/json",
            false,
        )
        .await
        .map(|_| ())
    }

    /// Sends a padded payload; returns its sequence number once stored durably.
    pub async fn send(
        &self,
        id: MailboxId,
        sender: &MailboxKey,
        payload: Vec<u8>,
    ) -> Result<Seq, ClientError> {
        let path = format!("/v1/mailboxes/{}/messages", id.to_b64());
        let out = self
            .call(
                Method::POST,
                &path,
                &[sender],
                payload,
                "application/octet-stream",
                false,
            )
            .await?;
        let sent: Sent =
            serde_json::from_slice(&out).map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(sent.seq)
    }

    /// Fetches messages after `after`.
    pub async fn fetch(
        &self,
        id: MailboxId,
        recipient: &MailboxKey,
        after: Seq,
        limit: Option<usize>,
    ) -> Result<Fetched, ClientError> {
        let mut path = format!("/v1/mailboxes/{}/messages?after={}", id.to_b64(), after.0);
        if let Some(l) = limit {
            path.push_str(&format!("&limit={l}"));
        }
        let out = self
            .call(
                Method::GET,
                &path,
                &[recipient],
                Vec::new(),
                "application/json",
                false,
            )
            .await?;
        serde_json::from_slice(&out).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Acks (removes) every message up to `up_to`.
    pub async fn ack(
        &self,
        id: MailboxId,
        recipient: &MailboxKey,
        up_to: Seq,
    ) -> Result<u64, ClientError> {
        let path = format!("/v1/mailboxes/{}/ack", id.to_b64());
        let a: Acked = self
            .call_json(Method::POST, &path, &[recipient], &Ack { up_to })
            .await?;
        Ok(a.removed)
    }

    /// Deletes a mailbox and everything in it.
    pub async fn delete_mailbox(
        &self,
        id: MailboxId,
        recipient: &MailboxKey,
    ) -> Result<(), ClientError> {
        let path = format!("/v1/mailboxes/{}", id.to_b64());
        self.call(
            Method::DELETE,
            &path,
            &[recipient],
            Vec::new(),
            "application/json",
            false,
        )
        .await
        .map(|_| ())
    }

    /// One round trip for many mailboxes: optional acks, then reads.
    pub async fn sync(&self, items: &[SyncItem<'_>]) -> Result<SyncResponse, ClientError> {
        let req = SyncRequest {
            mailboxes: items
                .iter()
                .map(|i| SyncEntry {
                    id: i.id,
                    after: i.after,
                    ack_up_to: i.ack_up_to,
                })
                .collect(),
        };
        let keys: Vec<&MailboxKey> = items.iter().map(|i| i.key).collect();
        self.call_json(Method::POST, "/v1/sync", &keys, &req).await
    }

    /// Deposits (or replaces) a dead-man switch for `mailbox`, signed by the
    /// canary's owner key and the mailbox's sender key.
    pub async fn deposit_canary(
        &self,
        id: MailboxId,
        owner: &MailboxKey,
        sender: &MailboxKey,
        mailbox: MailboxId,
        release_at: u64,
        payload: Vec<u8>,
    ) -> Result<(), ClientError> {
        let body = serde_json::to_vec(&ferry_proto::api::DepositCanary {
            owner_key: owner.public(),
            mailbox,
            release_at,
            payload,
        })
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let path = format!("/v1/canaries/{}", id.to_b64());
        self.call(
            Method::PUT,
            &path,
            &[owner, sender],
            body,
            "application/json",
            false,
        )
        .await
        .map(|_| ())
    }

    /// Releases a canary now.
    pub async fn fire_canary(&self, id: MailboxId, owner: &MailboxKey) -> Result<(), ClientError> {
        let path = format!("/v1/canaries/{}/fire", id.to_b64());
        self.call(
            Method::POST,
            &path,
            &[owner],
            Vec::new(),
            "application/json",
            false,
        )
        .await
        .map(|_| ())
    }

    /// Removes a canary unreleased.
    pub async fn delete_canary(
        &self,
        id: MailboxId,
        owner: &MailboxKey,
    ) -> Result<(), ClientError> {
        let path = format!("/v1/canaries/{}", id.to_b64());
        self.call(
            Method::DELETE,
            &path,
            &[owner],
            Vec::new(),
            "application/json",
            false,
        )
        .await
        .map(|_| ())
    }

    /// Opens the live WebSocket.
    pub async fn connect_live(&self) -> Result<crate::LiveConnection, ClientError> {
        crate::live::LiveConnection::connect(self).await
    }
}
