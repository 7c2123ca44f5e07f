//! Mailbox keys: Ed25519 (from `ed25519-dalek`) signing keys held by clients
//! and the public halves a relay stores.

use std::fmt;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::ZeroizeOnDrop;

use crate::b64;

/// Length of an Ed25519 signature in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// Error for a key or signature that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The bytes are not a valid Ed25519 public key.
    #[error("not a valid Ed25519 public key")]
    InvalidPublicKey,
    /// The signature does not verify under the key.
    #[error("signature does not verify")]
    BadSignature,
}

/// A mailbox's public key (recipient or sender), as the relay stores it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parses 32 bytes, rejecting points that are not valid keys.
    pub fn from_bytes(b: &[u8; 32]) -> Result<Self, KeyError> {
        let vk = VerifyingKey::from_bytes(b).map_err(|_| KeyError::InvalidPublicKey)?;
        if vk.is_weak() {
            return Err(KeyError::InvalidPublicKey);
        }
        Ok(Self(vk))
    }

    /// The 32 key bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Verifies `sig` over `msg` (strict verification: no malleable forms).
    pub fn verify(&self, msg: &[u8], sig: &[u8; SIGNATURE_LEN]) -> Result<(), KeyError> {
        let sig = Signature::from_bytes(sig);
        self.0
            .verify_strict(msg, &sig)
            .map_err(|_| KeyError::BadSignature)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Public, but still an identifier of a mailbox: keep it out of logs.
        f.write_str("PublicKey(..)")
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&b64::encode(&self.to_bytes()))
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let b = b64::decode_array::<32>(&s).map_err(serde::de::Error::custom)?;
        Self::from_bytes(&b).map_err(serde::de::Error::custom)
    }
}

/// A mailbox signing key held by a client. Zeroized on drop; `Debug` prints
/// nothing of it; it cannot be cloned or serialized by accident.
#[derive(ZeroizeOnDrop)]
pub struct MailboxKey(SigningKey);

impl MailboxKey {
    /// Generates a fresh key.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self(SigningKey::generate(rng))
    }

    /// Restores a key from its 32 secret bytes (e.g. read from the vault).
    pub fn from_secret_bytes(b: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(b))
    }

    /// The secret bytes, for storing in the encrypted vault only.
    pub fn secret_bytes(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.0.to_bytes())
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.0.sign(msg).to_bytes()
    }
}

impl fmt::Debug for MailboxKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MailboxKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn debug_never_shows_key_material() {
        let k = MailboxKey::generate(&mut OsRng);
        insta::assert_snapshot!(format!("{k:?} {:?}", k.public()), @"MailboxKey(..) PublicKey(..)");
    }

    #[test]
    fn sign_verify_and_reject_other_key() {
        let k = MailboxKey::generate(&mut OsRng);
        let other = MailboxKey::generate(&mut OsRng);
        let sig = k.sign(b"hello");
        assert!(k.public().verify(b"hello", &sig).is_ok());
        assert_eq!(
            k.public().verify(b"hellO", &sig),
            Err(KeyError::BadSignature)
        );
        assert_eq!(
            other.public().verify(b"hello", &sig),
            Err(KeyError::BadSignature)
        );
    }

    #[test]
    fn weak_public_keys_are_refused() {
        // The identity point is a small-order ("weak") key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            PublicKey::from_bytes(&identity),
            Err(KeyError::InvalidPublicKey)
        );
    }
}
