//! JSON bodies of the relay's HTTP API and WebSocket frames.
//!
//! Binary fields (payloads, keys, ids) are base64url without padding.
//! `send` takes the payload as a raw `application/octet-stream` body.

use serde::{Deserialize, Serialize};

mod groups;
pub use groups::*;

use crate::error_code::ErrorCode;
use crate::ids::{MailboxId, Seq};
use crate::keys::PublicKey;

/// `POST /v1/mailboxes`: create a mailbox (signed by `recipient_key`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateMailbox {
    /// Id chosen by the client (random); creating again with the same key is a no-op.
    pub id: MailboxId,
    /// Key that authorizes fetch, ack, delete and setting the sender key.
    pub recipient_key: PublicKey,
}

/// `PUT /v1/mailboxes/{id}/sender`: set the sender key, once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetSender {
    /// Key that authorizes sending to the mailbox.
    pub sender_key: PublicKey,
}

/// Answer to a send: where the message was stored.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sent {
    /// The message's sequence number in its mailbox.
    pub seq: Seq,
}

/// One stored message.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Message {
    /// Sequence number in its mailbox.
    pub seq: Seq,
    /// The opaque padded payload.
    #[serde(with = "crate::b64::bytes")]
    pub payload: Vec<u8>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

/// `GET /v1/mailboxes/{id}/messages`: messages after the cursor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Fetched {
    /// Messages in sequence order.
    pub messages: Vec<Message>,
    /// More messages are waiting past the last one returned.
    pub more: bool,
}

/// `POST /v1/mailboxes/{id}/ack`: remove every message up to `up_to`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    /// Last sequence number the client has safely stored.
    pub up_to: Seq,
}

/// Answer to an ack.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Acked {
    /// How many messages were removed.
    pub removed: u64,
}

/// One mailbox in a batched sync.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncEntry {
    /// The mailbox.
    pub id: MailboxId,
    /// Return messages after this cursor.
    #[serde(default)]
    pub after: Seq,
    /// Optionally ack up to here first (saves a round trip).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_up_to: Option<Seq>,
}

/// `POST /v1/sync`: one round trip for many mailboxes. Signed by each
/// mailbox's recipient key, signatures in the order of `mailboxes`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// Mailboxes to read (at most 1000, no duplicates).
    pub mailboxes: Vec<SyncEntry>,
}

/// Result for one mailbox of a sync.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SyncResult {
    /// The mailbox.
    pub id: MailboxId,
    /// Messages after the cursor.
    #[serde(default)]
    pub messages: Vec<Message>,
    /// More are waiting.
    #[serde(default)]
    pub more: bool,
    /// Set when this mailbox could not be read (e.g. it no longer exists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorCode>,
}

/// Answer to a sync, in the order of the request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SyncResponse {
    /// One result per requested mailbox.
    pub mailboxes: Vec<SyncResult>,
}

/// `PUT /v1/canaries/{id}`: deposit a dead-man switch. Signed by the owner
/// key and by the target mailbox's sender key, in that order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepositCanary {
    /// Key that authorizes renew, fire and delete.
    pub owner_key: PublicKey,
    /// Mailbox the payload goes to when released.
    pub mailbox: MailboxId,
    /// Unix seconds.
    #[serde(deserialize_with = "crate::json_int::deserialize")]
    pub release_at: u64,
    /// Padded sealed alert.
    #[serde(with = "crate::b64::bytes")]
    pub payload: Vec<u8>,
    /// Key that may only fire the canary: a renewal signed by it releases
    /// `fire_payload` at once instead of moving the release time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fire_key: Option<PublicKey>,
    /// What a fire releases (same size as `payload`); needs `fire_key`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::b64::opt_bytes"
    )]
    pub fire_payload: Option<Vec<u8>>,
}

/// `POST /v1/canaries/{id}/renew`: move the release time, signed by the
/// owner key; signed by the fire key instead, release the canary now. The
/// two look alike on the wire.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewCanary {
    /// New release time, Unix seconds.
    #[serde(deserialize_with = "crate::json_int::deserialize")]
    pub release_at: u64,
}

/// Body of every error answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// Stable error code.
    pub code: ErrorCode,
    /// The relay's clock (Unix seconds), sent with `stale_timestamp` so a
    /// client with a wrong clock can correct its offset and retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_time: Option<u64>,
    /// Tries left, sent with `wrong_pin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left: Option<u32>,
    /// The group's epoch, sent with `stale_epoch` and `commit_conflict`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
}

