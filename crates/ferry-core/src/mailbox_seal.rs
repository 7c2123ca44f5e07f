//! What a relay stores and serves: one AEAD ciphertext per payload, under a
//! key only the two ends of the mailbox hold.
//!
//! ```text
//! payload   = nonce (24) || XChaCha20-Poly1305(key, nonce, aad, plaintext)
//! aad       = "ferry mailbox v1" || mailbox id (16)
//! plaintext = version (1) || kind (1) || length (4, BE) || body || zeros
//! ```
//!
//! The payload is exactly one padding bucket long, so the relay sees a
//! bucket size and uniformly random bytes: no length, no kind, no MLS group
//! id or epoch, no visible padding. The version sits inside the ciphertext:
//! a payload from a newer Ferry opens and is refused as such, never
//! mistaken for a forgery.
//!
//! Keys: the invite mailbox and the invitee's reply mailbox take keys from
//! the invite secret (distinct HKDF labels); once the conversation is set
//! up, each mailbox takes the MLS exporter secret labelled
//! `ferry mailbox seal v1` with the mailbox id as context, so the two
//! directions of a pair use unrelated keys.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ferry_proto::MailboxId;
use ferry_proto::padding::BUCKETS;
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::secret::KeyBytes;

/// The framing version this release writes and reads.
pub(crate) const VERSION: u8 = 1;

const NONCE: usize = 24;
const TAG: usize = 16;
const HEADER: usize = 1 + 1 + 4;
const AAD_LABEL: &[u8] = b"ferry mailbox v1";

/// Bytes a sealed payload adds around its body.
pub const OVERHEAD: usize = NONCE + TAG + HEADER;

/// Largest body a sealed payload holds.
pub const MAX_BODY: usize = BUCKETS[BUCKETS.len() - 1] - OVERHEAD;

/// A payload that opened under one of the mailbox's keys.
pub(crate) struct Opened {
    pub(crate) version: u8,
    pub(crate) kind: u8,
    /// The body; empty when the version is not this release's.
    pub(crate) body: Zeroizing<Vec<u8>>,
}

fn aad(mailbox: &MailboxId) -> Vec<u8> {
    let mut a = AAD_LABEL.to_vec();
    a.extend_from_slice(mailbox.as_bytes());
    a
}

/// Seals `body` of `kind` for `mailbox`; `None` if it exceeds [`MAX_BODY`].
pub(crate) fn seal(
    key: &KeyBytes,
    mailbox: &MailboxId,
    kind: u8,
    body: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Option<Vec<u8>> {
    let needed = body.len().checked_add(OVERHEAD)?;
    let size = BUCKETS.iter().copied().find(|&b| b >= needed)?;
    let len = u32::try_from(body.len()).ok()?;
    let mut plain = Zeroizing::new(Vec::with_capacity(size - NONCE - TAG));
    plain.push(VERSION);
    plain.push(kind);
    plain.extend_from_slice(&len.to_be_bytes());
    plain.extend_from_slice(body);
    plain.resize(size - NONCE - TAG, 0);
    let mut nonce = [0u8; NONCE];
    rng.fill_bytes(&mut nonce);
    let cipher = XChaCha20Poly1305::new(key.expose().into());
    let ct = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &plain,
                aad: &aad(mailbox),
            },
        )
        .ok()?;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Some(out)
}

/// The seal key of `mailbox` in a conversation, from its MLS group at the
/// current epoch.
pub(crate) fn export_key(
    group: &openmls::prelude::MlsGroup,
    provider: &crate::mls_store::Provider,
    mailbox: &MailboxId,
) -> Result<KeyBytes, crate::CoreError> {
    use openmls::prelude::OpenMlsProvider as _;
    let v = Zeroizing::new(
        group
            .export_secret(
                provider.crypto(),
                "ferry mailbox seal v1",
                mailbox.as_bytes(),
                32,
            )
            .map_err(crate::engine::mls)?,
    );
    let b: [u8; 32] = v
        .as_slice()
        .try_into()
        .map_err(|_| crate::CoreError::Mls("exporter length".into()))?;
    Ok(KeyBytes(b))
}

/// Why a payload could not be opened.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// Not a bucket size, or no key opens it.
    NotForThisMailbox,
    /// It opened, but its framing is broken (a bug or a hostile key holder).
    Malformed,
}

