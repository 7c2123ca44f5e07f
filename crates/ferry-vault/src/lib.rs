//! Ferry's vault: a profile's whole state in SQLCipher databases whose keys
//! are derived from passphrases with Argon2id (64 MiB, 3 passes).
//!
//! It owns the files of a profile directory and nothing else. Every byte it
//! writes is ciphertext or random: SQLCipher encrypts every page (including
//! the header) and a database file starts with its random 16-byte salt,
//! which is also the Argon2id salt. There is no plaintext config and no name
//! in any file. It must never log, print or write a passphrase, a key or a
//! plaintext record anywhere else.
//!
//! A profile directory always holds two *slots*, `0` and `1`, each a database
//! file, its (usually empty) `-journal` and a key slab `.k`. One slot is the
//! profile; the other is random filler, or the *decoy* profile opened by the
//! duress passphrase. Every unlock derives a key for both slots (same time
//! whichever opens), and an unlock that opens a slot without a duress
//! configuration overwrites the other slot's salt, head and key slab with
//! random bytes: for a plain profile that refreshes filler, after a duress
//! unlock it destroys the real profile. Sizes are kept equal across slots,
//! so the files neither reveal which slot is in use nor change when the real
//! profile is destroyed.
//!
//! Message records are encrypted under per-message keys kept in the slab and
//! destroyed with the message (see [`slab`]).

mod counter;
mod lock;
mod slab;

use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{CryptoRngCore, OsRng, RngCore as _};
use rusqlite::{Connection, OptionalExtension, params};
use secrecy::{ExposeSecret as _, SecretString};
use zeroize::Zeroizing;

use crate::lock::DirLock;
pub use crate::lock::LOCK_WAIT;
use crate::slab::Slab;

const SALT_LEN: usize = 16;
const KEY_LEN: usize = 32;
/// Argon2id memory in KiB (64 MiB).
pub const ARGON2_MEMORY_KIB: u32 = 64 * 1024;
const ARGON2_PASSES: u32 = 3;
/// The schema this release writes; older files are migrated forward.
const SCHEMA_VERSION: i64 = 2;
/// Bytes overwritten at the head of the other slot at every unlock.
const HEAD: u64 = 64 * 1024;
const DURESS_BLOB: &str = "duress";

const SCHEMA: &str = "
CREATE TABLE blobs (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE messages (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    contact    INTEGER NOT NULL,
    msg_id     BLOB NOT NULL,
    expires_at INTEGER,
    key_idx    INTEGER NOT NULL,
    record     BLOB NOT NULL,
    UNIQUE (contact, msg_id)
);
CREATE INDEX messages_expiry ON messages (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE slab_free (idx INTEGER PRIMARY KEY);
CREATE TABLE mls (k BLOB PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE pad (b BLOB);
";

/// Schema migrations: entry `i` takes a file from version `i + 1` to
/// `i + 2`. They run forward, all in one transaction, when a slot opens.
const MIGRATIONS: &[&str] = &[
    // 1 -> 2: the engine's state as one record per contact and per queued
    // relay call (written by the first session after the upgrade).
    // The index finds the next free slab entry without a scan (catching up
    // on thousands of messages inserted them in quadratic time).
    "CREATE TABLE contacts (id INTEGER PRIMARY KEY, record BLOB NOT NULL);
     CREATE TABLE outbox (id INTEGER PRIMARY KEY, record BLOB NOT NULL);
     CREATE INDEX messages_key ON messages (key_idx);",
];

/// A table of numbered records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Table {
    /// One record per contact.
    Contacts,
    /// One record per queued relay call.
    Outbox,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Self::Contacts => "contacts",
            Self::Outbox => "outbox",
        }
    }
}

/// Runs the migrations from `from` to [`SCHEMA_VERSION`] in one transaction.
fn migrate(conn: &Connection, from: i64) -> Result<(), VaultError> {
    let steps = usize::try_from(from - 1)
        .ok()
        .and_then(|start| MIGRATIONS.get(start..))
        .ok_or_else(|| VaultError::Corrupt(format!("unknown format version {from}")))?;
    let mut sql = String::from("BEGIN IMMEDIATE;");
    for step in steps {
        sql.push_str(step);
    }
    sql.push_str(&format!("PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"));
    if let Err(e) = conn.execute_batch(&sql) {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(db(e));
    }
    Ok(())
}