/// Query of `PUT /v1/stows/{locator}` (signed with the owner key); the body
/// is the sealed record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutStow {
    /// The owner key the relay keeps for this locator.
    pub owner: PublicKey,
    /// SHA-256 of the access token a claim must present, base64url.
    pub access: String,
    /// The version the writer last saw (0: none yet).
    pub expected: u64,
    /// The new version [default: `expected + 1`]; a witness of a record on
    /// another relay jumps to the version it witnesses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The writer's lease token, base64url, if it holds the lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<String>,
    /// Keep the lease (a checkpoint) instead of releasing it (a stow).
    #[serde(default)]
    pub keep: bool,
}

/// Answer of `PUT /v1/stows/{locator}`, sent once the record is durable.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StowStored {
    /// The record's new version.
    pub version: u64,
    /// How long this relay keeps a message waiting in a mailbox, seconds
    /// (0: not said).
    #[serde(default)]
    pub keeps_messages: u64,
    /// How long it keeps an attachment waiting, seconds (0: not said).
    #[serde(default)]
    pub keeps_attachments: u64,
}

/// Answer of `GET /v1/stows/{locator}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StowStatus {
    /// The current version.
    pub version: u64,
    /// SHA-256 of the stored record, base64url.
    pub digest: String,
    /// Whether a device holds the lease.
    pub leased: bool,
    /// Whether the lease token in the query is the one held (only when a
    /// token was given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<bool>,
}

/// Query of `GET /v1/stows/{locator}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StowStatusQuery {
    /// A lease token, base64url, to learn whether it is the one held.
    #[serde(default)]
    pub lease: Option<String>,
}

/// Body of `POST /v1/stows/{locator}/claim` (signed with the owner key).
/// The answer is the sealed record, its version in `ferry-stow-version`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimStow {
    /// The access token, base64url (the relay compares its hash).
    pub access: String,
    /// A fresh random lease token, base64url; the same token again resumes
    /// a claim.
    pub lease: String,
    /// Take the lease from the device holding it.
    #[serde(default)]
    pub takeover: bool,
}

/// Header with a claimed record's version.
pub const HEADER_STOW_VERSION: &str = "ferry-stow-version";

/// Body of a signed WebSocket `subscribe` (signed with recipient keys).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscribe {
    /// Mailboxes to follow, each with the cursor to start after.
    pub mailboxes: Vec<SyncEntry>,
}

/// Body of a signed WebSocket `authorize_send` (signed with sender keys).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeSend {
    /// Mailboxes this connection may then send to without further signatures.
    pub mailboxes: Vec<MailboxId>,
}

/// Frames a client sends on the WebSocket (JSON text frames).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Follow mailboxes: the relay pushes what is waiting, then every new
    /// message. `body` is the JSON text of a [`Subscribe`], signed as is.
    Subscribe {
        /// Request number echoed in the answer.
        req: u64,
        /// Signature timestamp.
        ts: u64,
        /// Nonce, base64url.
        nonce: String,
        /// Recipient-key signatures, base64url, in the order of the mailboxes.
        sigs: Vec<String>,
        /// The signed JSON text of a [`Subscribe`].
        body: String,
    },
    /// Allow sends on this connection. `body` is the JSON text of an
    /// [`AuthorizeSend`], signed with each mailbox's sender key.
    AuthorizeSend {
        /// Request number echoed in the answer.
        req: u64,
        /// Signature timestamp.
        ts: u64,
        /// Nonce, base64url.
        nonce: String,
        /// Sender-key signatures, base64url, in the order of the mailboxes.
        sigs: Vec<String>,
        /// The signed JSON text of an [`AuthorizeSend`].
        body: String,
    },
    /// Send a payload to an authorized mailbox.
    Send {
        /// Request number echoed in the answer.
        req: u64,
        /// Target mailbox.
        mailbox: MailboxId,
        /// Padded payload, base64url.
        #[serde(with = "crate::b64::bytes")]
        payload: Vec<u8>,
    },
    /// Ack messages of a subscribed mailbox up to `up_to`.
    Ack {
        /// Request number echoed in the answer.
        req: u64,
        /// Mailbox.
        mailbox: MailboxId,
        /// Last sequence number safely stored.
        up_to: Seq,
    },
}

