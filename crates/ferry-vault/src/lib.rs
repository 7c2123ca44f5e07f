//! Ferry's vault: a profile's whole state in one SQLCipher database whose
//! key is derived from the passphrase with Argon2id (64 MiB, 3 passes).
//!
//! It owns the files of a profile directory and nothing else. Every byte it
//! writes is ciphertext or random: SQLCipher encrypts every page (including
//! the header) and the file starts with the random 16-byte salt, which is
//! also the Argon2id salt. There is no plaintext config and no name in any
//! file. It must never log, print or write a passphrase, a key or a
//! plaintext record anywhere else.
//!
//! Records are opaque bytes chosen by the caller (`ferry-core` formats them):
//! named blobs, a message log with de-duplication per contact, and the MLS
//! key-value state.

use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use rand_core::CryptoRngCore;
use rusqlite::{Connection, OptionalExtension, params};
use secrecy::{ExposeSecret as _, SecretString};
use zeroize::Zeroizing;

/// The database file inside a profile directory.
pub const DB_FILE: &str = "data";

const SALT_LEN: usize = 16;
const KEY_LEN: usize = 32;
/// Argon2id memory in KiB (64 MiB).
pub const ARGON2_MEMORY_KIB: u32 = 64 * 1024;
const ARGON2_PASSES: u32 = 3;
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE blobs (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE messages (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    contact    INTEGER NOT NULL,
    msg_id     BLOB NOT NULL,
    expires_at INTEGER,
    record     BLOB NOT NULL,
    UNIQUE (contact, msg_id)
);
CREATE INDEX messages_expiry ON messages (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE mls (k BLOB PRIMARY KEY, v BLOB NOT NULL);
";

/// Why a vault operation failed. Messages never contain secrets or records.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// No profile exists in the directory.
    #[error("no profile here; create one first")]
    NotFound,
    /// A profile already exists in the directory.
    #[error("a profile already exists here")]
    AlreadyExists,
    /// The passphrase does not open this profile.
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// The passphrase is empty.
    #[error("the passphrase must not be empty")]
    EmptyPassphrase,
    /// The profile files are damaged or from a newer Ferry.
    #[error("profile is damaged or from a newer version: {0}")]
    Corrupt(String),
    /// File system error.
    #[error("file system: {0}")]
    Io(#[from] std::io::Error),
    /// Database error.
    #[error("database: {0}")]
    Db(String),
}

fn db(e: rusqlite::Error) -> VaultError {
    VaultError::Db(e.to_string())
}

/// MLS key-value pairs, values zeroized on drop.
pub type MlsEntries = Vec<(Vec<u8>, Zeroizing<Vec<u8>>)>;

/// An unlocked profile.
pub struct Vault {
    conn: Connection,
    dir: PathBuf,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(..)")
    }
}

fn derive_key(
    pass: &SecretString,
    salt: &[u8; SALT_LEN],
) -> Result<Zeroizing<[u8; KEY_LEN]>, VaultError> {
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, 1, Some(KEY_LEN))
        .map_err(|e| VaultError::Db(format!("argon2 params: {e}")))?;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(pass.expose_secret().as_bytes(), salt, key.as_mut())
        .map_err(|e| VaultError::Db(format!("argon2: {e}")))?;
    Ok(key)
}

fn hex(bytes: &[u8]) -> Zeroizing<String> {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = Zeroizing::new(String::with_capacity(bytes.len() * 2));
    for b in bytes {
        s.push(char::from(H[usize::from(b >> 4)]));
        s.push(char::from(H[usize::from(b & 15)]));
    }
    s
}

/// Applies the raw key and explicit salt (SQLCipher "raw key data with
/// explicit salt"); no further KDF runs inside SQLCipher.
fn apply_key(
    conn: &Connection,
    key: &[u8; KEY_LEN],
    salt: &[u8; SALT_LEN],
) -> Result<(), VaultError> {
    let k = hex(key);
    let s = hex(salt);
    let pragma = Zeroizing::new(format!("PRAGMA key = \"x'{}{}'\";", k.as_str(), s.as_str()));
    conn.execute_batch(&pragma).map_err(db)?;
    // SQLCipher would print decryption failures (a wrong passphrase) to
    // stderr; keying activates its default logging, so silence it after.
    conn.execute_batch("PRAGMA cipher_log = off; PRAGMA cipher_log_level = NONE;")
        .map_err(db)
}

fn configure(conn: &Connection) -> Result<(), VaultError> {
    conn.execute_batch(
        "PRAGMA journal_mode = TRUNCATE; PRAGMA secure_delete = ON; PRAGMA temp_store = MEMORY; PRAGMA synchronous = FULL;",
    )
    .map_err(db)
}

impl Vault {
    /// Whether a profile exists in `dir`.
    pub fn exists(dir: &Path) -> bool {
        dir.join(DB_FILE).exists()
    }

