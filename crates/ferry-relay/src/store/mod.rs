//! Mailbox storage: the [`MailboxStore`] trait every backend implements, and
//! the embedded SQLite backend.
//!
//! A backend owns durability: when `append` returns `Ok`, the message must
//! survive a crash of the relay process (and, for SQLite with its default
//! settings, of the machine). Every backend runs the shared conformance suite
//! in [`conformance`] through [`mailbox_store_conformance!`](crate::mailbox_store_conformance).

pub mod conformance;
mod groups;
mod sqlite;

pub use groups::{
    CommitPut, Committed, EntryKind, GroupBatch, GroupEntry, GroupPost, GroupRecord, KeyChanges,
    MAX_ADMINS, NewGroup, ReadKey,
};
pub use sqlite::{SqliteStore, SqliteStoreOptions};

use async_trait::async_trait;
use bytes::Bytes;
use ferry_proto::{MailboxId, PublicKey, Seq};

/// A mailbox's keys, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxRecord {
    /// Authorizes fetch, ack, delete and setting the sender key.
    pub recipient_key: PublicKey,
    /// Authorizes send; `None` until the mailbox is secured.
    pub sender_key: Option<PublicKey>,
}

/// Per-mailbox limits on what may be waiting at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Most unacked messages.
    pub max_messages: u64,
    /// Most unacked payload bytes.
    pub max_bytes: u64,
}

/// A message as read back from a store.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Sequence number in its mailbox.
    pub seq: Seq,
    /// The opaque payload.
    pub payload: Bytes,
}

impl std::fmt::Debug for StoredMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredMessage")
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

/// What one mailbox read returned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchBatch {
    /// Messages after the cursor, in order.
    pub messages: Vec<StoredMessage>,
    /// More were waiting than the limits allowed.
    pub more: bool,
}

/// Limits on one read, across all the mailboxes it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchLimits {
    /// Most messages per mailbox.
    pub per_mailbox: usize,
    /// Most payload bytes in all (at least one message is always returned
    /// for the first mailbox that has one, so progress is always possible).
    pub total_bytes: usize,
}

/// Whether a create made a new mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// A new mailbox.
    New,
    /// It already existed with the same recipient key (a retried create).
    Existing,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No mailbox with that id.
    #[error("unknown mailbox")]
    UnknownMailbox,
    /// The id is taken by a mailbox with another recipient key.
    #[error("mailbox exists with another key")]
    MailboxExists,
    /// The canary id is taken by another owner.
    #[error("canary exists with another owner")]
    CanaryExists,
    /// The sender key is already set to another key.
    #[error("sender key already set")]
    SenderKeyAlreadySet,
    /// The mailbox's quota is reached.
    #[error("mailbox quota reached")]
    MailboxFull,
    /// The mailbox has as many canaries waiting as it may.
    #[error("too many canaries for one mailbox")]
    TooManyCanaries,
    /// The data was written by a newer relay version.
    #[error("store schema version {found} is newer than supported {supported}")]
    UnsupportedVersion {
        /// Version on disk.
        found: i64,
        /// Newest this build understands.
        supported: i64,
    },
    /// A stow was put against another version than the stored one.
    #[error("stow version conflict")]
    StowConflict {
        /// The version stored now.
        current: u64,
    },
    /// The stow is leased to a device whose lease this request lacks.
    #[error("stow leased to another device")]
    StowLeaseLost,
    /// A commit was made against another epoch than the group's.
    #[error("commit conflict")]
    CommitConflict {
        /// The group's epoch now.
        current: u64,
    },
    /// A message was sent in another epoch than the group's.
    #[error("stale epoch")]
    StaleEpoch {
        /// The group's epoch now.
        current: u64,
    },
    /// The commit would leave the group without an admin key, or with
    /// more than it may have.
    #[error("no admin key would be left, or too many")]
    NoAdminLeft,
    /// The key is not one of the group's keys for this.
    #[error("not a key of the group for this")]
    NotAuthorized,
    /// The store is shutting down.
    #[error("store closed")]
    Closed,
    /// The backend failed (I/O, corruption, ...). The text holds no
    /// identifiers or payload data.
    #[error("storage backend: {0}")]
    Backend(String),
}