/// Frames the relay sends on the WebSocket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ServerFrame {
    /// A subscribe, authorize_send or ack succeeded.
    Ok {
        /// The request number.
        req: u64,
    },
    /// A send was stored durably.
    Sent {
        /// The request number.
        req: u64,
        /// Sequence number of the stored message.
        seq: Seq,
    },
    /// A message in a subscribed mailbox.
    Message {
        /// The mailbox.
        mailbox: MailboxId,
        /// The message.
        #[serde(flatten)]
        message: Message,
    },
    /// A request failed.
    Error {
        /// The request number, when the frame could be parsed that far.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        req: Option<u64>,
        /// Stable error code.
        code: ErrorCode,
        /// The relay's clock, with `stale_timestamp`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        server_time: Option<u64>,
    },
}

/// Path of the WebSocket operation used in its signing input.
pub fn ws_signing_path(op: &str) -> String {
    format!("/{}/ws/{op}", crate::API_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_shapes_are_pinned() {
        let id = MailboxId::from_bytes([1; 16]);
        let frame = ServerFrame::Message {
            mailbox: id,
            message: Message {
                seq: Seq(3),
                payload: vec![0xff; 4],
            },
        };
        insta::assert_snapshot!(serde_json::to_string(&frame).unwrap(),
            @r#"{"op":"message","mailbox":"AQEBAQEBAQEBAQEBAQEBAQ","seq":3,"payload":"_____w"}"#);
        let sync = SyncRequest {
            mailboxes: vec![SyncEntry {
                id,
                after: Seq(7),
                ack_up_to: Some(Seq(7)),
            }],
        };
        insta::assert_snapshot!(serde_json::to_string(&sync).unwrap(),
            @r#"{"mailboxes":[{"id":"AQEBAQEBAQEBAQEBAQEBAQ","after":7,"ack_up_to":7}]}"#);
        let err = ErrorBody {
            code: ErrorCode::StaleTimestamp,
            server_time: Some(5),
            left: None,
            epoch: None,
        };
        insta::assert_snapshot!(serde_json::to_string(&err).unwrap(),
            @r#"{"code":"stale_timestamp","server_time":5}"#);
    }

    #[test]
    fn client_frames_parse_and_reject_garbage() {
        let f: ClientFrame = serde_json::from_str(
            r#"{"op":"ack","req":1,"mailbox":"AQEBAQEBAQEBAQEBAQEBAQ","up_to":9}"#,
        )
        .unwrap();
        assert!(matches!(
            f,
            ClientFrame::Ack {
                req: 1,
                up_to: Seq(9),
                ..
            }
        ));
        assert!(serde_json::from_str::<ClientFrame>(r#"{"op":"nope"}"#).is_err());
        assert!(serde_json::from_str::<ClientFrame>(r#"{"op":"ack","req":1}"#).is_err());
    }

    #[test]
    fn message_debug_hides_payload() {
        let m = Message {
            seq: Seq(1),
            payload: b"secret".to_vec(),
        };
        assert_eq!(format!("{m:?}"), "Message { seq: Seq(1), .. }");
    }
}

/// `POST /v1/turn`: short-lived TURN credentials (the TURN REST API scheme:
/// `username = expiry ":" random`, `credential = base64(HMAC-SHA1(secret,
/// username))`) for a holder of a key of one of the relay's secured
/// mailboxes (recipient or sender key, named in `ferry-mailbox`). The same
/// credentials work with the relay's embedded TURN server and with coturn
/// (`use-auth-secret`).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TurnCredentials {
    /// `turn:` URLs to give the browser (UDP and TCP).
    pub urls: Vec<String>,
    /// TURN username (expiry and random; names nobody).
    pub username: String,
    /// TURN password.
    pub credential: String,
    /// When the credentials stop working, Unix seconds.
    #[serde(deserialize_with = "crate::json_int::deserialize")]
    pub expires_at: u64,
    /// The address every relayed candidate of this TURN server carries: a
    /// call's SDP may name no other.
    pub relay_ip: std::net::IpAddr,
}

impl std::fmt::Debug for TurnCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnCredentials")
            .field("urls", &self.urls)
            .field("expires_at", &self.expires_at)
            .field("relay_ip", &self.relay_ip)
            .finish_non_exhaustive()
    }
}
