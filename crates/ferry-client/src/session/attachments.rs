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
use ferry_proto::MailboxId;
use ferry_vault::VaultError;
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{Change, Session, SessionError, now};
use crate::transfer::{
    self, BlobClient, Progress, RetryPolicy, Source, TransferError, TransferStats,
};

/// Vault blob holding the unfinished uploads.
const UPLOADS_BLOB: &str = "uploads";
/// Format of the pending uploads.
const UPLOADS_VERSION: u8 = 1;

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
        /// Metadata removed as it is read.
        #[serde(default)]
        patches: Vec<crate::transfer::Patch>,
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
    /// The process working on it; another live process leaves it alone (so
    /// a `sync` never finishes an upload a running `send-file` is doing,
    /// which would send the message twice).
    #[serde(default)]
    owner: Option<u32>,
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn read_pending(tx: &ferry_vault::Tx<'_>) -> Result<Vec<PendingUpload>, VaultError> {
    Ok(tx
        .json::<Vec<PendingUpload>>(UPLOADS_BLOB, UPLOADS_VERSION)?
        .unwrap_or_default())
}

fn write_pending(tx: &ferry_vault::Tx<'_>, list: &[PendingUpload]) -> Result<(), VaultError> {
    if list.is_empty() {
        return tx.delete_blob(UPLOADS_BLOB);
    }
    tx.put_json(UPLOADS_BLOB, UPLOADS_VERSION, &list)
}

/// Removes the pending upload of `blob`, inside the caller's transaction.
pub(super) fn forget_upload(tx: &ferry_vault::Tx<'_>, blob: MailboxId) -> Result<(), VaultError> {
    let mut list = read_pending(tx)?;
    list.retain(|p| p.attachment.blob != blob);
    write_pending(tx, &list)
}

