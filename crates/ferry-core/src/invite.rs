//! One-time invites: the link a person shows in person (or as a QR code).
//!
//! A link carries the inviter's relay, a one-time mailbox on it, a 32-byte
//! secret and an expiry. From the secret (HKDF-SHA256, distinct labels) come
//! the Ed25519 key allowed to send to the invite mailbox and the
//! XChaCha20-Poly1305 key that seals both handshake messages, so the relay
//! learns nothing from them. A 4-byte SHA-256 checksum catches truncated or
//! mistyped links.
//!
//! Text form: `ferry://invite/v1/<base64url(payload)>` with payload
//! `expires_at (u64 BE) || mailbox (16) || secret (32) || relay URL || checksum (4)`.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ferry_proto::{MailboxId, MailboxKey, b64};
use hkdf::Hkdf;
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::secret::KeyBytes;

const PREFIX: &str = "ferry://invite/v1/";
const CHECKSUM_LEN: usize = 4;
const FIXED_LEN: usize = 8 + 16 + 32;
const MAX_LINK: usize = 2048;

/// Why an invite link cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum InviteError {
    /// Not a Ferry invite at all.
    #[error("this is not a Ferry invite link")]
    NotAnInvite,
    /// Truncated, mistyped or altered.
    #[error("the invite link is damaged (truncated or altered); ask for a new one")]
    Damaged,
    /// Past its expiry.
    #[error("the invite has expired; ask for a new one")]
    Expired,
}

/// A decoded invite.
#[derive(Clone)]
pub struct InviteLink {
    /// The inviter's relay base URL.
    pub relay: String,
    /// The one-time invite mailbox.
    pub mailbox: MailboxId,
    /// The one-time secret.
    pub secret: KeyBytes,
    /// Unix seconds after which the invite is refused.
    pub expires_at: u64,
}

impl std::fmt::Debug for InviteLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InviteLink(..)")
    }
}

impl InviteLink {
    /// Encodes the link text.
    pub fn to_link(&self) -> Zeroizing<String> {
        let mut p = Zeroizing::new(Vec::with_capacity(
            FIXED_LEN + self.relay.len() + CHECKSUM_LEN,
        ));
        p.extend_from_slice(&self.expires_at.to_be_bytes());
        p.extend_from_slice(self.mailbox.as_bytes());
        p.extend_from_slice(self.secret.expose());
        p.extend_from_slice(self.relay.as_bytes());
        let sum = Sha256::digest(&p[..]);
        p.extend_from_slice(&sum[..CHECKSUM_LEN]);
        Zeroizing::new(format!("{PREFIX}{}", b64::encode(&p)))
    }

    /// Parses and checks a link (not its expiry: see [`InviteLink::check_fresh`]).
    pub fn parse(text: &str) -> Result<Self, InviteError> {
        let text = text.trim();
        if text.len() > MAX_LINK {
            return Err(InviteError::Damaged);
        }
        let body = text.strip_prefix(PREFIX).ok_or(InviteError::NotAnInvite)?;
        let p = Zeroizing::new(b64::decode(body).map_err(|_| InviteError::Damaged)?);
        if p.len() < FIXED_LEN + CHECKSUM_LEN + "http://x".len() {
            return Err(InviteError::Damaged);
        }
        let (data, sum) = p.split_at(p.len() - CHECKSUM_LEN);
        if Sha256::digest(data)[..CHECKSUM_LEN] != *sum {
            return Err(InviteError::Damaged);
        }
        let (exp, rest) = data.split_at(8);
        let (mb, rest) = rest.split_at(16);
        let (secret, relay) = rest.split_at(32);
        let mut e = [0u8; 8];
        e.copy_from_slice(exp);
        let mut m = [0u8; 16];
        m.copy_from_slice(mb);
        let mut s = KeyBytes([0u8; 32]);
        s.0.copy_from_slice(secret);
        let relay = std::str::from_utf8(relay).map_err(|_| InviteError::Damaged)?;
        if !(relay.starts_with("http://") || relay.starts_with("https://")) {
            return Err(InviteError::Damaged);
        }
        Ok(Self {
            relay: relay.to_owned(),
            mailbox: MailboxId::from_bytes(m),
            secret: s,
            expires_at: u64::from_be_bytes(e),
        })
    }

    /// Refuses an expired invite.
    pub fn check_fresh(&self, now: u64) -> Result<(), InviteError> {
        if now > self.expires_at {
            return Err(InviteError::Expired);
        }
        Ok(())
    }
}