/// The schema of a new file: version 1 plus every migration.
fn full_schema() -> String {
    let mut sql = String::from(SCHEMA);
    for step in MIGRATIONS {
        sql.push_str(step);
    }
    sql
}

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
    /// Another Ferry process has this profile open.
    #[error("this profile is open in another Ferry process; close it and try again")]
    InUse,
}

fn db(e: rusqlite::Error) -> VaultError {
    VaultError::Db(e.to_string())
}

/// A slot's raw database key.
type SlotKey = Zeroizing<[u8; KEY_LEN]>;

/// MLS key-value pairs, values zeroized on drop.
pub type MlsEntries = Vec<(Vec<u8>, Zeroizing<Vec<u8>>)>;

fn db_path(dir: &Path, slot: u8) -> PathBuf {
    dir.join(slot.to_string())
}

fn journal_path(dir: &Path, slot: u8) -> PathBuf {
    dir.join(format!("{slot}-journal"))
}

fn slab_path(dir: &Path, slot: u8) -> PathBuf {
    dir.join(format!("{slot}.k"))
}

/// Where the decoy lives, kept inside the real profile only.
#[derive(serde::Serialize, serde::Deserialize)]
struct DuressConfig {
    slot: u8,
    key: [u8; KEY_LEN],
    salt: [u8; SALT_LEN],
}

impl Drop for DuressConfig {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.key.zeroize();
    }
}

