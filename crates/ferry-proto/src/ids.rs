//! Identifiers: mailbox ids and per-mailbox sequence numbers.

use std::fmt;
use std::str::FromStr;

use rand_core::CryptoRngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::b64::{self, B64Error};

/// Length of a mailbox id in bytes (128 random bits).
pub const MAILBOX_ID_LEN: usize = 16;

/// A mailbox's random, unguessable identifier.
///
/// `Debug` is redacted: mailbox ids must not end up in logs. Use
/// [`MailboxId::to_b64`] where the id is really needed (URLs, JSON).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxId([u8; MAILBOX_ID_LEN]);

impl MailboxId {
    /// Draws a fresh random id.
    pub fn random(rng: &mut impl CryptoRngCore) -> Self {
        let mut b = [0u8; MAILBOX_ID_LEN];
        rng.fill_bytes(&mut b);
        Self(b)
    }

    /// Wraps raw bytes.
    pub const fn from_bytes(b: [u8; MAILBOX_ID_LEN]) -> Self {
        Self(b)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; MAILBOX_ID_LEN] {
        &self.0
    }

    /// The base64url text form used in paths and JSON.
    pub fn to_b64(&self) -> String {
        b64::encode(&self.0)
    }
}

impl fmt::Debug for MailboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MailboxId(..)")
    }
}

impl FromStr for MailboxId {
    type Err = B64Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        b64::decode_array(s).map(Self)
    }
}

impl Serialize for MailboxId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_b64())
    }
}

impl<'de> Deserialize<'de> for MailboxId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Position of a message in its mailbox: 1 for the first message, strictly
/// increasing, never reused. A cursor `after = Seq(0)` reads from the start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl<'de> Deserialize<'de> for Seq {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::json_int::deserialize(d).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let id = MailboxId::from_bytes([7; 16]);
        assert_eq!(format!("{id:?}"), "MailboxId(..)");
    }

    #[test]
    fn text_round_trip_and_rejects_wrong_length() {
        let id = MailboxId::from_bytes([0xAB; 16]);
        let parsed: MailboxId = id.to_b64().parse().unwrap();
        assert_eq!(parsed, id);
        assert!("AAAA".parse::<MailboxId>().is_err());
        assert!("not base64!".parse::<MailboxId>().is_err());
        assert!("A".repeat(10_000).parse::<MailboxId>().is_err());
    }
}