/// Storage of mailboxes and their waiting messages.
#[async_trait]
pub trait MailboxStore: Send + Sync + 'static {
    /// Creates a mailbox; idempotent for the same key.
    async fn create_mailbox(
        &self,
        id: MailboxId,
        recipient_key: PublicKey,
        now: u64,
    ) -> Result<Created, StoreError>;

    /// Looks mailboxes up; `None` for unknown ids, in the order given.
    async fn mailboxes(
        &self,
        ids: Vec<MailboxId>,
    ) -> Result<Vec<Option<MailboxRecord>>, StoreError>;

    /// Sets the sender key once; setting the same key again succeeds.
    async fn set_sender_key(&self, id: MailboxId, sender_key: PublicKey) -> Result<(), StoreError>;

    /// Stores a message durably and returns its sequence number.
    async fn append(
        &self,
        id: MailboxId,
        payload: Bytes,
        expires_at: u64,
        quota: Quota,
    ) -> Result<Seq, StoreError>;

    /// Reads messages after each cursor that have not expired at `now`.
    /// Unknown mailboxes read as empty.
    async fn fetch(
        &self,
        reads: Vec<(MailboxId, Seq)>,
        limits: FetchLimits,
        now: u64,
    ) -> Result<Vec<FetchBatch>, StoreError>;

    /// Removes every message up to each `up_to`; returns how many were
    /// removed per mailbox. Fails with `UnknownMailbox` (changing nothing)
    /// if any mailbox does not exist.
    async fn ack(&self, acks: Vec<(MailboxId, Seq)>) -> Result<Vec<u64>, StoreError>;

    /// Deletes a mailbox and everything in it; `false` if it did not exist.
    ///
    /// The id stays taken until `keep_until` (a tombstone): creating a
    /// mailbox with it is refused with [`StoreError::MailboxExists`], so
    /// whoever learns an invite link after its mailbox was deleted cannot
    /// re-create the mailbox and sit in the middle. [`MailboxStore::expire`]
    /// forgets tombstones whose time has come.
    async fn delete_mailbox(&self, id: MailboxId, keep_until: u64) -> Result<bool, StoreError>;

    /// Removes messages that expired at or before `now`; returns how many.
    async fn expire(&self, now: u64) -> Result<u64, StoreError>;

    /// Deposits (or, for the same owner, replaces) a canary. A waiting
    /// canary reserves one message and its payload's bytes in its mailbox's
    /// quota (so sends cannot fill the mailbox before it is released), and
    /// a mailbox holds at most `max_per_mailbox` of them.
    async fn put_canary(
        &self,
        canary: Canary,
        quota: Quota,
        max_per_mailbox: u64,
    ) -> Result<(), StoreError>;

    /// The keys of a canary.
    async fn canary_keys(&self, id: MailboxId) -> Result<Option<CanaryKeys>, StoreError>;

    /// Moves a canary's release time; `false` if there is none.
    async fn renew_canary(&self, id: MailboxId, release_at: u64) -> Result<bool, StoreError>;

    /// Removes a canary unreleased; `false` if there was none.
    async fn delete_canary(&self, id: MailboxId) -> Result<bool, StoreError>;

    /// Releases every canary due at `now` (or fires just `only`, whatever
    /// its time, releasing its fire payload when it has one): its payload is
    /// appended to its mailbox (like a send) and the canary is
    /// removed, in one transaction, oldest first. A canary whose mailbox is
    /// gone is dropped; one whose mailbox is still full (its quota was
    /// lowered since) is postponed by [`CANARY_RETRY_SECS`], so it never
    /// holds back the canaries behind it.
    async fn release_canaries(
        &self,
        now: u64,
        only: Option<MailboxId>,
        expires_at: u64,
        quota: Quota,
    ) -> Result<Vec<Released>, StoreError>;

    /// Stores a stow record by compare-and-swap (see [`StowPut`]) once it
    /// is durable.
    async fn put_stow(&self, put: StowPut) -> Result<(), StoreError>;

    /// A stow's keys and state, without its record.
    async fn stow_state(&self, locator: MailboxId) -> Result<Option<StowState>, StoreError>;

    /// Claims a stow for the device whose lease hash is `lease` (see
    /// [`Claim`]): a wrong access hash counts a failure, and the record is
    /// deleted at `max_failures`.
    async fn claim_stow(
        &self,
        locator: MailboxId,
        access: [u8; 32],
        lease: [u8; 32],
        takeover: bool,
        max_failures: u32,
    ) -> Result<Claim, StoreError>;

    /// Deletes a stow; `false` if there was none.
    async fn delete_stow(&self, locator: MailboxId) -> Result<bool, StoreError>;

    /// Creates a group mailbox; idempotent for the same keys. Its id shares
    /// the mailboxes' namespace and tombstones.
    async fn create_group(&self, group: NewGroup) -> Result<Created, StoreError>;

    /// A group's keys and epoch.
    async fn group(&self, id: MailboxId) -> Result<Option<GroupRecord>, StoreError>;

    /// Appends a message sent in `post.epoch` with `post.write`: refused
    /// with [`StoreError::StaleEpoch`] once a commit has moved the group on
    /// or replaced the write key.
    async fn post_group(&self, post: GroupPost) -> Result<Seq, StoreError>;

    /// Appends a commit made against `put.expected` and applies its key
    /// changes, in one transaction: refused with
    /// [`StoreError::CommitConflict`] unless the group is at that epoch, and
    /// with [`StoreError::NotAuthorized`] unless `put.admin` is one of its
    /// admin keys. The same commit sent again (same payload, key changes
    /// and admin key, same epoch) gets the answer it got the first time,
    /// even after later commits, for as long as its entry is kept, so a
    /// retry never makes a second one.
    async fn commit_group(&self, put: CommitPut) -> Result<Committed, StoreError>;

    /// Reads, with the read key `key`, the entries after `after` that have
    /// not expired at `now` (an old read key: none past the commit that
    /// replaced it). A key that is not a read key of the group is refused
    /// with [`StoreError::NotAuthorized`], in the same transaction.
    async fn fetch_group(
        &self,
        id: MailboxId,
        key: PublicKey,
        after: Seq,
        limits: FetchLimits,
        now: u64,
    ) -> Result<GroupBatch, StoreError>;

    /// Deletes a group mailbox and its log; `false` if it did not exist.
    /// Its id stays taken until `keep_until`, as a mailbox's does.
    async fn delete_group(&self, id: MailboxId, keep_until: u64) -> Result<bool, StoreError>;
}