/// An unlocked profile (one slot).
pub struct Vault {
    conn: Connection,
    dir: PathBuf,
    slot: u8,
    slab: Slab,
    /// Opened through the real profile (`open_decoy`): the other slot is the
    /// live real profile, so this handle never resizes it.
    via_real: bool,
    /// Held for as long as any handle on this profile lives.
    _lock: std::sync::Arc<DirLock>,
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
    .map_err(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(db)
}

fn read_salt(path: &Path) -> Result<[u8; SALT_LEN], VaultError> {
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
fn try_open(
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

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Writes random bytes over `[from, to)` of a file (creating it).
fn randomize(
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

/// Makes slot `slot` random filler of the given sizes.
fn make_filler(
    dir: &Path,
    slot: u8,
    db_len: u64,
    slab_len: u64,
    rng: &mut impl CryptoRngCore,
) -> Result<(), VaultError> {
    let _ = std::fs::remove_file(db_path(dir, slot));
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

impl Vault {
    /// Whether a profile exists in `dir`.
    pub fn exists(dir: &Path) -> bool {
        db_path(dir, 0).exists() || db_path(dir, 1).exists()
    }

    /// Creates a fresh database in `slot` keyed by `pass`.
    fn new_in_slot(
        dir: &Path,
        slot: u8,
        pass: &SecretString,
        lock: std::sync::Arc<DirLock>,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(Self, SlotKey, [u8; SALT_LEN]), VaultError> {
        for p in [db_path(dir, slot), journal_path(dir, slot)] {
            let _ = std::fs::remove_file(p);
        }
        let mut salt = [0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);
        let key = derive_key(pass, &salt)?;
        let conn = Connection::open(db_path(dir, slot)).map_err(db)?;
        apply_key(&conn, &key, &salt)?;
        configure(&conn)?;
        conn.execute_batch(&format!(
            "BEGIN; {} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;",
            full_schema()
        ))
        .map_err(db)?;
        let slab = Slab::create(&slab_path(dir, slot), slab::CHUNK, rng)?;
        Ok((
            Self {
                conn,
                dir: dir.to_owned(),
                slot,
                slab,
                via_real: false,
                _lock: lock,
            },
            key,
            salt,
        ))
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
        let lock = std::sync::Arc::new(DirLock::acquire(dir)?);
        if Self::exists(dir) {
            return Err(VaultError::AlreadyExists);
        }
        counter::write(dir, counter::Counter::default(), rng)?;
        let slot = u8::from(rng.next_u32() & 1 == 1);
        let (vault, _, _) = Self::new_in_slot(dir, slot, pass, lock, rng)?;
        make_filler(
            dir,
            1 - slot,
            file_len(&db_path(dir, slot)),
            vault.slab.len_bytes()?,
            rng,
        )?;
        Ok(vault)
    }

    /// Unlocks the profile in `dir` with the passphrase or the duress
    /// passphrase; the caller cannot tell which, and neither can anyone
    /// looking at the files afterwards. A wrong passphrase changes nothing.
    pub fn unlock(
        dir: &Path,
        pass: &SecretString,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, VaultError> {
        if !Self::exists(dir) {
            return Err(VaultError::NotFound);
        }
        let lock = std::sync::Arc::new(DirLock::acquire(dir)?);
        let salts = [read_salt(&db_path(dir, 0))?, read_salt(&db_path(dir, 1))?];
        // Both derivations always run: the time does not depend on the slot.
        let keys = [derive_key(pass, &salts[0])?, derive_key(pass, &salts[1])?];
        let mut opened = None;
        for slot in 0..2u8 {
            let i = usize::from(slot);
            if let Some(conn) = try_open(&db_path(dir, slot), &keys[i], &salts[i])? {
                opened.get_or_insert((slot, conn));
            }
        }
        let Some((slot, conn)) = opened else {
            // Optional wipe after too many wrong passphrases (off by default).
            let mut c = counter::read(dir);
            if c.limit > 0 {
                c.failures = c.failures.saturating_add(1);
                if c.failures >= c.limit {
                    panic_wipe(dir, rng)?;
                } else {
                    counter::write(dir, c, rng)?;
                }
            }
            return Err(VaultError::WrongPassphrase);
        };
        let mut c = counter::read(dir);
        if c.failures > 0 {
            c.failures = 0;
            counter::write(dir, c, rng)?;
        }
        let slab = Slab::open(&slab_path(dir, slot))?;
        let vault = Self {
            conn,
            dir: dir.to_owned(),
            slot,
            slab,
            via_real: false,
            _lock: lock,
        };
        if vault.blob(DURESS_BLOB)?.is_some() {
            // The real profile with a decoy: the decoy is left alone; the
            // same amount of writing happens inside this slot's slab.
            vault.refresh_free_keys(rng)?;
        } else {
            // No decoy is configured in this slot, so the other slot is filler
            // (or, after a duress unlock, the real profile): destroy it.
            let other = 1 - slot;
            let len = file_len(&db_path(dir, other));
            randomize(
                &db_path(dir, other),
                0,
                len.min(HEAD).max(SALT_LEN as u64),
                rng,
            )?;
            if let Ok(s) = Slab::open(&slab_path(dir, other)) {
                s.destroy_all(rng)?;
            }
        }
        Ok(vault)
    }

    fn refresh_free_keys(&self, rng: &mut impl CryptoRngCore) -> Result<(), VaultError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT idx FROM slab_free")
            .map_err(db)?;
        let free: Vec<i64> = stmt
            .query_map([], |r| r.get(0))
            .map_err(db)?
            .collect::<Result<_, _>>()
            .map_err(db)?;
        for idx in free {
            self.slab.destroy(u64::try_from(idx).unwrap_or(0), rng)?;
        }
        // Writes and syncs like the other path, on a smaller scale; the
        // difference is far below the Argon2id time (see the benchmark).
        self.slab.sync()
    }

    /// Sets (or replaces) the duress passphrase: creates an empty decoy
    /// profile in the other slot and returns it, so the caller can fill it.
    pub fn set_duress(
        &mut self,
        duress: &SecretString,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vault, VaultError> {
        if duress.expose_secret().is_empty() {
            return Err(VaultError::EmptyPassphrase);
        }
        let other = 1 - self.slot;
        let (decoy, key, salt) =
            Self::new_in_slot(&self.dir, other, duress, self._lock.clone(), rng)?;
        let cfg = DuressConfig {
            slot: other,
            key: *key,
            salt,
        };
        let json =
            Zeroizing::new(serde_json::to_vec(&cfg).map_err(|e| VaultError::Db(e.to_string()))?);
        self.transaction(|tx| tx.put_blob(DURESS_BLOB, &json))?;
        self.equalize(rng)?;
        Ok(decoy)
    }

    /// The decoy profile, opened with the key kept in this (real) profile.
    pub fn open_decoy(&self) -> Result<Option<Vault>, VaultError> {
        let Some(json) = self.blob(DURESS_BLOB)? else {
            return Ok(None);
        };
        let cfg: DuressConfig =
            serde_json::from_slice(&json).map_err(|e| VaultError::Corrupt(e.to_string()))?;
        let conn = try_open(&db_path(&self.dir, cfg.slot), &cfg.key, &cfg.salt)?
            .ok_or_else(|| VaultError::Corrupt("decoy does not open".into()))?;
        Ok(Some(Self {
            conn,
            dir: self.dir.clone(),
            slot: cfg.slot,
            slab: Slab::open(&slab_path(&self.dir, cfg.slot))?,
            via_real: true,
            _lock: self._lock.clone(),
        }))
    }

    /// Destroys the profile after `limit` wrong passphrases in a row
    /// (`0`: never, the default).
    pub fn set_wipe_after(
        &self,
        limit: u32,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(), VaultError> {
        counter::write(&self.dir, counter::Counter { limit, failures: 0 }, rng)
    }

    /// The wrong-passphrase limit (`0`: off).
    pub fn wipe_after(&self) -> u32 {
        counter::read(&self.dir).limit
    }

    /// Whether a duress passphrase is set.
    pub fn has_duress(&self) -> Result<bool, VaultError> {
        Ok(self.blob(DURESS_BLOB)?.is_some())
    }

    /// Grows this slot's database by free (encrypted, zeroed) pages.
    fn grow_db(conn: &Connection, path: &Path, target: u64) -> Result<(), VaultError> {
        let len = file_len(path);
        if len >= target {
            return Ok(());
        }
        let need = i64::try_from(target - len).unwrap_or(i64::MAX);
        conn.execute_batch("BEGIN IMMEDIATE").map_err(db)?;
        let r = conn
            .execute("INSERT INTO pad (b) VALUES (zeroblob(?1))", [need])
            .and_then(|_| conn.execute("DELETE FROM pad", []));
        match r {
            Ok(_) => conn.execute_batch("COMMIT").map_err(db),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(db(e))
            }
        }
    }

    /// Makes both slots the same size (database and key slab), so the files
    /// never show which slot holds what, or that one was destroyed.
    pub fn equalize(&self, rng: &mut impl CryptoRngCore) -> Result<(), VaultError> {
        if self.via_real {
            // The real profile's next session evens the sizes out.
            return Ok(());
        }
        let other = 1 - self.slot;
        let (own_db, other_db) = (db_path(&self.dir, self.slot), db_path(&self.dir, other));
        let own_slab = self.slab.len_bytes()?;
        let other_slab = file_len(&slab_path(&self.dir, other));
        let target_db = file_len(&own_db).max(file_len(&other_db));
        let target_slab = own_slab.max(other_slab);
        Self::grow_db(&self.conn, &own_db, target_db)?;
        self.slab.grow_to(target_slab, rng)?;
        // Page rounding may have overshot: aim the other slot at our size.
        let target_db = file_len(&own_db).max(target_db);
        match self.open_decoy()? {
            Some(decoy) => {
                Self::grow_db(&decoy.conn, &other_db, target_db)?;
                decoy.slab.grow_to(target_slab, rng)?;
            }
            None => {
                let len = file_len(&other_db);
                if target_db > len {
                    randomize(&other_db, len, target_db, rng)?;
                }
                Slab::open(&slab_path(&self.dir, other))?.grow_to(target_slab, rng)?;
            }
        }
        Ok(())
    }

    /// The profile directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads a named blob.
    pub fn blob(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
        read_blob(&self.conn, name)
    }

    /// Every message record of a contact, oldest first. A record whose key
    /// was destroyed (interrupted deletion) is skipped.
    pub fn messages(&self, contact: u64) -> Result<Vec<Zeroizing<Vec<u8>>>, VaultError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT msg_id, key_idx, record FROM messages WHERE contact = ?1 ORDER BY seq",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map([i64::try_from(contact).unwrap_or(i64::MAX)], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            })
            .map_err(db)?;
        let mut out = Vec::new();
        for row in rows {
            let (msg_id, idx, sealed) = row.map_err(db)?;
            let key = self.slab.key(u64::try_from(idx).unwrap_or(0))?;
            if let Some(plain) = open_record(&key, contact, &msg_id, &sealed) {
                out.push(plain);
            }
        }
        Ok(out)
    }

    /// The whole MLS key-value state.
    pub fn mls_state(&self) -> Result<MlsEntries, VaultError> {
        read_mls_state(&self.conn)
    }

    /// Every record of a table, by id.
    pub fn records(&self, table: Table) -> Result<Records, VaultError> {
        read_records(&self.conn, table)
    }

    /// Whether any message expires at or before `now` (a read: checking
    /// often costs no write).
    pub fn expires_by(&self, now: u64) -> Result<bool, VaultError> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM messages WHERE expires_at IS NOT NULL AND expires_at <= ?1)",
                [i64::try_from(now).unwrap_or(i64::MAX)],
                |r| r.get(0),
            )
            .map_err(db)
    }

    /// Runs `f` in one write transaction, taken before anything is read so
    /// that two processes on one profile never interleave a read-modify-write:
    /// everything or nothing reaches the disk. New message keys are synced
    /// to the slab before the commit.
    pub fn transaction<T>(
        &mut self,
        f: impl FnOnce(&Tx<'_>) -> Result<T, VaultError>,
    ) -> Result<T, VaultError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        let out = f(&Tx {
            tx: &tx,
            slab: &self.slab,
        })?;
        self.slab.sync()?;
        tx.commit().map_err(db)?;
        Ok(out)
    }
}

fn read_blob(conn: &Connection, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
    conn.query_row("SELECT value FROM blobs WHERE name = ?1", [name], |r| {
        r.get::<_, Vec<u8>>(0)
    })
    .optional()
    .map(|o| o.map(Zeroizing::new))
    .map_err(db)
}

/// Numbered records, values wiped on drop.
pub type Records = Vec<(u64, Zeroizing<Vec<u8>>)>;

fn read_records(conn: &Connection, table: Table) -> Result<Records, VaultError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT id, record FROM {} ORDER BY id",
            table.name()
        ))
        .map_err(db)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                Zeroizing::new(r.get::<_, Vec<u8>>(1)?),
            ))
        })
        .map_err(db)?;
    rows.map(|r| r.map_err(db)).collect()
}

