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
//! - A restore keeps a random nonce in `.restore` in the new directory
//!   (its lease token derives from it and the phrase), claims the record,
//!   installs the files, and after the passphrase opens a slot (real or
//!   duress, alike) writes the lease into that slot and stores what it
//!   opened back as version `n + 1`, keeping the lease. A duress
//!   passphrase at restore therefore replaces the relay's copy of the real
//!   profile too. Then every conversation's keys are refreshed.

use std::path::{Path, PathBuf};

use ferry_core::alert::CanaryScope;
use ferry_core::stow::{RecoveryPhrase, RecoverySeed, RelayKeys, StowFile, StowRecord};
use ferry_proto::{ErrorCode, b64};
use rand_core::{OsRng, RngCore as _};
use secrecy::SecretString;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use super::{Session, SessionError, now};
use crate::relay::{ClientError, RelayClient, StowPutRequest};

const RECOVERY_BLOB: &str = "recovery";
const RECOVERY_VERSION: u8 = 1;
/// The journal of a restore in progress, inside the new profile directory.
pub const RESTORE_JOURNAL: &str = ".restore";

/// What the vault keeps about the stowed account.
#[derive(serde::Serialize, serde::Deserialize)]
struct Recovery {
    keys: RelayKeys,
    /// The version this device's state continues from.
    version: u64,
    /// This device's lease token (after a restore).
    #[serde(default, with = "ferry_proto::b64::opt_bytes")]
    lease: Option<Vec<u8>>,
    /// A stow sent but not yet confirmed and wiped.
    #[serde(default)]
    pending: Option<Pending>,
    /// Other relays that witness the version.
    #[serde(default)]
    witnesses: Vec<RelayKeys>,
}

