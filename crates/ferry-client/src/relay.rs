//! Typed client for a relay's JSON API (over [`crate::transport`]).

use std::sync::Arc;

use ferry_proto::api::{
    Ack, Acked, CreateMailbox, Fetched, Sent, SetSender, SyncEntry, SyncRequest, SyncResponse,
};
use ferry_proto::{MailboxId, MailboxKey, PublicKey, Seq};
use reqwest::Method;

pub use crate::transport::ClientError;
use crate::transport::Transport;

mod groups;
pub use groups::GroupCommit;

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

/// A client for one relay's API.
#[derive(Clone)]
pub struct RelayClient {
    transport: Arc<Transport>,
}

impl std::fmt::Debug for RelayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayClient").finish_non_exhaustive()
    }
}

impl RelayClient {
    /// A client for the relay at `base` (e.g. `http://127.0.0.1:7070`).
    pub fn new(base: &str) -> Result<Self, ClientError> {
        Ok(Self::over(Arc::new(Transport::new(base)?)))
    }

    /// A client for the relay at `base` that goes out as `network` says.
    pub fn with_network(base: &str, network: &crate::net::Network) -> Result<Self, ClientError> {
        Ok(Self::over(Arc::new(Transport::with_network(
            base, network,
        )?)))
    }

    /// A client over an existing transport (sharing its learned clock).
    pub fn over(transport: Arc<Transport>) -> Self {
        Self { transport }
    }

    /// Sends the operator's access token when creating mailboxes.
    pub fn with_access_token(self, token: impl Into<String>) -> Self {
        let t = Arc::try_unwrap(self.transport).unwrap_or_else(|shared| shared.duplicate());
        Self::over(Arc::new(t.with_access_token(Some(token.into()))))
    }

    /// The transport (for blob transfers and the live connection).
    pub fn transport(&self) -> &Arc<Transport> {
        &self.transport
    }

    /// The relay's base URL.
    pub fn base_url(&self) -> &str {
        self.transport.base_url()
    }

    /// The current time as the relay sees it (local clock plus learned offset).
    pub fn now(&self) -> u64 {
        self.transport.now()
    }

    /// The relay-minus-local clock offset in seconds.
    pub fn clock_offset(&self) -> i64 {
        self.transport.clock_offset()
    }