fn read_mls_state(conn: &Connection) -> Result<MlsEntries, VaultError> {
    let mut stmt = conn.prepare_cached("SELECT k, v FROM mls").map_err(db)?;
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

fn aad(contact: u64, msg_id: &[u8]) -> Vec<u8> {
    let mut a = contact.to_be_bytes().to_vec();
    a.extend_from_slice(msg_id);
    a
}

fn seal_record(
    key: &[u8; 32],
    contact: u64,
    msg_id: &[u8],
    plain: &[u8],
) -> Result<Vec<u8>, VaultError> {
    let mut nonce = [0u8; 24];
    OsRng.fill_bytes(&mut nonce);
    let ct = XChaCha20Poly1305::new(key.into())
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: &aad(contact, msg_id),
            },
        )
        .map_err(|_| VaultError::Db("record encryption failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

fn open_record(
    key: &[u8; 32],
    contact: u64,
    msg_id: &[u8],
    sealed: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < 24 {
        return None;
    }
    let (nonce, ct) = sealed.split_at(24);
    XChaCha20Poly1305::new(key.into())
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ct,
                aad: &aad(contact, msg_id),
            },
        )
        .ok()
        .map(Zeroizing::new)
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
    slab: &'a Slab,
}

impl Tx<'_> {
    /// Reads a named blob.
    pub fn blob(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
        read_blob(self.tx, name)
    }

    /// The whole MLS key-value state.
    pub fn mls_state(&self) -> Result<MlsEntries, VaultError> {
        read_mls_state(self.tx)
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

    fn alloc_key(&self) -> Result<u64, VaultError> {
        let free: Option<i64> = self
            .tx
            .query_row("SELECT min(idx) FROM slab_free", [], |r| r.get(0))
            .map_err(db)?;
        if let Some(idx) = free {
            self.tx
                .execute("DELETE FROM slab_free WHERE idx = ?1", [idx])
                .map_err(db)?;
            return Ok(u64::try_from(idx).unwrap_or(0));
        }
        let next: i64 = self
            .tx
            .query_row(
                "SELECT max(coalesce((SELECT max(key_idx) FROM messages), -1), coalesce((SELECT max(idx) FROM slab_free), -1)) + 1",
                [],
                |r| r.get(0),
            )
            .map_err(db)?;
        Ok(u64::try_from(next).unwrap_or(0))
    }

    fn destroy_key(&self, idx: i64) -> Result<(), VaultError> {
        self.slab
            .destroy(u64::try_from(idx).unwrap_or(0), &mut OsRng)?;
        self.tx
            .execute("INSERT OR IGNORE INTO slab_free (idx) VALUES (?1)", [idx])
            .map_err(db)?;
        Ok(())
    }

    /// Appends a message record, encrypted under a fresh key of its own, to
    /// be destroyed at `expires_at` (Unix seconds); `false` (and nothing
    /// written) if this contact already has a message with that id.
    pub fn insert_message(
        &self,
        contact: u64,
        msg_id: &[u8],
        record: &[u8],
        expires_at: Option<u64>,
    ) -> Result<bool, VaultError> {
        let exists: Option<i64> = self
            .tx
            .query_row(
                "SELECT 1 FROM messages WHERE contact = ?1 AND msg_id = ?2",
                params![i64::try_from(contact).unwrap_or(i64::MAX), msg_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        if exists.is_some() {
            return Ok(false);
        }
        let idx = self.alloc_key()?;
        let key = self.slab.fresh(idx, &mut OsRng)?;
        let sealed = seal_record(&key, contact, msg_id, record)?;
        self.tx
            .execute(
                "INSERT INTO messages (contact, msg_id, expires_at, key_idx, record) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    i64::try_from(contact).unwrap_or(i64::MAX),
                    msg_id,
                    expires_at.map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
                    i64::try_from(idx).unwrap_or(i64::MAX),
                    sealed
                ],
            )
            .map_err(db)?;
        Ok(true)
    }

    /// Destroys one message (its key first); `false` if there was none.
    pub fn delete_message(&self, contact: u64, msg_id: &[u8]) -> Result<bool, VaultError> {
        let c = i64::try_from(contact).unwrap_or(i64::MAX);
        let idx: Option<i64> = self
            .tx
            .query_row(
                "SELECT key_idx FROM messages WHERE contact = ?1 AND msg_id = ?2",
                params![c, msg_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?;
        let Some(idx) = idx else {
            return Ok(false);
        };
        self.destroy_key(idx)?;
        self.tx
            .execute(
                "DELETE FROM messages WHERE contact = ?1 AND msg_id = ?2",
                params![c, msg_id],
            )
            .map_err(db)?;
        Ok(true)
    }

    /// Destroys every message that expired at or before `now`.
    pub fn expire(&self, now: u64) -> Result<usize, VaultError> {
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        let idxs: Vec<i64> = {
            let mut stmt = self
                .tx
                .prepare_cached("SELECT key_idx FROM messages WHERE expires_at IS NOT NULL AND expires_at <= ?1")
                .map_err(db)?;
            stmt.query_map([now], |r| r.get(0))
                .map_err(db)?
                .collect::<Result<_, _>>()
                .map_err(db)?
        };
        for idx in &idxs {
            self.destroy_key(*idx)?;
        }
        self.tx
            .execute(
                "DELETE FROM messages WHERE expires_at IS NOT NULL AND expires_at <= ?1",
                [now],
            )
            .map_err(db)
    }

    /// Every record of a table, by id.
    pub fn records(&self, table: Table) -> Result<Records, VaultError> {
        read_records(self.tx, table)
    }

    /// Writes record `id` of `table` (`None`: deletes it).
    pub fn put_record(
        &self,
        table: Table,
        id: u64,
        record: Option<&[u8]>,
    ) -> Result<(), VaultError> {
        let id = i64::try_from(id).map_err(|_| VaultError::Db("record id out of range".into()))?;
        match record {
            Some(r) => self
                .tx
                .prepare_cached(&format!(
                    "INSERT INTO {} (id, record) VALUES (?1, ?2) ON CONFLICT(id) DO UPDATE SET record = excluded.record",
                    table.name()
                ))
                .and_then(|mut s| s.execute(params![id, r])),
            None => self
                .tx
                .prepare_cached(&format!("DELETE FROM {} WHERE id = ?1", table.name()))
                .and_then(|mut s| s.execute([id])),
        }
        .map(|_| ())
        .map_err(db)
    }

    /// Writes the MLS pairs that changed (`None`: deleted), and only those.
    pub fn update_mls<'e>(
        &self,
        changes: impl IntoIterator<Item = (&'e [u8], Option<&'e [u8]>)>,
    ) -> Result<(), VaultError> {
        let mut put = self
            .tx
            .prepare_cached(
                "INSERT INTO mls (k, v) VALUES (?1, ?2) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
            )
            .map_err(db)?;
        let mut del = self
            .tx
            .prepare_cached("DELETE FROM mls WHERE k = ?1")
            .map_err(db)?;
        for (k, v) in changes {
            match v {
                Some(v) => put.execute(params![k, v]),
                None => del.execute([k]),
            }
            .map_err(db)?;
        }
        Ok(())
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

    fn pass(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
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

    fn sizes(dir: &Path) -> Vec<(String, u64)> {
        snapshot(dir)
            .into_iter()
            .map(|(n, b)| (n, b.len() as u64))
            .collect()
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
        let before = snapshot(&p);
        assert!(matches!(
            Vault::unlock(&p, &pass("wrong"), &mut OsRng),
            Err(VaultError::WrongPassphrase)
        ));
        assert_eq!(snapshot(&p), before, "a wrong passphrase changed the files");
        let v = Vault::unlock(&p, &pass("correct horse"), &mut OsRng).unwrap();
        assert_eq!(v.blob("state").unwrap().unwrap().as_slice(), b"hello");
        let msgs = v.messages(1).unwrap();
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].as_slice(), b"record one");
        assert!(matches!(
            Vault::create(&p, &pass("x"), &mut OsRng),
            Err(VaultError::AlreadyExists)
        ));
        assert!(matches!(
            Vault::unlock(&dir.path().join("none"), &pass("x"), &mut OsRng),
            Err(VaultError::NotFound)
        ));
    }

    #[test]
    fn files_have_no_recognizable_header_or_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("profile");
        let mut v = Vault::create(&p, &pass("pw"), &mut OsRng).unwrap();
        v.transaction(|tx| {
            tx.put_blob("alias-Marker", b"PLAINTEXT-MARKER-7781")?;
            tx.insert_message(3, b"id", b"MESSAGE-MARKER-1234", None)
                .map(|_| ())
        })
        .unwrap();
        drop(v);
        for (name, bytes) in snapshot(&p) {
            assert!(
                !bytes.starts_with(b"SQLite format"),
                "{name} has a SQLite header"
            );
            for marker in [
                &b"PLAINTEXT-MARKER-7781"[..],
                b"MESSAGE-MARKER-1234",
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
    fn a_destroyed_message_cannot_be_decrypted_from_an_old_copy() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("profile");
        let mut v = Vault::create(&p, &pass("pw"), &mut OsRng).unwrap();
        v.transaction(|tx| tx.insert_message(1, b"m", b"secret text", None).map(|_| ()))
            .unwrap();
        // Keep a copy of the sealed record, as stale disk blocks would.
        let (idx, sealed): (i64, Vec<u8>) = v
            .conn
            .query_row("SELECT key_idx, record FROM messages", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        let key_before = v.slab.key(idx as u64).unwrap();
        assert!(open_record(&key_before, 1, b"m", &sealed).is_some());
        v.transaction(|tx| tx.delete_message(1, b"m").map(|_| ()))
            .unwrap();
        let key_after = v.slab.key(idx as u64).unwrap();
        assert_ne!(*key_before, *key_after);
        assert!(
            open_record(&key_after, 1, b"m", &sealed).is_none(),
            "the old copy is unreadable"
        );
        // The freed entry is reused by the next message.
        v.transaction(|tx| tx.insert_message(1, b"n", b"next", None).map(|_| ()))
            .unwrap();
        let reused: i64 = v
            .conn
            .query_row("SELECT key_idx FROM messages", [], |r| r.get(0))
            .unwrap();
        assert_eq!(reused, idx);
    }

    #[test]
    fn duress_opens_the_decoy_and_destroys_the_real_profile() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("profile");
        let mut real = Vault::create(&p, &pass("real"), &mut OsRng).unwrap();
        real.transaction(|tx| tx.put_blob("who", b"real")).unwrap();
        let mut decoy = real.set_duress(&pass("duress"), &mut OsRng).unwrap();
        decoy
            .transaction(|tx| tx.put_blob("who", b"decoy"))
            .unwrap();
        drop(decoy);
        real.equalize(&mut OsRng).unwrap();
        drop(real);
        let names_and_sizes = sizes(&p);
        // The real passphrase still opens the real profile, and leaves the decoy.
        let again = Vault::unlock(&p, &pass("real"), &mut OsRng).unwrap();
        assert_eq!(again.blob("who").unwrap().unwrap().as_slice(), b"real");
        assert!(again.open_decoy().unwrap().is_some());
        drop(again);
        // Duress: the decoy opens; the real one is gone; files and sizes stay.
        let d = Vault::unlock(&p, &pass("duress"), &mut OsRng).unwrap();
        assert_eq!(d.blob("who").unwrap().unwrap().as_slice(), b"decoy");
        assert!(d.open_decoy().unwrap().is_none());
        drop(d);
        assert_eq!(sizes(&p), names_and_sizes);
        assert!(matches!(
            Vault::unlock(&p, &pass("real"), &mut OsRng),
            Err(VaultError::WrongPassphrase)
        ));
        assert!(Vault::unlock(&p, &pass("duress"), &mut OsRng).is_ok());
    }

    #[test]
    fn slots_keep_equal_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("profile");
        let mut v = Vault::create(&p, &pass("pw"), &mut OsRng).unwrap();
        v.transaction(|tx| {
            for i in 0..300u32 {
                tx.insert_message(1, &i.to_be_bytes(), &[7u8; 2000], None)?;
            }
            Ok(())
        })
        .unwrap();
        v.equalize(&mut OsRng).unwrap();
        let s = sizes(&p);
        let get = |n: &str| s.iter().find(|(x, _)| x == n).map(|(_, l)| *l).unwrap();
        assert_eq!(get("0"), get("1"));
        assert_eq!(get("0.k"), get("1.k"));
    }

    #[test]
    fn optional_wipe_after_wrong_passphrases() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("profile");
        let v = Vault::create(&p, &pass("pw"), &mut OsRng).unwrap();
        assert_eq!(v.wipe_after(), 0, "off by default");
        v.set_wipe_after(3, &mut OsRng).unwrap();
        drop(v);
        for _ in 0..2 {
            assert!(matches!(
                Vault::unlock(&p, &pass("no"), &mut OsRng),
                Err(VaultError::WrongPassphrase)
            ));
        }
        // A right passphrase resets the count.
        drop(Vault::unlock(&p, &pass("pw"), &mut OsRng).unwrap());
        for _ in 0..2 {
            assert!(matches!(
                Vault::unlock(&p, &pass("no"), &mut OsRng),
                Err(VaultError::WrongPassphrase)
            ));
        }
        assert!(p.exists());
        assert!(matches!(
            Vault::unlock(&p, &pass("no"), &mut OsRng),
            Err(VaultError::WrongPassphrase)
        ));
        assert!(
            !p.exists(),
            "the third wrong passphrase in a row wiped the profile"
        );
    }

    #[test]
    fn old_files_are_migrated_and_newer_ones_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("profile");
        let v = Vault::create(&p, &pass("pw"), &mut OsRng).unwrap();
        // Make it look like a file of the first release: schema 1 only.
        v.conn
            .execute_batch(
                "DROP TABLE contacts; DROP TABLE outbox; DROP INDEX messages_key; PRAGMA user_version = 1;",
            )
            .unwrap();
        drop(v);
        let mut v = Vault::unlock(&p, &pass("pw"), &mut OsRng).unwrap();
        let version: i64 = v
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        v.transaction(|tx| tx.put_record(Table::Contacts, 7, Some(b"seven")))
            .unwrap();
        assert_eq!(v.records(Table::Contacts).unwrap()[0].0, 7);
        // A file from a newer Ferry: refused with a clear error, unchanged.
        v.conn.execute_batch("PRAGMA user_version = 99;").unwrap();
        drop(v);
        let before = snapshot(&p);
        match Vault::unlock(&p, &pass("pw"), &mut OsRng) {
            Err(VaultError::Corrupt(m)) => assert!(m.contains("newer"), "{m}"),
            other => panic!("opened a newer file: {:?}", other.map(|_| ())),
        }
        assert_eq!(snapshot(&p), before);
    }

    #[test]
    fn a_second_process_cannot_open_an_open_profile() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("profile");
        let v = Vault::create(&p, &pass("pw"), &mut OsRng).unwrap();
        // Another open file description on the same directory stands in for
        // another process: flock locks belong to the open file.
        let started = std::time::Instant::now();
        assert!(matches!(
            Vault::unlock(&p, &pass("pw"), &mut OsRng),
            Err(VaultError::InUse)
        ));
        assert!(started.elapsed() >= LOCK_WAIT);
        drop(v);
        assert!(Vault::unlock(&p, &pass("pw"), &mut OsRng).is_ok());
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
        assert!(n >= 4);
        assert!(!p.exists());
        assert!(matches!(
            Vault::unlock(&p, &pass("pw"), &mut OsRng),
            Err(VaultError::NotFound)
        ));
    }
}
