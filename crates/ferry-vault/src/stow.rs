//! A profile's files for stowing, and installing them on restore.
//!
//! Every file of a profile directory is ciphertext or random already, so a
//! stow carries them as they are: both slots (the real profile, the decoy or
//! filler), journals, key slabs and the attempt counter. Restoring writes
//! the same files back; the passphrases open them as before, the duress
//! passphrase included.

use std::io::Write as _;
use std::path::Path;

use zeroize::Zeroizing;

use crate::{Vault, VaultError};

/// A profile directory's files: name and bytes.
pub type ProfileFiles = Vec<(String, Zeroizing<Vec<u8>>)>;

/// Most bytes a profile's files may add up to for a stow.
pub const MAX_STOW_FILES_BYTES: u64 = 60 * 1024 * 1024;

impl Vault {
    /// Reads every file of the profile directory while this handle holds
    /// the profile lock (so no other process writes meanwhile).
    pub fn stow_files(&self) -> Result<ProfileFiles, VaultError> {
        read_files(self.dir())
    }
}

fn read_files(dir: &Path) -> Result<ProfileFiles, VaultError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            let name = entry
                .file_name()
                .into_string()
                .map_err(|_| VaultError::Corrupt("a file name that is not UTF-8".into()))?;
            names.push(name);
        }
    }
    names.sort();
    let mut total = 0u64;
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let bytes = Zeroizing::new(std::fs::read(dir.join(&name))?);
        total += bytes.len() as u64;
        if total > MAX_STOW_FILES_BYTES {
            return Err(VaultError::Corrupt(
                "the profile is too large to stow".into(),
            ));
        }
        files.push((name, bytes));
    }
    Ok(files)
}

/// Writes a stowed profile's files into `dir` (created with mode 0700 if
/// missing), each synced, then the directory. `dir` may hold nothing but
/// the files named in `besides` (a restore's own journal) and earlier
/// copies of the files being written (a restore run again after a crash).
/// Refuses to write over another profile.
pub fn install(
    dir: &Path,
    files: &[(String, Zeroizing<Vec<u8>>)],
    besides: &[&str],
) -> Result<(), VaultError> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if !besides.contains(&name.as_ref()) && !files.iter().any(|(n, _)| *n == name) {
            return Err(VaultError::AlreadyExists);
        }
    }
    // Every name is checked before anything is written.
    if files
        .iter()
        .any(|(name, _)| name.contains('/') || name.contains('\\') || name.starts_with('.'))
    {
        return Err(VaultError::Corrupt("a file name with a path in it".into()));
    }
    for (name, bytes) in files {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(dir.join(name))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}
