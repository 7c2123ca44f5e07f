//! Stow by day, restore by night (see `ferry_core::stow` for the keys and
//! the record).
//!
//! - `recovery setup` derives the relay's keys from the phrase (and PIN)
//!   and keeps them in the vault, so a stow needs no phrase.
//! - A stow renews every canary for a full interval, seals the profile's
//!   files as version `n + 1`, marks the stow pending in the vault, uploads
//!   it (compare-and-swap against `n`, releasing this device's lease), waits
//!   for the relay's durable answer, then destroys the profile the way
//!   panic does. If anything breaks after the mark, the next unlock does
//!   nothing but finish the stow: it asks the relay whether the record
//!   landed (version and digest) and wipes, or stows again.
//! - A restore (see `super::restore`) installs the files and, after the
//!   passphrase, stores what opened back as version `n + 1`, keeping the
//!   lease: a duress passphrase at restore therefore replaces the relay's
//!   copy of the real profile too. Every conversation's key refresh is
//!   made due.

use ferry_core::alert::CanaryScope;
use ferry_core::stow::{RecoveryPhrase, RecoverySeed, RelayKeys, StowFile, StowRecord};
use ferry_proto::{ErrorCode, b64};
use rand_core::OsRng;
use secrecy::SecretString;
use sha2::{Digest as _, Sha256};

use super::{Session, SessionError, now};
use crate::relay::{ClientError, RelayClient, StowPutRequest};

const RECOVERY_BLOB: &str = "recovery";
const RECOVERY_VERSION: u8 = 1;

/// What the vault keeps about the stowed account.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Recovery {
    pub(super) keys: RelayKeys,
    /// The version this device's state continues from.
    pub(super) version: u64,
    /// This device's lease token (after a restore).
    #[serde(default, with = "ferry_proto::b64::opt_bytes")]
    pub(super) lease: Option<Vec<u8>>,
    /// A stow sent but not yet confirmed and wiped.
    #[serde(default)]
    pub(super) pending: Option<Pending>,
    /// Other relays that witness the version.
    #[serde(default)]
    pub(super) witnesses: Vec<RelayKeys>,
    /// A stow given up (`stow --abandon`) that may have landed: if the
    /// relay holds exactly it, it is this device's own, and the next stow
    /// goes on from it.
    #[serde(default)]
    pub(super) abandoned: Option<Pending>,
}

