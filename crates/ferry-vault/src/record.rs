//! Message records sealed under their own slab keys.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{OsRng, RngCore as _};
use zeroize::Zeroizing;

use crate::VaultError;

pub(crate) fn aad(contact: u64, msg_id: &[u8]) -> Vec<u8> {
    let mut a = contact.to_be_bytes().to_vec();
    a.extend_from_slice(msg_id);
    a
}

pub(crate) fn seal_record(
    key: &[u8; 32],
    contact: u64,
    msg_id: &[u8],
    plain: &[u8],
) -> Result<Vec<u8>, VaultError> {
    let mut nonce = [0u8; 24];
    OsRng.fill_bytes(&mut nonce);
    let ct = XChaCha20Poly1305::new(key.into())
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: &aad(contact, msg_id),
            },
        )
        .map_err(|_| VaultError::Db("record encryption failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

pub(crate) fn open_record(
    key: &[u8; 32],
    contact: u64,
    msg_id: &[u8],
    sealed: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < 24 {
        return None;
    }
    let (nonce, ct) = sealed.split_at(24);
    XChaCha20Poly1305::new(key.into())
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ct,
                aad: &aad(contact, msg_id),
            },
        )
        .ok()
        .map(Zeroizing::new)
}
