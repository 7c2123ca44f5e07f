//! Filesystem blob backend: one data file and one small metadata file per
//! blob under `DIR/blobs`. The stored offset is the data file's length, which
//! after a crash is still a prefix of what was sent, so tus resumes from it.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use super::{BlobError, BlobId, BlobInfo, BlobStore, Reservation};

/// Declared lengths of live blobs, in all and by owner.
#[derive(Default)]
struct Reserved {
    total: u64,
    by_owner: std::collections::HashMap<[u8; 32], u64>,
}

impl Reserved {
    fn add(&mut self, owner: [u8; 32], length: u64) {
        self.total = self.total.saturating_add(length);
        let o = self.by_owner.entry(owner).or_default();
        *o = o.saturating_add(length);
    }

    fn remove(&mut self, owner: [u8; 32], length: u64) {
        self.total = self.total.saturating_sub(length);
        if let Some(o) = self.by_owner.get_mut(&owner) {
            *o = o.saturating_sub(length);
            if *o == 0 {
                self.by_owner.remove(&owner);
            }
        }
    }
}

/// A blob's metadata file: length, expiry, read-token hash and owner.
/// Files written before owners were recorded (48 bytes) belong to the
/// all-zero owner.
struct Meta {
    length: u64,
    expires_at: u64,
    token_hash: [u8; 32],
    owner: [u8; 32],
}

/// Blobs as files.
pub struct FsBlobStore {
    dir: PathBuf,
    /// Declared lengths of live blobs (counted at open, kept since).
    reserved: std::sync::Mutex<Reserved>,
}

