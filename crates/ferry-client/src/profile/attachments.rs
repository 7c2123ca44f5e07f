//! Sending and saving attachments.
//!
//! Sending: the blob is created on the relay of the contact's mailbox, the
//! pending upload (with its key) is committed to the vault, the file is
//! uploaded, and only then the message with key and digest is queued — in
//! the same transaction that forgets the pending upload. An upload cut by a
//! crash or a long outage is resumed by the next `sync`.
//!
//! Saving: see [`crate::transfer::download`]. A view-once attachment can be
//! saved once; then its message (and key) is destroyed here and the blob is
//! deleted at the relay.

use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use ferry_core::attachment::{AttachmentKind, AttachmentRef, Layout};
use ferry_core::{CoreError, HistoryEntry, KeyBytes};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{Change, Profile, ProfileError, now};
use crate::transfer::{
    self, BlobClient, Progress, RetryPolicy, Source, TransferError, TransferStats,
};

/// Vault blob holding the unfinished uploads.
const UPLOADS_BLOB: &str = "uploads";

/// What the receiver is told about a file besides its bytes.
#[derive(Debug, Clone)]
pub struct FileMeta {
    /// File name shown to the receiver.
    pub name: String,
    /// Media type, if known.
    pub mime: Option<String>,
    /// File or voice.
    pub kind: AttachmentKind,
    /// Voice duration.
    pub duration_ms: Option<u64>,
}

/// A finished `save`.
#[derive(Debug)]
pub struct SaveOutcome {
    /// Where the file was written.
    pub path: PathBuf,
    /// Transfer figures.
    pub stats: TransferStats,
    /// The attachment was view-once and is now gone.
    pub destroyed: bool,
}

#[derive(Serialize, Deserialize)]
enum PendingSource {
    File {
        #[serde(with = "ferry_proto::b64::bytes")]
        path: Vec<u8>,
        size: u64,
        modified: Option<(u64, u32)>,
    },
    Memory(#[serde(with = "ferry_proto::b64::bytes")] Vec<u8>),
}

impl Drop for PendingSource {
    fn drop(&mut self) {
        if let Self::Memory(b) = self {
            zeroize::Zeroize::zeroize(b);
        }
    }
}

#[derive(Serialize, Deserialize)]
struct PendingUpload {
    alias: String,
    attachment: AttachmentRef,
    view_once: bool,
    force: bool,
    source: PendingSource,
}

impl PendingSource {
    fn from_source(s: &Source) -> Self {
        match s {
            Source::File {
                path,
                size,
                modified,
            } => Self::File {
                path: path.as_os_str().as_bytes().to_vec(),
                size: *size,
                modified: modified
                    .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
                    .map(|d| (d.as_secs(), d.subsec_nanos())),
            },
            Source::Memory(b) => Self::Memory(b.to_vec()),
        }
    }

    fn to_source(&self) -> Source {
        match self {
            Self::File {
                path,
                size,
                modified,
            } => Source::File {
                path: PathBuf::from(std::ffi::OsString::from_vec(path.clone())),
                size: *size,
                modified: modified.map(|(s, n)| UNIX_EPOCH + Duration::new(s, n)),
            },
            Self::Memory(b) => Source::Memory(Arc::new(Zeroizing::new(b.clone()))),
        }
    }
}

/// Deletes an attachment's blob at its relay, ignoring failures.
pub(super) async fn delete_blob(a: &AttachmentRef) {
    if let Ok(c) = BlobClient::new(&a.relay) {
        let _ = c.delete(a.blob).await;
    }
}

/// The largest file whose blob fits in `max_blob` bytes.
fn max_file_for(max_blob: u64) -> u64 {
    let (mut lo, mut hi) = (0u64, max_blob);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        match Layout::new(mid) {
            Ok(l) if l.blob_len() <= max_blob => lo = mid,
            _ => hi = mid - 1,
        }
    }
    lo
}