impl Drop for Recovery {
    fn drop(&mut self) {
        if let Some(l) = &mut self.lease {
            zeroize::Zeroize::zeroize(l);
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Pending {
    version: u64,
    /// SHA-256 of the sealed record, base64url.
    digest: String,
    /// When the canaries renewed for it fire.
    #[serde(default)]
    deadline: Option<u64>,
}

impl Recovery {
    fn lease(&self) -> Option<[u8; 32]> {
        self.lease.as_deref().and_then(|l| l.try_into().ok())
    }

    /// The relay holds the stow this device gave up, as it sent it (and
    /// nobody holds it since): this device continues from it. Returns
    /// whether it did.
    fn adopt_abandoned(&mut self, st: &ferry_proto::api::StowStatus) -> bool {
        let ours = self
            .abandoned
            .as_ref()
            .is_some_and(|a| a.version == st.version && a.digest == st.digest && !st.leased);
        if ours {
            self.version = st.version;
            self.lease = None;
            self.abandoned = None;
        }
        ours
    }
}

/// A finished stow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stowed {
    /// The version now on the relay.
    pub version: u64,
    /// Bytes uploaded (the sealed, padded record).
    pub bytes: u64,
    /// When the canaries fire if the account is not restored (Unix
    /// seconds; `None`: the dead-man switch is off).
    pub deadline: Option<u64>,
    /// When the first attachment sent meanwhile may expire on the relay
    /// (one sent right after the stow; `None`: the relay did not say).
    pub attachments_until: Option<u64>,
    /// When the first message sent meanwhile may expire there.
    pub messages_until: Option<u64>,
}

impl Stowed {
    /// The earliest deadline that matters: restore before it and nothing
    /// is lost and no contact is warned.
    pub fn restore_by(&self) -> Option<u64> {
        [self.deadline, self.attachments_until, self.messages_until]
            .into_iter()
            .flatten()
            .min()
    }
}

/// A refusal by the relay, in the words of a stow.
pub(super) fn stow_error(e: ClientError) -> SessionError {
    match e.code() {
        Some(ErrorCode::NoStow) => SessionError::NoStow,
        Some(ErrorCode::StowLeased) => SessionError::StowLeased,
        Some(ErrorCode::StowLeaseLost) => SessionError::StowTakenOver,
        Some(ErrorCode::StowConflict) => SessionError::StowConflict,
        _ => SessionError::Relay(e),
    }
}

impl Session {
    fn recovery(&self) -> Result<Option<Recovery>, SessionError> {
        Ok(self.vault.json(RECOVERY_BLOB, RECOVERY_VERSION)?)
    }

    pub(super) fn save_recovery(&mut self, rec: &Recovery) -> Result<(), SessionError> {
        self.vault
            .transaction(|tx| tx.put_json(RECOVERY_BLOB, RECOVERY_VERSION, rec))?;
        Ok(())
    }

    /// Whether a recovery phrase is set up.
    pub fn has_recovery(&self) -> Result<bool, SessionError> {
        Ok(self.recovery()?.is_some())
    }

    /// Whether `phrase` (and `pin`) is the one set up: the check before a
    /// stow from the app, so nobody stows an account they cannot restore.
    /// Costs one Argon2id run.
    pub fn recovery_matches(
        &self,
        phrase: &RecoveryPhrase,
        pin: Option<&SecretString>,
    ) -> Result<bool, SessionError> {
        let Some(rec) = self.recovery()? else {
            return Err(SessionError::NoRecovery);
        };
        let keys = RecoverySeed::derive(phrase)?.relay_keys(rec.keys.relay(), pin)?;
        Ok(keys.locator() == rec.keys.locator()
            && bool::from(subtle::ConstantTimeEq::ct_eq(
                &keys.access_token()[..],
                &rec.keys.access_token()[..],
            )))
    }

    /// Sets up stowing with `phrase` (and an optional PIN) on this
    /// profile's relay: derives the keys (Argon2id, about a second) and
    /// keeps them. The same phrase again keeps the stow's version; another
    /// one deletes the record stowed under the old one first.
    pub async fn recovery_setup(
        &mut self,
        phrase: &RecoveryPhrase,
        pin: Option<&SecretString>,
        witnesses: &[String],
    ) -> Result<(), SessionError> {
        if witnesses.len() > ferry_core::stow::record::MAX_WITNESSES {
            return Err(ferry_core::stow::StowError::Malformed("too many witnesses").into());
        }
        for w in witnesses {
            super::check_relay_url(w)?;
        }
        let seed = RecoverySeed::derive(phrase)?;
        let keys = seed.relay_keys(&relay_address(self.relay_url()), pin)?;
        let witnesses = witnesses
            .iter()
            .filter(|w| relay_address(w) != keys.relay())
            .map(|w| seed.relay_keys(&relay_address(w), pin))
            .collect::<Result<Vec<_>, _>>()?;
        let (version, lease) = match self.recovery()? {
            Some(old) if old.keys.locator() == keys.locator() => (old.version, old.lease.clone()),
            Some(mut old) => {
                // A new phrase: the record under the old one goes first, or
                // whoever holds the old phrase could still take it; but
                // only the record this device continues (never a newer one
                // another device made, which may be the only copy).
                if old.version > 0 {
                    let client = self.relay(old.keys.relay())?.clone();
                    let lease = old.lease();
                    let owner = old.keys.owner();
                    match client
                        .stow_status(old.keys.locator(), &owner, lease.as_ref())
                        .await?
                    {
                        Some(st)
                            if (st.version == old.version
                                && (!st.leased || st.held == Some(true)))
                                || old.adopt_abandoned(&st) =>
                        {
                            match client.delete_stow(old.keys.locator(), &owner).await {
                                Ok(()) => {}
                                Err(e) if e.code() == Some(ErrorCode::NoStow) => {}
                                Err(e) => return Err(e.into()),
                            }
                        }
                        None => {}
                        Some(_) => return Err(SessionError::StowTakenOver),
                    }
                }
                (0, None)
            }
            None => (0, None),
        };
        self.save_recovery(&Recovery {
            keys,
            version,
            lease,
            pending: None,
            abandoned: None,
            witnesses,
        })
    }

    /// Whether a stow was sent and not yet finished (the next unlock
    /// finishes it before anything else).
    pub(crate) fn stow_pending(&self) -> Result<bool, SessionError> {
        Ok(self.recovery()?.is_some_and(|r| r.pending.is_some()))
    }

    /// Stows the account on the relay and destroys the profile here. Every
    /// canary is renewed first, for a full interval: a stow shorter than it
    /// fires none. Message history goes along only `with_history`; else it
    /// is destroyed first (contacts, conversations, timers, settings and
    /// queued messages always go). Expired messages never go.
    pub async fn stow(&mut self, with_history: bool) -> Result<Stowed, SessionError> {
        let rec = self.recovery()?.ok_or(SessionError::NoRecovery)?;
        if rec.pending.is_some() {
            return self.finish_stow().await;
        }
        // The relay must take this version before anything is destroyed:
        // a device taken over, or behind, keeps its history.
        let mut rec = rec;
        let lease = rec.lease();
        let client = self.relay(rec.keys.relay())?.clone();
        let status = client
            .stow_status(rec.keys.locator(), &rec.keys.owner(), lease.as_ref())
            .await
            .map_err(stow_error)?;
        if let Some(st) = &status
            && rec.adopt_abandoned(st)
        {
            // The stow given up had landed after all: go on from it.
            self.save_recovery(&rec)?;
        }
        match status {
            // Another device stowed or restored it since: taken over.
            Some(st) if st.version > rec.version => return Err(SessionError::StowTakenOver),
            Some(st) if st.version < rec.version => return Err(SessionError::StowConflict),
            // Leased, and not (or no longer) to this device.
            Some(st) if st.leased && st.held != Some(true) => {
                return Err(SessionError::StowTakenOver);
            }
            None if rec.version > 0 => return Err(SessionError::NoStow),
            _ => {}
        }
        self.place_canaries(CanaryScope::All).await?;
        if !with_history {
            self.forget_history()?;
        }
        self.expire()?;
        self.send_stow(rec).await
    }

    /// Destroys every conversation's history (crypto-shredded, like
    /// expiry), with the local copies of attachments.
    fn forget_history(&mut self) -> Result<(), SessionError> {
        // Every conversation's, groups' included.
        let changes: Vec<super::Change> = self
            .vault
            .conversations()?
            .into_iter()
            .map(super::Change::DeleteAll)
            .collect();
        if !changes.is_empty() {
            self.update(|_| Ok(((), changes)))?;
        }
        Ok(())
    }

    /// Gives up the pending stow: this profile stays and is used again.
    /// Nothing on the relay changes; if the stow landed there, the relay's
    /// version is ahead of this device's, so a later stow from here is
    /// refused (`stow_taken_over`) rather than overwriting it.
    pub(crate) fn abandon_stow(&mut self) -> Result<(), SessionError> {
        if let Some(mut rec) = self.recovery()? {
            rec.abandoned = rec.pending.take();
            self.save_recovery(&rec)?;
        }
        Ok(())
    }

    /// Finishes a stow left pending by a crash or a lost connection: wipes
    /// if the relay has it, else stows again.
    pub(crate) async fn finish_stow(&mut self) -> Result<Stowed, SessionError> {
        let mut rec = self.recovery()?.ok_or(SessionError::NoRecovery)?;
        let Some(pending) = rec.pending.take() else {
            return self.send_stow(rec).await;
        };
        let lease = rec.lease();
        let client = self.relay(rec.keys.relay())?.clone();
        let status = client
            .stow_status(rec.keys.locator(), &rec.keys.owner(), lease.as_ref())
            .await
            .map_err(|e| SessionError::StowUnfinished(Box::new(e)))?;
        match status {
            Some(st) if st.version == pending.version && st.digest == pending.digest => {
                let stowed = self.wipe_stowed(pending.version, 0, pending.deadline)?;
                witness(self, &rec, pending.version).await;
                Ok(stowed)
            }
            Some(st) if st.version == rec.version && (!st.leased || st.held == Some(true)) => {
                // It never landed: stow again, as a stow does.
                self.save_recovery(&rec)?;
                self.place_canaries(CanaryScope::All).await?;
                self.expire()?;
                self.send_stow(rec).await
            }
            None if rec.version == 0 => {
                self.save_recovery(&rec)?;
                self.place_canaries(CanaryScope::All).await?;
                self.expire()?;
                self.send_stow(rec).await
            }
            None => {
                // The relay no longer holds the account (deleted, or ten
                // wrong PINs): this device has the only copy; it stays,
                // with stowing set up from scratch.
                rec.version = 0;
                rec.lease = None;
                self.save_recovery(&rec)?;
                Err(SessionError::NoStow)
            }
            Some(_) => {
                // Someone else wrote after this device's version (a
                // takeover, or a restore of this very stow), or the relay
                // is behind: whether this stow landed cannot be told, so
                // nothing is destroyed; the mark goes and this copy can no
                // longer be stowed.
                self.save_recovery(&rec)?;
                Err(SessionError::StowTakenOver)
            }
        }
    }

    /// Seals the profile's files as the next version, records the stow as
    /// pending, uploads it and wipes.
    async fn send_stow(&mut self, mut rec: Recovery) -> Result<Stowed, SessionError> {
        self.finish()?;
        let next = rec.version + 1;
        let sealed = seal_files(self, &rec, next)?;
        let deadline = self
            .engine()
            .canary_interval()
            .map(|i| now().saturating_add(i));
        rec.pending = Some(Pending {
            version: next,
            digest: b64::encode(&Sha256::digest(&sealed)),
            deadline,
        });
        self.save_recovery(&rec)?;
        match self.put_next(&rec, &sealed, false).await {
            Ok(stored) => {
                let version = stored.version;
                if std::env::var_os("FERRY_FAULT_EXIT_AFTER_STOW_UPLOAD").is_some() {
                    // Fault injection for crash tests: die between the
                    // relay's answer and the wipe.
                    std::process::exit(75);
                }
                let after = |secs: u64| (secs > 0).then(|| now().saturating_add(secs));
                let mut stowed = self.wipe_stowed(version, sealed.len() as u64, deadline)?;
                stowed.attachments_until = after(stored.keeps_attachments);
                stowed.messages_until = after(stored.keeps_messages);
                // The witnesses after the wipe: one that does not answer
                // never keeps the profile on the phone.
                witness(self, &rec, version).await;
                Ok(stowed)
            }
            Err(e) if e.is_permanent() => {
                // Refused for good: nothing landed, the profile stays.
                rec.pending = None;
                self.save_recovery(&rec)?;
                Err(stow_error(e))
            }
            Err(e) => {
                // Unknown whether it landed: nothing more runs on this
                // session (a live copy beside a landed stow would fork),
                // and the next unlock finishes the stow first.
                self.poisoned = true;
                Err(SessionError::StowUnfinished(Box::new(e)))
            }
        }
    }

    /// Puts `sealed` as the version after `rec.version` (keeping this
    /// device's lease or releasing it).
    pub(super) async fn put_next(
        &mut self,
        rec: &Recovery,
        sealed: &[u8],
        keep: bool,
    ) -> Result<ferry_proto::api::StowStored, ClientError> {
        let client = self
            .relay(rec.keys.relay())
            .map_err(|_| ClientError::Protocol("bad relay address".into()))?
            .clone();
        let owner = rec.keys.owner();
        let lease = rec.lease();
        client
            .put_stow(&StowPutRequest {
                locator: rec.keys.locator(),
                owner: &owner,
                access_hash: rec.keys.access_hash(),
                expected: rec.version,
                version: None,
                lease: lease.as_ref(),
                keep,
                record: sealed,
            })
            .await
    }

    fn wipe_stowed(
        &mut self,
        version: u64,
        bytes: u64,
        deadline: Option<u64>,
    ) -> Result<Stowed, SessionError> {
        let dir = self.vault.dir().to_owned();
        // From here this session changes nothing more.
        self.poisoned = true;
        // Destroyed while the vault is still held: nothing else can open it.
        ferry_vault::panic_wipe(&dir, &mut OsRng)?;
        Ok(Stowed {
            version,
            bytes,
            deadline,
            attachments_until: None,
            messages_until: None,
        })
    }
}

/// A relay address as the stow keys are derived from it: scheme and host
/// in lower case, no default port, no trailing slash (so `Relay.example`
/// and `relay.example:443/` find the same account).
pub(super) fn relay_address(relay: &str) -> String {
    match url::Url::parse(relay.trim()) {
        Ok(u) => u.as_str().trim_end_matches('/').to_owned(),
        Err(_) => relay.trim().trim_end_matches('/').to_owned(),
    }
}

/// Tells every witness relay the version now stored (best effort: a
/// witness that missed one only weakens the check, never fails a restore).
pub(super) async fn witness(s: &Session, rec: &Recovery, version: u64) {
    let all = rec
        .witnesses
        .iter()
        .map(|w| tokio::time::timeout(WITNESS_WAIT, witness_one(s, w, version)));
    futures_util::future::join_all(all).await;
}

/// How long one witness may take.
const WITNESS_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

async fn witness_one(s: &Session, w: &RelayKeys, version: u64) {
    let Ok(client) = RelayClient::with_network(w.relay(), &s.network) else {
        return;
    };
    let owner = w.owner();
    let current = match client.stow_status(w.locator(), &owner, None).await {
        Ok(st) => st.map_or(0, |st| st.version),
        Err(_) => return,
    };
    if current >= version {
        return;
    }
    let marker = StowRecord {
        version,
        stowed_at: now(),
        witnesses: Vec::new(),
        files: Vec::new(),
    };
    let Ok(sealed) = marker.seal(w, &mut OsRng) else {
        return;
    };
    let _ = client
        .put_stow(&StowPutRequest {
            locator: w.locator(),
            owner: &owner,
            access_hash: w.access_hash(),
            expected: current,
            version: Some(version),
            lease: None,
            keep: false,
            record: &sealed,
        })
        .await;
}

pub(super) fn seal_files(
    s: &Session,
    rec: &Recovery,
    version: u64,
) -> Result<Vec<u8>, SessionError> {
    let keys = &rec.keys;
    let files = s
        .vault
        .stow_files()?
        .into_iter()
        .filter(|(name, _)| name != super::restore::RESTORE_JOURNAL)
        .map(|(name, bytes)| StowFile { name, bytes })
        .collect();
    let record = StowRecord {
        version,
        stowed_at: now(),
        witnesses: rec.witnesses.iter().map(|w| w.relay().to_owned()).collect(),
        files,
    };
    Ok(record.seal(keys, &mut OsRng)?)
}
