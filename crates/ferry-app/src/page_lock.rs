//! The page's own lock, separate from the session's: after the page has
//! been hidden for the chosen time it locks, and the session goes on
//! receiving behind it. To show anything again the passphrase is needed:
//!
//! - the passphrase the session was unlocked with opens the page again
//!   (checked against an Argon2id hash kept in memory since the unlock);
//! - anything else locks the session and is tried as a full unlock, so the
//!   duress passphrase does exactly what it does on the unlock screen
//!   (opens the decoy, destroys the profile) and a wrong one counts
//!   towards wipe-after, with the session already locked.

use argon2::{Algorithm, Argon2, Params, Version};
use rand_core::{OsRng, RngCore as _};
use secrecy::{ExposeSecret as _, SecretString};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

/// An Argon2id hash of the passphrase that opened the session.
pub(crate) struct Verifier {
    salt: [u8; 16],
    hash: Zeroizing<[u8; 32]>,
}

fn kdf() -> Option<Argon2<'static>> {
    // 19 MiB, 2 passes: OWASP's Argon2id minimum; tens of milliseconds.
    let params = Params::new(19 * 1024, 2, 1, Some(32)).ok()?;
    Some(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

impl Verifier {
    /// Hashes `pass` under a fresh salt.
    pub(crate) fn new(pass: &SecretString) -> Option<Self> {
        let mut salt = [0u8; 16];
        OsRng.fill_bytes(&mut salt);
        let mut hash = Zeroizing::new([0u8; 32]);
        kdf()?
            .hash_password_into(pass.expose_secret().as_bytes(), &salt, hash.as_mut())
            .ok()?;
        Some(Self { salt, hash })
    }

    /// Whether `pass` is the passphrase (constant time).
    pub(crate) fn matches(&self, pass: &SecretString) -> bool {
        let mut got = Zeroizing::new([0u8; 32]);
        let Some(k) = kdf() else {
            return false;
        };
        if k.hash_password_into(pass.expose_secret().as_bytes(), &self.salt, got.as_mut())
            .is_err()
        {
            return false;
        }
        bool::from(got.ct_eq(&*self.hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_passphrase_matches() {
        let v =
            Verifier::new(&SecretString::from("correct horse 1")).unwrap_or_else(|| unreachable!());
        assert!(v.matches(&SecretString::from("correct horse 1")));
        assert!(!v.matches(&SecretString::from("correct horse 2")));
        assert!(!v.matches(&SecretString::from("")));
    }
}
