//! Blob storage for attachments: resumable uploads (tus 1.0) and ranged
//! downloads, behind [`BlobStore`] with a shared conformance suite.
//!
//! Blobs are opaque ciphertext (Padmé-padded by clients). An upload is
//! addressed by its unguessable 128-bit id (a tus upload URL is a
//! capability); a download also needs the read token returned at creation,
//! which the sender passes to the recipient inside the encrypted message.

pub mod conformance;
mod fs;

pub use fs::FsBlobStore;

use async_trait::async_trait;
use bytes::Bytes;
use ferry_proto::MailboxId;

/// A blob id (16 random bytes, same text form as mailbox ids).
pub type BlobId = MailboxId;

/// What is known of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobInfo {
    /// Declared total length.
    pub length: u64,
    /// Bytes received and stored so far.
    pub offset: u64,
    /// Unix seconds after which it is removed.
    pub expires_at: u64,
    /// SHA-256 of the read token.
    pub token_hash: [u8; 32],
}

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// No such blob (or it expired).
    #[error("unknown blob")]
    Unknown,
    /// The id exists already.
    #[error("blob exists")]
    Exists,
    /// The write does not start at the stored offset.
    #[error("offset mismatch")]
    OffsetMismatch,
    /// The write goes past the declared length.
    #[error("beyond declared length")]
    TooLong,
    /// Creating it would take the store past its budget.
    #[error("blob storage full")]
    StorageFull,
    /// Creating it would take its owner past the owner's budget.
    #[error("owner's blob budget exceeded")]
    OwnerBudget,
    /// Storage failed.
    #[error("blob storage: {0}")]
    Backend(String),
}

/// Who creates a blob and the budgets it must fit in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// The key that signed the creation (its public key's bytes).
    pub owner: [u8; 32],
    /// Most declared bytes of all live blobs.
    pub total: u64,
    /// Most declared bytes of the live blobs of one owner.
    pub per_owner: u64,
}

impl Reservation {
    /// Only a total budget (an anonymous owner without a budget of its own).
    pub fn total(total: u64) -> Self {
        Self {
            owner: [0; 32],
            total,
            per_owner: u64::MAX,
        }
    }
}

/// Storage of blobs.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Declares a new blob of `length` bytes, refused with
    /// [`BlobError::StorageFull`] if the declared lengths of all live blobs
    /// would then exceed the total budget, or [`BlobError::OwnerBudget`] if
    /// those of the blobs created by the same owner would exceed the owner's
    /// (both checked and reserved atomically, and counted again from what
    /// is stored when the store opens).
    async fn create(
        &self,
        id: BlobId,
        length: u64,
        token_hash: [u8; 32],
        expires_at: u64,
        reservation: Reservation,
    ) -> Result<(), BlobError>;
    /// Declared lengths of all live blobs (what counts against the budget).
    async fn reserved(&self) -> Result<u64, BlobError>;
    /// The blob's state.
    async fn info(&self, id: BlobId) -> Result<Option<BlobInfo>, BlobError>;
    /// Appends `data` at `offset` (which must be the current offset);
    /// returns the new offset. Not durable until [`BlobStore::sync`].
    async fn append(&self, id: BlobId, offset: u64, data: Bytes) -> Result<u64, BlobError>;
    /// Makes appended data durable.
    async fn sync(&self, id: BlobId) -> Result<(), BlobError>;
    /// Reads up to `len` bytes from `start` (of what is stored).
    async fn read(&self, id: BlobId, start: u64, len: usize) -> Result<Bytes, BlobError>;
    /// Removes a blob; `false` if there was none.
    async fn delete(&self, id: BlobId) -> Result<bool, BlobError>;
    /// Removes blobs expired at `now`; returns how many.
    async fn expire(&self, now: u64) -> Result<u64, BlobError>;
}
