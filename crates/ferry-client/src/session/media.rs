//! Showing an attachment without writing it out: the whole file is
//! decrypted into memory (for photos, short videos and voice notes up to
//! [`MAX_INLINE`]), from a local copy of its sealed blob, fetched from the
//! relay on first use. The copy stays sealed under the attachment's key
//! (and under a slab key in the vault), so it plays after the relay has
//! dropped the blob; it is shredded as soon as its message is gone
//! (expired, deleted for both, viewed once).

use ferry_core::HistoryEntry;
use ferry_core::attachment::{AttachmentKind, AttachmentRef, SegmentCipher};
use ferry_vault::{Vault, VaultError};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use super::{Session, SessionError};
use crate::transfer::TransferError;

/// Largest attachment shown inline (larger ones are saved to a file).
pub const MAX_INLINE: u64 = 64 * 1024 * 1024;

/// Vault blob listing the local copies.
const INDEX_BLOB: &str = "media";
const INDEX_VERSION: u8 = 1;

#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
struct Copy {
    contact: u64,
    id: String,
    name: String,
}

/// A decrypted attachment, in memory only.
pub struct Media {
    /// The file's bytes.
    pub bytes: Zeroizing<Vec<u8>>,
    /// Media type the sender gave, if any (untrusted).
    pub mime: Option<String>,
    /// File or voice.
    pub kind: AttachmentKind,
    /// A file name safe to offer when saving (from the sender's name).
    pub name: String,
}

