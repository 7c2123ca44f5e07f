//! Stow records in the SQLite backend: compare-and-swap puts, leases and
//! counted claims, each in one write transaction.

use bytes::Bytes;
use ferry_proto::MailboxId;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest as _, Sha256};

use super::{SqliteStore, StoreError, backend, key_from_blob, time_to_sql};
use crate::store::{Claim, StowPut, StowState};

struct Row {
    owner: Vec<u8>,
    access: Vec<u8>,
    version: i64,
    lease: Option<Vec<u8>>,
    failures: i64,
}

fn row(c: &Connection, locator: &MailboxId) -> Result<Option<Row>, StoreError> {
    c.prepare_cached("SELECT owner, access, version, lease, failures FROM stows WHERE locator = ?1")
        .and_then(|mut s| {
            s.query_row([&locator.as_bytes()[..]], |r| {
                Ok(Row {
                    owner: r.get(0)?,
                    access: r.get(1)?,
                    version: r.get(2)?,
                    lease: r.get(3)?,
                    failures: r.get(4)?,
                })
            })
            .optional()
        })
        .map_err(backend)
}

fn version_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl SqliteStore {
    pub(super) async fn stow_put(&self, put: StowPut) -> Result<(), StoreError> {
        self.write(move |c| {
            let existing = row(c, &put.locator)?;
            let (current, lease) = match &existing {
                None => (0, None),
                Some(r) => {
                    if r.owner != put.owner.to_bytes() {
                        // Another phrase cannot reach this locator; treat
                        // it as a conflict, never as an overwrite.
                        return Err(StoreError::StowConflict {
                            current: version_of(r.version),
                        });
                    }
                    (version_of(r.version), r.lease.clone())
                }
            };
            if let Some(held) = &lease
                && put.lease.as_ref().map(|l| &l[..]) != Some(&held[..])
            {
                return Err(StoreError::StowLeaseLost);
            }
            if current != put.expected || put.version <= current {
                return Err(StoreError::StowConflict { current });
            }
            let version = put.version;
            let keep = if put.keep_lease { lease } else { None };
            c.prepare_cached(
                "INSERT OR REPLACE INTO stows (locator, owner, access, version, record, digest, lease, failures, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    &put.locator.as_bytes()[..],
                    &put.owner.to_bytes()[..],
                    &put.access[..],
                    i64::try_from(version).unwrap_or(i64::MAX),
                    &put.record[..],
                    &Sha256::digest(&put.record)[..],
                    keep,
                    time_to_sql(put.now),
                ])
            })
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    pub(super) async fn stow_state_of(
        &self,
        locator: MailboxId,
    ) -> Result<Option<StowState>, StoreError> {
        self.read(move |c| {
            type StateRow = (Vec<u8>, i64, Vec<u8>, Option<Vec<u8>>, i64);
            let r: Option<StateRow> = c
                .prepare_cached(
                    "SELECT owner, version, digest, lease, failures FROM stows WHERE locator = ?1",
                )
                .and_then(|mut s| {
                    s.query_row([&locator.as_bytes()[..]], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })
                    .optional()
                })
                .map_err(backend)?;
            r.map(|(owner, version, digest, lease, failures)| {
                Ok(StowState {
                    owner: key_from_blob(owner)?,
                    version: version_of(version),
                    digest: digest
                        .try_into()
                        .map_err(|_| StoreError::Backend("bad stow digest".into()))?,
                    lease: lease.and_then(|l| <[u8; 32]>::try_from(l.as_slice()).ok()),
                    failures: u32::try_from(failures).unwrap_or(u32::MAX),
                })
            })
            .transpose()
        })
        .await
    }

    pub(super) async fn stow_claim(
        &self,
        locator: MailboxId,
        access: [u8; 32],
        lease: [u8; 32],
        takeover: bool,
        max_failures: u32,
    ) -> Result<Claim, StoreError> {
        self.write(move |c| {
            let Some(r) = row(c, &locator)? else {
                return Ok(Claim::NotFound);
            };
            let id = &locator.as_bytes()[..];
            if !bool::from(subtle::ConstantTimeEq::ct_eq(&r.access[..], &access[..])) {
                let failures = u32::try_from(r.failures)
                    .unwrap_or(u32::MAX)
                    .saturating_add(1);
                if failures >= max_failures {
                    c.prepare_cached("DELETE FROM stows WHERE locator = ?1")
                        .and_then(|mut s| s.execute([id]))
                        .map_err(backend)?;
                    return Ok(Claim::NotFound);
                }
                c.prepare_cached("UPDATE stows SET failures = ?2 WHERE locator = ?1")
                    .and_then(|mut s| s.execute(params![id, i64::from(failures)]))
                    .map_err(backend)?;
                return Ok(Claim::WrongAccess {
                    left: max_failures - failures,
                });
            }
            if r.lease.as_ref().is_some_and(|l| l[..] != lease[..]) && !takeover {
                return Ok(Claim::Leased);
            }
            let record: Vec<u8> = c
                .prepare_cached("SELECT record FROM stows WHERE locator = ?1")
                .and_then(|mut s| s.query_row([id], |r| r.get(0)))
                .map_err(backend)?;
            c.prepare_cached("UPDATE stows SET lease = ?2, failures = 0 WHERE locator = ?1")
                .and_then(|mut s| s.execute(params![id, &lease[..]]))
                .map_err(backend)?;
            Ok(Claim::Granted {
                version: version_of(r.version),
                record: Bytes::from(record),
            })
        })
        .await
    }

    pub(super) async fn stow_delete(&self, locator: MailboxId) -> Result<bool, StoreError> {
        self.write(move |c| {
            let n = c
                .prepare_cached("DELETE FROM stows WHERE locator = ?1")
                .and_then(|mut s| s.execute([&locator.as_bytes()[..]]))
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }
}
