//! Embedded SQLite backend with group commit.
//!
//! All writes go through one writer thread. It takes every operation that is
//! queued, runs them in a single transaction (each inside its own savepoint,
//! so one failing operation changes nothing), commits with one fsync
//! (`journal_mode=WAL`, `synchronous=FULL`) and only then answers the
//! callers. Many concurrent sends therefore share one fsync, and a send that
//! was answered survives `kill -9` and power loss. Reads run on a small pool
//! of read-only connections, concurrently with the writer (WAL).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use async_trait::async_trait;
use bytes::Bytes;
use ferry_proto::{MailboxId, PublicKey, Seq};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::{Semaphore, oneshot};

mod canaries;
mod groups;
mod schema;
mod stows;

use schema::migrate;

use super::{
    Canary, CanaryKeys, Created, FetchBatch, FetchLimits, MailboxRecord, MailboxStore, Quota,
    Released, StoreError, StoredMessage,
};

/// Most operations committed together.
const MAX_BATCH: usize = 1024;

/// Tuning of the SQLite backend.
#[derive(Debug, Clone)]
pub struct SqliteStoreOptions {
    /// Read-only connections for concurrent reads.
    pub readers: usize,
    /// `synchronous=FULL` (fsync at every group commit). Turning it off
    /// keeps acknowledged messages across a process crash but not across
    /// power loss.
    pub fsync: bool,
}

impl Default for SqliteStoreOptions {
    fn default() -> Self {
        Self {
            readers: 4,
            fsync: true,
        }
    }
}

type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> Finish + Send>;

/// The embedded store: one SQLite file in the relay's data directory.
pub struct SqliteStore {
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    reader_slots: Semaphore,
    path: PathBuf,
}

