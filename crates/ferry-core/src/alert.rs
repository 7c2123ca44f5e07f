//! Compromise alerts: a contact's device tells ours "I am compromised".
//!
//! At set-up both sides export the same 32-byte *alert key* from the MLS
//! group (exporter label `ferry alert key v1`), kept outside the ratchet so
//! that it still works after the sender's MLS state is gone (the duress
//! capsule holds it). An alert is `{reason, at}` sealed with
//! XChaCha20-Poly1305 under that key and sent to the contact's mailbox like
//! any message; only the two members hold the key, so neither the relay nor a
//! stranger can forge one, and it is padded like any other payload.

use crate::mls_store::Provider;
use crate::reject::RejectReason;
use openmls::prelude::*;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use crate::engine::{Action, AlertReason, Compromise, CoreError, Engine, Event, mls};
use crate::envelope;
use crate::invite::{open, seal};
use crate::secret::KeyBytes;
use ferry_proto::{MailboxId, padding};

const LABEL: &[u8] = b"ferry alert v1";

pub(crate) fn export_key(group: &MlsGroup, provider: &Provider) -> Result<KeyBytes, CoreError> {
    let v = group
        .export_secret(provider.crypto(), "ferry alert key v1", &[], 32)
        .map_err(mls)?;
    let mut k = KeyBytes([0u8; 32]);
    if v.len() != 32 {
        return Err(CoreError::Mls("exporter length".into()));
    }
    k.0.copy_from_slice(&v);
    Ok(k)
}

#[derive(Serialize, Deserialize)]
struct AlertBody {
    reason: AlertReason,
    at: u64,
}

/// What the duress capsule keeps per contact: enough to warn them with
/// nothing else of the profile left (no alias, no history).
#[derive(Clone, Serialize, Deserialize)]
pub struct CapsuleEntry {
    /// The contact's relay.
    pub relay: String,
    /// The contact's mailbox for us.
    pub mailbox: MailboxId,
    /// Its sender key.
    pub sender: KeyBytes,
    /// The pair's alert key.
    pub alert_key: KeyBytes,
    /// Our canary for this contact at their relay, to fire at once.
    #[serde(default)]
    pub canary: Option<CanaryRef>,
}

/// A canary deposited at a contact's relay: its id and owner key.
#[derive(Clone, Serialize, Deserialize)]
pub struct CanaryRef {
    /// Canary id.
    pub id: MailboxId,
    /// Owner key (authorizes renew, fire, delete).
    pub owner: KeyBytes,
}

/// A canary to (re)deposit: one per contact, at the relay of the contact's
/// mailbox, so the relay can deliver it without holding any key.
#[derive(Clone)]
pub struct CanaryDeposit {
    /// The contact's relay.
    pub relay: String,
    /// The canary.
    pub canary: CanaryRef,
    /// The contact's mailbox.
    pub mailbox: MailboxId,
    /// Its sender key (co-signs the deposit).
    pub sender: KeyBytes,
    /// When the relay releases it unless renewed.
    pub release_at: u64,
    /// The sealed alert.
    pub payload: Vec<u8>,
}

impl std::fmt::Debug for CapsuleEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CapsuleEntry(..)")
    }
}