    /// Creates a new profile in `dir` (created with mode 0700).
    pub fn create(
        dir: &Path,
        pass: &SecretString,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, VaultError> {
        if pass.expose_secret().is_empty() {
            return Err(VaultError::EmptyPassphrase);
        }
        if Self::exists(dir) {
            return Err(VaultError::AlreadyExists);
        }
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let mut salt = [0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);
        let key = derive_key(pass, &salt)?;
        let conn = Connection::open(dir.join(DB_FILE)).map_err(db)?;
        apply_key(&conn, &key, &salt)?;
        configure(&conn)?;
        conn.execute_batch(&format!(
            "BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        ))
        .map_err(db)?;
        Ok(Self {
            conn,
            dir: dir.to_owned(),
        })
    }

    /// Opens the profile in `dir`. A wrong passphrase changes nothing on disk.
    pub fn open(dir: &Path, pass: &SecretString) -> Result<Self, VaultError> {
        let path = dir.join(DB_FILE);
        let mut salt = [0u8; SALT_LEN];
        {
            use std::io::Read as _;
            let mut f = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(VaultError::NotFound);
                }
                Err(e) => return Err(e.into()),
            };
            f.read_exact(&mut salt)
                .map_err(|_| VaultError::Corrupt("file too short".into()))?;
        }
        let key = derive_key(pass, &salt)?;
        let conn = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(db)?;
        apply_key(&conn, &key, &salt)?;
        // The first read proves the key; nothing is written before it.
        let version: i64 = match conn.query_row("PRAGMA user_version", [], |r| r.get(0)) {
            Ok(v) => v,
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::NotADatabase =>
            {
                return Err(VaultError::WrongPassphrase);
            }
            Err(e) => return Err(db(e)),
        };
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(|_| VaultError::WrongPassphrase)?;
        if version != SCHEMA_VERSION || tables == 0 {
            return Err(VaultError::Corrupt(format!(
                "unknown format version {version}"
            )));
        }
        configure(&conn)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(db)?;
        Ok(Self {
            conn,
            dir: dir.to_owned(),
        })
    }

    /// The profile directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads a named blob.
    pub fn blob(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
        self.conn
            .query_row("SELECT value FROM blobs WHERE name = ?1", [name], |r| {
                r.get::<_, Vec<u8>>(0)
            })
            .optional()
            .map(|o| o.map(Zeroizing::new))
            .map_err(db)
    }

    /// Every message record of a contact, oldest first.
    pub fn messages(&self, contact: u64) -> Result<Vec<Zeroizing<Vec<u8>>>, VaultError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT record FROM messages WHERE contact = ?1 ORDER BY seq")
            .map_err(db)?;
        let rows = stmt
            .query_map([i64::try_from(contact).unwrap_or(i64::MAX)], |r| {
                r.get::<_, Vec<u8>>(0)
            })
            .map_err(db)?;
        rows.map(|r| r.map(Zeroizing::new).map_err(db)).collect()
    }

    /// The whole MLS key-value state.
    pub fn mls_state(&self) -> Result<MlsEntries, VaultError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT k, v FROM mls")
            .map_err(db)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    Zeroizing::new(r.get::<_, Vec<u8>>(1)?),
                ))
            })
            .map_err(db)?;
        rows.map(|r| r.map_err(db)).collect()
    }

    /// Runs `f` in one transaction: everything or nothing reaches the disk.
    pub fn transaction<T>(
        &mut self,
        f: impl FnOnce(&Tx<'_>) -> Result<T, VaultError>,
    ) -> Result<T, VaultError> {
        let tx = self.conn.transaction().map_err(db)?;
        let out = f(&Tx { tx: &tx })?;
        tx.commit().map_err(db)?;
        Ok(out)
    }
}

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

/// Writes inside a [`Vault::transaction`].
pub struct Tx<'a> {
    tx: &'a rusqlite::Transaction<'a>,
}