impl std::fmt::Debug for Media {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Media")
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

fn index(vault: &Vault) -> Result<Vec<Copy>, VaultError> {
    Ok(vault
        .json::<Vec<Copy>>(INDEX_BLOB, INDEX_VERSION)?
        .unwrap_or_default())
}

fn copy_name(a: &AttachmentRef) -> String {
    format!("media:{}", a.blob.to_b64())
}

/// Opens every segment of a sealed blob and checks the file's digest.
fn decrypt(a: &AttachmentRef, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SessionError> {
    let layout = a.layout().map_err(TransferError::from)?;
    if sealed.len() as u64 != layout.blob_len() {
        return Err(
            TransferError::Attachment(ferry_core::attachment::AttachmentError::Tampered(0)).into(),
        );
    }
    let cipher = SegmentCipher::new(&a.key, layout);
    let mut out = Zeroizing::new(Vec::with_capacity(
        usize::try_from(layout.size).unwrap_or(0),
    ));
    for i in 0..layout.segments {
        let from = usize::try_from(layout.blob_offset(i)).unwrap_or(usize::MAX);
        let len = usize::try_from(layout.plain_len(i) + 16).unwrap_or(usize::MAX);
        let seg = sealed
            .get(from..from.saturating_add(len))
            .ok_or(TransferError::Attachment(
                ferry_core::attachment::AttachmentError::Tampered(i),
            ))?;
        let mut buf = Zeroizing::new(seg.to_vec());
        cipher.open(i, &mut buf).map_err(TransferError::from)?;
        let real = usize::try_from(layout.real_len(i)).unwrap_or(0);
        out.extend_from_slice(&buf[..real.min(buf.len())]);
    }
    if Sha256::digest(&out[..]).as_slice() != a.digest.as_slice() {
        return Err(
            TransferError::Attachment(ferry_core::attachment::AttachmentError::Tampered(
                layout.segments,
            ))
            .into(),
        );
    }
    Ok(out)
}

impl Session {
    /// The attachment of message `id`, decrypted into memory for display
    /// (never written out in plaintext). A view-once attachment is not
    /// shown this way (it can only be saved, once).
    pub async fn open_media(&mut self, alias: &str, id: &str) -> Result<Media, SessionError> {
        let contact = self.contact_id(alias)?;
        let entry: HistoryEntry = self
            .history(alias)?
            .into_iter()
            .find(|e| e.id == id)
            .ok_or(SessionError::NoAttachment)?;
        let a = match (&entry.attachment, entry.view_once) {
            (Some(a), false) => (**a).clone(),
            _ => return Err(SessionError::NoAttachment),
        };
        if a.size > MAX_INLINE {
            return Err(TransferError::TooLarge {
                size: a.size,
                max: MAX_INLINE,
            }
            .into());
        }
        let name = copy_name(&a);
        let sealed = match self.vault.blob(&name)? {
            Some(s) => s,
            None => {
                let layout = a.layout().map_err(TransferError::from)?;
                let client = self.blob_client(&a.relay)?;
                let sealed = Zeroizing::new(
                    client
                        .fetch(a.blob, &a.token, layout.blob_len())
                        .await
                        .map_err(|e| match e.code() {
                            Some(ferry_proto::ErrorCode::NotFound) => TransferError::Gone,
                            _ => TransferError::Relay(e),
                        })?,
                );
                // Checked before it is kept.
                decrypt(&a, &sealed)?;
                let mut list = index(&self.vault)?;
                list.push(Copy {
                    contact,
                    id: id.to_owned(),
                    name: name.clone(),
                });
                self.vault.transaction(|tx| {
                    tx.put_blob(&name, &sealed)?;
                    tx.put_json(INDEX_BLOB, INDEX_VERSION, &list)
                })?;
                sealed
            }
        };
        Ok(Media {
            bytes: decrypt(&a, &sealed)?,
            mime: a.mime.clone(),
            kind: a.kind,
            name: a.safe_name(),
        })
    }

    /// A view-once photo, video or voice note, decrypted into memory for
    /// its one showing: the message is destroyed here in the same step
    /// (nothing is kept on this device; the caller shows it once).
    pub async fn open_media_once(&mut self, alias: &str, id: &str) -> Result<Media, SessionError> {
        let contact = self.contact_id(alias)?;
        let a = self
            .history(alias)?
            .into_iter()
            .find(|e| e.id == id && e.view_once)
            .and_then(|e| e.attachment)
            .ok_or(SessionError::NoAttachment)?;
        if a.size > MAX_INLINE {
            return Err(TransferError::TooLarge {
                size: a.size,
                max: MAX_INLINE,
            }
            .into());
        }
        let layout = a.layout().map_err(TransferError::from)?;
        let sealed = Zeroizing::new(
            self.blob_client(&a.relay)?
                .fetch(a.blob, &a.token, layout.blob_len())
                .await
                .map_err(|e| match e.code() {
                    Some(ferry_proto::ErrorCode::NotFound) => TransferError::Gone,
                    _ => TransferError::Relay(e),
                })?,
        );
        let bytes = decrypt(&a, &sealed)?;
        self.destroy_viewed(&[(contact, id.to_owned())])?;
        Ok(Media {
            bytes,
            mime: a.mime.clone(),
            kind: a.kind,
            name: a.safe_name(),
        })
    }

    /// Shreds the local copies of messages that no longer exist.
    pub(super) fn shred_orphan_media(&mut self) -> Result<usize, SessionError> {
        let list = index(&self.vault)?;
        if list.is_empty() {
            return Ok(0);
        }
        let mut keep = Vec::new();
        let mut gone = Vec::new();
        for c in list {
            let alive = self
                .vault
                .messages(c.contact)?
                .iter()
                .filter_map(|r| HistoryEntry::from_record(r).ok())
                .any(|e| e.id == c.id);
            if alive {
                keep.push(c);
            } else {
                gone.push(c);
            }
        }
        if gone.is_empty() {
            return Ok(0);
        }
        self.vault.transaction(|tx| {
            for c in &gone {
                tx.delete_blob(&c.name)?;
            }
            if keep.is_empty() {
                tx.delete_blob(INDEX_BLOB)
            } else {
                tx.put_json(INDEX_BLOB, INDEX_VERSION, &keep)
            }
        })?;
        Ok(gone.len())
    }
}
