//! Seizure defenses driven from a session: the duress capsule, the
//! dead-man switches, "prove it's you" and manual alerts.

use ferry_core::alert::CapsuleEntry;
use ferry_core::{AlertReason, ContactState};
use rand_core::OsRng;
use secrecy::SecretString;

use super::{Session, SessionError, now};
use ferry_vault::Vault;

use crate::relay::RelayClient;
use crate::transport::retry;

/// The duress capsule, kept in the decoy only.
const CAPSULE_BLOB: &str = "capsule";
/// Format of the capsule.
const CAPSULE_VERSION: u8 = 1;

/// After an unlock: if the vault is a decoy opened by the duress
/// passphrase, warns every contact of the destroyed profile from the
/// capsule, silently, fires their canaries, and forgets each entry once its
/// relay took the alert (the rest is retried at the next unlock). Needs the
/// vault alone. Returns whether a capsule was found (a duress unlock).
pub(super) async fn fire_capsule(vault: &mut Vault, network: &crate::net::Network) -> bool {
    let entries = match vault.json::<Vec<CapsuleEntry>>(CAPSULE_BLOB, CAPSULE_VERSION) {
        Ok(Some(entries)) => entries,
        Ok(None) => return false,
        // A capsule is there (a duress unlock) even if it cannot be read.
        Err(_) => return true,
    };
    let mut left = Vec::new();
    for e in entries {
        let Ok(c) = RelayClient::with_network(&e.relay, network) else {
            continue;
        };
        let sent = match ferry_core::alert::alert_payload(
            &e.alert_key,
            AlertReason::Duress,
            now(),
            &mut OsRng,
        ) {
            Ok(payload) => {
                let key = e.sender.mailbox_key();
                retry(|| c.send(e.mailbox, &key, payload.clone()))
                    .await
                    .is_ok()
            }
            Err(_) => true, // cannot ever be built: drop it
        };
        // The canary goes too, at once: it also reaches the contact if
        // this alert was lost, and it cannot be renewed any more.
        if let Some(canary) = &e.canary {
            let owner = canary.owner.mailbox_key();
            let _ = c.fire_canary(canary.id, &owner).await;
        }
        if !sent {
            left.push(e);
        }
    }
    let _ = if left.is_empty() {
        vault.transaction(|tx| tx.delete_blob(CAPSULE_BLOB))
    } else {
        vault.transaction(|tx| tx.put_json(CAPSULE_BLOB, CAPSULE_VERSION, &left))
    };
    true
}

impl Session {
    /// Call when done with the profile: refreshes the duress capsule in the
    /// decoy (this profile's contacts' addresses and alert keys, no aliases)
    /// and keeps both slots the same size.
    pub fn finish(&self) -> Result<(), SessionError> {
        if let Some(mut decoy) = self.vault.open_decoy()? {
            let capsule = self.engine().capsule();
            decoy.transaction(|tx| tx.put_json(CAPSULE_BLOB, CAPSULE_VERSION, &capsule))?;
        }
        self.mirror_network()?;
        Ok(self.vault.equalize(&mut OsRng)?)
    }

    /// Deposits or renews every contact's dead-man switch. Failures are left
    /// for the next unlock.
    pub async fn renew_canaries(&mut self) -> Result<usize, SessionError> {
        let deposits = self.update(|e| Ok((e.canary_deposits(now(), &mut OsRng)?, Vec::new())))?;
        let mut ok = 0;
        for d in deposits {
            let Ok(client) = self.relay(&d.relay) else {
                continue;
            };
            let (owner, sender) = (d.canary.owner.mailbox_key(), d.sender.mailbox_key());
            if client
                .deposit_canary(
                    d.canary.id,
                    &owner,
                    &sender,
                    d.mailbox,
                    d.release_at,
                    d.payload.clone(),
                )
                .await
                .is_ok()
            {
                ok += 1;
            }
        }
        Ok(ok)
    }

    /// Sets the dead-man switch interval (`None`: off, removing the
    /// canaries from the relays).
    pub async fn set_canary(&mut self, secs: Option<u64>) -> Result<usize, SessionError> {
        let removed = self.update(|e| Ok((e.set_canary_interval(secs), Vec::new())))?;
        for (relay, c) in removed {
            if let Ok(client) = self.relay(&relay) {
                let _ = client.delete_canary(c.id, &c.owner.mailbox_key()).await;
            }
        }
        self.renew_canaries().await
    }

    /// Gives every set-up contact verifiers for `phrase` and `duress`;
    /// contacts that already have some need the `current` phrase. Returns how
    /// many contacts got them.
    pub async fn set_phrase(
        &mut self,
        phrase: &SecretString,
        duress: &SecretString,
        current: Option<&SecretString>,
    ) -> Result<usize, SessionError> {
        let aliases: Vec<String> = self
            .engine()
            .contacts()
            .into_iter()
            .filter(|c| c.state == ContactState::Established)
            .map(|c| c.alias)
            .collect();
        let mut n = 0;
        for alias in aliases {
            self.update(|e| {
                if e.phrase_given(&alias)? && current.is_none() {
                    return Ok(((), Vec::new()));
                }
                e.set_phrase(now(), &mut OsRng, &alias, phrase, duress, current)?;
                n += 1;
                Ok(((), Vec::new()))
            })?;
        }
        self.flush_or_fail().await?;
        Ok(n)
    }

    /// Asks `alias` to prove it is them.
    pub async fn challenge(&mut self, alias: &str) -> Result<(), SessionError> {
        self.update(|e| Ok((e.challenge(now(), &mut OsRng, alias)?, Vec::new())))?;
        self.flush_or_fail().await
    }

    /// Answers `alias`'s challenge with the typed phrase.
    pub async fn answer(&mut self, alias: &str, phrase: &SecretString) -> Result<(), SessionError> {
        self.update(|e| Ok((e.answer(now(), &mut OsRng, alias, phrase)?, Vec::new())))?;
        self.flush_or_fail().await
    }

    /// Warns `alias` (or every contact) that this device may be compromised.
    pub async fn alert(&mut self, alias: Option<&str>) -> Result<usize, SessionError> {
        let n = self.update(|e| {
            Ok((
                e.alert(now(), &mut OsRng, alias, AlertReason::Manual)?,
                Vec::new(),
            ))
        })?;
        self.flush_or_fail().await?;
        Ok(n)
    }
}