/// A padded alert payload for `entry`'s mailbox.
pub fn alert_payload(
    alert_key: &KeyBytes,
    reason: AlertReason,
    now: u64,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, CoreError> {
    let body = serde_json::to_vec(&AlertBody { reason, at: now })
        .map_err(|e| CoreError::State(e.to_string()))?;
    let sealed = seal(alert_key, LABEL, &body, rng);
    padding::pad(&envelope::wrap(envelope::ALERT, &sealed)).map_err(|_| CoreError::TooLong)
}

impl Engine {
    /// The duress capsule: every set-up contact's address and alert key.
    pub fn capsule(&self) -> Vec<CapsuleEntry> {
        self.state
            .contacts
            .iter()
            .filter_map(|c| {
                let e = c.established()?;
                let out = &e.outbound;
                Some(CapsuleEntry {
                    relay: out.relay.clone(),
                    mailbox: out.mailbox,
                    sender: out.sender.clone(),
                    alert_key: e.alert_key.clone()?,
                    canary: c.canary.clone(),
                })
            })
            .collect()
    }

    /// The dead-man switch interval (`None`: off).
    pub fn canary_interval(&self) -> Option<u64> {
        self.state.settings().canary_interval
    }

    /// Sets the dead-man switch interval; returns the canaries to remove
    /// from relays when it is turned off.
    pub fn set_canary_interval(&mut self, secs: Option<u64>) -> Vec<(String, CanaryRef)> {
        self.state.settings_mut().canary_interval = secs;
        if secs.is_some() {
            return Vec::new();
        }
        self.state
            .contacts
            .iter_mut()
            .filter_map(|c| {
                let relay = c.established()?.outbound.relay.clone();
                Some((relay, c.canary.take()?))
            })
            .collect()
    }

    /// Canaries to (re)deposit after an unlock with the real passphrase,
    /// released `interval` from now unless renewed (ids and owner keys are
    /// created the first time).
    pub fn canary_deposits(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<CanaryDeposit>, CoreError> {
        let Some(interval) = self.state.settings().canary_interval else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for idx in 0..self.state.contacts.len() {
            let c = &self.state.contacts[idx];
            let Some((addr, Some(key))) = c
                .established()
                .map(|e| (e.outbound.clone(), e.alert_key.clone()))
            else {
                continue;
            };
            // Only a contact given its first canary changes (and is written).
            let canary = match &c.canary {
                Some(existing) => existing.clone(),
                None => self
                    .state
                    .contacts
                    .get_mut(idx)
                    .canary
                    .insert(CanaryRef {
                        id: MailboxId::random(rng),
                        owner: KeyBytes::random(rng),
                    })
                    .clone(),
            };
            out.push(CanaryDeposit {
                relay: addr.relay,
                canary,
                mailbox: addr.mailbox,
                sender: addr.sender,
                release_at: now.saturating_add(interval),
                payload: alert_payload(&key, AlertReason::Canary, now, rng)?,
            });
        }
        Ok(out)
    }

    /// Queues a compromise alert to `alias` (or to every contact); returns
    /// how many were queued.
    pub fn alert(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        alias: Option<&str>,
        reason: AlertReason,
    ) -> Result<usize, CoreError> {
        if let Some(a) = alias
            && !self.state.contacts.iter().any(|c| c.alias == a)
        {
            return Err(CoreError::UnknownContact);
        }
        let mut actions = Vec::new();
        for c in &self.state.contacts {
            if alias.is_some_and(|a| a != c.alias) {
                continue;
            }
            let Some((out, Some(key))) = c.established().map(|e| (&e.outbound, &e.alert_key))
            else {
                continue;
            };
            actions.push(Action::Send {
                relay: out.relay.clone(),
                mailbox: out.mailbox,
                sender: out.sender.clone(),
                payload: alert_payload(key, reason, now, rng)?,
            });
        }
        let n = actions.len();
        self.state.outbox.extend(actions);
        Ok(n)
    }

    pub(crate) fn on_alert(
        &mut self,
        now: u64,
        idx: usize,
        body: &[u8],
    ) -> Result<Event, CoreError> {
        let c = self.state.contacts.get_mut(idx);
        let alias = c.alias.clone();
        let Some(key) = c.established().and_then(|e| e.alert_key.as_ref()) else {
            return Ok(Event::Rejected {
                alias,
                reason: RejectReason::AlertWithoutKey,
            });
        };
        let Some(plain) = open(key, LABEL, body) else {
            return Ok(Event::Rejected {
                alias,
                reason: RejectReason::ForgedAlert,
            });
        };
        let Ok(a) = serde_json::from_slice::<AlertBody>(&plain) else {
            return Ok(Event::Rejected {
                alias,
                reason: RejectReason::MalformedAlert,
            });
        };
        if c.compromised.is_none() {
            c.compromised = Some(Compromise {
                reason: a.reason,
                at: now,
            });
        }
        Ok(Event::Compromised {
            alias,
            reason: a.reason,
        })
    }
}
