//! Seizure defenses driven from a session: the duress capsule, the
//! dead-man switches, "prove it's you" and manual alerts.

use ferry_core::alert::CanaryScope;
use ferry_core::alert::CapsuleEntry;
use ferry_core::{AlertReason, ContactState};
use rand_core::OsRng;
use secrecy::SecretString;

use super::{Session, SessionError, now};
use ferry_vault::Vault;

use ferry_core::DEFAULT_CANARY_SECS;
use ferry_proto::ErrorCode;
use zeroize::Zeroizing;

use crate::relay::RelayClient;

/// The duress capsule: in the decoy, the fire-only keys of the real
/// profile's canaries; in every other profile, a region of the same size
/// holding none.
const CAPSULE_BLOB: &str = "capsule";
/// Format of the capsule: `version ‖ JSON`, padded with spaces.
const CAPSULE_VERSION: u8 = 2;
/// The first format: contacts' addresses and alert keys.
const LEGACY_CAPSULE_VERSION: u8 = 1;
/// Every capsule region has this size, whatever it holds.
pub(crate) const CAPSULE_SIZE: usize = 128 * 1024;

/// The capsule as stored: each relay once, then per canary its relay's
/// index, id and fire key (about 75 bytes a canary, so the region holds
/// well over [`ferry_core::MAX_CONTACTS`] of them).
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Stored {
    relays: Vec<String>,
    entries: Vec<(usize, ferry_proto::MailboxId, ferry_core::KeyBytes)>,
}

impl Stored {
    fn from_entries(entries: &[CapsuleEntry]) -> Self {
        let mut s = Self::default();
        for e in entries {
            let i = match s.relays.iter().position(|r| *r == e.relay) {
                Some(i) => i,
                None => {
                    s.relays.push(e.relay.clone());
                    s.relays.len() - 1
                }
            };
            s.entries.push((i, e.canary, e.fire.clone()));
        }
        s
    }

    fn into_entries(self) -> Option<Vec<CapsuleEntry>> {
        self.entries
            .into_iter()
            .map(|(i, canary, fire)| {
                Some(CapsuleEntry {
                    relay: self.relays.get(i)?.clone(),
                    canary,
                    fire,
                })
            })
            .collect()
    }
}

