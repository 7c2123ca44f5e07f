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
//! Message records, MLS values and named blobs are encrypted under keys of
//! their own kept in the slab, destroyed with the message or when the value
//! is replaced (see [`slab`]).

mod counter;
mod lock;
mod record;
mod schema;
mod slab;
mod slot;
mod stow;
mod tx;
mod versioned;
mod wipe;

use std::path::{Path, PathBuf};

use rand_core::CryptoRngCore;
use rusqlite::Connection;
use secrecy::{ExposeSecret as _, SecretString};
use zeroize::Zeroizing;

use crate::lock::DirLock;
pub use crate::lock::LOCK_WAIT;
use crate::record::open_record;
pub use crate::schema::{Records, Table};
use crate::schema::{SCHEMA_VERSION, full_schema, read_blob, read_mls_state, read_records};
use crate::slab::Slab;
use crate::slot::{
    apply_key, configure, db_path, derive_key, empty_in_place, even_out_times, file_len,
    journal_path, make_filler, randomize, read_salt, slab_path, try_open,
};
pub use crate::stow::{MAX_STOW_FILES_BYTES, ProfileFiles, install};
pub use crate::tx::Tx;
pub use crate::wipe::panic_wipe;

pub(crate) const SALT_LEN: usize = 16;
pub(crate) const KEY_LEN: usize = 32;
/// Argon2id memory in KiB (64 MiB).
pub const ARGON2_MEMORY_KIB: u32 = 64 * 1024;
pub(crate) const ARGON2_PASSES: u32 = 3;
/// Database bytes every new slot starts with (free pages).
const PREALLOC_DB: u64 = 2 * 1024 * 1024;
/// Key slab entries every new slot starts with (random, unused).
const PREALLOC_SLAB_ENTRIES: u64 = 2048;
/// Bytes overwritten at the head of the other slot at every unlock.
pub(crate) const HEAD: u64 = 64 * 1024;
const DURESS_BLOB: &str = "duress";
/// Format of the duress configuration.
const DURESS_VERSION: u8 = 1;

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
    /// The duress passphrase given is the profile's own passphrase: it
    /// would open the real profile, never the decoy.
    #[error("the duress passphrase must differ from your passphrase")]
    DuressIsPassphrase,
    /// A duress passphrase was set on the decoy while it was opened
    /// through the real profile: its "other slot" is the real profile.
    #[error("the decoy has no duress passphrase of its own; set it from your profile")]
    DuressInDecoy,
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

pub(crate) fn db(e: rusqlite::Error) -> VaultError {
    VaultError::Db(e.to_string())
}

/// A slot's raw database key.
type SlotKey = Zeroizing<[u8; KEY_LEN]>;

/// MLS key-value pairs, values zeroized on drop.
pub type MlsEntries = Vec<(Vec<u8>, Zeroizing<Vec<u8>>)>;

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
        // Emptied in place, never deleted: a new file's creation time
        // would date the decoy.
        for p in [db_path(dir, slot), journal_path(dir, slot)] {
            empty_in_place(&p)?;
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
        // Every new slot (a profile, a decoy) starts with room to spare, so
        // a little-used one is mostly free space whichever it is: a decoy's
        // fill level does not show a bigger profile beside it.
        let slab = Slab::create(&slab_path(dir, slot), PREALLOC_SLAB_ENTRIES, rng)?;
        Self::grow_db(&conn, &db_path(dir, slot), PREALLOC_DB)?;
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
    /// profile in the other slot, lets `prepare` fill it, and only then
    /// records it in this profile (a decoy that could not be prepared is
    /// never the one the duress passphrase opens).
    pub fn set_duress(
        &mut self,
        duress: &SecretString,
        rng: &mut impl CryptoRngCore,
        prepare: impl FnOnce(&mut Vault) -> Result<(), VaultError>,
    ) -> Result<(), VaultError> {
        if duress.expose_secret().is_empty() {
            return Err(VaultError::EmptyPassphrase);
        }
        // A decoy being prepared through the real profile sits beside it:
        // a decoy of its own would be made over the real profile.
        if self.via_real {
            return Err(VaultError::DuressInDecoy);
        }
        // Typed under coercion it would open the real profile (unlock tries
        // both slots); refused here, before anything changes.
        let real = db_path(&self.dir, self.slot);
        let salt = read_salt(&real)?;
        let key = derive_key(duress, &salt)?;
        if try_open(&real, &key, &salt)?.is_some() {
            return Err(VaultError::DuressIsPassphrase);
        }
        let other = 1 - self.slot;
        let (mut decoy, key, salt) =
            Self::new_in_slot(&self.dir, other, duress, self._lock.clone(), rng)?;
        prepare(&mut decoy)?;
        drop(decoy);
        let cfg = DuressConfig {
            slot: other,
            key: *key,
            salt,
        };
        self.transaction(|tx| tx.put_json(DURESS_BLOB, DURESS_VERSION, &cfg))?;
        self.equalize(rng)
    }

    /// The decoy profile, opened with the key kept in this (real) profile.
    pub fn open_decoy(&self) -> Result<Option<Vault>, VaultError> {
        let Some(cfg) = self.json::<DuressConfig>(DURESS_BLOB, DURESS_VERSION)? else {
            return Ok(None);
        };
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
        even_out_times(&self.dir)
    }

    /// The profile directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads a named blob.
    pub fn blob(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
        read_blob(&self.conn, &self.slab, name)
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

    /// The conversations (contact or group ids) that hold messages.
    pub fn conversations(&self) -> Result<Vec<u64>, VaultError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT DISTINCT contact FROM messages")
            .map_err(db)?;
        let rows = stmt.query_map([], |r| r.get::<_, i64>(0)).map_err(db)?;
        rows.map(|r| r.map(|c| u64::try_from(c).unwrap_or(0)).map_err(db))
            .collect()
    }

    /// The whole MLS key-value state.
    pub fn mls_state(&self) -> Result<MlsEntries, VaultError> {
        read_mls_state(&self.conn, &self.slab)
    }

    /// Every record of a table, by id.
    pub fn records(&self, table: Table) -> Result<Records, VaultError> {
        read_records(&self.conn, table)
    }

    /// A named blob holding a JSON value of format `version` (or the bare
    /// JSON of the first releases).
    pub fn json<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        version: u8,
    ) -> Result<Option<T>, VaultError> {
        self.blob(name)?
            .map(|b| versioned::decode(version, &b))
            .transpose()
    }

    /// Destroys every message that expired at or before `now`; returns how
    /// many. Checking finds out with a read first, so calling it every
    /// second costs no write transaction when nothing is due.
    pub fn expire(&mut self, now: u64) -> Result<usize, VaultError> {
        let due: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM messages WHERE expires_at IS NOT NULL AND expires_at <= ?1)",
                [i64::try_from(now).unwrap_or(i64::MAX)],
                |r| r.get(0),
            )
            .map_err(db)?;
        if !due {
            return Ok(0);
        }
        self.transaction(|tx| tx.expire(now))
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
        let doomed = std::cell::RefCell::new(Vec::new());
        let out = f(&Tx {
            tx: &tx,
            slab: &self.slab,
            doomed: &doomed,
        })?;
        self.slab.sync()?;
        tx.commit().map_err(db)?;
        // Keys of replaced values go only once the replacement is durable
        // (a failed transaction keeps the old values readable).
        let doomed = doomed.into_inner();
        if !doomed.is_empty() {
            for idx in doomed {
                self.slab
                    .destroy(u64::try_from(idx).unwrap_or(0), &mut rand_core::OsRng)?;
            }
            self.slab.sync()?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
