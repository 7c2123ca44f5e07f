//! Stable error codes a relay returns to clients. The text form is part of
//! the API: never rename a variant's string.

use serde::{Deserialize, Serialize};

/// What went wrong, as told to the client (the relay's log holds the detail).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The body is not the JSON the route expects.
    MalformedJson,
    /// A path, query or header value is malformed.
    BadRequest,
    /// The request body is larger than the route allows.
    BodyTooLarge,
    /// A payload's size is not one of the padding buckets.
    PayloadSizeNotBucket,
    /// Authentication headers are missing or malformed.
    MissingAuth,
    /// A signature does not verify under the mailbox's key.
    BadSignature,
    /// The request's timestamp is outside the accepted window.
    StaleTimestamp,
    /// The request's nonce was already used.
    ReplayedRequest,
    /// Creating a mailbox needs the operator's access token.
    AccessTokenRequired,
    /// No mailbox with that id.
    UnknownMailbox,
    /// A mailbox with that id exists with another key.
    MailboxExists,
    /// The mailbox's sender key was already set to another key.
    SenderKeyAlreadySet,
    /// The mailbox has no sender key yet, so nobody may send to it.
    MailboxNotSecured,
    /// The mailbox has reached its message or byte quota.
    MailboxFull,
    /// Too many mailboxes in one request.
    TooManyMailboxes,
    /// No canary with that id.
    UnknownCanary,
    /// The canary id is taken by another owner.
    CanaryExists,
    /// A canary's release time is in the past or too far ahead.
    BadReleaseTime,
    /// A tus upload's Upload-Offset does not match the stored offset.
    OffsetMismatch,
    /// The request's content type is not the one the route takes.
    UnsupportedMediaType,
    /// The client speaks a tus version this relay does not.
    TusVersionUnsupported,
    /// The requested byte range is outside the blob.
    RangeNotSatisfiable,
    /// The blob is not completely uploaded yet.
    UploadIncomplete,
    /// The relay's attachment storage is full.
    BlobStorageFull,
    /// A WebSocket operation on a mailbox this connection is not authorized for.
    NotAuthorized,
    /// No such route.
    NotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// Too many requests from this connection or signed by this key;
    /// retry after a pause.
    RateLimited,
    /// The relay holds as many live connections as it accepts.
    TooManyConnections,
    /// The mailbox already has as many canaries waiting as a mailbox may.
    TooManyCanaries,
    /// The key that signed already reserved its share of blob storage.
    BlobBudgetExceeded,
    /// The relay is overloaded; retry later.
    Unavailable,
    /// Something failed inside the relay.
    Internal,
    /// No stowed account at this locator (also after too many wrong PINs).
    NoStow,
    /// A stow was written against an older version than the relay holds.
    StowConflict,
    /// Another device holds the stowed account (restore with takeover).
    StowLeased,
    /// This device's lease on the stowed account was taken over.
    StowLeaseLost,
    /// The PIN (access token) is wrong; the answer says how many tries are
    /// left.
    WrongPin,
    /// A group message was sent in an epoch a commit has ended; the
    /// answer says the group's epoch (read the commits, send again).
    StaleEpoch,
    /// A commit was made against another epoch than the group's; the
    /// answer says the group's epoch.
    CommitConflict,
    /// A code this version does not know (from a newer relay). Never sent
    /// by this relay; lets an older client read a newer relay's refusals
    /// instead of failing to parse them.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The stable text form, as it appears in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MalformedJson => "malformed_json",
            Self::BadRequest => "bad_request",
            Self::BodyTooLarge => "body_too_large",
            Self::PayloadSizeNotBucket => "payload_size_not_bucket",
            Self::MissingAuth => "missing_auth",
            Self::BadSignature => "bad_signature",
            Self::StaleTimestamp => "stale_timestamp",
            Self::ReplayedRequest => "replayed_request",
            Self::AccessTokenRequired => "access_token_required",
            Self::UnknownMailbox => "unknown_mailbox",
            Self::MailboxExists => "mailbox_exists",
            Self::SenderKeyAlreadySet => "sender_key_already_set",
            Self::MailboxNotSecured => "mailbox_not_secured",
            Self::MailboxFull => "mailbox_full",
            Self::TooManyMailboxes => "too_many_mailboxes",
            Self::UnknownCanary => "unknown_canary",
            Self::CanaryExists => "canary_exists",
            Self::BadReleaseTime => "bad_release_time",
            Self::OffsetMismatch => "offset_mismatch",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::TusVersionUnsupported => "tus_version_unsupported",
            Self::RangeNotSatisfiable => "range_not_satisfiable",
            Self::UploadIncomplete => "upload_incomplete",
            Self::BlobStorageFull => "blob_storage_full",
            Self::NotAuthorized => "not_authorized",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RateLimited => "rate_limited",
            Self::TooManyConnections => "too_many_connections",
            Self::TooManyCanaries => "too_many_canaries",
            Self::BlobBudgetExceeded => "blob_budget_exceeded",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
            Self::NoStow => "no_stow",
            Self::StowConflict => "stow_conflict",
            Self::StowLeased => "stow_leased",
            Self::StowLeaseLost => "stow_lease_lost",
            Self::WrongPin => "wrong_pin",
            Self::StaleEpoch => "stale_epoch",
            Self::CommitConflict => "commit_conflict",
            Self::Unknown => "unknown",
        }
    }

    /// Every code, for documentation checks.
    pub const ALL: [ErrorCode; 40] = [
        Self::MalformedJson,
        Self::BadRequest,
        Self::BodyTooLarge,
        Self::PayloadSizeNotBucket,
        Self::MissingAuth,
        Self::BadSignature,
        Self::StaleTimestamp,
        Self::ReplayedRequest,
        Self::AccessTokenRequired,
        Self::UnknownMailbox,
        Self::MailboxExists,
        Self::SenderKeyAlreadySet,
        Self::MailboxNotSecured,
        Self::MailboxFull,
        Self::TooManyMailboxes,
        Self::UnknownCanary,
        Self::CanaryExists,
        Self::BadReleaseTime,
        Self::OffsetMismatch,
        Self::UnsupportedMediaType,
        Self::TusVersionUnsupported,
        Self::RangeNotSatisfiable,
        Self::UploadIncomplete,
        Self::BlobStorageFull,
        Self::NotAuthorized,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::RateLimited,
        Self::TooManyConnections,
        Self::TooManyCanaries,
        Self::BlobBudgetExceeded,
        Self::Unavailable,
        Self::Internal,
        Self::NoStow,
        Self::StowConflict,
        Self::StowLeased,
        Self::StowLeaseLost,
        Self::WrongPin,
        Self::StaleEpoch,
        Self::CommitConflict,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_from_a_newer_relay_still_parses() {
        let c: ErrorCode = serde_json::from_str("\"a_code_added_later\"").unwrap();
        assert_eq!(c, ErrorCode::Unknown);
    }

    #[test]
    fn text_form_matches_serde() {
        for c in ErrorCode::ALL {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
        }
    }
}
