//! Unfinished downloads: a `save` cut short leaves a partial file of
//! decrypted bytes next to its destination, to resume later. The session
//! remembers each one in the vault, and once its message is gone (expired,
//! deleted for both, viewed once) it overwrites and removes the partial
//! file, so a message's plaintext does not outlive it on disk.

use std::path::PathBuf;

use ferry_vault::{Vault, VaultError};
use serde::{Deserialize, Serialize};

use super::{Session, SessionError};

/// Vault blob holding the unfinished downloads.
const DOWNLOADS_BLOB: &str = "downloads";
/// Format of the list.
const DOWNLOADS_VERSION: u8 = 1;

#[derive(Serialize, Deserialize, PartialEq, Eq)]
struct PendingDownload {
    contact: u64,
    id: String,
    /// The partial file's path (its bytes, as the OS gives them).
    #[serde(with = "ferry_proto::b64::bytes")]
    part: Vec<u8>,
}

impl PendingDownload {
    fn path(&self) -> PathBuf {
        use std::os::unix::ffi::OsStringExt as _;
        PathBuf::from(std::ffi::OsString::from_vec(self.part.clone()))
    }
}

fn read(vault: &Vault) -> Result<Vec<PendingDownload>, VaultError> {
    Ok(vault
        .json::<Vec<PendingDownload>>(DOWNLOADS_BLOB, DOWNLOADS_VERSION)?
        .unwrap_or_default())
}

fn write(vault: &mut Vault, list: &[PendingDownload]) -> Result<(), VaultError> {
    vault.transaction(|tx| {
        if list.is_empty() {
            tx.delete_blob(DOWNLOADS_BLOB)
        } else {
            tx.put_json(DOWNLOADS_BLOB, DOWNLOADS_VERSION, &list)
        }
    })
}

/// Overwrites a partial file with zeros, syncs it and removes it (best
/// effort: on flash storage the old blocks may survive the overwrite).
fn shred(path: &std::path::Path) {
    use std::io::Write as _;
    if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let zeros = vec![0u8; 64 * 1024];
        let mut left = len;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            if f.write_all(&zeros[..n]).is_err() {
                break;
            }
            left -= n as u64;
        }
        let _ = f.sync_all();
    }
    let _ = std::fs::remove_file(path);
}

impl Session {
    /// Remembers that message `id` of `contact` is being saved through the
    /// partial file `part`.
    pub(super) fn remember_download(
        &mut self,
        contact: u64,
        id: &str,
        part: &std::path::Path,
    ) -> Result<(), SessionError> {
        use std::os::unix::ffi::OsStrExt as _;
        let entry = PendingDownload {
            contact,
            id: id.to_owned(),
            part: part.as_os_str().as_bytes().to_vec(),
        };
        let mut list = read(&self.vault)?;
        if !list.contains(&entry) {
            list.push(entry);
            write(&mut self.vault, &list)?;
        }
        Ok(())
    }

    /// Forgets a download that finished (or left no partial file).
    pub(super) fn forget_download(&mut self, contact: u64, id: &str) -> Result<(), SessionError> {
        let mut list = read(&self.vault)?;
        let before = list.len();
        list.retain(|d| !(d.contact == contact && d.id == id));
        if list.len() != before {
            write(&mut self.vault, &list)?;
        }
        Ok(())
    }

    /// Shreds the partial files of messages that no longer exist; returns
    /// how many.
    pub(super) fn shred_orphan_downloads(&mut self) -> Result<usize, SessionError> {
        let list = read(&self.vault)?;
        if list.is_empty() {
            return Ok(0);
        }
        let mut keep = Vec::new();
        let mut shredded = 0;
        for d in list {
            let alive = self
                .vault
                .messages(d.contact)?
                .iter()
                .filter_map(|r| ferry_core::HistoryEntry::from_record(r).ok())
                .any(|e| e.id == d.id);
            if alive && d.path().exists() {
                keep.push(d);
            } else {
                shred(&d.path());
                shredded += 1;
            }
        }
        if shredded > 0 {
            write(&mut self.vault, &keep)?;
        }
        Ok(shredded)
    }
}
