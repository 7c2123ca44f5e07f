//! The key slab: one 32-byte key per stored message, in a file of its own
//! that is overwritten in place.
//!
//! Message records in the database are encrypted (XChaCha20-Poly1305) under
//! their slab key. Destroying a message overwrites its slab entry with fresh
//! random bytes and syncs: copies of the record that survive elsewhere (freed
//! journal blocks, old database pages) can no longer be decrypted, even by
//! someone who later learns the passphrase. Free entries hold random bytes
//! too, so the file is uniformly random whatever it holds.

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::Path;

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::VaultError;

/// Bytes per entry.
pub(crate) const ENTRY: u64 = 32;
/// The slab grows by this many entries at a time.
pub(crate) const CHUNK: u64 = 256;

pub(crate) struct Slab {
    file: File,
}

impl Slab {
    /// Creates a slab of `entries` random entries (truncating any file).
    pub(crate) fn create(
        path: &Path,
        entries: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, VaultError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        let s = Self { file };
        s.fill_random(0, entries * ENTRY, rng)?;
        s.file.sync_all()?;
        Ok(s)
    }

    pub(crate) fn open(path: &Path) -> Result<Self, VaultError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)?;
        Ok(Self { file })
    }

    pub(crate) fn len_bytes(&self) -> Result<u64, VaultError> {
        Ok(self.file.metadata()?.len())
    }

    fn fill_random(
        &self,
        from: u64,
        to: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(), VaultError> {
        let mut buf = Zeroizing::new(vec![0u8; 64 * 1024]);
        let mut at = from;
        while at < to {
            let n = usize::try_from((to - at).min(buf.len() as u64)).unwrap_or(buf.len());
            rng.fill_bytes(&mut buf[..n]);
            self.file.write_all_at(&buf[..n], at)?;
            at += n as u64;
        }
        Ok(())
    }

    /// Grows the slab with random entries to at least `bytes`.
    pub(crate) fn grow_to(
        &self,
        bytes: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(), VaultError> {
        let len = self.len_bytes()?;
        if bytes > len {
            self.fill_random(len, bytes, rng)?;
        }
        Ok(())
    }

    /// Writes a fresh random key at `idx` (growing the file) and returns it.
    pub(crate) fn fresh(
        &self,
        idx: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Zeroizing<[u8; 32]>, VaultError> {
        let need = (idx + 1) * ENTRY;
        let len = self.len_bytes()?;
        if need > len {
            let chunked = need.div_ceil(CHUNK * ENTRY) * CHUNK * ENTRY;
            self.fill_random(len, chunked, rng)?;
        }
        let mut key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(key.as_mut());
        self.file.write_all_at(key.as_ref(), idx * ENTRY)?;
        Ok(key)
    }

    pub(crate) fn key(&self, idx: u64) -> Result<Zeroizing<[u8; 32]>, VaultError> {
        let mut key = Zeroizing::new([0u8; 32]);
        self.file
            .read_exact_at(key.as_mut(), idx * ENTRY)
            .map_err(|_| VaultError::Corrupt("message key missing".into()))?;
        Ok(key)
    }

    /// Overwrites entry `idx` with random bytes: its message is gone for good.
    pub(crate) fn destroy(&self, idx: u64, rng: &mut impl CryptoRngCore) -> Result<(), VaultError> {
        let mut junk = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(junk.as_mut());
        self.file.write_all_at(junk.as_ref(), idx * ENTRY)?;
        Ok(())
    }

    /// Overwrites every entry with random bytes.
    pub(crate) fn destroy_all(&self, rng: &mut impl CryptoRngCore) -> Result<(), VaultError> {
        let len = self.len_bytes()?;
        self.fill_random(0, len, rng)?;
        self.sync()
    }

    pub(crate) fn sync(&self) -> Result<(), VaultError> {
        self.file.sync_data()?;
        Ok(())
    }
}
