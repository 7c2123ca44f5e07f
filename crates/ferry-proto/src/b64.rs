//! Base64url (no padding) text form used for every binary field in JSON.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Error returned when a base64url field cannot be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum B64Error {
    /// The text is not valid unpadded base64url.
    #[error("not valid base64url")]
    Invalid,
    /// The decoded value has the wrong length.
    #[error("expected {expected} bytes, got {got}")]
    Length {
        /// Required length in bytes.
        expected: usize,
        /// Length found.
        got: usize,
    },
}

/// Encodes bytes as unpadded base64url.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded base64url.
pub fn decode(text: &str) -> Result<Vec<u8>, B64Error> {
    URL_SAFE_NO_PAD.decode(text).map_err(|_| B64Error::Invalid)
}

/// Decodes unpadded base64url into exactly `N` bytes.
pub fn decode_array<const N: usize>(text: &str) -> Result<[u8; N], B64Error> {
    // Reject early on length so a huge string is not decoded at all.
    if text.len() > N.div_ceil(3) * 4 {
        return Err(B64Error::Length {
            expected: N,
            got: text.len() / 4 * 3,
        });
    }
    let v = decode(text)?;
    let got = v.len();
    v.try_into()
        .map_err(|_| B64Error::Length { expected: N, got })
}

/// `serde(with = "ferry_proto::b64::opt_bytes")` for `Option<Vec<u8>>` fields.
pub mod opt_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as base64url text or null.
    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(&super::encode(b)),
            None => s.serialize_none(),
        }
    }

    /// Deserializes from base64url text or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<std::borrow::Cow<'de, str>>::deserialize(d)?
            .map(|s| super::decode(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// `serde(with = "ferry_proto::b64::bytes")` for `Vec<u8>` fields.
pub mod bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as base64url text.
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::encode(v))
    }

    /// Deserializes from base64url text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::decode(&s).map_err(serde::de::Error::custom)
    }
}
