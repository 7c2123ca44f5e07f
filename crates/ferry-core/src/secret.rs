//! Secret key bytes kept in engine state: zeroized on drop, never printed.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// 32 secret bytes (a mailbox signing key seed or a symmetric key).
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct KeyBytes(pub(crate) [u8; 32]);

impl KeyBytes {
    /// Fresh random bytes.
    pub fn random(rng: &mut impl rand_core::CryptoRngCore) -> Self {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        Self(b)
    }

    /// Wraps bytes (which the caller must not keep elsewhere).
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(b)
    }

    /// The bytes.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// As a mailbox signing key.
    pub fn mailbox_key(&self) -> ferry_proto::MailboxKey {
        ferry_proto::MailboxKey::from_secret_bytes(&self.0)
    }
}

impl std::fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyBytes(..)")
    }
}

impl Serialize for KeyBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&ferry_proto::b64::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for KeyBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = zeroize::Zeroizing::new(String::deserialize(d)?);
        ferry_proto::b64::decode_array::<32>(&s)
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}