fn expand(secret: &KeyBytes, label: &[u8]) -> KeyBytes {
    let hk = Hkdf::<Sha256>::new(Some(b"ferry-invite-v1"), secret.expose());
    let mut out = KeyBytes([0u8; 32]);
    // 32 bytes is always a valid HKDF-SHA256 output length.
    let _ = hk.expand(label, &mut out.0);
    out
}

/// The key allowed to send to the invite mailbox.
pub(crate) fn sender_key(secret: &KeyBytes) -> MailboxKey {
    expand(secret, b"mailbox sender key").mailbox_key()
}

/// The key sealing the handshake messages.
pub(crate) fn seal_key(secret: &KeyBytes) -> KeyBytes {
    expand(secret, b"handshake seal key")
}

/// The key sealing what is stored in the invite mailbox.
pub(crate) fn invite_box_key(secret: &KeyBytes) -> KeyBytes {
    expand(secret, b"invite mailbox seal key")
}

/// The key sealing what is stored in the invitee's mailbox until the
/// conversation is set up (the welcome).
pub(crate) fn reply_box_key(secret: &KeyBytes) -> KeyBytes {
    expand(secret, b"reply mailbox seal key")
}

/// Seals `plain` (XChaCha20-Poly1305, random 24-byte nonce, `label` as
/// associated data): `nonce || ciphertext`.
pub(crate) fn seal(
    key: &KeyBytes,
    label: &[u8],
    plain: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.expose().into());
    let mut nonce = [0u8; 24];
    rng.fill_bytes(&mut nonce);
    let mut out = nonce.to_vec();
    // Encryption with a valid key cannot fail for in-memory sizes.
    if let Ok(ct) = cipher.encrypt(
        XNonce::from_slice(&nonce),
        Payload {
            msg: plain,
            aad: label,
        },
    ) {
        out.extend_from_slice(&ct);
    }
    out
}

/// Opens what [`seal`] made; `None` if it was not sealed with this key and label.
pub(crate) fn open(key: &KeyBytes, label: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < 24 + 16 {
        return None;
    }
    let (nonce, ct) = sealed.split_at(24);
    let cipher = XChaCha20Poly1305::new(key.expose().into());
    cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ct,
                aad: label,
            },
        )
        .ok()
        .map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    fn link() -> InviteLink {
        InviteLink {
            relay: "http://127.0.0.1:7070".into(),
            mailbox: MailboxId::random(&mut OsRng),
            secret: KeyBytes::random(&mut OsRng),
            expires_at: 1000,
        }
    }

    #[test]
    fn round_trip() {
        let l = link();
        let p = InviteLink::parse(&l.to_link()).unwrap();
        assert_eq!(p.relay, l.relay);
        assert_eq!(p.mailbox, l.mailbox);
        assert_eq!(p.secret, l.secret);
        assert_eq!(p.expires_at, 1000);
        assert_eq!(p.check_fresh(1000), Ok(()));
        assert_eq!(p.check_fresh(1001), Err(InviteError::Expired));
    }

    #[test]
    fn truncated_or_altered_links_are_damaged() {
        let text = link().to_link();
        assert_eq!(
            InviteLink::parse(&text[..text.len() - 3]).err(),
            Some(InviteError::Damaged)
        );
        let mut chars: Vec<char> = text.chars().collect();
        let i = PREFIX.len() + 20;
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        let altered: String = chars.into_iter().collect();
        assert_eq!(
            InviteLink::parse(&altered).err(),
            Some(InviteError::Damaged)
        );
        assert_eq!(
            InviteLink::parse("https://example.com").err(),
            Some(InviteError::NotAnInvite)
        );
        assert_eq!(InviteLink::parse(PREFIX).err(), Some(InviteError::Damaged));
    }

    #[test]
    fn seal_open() {
        let k = KeyBytes::random(&mut OsRng);
        let s = seal(&k, b"a", b"hello", &mut OsRng);
        assert_eq!(open(&k, b"a", &s).unwrap().as_slice(), b"hello");
        assert!(open(&k, b"b", &s).is_none());
        assert!(open(&KeyBytes::random(&mut OsRng), b"a", &s).is_none());
        assert!(open(&k, b"a", &s[..10]).is_none());
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,300}") {
            let _ = InviteLink::parse(&s);
            let _ = InviteLink::parse(&format!("{PREFIX}{s}"));
        }
    }
}