fn io(e: std::io::Error) -> BlobError {
    BlobError::Backend(e.kind().to_string())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl FsBlobStore {
    /// Opens (creating) `dir`.
    pub fn open(dir: &Path) -> Result<Self, BlobError> {
        std::fs::create_dir_all(dir).map_err(io)?;
        let store = Self {
            dir: dir.to_owned(),
            reserved: std::sync::Mutex::new(Reserved::default()),
        };
        let mut reserved = Reserved::default();
        for id in store.ids()? {
            if let Some(m) = store.read_meta(&id)? {
                reserved.add(m.owner, m.length);
            }
        }
        *store.reserved.lock().unwrap_or_else(|e| e.into_inner()) = reserved;
        Ok(store)
    }

    /// Ids of the blobs on disk.
    fn ids(&self) -> Result<Vec<BlobId>, BlobError> {
        let mut ids = Vec::new();
        for e in std::fs::read_dir(&self.dir).map_err(io)? {
            let e = e.map_err(io)?;
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(hexid) = name.strip_suffix(".meta") else {
                continue;
            };
            let Some(bytes) = (0..hexid.len())
                .step_by(2)
                .map(|i| {
                    hexid
                        .get(i..i + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                })
                .collect::<Option<Vec<u8>>>()
                .and_then(|v| <[u8; 16]>::try_from(v).ok())
            else {
                continue;
            };
            ids.push(BlobId::from_bytes(bytes));
        }
        Ok(ids)
    }

    fn reserved(&self) -> std::sync::MutexGuard<'_, Reserved> {
        self.reserved.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn data(&self, id: &BlobId) -> PathBuf {
        self.dir.join(hex(id.as_bytes()))
    }

    fn meta(&self, id: &BlobId) -> PathBuf {
        self.dir.join(format!("{}.meta", hex(id.as_bytes())))
    }

    fn read_meta(&self, id: &BlobId) -> Result<Option<Meta>, BlobError> {
        let bytes = match std::fs::read(self.meta(id)) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        if bytes.len() != 48 && bytes.len() != 80 {
            return Err(BlobError::Backend("damaged metadata".into()));
        }
        let mut l = [0u8; 8];
        l.copy_from_slice(&bytes[..8]);
        let mut e = [0u8; 8];
        e.copy_from_slice(&bytes[8..16]);
        let mut t = [0u8; 32];
        t.copy_from_slice(&bytes[16..48]);
        let mut owner = [0u8; 32];
        if let Some(o) = bytes.get(48..80) {
            owner.copy_from_slice(o);
        }
        Ok(Some(Meta {
            length: u64::from_be_bytes(l),
            expires_at: u64::from_be_bytes(e),
            token_hash: t,
            owner,
        }))
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BlobError> + Send + 'static,
) -> Result<T, BlobError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| BlobError::Backend("task failed".into()))?
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn create(
        &self,
        id: BlobId,
        length: u64,
        token_hash: [u8; 32],
        expires_at: u64,
        budget: Reservation,
    ) -> Result<(), BlobError> {
        {
            let mut r = self.reserved();
            if r.total
                .checked_add(length)
                .is_none_or(|after| after > budget.total)
            {
                return Err(BlobError::StorageFull);
            }
            let owned = r.by_owner.get(&budget.owner).copied().unwrap_or(0);
            if owned
                .checked_add(length)
                .is_none_or(|after| after > budget.per_owner)
            {
                return Err(BlobError::OwnerBudget);
            }
            r.add(budget.owner, length);
        }
        let owner = budget.owner;
        let (data, meta) = (self.data(&id), self.meta(&id));
        let created = blocking(move || {
            if meta.exists() {
                return Err(BlobError::Exists);
            }
            std::fs::File::create(&data)
                .map_err(io)?
                .sync_all()
                .map_err(io)?;
            let mut m = length.to_be_bytes().to_vec();
            m.extend_from_slice(&expires_at.to_be_bytes());
            m.extend_from_slice(&token_hash);
            m.extend_from_slice(&owner);
            let tmp = meta.with_extension("tmp");
            std::fs::write(&tmp, &m).map_err(io)?;
            std::fs::File::open(&tmp)
                .map_err(io)?
                .sync_all()
                .map_err(io)?;
            std::fs::rename(&tmp, &meta).map_err(io)
        })
        .await;
        if created.is_err() {
            self.reserved().remove(owner, length);
        }
        created
    }

    async fn reserved(&self) -> Result<u64, BlobError> {
        Ok(self.reserved().total)
    }

    async fn info(&self, id: BlobId) -> Result<Option<BlobInfo>, BlobError> {
        let Some(Meta {
            length,
            expires_at,
            token_hash,
            ..
        }) = self.read_meta(&id)?
        else {
            return Ok(None);
        };
        let offset = std::fs::metadata(self.data(&id))
            .map(|m| m.len())
            .unwrap_or(0);
        Ok(Some(BlobInfo {
            length,
            offset: offset.min(length),
            expires_at,
            token_hash,
        }))
    }

    async fn append(&self, id: BlobId, offset: u64, data: Bytes) -> Result<u64, BlobError> {
        let info = self.info(id).await?.ok_or(BlobError::Unknown)?;
        if offset != info.offset {
            return Err(BlobError::OffsetMismatch);
        }
        if offset.saturating_add(data.len() as u64) > info.length {
            return Err(BlobError::TooLong);
        }
        let path = self.data(&id);
        blocking(move || {
            use std::io::Write as _;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(io)?;
            f.write_all(&data).map_err(io)?;
            Ok(offset + data.len() as u64)
        })
        .await
    }

    async fn sync(&self, id: BlobId) -> Result<(), BlobError> {
        let path = self.data(&id);
        blocking(move || {
            std::fs::File::open(&path)
                .map_err(io)?
                .sync_data()
                .map_err(io)
        })
        .await
    }

    async fn read(&self, id: BlobId, start: u64, len: usize) -> Result<Bytes, BlobError> {
        let path = self.data(&id);
        blocking(move || {
            use std::os::unix::fs::FileExt as _;
            let f = std::fs::File::open(&path).map_err(|_| BlobError::Unknown)?;
            let mut buf = vec![0u8; len];
            let mut got = 0;
            while got < len {
                let n = f.read_at(&mut buf[got..], start + got as u64).map_err(io)?;
                if n == 0 {
                    break;
                }
                got += n;
            }
            buf.truncate(got);
            Ok(Bytes::from(buf))
        })
        .await
    }

    async fn delete(&self, id: BlobId) -> Result<bool, BlobError> {
        let meta_then = self.read_meta(&id)?;
        let (data, meta) = (self.data(&id), self.meta(&id));
        let existed = blocking(move || {
            let existed = std::fs::remove_file(&meta).is_ok();
            let _ = std::fs::remove_file(&data);
            Ok(existed)
        })
        .await?;
        if let (true, Some(m)) = (existed, meta_then) {
            self.reserved().remove(m.owner, m.length);
        }
        Ok(existed)
    }

    async fn expire(&self, now: u64) -> Result<u64, BlobError> {
        let mut n = 0;
        for id in self.ids()? {
            if let Some(m) = self.read_meta(&id)?
                && m.expires_at <= now
                && self.delete(id).await?
            {
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    async fn make() -> (super::FsBlobStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        (
            super::FsBlobStore::open(&dir.path().join("blobs")).unwrap(),
            dir,
        )
    }

    crate::blob_store_conformance!(super::make);
}