impl PendingSource {
    fn from_source(s: &Source) -> Self {
        match s {
            Source::File {
                path,
                size,
                modified,
                patches,
            } => Self::File {
                path: path.as_os_str().as_bytes().to_vec(),
                size: *size,
                modified: modified
                    .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
                    .map(|d| (d.as_secs(), d.subsec_nanos())),
                patches: patches.to_vec(),
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
                patches,
            } => Source::File {
                path: PathBuf::from(std::ffi::OsString::from_vec(path.clone())),
                size: *size,
                modified: modified.map(|(s, n)| UNIX_EPOCH + Duration::new(s, n)),
                patches: Arc::new(patches.clone()),
            },
            Self::Memory(b) => Source::Memory(Arc::new(Zeroizing::new(b.clone()))),
        }
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

impl Session {
    /// Reads, changes and writes the pending uploads in one transaction.
    fn edit_pending<T>(
        &mut self,
        f: impl FnOnce(&mut Vec<PendingUpload>) -> T,
    ) -> Result<T, SessionError> {
        let mut out = None;
        self.vault.transaction(|tx| {
            let mut list = read_pending(tx)?;
            out = Some(f(&mut list));
            write_pending(tx, &list)
        })?;
        out.ok_or_else(|| SessionError::Vault(VaultError::Db("no result".into())))
    }

    /// The blob client of `relay`: the same transport (learned clock, and
    /// the access token on the profile's own relay) as its API client.
    pub(super) fn blob_client(&mut self, relay: &str) -> Result<BlobClient, SessionError> {
        Ok(BlobClient::over(self.relay(relay)?.transport().clone()))
    }

    /// Deletes an attachment's blob at its relay, ignoring failures.
    pub(super) async fn delete_blob(&mut self, a: &AttachmentRef) {
        if let Ok(c) = self.blob_client(&a.relay) {
            let _ = c.delete(a.blob).await;
        }
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
    ) -> Result<(HistoryEntry, TransferStats), SessionError> {
        // A group's file goes once to the group's relay, its creation
        // signed with the group's write key.
        let group = self.is_group(alias);
        let (relay, mailbox, sender, compromised) = if group {
            let (relay, mailbox, write) = self.engine().group_attachment_upload(alias)?;
            (relay, mailbox, write, false)
        } else {
            let engine = self.engine();
            let (relay, mailbox, sender) = engine.attachment_upload(alias)?;
            let compromised = engine
                .contact(alias)
                .is_some_and(|c| c.compromised.is_some());
            (relay, mailbox, sender, compromised)
        };
        if compromised && !force {
            return Err(CoreError::Compromised.into());
        }
        let key = sender.mailbox_key();
        let client = self.blob_client(&relay)?;
        let layout = Layout::new(source.size()).map_err(TransferError::from)?;
        let max_blob = client.max_size().await.map_err(TransferError::from)?;
        // The largest file this relay takes (0: it did not say).
        let max_file = max_blob.map(max_file_for).unwrap_or(0);
        if max_blob.is_some_and(|max| layout.blob_len() > max) {
            return Err(TransferError::TooLarge {
                size: source.size(),
                max: max_file,
            }
            .into());
        }
        let created = if group {
            client
                .create_for_group(layout.blob_len(), (mailbox, &key))
                .await
        } else {
            client
                .create(layout.blob_len(), Some((mailbox, &key)))
                .await
        };
        let (blob, token) = created.map_err(|e| match e.code() {
            Some(ferry_proto::ErrorCode::BodyTooLarge) => TransferError::TooLarge {
                size: source.size(),
                max: max_file,
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
            owner: Some(std::process::id()),
        };
        self.edit_pending(|list| list.push(pending))?;
        self.finish_upload(blob, progress).await
    }

    /// Uploads the pending upload of `blob` and queues its message.
    async fn finish_upload(
        &mut self,
        blob: MailboxId,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<(HistoryEntry, TransferStats), SessionError> {
        let found = self.edit_pending(|list| {
            list.iter().find(|p| p.attachment.blob == blob).map(|p| {
                (
                    p.attachment.clone(),
                    p.source.to_source(),
                    p.alias.clone(),
                    p.view_once,
                    p.force,
                )
            })
        })?;
        let (attachment, source, alias, view_once, force) = found
            .ok_or_else(|| SessionError::Core(CoreError::State("no pending upload".into())))?;
        let client = self.blob_client(&attachment.relay)?;
        let hub = &mut self.hub;
        let result = transfer::upload(
            &client,
            blob,
            &attachment.key,
            &source,
            RetryPolicy::default(),
            &mut |p| {
                progress(p);
                hub.emit(super::Event::Transfer(p));
            },
        )
        .await;
        let (digest, stats) = match result {
            Ok(v) => v,
            Err(
                e @ (TransferError::FileChanged
                | TransferError::Gone
                | TransferError::TooLarge { .. }
                | TransferError::Attachment(_)),
            ) => {
                // It can never complete: forget it and free the relay.
                self.edit_pending(|list| list.retain(|p| p.attachment.blob != blob))?;
                let _ = client.delete(blob).await;
                return Err(e.into());
            }
            // Kept (interrupted, relay refusing or full, local I/O): the
            // next sync resumes it.
            Err(e) => return Err(e.into()),
        };
        let mut attachment = attachment;
        attachment.digest = digest.to_vec();
        let before = self.engine().outbox_last();
        let group = self.is_group(&alias);
        let entry = self.update(|e| {
            let (contact, entry) = if group {
                e.group_send_attachment(now(), &mut OsRng, &alias, attachment, view_once)?
            } else {
                e.send_attachment(now(), &mut OsRng, &alias, attachment, view_once, force)?
            };
            // The message is queued in the transaction that forgets the
            // pending upload: it is sent once, whatever happens.
            let mut changes = vec![Change::ForgetUpload(blob)];
            if !view_once {
                changes.push(Change::Insert(contact, entry.clone()));
            }
            Ok((entry, changes))
        })?;
        self.emit(super::Event::Sent {
            contact: alias.clone(),
            entry: entry.clone(),
        });
        self.track_sent(before, &alias, &entry.id);
        self.flush_or_fail().await?;
        Ok((entry, stats))
    }

    /// Resumes uploads an earlier run left unfinished (and no live process
    /// is working on); returns how many completed, or the first error after
    /// trying them all. A contact that no longer exists drops its upload.
    pub async fn resume_uploads(
        &mut self,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<usize, SessionError> {
        let me = std::process::id();
        let mut tried: Vec<MailboxId> = Vec::new();
        let mut done = 0;
        let mut first_error = None;
        loop {
            let claimed = self.edit_pending(|list| {
                let p = list.iter_mut().find(|p| {
                    !tried.contains(&p.attachment.blob)
                        && p.owner.is_none_or(|o| o == me || !alive(o))
                })?;
                p.owner = Some(me);
                Some(p.attachment.blob)
            })?;
            let Some(blob) = claimed else {
                return match first_error {
                    Some(e) => Err(e),
                    None => Ok(done),
                };
            };
            tried.push(blob);
            match self.finish_upload(blob, progress).await {
                Ok(_) => done += 1,
                Err(SessionError::Core(_)) => {
                    // The contact is gone: drop the upload and its blob.
                    let gone = self.edit_pending(|list| {
                        let at = list.iter().position(|p| p.attachment.blob == blob)?;
                        Some(list.remove(at).attachment)
                    })?;
                    if let Some(a) = gone {
                        self.delete_blob(&a).await;
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
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
    ) -> Result<SaveOutcome, SessionError> {
        let entry = self
            .history(alias)?
            .into_iter()
            .find(|e| e.id == id)
            .ok_or(SessionError::NoAttachment)?;
        let a = entry.attachment.clone().ok_or(SessionError::NoAttachment)?;
        let path = if dest.is_dir() {
            dest.join(a.safe_name())
        } else {
            dest.to_owned()
        };
        let client = self.blob_client(&a.relay)?;
        let contact = self.contact_id(alias)?;
        // The partial file holds decrypted bytes: remembered, so that it is
        // shredded when its message goes, if the save never finishes.
        self.remember_download(contact, &entry.id, &transfer::part_path(&path, &a))?;
        let hub = &mut self.hub;
        let result = transfer::download(&client, &a, &path, RetryPolicy::default(), &mut |p| {
            progress(p);
            hub.emit(super::Event::Transfer(p));
        })
        .await;
        if result.is_ok() || !transfer::part_path(&path, &a).exists() {
            self.forget_download(contact, &entry.id)?;
        }
        let stats = result?;
        let mut destroyed = false;
        if entry.view_once {
            let contact = self.contact_id(alias)?;
            self.destroy_viewed(&[(contact, entry.id.clone())])?;
            self.delete_blob(&a).await;
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
