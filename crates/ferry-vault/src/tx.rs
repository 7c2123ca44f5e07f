//! Writes inside one vault transaction.

use rand_core::OsRng;
use rusqlite::{OptionalExtension as _, params};
use zeroize::Zeroizing;

use crate::record::seal_record;
use crate::schema::{
    BLOB_DOMAIN, MLS_DOMAIN, Records, Table, read_blob, read_mls_state, read_records,
};
use crate::slab::Slab;
use crate::{MlsEntries, VaultError, db};

/// Writes inside a [`Vault::transaction`].
pub struct Tx<'a> {
    pub(crate) tx: &'a rusqlite::Transaction<'a>,
    pub(crate) slab: &'a Slab,
    /// Slab entries of values replaced in this transaction: freed now,
    /// destroyed once it commits, never reused before.
    pub(crate) doomed: &'a std::cell::RefCell<Vec<i64>>,
}

impl Tx<'_> {
    /// Reads a named blob.
    pub fn blob(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
        read_blob(self.tx, self.slab, name)
    }

    /// The whole MLS key-value state.
    pub fn mls_state(&self) -> Result<MlsEntries, VaultError> {
        read_mls_state(self.tx, self.slab)
    }

    /// Sets a named blob.
    pub fn put_blob(&self, name: &str, value: &[u8]) -> Result<(), VaultError> {
        self.doom_blob_key(name)?;
        let (idx, sealed) = self.seal(BLOB_DOMAIN, name.as_bytes(), value)?;
        self.tx
            .execute(
                "INSERT INTO blobs (name, value, key_idx) VALUES (?1, ?2, ?3) ON CONFLICT(name) DO UPDATE SET value = excluded.value, key_idx = excluded.key_idx",
                params![name, sealed, idx],
            )
            .map(|_| ())
            .map_err(db)
    }

    /// A named blob holding a JSON value of format `version` (or the bare
    /// JSON of the first releases).
    pub fn json<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        version: u8,
    ) -> Result<Option<T>, VaultError> {
        self.blob(name)?
            .map(|b| crate::versioned::decode(version, &b))
            .transpose()
    }

    /// Sets a named blob to `version ‖ JSON of value`.
    pub fn put_json<T: serde::Serialize>(
        &self,
        name: &str,
        version: u8,
        value: &T,
    ) -> Result<(), VaultError> {
        self.put_blob(name, &crate::versioned::encode(version, value)?)
    }

    /// Removes a named blob (its key destroyed once this commits).
    pub fn delete_blob(&self, name: &str) -> Result<(), VaultError> {
        self.doom_blob_key(name)?;
        self.tx
            .execute("DELETE FROM blobs WHERE name = ?1", [name])
            .map(|_| ())
            .map_err(db)
    }

    /// Frees the slab entry of blob `name`'s current value, if sealed.
    fn doom_blob_key(&self, name: &str) -> Result<(), VaultError> {
        let old: Option<Option<i64>> = self
            .tx
            .query_row("SELECT key_idx FROM blobs WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(db)?;
        match old {
            Some(Some(idx)) => self.doom(idx),
            _ => Ok(()),
        }
    }

    /// Frees slab entry `idx`, to be destroyed when this commits.
    fn doom(&self, idx: i64) -> Result<(), VaultError> {
        self.doomed.borrow_mut().push(idx);
        self.tx
            .execute("INSERT OR IGNORE INTO slab_free (idx) VALUES (?1)", [idx])
            .map(|_| ())
            .map_err(db)
    }

    /// Seals `value` under a fresh slab key: (entry, sealed bytes).
    fn seal(&self, domain: u64, name: &[u8], value: &[u8]) -> Result<(i64, Vec<u8>), VaultError> {
        let idx = self.alloc_key()?;
        let key = self.slab.fresh(idx, &mut OsRng)?;
        let sealed = seal_record(&key, domain, name, value)?;
        Ok((i64::try_from(idx).unwrap_or(i64::MAX), sealed))
    }

    fn alloc_key(&self) -> Result<u64, VaultError> {
        let doomed = self.doomed.borrow();
        let free: Option<i64> = {
            let mut stmt = self
                .tx
                .prepare_cached("SELECT idx FROM slab_free ORDER BY idx")
                .map_err(db)?;
            let mut rows = stmt.query([]).map_err(db)?;
            let mut found = None;
            while let Some(r) = rows.next().map_err(db)? {
                let idx: i64 = r.get(0).map_err(db)?;
                // An entry freed in this transaction keeps its key until
                // the transaction commits.
                if !doomed.contains(&idx) {
                    found = Some(idx);
                    break;
                }
            }
            found
        };
        if let Some(idx) = free {
            self.tx
                .execute("DELETE FROM slab_free WHERE idx = ?1", [idx])
                .map_err(db)?;
            return Ok(u64::try_from(idx).unwrap_or(0));
        }
        let next: i64 = self
            .tx
            .query_row(
                "SELECT max(coalesce((SELECT max(key_idx) FROM messages), -1), coalesce((SELECT max(idx) FROM slab_free), -1), coalesce((SELECT max(key_idx) FROM mls), -1), coalesce((SELECT max(key_idx) FROM blobs), -1)) + 1",
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

    /// Destroys every message of a conversation (a group left or removed
    /// from, history not kept); returns how many.
    pub fn delete_conversation(&self, contact: u64) -> Result<usize, VaultError> {
        self.destroy_messages("contact = ?1", i64::try_from(contact).unwrap_or(i64::MAX))
    }

    /// Destroys every message that expired at or before `now`.
    pub fn expire(&self, now: u64) -> Result<usize, VaultError> {
        self.destroy_messages(
            "expires_at IS NOT NULL AND expires_at <= ?1",
            i64::try_from(now).unwrap_or(i64::MAX),
        )
    }

    /// Destroys the messages `filter` (SQL over `messages`, with `?1`)
    /// selects, their slab keys first; returns how many.
    fn destroy_messages(&self, filter: &'static str, arg: i64) -> Result<usize, VaultError> {
        let idxs: Vec<i64> = {
            let mut stmt = self
                .tx
                .prepare_cached(&format!("SELECT key_idx FROM messages WHERE {filter}"))
                .map_err(db)?;
            stmt.query_map([arg], |r| r.get(0))
                .map_err(db)?
                .collect::<Result<_, _>>()
                .map_err(db)?
        };
        for idx in &idxs {
            self.destroy_key(*idx)?;
        }
        self.tx
            .execute(&format!("DELETE FROM messages WHERE {filter}"), [arg])
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
    /// Each value is sealed under a slab key of its own; the key of the
    /// value it replaces is destroyed once this commits, so old secrets
    /// carved from freed pages or the journal stay unreadable even with
    /// the passphrase.
    pub fn update_mls<'e>(
        &self,
        changes: impl IntoIterator<Item = (&'e [u8], Option<&'e [u8]>)>,
    ) -> Result<(), VaultError> {
        for (k, v) in changes {
            let old: Option<Option<i64>> = self
                .tx
                .prepare_cached("SELECT key_idx FROM mls WHERE k = ?1")
                .and_then(|mut s| s.query_row([k], |r| r.get(0)).optional())
                .map_err(db)?;
            if let Some(Some(idx)) = old {
                self.doom(idx)?;
            }
            match v {
                Some(v) => {
                    let (idx, sealed) = self.seal(MLS_DOMAIN, k, v)?;
                    self.tx
                        .prepare_cached(
                            "INSERT INTO mls (k, v, key_idx) VALUES (?1, ?2, ?3) ON CONFLICT(k) DO UPDATE SET v = excluded.v, key_idx = excluded.key_idx",
                        )
                        .and_then(|mut s| s.execute(params![k, sealed, idx]))
                        .map_err(db)?;
                }
                None => {
                    self.tx
                        .prepare_cached("DELETE FROM mls WHERE k = ?1")
                        .and_then(|mut s| s.execute([k]))
                        .map_err(db)?;
                }
            }
        }
        Ok(())
    }

    /// Replaces the MLS state with exactly `entries`.
    pub fn set_mls_state<'e>(
        &self,
        entries: impl IntoIterator<Item = (&'e [u8], &'e [u8])>,
    ) -> Result<(), VaultError> {
        let old: Vec<i64> = {
            let mut stmt = self
                .tx
                .prepare_cached("SELECT key_idx FROM mls WHERE key_idx IS NOT NULL")
                .map_err(db)?;
            stmt.query_map([], |r| r.get(0))
                .map_err(db)?
                .collect::<Result<_, _>>()
                .map_err(db)?
        };
        for idx in old {
            self.doom(idx)?;
        }
        self.tx.execute("DELETE FROM mls", []).map_err(db)?;
        for (k, v) in entries {
            let (idx, sealed) = self.seal(MLS_DOMAIN, k, v)?;
            self.tx
                .prepare_cached("INSERT INTO mls (k, v, key_idx) VALUES (?1, ?2, ?3)")
                .and_then(|mut s| s.execute(params![k, sealed, idx]))
                .map_err(db)?;
        }
        Ok(())
    }
}
