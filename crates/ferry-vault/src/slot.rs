//! The files of one slot: paths, keying, opening, random filler.

use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use rand_core::CryptoRngCore;
use rusqlite::Connection;
use secrecy::{ExposeSecret as _, SecretString};
use zeroize::Zeroizing;

use crate::schema::{SCHEMA_VERSION, migrate};
use crate::slab::{self, Slab};
use crate::{ARGON2_MEMORY_KIB, ARGON2_PASSES, HEAD, KEY_LEN, SALT_LEN, VaultError, db};

pub(crate) fn db_path(dir: &Path, slot: u8) -> PathBuf {
    dir.join(slot.to_string())
}

pub(crate) fn journal_path(dir: &Path, slot: u8) -> PathBuf {
    dir.join(format!("{slot}-journal"))
}

pub(crate) fn slab_path(dir: &Path, slot: u8) -> PathBuf {
    dir.join(format!("{slot}.k"))
}

pub(crate) fn derive_key(
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

pub(crate) fn hex(bytes: &[u8]) -> Zeroizing<String> {
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
pub(crate) fn apply_key(
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

pub(crate) fn configure(conn: &Connection) -> Result<(), VaultError> {
    conn.execute_batch(
        "PRAGMA journal_mode = TRUNCATE; PRAGMA secure_delete = ON; PRAGMA temp_store = MEMORY; PRAGMA synchronous = FULL;",
    )
    .map_err(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(db)
}

pub(crate) fn read_salt(path: &Path) -> Result<[u8; SALT_LEN], VaultError> {
    use std::io::Read as _;
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(VaultError::NotFound),
        Err(e) => return Err(e.into()),
    };
    let mut salt = [0u8; SALT_LEN];
    f.read_exact(&mut salt)
        .map_err(|_| VaultError::Corrupt("file too short".into()))?;
    Ok(salt)
}

/// Opens a slot with a key; `None` if the key does not open it. Writes nothing.
pub(crate) fn try_open(
    path: &Path,
    key: &[u8; KEY_LEN],
    salt: &[u8; SALT_LEN],
) -> Result<Option<Connection>, VaultError> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(db)?;
    apply_key(&conn, key, salt)?;
    let version: i64 = match conn.query_row("PRAGMA user_version", [], |r| r.get(0)) {
        Ok(v) => v,
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::NotADatabase =>
        {
            return Ok(None);
        }
        Err(e) => return Err(db(e)),
    };
    let tables: i64 = match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0)) {
        Ok(n) => n,
        Err(_) => return Ok(None),
    };
    if version > SCHEMA_VERSION {
        return Err(VaultError::Corrupt(format!(
            "format version {version} is newer than this Ferry understands; update Ferry"
        )));
    }
    if version < 1 || tables == 0 {
        return Err(VaultError::Corrupt(format!(
            "unknown format version {version}"
        )));
    }
    configure(&conn)?;
    if version < SCHEMA_VERSION {
        migrate(&conn, version)?;
    }
    Ok(Some(conn))
}

pub(crate) fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Writes random bytes over `[from, to)` of a file (creating it).
pub(crate) fn randomize(
    path: &Path,
    from: u64,
    to: u64,
    rng: &mut impl CryptoRngCore,
) -> Result<(), VaultError> {
    use std::os::unix::fs::FileExt as _;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let mut buf = Zeroizing::new(vec![0u8; 64 * 1024]);
    let mut at = from;
    while at < to {
        let n = usize::try_from((to - at).min(buf.len() as u64)).unwrap_or(buf.len());
        rng.fill_bytes(&mut buf[..n]);
        f.write_all_at(&buf[..n], at)?;
        at += n as u64;
    }
    f.sync_all()?;
    Ok(())
}

/// Empties a file without deleting it (creating it if missing): a file
/// deleted and created again would carry a new creation time and inode,
/// dating the change.
pub(crate) fn empty_in_place(path: &Path) -> Result<(), VaultError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    Ok(())
}

/// Every file of both slots, in a fixed order.
pub(crate) fn slot_files(dir: &Path) -> [PathBuf; 6] {
    [
        db_path(dir, 0),
        journal_path(dir, 0),
        slab_path(dir, 0),
        db_path(dir, 1),
        journal_path(dir, 1),
        slab_path(dir, 1),
    ]
}

/// Gives every slot file the same access and modification time (now), so
/// the times never show which slot was used or written last.
pub(crate) fn even_out_times(dir: &Path) -> Result<(), VaultError> {
    let now = std::time::SystemTime::now();
    let times = std::fs::FileTimes::new()
        .set_accessed(now)
        .set_modified(now);
    for p in slot_files(dir) {
        if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&p) {
            f.set_times(times)?;
        }
    }
    Ok(())
}

/// Makes slot `slot` random filler of the given sizes.
pub(crate) fn make_filler(
    dir: &Path,
    slot: u8,
    db_len: u64,
    slab_len: u64,
    rng: &mut impl CryptoRngCore,
) -> Result<(), VaultError> {
    empty_in_place(&db_path(dir, slot))?;
    randomize(&db_path(dir, slot), 0, db_len.max(HEAD), rng)?;
    Slab::create(
        &slab_path(dir, slot),
        slab_len.div_ceil(slab::ENTRY).max(slab::CHUNK),
        rng,
    )?;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(journal_path(dir, slot))?;
    Ok(())
}