/// The capsule region's bytes for `entries` (as many as fit: the region
/// has room for far more than the contacts a profile may have, unless
/// their relays' addresses are very long and all different).
fn capsule_bytes(entries: &[CapsuleEntry]) -> Zeroizing<Vec<u8>> {
    let encode = |n: usize| {
        let mut out = Zeroizing::new(vec![CAPSULE_VERSION]);
        // Serializing plain data cannot fail.
        let _ = serde_json::to_writer(&mut *out, &Stored::from_entries(&entries[..n]));
        out
    };
    let (mut lo, mut hi) = (0, entries.len());
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if encode(mid).len() <= CAPSULE_SIZE {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let mut out = encode(lo);
    out.resize(CAPSULE_SIZE, b' ');
    out
}

/// Gives a profile without one an empty capsule region: every profile
/// holds one of the same size (one with entries left to fire keeps them).
pub(super) fn ensure_capsule_region(vault: &mut Vault) -> Result<(), SessionError> {
    if vault.blob(CAPSULE_BLOB)?.is_none() {
        vault.transaction(|tx| tx.put_blob(CAPSULE_BLOB, &capsule_bytes(&[])))?;
    }
    Ok(())
}

/// What a capsule holds.
enum Capsule {
    Entries(Vec<CapsuleEntry>),
    /// Written by a release before fire-only keys.
    Legacy(Vec<LegacyEntry>),
}

/// A capsule entry of the first format.
#[derive(serde::Deserialize, serde::Serialize)]
struct LegacyEntry {
    relay: String,
    mailbox: ferry_proto::MailboxId,
    sender: ferry_core::KeyBytes,
    alert_key: ferry_core::KeyBytes,
}

fn read_capsule(vault: &Vault) -> Result<Option<Capsule>, ()> {
    let Some(bytes) = vault.blob(CAPSULE_BLOB).map_err(|_| ())? else {
        return Ok(None);
    };
    match bytes.split_first() {
        Some((&CAPSULE_VERSION, json)) => serde_json::from_slice::<Stored>(json)
            .ok()
            .and_then(Stored::into_entries)
            .map(|e| Some(Capsule::Entries(e)))
            .ok_or(()),
        Some((&LEGACY_CAPSULE_VERSION, json)) => serde_json::from_slice(json)
            .map(|e| Some(Capsule::Legacy(e)))
            .map_err(|_| ()),
        Some((b'[', _)) => serde_json::from_slice(&bytes)
            .map(|e| Some(Capsule::Legacy(e)))
            .map_err(|_| ()),
        _ => Err(()),
    }
}

/// After an unlock: if the vault is a decoy opened by the duress
/// passphrase, fires every canary of the destroyed profile from the
/// capsule, silently, each with one request shaped like a real session's
/// renewal, and forgets each entry once its relay took it (the rest is
/// retried by [`Session::retry_capsule`] and at the next unlock). Needs the
/// vault alone. Returns whether a capsule with entries was found (a duress
/// unlock).
pub(super) async fn fire_capsule(vault: &mut Vault, network: &crate::net::Network) -> bool {
    let entries = match read_capsule(vault) {
        Ok(Some(Capsule::Entries(e))) if !e.is_empty() => e,
        Ok(Some(Capsule::Legacy(e))) => return fire_legacy(vault, network, e).await,
        Ok(_) => return false,
        // A capsule is there (a duress unlock) even if it cannot be read.
        Err(()) => return true,
    };
    let mut left = Vec::new();
    for e in entries {
        // A client that cannot be made now (its proxy setting, TLS) is
        // retried with the rest, never dropped.
        let Ok(c) = RelayClient::with_network(&e.relay, network) else {
            left.push(e);
            continue;
        };
        // Looks like a renewal to the network; the relay releases the
        // canary's duress alert. One try, like a renewal: what fails waits
        // for the next one.
        let done = match c
            .renew_canary(e.canary, &e.fire.mailbox_key(), now() + DEFAULT_CANARY_SECS)
            .await
        {
            Ok(()) => true,
            // The relay answered but will never fire it (released already,
            // unknown, refused): nothing left to try. Only a missing answer
            // or a relay asking to wait is tried again.
            Err(err) => err.code().is_some_and(|code| {
                !matches!(
                    code,
                    ErrorCode::RateLimited
                        | ErrorCode::TooManyConnections
                        | ErrorCode::Unavailable
                        | ErrorCode::Internal
                        | ErrorCode::StaleTimestamp
                )
            }),
        };
        if !done {
            left.push(e);
        }
    }
    let _ = vault.transaction(|tx| tx.put_blob(CAPSULE_BLOB, &capsule_bytes(&left)));
    true
}

/// A capsule of the first format: alerts sent straight to each contact's
/// mailbox (their conversation predates sealing, so they take it).
async fn fire_legacy(
    vault: &mut Vault,
    network: &crate::net::Network,
    entries: Vec<LegacyEntry>,
) -> bool {
    let mut left = Vec::new();
    for e in entries {
        let Ok(c) = RelayClient::with_network(&e.relay, network) else {
            left.push(e);
            continue;
        };
        let Ok(payload) = ferry_core::alert::legacy_alert_payload(
            &e.alert_key,
            AlertReason::Duress,
            now(),
            &mut OsRng,
        ) else {
            continue;
        };
        if c.send(e.mailbox, &e.sender.mailbox_key(), payload)
            .await
            .is_err()
        {
            left.push(e);
        }
    }
    let _ = vault.transaction(|tx| {
        if left.is_empty() {
            tx.put_blob(CAPSULE_BLOB, &capsule_bytes(&[]))
        } else {
            tx.put_json(CAPSULE_BLOB, LEGACY_CAPSULE_VERSION, &left)
        }
    });
    true
}

impl Session {
    /// Call when done with the profile: refreshes the duress capsule in the
    /// decoy (this profile's contacts' addresses and alert keys, no aliases)
    /// and keeps both slots the same size.
    pub fn finish(&self) -> Result<(), SessionError> {
        if self.wiped() {
            // Stowed or panic-wiped: there is nothing left to keep even.
            return Ok(());
        }
        if let Some(mut decoy) = self.vault.open_decoy()? {
            let capsule = capsule_bytes(&self.engine().capsule());
            decoy.transaction(|tx| tx.put_blob(CAPSULE_BLOB, &capsule))?;
        }

        self.mirror_network()?;
        Ok(self.vault.equalize(&mut OsRng)?)
    }

    /// Renews the dead-man switches that are due (each on its own random
    /// schedule), or deposits one that is new, has a new fire key, or that
    /// the relay lost. Failures are retried when next due. Returns how many
    /// were placed.
    pub async fn renew_canaries(&mut self) -> Result<usize, SessionError> {
        self.place_canaries(CanaryScope::Due).await
    }

    /// Deposits the canaries of contacts set up since (after a sync): a
    /// new contact is covered by a duress unlock from the start.
    pub(super) async fn deposit_new_canaries(&mut self) {
        if self.engine().canary_missing() {
            let _ = self.place_canaries(CanaryScope::Fresh).await;
        }
    }

    pub(super) async fn place_canaries(
        &mut self,
        scope: CanaryScope,
    ) -> Result<usize, SessionError> {
        let deposits =
            self.update(|e| Ok((e.canary_deposits(now(), &mut OsRng, scope)?, Vec::new())))?;
        let mut placed = Vec::new();
        for d in deposits {
            let Ok(client) = self.relay(&d.relay) else {
                continue;
            };
            let owner = d.canary.owner.mailbox_key();
            if !d.fresh {
                match client.renew_canary(d.canary.id, &owner, d.release_at).await {
                    Ok(()) => {
                        placed.push(d.canary.id);
                        continue;
                    }
                    Err(e) if e.code() == Some(ErrorCode::UnknownCanary) => {}
                    Err(_) => continue,
                }
            }
            let fire = d
                .canary
                .fire
                .as_ref()
                .map(|f| (f.mailbox_key().public(), d.fire_payload.clone()));
            if client
                .deposit_canary(
                    d.canary.id,
                    &owner,
                    &d.sender.mailbox_key(),
                    d.mailbox,
                    d.release_at,
                    d.payload.clone(),
                    fire,
                )
                .await
                .is_ok()
            {
                placed.push(d.canary.id);
            }
        }
        let n = placed.len();
        self.update(|e| {
            for id in placed {
                e.canary_placed(id, now(), &mut OsRng);
            }
            Ok(((), Vec::new()))
        })?;
        Ok(n)
    }

    /// Sets the dead-man switch interval (`None`: off; the canaries stay,
    /// released only after a year without an unlock, since a duress
    /// unlock fires them). Returns how many are in place.
    pub async fn set_canary(&mut self, secs: Option<u64>) -> Result<usize, SessionError> {
        self.update(|e| {
            e.set_canary_interval(secs);
            Ok(((), Vec::new()))
        })?;
        self.place_canaries(CanaryScope::All).await
    }

    /// Refreshes the keys of conversations where it is due by time (see
    /// `ferry_core::pcs`), and sends the refreshes.
    pub async fn refresh_keys(&mut self) -> Result<(), SessionError> {
        let queued = self.update(|e| Ok((e.refresh_due(now(), &mut OsRng), Vec::new())))?;
        if queued > 0 {
            self.flush_outbox().await?;
        }
        Ok(())
    }

    /// In a decoy opened by the duress passphrase, fires what the capsule
    /// still holds (the app and `watch` call it while they run); does
    /// nothing in any other profile.
    pub async fn retry_capsule(&mut self) {
        let Ok(network) = super::network::load(&self.vault) else {
            return;
        };
        fire_capsule(&mut self.vault, &network).await;
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
            // A group's name: an alert in that group (every member
            // quarantines this profile; an admin removes it).
            if let Some(name) = alias
                && e.contact(name).is_none()
                && e.group_id(name).is_some()
            {
                e.group_alert(name)?;
                return Ok((1, Vec::new()));
            }
            let mut n = e.alert(now(), &mut OsRng, alias, AlertReason::Manual)?;
            if alias.is_none() {
                // Every group too.
                for g in e.groups() {
                    if e.group_alert(&g.name).is_ok() {
                        n += 1;
                    }
                }
            }
            Ok((n, Vec::new()))
        })?;
        self.flush_or_fail().await?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entry(relay: &str, rng: &mut OsRng) -> CapsuleEntry {
        CapsuleEntry {
            relay: relay.to_owned(),
            canary: ferry_proto::MailboxId::random(rng),
            fire: ferry_core::KeyBytes::random(rng),
        }
    }

    fn decode(bytes: &[u8]) -> Vec<CapsuleEntry> {
        assert_eq!(bytes[0], CAPSULE_VERSION);
        let s: Stored = serde_json::from_slice(&bytes[1..]).unwrap();
        s.into_entries().unwrap()
    }

    /// The region has room for every contact a profile may have, and is the
    /// same size whatever it holds.
    #[test]
    fn the_capsule_region_holds_every_contact_in_one_size() {
        let relays: Vec<String> = (0..20)
            .map(|i| format!("https://relay-{i}.example.org:8443"))
            .collect();
        let full: Vec<CapsuleEntry> = (0..ferry_core::MAX_CONTACTS)
            .map(|i| entry(&relays[i % relays.len()], &mut OsRng))
            .collect();
        let bytes = capsule_bytes(&full);
        assert_eq!(bytes.len(), CAPSULE_SIZE);
        let back = decode(&bytes);
        assert_eq!(back.len(), full.len());
        assert!(back.iter().zip(&full).all(|(a, b)| a.relay == b.relay
            && a.canary == b.canary
            && a.fire.expose() == b.fire.expose()));
        assert_eq!(capsule_bytes(&[]).len(), CAPSULE_SIZE);
        // Pathological: every contact on its own 512-character relay. As
        // many as fit are kept, and the region keeps its size.
        let long: Vec<CapsuleEntry> = (0..ferry_core::MAX_CONTACTS)
            .map(|i| entry(&format!("https://{i:0>500}.example"), &mut OsRng))
            .collect();
        let bytes = capsule_bytes(&long);
        assert_eq!(bytes.len(), CAPSULE_SIZE);
        let kept = decode(&bytes).len();
        assert!(kept > 150 && kept < long.len(), "{kept}");
    }
}
