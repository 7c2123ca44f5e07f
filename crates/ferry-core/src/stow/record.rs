//! The stow record: a profile's files as they are (both slots, journals and
//! key slabs, all ciphertext or random already), sealed once more under the
//! phrase's record key.
//!
//! Plaintext layout (version 1), then zeros up to the padded size:
//!
//! ```text
//! "FSR" | format u8 | version u64 | stowed_at u64
//!       | witnesses u8 | witnesses × (url_len u8 | url)
//!       | count u16 | count × (name_len u8 | name | len u32 | bytes)
//! ```
//!
//! Sealed: `nonce (24) | XChaCha20-Poly1305(record key, plaintext)` with
//! associated data `"ferry-stow-record-v1" | locator | version`, so a relay
//! can neither move a record to another locator nor relabel its version.
//! The sealed size is the Padmé size of the content rounded up to 4 KiB.

use chacha20poly1305::aead::{Aead as _, Payload};
use chacha20poly1305::{KeyInit as _, XChaCha20Poly1305, XNonce};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::{RelayKeys, StowError};

const MAGIC: &[u8; 3] = b"FSR";
const FORMAT: u8 = 1;
const AAD: &[u8] = b"ferry-stow-record-v1";
const NONCE: usize = 24;
const TAG: usize = 16;
/// Sealed records are a multiple of this many bytes.
pub const RECORD_UNIT: u64 = 4096;
/// Largest sealed record (the relay's default limit too).
pub const MAX_RECORD: u64 = 64 * 1024 * 1024;
/// Most files in a record.
const MAX_FILES: usize = 64;
/// Most witness relays.
pub const MAX_WITNESSES: usize = 8;

/// One file of the profile directory.
pub struct StowFile {
    /// Its name in the directory (no separators).
    pub name: String,
    /// Its bytes.
    pub bytes: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for StowFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StowFile")
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

/// A stowed profile.
#[derive(Debug)]
pub struct StowRecord {
    /// Counts stows of this account: each is one more than the last.
    pub version: u64,
    /// When it was stowed (Unix seconds).
    pub stowed_at: u64,
    /// Other relays that keep the account's version (a restore checks
    /// that none of them has seen a newer one).
    pub witnesses: Vec<String>,
    /// The profile directory's files.
    pub files: Vec<StowFile>,
}

/// The sealed size for `content` bytes of plaintext.
pub fn sealed_len(content: u64) -> u64 {
    let raw = content + (NONCE + TAG) as u64;
    crate::attachment::padme(raw).div_ceil(RECORD_UNIT) * RECORD_UNIT
}

/// Whether a name can be a profile file: plain, short, no separators.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && name != "."
        && name != ".."
}

fn aad(keys: &RelayKeys, version: u64) -> Vec<u8> {
    let mut a = AAD.to_vec();
    a.extend_from_slice(keys.locator().as_bytes());
    a.extend_from_slice(&version.to_be_bytes());
    a
}

