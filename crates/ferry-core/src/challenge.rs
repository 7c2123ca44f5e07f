//! "Prove it's you": a human challenge a contact can put to us.
//!
//! The owner remembers a phrase (and a duress phrase); the device never
//! stores them. For each contact, the phrase and a per-contact salt go
//! through Argon2id (64 MiB) to an Ed25519 seed; the contact keeps only the
//! two public *verifiers*. A challenge is 32 random bytes; the answer is the
//! signature, by the key derived from whatever phrase the person types, over
//! `ferry challenge v1 ‖ group id ‖ challenge`, so it is bound to this
//! conversation. The challenger sees `verified` (real phrase), `coerced`
//! (duress phrase) or `failed`; the answering device shows the same thing in
//! every case. A verifier is replaced only by a message signed with the
//! current real phrase's key, so whoever holds an unlocked phone cannot
//! reset it. Composition only: argon2 and ed25519 from reviewed crates.

use argon2::{Algorithm, Argon2, Params, Version};
use ferry_proto::{MailboxKey, PublicKey};
use rand_core::CryptoRngCore;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::engine::{CoreError, Engine, Event};
use crate::envelope::Body;
use crate::reject::RejectReason;

const ANSWER_LABEL: &[u8] = b"ferry challenge v1";
const VERIFIERS_LABEL: &[u8] = b"ferry verifiers v1";

/// What a challenge showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProofResult {
    /// Signed with the real phrase.
    Verified,
    /// Signed with the duress phrase: the contact is under coercion.
    Coerced,
    /// Neither: whoever answered does not know the phrase.
    Failed,
}

impl ProofResult {
    /// Text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::Coerced => "coerced",
            Self::Failed => "failed",
        }
    }
}

/// Per-conversation proof state.
#[derive(Clone, Default, Serialize, Deserialize)]
pub(crate) struct ProofState {
    /// Our salt for this contact (not secret).
    #[serde(default, with = "ferry_proto::b64::opt_bytes")]
    salt: Option<Vec<u8>>,
    /// Whether we already gave this contact verifiers.
    #[serde(default)]
    sent: bool,
    /// The contact's verifiers.
    #[serde(default, with = "ferry_proto::b64::opt_bytes")]
    their_real: Option<Vec<u8>>,
    #[serde(default, with = "ferry_proto::b64::opt_bytes")]
    their_duress: Option<Vec<u8>>,
    /// Our open challenge to them.
    #[serde(default, with = "ferry_proto::b64::opt_bytes")]
    asked: Option<Vec<u8>>,
    /// Their open challenge to us.
    #[serde(default, with = "ferry_proto::b64::opt_bytes")]
    asked_by_them: Option<Vec<u8>>,
}

/// The Ed25519 key for `phrase` in one conversation.
fn phrase_key(phrase: &SecretString, salt: &[u8]) -> Result<MailboxKey, CoreError> {
    let params =
        Params::new(64 * 1024, 3, 1, Some(32)).map_err(|e| CoreError::State(e.to_string()))?;
    let mut seed = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(phrase.expose_secret().as_bytes(), salt, seed.as_mut())
        .map_err(|e| CoreError::State(e.to_string()))?;
    Ok(MailboxKey::from_secret_bytes(&seed))
}

fn signed_input(label: &[u8], group: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut v = label.to_vec();
    v.extend_from_slice(&(group.len() as u32).to_be_bytes());
    v.extend_from_slice(group);
    for p in parts {
        v.extend_from_slice(p);
    }
    v
}

fn verify(key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let (Ok(k), Ok(s)) = (<[u8; 32]>::try_from(key), <[u8; 64]>::try_from(sig)) else {
        return false;
    };
    PublicKey::from_bytes(&k).is_ok_and(|k| k.verify(msg, &s).is_ok())
}

impl Engine {
    fn contact_index(&self, alias: &str) -> Result<usize, CoreError> {
        self.state
            .contacts
            .iter()
            .position(|c| c.alias == alias)
            .ok_or(CoreError::UnknownContact)
    }

    /// Gives the contact verifiers for `phrase` and `duress` (deriving them
    /// costs two Argon2id runs). Replacing ones already given needs the
    /// current phrase in `current`.
    pub fn set_phrase(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        alias: &str,
        phrase: &SecretString,
        duress: &SecretString,
        current: Option<&SecretString>,
    ) -> Result<(), CoreError> {
        let c = self.established(alias)?;
        let idx = self.contact_index(alias)?;
        let mut proof = c.proof.clone();
        let old_salt = proof.salt.clone();
        let prev_sig = if proof.sent {
            let (Some(cur), Some(salt)) = (current, old_salt.as_ref()) else {
                return Err(CoreError::PhraseNeeded);
            };
            Some(phrase_key(cur, salt)?)
        } else {
            None
        };
        // One salt per conversation, for good: a change that the contact
        // refuses (wrong current phrase) must leave the old phrase working.
        let salt = old_salt.clone().unwrap_or_else(|| {
            let mut s = vec![0u8; 16];
            rng.fill_bytes(&mut s);
            s
        });
        let real = phrase_key(phrase, &salt)?.public().to_bytes().to_vec();
        let dur = phrase_key(duress, &salt)?.public().to_bytes().to_vec();
        let group = c.group_id();
        let prev_sig = prev_sig.map(|k| {
            k.sign(&signed_input(VERIFIERS_LABEL, &group, &[&real, &dur]))
                .to_vec()
        });
        self.queue(
            now,
            rng,
            &c,
            Body::Verifiers {
                real,
                duress: dur,
                prev_sig,
            },
        )?;
        proof.salt = Some(salt);
        proof.sent = true;
        self.state.contacts.get_mut(idx).proof = proof;
        Ok(())
    }

