//! Panic wipe: the profile destroyed without a passphrase.

use std::path::Path;

use rand_core::CryptoRngCore;

use crate::VaultError;

/// Destroys the profile in `dir` without any passphrase: every file is first
/// overwritten at its start (the SQLCipher salt, without which no key can be
/// derived, so the data is cryptographically gone at once) and synced, then
/// overwritten whole with random bytes, synced, and removed; then the
/// directory itself. Returns how many files were destroyed.
///
/// Limits: flash storage may keep stale copies of overwritten blocks; the
/// first step is what makes those useless without the salt they lack only
/// if the salt's old block is gone too, which no software can guarantee.
pub fn panic_wipe(dir: &Path, rng: &mut impl CryptoRngCore) -> Result<usize, VaultError> {
    use std::io::{Seek as _, SeekFrom, Write as _};
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            files.push(entry.path());
        }
    }
    let mut buf = vec![0u8; 1 << 20];
    // Step 1: the heads (salt and first pages), all files, synced.
    let mut handles = Vec::with_capacity(files.len());
    for path in &files {
        let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
        let len = f.metadata()?.len();
        let head = usize::try_from(len.min(64 * 1024)).unwrap_or(0);
        rng.fill_bytes(&mut buf[..head]);
        f.write_all(&buf[..head])?;
        f.sync_data()?;
        handles.push((f, len));
    }
    // Step 2: everything else, then remove.
    for ((mut f, len), path) in handles.into_iter().zip(&files) {
        f.seek(SeekFrom::Start(0))?;
        let mut left = len;
        while left > 0 {
            let n = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
            rng.fill_bytes(&mut buf[..n]);
            f.write_all(&buf[..n])?;
            left -= n as u64;
        }
        f.sync_all()?;
        drop(f);
        std::fs::remove_file(path)?;
    }
    std::fs::remove_dir(dir)?;
    Ok(files.len())
}