impl Drop for Recovery {
    fn drop(&mut self) {
        if let Some(l) = &mut self.lease {
            zeroize::Zeroize::zeroize(l);
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Pending {
    version: u64,
    /// SHA-256 of the sealed record, base64url.
    digest: String,
}

impl Recovery {
    fn lease(&self) -> Option<[u8; 32]> {
        self.lease.as_deref().and_then(|l| l.try_into().ok())
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
}

/// A restore whose files are installed; [`Session::unlock_restored`]
/// finishes it with the passphrase.
pub struct Restoring {
    home: PathBuf,
    keys: RelayKeys,
    version: u64,
    lease: Zeroizing<[u8; 32]>,
    witnesses: Vec<RelayKeys>,
}

impl std::fmt::Debug for Restoring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restoring")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Restoring {
    /// The version restored.
    pub fn version(&self) -> u64 {
        self.version
    }
}

/// A refusal by the relay, in the words of a stow.
fn stow_error(e: ClientError) -> SessionError {
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

    fn save_recovery(&mut self, rec: &Recovery) -> Result<(), SessionError> {
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
            && subtle_eq(keys.access_token(), rec.keys.access_token()))
    }

    /// Sets up stowing with `phrase` (and an optional PIN) on this
    /// profile's relay: derives the keys (Argon2id, about a second) and
    /// keeps them. The same phrase again keeps the stow's version.
    pub fn recovery_setup(
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
        let keys = seed.relay_keys(self.relay_url(), pin)?;
        let witnesses = witnesses
            .iter()
            .filter(|w| w.trim_end_matches('/') != keys.relay())
            .map(|w| seed.relay_keys(w, pin))
            .collect::<Result<Vec<_>, _>>()?;
        let (version, lease) = match self.recovery()? {
            Some(old) if old.keys.locator() == keys.locator() => (old.version, old.lease.clone()),
            _ => (0, None),
        };
        self.save_recovery(&Recovery {
            keys,
            version,
            lease,
            pending: None,
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
        let mut changes = Vec::new();
        for c in self.contacts() {
            let id = self.contact_id(&c.alias)?;
            for e in self.history(&c.alias)? {
                changes.push(super::Change::Delete(id, e.id));
            }
        }
        if !changes.is_empty() {
            self.update(|_| Ok(((), changes)))?;
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
        let client = self.relay(rec.keys.relay())?.clone();
        let status = client
            .stow_status(rec.keys.locator(), &rec.keys.owner())
            .await
            .map_err(stow_error)?;
        match status {
            Some(st) if st.version == pending.version && st.digest == pending.digest => {
                witness(self, &rec, pending.version).await;
                self.wipe_stowed(pending.version, 0)
            }
            Some(st) if st.version == rec.version => {
                self.save_recovery(&rec)?;
                self.send_stow(rec).await
            }
            None if rec.version == 0 => {
                self.save_recovery(&rec)?;
                self.send_stow(rec).await
            }
            _ => {
                // Moved on without this device: it was taken over.
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
        rec.pending = Some(Pending {
            version: next,
            digest: b64::encode(&Sha256::digest(&sealed)),
        });
        self.save_recovery(&rec)?;
        let client = self.relay(rec.keys.relay())?.clone();
        let owner = rec.keys.owner();
        let lease = rec.lease();
        let put = client
            .put_stow(&StowPutRequest {
                locator: rec.keys.locator(),
                owner: &owner,
                access_hash: rec.keys.access_hash(),
                expected: rec.version,
                version: None,
                lease: lease.as_ref(),
                keep: false,
                record: &sealed,
            })
            .await;
        match put {
            Ok(version) => {
                witness(self, &rec, version).await;
                if std::env::var_os("FERRY_FAULT_EXIT_AFTER_STOW_UPLOAD").is_some() {
                    // Fault injection for crash tests: die between the
                    // relay's answer and the wipe.
                    std::process::exit(75);
                }
                self.wipe_stowed(version, sealed.len() as u64)
            }
            Err(e) if e.is_permanent() => {
                // Refused for good: nothing landed, the profile stays.
                rec.pending = None;
                self.save_recovery(&rec)?;
                Err(stow_error(e))
            }
            // Unknown whether it landed: the stow stays pending and the
            // next unlock finishes it first.
            Err(e) => Err(SessionError::StowUnfinished(Box::new(e))),
        }
    }

    fn wipe_stowed(&mut self, version: u64, bytes: u64) -> Result<Stowed, SessionError> {
        let deadline = self
            .engine()
            .canary_interval()
            .map(|i| now().saturating_add(i));
        let dir = self.vault.dir().to_owned();
        // From here this session changes nothing more.
        self.poisoned = true;
        // Destroyed while the vault is still held: nothing else can open it.
        ferry_vault::panic_wipe(&dir, &mut OsRng)?;
        Ok(Stowed {
            version,
            bytes,
            deadline,
        })
    }

    /// Finishes a restore: unlocks the installed profile with `pass`
    /// (the duress passphrase behaves exactly as at any unlock), keeps the
    /// lease in whichever slot opened, stores what it opened back on the
    /// relay as the next version, removes the journal and refreshes every
    /// conversation's keys.
    pub async fn unlock_restored(
        restoring: Restoring,
        pass: &SecretString,
    ) -> Result<Session, SessionError> {
        let mut s = Self::unlock_inner(&restoring.home, pass, None, true).await?;
        let mut rec = Recovery {
            keys: restoring.keys.clone(),
            version: restoring.version,
            lease: Some(restoring.lease.to_vec()),
            pending: None,
            witnesses: restoring.witnesses.clone(),
        };
        s.save_recovery(&rec)?;
        // Fresh keys in every conversation, due now (queued before the
        // checkpoint, so the relay's copy carries them).
        s.update(|e| Ok((e.refresh_all(now(), &mut OsRng), Vec::new())))?;
        s.finish()?;
        let next = rec.version + 1;
        let sealed = seal_files(&s, &rec, next)?;
        let client = s.relay(rec.keys.relay())?.clone();
        let owner = rec.keys.owner();
        let lease = rec.lease();
        let put = client
            .put_stow(&StowPutRequest {
                locator: rec.keys.locator(),
                owner: &owner,
                access_hash: rec.keys.access_hash(),
                expected: rec.version,
                version: None,
                lease: lease.as_ref(),
                keep: true,
                record: &sealed,
            })
            .await;
        match put {
            Ok(v) => {
                witness(&s, &rec, v).await;
                rec.version = v;
                s.save_recovery(&rec)?;
            }
            Err(e) if e.code() == Some(ErrorCode::StowLeaseLost) => {
                return Err(SessionError::StowTakenOver);
            }
            // The relay keeps version n, leased to this device: the next
            // stow continues from it.
            Err(_) => {}
        }
        remove_journal(&restoring.home)?;
        Ok(s)
    }
}

fn subtle_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Tells every witness relay the version now stored (best effort: a
/// witness that missed one only weakens the check, never fails a restore).
async fn witness(s: &Session, rec: &Recovery, version: u64) {
    for w in &rec.witnesses {
        let Ok(client) = RelayClient::with_network(w.relay(), &s.network) else {
            continue;
        };
        let owner = w.owner();
        let current = match client.stow_status(w.locator(), &owner).await {
            Ok(st) => st.map_or(0, |st| st.version),
            Err(_) => continue,
        };
        if current >= version {
            continue;
        }
        let marker = StowRecord {
            version,
            stowed_at: now(),
            witnesses: Vec::new(),
            files: Vec::new(),
        };
        let Ok(sealed) = marker.seal(w, &mut OsRng) else {
            continue;
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
}

fn seal_files(s: &Session, rec: &Recovery, version: u64) -> Result<Vec<u8>, SessionError> {
    let keys = &rec.keys;
    let files = s
        .vault
        .stow_files()?
        .into_iter()
        .filter(|(name, _)| name != RESTORE_JOURNAL)
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

fn remove_journal(home: &Path) -> Result<(), SessionError> {
    let path = home.join(RESTORE_JOURNAL);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ferry_vault::VaultError::Io(e).into()),
    }
}

/// What a restore needs.
pub struct RestoreRequest<'a> {
    /// The new profile directory (absent, empty, or holding an unfinished
    /// restore of the same account).
    pub home: &'a Path,
    /// The relay the account was stowed on.
    pub relay: &'a str,
    /// The recovery phrase.
    pub phrase: &'a RecoveryPhrase,
    /// The PIN, if one was set.
    pub pin: Option<&'a SecretString>,
    /// Take the account over from the device holding it.
    pub takeover: bool,
    /// How to reach the relay.
    pub network: crate::net::Network,
}

/// Claims the stowed account and installs its files in `req.home`. On a
/// refusal nothing is left behind; after a crash, running it again with
/// the same phrase resumes.
pub async fn restore_files(req: RestoreRequest<'_>) -> Result<Restoring, SessionError> {
    super::check_relay_url(req.relay)?;
    let seed = RecoverySeed::derive(req.phrase)?;
    let keys = seed.relay_keys(req.relay, req.pin)?;
    let home = req.home;
    let journal = home.join(RESTORE_JOURNAL);
    let resumed = journal.exists();
    if !resumed && ferry_vault::Vault::exists(home) {
        return Err(ferry_vault::VaultError::AlreadyExists.into());
    }
    let created_dir = !home.exists();
    let nonce: [u8; 16] = if resumed {
        std::fs::read(&journal)
            .map_err(ferry_vault::VaultError::Io)?
            .try_into()
            .map_err(|_| ferry_vault::VaultError::Corrupt("restore journal".into()))?
    } else {
        if home.exists()
            && std::fs::read_dir(home)
                .map_err(ferry_vault::VaultError::Io)?
                .next()
                .is_some()
        {
            return Err(ferry_vault::VaultError::AlreadyExists.into());
        }
        let mut n = [0u8; 16];
        OsRng.fill_bytes(&mut n);
        write_journal(home, &n)?;
        n
    };
    let lease = keys.lease_token(&nonce);
    let client = RelayClient::with_network(req.relay, &req.network)?;
    let claimed = client
        .claim_stow(
            keys.locator(),
            &keys.owner(),
            keys.access_token(),
            &lease,
            req.takeover,
            usize::try_from(ferry_core::stow::MAX_RECORD).unwrap_or(usize::MAX),
        )
        .await;
    let (version, sealed) = match claimed {
        Ok(c) => c,
        Err(e) => {
            if e.is_permanent() {
                // Refused: whatever this restore left goes.
                clean_up(home, created_dir);
            }
            return Err(match e {
                ClientError::WrongPin { left } => SessionError::WrongPin { left },
                e => stow_error(e),
            });
        }
    };
    let record = match StowRecord::open(&sealed, &keys, version) {
        Ok(r) => r,
        Err(e) => {
            clean_up(home, created_dir);
            return Err(e.into());
        }
    };
    // Never backwards: no witness may have seen a newer version.
    let mut witnesses = Vec::with_capacity(record.witnesses.len());
    for url in &record.witnesses {
        let w = seed.relay_keys(url, req.pin)?;
        let client = RelayClient::with_network(url, &req.network)?;
        match client.stow_status(w.locator(), &w.owner()).await {
            Ok(Some(st)) if st.version > version => {
                clean_up(home, created_dir);
                return Err(SessionError::StowStale {
                    served: version,
                    witnessed: st.version,
                    witness: url.clone(),
                });
            }
            Ok(_) => {}
            Err(e) => {
                return Err(SessionError::WitnessUnreachable {
                    witness: url.clone(),
                    error: Box::new(e),
                });
            }
        }
        witnesses.push(w);
    }
    let files: Vec<(String, Zeroizing<Vec<u8>>)> = record
        .files
        .into_iter()
        .map(|f| (f.name, f.bytes))
        .collect();
    ferry_vault::install(home, &files, &[RESTORE_JOURNAL])?;
    if std::env::var_os("FERRY_FAULT_EXIT_AFTER_RESTORE_INSTALL").is_some() {
        // Fault injection for crash tests: die before the passphrase.
        std::process::exit(75);
    }
    Ok(Restoring {
        home: home.to_owned(),
        keys,
        version,
        lease,
        witnesses,
    })
}

fn write_journal(home: &Path, nonce: &[u8; 16]) -> Result<(), SessionError> {
    use std::io::Write as _;
    std::fs::create_dir_all(home).map_err(ferry_vault::VaultError::Io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700))
            .map_err(ferry_vault::VaultError::Io)?;
    }
    let mut f =
        std::fs::File::create(home.join(RESTORE_JOURNAL)).map_err(ferry_vault::VaultError::Io)?;
    f.write_all(nonce).map_err(ferry_vault::VaultError::Io)?;
    f.sync_all().map_err(ferry_vault::VaultError::Io)?;
    Ok(())
}

/// Removes what a refused restore left: its files (destroyed like a panic
/// wipe, in case an earlier run installed some), and the directory if
/// this restore created it.
fn clean_up(home: &Path, created_dir: bool) {
    if ferry_vault::panic_wipe(home, &mut OsRng).is_ok() && !created_dir {
        let _ = std::fs::create_dir(home);
    }
}
