//! Group mailboxes in the SQLite backend: one log per group, commits by
//! compare-and-swap on its epoch, key changes in the commit's transaction.

use bytes::Bytes;
use ferry_proto::{MailboxId, PublicKey, Seq};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest as _, Sha256};

use super::{
    SqliteStore, StoreError, backend, key_from_blob, seq_from_sql, seq_to_sql, time_to_sql,
};
use crate::store::{
    CommitPut, Committed, Created, EntryKind, FetchLimits, GroupBatch, GroupEntry, GroupPost,
    GroupRecord, MAX_ADMINS, NewGroup, ReadKey,
};

/// `group_keys.role` of an admin key.
const ADMIN: i64 = 0;
/// `group_keys.role` of a read key.
const READ: i64 = 1;

/// What a retry must repeat exactly: the payload, the admin key that
/// signed it and every key change, each length-prefixed.
fn commit_digest(put: &CommitPut) -> Vec<u8> {
    let mut h = Sha256::new();
    let mut part = |b: &[u8]| {
        h.update((b.len() as u64).to_be_bytes());
        h.update(b);
    };
    part(&put.payload);
    part(&put.admin.to_bytes());
    let ch = &put.changes;
    match &ch.rotate {
        Some((r, w)) => {
            part(&r.to_bytes());
            part(&w.to_bytes());
        }
        None => part(&[]),
    }
    for list in [&ch.add_admins, &ch.remove_admins] {
        part(&(list.len() as u64).to_be_bytes());
        for k in list {
            part(&k.to_bytes());
        }
    }
    h.finalize().to_vec()
}

/// A stored key and, for an old read key, the last entry it reads.
type KeyRow = (Vec<u8>, Option<i64>);

struct Head {
    write: Vec<u8>,
    epoch: i64,
    next_seq: i64,
    count: i64,
    bytes: i64,
}

fn head(c: &Connection, id: &MailboxId) -> Result<Option<Head>, StoreError> {
    c.prepare_cached(
        "SELECT write_key, epoch, next_seq, msg_count, msg_bytes FROM groups WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.query_row([&id.as_bytes()[..]], |r| {
            Ok(Head {
                write: r.get(0)?,
                epoch: r.get(1)?,
                next_seq: r.get(2)?,
                count: r.get(3)?,
                bytes: r.get(4)?,
            })
        })
        .optional()
    })
    .map_err(backend)
}

fn epoch_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn epoch_to_sql(e: u64) -> i64 {
    i64::try_from(e).unwrap_or(i64::MAX)
}

fn keys(c: &Connection, id: &MailboxId, role: i64) -> Result<Vec<KeyRow>, StoreError> {
    let mut stmt = c
        .prepare_cached(
            "SELECT key, until_seq FROM group_keys WHERE grp = ?1 AND role = ?2
             ORDER BY until_seq IS NULL, until_seq",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map(params![&id.as_bytes()[..], role], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(backend)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(backend)
}

fn add_key(c: &Connection, id: &MailboxId, role: i64, key: &PublicKey) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO group_keys (grp, role, key, until_seq) VALUES (?1, ?2, ?3, NULL)
         ON CONFLICT (grp, role, key) DO UPDATE SET until_seq = NULL",
    )
    .and_then(|mut s| s.execute(params![&id.as_bytes()[..], role, &key.to_bytes()[..]]))
    .map_err(backend)?;
    Ok(())
}

/// Appends one entry and moves the head; the caller has checked the rest.
fn append_entry(
    c: &Connection,
    id: &MailboxId,
    h: &Head,
    epoch: u64,
    kind: EntryKind,
    payload: &[u8],
    expires_at: u64,
) -> Result<Seq, StoreError> {
    let size = i64::try_from(payload.len()).unwrap_or(i64::MAX);
    c.prepare_cached(
        "INSERT INTO group_entries (grp, seq, epoch, kind, expires_at, size, payload)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            &id.as_bytes()[..],
            h.next_seq,
            epoch_to_sql(epoch),
            kind.to_sql(),
            time_to_sql(expires_at),
            size,
            payload
        ])
    })
    .map_err(backend)?;
    c.prepare_cached(
        "UPDATE groups SET next_seq = next_seq + 1, msg_count = msg_count + 1,
                msg_bytes = msg_bytes + ?2 WHERE id = ?1",
    )
    .and_then(|mut s| s.execute(params![&id.as_bytes()[..], size]))
    .map_err(backend)?;
    Ok(seq_from_sql(h.next_seq))
}

