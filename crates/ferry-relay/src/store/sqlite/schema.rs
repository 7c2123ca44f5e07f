//! The SQLite store's schema and its migrations: a new store gets the
//! first schema and every step; an older one the steps it lacks; a newer
//! one is refused untouched.

use rusqlite::Connection;

use super::backend;
use crate::store::StoreError;

/// Schema version written to `PRAGMA user_version`.
pub(super) const SCHEMA_VERSION: i64 = 6;

const SCHEMA: &str = "
CREATE TABLE mailboxes (
    id            BLOB PRIMARY KEY,
    recipient_key BLOB NOT NULL,
    sender_key    BLOB,
    next_seq      INTEGER NOT NULL DEFAULT 1,
    msg_count     INTEGER NOT NULL DEFAULT 0,
    msg_bytes     INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE messages (
    mailbox    BLOB NOT NULL,
    seq        INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    size       INTEGER NOT NULL,
    payload    BLOB NOT NULL,
    UNIQUE (mailbox, seq)
);
CREATE INDEX messages_expiry ON messages (expires_at);
CREATE TABLE canaries (
    id         BLOB PRIMARY KEY,
    owner      BLOB NOT NULL,
    mailbox    BLOB NOT NULL,
    release_at INTEGER NOT NULL,
    payload    BLOB NOT NULL
);
CREATE INDEX canaries_release ON canaries (release_at);
";

/// Schema migrations: entry `i` takes a store from version `i + 1` to
/// `i + 2`. Empty while version 1 is current; a change to the tables adds
/// a step here (and bumps `SCHEMA_VERSION`), never edits `SCHEMA`.
const MIGRATIONS: &[&str] = &[
    // 1 → 2: canaries reserve quota in their mailbox, counted per mailbox.
    "CREATE INDEX canaries_mailbox ON canaries (mailbox);",
    // 2 → 3: ids of deleted mailboxes stay taken for a while.
    "CREATE TABLE tombstones (id BLOB PRIMARY KEY, keep_until INTEGER NOT NULL) WITHOUT ROWID;
     CREATE INDEX tombstones_keep_until ON tombstones (keep_until);",
    // 3 → 4: canaries have a fire-only key and the alert it releases.
    "ALTER TABLE canaries ADD COLUMN fire_key BLOB;
     ALTER TABLE canaries ADD COLUMN fire_payload BLOB;",
    // 4 → 5: stowed accounts, one sealed record per locator.
    "CREATE TABLE stows (
        locator    BLOB PRIMARY KEY,
        owner      BLOB NOT NULL,
        access     BLOB NOT NULL,
        version    INTEGER NOT NULL,
        record     BLOB NOT NULL,
        digest     BLOB NOT NULL,
        lease      BLOB,
        failures   INTEGER NOT NULL DEFAULT 0,
        updated_at INTEGER NOT NULL
     ) WITHOUT ROWID;",
    // 5 → 6: group mailboxes: one log per group, commits by epoch, keys
    // by role (0 admin, 1 read; an old read key reads up to `until_seq`).
    "CREATE TABLE groups (
        id         BLOB PRIMARY KEY,
        write_key  BLOB NOT NULL,
        epoch      INTEGER NOT NULL DEFAULT 0,
        next_seq   INTEGER NOT NULL DEFAULT 1,
        msg_count  INTEGER NOT NULL DEFAULT 0,
        msg_bytes  INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE group_keys (
        grp       BLOB NOT NULL,
        role      INTEGER NOT NULL,
        key       BLOB NOT NULL,
        until_seq INTEGER,
        PRIMARY KEY (grp, role, key)
     ) WITHOUT ROWID;
     CREATE TABLE group_entries (
        grp        BLOB NOT NULL,
        seq        INTEGER NOT NULL,
        epoch      INTEGER NOT NULL,
        kind       INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        size       INTEGER NOT NULL,
        payload    BLOB NOT NULL,
        PRIMARY KEY (grp, seq)
     ) WITHOUT ROWID;
     CREATE INDEX group_entries_expiry ON group_entries (expires_at);
     CREATE TABLE group_commits (
        grp    BLOB NOT NULL,
        epoch  INTEGER NOT NULL,
        seq    INTEGER NOT NULL,
        digest BLOB NOT NULL,
        PRIMARY KEY (grp, epoch)
     ) WITHOUT ROWID;",
];

/// Creates a new store or brings an older one forward, in one transaction;
/// a store from a newer relay is refused untouched.
pub(super) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(backend)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::UnsupportedVersion {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    let mut sql = String::from("BEGIN IMMEDIATE;");
    if version == 0 {
        sql.push_str(SCHEMA);
        for step in MIGRATIONS {
            sql.push_str(step);
        }
    } else {
        let steps = usize::try_from(version - 1)
            .ok()
            .and_then(|start| MIGRATIONS.get(start..))
            .ok_or(StoreError::UnsupportedVersion {
                found: version,
                supported: SCHEMA_VERSION,
            })?;
        for step in steps {
            sql.push_str(step);
        }
    }
    sql.push_str(&format!("PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"));
    if let Err(e) = conn.execute_batch(&sql) {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(backend(e));
    }
    Ok(())
}
