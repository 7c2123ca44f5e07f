//! Signed requests.
//!
//! Every relay request carries a timestamp, a random nonce and one Ed25519
//! signature per mailbox it touches (the recipient key to read, ack or
//! delete; the sender key to send). Each signature covers the same
//! *signing input*:
//!
//! ```text
//! ferry-request-v1 \n METHOD \n PATH?QUERY \n TIMESTAMP \n NONCE \n HEX(SHA-256(BODY))
//! ```
//!
//! The relay refuses a timestamp outside its window and a nonce it has seen,
//! so a captured request cannot be replayed. WebSocket operations use the
//! method `WS` and the path `/v1/ws/<op>`.

use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};

use crate::b64;
use crate::keys::{KeyError, MailboxKey, PublicKey, SIGNATURE_LEN};

/// Header with the request's Unix time in seconds.
pub const HEADER_TIMESTAMP: &str = "ferry-timestamp";
/// Header with the request's nonce (16 random bytes, base64url).
pub const HEADER_NONCE: &str = "ferry-nonce";
/// Header with the signatures, base64url, comma-separated, in the order of
/// the mailboxes the request names.
pub const HEADER_SIGNATURE: &str = "ferry-signature";
/// Header with a blob's read token (returned at creation, needed to download).
pub const HEADER_BLOB_TOKEN: &str = "ferry-blob-token";
/// Header with the operator's access token for creating mailboxes.
pub const HEADER_ACCESS_TOKEN: &str = "ferry-access-token";
/// Creating a blob on a private relay without its access token: the mailbox
/// (on that relay) whose sender key signs the request.
pub const HEADER_MAILBOX: &str = "ferry-mailbox";
/// Creating a blob for a group: the group (on that relay) whose current
/// write key signs the request.
pub const HEADER_GROUP: &str = "ferry-group";

/// Nonce length in bytes.
pub const NONCE_LEN: usize = 16;

/// Most signatures one request may carry.
pub const MAX_SIGNATURES: usize = 1000;

const DOMAIN: &str = "ferry-request-v1";

/// Why a request's authentication was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// A header is missing or malformed.
    #[error("authentication headers missing or malformed")]
    Malformed,
    /// The number of signatures does not match the mailboxes named.
    #[error("expected {expected} signatures, got {got}")]
    SignatureCount {
        /// Mailboxes named by the request.
        expected: usize,
        /// Signatures present.
        got: usize,
    },
    /// A signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
}

impl From<KeyError> for AuthError {
    fn from(_: KeyError) -> Self {
        Self::BadSignature
    }
}

/// A request nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Nonce(pub [u8; NONCE_LEN]);

impl Nonce {
    /// Draws a fresh nonce.
    pub fn random(rng: &mut impl CryptoRngCore) -> Self {
        let mut b = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut b);
        Self(b)
    }
}