impl SqliteStore {
    pub(super) async fn group_create(&self, g: NewGroup) -> Result<Created, StoreError> {
        self.write(move |c| {
            let id = &g.id.as_bytes()[..];
            if let Some(h) = head(c, &g.id)? {
                let admins = keys(c, &g.id, ADMIN)?;
                let reads = keys(c, &g.id, READ)?;
                let same = h.epoch == 0
                    && h.write == g.write.to_bytes()
                    && admins == [(g.admin.to_bytes().to_vec(), None)]
                    && reads == [(g.read.to_bytes().to_vec(), None)];
                return if same {
                    Ok(Created::Existing)
                } else {
                    Err(StoreError::MailboxExists)
                };
            }
            let taken: Option<i64> = c
                .prepare_cached(
                    "SELECT 1 FROM tombstones WHERE id = ?1
                     UNION ALL SELECT 1 FROM mailboxes WHERE id = ?1",
                )
                .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
                .map_err(backend)?;
            if taken.is_some() {
                return Err(StoreError::MailboxExists);
            }
            c.prepare_cached("INSERT INTO groups (id, write_key, created_at) VALUES (?1, ?2, ?3)")
                .and_then(|mut s| {
                    s.execute(params![id, &g.write.to_bytes()[..], time_to_sql(g.now)])
                })
                .map_err(backend)?;
            add_key(c, &g.id, ADMIN, &g.admin)?;
            add_key(c, &g.id, READ, &g.read)?;
            Ok(Created::New)
        })
        .await
    }