impl Tx<'_> {
    /// Reads a named blob.
    pub fn blob(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
        self.tx
            .query_row("SELECT value FROM blobs WHERE name = ?1", [name], |r| {
                r.get::<_, Vec<u8>>(0)
            })
            .optional()
            .map(|o| o.map(Zeroizing::new))
            .map_err(db)
    }

    /// The whole MLS key-value state.
    pub fn mls_state(&self) -> Result<MlsEntries, VaultError> {
        let mut stmt = self.tx.prepare_cached("SELECT k, v FROM mls").map_err(db)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    Zeroizing::new(r.get::<_, Vec<u8>>(1)?),
                ))
            })
            .map_err(db)?;
        rows.map(|r| r.map_err(db)).collect()
    }

    /// Sets a named blob.
    pub fn put_blob(&self, name: &str, value: &[u8]) -> Result<(), VaultError> {
        self.tx
            .execute(
                "INSERT INTO blobs (name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                params![name, value],
            )
            .map(|_| ())
            .map_err(db)
    }

    /// Removes a named blob.
    pub fn delete_blob(&self, name: &str) -> Result<(), VaultError> {
        self.tx
            .execute("DELETE FROM blobs WHERE name = ?1", [name])
            .map(|_| ())
            .map_err(db)
    }

    /// Appends a message record that is destroyed at `expires_at` (Unix
    /// seconds); `false` (and nothing written) if this contact already has a
    /// message with that id.
    pub fn insert_message(
        &self,
        contact: u64,
        msg_id: &[u8],
        record: &[u8],
        expires_at: Option<u64>,
    ) -> Result<bool, VaultError> {
        let n = self
            .tx
            .execute(
                "INSERT OR IGNORE INTO messages (contact, msg_id, expires_at, record) VALUES (?1, ?2, ?3, ?4)",
                params![
                    i64::try_from(contact).unwrap_or(i64::MAX),
                    msg_id,
                    expires_at.map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
                    record
                ],
            )
            .map_err(db)?;
        Ok(n == 1)
    }

    /// Destroys one message; `false` if there was none.
    pub fn delete_message(&self, contact: u64, msg_id: &[u8]) -> Result<bool, VaultError> {
        let n = self
            .tx
            .execute(
                "DELETE FROM messages WHERE contact = ?1 AND msg_id = ?2",
                params![i64::try_from(contact).unwrap_or(i64::MAX), msg_id],
            )
            .map_err(db)?;
        Ok(n > 0)
    }

    /// Destroys every message that expired at or before `now`.
    pub fn expire(&self, now: u64) -> Result<usize, VaultError> {
        self.tx
            .execute(
                "DELETE FROM messages WHERE expires_at IS NOT NULL AND expires_at <= ?1",
                [i64::try_from(now).unwrap_or(i64::MAX)],
            )
            .map_err(db)
    }

    /// Replaces the MLS state with exactly `entries`.
    pub fn set_mls_state<'e>(
        &self,
        entries: impl IntoIterator<Item = (&'e [u8], &'e [u8])>,
    ) -> Result<(), VaultError> {
        self.tx.execute("DELETE FROM mls", []).map_err(db)?;
        let mut stmt = self
            .tx
            .prepare_cached("INSERT INTO mls (k, v) VALUES (?1, ?2)")
            .map_err(db)?;
        for (k, v) in entries {
            stmt.execute(params![k, v]).map_err(db)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    fn pass(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn create_reopen_and_wrong_passphrase_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("profile");
        {
            let mut v = Vault::create(&p, &pass("correct horse"), &mut OsRng).unwrap();
            v.transaction(|tx| {
                tx.put_blob("state", b"hello")?;
                assert!(tx.insert_message(1, b"m1", b"record one", None)?);
                assert!(!tx.insert_message(1, b"m1", b"duplicate", None)?);
                assert!(tx.insert_message(1, b"m2", b"short-lived", Some(10))?);
                assert_eq!(tx.expire(9)?, 0);
                assert_eq!(tx.expire(10)?, 1);
                Ok(())
            })
            .unwrap();
        }
        let before: Vec<(String, Vec<u8>)> = snapshot(&p);
        assert!(matches!(
            Vault::open(&p, &pass("wrong")),
            Err(VaultError::WrongPassphrase)
        ));
        assert_eq!(snapshot(&p), before, "a wrong passphrase changed the files");
        let v = Vault::open(&p, &pass("correct horse")).unwrap();
        assert_eq!(v.blob("state").unwrap().unwrap().as_slice(), b"hello");
        let msgs = v.messages(1).unwrap();
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].as_slice(), b"record one");
        assert!(matches!(
            Vault::create(&p, &pass("x"), &mut OsRng),
            Err(VaultError::AlreadyExists)
        ));
        assert!(matches!(
            Vault::open(&dir.path().join("none"), &pass("x")),
            Err(VaultError::NotFound)
        ));
    }

    #[test]
    fn files_have_no_recognizable_header_or_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("profile");
        let mut v = Vault::create(&p, &pass("pw"), &mut OsRng).unwrap();
        v.transaction(|tx| tx.put_blob("alias-Marker", b"PLAINTEXT-MARKER-7781"))
            .unwrap();
        drop(v);
        for (name, bytes) in snapshot(&p) {
            assert!(
                !bytes.starts_with(b"SQLite format"),
                "{name} has a SQLite header"
            );
            for marker in [
                &b"PLAINTEXT-MARKER-7781"[..],
                b"alias-Marker",
                b"CREATE TABLE",
            ] {
                assert!(
                    !bytes.windows(marker.len()).any(|w| w == marker),
                    "{name} leaks"
                );
            }
        }
    }

    #[test]
    fn panic_wipe_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("profile");
        let mut v = Vault::create(&p, &pass("pw"), &mut OsRng).unwrap();
        v.transaction(|tx| tx.put_blob("x", &[7u8; 100_000]))
            .unwrap();
        drop(v);
        let n = panic_wipe(&p, &mut OsRng).unwrap();
        assert!(n >= 1);
        assert!(!p.exists());
        assert!(matches!(
            Vault::open(&p, &pass("pw")),
            Err(VaultError::NotFound)
        ));
    }

    fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        out.sort();
        out
    }
}