/// A stow write: accepted only if the stored version is `expected` (0: no
/// record yet), `version` is above it, and, when the record is leased,
/// `lease` is that lease's hash. An account's record goes up by one at
/// each write; a witness of it (on another relay) jumps to the version it
/// witnesses. The lease is kept when
/// `keep_lease` (a checkpoint by the device that holds it), else released
/// (a stow: the device wipes itself).
#[derive(Clone)]
pub struct StowPut {
    /// Where the record lives (derived from the phrase and the relay).
    pub locator: MailboxId,
    /// Key that signs every request about the record.
    pub owner: PublicKey,
    /// SHA-256 of the access token a claim must present.
    pub access: [u8; 32],
    /// The version the writer last saw.
    pub expected: u64,
    /// The new version (above `expected`).
    pub version: u64,
    /// SHA-256 of the writer's lease token, if it holds one.
    pub lease: Option<[u8; 32]>,
    /// Keep the lease (checkpoint) or release it (stow).
    pub keep_lease: bool,
    /// The sealed record.
    pub record: Bytes,
    /// Unix seconds.
    pub now: u64,
}

impl std::fmt::Debug for StowPut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StowPut")
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

/// A stow as the relay sees it, without the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StowState {
    /// Key that signs every request about the record.
    pub owner: PublicKey,
    /// The current version.
    pub version: u64,
    /// SHA-256 of the stored record.
    pub digest: [u8; 32],
    /// SHA-256 of the lease token of the device that holds it, if any.
    pub lease: Option<[u8; 32]>,
    /// Wrong access tokens since the last good claim.
    pub failures: u32,
}

/// What a claim got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The record, now leased to the claimant.
    Granted {
        /// Its version.
        version: u64,
        /// The sealed record.
        record: Bytes,
    },
    /// No record (or it was just deleted after too many wrong tokens).
    NotFound,
    /// A wrong access token; this many tries are left.
    WrongAccess {
        /// Tries left before the record is deleted.
        left: u32,
    },
    /// Another device holds the lease (and this was no takeover).
    Leased,
}

/// How long a canary that could not be released waits before the next try.
pub const CANARY_RETRY_SECS: u64 = 300;

/// A dead-man switch: a sealed alert the relay delivers at `release_at`
/// unless its owner renews it first. The relay cannot read the payload; it
/// learns the target mailbox, the release time, and when it is renewed.
#[derive(Clone)]
pub struct Canary {
    /// Random id chosen by the owner.
    pub id: MailboxId,
    /// Key that authorizes renew, fire and delete.
    pub owner: PublicKey,
    /// Where the payload goes when released.
    pub mailbox: MailboxId,
    /// Unix seconds.
    pub release_at: u64,
    /// The padded, sealed alert.
    pub payload: Bytes,
    /// Key that may only fire the canary (release it now).
    pub fire_key: Option<PublicKey>,
    /// What a fire releases instead of `payload` (same size).
    pub fire_payload: Option<Bytes>,
}

/// Who may act on a canary.
#[derive(Debug, Clone, Copy)]
pub struct CanaryKeys {
    /// Renews, replaces, deletes.
    pub owner: PublicKey,
    /// Only fires.
    pub fire: Option<PublicKey>,
}

impl std::fmt::Debug for Canary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Canary")
            .field("release_at", &self.release_at)
            .finish_non_exhaustive()
    }
}

/// A released canary, now a message in its mailbox.
#[derive(Clone)]
pub struct Released {
    /// The mailbox.
    pub mailbox: MailboxId,
    /// Its sequence number there.
    pub seq: Seq,
    /// The payload.
    pub payload: Bytes,
}
