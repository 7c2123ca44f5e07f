//! Canaries in the SQLite backend: deposit, keys, release.

use bytes::Bytes;
use ferry_proto::MailboxId;
use rusqlite::{OptionalExtension, params};

use super::{
    Canary, CanaryKeys, Quota, Released, SqliteStore, StoreError, append_in, backend,
    key_from_blob, reserved, time_to_sql,
};

impl SqliteStore {
    pub(super) async fn canary_put(
        &self,
        canary: Canary,
        quota: Quota,
        max_per_mailbox: u64,
    ) -> Result<(), StoreError> {
        self.write(move |c| {
            let owner: Option<Vec<u8>> = c
                .prepare_cached("SELECT owner FROM canaries WHERE id = ?1")
                .and_then(|mut s| s.query_row([&canary.id.as_bytes()[..]], |r| r.get(0)).optional())
                .map_err(backend)?;
            if owner.as_ref().is_some_and(|o| *o != canary.owner.to_bytes()) {
                return Err(StoreError::CanaryExists);
            }
            // Renewing by depositing again replaces a canary that already
            // holds its place (or was deposited before places were held):
            // it is never refused, or a lowered limit would let the old
            // release time fire a false alarm.
            let replacing = owner.is_some();
            let own = &canary.id.as_bytes()[..];
            let (held, held_bytes) = reserved(c, &canary.mailbox, Some(own))?;
            if !replacing && held >= max_per_mailbox {
                return Err(StoreError::TooManyCanaries);
            }
            let row: Option<(i64, i64)> = c
                .prepare_cached("SELECT msg_count, msg_bytes FROM mailboxes WHERE id = ?1")
                .and_then(|mut s| {
                    s.query_row([&canary.mailbox.as_bytes()[..]], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .map_err(backend)?;
            let (count, bytes) = row.ok_or(StoreError::UnknownMailbox)?;
            let count_after = u64::try_from(count).unwrap_or(u64::MAX).saturating_add(held).saturating_add(1);
            let bytes_after = u64::try_from(bytes)
                .unwrap_or(u64::MAX)
                .saturating_add(held_bytes)
                .saturating_add(canary.payload.len() as u64);
            if !replacing && (count_after > quota.max_messages || bytes_after > quota.max_bytes) {
                return Err(StoreError::MailboxFull);
            }
            c.prepare_cached(
                "INSERT OR REPLACE INTO canaries (id, owner, mailbox, release_at, payload, fire_key, fire_payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    &canary.id.as_bytes()[..],
                    &canary.owner.to_bytes()[..],
                    &canary.mailbox.as_bytes()[..],
                    time_to_sql(canary.release_at),
                    &canary.payload[..],
                    canary.fire_key.map(|k| k.to_bytes().to_vec()),
                    canary.fire_payload.as_deref()
                ])
            })
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    pub(super) async fn canary_keys_of(
        &self,
        id: MailboxId,
    ) -> Result<Option<CanaryKeys>, StoreError> {
        self.read(move |c| {
            let row: Option<(Vec<u8>, Option<Vec<u8>>)> = c
                .prepare_cached("SELECT owner, fire_key FROM canaries WHERE id = ?1")
                .and_then(|mut s| {
                    s.query_row([&id.as_bytes()[..]], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .map_err(backend)?;
            row.map(|(owner, fire)| {
                Ok(CanaryKeys {
                    owner: key_from_blob(owner)?,
                    fire: fire.map(key_from_blob).transpose()?,
                })
            })
            .transpose()
        })
        .await
    }

    pub(super) async fn canary_release(
        &self,
        now: u64,
        only: Option<MailboxId>,
        expires_at: u64,
        quota: Quota,
    ) -> Result<Vec<Released>, StoreError> {
        self.write(move |c| {
            type Row = (Vec<u8>, Vec<u8>, Vec<u8>);
            let map = |r: &rusqlite::Row<'_>| -> rusqlite::Result<Row> { Ok((r.get(0)?, r.get(1)?, r.get(2)?)) };
            let rows: Vec<Row> = match only {
                Some(id) => c
                    .prepare_cached("SELECT id, mailbox, COALESCE(fire_payload, payload) FROM canaries WHERE id = ?1")
                    .and_then(|mut st| st.query_map([&id.as_bytes()[..]], map)?.collect())
                    .map_err(backend)?,
                None => c
                    .prepare_cached("SELECT id, mailbox, payload FROM canaries WHERE release_at <= ?1 ORDER BY release_at LIMIT 1000")
                    .and_then(|mut st| st.query_map([time_to_sql(now)], map)?.collect())
                    .map_err(backend)?,
            };
            let mut out = Vec::new();
            for (cid, mailbox, payload) in rows {
                let Ok(mb) = <[u8; 16]>::try_from(mailbox.as_slice()) else {
                    continue;
                };
                let mailbox = MailboxId::from_bytes(mb);
                match append_in(c, &mailbox, &payload, expires_at, quota, Some(&cid)) {
                    Ok(seq) => out.push(Released { mailbox, seq, payload: Bytes::from(payload) }),
                    Err(StoreError::MailboxFull) => {
                        // A fire that must wait keeps firing what a fire
                        // releases (the duress alert), not the timeout's.
                        let sql = if only.is_some() {
                            "UPDATE canaries SET release_at = ?2, payload = COALESCE(fire_payload, payload) WHERE id = ?1"
                        } else {
                            "UPDATE canaries SET release_at = ?2 WHERE id = ?1"
                        };
                        c.prepare_cached(sql)
                            .and_then(|mut s| {
                                s.execute(params![&cid[..], time_to_sql(now.saturating_add(crate::store::CANARY_RETRY_SECS))])
                            })
                            .map_err(backend)?;
                        continue;
                    }
                    Err(StoreError::UnknownMailbox) => {}
                    Err(e) => return Err(e),
                }
                c.prepare_cached("DELETE FROM canaries WHERE id = ?1")
                    .and_then(|mut s| s.execute([&cid[..]]))
                    .map_err(backend)?;
            }
            Ok(out)
        })
        .await
    }
}