/// The bytes every signature of a request covers.
pub fn signing_input(
    method: &str,
    path: &str,
    timestamp: u64,
    nonce: &Nonce,
    body: &[u8],
) -> Vec<u8> {
    let digest = Sha256::digest(body);
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    format!(
        "{DOMAIN}\n{method}\n{path}\n{timestamp}\n{}\n{hex}",
        b64::encode(&nonce.0)
    )
    .into_bytes()
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The authentication part of a request: timestamp, nonce and signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestAuth {
    /// Unix time in seconds when the client signed.
    pub timestamp: u64,
    /// Random nonce, unique per request.
    pub nonce: Nonce,
    /// One signature per mailbox named by the request, in order.
    pub signatures: Vec<[u8; SIGNATURE_LEN]>,
}

impl RequestAuth {
    /// Signs a request with each of `keys` (one per mailbox, in order).
    pub fn sign(
        keys: &[&MailboxKey],
        method: &str,
        path: &str,
        body: &[u8],
        now: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Self {
        let nonce = Nonce::random(rng);
        let input = signing_input(method, path, now, &nonce, body);
        Self {
            timestamp: now,
            nonce,
            signatures: keys.iter().map(|k| k.sign(&input)).collect(),
        }
    }

    /// Parses the three header values.
    pub fn from_parts(timestamp: &str, nonce: &str, signatures: &str) -> Result<Self, AuthError> {
        let timestamp = timestamp.parse::<u64>().map_err(|_| AuthError::Malformed)?;
        let nonce = Nonce(b64::decode_array(nonce).map_err(|_| AuthError::Malformed)?);
        if signatures.len() > MAX_SIGNATURES * 87 {
            return Err(AuthError::Malformed);
        }
        let signatures = signatures
            .split(',')
            .map(|s| b64::decode_array::<SIGNATURE_LEN>(s.trim()).map_err(|_| AuthError::Malformed))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            timestamp,
            nonce,
            signatures,
        })
    }

    /// The timestamp header value.
    pub fn timestamp_value(&self) -> String {
        self.timestamp.to_string()
    }

    /// The nonce header value.
    pub fn nonce_value(&self) -> String {
        b64::encode(&self.nonce.0)
    }

    /// The signature header value.
    pub fn signatures_value(&self) -> String {
        let parts: Vec<String> = self.signatures.iter().map(|s| b64::encode(s)).collect();
        parts.join(",")
    }

    /// Verifies that signature `i` is by `keys[i]` for every key, over this
    /// request. The number of signatures must equal the number of keys.
    pub fn verify(
        &self,
        keys: &[PublicKey],
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<(), AuthError> {
        if keys.len() != self.signatures.len() {
            return Err(AuthError::SignatureCount {
                expected: keys.len(),
                got: self.signatures.len(),
            });
        }
        let input = signing_input(method, path, self.timestamp, &self.nonce, body);
        for (key, sig) in keys.iter().zip(&self.signatures) {
            key.verify(&input, sig)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn signing_input_is_stable() {
        let input = signing_input("POST", "/v1/sync", 1_700_000_000, &Nonce([1; 16]), b"{}");
        insta::assert_snapshot!(String::from_utf8(input).unwrap(), @r"
        ferry-request-v1
        POST
        /v1/sync
        1700000000
        AQEBAQEBAQEBAQEBAQEBAQ
        44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a
        ");
    }

    #[test]
    fn round_trip_through_headers_and_verify() {
        let a = MailboxKey::generate(&mut OsRng);
        let b = MailboxKey::generate(&mut OsRng);
        let auth = RequestAuth::sign(&[&a, &b], "POST", "/v1/sync", b"body", 42, &mut OsRng);
        let parsed = RequestAuth::from_parts(
            &auth.timestamp_value(),
            &auth.nonce_value(),
            &auth.signatures_value(),
        )
        .unwrap();
        assert_eq!(parsed, auth);
        let keys = [a.public(), b.public()];
        assert!(parsed.verify(&keys, "POST", "/v1/sync", b"body").is_ok());
        // Anything changed breaks it.
        assert_eq!(
            parsed.verify(&keys, "POST", "/v1/sync", b"bodY"),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            parsed.verify(&keys, "PUT", "/v1/sync", b"body"),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            parsed.verify(&keys, "POST", "/v1/syn", b"body"),
            Err(AuthError::BadSignature)
        );
        let swapped = [b.public(), a.public()];
        assert_eq!(
            parsed.verify(&swapped, "POST", "/v1/sync", b"body"),
            Err(AuthError::BadSignature)
        );
        assert!(matches!(
            parsed.verify(&keys[..1], "POST", "/v1/sync", b"body"),
            Err(AuthError::SignatureCount {
                expected: 1,
                got: 2
            })
        ));
    }

    #[test]
    fn malformed_headers_are_errors() {
        assert_eq!(
            RequestAuth::from_parts("x", "AA", "AA"),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            RequestAuth::from_parts("1", "AA", "AA"),
            Err(AuthError::Malformed)
        );
        let n = b64::encode(&[0; 16]);
        assert_eq!(
            RequestAuth::from_parts("1", &n, "AA,BB"),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            RequestAuth::from_parts("1", &n, ""),
            Err(AuthError::Malformed)
        );
    }
}
