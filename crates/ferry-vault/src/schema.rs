//! The database layout of a slot, its version and its migrations, and the
//! reads shared by the vault and its transactions.

use rusqlite::{Connection, OptionalExtension as _};
use zeroize::Zeroizing;

use crate::record::open_record;
use crate::slab::Slab;
use crate::{MlsEntries, VaultError, db};

/// The schema this release writes; older files are migrated forward.
pub(crate) const SCHEMA_VERSION: i64 = 4;

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
    // 2 -> 3: MLS values and named blobs sealed under slab keys of their
    // own, destroyed when the value is replaced (rows written before stay
    // as they are until then).
    "ALTER TABLE mls ADD COLUMN key_idx INTEGER;
     ALTER TABLE blobs ADD COLUMN key_idx INTEGER;
     CREATE INDEX mls_key ON mls (key_idx);
     CREATE INDEX blobs_key ON blobs (key_idx);",
    // 3 -> 4: one record per group chat.
    "CREATE TABLE groups (id INTEGER PRIMARY KEY, record BLOB NOT NULL);",
];

/// A table of numbered records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Table {
    /// One record per contact.
    Contacts,
    /// One record per queued relay call.
    Outbox,
    /// One record per group chat.
    Groups,
}

impl Table {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Contacts => "contacts",
            Self::Outbox => "outbox",
            Self::Groups => "groups",
        }
    }
}

/// Runs the migrations from `from` to [`SCHEMA_VERSION`] in one transaction.
pub(crate) fn migrate(conn: &Connection, from: i64) -> Result<(), VaultError> {
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
pub(crate) fn full_schema() -> String {
    let mut sql = String::from(SCHEMA);
    for step in MIGRATIONS {
        sql.push_str(step);
    }
    sql
}

pub(crate) fn read_blob(
    conn: &Connection,
    slab: &Slab,
    name: &str,
) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
    let row: Option<(Vec<u8>, Option<i64>)> = conn
        .query_row(
            "SELECT value, key_idx FROM blobs WHERE name = ?1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(db)?;
    row.map(|(v, idx)| unseal(slab, idx, BLOB_DOMAIN, name.as_bytes(), v))
        .transpose()
}

/// Record domains in the AEAD's associated data (messages use contact ids).
pub(crate) const MLS_DOMAIN: u64 = u64::MAX;
pub(crate) const BLOB_DOMAIN: u64 = u64::MAX - 1;

/// Opens a value sealed under slab entry `idx` (`None`: written before
/// values were sealed, as it is).
pub(crate) fn unseal(
    slab: &Slab,
    idx: Option<i64>,
    domain: u64,
    name: &[u8],
    v: Vec<u8>,
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let v = Zeroizing::new(v);
    let Some(idx) = idx else {
        return Ok(v);
    };
    let key = slab.key(u64::try_from(idx).unwrap_or(0))?;
    open_record(&key, domain, name, &v)
        .ok_or_else(|| VaultError::Corrupt("a sealed value does not open".into()))
}

/// Numbered records, values wiped on drop.
pub type Records = Vec<(u64, Zeroizing<Vec<u8>>)>;

pub(crate) fn read_records(conn: &Connection, table: Table) -> Result<Records, VaultError> {
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

pub(crate) fn read_mls_state(conn: &Connection, slab: &Slab) -> Result<MlsEntries, VaultError> {
    let mut stmt = conn
        .prepare_cached("SELECT k, v, key_idx FROM mls")
        .map_err(db)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Option<i64>>(2)?,
            ))
        })
        .map_err(db)?;
    rows.map(|r| {
        let (k, v, idx) = r.map_err(db)?;
        let v = unseal(slab, idx, MLS_DOMAIN, &k, v)?;
        Ok((k, v))
    })
    .collect()
}
