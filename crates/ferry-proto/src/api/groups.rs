//! `/v1/groups`: group mailboxes. One log per group chat, uploaded to once
//! and read by every member with its own cursor; commits are ordered by
//! compare-and-swap on the group's epoch. No key names a member: admin
//! keys sign commits, the group's write key signs messages, its read key
//! signs reads.

use serde::{Deserialize, Serialize};

use crate::ids::{MailboxId, Seq};
use crate::keys::PublicKey;

/// `POST /v1/groups`: create a group mailbox, signed by all three keys (so
/// each is held by whoever names it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    /// Id chosen by the creator (random).
    pub id: MailboxId,
    /// The creator's admin key: signs commits.
    pub admin_key: PublicKey,
    /// Signs reads.
    pub read_key: PublicKey,
    /// Signs messages.
    pub write_key: PublicKey,
}

/// Query of `POST /v1/groups/{id}/messages` (signed by the write key; the
/// body is the padded payload).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupPostQuery {
    /// The epoch the sender is in.
    pub epoch: u64,
}

/// New read and write keys, taken with a commit that removes a member.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RotateKeys {
    /// The next read key.
    pub read_key: PublicKey,
    /// The next write key.
    pub write_key: PublicKey,
}

/// `POST /v1/groups/{id}/commits`: a commit made against `expected`,
/// signed by `admin_key`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostCommit {
    /// The admin key that signs this request.
    pub admin_key: PublicKey,
    /// The epoch the commit was made against.
    pub expected: u64,
    /// The padded commit (or its blob reference).
    #[serde(with = "crate::b64::bytes")]
    pub payload: Vec<u8>,
    /// New read and write keys that take effect with the commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate: Option<RotateKeys>,
    /// Admin keys added with the commit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_admins: Vec<PublicKey>,
    /// Admin keys removed with the commit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_admins: Vec<PublicKey>,
}

impl std::fmt::Debug for PostCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostCommit")
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

/// Answer to a commit: where it landed and the group's epoch after it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct CommitTaken {
    /// Its position in the group's log.
    pub seq: Seq,
    /// The group's epoch after it.
    pub epoch: u64,
}

/// Query of `GET /v1/groups/{id}/entries`, signed by `key` (a read key).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupFetchQuery {
    /// The read key that signs this request (an old one reads up to the
    /// commit that replaced it).
    pub key: PublicKey,
    /// The reader's cursor.
    #[serde(default)]
    pub after: u64,
    /// Most entries wanted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// Query of `DELETE /v1/groups/{id}`, signed by `admin_key`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupAdminQuery {
    /// The admin key that signs the request.
    pub admin_key: PublicKey,
}

/// What an entry of a group's log is.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum GroupEntryKind {
    /// Sent with the write key.
    Message,
    /// A commit: the group's epoch after it is the entry's epoch plus one.
    Commit,
}

/// One entry of a group's log.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GroupEntry {
    /// Position in the log.
    pub seq: Seq,
    /// The epoch it was sent in (a commit: made against).
    pub epoch: u64,
    /// Message or commit.
    pub kind: GroupEntryKind,
    /// The opaque payload.
    #[serde(with = "crate::b64::bytes")]
    pub payload: Vec<u8>,
}

impl std::fmt::Debug for GroupEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupEntry")
            .field("seq", &self.seq)
            .field("epoch", &self.epoch)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Answer to a read of a group's log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GroupFetched {
    /// Entries after the cursor, in order.
    pub entries: Vec<GroupEntry>,
    /// More are readable past the last one returned.
    pub more: bool,
    /// The group's epoch now.
    pub epoch: u64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_commit_with_unknown_fields_or_no_payload_is_refused() {
        let key = crate::MailboxKey::generate(&mut rand_core::OsRng).public();
        let key = serde_json::to_value(key).unwrap();
        let key = key.as_str().unwrap();
        let ok = format!(r#"{{"admin_key":"{key}","expected":3,"payload":"AAAA"}}"#);
        let c: PostCommit = serde_json::from_str(&ok).unwrap();
        assert_eq!((c.expected, c.payload.len(), c.rotate), (3, 3, None));
        let extra = format!(r#"{{"admin_key":"{key}","expected":3,"payload":"AAAA","x":1}}"#);
        assert!(serde_json::from_str::<PostCommit>(&extra).is_err());
        let missing = format!(r#"{{"admin_key":"{key}","expected":3}}"#);
        assert!(serde_json::from_str::<PostCommit>(&missing).is_err());
        let kind: GroupEntryKind = serde_json::from_str(r#""commit""#).unwrap();
        assert_eq!(kind, GroupEntryKind::Commit);
    }
}
