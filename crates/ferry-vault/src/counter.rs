//! The wrong-passphrase counter for the optional wipe-after-N setting.
//!
//! It must be readable and writable without the passphrase, so it cannot be
//! secret: the 64-byte file `c` holds `limit` and `failures` sealed with
//! XChaCha20-Poly1305 under a fixed key derived (HKDF-SHA256) from a public
//! label, plus random padding. That keeps the file indistinguishable from
//! random bytes to anyone who does not know Ferry's layout; it does not stop
//! someone who copies the directory first and retries on the copy, which no
//! on-device counter can.

use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand_core::CryptoRngCore;
use sha2::Sha256;

use crate::VaultError;

const FILE: &str = "c";
const SIZE: usize = 64;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counter {
    pub(crate) limit: u32,
    pub(crate) failures: u32,
}

fn cipher() -> XChaCha20Poly1305 {
    let mut key = [0u8; 32];
    let _ = Hkdf::<Sha256>::new(None, b"ferry wipe-after counter v1").expand(b"key", &mut key);
    XChaCha20Poly1305::new(&key.into())
}

/// Reads the counter; a missing or damaged file reads as "off".
pub(crate) fn read(dir: &Path) -> Counter {
    let Ok(bytes) = std::fs::read(dir.join(FILE)) else {
        return Counter::default();
    };
    if bytes.len() < 24 + 8 + 16 {
        return Counter::default();
    }
    let (nonce, rest) = bytes.split_at(24);
    match cipher().decrypt(XNonce::from_slice(nonce), &rest[..8 + 16]) {
        Ok(p) if p.len() == 8 => Counter {
            limit: u32::from_be_bytes([p[0], p[1], p[2], p[3]]),
            failures: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        },
        _ => Counter::default(),
    }
}

/// Writes the counter (whole file, synced).
pub(crate) fn write(
    dir: &Path,
    c: Counter,
    rng: &mut impl CryptoRngCore,
) -> Result<(), VaultError> {
    let mut plain = c.limit.to_be_bytes().to_vec();
    plain.extend_from_slice(&c.failures.to_be_bytes());
    let mut out = [0u8; SIZE];
    rng.fill_bytes(&mut out);
    let ct = cipher()
        .encrypt(XNonce::from_slice(&out[..24]), plain.as_slice())
        .map_err(|_| VaultError::Db("counter".into()))?;
    out[24..24 + ct.len()].copy_from_slice(&ct);
    let tmp = dir.join(FILE);
    std::fs::write(&tmp, out)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    Ok(())
}
