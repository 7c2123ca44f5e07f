//! Restore: the stowed account back from its phrase (see `super::stow`).
//!
//! A restore keeps a random nonce in `.restore` in the new directory (its
//! lease token derives from it and the phrase), claims the record, checks
//! the witnesses, installs the files, and after the passphrase opens a slot
//! (real or duress, alike) writes the lease into that slot and stores what
//! it opened back as the next version, keeping the lease.

use std::path::{Path, PathBuf};

use ferry_core::stow::{RecoveryPhrase, RecoverySeed, RelayKeys, StowRecord};
use ferry_proto::ErrorCode;
use rand_core::{OsRng, RngCore as _};
use secrecy::SecretString;
use zeroize::Zeroizing;

use super::stow::{Recovery, relay_address, seal_files, stow_error};
use super::{Session, SessionError, now};
use crate::relay::{ClientError, RelayClient};

/// The journal of a restore in progress, inside the new profile directory.
pub const RESTORE_JOURNAL: &str = ".restore";

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

impl Session {
    /// Finishes a restore: unlocks the installed profile with `pass`
    /// (the duress passphrase behaves exactly as at any unlock), keeps the
    /// lease in whichever slot opened, stores what it opened back on the
    /// relay as the next version, removes the journal and refreshes every
    /// conversation's keys.
    ///
    /// `network`, if given, is stored as the profile's way to reach relays
    /// first (as [`Session::unlock_with`] does), so not even the restore's
    /// own connections go out another way.
    pub async fn unlock_restored(
        restoring: Restoring,
        pass: &SecretString,
        network: Option<crate::net::Network>,
    ) -> Result<Session, SessionError> {
        let mut s =
            Self::unlock_inner(&restoring.home, pass, network, super::Opening::Restoring).await?;
        let mut rec = Recovery {
            keys: restoring.keys.clone(),
            version: restoring.version,
            lease: Some(restoring.lease.to_vec()),
            pending: None,
            abandoned: None,
            witnesses: restoring.witnesses.clone(),
        };
        // Fresh keys and a new mailbox in every conversation, due now
        // (queued before the checkpoint, so the relay's copy carries them;
        // nothing leaves this device before the checkpoint lands, and they
        // go at the first sync): the device this came from can then
        // neither read nor fetch nor delete what contacts send.
        let t = now();
        s.update(|e| {
            e.refresh_all(t, &mut OsRng);
            Ok((e.move_mailboxes(t, &mut OsRng), Vec::new()))
        })?;
        s.finish()?;
        let sealed = seal_files(&s, &rec, rec.version + 1)?;
        // The keys go into whichever slot opened only once the relay holds
        // what opened: after a duress passphrase, nothing in the decoy can
        // reach the real profile's record. Until then the restore is
        // unfinished (its journal stays) and running it again resumes.
        match s.put_next(&rec, &sealed, true).await {
            Ok(stored) => {
                let v = stored.version;
                rec.version = v;
                s.save_recovery(&rec)?;
                remove_journal(&restoring.home)?;
                super::stow::witness(&s, &rec, v).await;
            }
            Err(e) if e.code() == Some(ErrorCode::StowLeaseLost) => {
                return Err(SessionError::StowTakenOver);
            }
            Err(e) if e.is_permanent() => {
                // Refused for good (too large now, ...): running the
                // restore again cannot help. The profile stays as it
                // opened, without this restore's keys; the relay's copy
                // stays leased to a lease nobody keeps.
                remove_journal(&restoring.home)?;
                return Err(SessionError::RestoreCheckpoint(Box::new(e)));
            }
            Err(e) => return Err(SessionError::RestoreCheckpoint(Box::new(e))),
        }
        Ok(s)
    }
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
    let relay = relay_address(req.relay);
    super::check_relay_url(&relay)?;
    let seed = RecoverySeed::derive(req.phrase)?;
    let keys = seed.relay_keys(&relay, req.pin)?;
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
    let client = RelayClient::with_network(&relay, &req.network)?;
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
                if resumed && ferry_vault::Vault::exists(home) {
                    // An earlier run installed the account here: never
                    // destroyed by a refusal (it may be the only copy).
                    // With the record gone, it simply stays, as a profile.
                    if e.code() == Some(ErrorCode::NoStow) {
                        remove_journal(home)?;
                    }
                } else {
                    // Refused: whatever this restore left goes.
                    clean_up(home, created_dir);
                }
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
        let w = seed.relay_keys(&relay_address(url), req.pin)?;
        let client = RelayClient::with_network(url, &req.network)?;
        match client.stow_status(w.locator(), &w.owner(), None).await {
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