    /// Whether we already gave this contact verifiers.
    pub fn phrase_given(&self, alias: &str) -> Result<bool, CoreError> {
        Ok(self.state.contacts[self.contact_index(alias)?].proof.sent)
    }

    /// Asks the contact to prove it is them.
    pub fn challenge(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        alias: &str,
    ) -> Result<(), CoreError> {
        let c = self.established(alias)?;
        if c.proof.their_real.is_none() {
            return Err(CoreError::State(
                "this contact has not set a phrase yet".into(),
            ));
        }
        let mut nonce = vec![0u8; 32];
        rng.fill_bytes(&mut nonce);
        self.queue(
            now,
            rng,
            &c,
            Body::Challenge {
                nonce: nonce.clone(),
            },
        )?;
        let idx = self.contact_index(alias)?;
        self.state.contacts.get_mut(idx).proof.asked = Some(nonce);
        Ok(())
    }

    /// Answers the contact's open challenge with whatever phrase was typed.
    /// The same happens (and is shown) whichever phrase it is.
    pub fn answer(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        alias: &str,
        phrase: &SecretString,
    ) -> Result<(), CoreError> {
        let c = self.established(alias)?;
        let nonce = c
            .proof
            .asked_by_them
            .clone()
            .ok_or(CoreError::NoChallenge)?;
        // Without a salt (no phrase ever set) a random one gives a key that
        // verifies as nothing: the answer fails, like a wrong phrase.
        let salt = c.proof.salt.clone().unwrap_or_else(|| {
            let mut s = vec![0u8; 16];
            rng.fill_bytes(&mut s);
            s
        });
        let key = phrase_key(phrase, &salt)?;
        let group = c.group_id();
        let sig = key
            .sign(&signed_input(ANSWER_LABEL, &group, &[&nonce]))
            .to_vec();
        drop(key);
        self.queue(now, rng, &c, Body::Answer { nonce, sig })?;
        let idx = self.contact_index(alias)?;
        self.state.contacts.get_mut(idx).proof.asked_by_them = None;
        Ok(())
    }

    pub(crate) fn on_verifiers(
        &mut self,
        idx: usize,
        real: &[u8],
        duress: &[u8],
        prev_sig: Option<&[u8]>,
    ) -> Event {
        let c = self.state.contacts.get_mut(idx);
        let alias = c.alias.clone();
        if real.len() != 32 || duress.len() != 32 {
            return Event::Rejected {
                alias,
                reason: RejectReason::MalformedVerifiers,
            };
        }
        let first = c.proof.their_real.is_none();
        if let Some(current) = &c.proof.their_real {
            let group = c.group_id();
            let ok = prev_sig.is_some_and(|s| {
                verify(
                    current,
                    &signed_input(VERIFIERS_LABEL, &group, &[real, duress]),
                    s,
                )
            });
            if !ok {
                return Event::Rejected {
                    alias,
                    reason: RejectReason::UnsignedVerifierChange,
                };
            }
        }
        c.proof.their_real = Some(real.to_vec());
        c.proof.their_duress = Some(duress.to_vec());
        Event::VerifiersUpdated { alias, first }
    }

    pub(crate) fn on_challenge(&mut self, idx: usize, nonce: Vec<u8>) -> Event {
        let c = self.state.contacts.get_mut(idx);
        if nonce.len() != 32 {
            return Event::Rejected {
                alias: c.alias.clone(),
                reason: RejectReason::MalformedChallenge,
            };
        }
        c.proof.asked_by_them = Some(nonce);
        Event::ChallengeReceived {
            alias: c.alias.clone(),
        }
    }

    /// An answer to our challenge. The real phrase lifts a quarantine (the
    /// only way one is lifted); the duress phrase quarantines the contact.
    pub(crate) fn on_answer(&mut self, now: u64, idx: usize, nonce: &[u8], sig: &[u8]) -> Event {
        let c = self.state.contacts.get_mut(idx);
        let alias = c.alias.clone();
        if c.proof.asked.as_deref() != Some(nonce) {
            return Event::Rejected {
                alias,
                reason: RejectReason::UnaskedAnswer,
            };
        }
        c.proof.asked = None;
        let group = c.group_id();
        let msg = signed_input(ANSWER_LABEL, &group, &[nonce]);
        let result = match (&c.proof.their_real, &c.proof.their_duress) {
            (Some(r), _) if verify(r, &msg, sig) => ProofResult::Verified,
            (_, Some(d)) if verify(d, &msg, sig) => ProofResult::Coerced,
            _ => ProofResult::Failed,
        };
        let lifted = result == ProofResult::Verified && c.compromised.take().is_some();
        if result == ProofResult::Coerced && c.compromised.is_none() {
            c.compromised = Some(crate::Compromise {
                reason: crate::AlertReason::Duress,
                at: now,
            });
        }
        Event::ChallengeResult {
            alias,
            result,
            lifted,
        }
    }
}
