//! Filesystem blob backend: one data file and one small metadata file per
//! blob under `DIR/blobs`. The stored offset is the data file's length, which
//! after a crash is still a prefix of what was sent, so tus resumes from it.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use super::{BlobError, BlobId, BlobInfo, BlobStore};

/// Blobs as files.
pub struct FsBlobStore {
    dir: PathBuf,
    /// Declared lengths of all live blobs (counted at open, kept since).
    reserved: std::sync::Mutex<u64>,
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
        let mut store = Self {
            dir: dir.to_owned(),
            reserved: std::sync::Mutex::new(0),
        };
        let mut total = 0u64;
        for id in store.ids()? {
            if let Some((length, _, _)) = store.read_meta(&id)? {
                total = total.saturating_add(length);
            }
        }
        store.reserved = std::sync::Mutex::new(total);
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

    fn adjust(&self, f: impl FnOnce(u64) -> Option<u64>) -> bool {
        let mut r = self.reserved.lock().unwrap_or_else(|e| e.into_inner());
        match f(*r) {
            Some(v) => {
                *r = v;
                true
            }
            None => false,
        }
    }

    fn data(&self, id: &BlobId) -> PathBuf {
        self.dir.join(hex(id.as_bytes()))
    }

    fn meta(&self, id: &BlobId) -> PathBuf {
        self.dir.join(format!("{}.meta", hex(id.as_bytes())))
    }

    fn read_meta(&self, id: &BlobId) -> Result<Option<(u64, u64, [u8; 32])>, BlobError> {
        let bytes = match std::fs::read(self.meta(id)) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        if bytes.len() != 48 {
            return Err(BlobError::Backend("damaged metadata".into()));
        }
        let mut l = [0u8; 8];
        l.copy_from_slice(&bytes[..8]);
        let mut e = [0u8; 8];
        e.copy_from_slice(&bytes[8..16]);
        let mut t = [0u8; 32];
        t.copy_from_slice(&bytes[16..]);
        Ok(Some((u64::from_be_bytes(l), u64::from_be_bytes(e), t)))
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
        budget: u64,
    ) -> Result<(), BlobError> {
        let reserved = self.adjust(|r| r.checked_add(length).filter(|&after| after <= budget));
        if !reserved {
            return Err(BlobError::StorageFull);
        }
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
            self.adjust(|r| Some(r.saturating_sub(length)));
        }
        created
    }

    async fn reserved(&self) -> Result<u64, BlobError> {
        Ok(*self.reserved.lock().unwrap_or_else(|e| e.into_inner()))
    }

    async fn info(&self, id: BlobId) -> Result<Option<BlobInfo>, BlobError> {
        let Some((length, expires_at, token_hash)) = self.read_meta(&id)? else {
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
        let length = self.read_meta(&id)?.map(|(l, _, _)| l);
        let (data, meta) = (self.data(&id), self.meta(&id));
        let existed = blocking(move || {
            let existed = std::fs::remove_file(&meta).is_ok();
            let _ = std::fs::remove_file(&data);
            Ok(existed)
        })
        .await?;
        if let (true, Some(l)) = (existed, length) {
            self.adjust(|r| Some(r.saturating_sub(l)));
        }
        Ok(existed)
    }

    async fn expire(&self, now: u64) -> Result<u64, BlobError> {
        let mut n = 0;
        for id in self.ids()? {
            if let Some((_, expires_at, _)) = self.read_meta(&id)?
                && expires_at <= now
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