/// Opens a payload fetched from `mailbox` with the first of `keys` that
/// authenticates it.
pub(crate) fn open(
    keys: &[KeyBytes],
    mailbox: &MailboxId,
    payload: &[u8],
) -> Result<Opened, OpenError> {
    if !ferry_proto::padding::is_bucket_size(payload.len()) {
        return Err(OpenError::NotForThisMailbox);
    }
    let (nonce, ct) = payload.split_at(NONCE);
    let aad = aad(mailbox);
    let plain = keys
        .iter()
        .find_map(|k| {
            XChaCha20Poly1305::new(k.expose().into())
                .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
                .ok()
        })
        .map(Zeroizing::new)
        .ok_or(OpenError::NotForThisMailbox)?;
    let (&version, rest) = plain.split_first().ok_or(OpenError::Malformed)?;
    if version != VERSION {
        // Another release's framing: nothing else in it is read.
        return Ok(Opened {
            version,
            kind: 0,
            body: Zeroizing::new(Vec::new()),
        });
    }
    let (&kind, rest) = rest.split_first().ok_or(OpenError::Malformed)?;
    if rest.len() < 4 {
        return Err(OpenError::Malformed);
    }
    let (len, rest) = rest.split_at(4);
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    if len > rest.len() {
        return Err(OpenError::Malformed);
    }
    let (body, filler) = rest.split_at(len);
    if filler.iter().any(|&b| b != 0) {
        return Err(OpenError::Malformed);
    }
    Ok(Opened {
        version,
        kind,
        body: Zeroizing::new(body.to_vec()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_core::OsRng;

    fn id() -> MailboxId {
        MailboxId::random(&mut OsRng)
    }

    #[test]
    fn round_trip_fills_exactly_one_bucket() {
        let k = KeyBytes::random(&mut OsRng);
        let m = id();
        let p = seal(&k, &m, 3, b"hi", &mut OsRng).unwrap();
        assert_eq!(p.len(), 256);
        let o = open(&[KeyBytes::random(&mut OsRng), k.clone()], &m, &p).unwrap();
        assert_eq!((o.version, o.kind, &o.body[..]), (VERSION, 3, &b"hi"[..]));
        let p = seal(&k, &m, 3, &[7; 256 - OVERHEAD], &mut OsRng).unwrap();
        assert_eq!(p.len(), 256);
        let p = seal(&k, &m, 3, &[7; 257 - OVERHEAD], &mut OsRng).unwrap();
        assert_eq!(p.len(), 1024);
        assert!(seal(&k, &m, 3, &[0; MAX_BODY], &mut OsRng).is_some());
        assert!(seal(&k, &m, 3, &[0; MAX_BODY + 1], &mut OsRng).is_none());
    }

    #[test]
    fn wrong_key_mailbox_or_bytes_do_not_open() {
        let k = KeyBytes::random(&mut OsRng);
        let m = id();
        let p = seal(&k, &m, 3, b"hi", &mut OsRng).unwrap();
        let other = KeyBytes::random(&mut OsRng);
        assert_eq!(
            open(&[other], &m, &p).err(),
            Some(OpenError::NotForThisMailbox)
        );
        // Moved to another mailbox by the relay: refused.
        assert_eq!(
            open(std::slice::from_ref(&k), &id(), &p).err(),
            Some(OpenError::NotForThisMailbox)
        );
        let mut flipped = p.clone();
        flipped[100] ^= 1;
        assert!(open(std::slice::from_ref(&k), &m, &flipped).is_err());
        assert!(open(&[k], &m, &p[..255]).is_err());
    }

    /// A later release's framing opens (the key is right) but is reported
    /// as another version, not as a forgery.
    #[test]
    fn another_version_is_recognized() {
        let k = KeyBytes::random(&mut OsRng);
        let m = id();
        let mut plain = vec![VERSION + 1, 9];
        plain.resize(256 - NONCE - TAG, 0);
        let nonce = [1u8; NONCE];
        let ct = XChaCha20Poly1305::new(k.expose().into())
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: &aad(&m),
                },
            )
            .unwrap();
        let mut p = nonce.to_vec();
        p.extend_from_slice(&ct);
        let o = open(&[k], &m, &p).unwrap();
        assert_eq!(o.version, VERSION + 1);
    }

    proptest! {
        #[test]
        fn open_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let k = KeyBytes::random(&mut OsRng);
            let _ = open(&[k], &MailboxId::from_bytes([0; 16]), &data);
        }
    }
}