impl StowRecord {
    fn encode(&self) -> Result<Zeroizing<Vec<u8>>, StowError> {
        if self.files.len() > MAX_FILES {
            return Err(StowError::Malformed("too many files"));
        }
        let mut out = Zeroizing::new(Vec::new());
        out.extend_from_slice(MAGIC);
        out.push(FORMAT);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.stowed_at.to_be_bytes());
        if self.witnesses.len() > MAX_WITNESSES {
            return Err(StowError::Malformed("too many witnesses"));
        }
        out.push(self.witnesses.len() as u8);
        for w in &self.witnesses {
            if w.is_empty() || w.len() > 255 {
                return Err(StowError::Malformed("witness address"));
            }
            out.push(w.len() as u8);
            out.extend_from_slice(w.as_bytes());
        }
        out.extend_from_slice(&(self.files.len() as u16).to_be_bytes());
        for f in &self.files {
            if !valid_name(&f.name) {
                return Err(StowError::Malformed("file name"));
            }
            let len = u32::try_from(f.bytes.len())
                .map_err(|_| StowError::TooLarge(f.bytes.len() as u64))?;
            out.push(f.name.len() as u8);
            out.extend_from_slice(f.name.as_bytes());
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&f.bytes);
        }
        Ok(out)
    }

    fn decode(plain: &[u8]) -> Result<Self, StowError> {
        let mut r = Reader(plain);
        if r.take(3)? != MAGIC {
            return Err(StowError::Malformed("not a stow record"));
        }
        let format = r.take(1)?[0];
        if format != FORMAT {
            return Err(StowError::NewerFormat(format));
        }
        let version = r.u64()?;
        let stowed_at = r.u64()?;
        let n = usize::from(r.take(1)?[0]);
        if n > MAX_WITNESSES {
            return Err(StowError::Malformed("too many witnesses"));
        }
        let mut witnesses = Vec::with_capacity(n);
        for _ in 0..n {
            let len = usize::from(r.take(1)?[0]);
            let url = std::str::from_utf8(r.take(len)?)
                .ok()
                .filter(|u| !u.is_empty())
                .ok_or(StowError::Malformed("witness address"))?;
            witnesses.push(url.to_owned());
        }
        let count = usize::from(u16::from_be_bytes(r.array()?));
        if count > MAX_FILES {
            return Err(StowError::Malformed("too many files"));
        }
        let mut files = Vec::with_capacity(count);
        for _ in 0..count {
            let n = usize::from(r.take(1)?[0]);
            let name = std::str::from_utf8(r.take(n)?)
                .ok()
                .filter(|n| valid_name(n))
                .ok_or(StowError::Malformed("file name"))?
                .to_owned();
            if files.iter().any(|f: &StowFile| f.name == name) {
                return Err(StowError::Malformed("the same file twice"));
            }
            let len = u32::from_be_bytes(r.array()?) as usize;
            let bytes = Zeroizing::new(r.take(len)?.to_vec());
            files.push(StowFile { name, bytes });
        }
        if r.0.iter().any(|&b| b != 0) {
            return Err(StowError::Malformed("padding"));
        }
        Ok(Self {
            version,
            stowed_at,
            witnesses,
            files,
        })
    }

    /// Seals the record for the relay of `keys`.
    pub fn seal(
        &self,
        keys: &RelayKeys,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, StowError> {
        let mut plain = self.encode()?;
        let total = sealed_len(plain.len() as u64);
        if total > MAX_RECORD {
            return Err(StowError::TooLarge(total));
        }
        plain.resize(total as usize - NONCE - TAG, 0);
        let mut nonce = [0u8; NONCE];
        rng.fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new(keys.record_key().into());
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: &aad(keys, self.version),
                },
            )
            // The AEAD refuses only inputs beyond its limit.
            .map_err(|_| StowError::TooLarge(total))?;
        let mut out = Vec::with_capacity(total as usize);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a sealed record the relay says is `version`; refuses one that
    /// does not open, is from another locator or version, or is malformed.
    pub fn open(sealed: &[u8], keys: &RelayKeys, version: u64) -> Result<Self, StowError> {
        if sealed.len() as u64 > MAX_RECORD {
            return Err(StowError::TooLarge(sealed.len() as u64));
        }
        if sealed.len() < NONCE + TAG {
            return Err(StowError::Sealed);
        }
        let (nonce, body) = sealed.split_at(NONCE);
        let cipher = XChaCha20Poly1305::new(keys.record_key().into());
        let plain = Zeroizing::new(
            cipher
                .decrypt(
                    XNonce::from_slice(nonce),
                    Payload {
                        msg: body,
                        aad: &aad(keys, version),
                    },
                )
                .map_err(|_| StowError::Sealed)?,
        );
        let record = Self::decode(&plain)?;
        if record.version != version {
            return Err(StowError::Malformed("version"));
        }
        Ok(record)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StowError> {
        if self.0.len() < n {
            return Err(StowError::Malformed("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StowError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u64(&mut self) -> Result<u64, StowError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
}