impl Profile {
    fn pending(&self) -> Result<Vec<PendingUpload>, ProfileError> {
        Ok(match self.vault.blob(UPLOADS_BLOB)? {
            Some(j) => serde_json::from_slice(&j)
                .map_err(|e| ProfileError::Core(CoreError::State(e.to_string())))?,
            None => Vec::new(),
        })
    }

    fn uploads_change(list: &[PendingUpload]) -> Result<Change, ProfileError> {
        if list.is_empty() {
            return Ok(Change::Blob(UPLOADS_BLOB, None));
        }
        let j = Zeroizing::new(
            serde_json::to_vec(list)
                .map_err(|e| ProfileError::Core(CoreError::State(e.to_string())))?,
        );
        Ok(Change::Blob(UPLOADS_BLOB, Some(j)))
    }

    fn blob_client(&self, relay: &str) -> Result<BlobClient, ProfileError> {
        let engine = self.read_engine()?;
        let token = (engine.relay() == relay)
            .then(|| engine.relay_token().map(str::to_owned))
            .flatten();
        Ok(BlobClient::new(relay)
            .map_err(|_| ProfileError::BadRelayUrl)?
            .with_access_token(token))
    }

    /// Encrypts `source` for `alias`, uploads it (resumably) and sends the
    /// message that carries its key. A view-once attachment is not kept
    /// here.
    pub async fn send_attachment(
        &mut self,
        alias: &str,
        source: Source,
        meta: FileMeta,
        view_once: bool,
        force: bool,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<(HistoryEntry, TransferStats), ProfileError> {
        let (relay, compromised) = {
            let engine = self.read_engine()?;
            let relay = engine.attachment_relay(alias)?;
            let compromised = engine
                .contact(alias)
                .is_some_and(|c| c.compromised.is_some());
            (relay, compromised)
        };
        if compromised && !force {
            return Err(CoreError::Compromised.into());
        }
        let client = self.blob_client(&relay)?;
        let layout = Layout::new(source.size()).map_err(TransferError::from)?;
        if let Some(max) = client.max_size().await.map_err(TransferError::from)?
            && layout.blob_len() > max
        {
            return Err(TransferError::TooLarge {
                size: source.size(),
                max: max_file_for(max),
            }
            .into());
        }
        let (blob, token) = client
            .create(layout.blob_len())
            .await
            .map_err(|e| match e.code() {
                Some(ferry_proto::ErrorCode::BodyTooLarge) => TransferError::TooLarge {
                    size: source.size(),
                    max: 0,
                },
                Some(ferry_proto::ErrorCode::BlobStorageFull) => TransferError::RelayFull,
                _ => TransferError::from(e),
            })?;
        let pending = PendingUpload {
            alias: alias.to_owned(),
            attachment: AttachmentRef {
                relay,
                blob,
                token,
                key: KeyBytes::random(&mut OsRng),
                size: source.size(),
                digest: Vec::new(),
                name: meta.name,
                mime: meta.mime,
                kind: meta.kind,
                duration_ms: meta.duration_ms,
            },
            view_once,
            force,
            source: PendingSource::from_source(&source),
        };
        let mut list = self.pending()?;
        list.push(pending);
        let change = Self::uploads_change(&list)?;
        self.update(|_| Ok(((), vec![change])))?;
        let idx = list.len() - 1;
        self.finish_upload(list, idx, &client, progress).await
    }

    /// Uploads pending entry `idx` and queues its message.
    async fn finish_upload(
        &mut self,
        mut list: Vec<PendingUpload>,
        idx: usize,
        client: &BlobClient,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<(HistoryEntry, TransferStats), ProfileError> {
        let p = list
            .get(idx)
            .ok_or_else(|| ProfileError::Core(CoreError::State("no pending upload".into())))?;
        let source = p.source.to_source();
        let result = transfer::upload(
            client,
            p.attachment.blob,
            &p.attachment.key,
            &source,
            RetryPolicy::default(),
            progress,
        )
        .await;
        let (digest, stats) = match result {
            Ok(v) => v,
            Err(e @ (TransferError::Interrupted { .. } | TransferError::Relay(_))) => {
                // Kept: the next sync resumes it.
                return Err(e.into());
            }
            Err(e) => {
                // It can never complete: forget it and free the relay.
                let blob = list.remove(idx).attachment.blob;
                let change = Self::uploads_change(&list)?;
                self.update(|_| Ok(((), vec![change])))?;
                let _ = client.delete(blob).await;
                return Err(e.into());
            }
        };
        let mut p = list.remove(idx);
        p.attachment.digest = digest.to_vec();
        // Drop it from the pending list as the stored list has it now.
        let mut stored = self.pending()?;
        stored.retain(|x| x.attachment.blob != p.attachment.blob);
        let forget = Self::uploads_change(&stored)?;
        let entry = self.update(|e| {
            let (contact, entry) = e.send_attachment(
                now(),
                &mut OsRng,
                &p.alias,
                p.attachment.clone(),
                p.view_once,
                p.force,
            )?;
            let mut changes = vec![forget];
            if !p.view_once {
                changes.push(Change::Insert(contact, entry.clone()));
            }
            Ok((entry, changes))
        })?;
        if let Some(e) = self.flush_outbox().await?.into_iter().next() {
            return Err(e.into());
        }
        Ok((entry, stats))
    }

    /// Resumes uploads an earlier run left unfinished; returns how many
    /// completed. A contact that no longer exists drops its upload.
    pub async fn resume_uploads(
        &mut self,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<usize, ProfileError> {
        let mut done = 0;
        loop {
            let list = self.pending()?;
            let Some(first) = list.first() else {
                return Ok(done);
            };
            let client = self.blob_client(&first.attachment.relay)?;
            match self.finish_upload(list, 0, &client, progress).await {
                Ok(_) => done += 1,
                Err(ProfileError::Core(_)) => {
                    // The contact is gone: drop the upload and its blob.
                    let mut list = self.pending()?;
                    if list.is_empty() {
                        return Ok(done);
                    }
                    let p = list.remove(0);
                    let change = Self::uploads_change(&list)?;
                    self.update(|_| Ok(((), vec![change])))?;
                    delete_blob(&p.attachment).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Downloads, checks and decrypts the attachment of message `id` into
    /// `dest` (a directory gets the sender's file name, made safe).
    pub async fn save_attachment(
        &mut self,
        alias: &str,
        id: &str,
        dest: &Path,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<SaveOutcome, ProfileError> {
        let entry = self
            .history(alias)?
            .into_iter()
            .find(|e| e.id == id)
            .ok_or(ProfileError::NoAttachment)?;
        let a = entry.attachment.clone().ok_or(ProfileError::NoAttachment)?;
        let path = if dest.is_dir() {
            dest.join(a.safe_name())
        } else {
            dest.to_owned()
        };
        let stats = transfer::download(&a, &path, RetryPolicy::default(), progress).await?;
        let mut destroyed = false;
        if entry.view_once {
            let contact = self
                .read_engine()?
                .contact(alias)
                .map(|c| c.id)
                .unwrap_or_default();
            self.destroy_viewed(&[(contact, entry.id.clone())])?;
            delete_blob(&a).await;
            destroyed = true;
        }
        Ok(SaveOutcome {
            path,
            stats,
            destroyed,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_relay_default_takes_exactly_files_up_to_2_gib() {
        let max = ferry_relay::RelayConfig::new(std::path::PathBuf::from("unused")).max_blob_size;
        assert_eq!(Layout::new(2 << 30).unwrap().blob_len(), max);
        assert_eq!(max_file_for(max), 2 << 30);
        assert!(Layout::new((2 << 30) + 1).unwrap().blob_len() > max);
        let small = max_file_for(1_000_000);
        assert!(Layout::new(small).unwrap().blob_len() <= 1_000_000);
        assert!(Layout::new(small + 1).unwrap().blob_len() > 1_000_000);
    }
}
