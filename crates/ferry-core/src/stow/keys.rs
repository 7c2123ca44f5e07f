//! Keys from the recovery phrase.
//!
//! ```text
//! seed     = Argon2id(entropy, salt "ferry-recovery-v1", 64 MiB, 3 passes)
//! prk      = HKDF-Extract(salt = relay URL, seed)               (SHA-256)
//! locator  = HKDF-Expand(prk, "ferry stow v1 locator", 16)
//! owner    = HKDF-Expand(prk, "ferry stow v1 owner", 32)        Ed25519 seed
//! access   = HKDF-Expand(prk, "ferry stow v1 access" | PIN, 32)
//! record   = HKDF-Expand(prk, "ferry stow v1 record" | PIN, 32)
//! ```
//!
//! The relay URL salts every key, so two relays holding the same account see
//! unrelated locators and keys. The owner key signs every request about the
//! record (the relay stores its public half); the relay stores only a hash of
//! the access token and counts wrong ones, so a PIN can be tried a few times
//! online only; the record key never leaves the device. A wrong phrase
//! derives a locator nobody holds: the relay answers as for no record.

use argon2::{Algorithm, Argon2, Params, Version};
use ferry_proto::{MailboxId, MailboxKey};
use hkdf::Hkdf;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use super::{RecoveryPhrase, StowError};

const SALT: &[u8] = b"ferry-recovery-v1";

/// The Argon2id output of a phrase: every relay's keys derive from it.
pub struct RecoverySeed(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for RecoverySeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoverySeed(..)")
    }
}

impl RecoverySeed {
    /// Runs Argon2id (64 MiB, 3 passes) over the phrase's bits.
    pub fn derive(phrase: &RecoveryPhrase) -> Result<Self, StowError> {
        let params = Params::new(64 * 1024, 3, 1, Some(32)).map_err(|_| StowError::Kdf)?;
        let mut seed = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(phrase.entropy(), SALT, seed.as_mut())
            .map_err(|_| StowError::Kdf)?;
        Ok(Self(seed))
    }

    /// The keys for one relay (its base URL as the profile names it), with
    /// the PIN if one was set.
    pub fn relay_keys(
        &self,
        relay: &str,
        pin: Option<&SecretString>,
    ) -> Result<RelayKeys, StowError> {
        let relay = relay.trim_end_matches('/');
        let hk = Hkdf::<Sha256>::new(Some(relay.as_bytes()), self.0.as_ref());
        let expand = |label: &[u8], with_pin: bool, out: &mut [u8]| {
            let mut info = Zeroizing::new(label.to_vec());
            if with_pin {
                // The PIN's length first, so "no PIN" and every PIN differ.
                let pin = pin.map(|p| p.expose_secret().as_bytes()).unwrap_or(b"");
                info.extend_from_slice(&(pin.len() as u32).to_be_bytes());
                info.extend_from_slice(pin);
            }
            hk.expand(&info, out).map_err(|_| StowError::Kdf)
        };
        let mut locator = [0u8; 16];
        expand(b"ferry stow v1 locator", false, &mut locator)?;
        let mut owner = Zeroizing::new([0u8; 32]);
        expand(b"ferry stow v1 owner", false, owner.as_mut())?;
        let mut access = Zeroizing::new([0u8; 32]);
        expand(b"ferry stow v1 access", true, access.as_mut())?;
        let mut record = Zeroizing::new([0u8; 32]);
        expand(b"ferry stow v1 record", true, record.as_mut())?;
        Ok(RelayKeys {
            relay: relay.to_owned(),
            locator: MailboxId::from_bytes(locator),
            owner,
            access,
            record,
        })
    }
}

/// One relay's keys for the stowed account; kept in the vault after
/// `recovery setup`, so a stow needs no phrase. `Debug` shows the relay only.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct RelayKeys {
    relay: String,
    locator: MailboxId,
    #[serde(with = "secret32")]
    owner: Zeroizing<[u8; 32]>,
    #[serde(with = "secret32")]
    access: Zeroizing<[u8; 32]>,
    #[serde(with = "secret32")]
    record: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for RelayKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayKeys").finish_non_exhaustive()
    }
}

impl RelayKeys {
    /// The relay these keys are for.
    pub fn relay(&self) -> &str {
        &self.relay
    }

    /// Where the record lives on the relay.
    pub fn locator(&self) -> MailboxId {
        self.locator
    }

    /// Signs every request about the record.
    pub fn owner(&self) -> MailboxKey {
        MailboxKey::from_secret_bytes(&self.owner)
    }

    /// Proves the PIN (or its absence) at a claim.
    pub fn access_token(&self) -> &[u8; 32] {
        &self.access
    }

    /// What the relay keeps of the access token.
    pub fn access_hash(&self) -> [u8; 32] {
        Sha256::digest(self.access.as_ref()).into()
    }

    /// The lease token of one restore, from a random nonce the restoring
    /// device keeps until the restore is finished (so a restore run again
    /// after a crash resumes its own claim).
    pub fn lease_token(&self, nonce: &[u8; 16]) -> Zeroizing<[u8; 32]> {
        let hk = Hkdf::<Sha256>::new(Some(b"ferry stow v1 lease"), self.owner.as_ref());
        let mut out = Zeroizing::new([0u8; 32]);
        // 32 bytes is always a valid HKDF-SHA256 output length.
        let _ = hk.expand(nonce, out.as_mut());
        out
    }

    pub(super) fn record_key(&self) -> &[u8; 32] {
        &self.record
    }
}

mod secret32 {
    use serde::{Deserialize as _, Deserializer, Serializer};
    use zeroize::Zeroizing;

    pub(super) fn serialize<S: Serializer>(
        v: &Zeroizing<[u8; 32]>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&ferry_proto::b64::encode(v.as_ref()))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Zeroizing<[u8; 32]>, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        ferry_proto::b64::decode_array::<32>(&text)
            .map(Zeroizing::new)
            .map_err(serde::de::Error::custom)
    }
}
