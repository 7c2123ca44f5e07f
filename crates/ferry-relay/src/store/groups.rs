//! Group mailboxes: one log per group chat, uploaded to once and read by
//! every member with a cursor kept on its device.
//!
//! The relay cannot read a commit, so it orders them: a commit is taken
//! only against the group's current epoch (compare-and-swap) and only
//! from an admin key; a message names the epoch it was sent in and is
//! refused once a commit has moved the group on. Three kinds of keys, none
//! tied to a member:
//!
//! - **admin keys** (one per admin device) sign commits and may change the
//!   other keys;
//! - the **write key** signs messages; a commit may replace it;
//! - the **read key** signs reads; a commit that replaces it ends the old
//!   one at that commit, so a member removed by it still reads up to its
//!   removal and nothing after.

use bytes::Bytes;
use ferry_proto::{MailboxId, PublicKey, Seq};

use super::Quota;

/// Most admin keys a group holds, and most one commit may add or remove.
pub const MAX_ADMINS: usize = 64;

/// A new group mailbox.
#[derive(Debug, Clone)]
pub struct NewGroup {
    /// Random id chosen by the creator.
    pub id: MailboxId,
    /// The creator's admin key.
    pub admin: PublicKey,
    /// Signs reads.
    pub read: PublicKey,
    /// Signs messages.
    pub write: PublicKey,
    /// Unix seconds.
    pub now: u64,
}

/// A read key and where its reads end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadKey {
    /// The key.
    pub key: PublicKey,
    /// The last entry it may read (the commit that replaced it); `None`
    /// while it is the current one.
    pub until: Option<Seq>,
}

/// A group mailbox's keys and epoch, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    /// Commits taken so far.
    pub epoch: u64,
    /// Keys that may commit.
    pub admins: Vec<PublicKey>,
    /// The current write key.
    pub write: PublicKey,
    /// Every read key still known, the current one last.
    pub reads: Vec<ReadKey>,
}

impl GroupRecord {
    /// The read key `key`, if the group has it.
    pub fn read_key(&self, key: &PublicKey) -> Option<ReadKey> {
        self.reads.iter().copied().find(|r| &r.key == key)
    }
}

/// What an entry of a group's log is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// An application message (or anything sent with the write key).
    Message,
    /// A commit: the epoch after it is the entry's epoch plus one.
    Commit,
}

impl EntryKind {
    pub(crate) fn to_sql(self) -> i64 {
        match self {
            Self::Message => 0,
            Self::Commit => 1,
        }
    }

    pub(crate) fn from_sql(v: i64) -> Option<Self> {
        match v {
            0 => Some(Self::Message),
            1 => Some(Self::Commit),
            _ => None,
        }
    }
}

/// One entry of a group's log.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupEntry {
    /// Position in the log.
    pub seq: Seq,
    /// The epoch it was sent in (a commit: the epoch it was made against).
    pub epoch: u64,
    /// Message or commit.
    pub kind: EntryKind,
    /// The opaque payload.
    pub payload: Bytes,
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

/// What one read of a group's log returned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupBatch {
    /// Entries after the cursor, in order.
    pub entries: Vec<GroupEntry>,
    /// More were readable than the limits allowed.
    pub more: bool,
    /// The group's epoch when read.
    pub epoch: u64,
}

/// Key changes a commit makes at the relay, atomically with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyChanges {
    /// New read and write keys (a member was removed).
    pub rotate: Option<(PublicKey, PublicKey)>,
    /// Admin keys added.
    pub add_admins: Vec<PublicKey>,
    /// Admin keys removed (never the last one).
    pub remove_admins: Vec<PublicKey>,
}

/// A commit, taken only if the group is at `expected`.
#[derive(Clone)]
pub struct CommitPut {
    /// The group.
    pub group: MailboxId,
    /// The admin key that signed it (checked in the commit's transaction).
    pub admin: PublicKey,
    /// The epoch the commit was made against.
    pub expected: u64,
    /// The opaque commit (or its blob reference).
    pub payload: Bytes,
    /// Key changes that take effect with it.
    pub changes: KeyChanges,
    /// Unix seconds.
    pub expires_at: u64,
    /// The log's limits for messages; commits may use as much again, so a
    /// full log never keeps an admin from removing whoever fills it, yet
    /// no admin can fill the relay.
    pub quota: Quota,
}

impl std::fmt::Debug for CommitPut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitPut")
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

/// A message post, taken only in the group's current epoch.
#[derive(Clone)]
pub struct GroupPost {
    /// The group.
    pub group: MailboxId,
    /// The write key that signed it (a key a commit replaced meanwhile is
    /// refused as a stale epoch).
    pub write: PublicKey,
    /// The epoch the sender is in.
    pub epoch: u64,
    /// The opaque padded payload.
    pub payload: Bytes,
    /// Unix seconds.
    pub expires_at: u64,
    /// Limits on the messages waiting in the group's log.
    pub quota: Quota,
}

impl std::fmt::Debug for GroupPost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupPost")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// Where a commit landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// Its position in the log.
    pub seq: Seq,
    /// The group's epoch after it.
    pub epoch: u64,
}
