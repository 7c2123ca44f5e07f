//! Stow and restore: the account leaves the phone by day and comes back
//! from a recovery phrase by night (sans-IO).
//!
//! - [`phrase`]: the recovery phrase, 12 BIP-39 words (128 bits) in English
//!   or Korean, generated, never chosen.
//! - [`keys`]: the phrase through Argon2id to a seed, then HKDF-SHA256 per
//!   relay into a locator, an owner key, an access token and the record
//!   key. A PIN, if set, enters the access token and the record key only.
//! - [`record`]: the stowed profile files sealed under the record key
//!   (XChaCha20-Poly1305, the locator and version bound as associated
//!   data), padded so the relay learns a coarse size only.
//!
//! Composition only: argon2, hkdf, chacha20poly1305 and ed25519 come from
//! reviewed crates; `bip39` only maps words to bits and checks the checksum.

pub mod keys;
pub mod phrase;
pub mod record;

#[cfg(test)]
mod tests;

pub use keys::{RecoverySeed, RelayKeys};
pub use phrase::{PhraseLanguage, RecoveryPhrase};
pub use record::{MAX_RECORD, StowFile, StowRecord};

/// Why a stow operation failed. Messages never hold words, keys or file
/// contents.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum StowError {
    /// The phrase is not 12 words of one list, or its checksum is wrong.
    #[error("that is not a recovery phrase: check the 12 words and their order")]
    BadPhrase,
    /// The record does not open under these keys (another phrase or PIN, or
    /// it was changed).
    #[error("the stored account does not open with this phrase")]
    Sealed,
    /// The record opened but its contents are malformed.
    #[error("the stored account is damaged: {0}")]
    Malformed(&'static str),
    /// The record is larger than a stow may be.
    #[error("the account is too large to stow ({0} bytes)")]
    TooLarge(u64),
    /// The record is from a newer Ferry.
    #[error("the stored account was written by a newer Ferry (format {0})")]
    NewerFormat(u8),
    /// A key derivation failed.
    #[error("key derivation failed")]
    Kdf,
}