fn backend(e: rusqlite::Error) -> StoreError {
    // rusqlite's messages name SQL and error kinds, never bound values.
    StoreError::Backend(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/relay.sqlite3`.
    pub fn open(dir: &Path, options: SqliteStoreOptions) -> Result<Self, StoreError> {
        let path = dir.join("relay.sqlite3");
        let conn = Connection::open(&path).map_err(backend)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        conn.pragma_update(
            None,
            "synchronous",
            if options.fsync { "FULL" } else { "NORMAL" },
        )
        .map_err(backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(backend)?;
        migrate(&conn)?;

        let mut readers = Vec::with_capacity(options.readers.max(1));
        for _ in 0..options.readers.max(1) {
            let r = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(backend)?;
            r.busy_timeout(std::time::Duration::from_secs(5))
                .map_err(backend)?;
            readers.push(r);
        }

        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("ferry-store-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| StoreError::Backend(format!("spawn writer: {e}")))?;
        Ok(Self {
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(thread)),
            reader_slots: Semaphore::new(readers.len()),
            readers: Arc::new(Mutex::new(readers)),
            path,
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the writer after the queued operations are committed.
    pub fn close(&self) {
        if let Ok(mut w) = self.writer.lock() {
            w.take();
        }
        let handle = self.writer_thread.lock().ok().and_then(|mut t| t.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = run_in_savepoint(conn, f);
            Box::new(move |committed: Result<(), StoreError>| {
                let _ = reply.send(committed.and(result));
            })
        });
        {
            let guard = self.writer.lock().map_err(|_| StoreError::Closed)?;
            let sender = guard.as_ref().ok_or(StoreError::Closed)?;
            sender.send(job).map_err(|_| StoreError::Closed)?;
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let _permit = self
            .reader_slots
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || {
            let conn = readers
                .lock()
                .map_err(|_| StoreError::Closed)?
                .pop()
                .ok_or(StoreError::Closed)?;
            let result = f(&conn);
            if let Ok(mut pool) = readers.lock() {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

fn run_in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.execute_batch("SAVEPOINT op").map_err(backend)?;
    let result = f(conn);
    let end = if result.is_ok() {
        "RELEASE op"
    } else {
        "ROLLBACK TO op; RELEASE op"
    };
    conn.execute_batch(end).map_err(backend)?;
    result
}

fn writer_loop(conn: Connection, rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut finishers: Vec<Finish> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            tracing::error!(error = %e, "store: cannot begin transaction");
            // Dropping a job that never ran answers its caller with `Closed`.
            batch.clear();
            continue;
        }
        let mut lost = false;
        for job in batch.drain(..) {
            if lost || conn.is_autocommit() {
                // SQLite rolled the whole transaction back (disk full, I/O
                // error): later jobs must not run outside it, and nothing of
                // this batch may be reported as stored.
                lost = true;
                drop(job);
                continue;
            }
            finishers.push(job(&conn));
        }
        let committed = if lost || conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
            Err(StoreError::Backend("transaction lost".into()))
        } else {
            conn.execute_batch("COMMIT").map_err(backend)
        };
        if let Err(e) = &committed {
            tracing::error!(error = %e, "store: group commit failed");
            let _ = conn.execute_batch("ROLLBACK");
        }
        for finish in finishers.drain(..) {
            finish(match &committed {
                Ok(()) => Ok(()),
                Err(e) => Err(StoreError::Backend(e.to_string())),
            });
        }
    }
}

fn key_from_blob(b: Vec<u8>) -> Result<PublicKey, StoreError> {
    let arr: [u8; 32] = b
        .try_into()
        .map_err(|_| StoreError::Backend("stored key has wrong length".into()))?;
    PublicKey::from_bytes(&arr).map_err(|_| StoreError::Backend("stored key is invalid".into()))
}

fn seq_to_sql(seq: Seq) -> i64 {
    i64::try_from(seq.0).unwrap_or(i64::MAX)
}

fn seq_from_sql(v: i64) -> Seq {
    Seq(u64::try_from(v).unwrap_or(0))
}

fn time_to_sql(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

#[async_trait]
impl MailboxStore for SqliteStore {
    async fn create_mailbox(
        &self,
        id: MailboxId,
        recipient_key: PublicKey,
        now: u64,
    ) -> Result<Created, StoreError> {
        self.write(move |c| {
            let existing: Option<Vec<u8>> = c
                .prepare_cached("SELECT recipient_key FROM mailboxes WHERE id = ?1")
                .and_then(|mut s| s.query_row([&id.as_bytes()[..]], |r| r.get(0)).optional())
                .map_err(backend)?;
            // (A group's id is taken too: they share the namespace.)
            let buried: Option<i64> = c
                .prepare_cached(
                    "SELECT 1 FROM tombstones WHERE id = ?1 UNION ALL SELECT 1 FROM groups WHERE id = ?1",
                )
                .and_then(|mut s| s.query_row([&id.as_bytes()[..]], |r| r.get(0)).optional())
                .map_err(backend)?;
            match existing {
                Some(k) if k == recipient_key.to_bytes() => Ok(Created::Existing),
                Some(_) => Err(StoreError::MailboxExists),
                None if buried.is_some() => Err(StoreError::MailboxExists),
                None => {
                    c.prepare_cached(
                        "INSERT INTO mailboxes (id, recipient_key, created_at) VALUES (?1, ?2, ?3)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            &id.as_bytes()[..],
                            &recipient_key.to_bytes()[..],
                            time_to_sql(now)
                        ])
                    })
                    .map_err(backend)?;
                    Ok(Created::New)
                }
            }
        })
        .await
    }

    async fn mailboxes(
        &self,
        ids: Vec<MailboxId>,
    ) -> Result<Vec<Option<MailboxRecord>>, StoreError> {
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached("SELECT recipient_key, sender_key FROM mailboxes WHERE id = ?1")
                .map_err(backend)?;
            let mut out = Vec::with_capacity(ids.len());
            for id in &ids {
                let row: Option<(Vec<u8>, Option<Vec<u8>>)> = stmt
                    .query_row([&id.as_bytes()[..]], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
                    .map_err(backend)?;
                out.push(match row {
                    None => None,
                    Some((rk, sk)) => Some(MailboxRecord {
                        recipient_key: key_from_blob(rk)?,
                        sender_key: sk.map(key_from_blob).transpose()?,
                    }),
                });
            }
            Ok(out)
        })
        .await
    }

    async fn set_sender_key(&self, id: MailboxId, sender_key: PublicKey) -> Result<(), StoreError> {
        self.write(move |c| {
            let row: Option<Option<Vec<u8>>> = c
                .prepare_cached("SELECT sender_key FROM mailboxes WHERE id = ?1")
                .and_then(|mut s| s.query_row([&id.as_bytes()[..]], |r| r.get(0)).optional())
                .map_err(backend)?;
            match row {
                None => Err(StoreError::UnknownMailbox),
                Some(Some(k)) if k == sender_key.to_bytes() => Ok(()),
                Some(Some(_)) => Err(StoreError::SenderKeyAlreadySet),
                Some(None) => {
                    c.prepare_cached("UPDATE mailboxes SET sender_key = ?2 WHERE id = ?1")
                        .and_then(|mut s| {
                            s.execute(params![&id.as_bytes()[..], &sender_key.to_bytes()[..]])
                        })
                        .map_err(backend)?;
                    Ok(())
                }
            }
        })
        .await
    }

    async fn append(
        &self,
        id: MailboxId,
        payload: Bytes,
        expires_at: u64,
        quota: Quota,
    ) -> Result<Seq, StoreError> {
        self.write(move |c| append_in(c, &id, &payload, expires_at, quota, None))
            .await
    }

    async fn fetch(
        &self,
        reads: Vec<(MailboxId, Seq)>,
        limits: FetchLimits,
        now: u64,
    ) -> Result<Vec<FetchBatch>, StoreError> {
        self.read(move |c| {
            let tx = c.unchecked_transaction().map_err(backend)?;
            let mut stmt = tx
                .prepare_cached(
                    "SELECT seq, payload FROM messages WHERE mailbox = ?1 AND seq > ?2 AND expires_at > ?3 ORDER BY seq LIMIT ?4",
                )
                .map_err(backend)?;
            let mut budget = limits.total_bytes;
            let mut any_returned = false;
            let mut out = Vec::with_capacity(reads.len());
            let per = limits.per_mailbox.max(1);
            for (id, after) in &reads {
                let mut batch = FetchBatch::default();
                let mut rows = stmt
                    .query(params![
                        &id.as_bytes()[..],
                        seq_to_sql(*after),
                        time_to_sql(now),
                        i64::try_from(per + 1).unwrap_or(i64::MAX)
                    ])
                    .map_err(backend)?;
                while let Some(row) = rows.next().map_err(backend)? {
                    if batch.messages.len() == per {
                        batch.more = true;
                        break;
                    }
                    let payload: Vec<u8> = row.get(1).map_err(backend)?;
                    if payload.len() > budget && any_returned {
                        batch.more = true;
                        break;
                    }
                    budget = budget.saturating_sub(payload.len());
                    any_returned = true;
                    batch.messages.push(StoredMessage {
                        seq: seq_from_sql(row.get(0).map_err(backend)?),
                        payload: Bytes::from(payload),
                    });
                }
                out.push(batch);
            }
            drop(stmt);
            tx.finish().map_err(backend)?;
            Ok(out)
        })
        .await
    }

    async fn ack(&self, acks: Vec<(MailboxId, Seq)>) -> Result<Vec<u64>, StoreError> {
        self.write(move |c| {
            let mut out = Vec::with_capacity(acks.len());
            for (id, up_to) in &acks {
                let sums: Option<(i64, i64)> = c
                    .prepare_cached(
                        "SELECT (SELECT count(*) FROM messages WHERE mailbox = ?1 AND seq <= ?2),
                                (SELECT coalesce(sum(size), 0) FROM messages WHERE mailbox = ?1 AND seq <= ?2)
                         FROM mailboxes WHERE id = ?1",
                    )
                    .and_then(|mut s| {
                        s.query_row(params![&id.as_bytes()[..], seq_to_sql(*up_to)], |r| {
                            Ok((r.get(0)?, r.get(1)?))
                        })
                        .optional()
                    })
                    .map_err(backend)?;
                let (count, bytes) = sums.ok_or(StoreError::UnknownMailbox)?;
                if count > 0 {
                    c.prepare_cached("DELETE FROM messages WHERE mailbox = ?1 AND seq <= ?2")
                        .and_then(|mut s| s.execute(params![&id.as_bytes()[..], seq_to_sql(*up_to)]))
                        .map_err(backend)?;
                    c.prepare_cached(
                        "UPDATE mailboxes SET msg_count = msg_count - ?2, msg_bytes = msg_bytes - ?3 WHERE id = ?1",
                    )
                    .and_then(|mut s| s.execute(params![&id.as_bytes()[..], count, bytes]))
                    .map_err(backend)?;
                }
                out.push(u64::try_from(count).unwrap_or(0));
            }
            Ok(out)
        })
        .await
    }

    async fn delete_mailbox(&self, id: MailboxId, keep_until: u64) -> Result<bool, StoreError> {
        self.write(move |c| {
            c.prepare_cached("DELETE FROM messages WHERE mailbox = ?1")
                .and_then(|mut s| s.execute([&id.as_bytes()[..]]))
                .map_err(backend)?;
            let n = c
                .prepare_cached("DELETE FROM mailboxes WHERE id = ?1")
                .and_then(|mut s| s.execute([&id.as_bytes()[..]]))
                .map_err(backend)?;
            if n > 0 {
                c.prepare_cached(
                    "INSERT OR REPLACE INTO tombstones (id, keep_until) VALUES (?1, ?2)",
                )
                .and_then(|mut s| s.execute(params![&id.as_bytes()[..], time_to_sql(keep_until)]))
                .map_err(backend)?;
            }
            Ok(n > 0)
        })
        .await
    }

    async fn expire(&self, now: u64) -> Result<u64, StoreError> {
        self.write(move |c| {
            let now = time_to_sql(now);
            c.execute(
                "UPDATE mailboxes SET msg_count = msg_count - e.c, msg_bytes = msg_bytes - e.b
                 FROM (SELECT mailbox, count(*) AS c, sum(size) AS b FROM messages
                       WHERE expires_at <= ?1 GROUP BY mailbox) AS e
                 WHERE mailboxes.id = e.mailbox",
                [now],
            )
            .map_err(backend)?;
            let n = c
                .execute("DELETE FROM messages WHERE expires_at <= ?1", [now])
                .map_err(backend)?;
            c.execute("DELETE FROM tombstones WHERE keep_until <= ?1", [now])
                .map_err(backend)?;
            let in_groups = groups::expire_groups(c, now)?;
            Ok(u64::try_from(n).unwrap_or(0).saturating_add(in_groups))
        })
        .await
    }

    async fn put_canary(
        &self,
        canary: Canary,
        quota: Quota,
        max_per_mailbox: u64,
    ) -> Result<(), StoreError> {
        self.canary_put(canary, quota, max_per_mailbox).await
    }

    async fn canary_keys(&self, id: MailboxId) -> Result<Option<CanaryKeys>, StoreError> {
        self.canary_keys_of(id).await
    }

    async fn renew_canary(&self, id: MailboxId, release_at: u64) -> Result<bool, StoreError> {
        self.write(move |c| {
            let n = c
                .prepare_cached("UPDATE canaries SET release_at = ?2 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![&id.as_bytes()[..], time_to_sql(release_at)]))
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }

    async fn delete_canary(&self, id: MailboxId) -> Result<bool, StoreError> {
        self.write(move |c| {
            let n = c
                .prepare_cached("DELETE FROM canaries WHERE id = ?1")
                .and_then(|mut s| s.execute([&id.as_bytes()[..]]))
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }

    async fn release_canaries(
        &self,
        now: u64,
        only: Option<MailboxId>,
        expires_at: u64,
        quota: Quota,
    ) -> Result<Vec<Released>, StoreError> {
        self.canary_release(now, only, expires_at, quota).await
    }

    async fn put_stow(&self, put: super::StowPut) -> Result<(), StoreError> {
        self.stow_put(put).await
    }

    async fn stow_state(&self, locator: MailboxId) -> Result<Option<super::StowState>, StoreError> {
        self.stow_state_of(locator).await
    }

    async fn claim_stow(
        &self,
        locator: MailboxId,
        access: [u8; 32],
        lease: [u8; 32],
        takeover: bool,
        max_failures: u32,
    ) -> Result<super::Claim, StoreError> {
        self.stow_claim(locator, access, lease, takeover, max_failures)
            .await
    }

    async fn create_group(&self, group: super::NewGroup) -> Result<Created, StoreError> {
        self.group_create(group).await
    }

    async fn group(&self, id: MailboxId) -> Result<Option<super::GroupRecord>, StoreError> {
        self.group_record(id).await
    }

    async fn post_group(&self, post: super::GroupPost) -> Result<Seq, StoreError> {
        self.group_post(post).await
    }

    async fn commit_group(&self, put: super::CommitPut) -> Result<super::Committed, StoreError> {
        self.group_commit(put).await
    }

    async fn fetch_group(
        &self,
        id: MailboxId,
        key: PublicKey,
        after: Seq,
        limits: FetchLimits,
        now: u64,
    ) -> Result<super::GroupBatch, StoreError> {
        self.group_fetch(id, key, after, limits, now).await
    }

    async fn delete_group(&self, id: MailboxId, keep_until: u64) -> Result<bool, StoreError> {
        self.group_delete(id, keep_until).await
    }

    async fn delete_stow(&self, locator: MailboxId) -> Result<bool, StoreError> {
        self.stow_delete(locator).await
    }
}

/// Messages and bytes that waiting canaries reserve in a mailbox, leaving
/// out the canary `except`.
fn reserved(
    c: &Connection,
    mailbox: &MailboxId,
    except: Option<&[u8]>,
) -> Result<(u64, u64), StoreError> {
    c.prepare_cached(
        "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM canaries WHERE mailbox = ?1 AND id IS NOT ?2",
    )
    .and_then(|mut s| {
        s.query_row(params![&mailbox.as_bytes()[..], except], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })
    })
    .map(|(n, b)| (u64::try_from(n).unwrap_or(u64::MAX), u64::try_from(b).unwrap_or(u64::MAX)))
    .map_err(backend)
}

/// Appends inside a write transaction (shared by send and canary release).
/// Waiting canaries' reservations count against the quota, except that of
/// `canary`, the one being released.
fn append_in(
    c: &Connection,
    id: &MailboxId,
    payload: &[u8],
    expires_at: u64,
    quota: Quota,
    canary: Option<&[u8]>,
) -> Result<Seq, StoreError> {
    let row: Option<(i64, i64, i64)> = c
        .prepare_cached("SELECT next_seq, msg_count, msg_bytes FROM mailboxes WHERE id = ?1")
        .and_then(|mut s| {
            s.query_row([&id.as_bytes()[..]], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
        })
        .map_err(backend)?;
    let (seq, count, bytes) = row.ok_or(StoreError::UnknownMailbox)?;
    let size = i64::try_from(payload.len()).unwrap_or(i64::MAX);
    let (held, held_bytes) = reserved(c, id, canary)?;
    let count_after = u64::try_from(count)
        .unwrap_or(u64::MAX)
        .saturating_add(1)
        .saturating_add(held);
    let bytes_after = u64::try_from(bytes.saturating_add(size))
        .unwrap_or(u64::MAX)
        .saturating_add(held_bytes);
    if count_after > quota.max_messages || bytes_after > quota.max_bytes {
        return Err(StoreError::MailboxFull);
    }
    c.prepare_cached(
        "INSERT INTO messages (mailbox, seq, expires_at, size, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![&id.as_bytes()[..], seq, time_to_sql(expires_at), size, payload])
    })
    .map_err(backend)?;
    c.prepare_cached(
        "UPDATE mailboxes SET next_seq = next_seq + 1, msg_count = msg_count + 1, msg_bytes = msg_bytes + ?2 WHERE id = ?1",
    )
    .and_then(|mut s| s.execute(params![&id.as_bytes()[..], size]))
    .map_err(backend)?;
    Ok(seq_from_sql(seq))
}

#[cfg(test)]
mod tests {
    use super::schema::SCHEMA_VERSION;
    use super::*;

    async fn make() -> (SqliteStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), SqliteStoreOptions::default()).unwrap();
        (store, dir)
    }

    crate::mailbox_store_conformance!(super::make);

    #[tokio::test]
    async fn reopened_store_keeps_everything() {
        use rand_core::OsRng;
        let dir = tempfile::tempdir().unwrap();
        let id = MailboxId::random(&mut OsRng);
        let key = ferry_proto::MailboxKey::generate(&mut OsRng).public();
        let quota = Quota {
            max_messages: 10,
            max_bytes: 10_000,
        };
        {
            let s = SqliteStore::open(dir.path(), SqliteStoreOptions::default()).unwrap();
            s.create_mailbox(id, key, 1).await.unwrap();
            s.append(id, Bytes::from_static(b"one"), 100, quota)
                .await
                .unwrap();
            s.append(id, Bytes::from_static(b"two"), 100, quota)
                .await
                .unwrap();
            s.ack(vec![(id, Seq(1))]).await.unwrap();
        }
        let s = SqliteStore::open(dir.path(), SqliteStoreOptions::default()).unwrap();
        let got = s
            .fetch(vec![(id, Seq(0))], crate::store::conformance::LIMITS, 2)
            .await
            .unwrap();
        assert_eq!(got[0].messages.len(), 1);
        assert_eq!(got[0].messages[0].seq, Seq(2));
        assert_eq!(&got[0].messages[0].payload[..], b"two");
        // Sequence numbers continue, never reused.
        assert_eq!(
            s.append(id, Bytes::from_static(b"3"), 100, quota)
                .await
                .unwrap(),
            Seq(3)
        );
    }

    #[tokio::test]
    async fn refuses_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = Connection::open(dir.path().join("relay.sqlite3")).unwrap();
            c.pragma_update(None, "user_version", 99).unwrap();
        }
        let err = SqliteStore::open(dir.path(), SqliteStoreOptions::default())
            .err()
            .unwrap();
        assert!(matches!(
            err,
            StoreError::UnsupportedVersion {
                found: 99,
                supported: SCHEMA_VERSION
            }
        ));
    }
}
