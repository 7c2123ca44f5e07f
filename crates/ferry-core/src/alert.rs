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
use crate::invite::{open, seal as seal_with};
use crate::secret::KeyBytes;
use ferry_proto::MailboxId;

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
    /// Random, so a replayed alert is recognised (absent in alerts of
    /// releases before it).
    #[serde(default)]
    id: Option<String>,
}

/// Alert ids remembered per contact.
const ALERTS_REMEMBERED: usize = 64;

/// What the duress capsule keeps per contact: only what can fire that
/// contact's canary. The relay stored the public half of the fire key at
/// deposit; the key can neither renew nor delete the canary, nor send, nor
/// reveal the contact's mailbox, keys or anything else of the profile.
#[derive(Clone, Serialize, Deserialize)]
pub struct CapsuleEntry {
    /// The relay holding the canary.
    pub relay: String,
    /// The canary's id.
    pub canary: MailboxId,
    /// The fire-only key.
    pub fire: KeyBytes,
}

/// A canary deposited at a contact's relay: its id, owner key (renews,
/// deletes) and fire-only key (releases it at once, as a duress unlock
/// does).
#[derive(Clone, Serialize, Deserialize)]
pub struct CanaryRef {
    /// Canary id.
    pub id: MailboxId,
    /// Owner key (authorizes deposit, renew and delete).
    pub owner: KeyBytes,
    /// Fire-only key; `None` for canaries deposited before it existed (a
    /// key is assigned at the next deposit).
    #[serde(default)]
    pub fire: Option<KeyBytes>,
    /// Its alerts were sealed with keys of an earlier epoch: deposit again.
    #[serde(default)]
    pub stale: bool,
    /// The relay holds the fire key (a deposit with it succeeded).
    #[serde(default)]
    pub fire_held: bool,
    /// When it is next renewed (Unix seconds; 0: now). Drawn at random in
    /// the second quarter of the interval after each renewal, per canary,
    /// so renewals neither come in bursts that link a user's contacts at a
    /// relay nor follow the user's unlocks.
    #[serde(default)]
    pub renew_at: u64,
}

/// Which canaries to place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CanaryScope {
    /// Every one (the interval changed).
    All,
    /// Those due for renewal, and new ones.
    Due,
    /// Only those the relay does not hold yet.
    Fresh,
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
    /// The sealed alert released when the canary is not renewed.
    pub payload: Vec<u8>,
    /// The sealed alert released when the fire key fires it (a duress
    /// unlock).
    pub fire_payload: Vec<u8>,
    /// The relay does not hold it as it is (new, or a new fire key): it
    /// must be deposited, not just renewed.
    pub fresh: bool,
}

/// With the dead-man switch off, a canary is released only after this long
/// without an unlock (the longest a relay accepts is 366 days).
pub const RELEASE_WHEN_OFF: u64 = 365 * 24 * 3600;

impl std::fmt::Debug for CapsuleEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CapsuleEntry(..)")
    }
}