    pub(super) async fn group_record(
        &self,
        id: MailboxId,
    ) -> Result<Option<GroupRecord>, StoreError> {
        self.read(move |c| {
            let tx = c.unchecked_transaction().map_err(backend)?;
            let Some(h) = head(&tx, &id)? else {
                return Ok(None);
            };
            let admins = keys(&tx, &id, ADMIN)?
                .into_iter()
                .map(|(k, _)| key_from_blob(k))
                .collect::<Result<Vec<_>, _>>()?;
            let reads = keys(&tx, &id, READ)?
                .into_iter()
                .map(|(k, until)| {
                    Ok(ReadKey {
                        key: key_from_blob(k)?,
                        until: until.map(seq_from_sql),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            tx.finish().map_err(backend)?;
            Ok(Some(GroupRecord {
                epoch: epoch_of(h.epoch),
                admins,
                write: key_from_blob(h.write)?,
                reads,
            }))
        })
        .await
    }

    pub(super) async fn group_post(&self, p: GroupPost) -> Result<Seq, StoreError> {
        self.write(move |c| {
            let h = head(c, &p.group)?.ok_or(StoreError::UnknownMailbox)?;
            let current = epoch_of(h.epoch);
            if p.epoch != current || h.write != p.write.to_bytes() {
                return Err(StoreError::StaleEpoch { current });
            }
            let size = u64::try_from(p.payload.len()).unwrap_or(u64::MAX);
            let count_after = u64::try_from(h.count).unwrap_or(u64::MAX).saturating_add(1);
            let bytes_after = u64::try_from(h.bytes)
                .unwrap_or(u64::MAX)
                .saturating_add(size);
            if count_after > p.quota.max_messages || bytes_after > p.quota.max_bytes {
                return Err(StoreError::MailboxFull);
            }
            append_entry(
                c,
                &p.group,
                &h,
                current,
                EntryKind::Message,
                &p.payload,
                p.expires_at,
            )
        })
        .await
    }

    pub(super) async fn group_commit(&self, put: CommitPut) -> Result<Committed, StoreError> {
        self.write(move |c| {
            let id = &put.group.as_bytes()[..];
            let h = head(c, &put.group)?.ok_or(StoreError::UnknownMailbox)?;
            let current = epoch_of(h.epoch);
            let digest = commit_digest(&put);
            if put.expected != current {
                // The same commit again (a retry after a lost answer) gets
                // the answer it got the first time.
                let earlier: Option<(Vec<u8>, i64)> = c
                    .prepare_cached(
                        "SELECT digest, seq FROM group_commits WHERE grp = ?1 AND epoch = ?2",
                    )
                    .and_then(|mut s| {
                        s.query_row(params![id, epoch_to_sql(put.expected)], |r| {
                            Ok((r.get(0)?, r.get(1)?))
                        })
                        .optional()
                    })
                    .map_err(backend)?;
                return match earlier {
                    Some((d, seq)) if d == digest[..] => Ok(Committed {
                        seq: seq_from_sql(seq),
                        epoch: put.expected.saturating_add(1),
                    }),
                    _ => Err(StoreError::CommitConflict { current }),
                };
            }
            let admin = put.admin.to_bytes();
            if !keys(c, &put.group, ADMIN)?
                .iter()
                .any(|(k, _)| k[..] == admin[..])
            {
                return Err(StoreError::NotAuthorized);
            }
            let size = u64::try_from(put.payload.len()).unwrap_or(u64::MAX);
            let count_after = u64::try_from(h.count).unwrap_or(u64::MAX).saturating_add(1);
            let bytes_after = u64::try_from(h.bytes)
                .unwrap_or(u64::MAX)
                .saturating_add(size);
            if count_after > put.quota.max_messages.saturating_mul(2)
                || bytes_after > put.quota.max_bytes.saturating_mul(2)
            {
                return Err(StoreError::MailboxFull);
            }
            let seq = append_entry(
                c,
                &put.group,
                &h,
                current,
                EntryKind::Commit,
                &put.payload,
                put.expires_at,
            )?;
            let next = current.saturating_add(1);
            c.prepare_cached(
                "INSERT INTO group_commits (grp, epoch, seq, digest) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id,
                    epoch_to_sql(current),
                    seq_to_sql(seq),
                    &digest[..]
                ])
            })
            .map_err(backend)?;
            c.prepare_cached("UPDATE groups SET epoch = ?2 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![id, epoch_to_sql(next)]))
                .map_err(backend)?;
            let ch = &put.changes;
            for k in &ch.add_admins {
                add_key(c, &put.group, ADMIN, k)?;
            }
            for k in &ch.remove_admins {
                c.prepare_cached(
                    "DELETE FROM group_keys WHERE grp = ?1 AND role = ?2 AND key = ?3",
                )
                .and_then(|mut s| s.execute(params![id, ADMIN, &k.to_bytes()[..]]))
                .map_err(backend)?;
            }
            let admins = keys(c, &put.group, ADMIN)?.len();
            if admins == 0 || admins > MAX_ADMINS {
                // Rolled back with the whole commit (its savepoint).
                return Err(StoreError::NoAdminLeft);
            }
            if let Some((read, write)) = &ch.rotate {
                // The old read key still reads up to this commit.
                c.prepare_cached(
                    "UPDATE group_keys SET until_seq = ?3
                     WHERE grp = ?1 AND role = ?2 AND until_seq IS NULL",
                )
                .and_then(|mut s| s.execute(params![id, READ, seq_to_sql(seq)]))
                .map_err(backend)?;
                add_key(c, &put.group, READ, read)?;
                c.prepare_cached("UPDATE groups SET write_key = ?2 WHERE id = ?1")
                    .and_then(|mut s| s.execute(params![id, &write.to_bytes()[..]]))
                    .map_err(backend)?;
            }
            Ok(Committed { seq, epoch: next })
        })
        .await
    }

    pub(super) async fn group_fetch(
        &self,
        id: MailboxId,
        key: PublicKey,
        after: Seq,
        limits: FetchLimits,
        now: u64,
    ) -> Result<GroupBatch, StoreError> {
        self.read(move |c| {
            let tx = c.unchecked_transaction().map_err(backend)?;
            let h = head(&tx, &id)?.ok_or(StoreError::UnknownMailbox)?;
            let wanted = key.to_bytes();
            let until = keys(&tx, &id, READ)?
                .into_iter()
                .find(|(k, _)| k[..] == wanted[..])
                .ok_or(StoreError::NotAuthorized)?
                .1
                .map(seq_from_sql);
            let per = limits.per_mailbox.max(1);
            let mut stmt = tx
                .prepare_cached(
                    "SELECT seq, epoch, kind, payload FROM group_entries
                     WHERE grp = ?1 AND seq > ?2 AND seq <= ?3 AND expires_at > ?4
                     ORDER BY seq LIMIT ?5",
                )
                .map_err(backend)?;
            let mut rows = stmt
                .query(params![
                    &id.as_bytes()[..],
                    seq_to_sql(after),
                    until.map_or(i64::MAX, seq_to_sql),
                    time_to_sql(now),
                    i64::try_from(per + 1).unwrap_or(i64::MAX)
                ])
                .map_err(backend)?;
            let mut batch = GroupBatch {
                epoch: epoch_of(h.epoch),
                ..GroupBatch::default()
            };
            let mut budget = limits.total_bytes;
            while let Some(row) = rows.next().map_err(backend)? {
                if batch.entries.len() == per {
                    batch.more = true;
                    break;
                }
                let payload: Vec<u8> = row.get(3).map_err(backend)?;
                if payload.len() > budget && !batch.entries.is_empty() {
                    batch.more = true;
                    break;
                }
                budget = budget.saturating_sub(payload.len());
                let kind = EntryKind::from_sql(row.get(2).map_err(backend)?)
                    .ok_or_else(|| StoreError::Backend("unknown group entry kind".into()))?;
                batch.entries.push(GroupEntry {
                    seq: seq_from_sql(row.get(0).map_err(backend)?),
                    epoch: epoch_of(row.get(1).map_err(backend)?),
                    kind,
                    payload: Bytes::from(payload),
                });
            }
            drop(rows);
            drop(stmt);
            tx.finish().map_err(backend)?;
            Ok(batch)
        })
        .await
    }

    pub(super) async fn group_delete(
        &self,
        id: MailboxId,
        keep_until: u64,
    ) -> Result<bool, StoreError> {
        self.write(move |c| {
            let key = &id.as_bytes()[..];
            for sql in [
                "DELETE FROM group_entries WHERE grp = ?1",
                "DELETE FROM group_commits WHERE grp = ?1",
                "DELETE FROM group_keys WHERE grp = ?1",
            ] {
                c.prepare_cached(sql)
                    .and_then(|mut s| s.execute([key]))
                    .map_err(backend)?;
            }
            let n = c
                .prepare_cached("DELETE FROM groups WHERE id = ?1")
                .and_then(|mut s| s.execute([key]))
                .map_err(backend)?;
            if n > 0 {
                c.prepare_cached(
                    "INSERT OR REPLACE INTO tombstones (id, keep_until) VALUES (?1, ?2)",
                )
                .and_then(|mut s| s.execute(params![key, time_to_sql(keep_until)]))
                .map_err(backend)?;
            }
            Ok(n > 0)
        })
        .await
    }
}

/// Removes expired group entries (inside `expire`'s transaction); returns
/// how many.
pub(super) fn expire_groups(c: &Connection, now: i64) -> Result<u64, StoreError> {
    c.execute(
        "UPDATE groups SET msg_count = msg_count - e.c, msg_bytes = msg_bytes - e.b
         FROM (SELECT grp, count(*) AS c, sum(size) AS b FROM group_entries
               WHERE expires_at <= ?1 GROUP BY grp) AS e
         WHERE groups.id = e.grp",
        [now],
    )
    .map_err(backend)?;
    let n = c
        .execute("DELETE FROM group_entries WHERE expires_at <= ?1", [now])
        .map_err(backend)?;
    // A commit whose entry is gone is no longer answered as a retry.
    c.execute(
        "DELETE FROM group_commits WHERE NOT EXISTS (
             SELECT 1 FROM group_entries
             WHERE grp = group_commits.grp AND seq = group_commits.seq)",
        [],
    )
    .map_err(backend)?;
    // An old read key whose last entry is gone can read nothing more.
    c.execute(
        "DELETE FROM group_keys WHERE role = ?1 AND until_seq IS NOT NULL
         AND until_seq < coalesce(
             (SELECT min(seq) FROM group_entries WHERE grp = group_keys.grp),
             (SELECT next_seq FROM groups WHERE id = group_keys.grp))",
        [READ],
    )
    .map_err(backend)?;
    Ok(u64::try_from(n).unwrap_or(0))
}
