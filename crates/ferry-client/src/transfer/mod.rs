//! Attachment transfers: a tus 1.0 client for the relay's blob store, and
//! the upload and download drivers that stream a file through
//! [`ferry_core::attachment`] in constant memory and resume after any
//! interruption.
//!
//! Upload: one `PATCH` per part of [`PART_SEGMENTS`] sealed segments, so at
//! most one part is ever unconfirmed; after a failure the driver asks the
//! relay for its offset (`HEAD`) and goes on from there, re-sealing only
//! the segment that holds it. Sealing is deterministic for a given key and
//! position, so re-sealed bytes equal the bytes the relay already has.
//!
//! Download: a ranged `GET` from the first segment not yet written; each
//! segment is authenticated before its plaintext touches the disk, the
//! plaintext goes to `PATH.<id>.ferry-part`, and only a file whose digest
//! matches is moved to `PATH` (never replacing an existing file). A
//! failure that is not an interruption removes the partial file.

use std::time::Duration;

use ferry_core::attachment::AttachmentError;

use crate::transport::ClientError;

mod blob_client;
mod download;
mod upload;

pub use blob_client::BlobClient;
pub use download::{download, part_path};
pub use upload::{Patch, Source, upload};

/// Sealed segments per upload `PATCH`: the most an interruption can make
/// the client send twice (about 4 MiB).
pub const PART_SEGMENTS: u64 = 64;
const TUS: &str = "1.0.0";

/// Why a transfer failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// The relay refused or could not be reached.
    #[error(transparent)]
    Relay(#[from] ClientError),
    /// The blob is not (or no longer) on the relay.
    #[error("the attachment is no longer on the relay (blobs expire after 48 hours by default)")]
    Gone,
    /// The file is larger than the relay accepts.
    #[error("file is {size} bytes; this relay accepts attachments up to {} bytes", if *max > 0 { max.to_string() } else { "fewer".into() })]
    TooLarge {
        /// File size.
        size: u64,
        /// Largest file the relay takes (0 if it did not say).
        max: u64,
    },
    /// The relay has no room for attachments now.
    #[error("the relay's attachment storage is full; try again later")]
    RelayFull,
    /// The source file changed while it was being sent.
    #[error("the file changed while it was being sent; send it again")]
    FileChanged,
    /// Decryption or digest check failed.
    #[error(transparent)]
    Attachment(#[from] AttachmentError),
    /// The destination exists.
    #[error("the destination already exists; choose another path")]
    Exists,
    /// Reading or writing a local file failed.
    #[error("local file: {0}")]
    Io(String),
    /// The relay stayed unreachable; the transfer can be resumed later.
    #[error(
        "transfer interrupted at {done} of {total} bytes; run the same command again to resume"
    )]
    Interrupted {
        /// Bytes confirmed so far.
        done: u64,
        /// Total bytes.
        total: u64,
    },
}

/// The relay's `Upload-Offset` answer.
fn upload_offset(resp: &reqwest::Response) -> Result<u64, ClientError> {
    resp.headers()
        .get("upload-offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ClientError::Protocol("no upload offset".into()))
}

fn io(e: std::io::Error) -> TransferError {
    TransferError::Io(e.kind().to_string())
}

/// What a transfer reports while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Bytes of the blob transferred so far, of `total`.
    Bytes {
        /// Done.
        done: u64,
        /// Total blob bytes.
        total: u64,
    },
    /// The connection broke; resuming from `offset`.
    Resumed {
        /// Where the transfer goes on.
        offset: u64,
    },
}

/// Figures of a finished transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferStats {
    /// Blob size.
    pub blob_len: u64,
    /// Blob bytes put on (or taken off) the wire, counting repeats.
    pub wire_bytes: u64,
    /// How many times the transfer resumed after an interruption.
    pub resumes: u32,
}

/// How long a transfer keeps trying without progress.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Consecutive failed attempts (without any progress) before giving up.
    pub attempts: u32,
    /// First pause; doubles up to `max_delay`.
    pub delay: Duration,
    /// Longest pause.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 12,
            delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(3),
        }
    }
}