    /// Sets the relay-minus-local clock offset (normally learned from the
    /// relay's `stale_timestamp` answers).
    pub fn set_clock_offset(&self, secs: i64) {
        self.transport.set_clock_offset(secs);
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        keys: &[&MailboxKey],
        body: Vec<u8>,
        content_type: &'static str,
        with_token: bool,
    ) -> Result<Vec<u8>, ClientError> {
        self.transport
            .call(method, path, keys, body, content_type, with_token)
            .await
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

    /// Short-lived TURN credentials for a call, proven by a key of
    /// `mailbox` (its recipient's or its sender's).
    pub async fn turn_credentials(
        &self,
        mailbox: MailboxId,
        key: &MailboxKey,
    ) -> Result<ferry_proto::api::TurnCredentials, ClientError> {
        let resp = self
            .transport
            .send_signed(Method::POST, "/v1/turn", &[key], Vec::new(), |r| {
                r.header(ferry_proto::auth::HEADER_MAILBOX, mailbox.to_b64())
            })
            .await?;
        let bytes = crate::transport::read_limited(resp, 64 * 1024).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol(e.to_string()))
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
    /// canary's owner key and the mailbox's sender key; `fire` is the public
    /// fire-only key and the alert a fire releases.
    #[allow(clippy::too_many_arguments)]
    pub async fn deposit_canary(
        &self,
        id: MailboxId,
        owner: &MailboxKey,
        sender: &MailboxKey,
        mailbox: MailboxId,
        release_at: u64,
        payload: Vec<u8>,
        fire: Option<(ferry_proto::PublicKey, Vec<u8>)>,
    ) -> Result<(), ClientError> {
        let (fire_key, fire_payload) = fire.unzip();
        let body = serde_json::to_vec(&ferry_proto::api::DepositCanary {
            owner_key: owner.public(),
            mailbox,
            release_at,
            payload,
            fire_key,
            fire_payload,
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

    /// Moves a canary's release time (signed by its owner key), or, signed
    /// by its fire-only key, releases it now: the two requests look alike.
    pub async fn renew_canary(
        &self,
        id: MailboxId,
        key: &MailboxKey,
        release_at: u64,
    ) -> Result<(), ClientError> {
        let body = serde_json::to_vec(&ferry_proto::api::RenewCanary { release_at })
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let path = format!("/v1/canaries/{}/renew", id.to_b64());
        self.call(Method::POST, &path, &[key], body, "application/json", false)
            .await
            .map(|_| ())
    }

    /// Releases a canary now (owner-signed; the client's own sessions fire
    /// with the fire key through [`RelayClient::renew_canary`]).
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
        crate::live::LiveConnection::connect(self.transport.clone()).await
    }

    /// Stores a sealed stow record by compare-and-swap; answers with the new
    /// version once the relay has it durably.
    pub async fn put_stow(
        &self,
        put: &StowPutRequest<'_>,
    ) -> Result<ferry_proto::api::StowStored, ClientError> {
        let q = ferry_proto::api::PutStow {
            owner: put.owner.public(),
            access: ferry_proto::b64::encode(&put.access_hash),
            expected: put.expected,
            version: put.version,
            lease: put.lease.map(|l| ferry_proto::b64::encode(l)),
            keep: put.keep,
        };
        let query = put_stow_query(&q);
        let path = format!("/v1/stows/{}?{query}", put.locator.to_b64());
        let resp = self
            .transport
            .send_signed(Method::PUT, &path, &[put.owner], put.record.to_vec(), |r| {
                r.header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .timeout(STOW_TIMEOUT)
            })
            .await?;
        let bytes = crate::transport::read_limited(resp, 64 * 1024).await?;
        let stored: ferry_proto::api::StowStored =
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(stored)
    }

    /// A stow's version, digest and lease state; `None` if there is none.
    pub async fn stow_status(
        &self,
        locator: MailboxId,
        owner: &MailboxKey,
        lease: Option<&[u8; 32]>,
    ) -> Result<Option<ferry_proto::api::StowStatus>, ClientError> {
        let mut path = format!("/v1/stows/{}", locator.to_b64());
        if let Some(l) = lease {
            path.push_str("?lease=");
            path.push_str(&ferry_proto::b64::encode(l));
        }
        match self
            .call(
                Method::GET,
                &path,
                &[owner],
                Vec::new(),
                "application/json",
                false,
            )
            .await
        {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| ClientError::Protocol(e.to_string())),
            Err(e) if e.code() == Some(ferry_proto::ErrorCode::NoStow) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Claims a stowed account with `lease` (the same lease again resumes a
    /// claim): its version and sealed record, at most `max` bytes.
    pub async fn claim_stow(
        &self,
        locator: MailboxId,
        owner: &MailboxKey,
        access: &[u8; 32],
        lease: &[u8; 32],
        takeover: bool,
        max: usize,
    ) -> Result<(u64, Vec<u8>), ClientError> {
        let body = serde_json::to_vec(&ferry_proto::api::ClaimStow {
            access: ferry_proto::b64::encode(access),
            lease: ferry_proto::b64::encode(lease),
            takeover,
        })
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let path = format!("/v1/stows/{}/claim", locator.to_b64());
        let resp = self
            .transport
            .send_signed(Method::POST, &path, &[owner], body, |r| {
                r.header(reqwest::header::CONTENT_TYPE, "application/json")
                    .timeout(STOW_TIMEOUT)
            })
            .await?;
        let version = resp
            .headers()
            .get(ferry_proto::api::HEADER_STOW_VERSION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| ClientError::Protocol("claim without a version".into()))?;
        let record = crate::transport::read_limited(resp, max).await?;
        Ok((version, record))
    }

    /// Deletes a stowed account.
    pub async fn delete_stow(
        &self,
        locator: MailboxId,
        owner: &MailboxKey,
    ) -> Result<(), ClientError> {
        let path = format!("/v1/stows/{}", locator.to_b64());
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
}

/// How long a stow upload or claim may take (records are megabytes).
const STOW_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// A stow write (see [`RelayClient::put_stow`]).
pub struct StowPutRequest<'a> {
    /// Where the record lives.
    pub locator: MailboxId,
    /// The owner key (signs).
    pub owner: &'a MailboxKey,
    /// SHA-256 of the access token.
    pub access_hash: [u8; 32],
    /// The version last seen (0: none).
    pub expected: u64,
    /// The new version [default: `expected + 1`].
    pub version: Option<u64>,
    /// This device's lease token, if it holds the lease.
    pub lease: Option<&'a [u8; 32]>,
    /// Keep the lease (checkpoint) or release it (stow).
    pub keep: bool,
    /// The sealed record.
    pub record: &'a [u8],
}

/// The query of a stow PUT, built by hand: it is signed exactly as sent
/// (every value is base64url or a number, nothing to escape).
fn put_stow_query(q: &ferry_proto::api::PutStow) -> String {
    let mut s = format!(
        "owner={}&access={}&expected={}",
        ferry_proto::b64::encode(&q.owner.to_bytes()),
        q.access,
        q.expected
    );
    if let Some(v) = q.version {
        s.push_str(&format!("&version={v}"));
    }
    if let Some(l) = &q.lease {
        s.push_str("&lease=");
        s.push_str(l);
    }
    if q.keep {
        s.push_str("&keep=true");
    }
    s
}