/// An alert payload for the contact's `mailbox`, sealed for it with `seal`
/// like any message.
pub(crate) fn alert_payload(
    alert_key: &KeyBytes,
    seal: &KeyBytes,
    mailbox: &MailboxId,
    reason: AlertReason,
    now: u64,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, CoreError> {
    let id = ferry_proto::b64::encode(&crate::engine::random_id(rng));
    let body = serde_json::to_vec(&AlertBody {
        reason,
        at: now,
        id: Some(id),
    })
    .map_err(|e| CoreError::State(e.to_string()))?;
    let sealed = seal_with(alert_key, LABEL, &body, rng);
    crate::mailbox_seal::seal(seal, mailbox, envelope::ALERT, &sealed, rng)
        .ok_or(CoreError::TooLong)
}

/// An alert in the framing of releases before sealing, for a capsule they
/// wrote: its contact's conversation predates sealing too, so it takes it.
pub fn legacy_alert_payload(
    alert_key: &KeyBytes,
    reason: AlertReason,
    now: u64,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, CoreError> {
    let body = serde_json::to_vec(&AlertBody {
        reason,
        at: now,
        id: None,
    })
    .map_err(|e| CoreError::State(e.to_string()))?;
    let sealed = seal_with(alert_key, LABEL, &body, rng);
    ferry_proto::padding::pad(&envelope::wrap(envelope::ALERT, &sealed))
        .map_err(|_| CoreError::TooLong)
}

impl Engine {
    /// The duress capsule: the fire-only key of every deposited canary.
    pub fn capsule(&self) -> Vec<CapsuleEntry> {
        self.state
            .contacts
            .iter()
            .filter_map(|c| {
                let e = c.established()?;
                let canary = c.canary.as_ref().filter(|k| k.fire_held)?;
                Some(CapsuleEntry {
                    relay: e.outbound.relay.clone(),
                    canary: canary.id,
                    fire: canary.fire.clone()?,
                })
            })
            .collect()
    }

    /// The dead-man switch interval (`None`: off).
    pub fn canary_interval(&self) -> Option<u64> {
        self.state.settings().canary_interval
    }

    /// Sets the dead-man switch interval (`None`: off). The canaries stay
    /// either way: a duress unlock fires them. With the switch off they are
    /// released only after [`RELEASE_WHEN_OFF`] without an unlock.
    pub fn set_canary_interval(&mut self, secs: Option<u64>) {
        self.state.settings_mut().canary_interval = secs;
    }

    /// Whether a set-up contact has no canary yet (or one without a fire
    /// key): [`Engine::canary_deposits`] with `only_fresh` places them.
    pub fn canary_missing(&self) -> bool {
        self.state.contacts.iter().any(|c| {
            c.established().is_some_and(|e| e.alert_key.is_some())
                && c.canary
                    .as_ref()
                    .is_none_or(|k| k.fire.is_none() || k.stale || !k.fire_held)
        })
    }

    /// Canaries to renew or deposit (only those the relay does not hold
    /// yet with `only_fresh`), released after the switch's interval unless
    /// renewed (ids and keys are created the first time).
    pub fn canary_deposits(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        scope: CanaryScope,
    ) -> Result<Vec<CanaryDeposit>, CoreError> {
        let interval = self
            .state
            .settings()
            .canary_interval
            .unwrap_or(RELEASE_WHEN_OFF);
        let mut out = Vec::new();
        for idx in 0..self.state.contacts.len() {
            let c = &self.state.contacts[idx];
            let Some(key) = c.established().and_then(|e| e.alert_key.clone()) else {
                continue;
            };
            let id = c.id;
            // Only a contact given its first canary (or its first fire key)
            // changes, and is written.
            let fresh = c
                .canary
                .as_ref()
                .is_none_or(|k| k.fire.is_none() || k.stale || !k.fire_held);
            let due = c.canary.as_ref().is_none_or(|k| k.renew_at <= now);
            let wanted = match scope {
                CanaryScope::All => true,
                CanaryScope::Due => fresh || due,
                CanaryScope::Fresh => fresh,
            };
            if !wanted {
                continue;
            }
            if fresh {
                let canary = self
                    .state
                    .contacts
                    .get_mut(idx)
                    .canary
                    .get_or_insert_with(|| CanaryRef {
                        id: MailboxId::random(rng),
                        owner: KeyBytes::random(rng),
                        fire: None,
                        stale: false,
                        fire_held: false,
                        renew_at: 0,
                    });
                if canary.fire.is_none() {
                    // Deposited (not just renewed) until the relay has it.
                    canary.fire = Some(KeyBytes::random(rng));
                    canary.fire_held = false;
                }
            }
            // One contact's broken state does not hold back the others.
            let Ok((addr, seal)) = self.outbound_seal(id) else {
                continue;
            };
            let Some(canary) = self.state.contacts[idx].canary.clone() else {
                continue;
            };
            out.push(CanaryDeposit {
                relay: addr.relay,
                canary,
                mailbox: addr.mailbox,
                sender: addr.sender,
                release_at: now.saturating_add(interval),
                payload: alert_payload(&key, &seal, &addr.mailbox, AlertReason::Canary, now, rng)?,
                fire_payload: alert_payload(
                    &key,
                    &seal,
                    &addr.mailbox,
                    AlertReason::Duress,
                    now,
                    rng,
                )?,
                fresh,
            });
        }
        Ok(out)
    }

    /// The relay took canary `id` (deposited or renewed): it is current, and
    /// its next renewal is drawn at random in the second quarter of the
    /// interval from now.
    pub fn canary_placed(&mut self, id: MailboxId, now: u64, rng: &mut impl CryptoRngCore) {
        let interval = self
            .state
            .settings()
            .canary_interval
            .unwrap_or(RELEASE_WHEN_OFF);
        let quarter = (interval / 4).max(1);
        let jitter = rng.next_u64() % quarter;
        if let Some(idx) = self
            .state
            .contacts
            .position(|c| c.canary.as_ref().is_some_and(|k| k.id == id))
            && let Some(k) = &mut self.state.contacts.get_mut(idx).canary
        {
            // Stale or new ones were deposited whole, fire key included.
            // Such a canary was deposited whole (those states force it).
            if k.stale || !k.fire_held {
                k.fire_held = k.fire.is_some();
            }
            k.stale = false;
            k.renew_at = now.saturating_add(quarter).saturating_add(jitter);
        }
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
        let mut targets = Vec::new();
        for c in &self.state.contacts {
            if alias.is_some_and(|a| a != c.alias) {
                continue;
            }
            if let Some(key) = c.established().and_then(|e| e.alert_key.clone()) {
                targets.push((c.id, key));
            }
        }
        for (id, key) in targets {
            let (out, seal) = self.outbound_seal(id)?;
            actions.push(Action::Send {
                relay: out.relay.clone(),
                mailbox: out.mailbox,
                sender: out.sender.clone(),
                payload: alert_payload(&key, &seal, &out.mailbox, reason, now, rng)?,
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
        let keys = self.alert_keys(idx);
        let c = self.state.contacts.get_mut(idx);
        let alias = c.alias.clone();
        if keys.is_empty() {
            return Ok(Event::Rejected {
                alias,
                reason: RejectReason::AlertWithoutKey,
            });
        }
        let Some(plain) = keys.iter().find_map(|k| open(k, LABEL, body)) else {
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
        // Direction is bound by the mailbox seal (each direction has its
        // own key); the same alert again (a relay replaying it, even after
        // the quarantine was lifted) changes nothing.
        if let Some(id) = a.id {
            if c.alerts_taken.contains(&id) {
                return Ok(Event::Ignored { alias });
            }
            c.alerts_taken.insert(0, id);
            c.alerts_taken.truncate(ALERTS_REMEMBERED);
        }
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

#[cfg(test)]
mod tests {
    use rand_core::OsRng;
    use secrecy::SecretString;

    use crate::challenge::ProofResult;
    use crate::testing::pair;
    use crate::{Action, AlertReason, Event};

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    /// A challenges B, B answers with `phrase`: what A makes of it.
    fn prove(
        a: &mut crate::Engine,
        b: &mut crate::Engine,
        relay: &mut crate::testing::LoopRelay,
        t: u64,
        phrase: &str,
    ) -> Vec<Event> {
        a.challenge(t, &mut OsRng, "b").unwrap();
        relay.deliver(a, b, t + 1);
        b.answer(t + 2, &mut OsRng, "a", &secret(phrase)).unwrap();
        relay.deliver(b, a, t + 3)
    }

    /// A canary whose deposit did not reach the relay stays out of the
    /// capsule (its fire key would be refused) and is deposited again.
    #[test]
    fn a_canary_enters_the_capsule_only_once_the_relay_holds_its_fire_key() {
        let (mut a, _b, _relay) = pair("b", "a");
        let first = a
            .canary_deposits(10, &mut OsRng, super::CanaryScope::Due)
            .unwrap();
        assert!(first[0].fresh);
        // The deposit failed: nothing placed.
        assert!(a.capsule().is_empty());
        let again = a
            .canary_deposits(20, &mut OsRng, super::CanaryScope::Due)
            .unwrap();
        assert!(again[0].fresh, "deposited again, not just renewed");
        assert_eq!(again[0].canary.fire.as_ref(), first[0].canary.fire.as_ref());
        a.canary_placed(again[0].canary.id, 20, &mut OsRng);
        assert_eq!(a.capsule().len(), 1);
        assert!(!a.canary_missing());
    }

    /// A quarantine is lifted by the real phrase only, and the user is told;
    /// a relay replaying the old alert afterwards changes nothing; the
    /// duress phrase quarantines again.
    #[test]
    fn only_the_real_phrase_lifts_a_quarantine_and_old_alerts_cannot_renew_it() {
        let (mut a, mut b, mut relay) = pair("b", "a");
        b.set_phrase(
            1,
            &mut OsRng,
            "a",
            &secret("blue river"),
            &secret("grey sky"),
            None,
        )
        .unwrap();
        relay.deliver(&mut b, &mut a, 2);
        b.alert(3, &mut OsRng, Some("a"), AlertReason::Manual)
            .unwrap();
        let (
            _,
            Action::Send {
                mailbox, payload, ..
            },
        ) = b.outbox_first().unwrap()
        else {
            panic!("not a send");
        };
        let ev = relay.deliver(&mut b, &mut a, 4);
        assert!(matches!(&ev[..], [Event::Compromised { .. }]), "{ev:?}");

        // The wrong phrase lifts nothing.
        let ev = prove(&mut a, &mut b, &mut relay, 5, "something else");
        assert!(
            matches!(
                &ev[..],
                [Event::ChallengeResult {
                    result: ProofResult::Failed,
                    lifted: false,
                    ..
                }]
            ),
            "{ev:?}"
        );
        assert!(a.contact("b").unwrap().compromised.is_some());

        // The real one does, and says so.
        let ev = prove(&mut a, &mut b, &mut relay, 9, "blue river");
        assert!(
            matches!(
                &ev[..],
                [Event::ChallengeResult {
                    result: ProofResult::Verified,
                    lifted: true,
                    ..
                }]
            ),
            "{ev:?}"
        );
        assert!(a.contact("b").unwrap().compromised.is_none());

        // The relay replays the old alert: nothing changes.
        let seq = relay.next_seq(mailbox);
        let ev = a.receive(13, &mut OsRng, mailbox, seq, &payload).unwrap();
        assert!(matches!(ev, Event::Ignored { .. }), "{ev:?}");
        assert!(a.contact("b").unwrap().compromised.is_none());

        // A canary deposited before all this still warns (it is not an
        // old alert replayed, however old its sending time).
        let deposit = b
            .canary_deposits(4, &mut OsRng, super::CanaryScope::All)
            .unwrap()
            .remove(0);
        let seq = relay.next_seq(deposit.mailbox);
        let ev = a
            .receive(13, &mut OsRng, deposit.mailbox, seq, &deposit.payload)
            .unwrap();
        assert!(matches!(ev, Event::Compromised { .. }), "{ev:?}");
        let ev = prove(&mut a, &mut b, &mut relay, 20, "blue river");
        assert!(
            matches!(&ev[..], [Event::ChallengeResult { lifted: true, .. }]),
            "{ev:?}"
        );

        // An answer with the duress phrase quarantines.
        let ev = prove(&mut a, &mut b, &mut relay, 14, "grey sky");
        assert!(
            matches!(
                &ev[..],
                [Event::ChallengeResult {
                    result: ProofResult::Coerced,
                    ..
                }]
            ),
            "{ev:?}"
        );
        assert_eq!(
            a.contact("b").unwrap().compromised.map(|c| c.reason),
            Some(AlertReason::Duress)
        );
    }
}
