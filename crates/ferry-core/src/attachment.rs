//! Attachments: how a file is encrypted for the relay's blob store and what
//! the conversation message carries about it.
//!
//! Composition (no new primitive): the file is padded with zero bytes to its
//! Padmé length (so the relay learns only the padded size, which leaks
//! O(log log n) bits of it), cut into 64 KiB segments, and each segment is
//! sealed with ChaCha20-Poly1305 under the STREAM construction (`aead`'s
//! `StreamBE32`: 32-bit big-endian segment counter and a last-segment flag in
//! the nonce), which rejects reordered, dropped, duplicated or truncated
//! segments. Every file gets a fresh random 256-bit key used for exactly one
//! stream, so the 7-byte nonce prefix is fixed at zero (as age does with its
//! per-file keys). The key, the SHA-256 of the plaintext, and the metadata
//! travel inside the MLS message ([`AttachmentRef`]); the receiver checks the
//! digest after the last segment, which also commits the sender to one
//! plaintext (ChaCha20-Poly1305 alone is not key-committing).
//!
//! Segments are addressed by position, so both sides can start at any
//! segment: an interrupted upload or download resumes at the segment that
//! holds the relay's confirmed offset.

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::stream::{NewStream as _, StreamBE32, StreamPrimitive as _};
use chacha20poly1305::aead::{KeyInit as _, generic_array::GenericArray};
use serde::{Deserialize, Serialize};

use crate::secret::KeyBytes;

/// Plaintext bytes per sealed segment.
pub const SEGMENT: u64 = 64 * 1024;
/// Poly1305 tag bytes added to each segment.
pub const TAG: u64 = 16;
/// Bytes of one full sealed segment in the blob.
pub const SEALED_SEGMENT: u64 = SEGMENT + TAG;
/// Associated data of every segment (domain separation).
const AAD: &[u8] = b"ferry attachment v1";
/// Longest file name carried in a message.
pub const MAX_NAME: usize = 255;
/// Largest file size a message may claim (the relay's limit is lower).
pub const MAX_SIZE: u64 = 1 << 40;

/// Why an attachment operation failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttachmentError {
    /// A segment failed authentication: changed, reordered or truncated.
    #[error(
        "segment {0} of the attachment failed authentication: it was changed in transit or at the relay"
    )]
    Tampered(u64),
    /// The decrypted file does not match the digest its sender gave.
    #[error("the attachment does not match the digest its sender gave")]
    DigestMismatch,
    /// Too many segments for one stream.
    #[error("file too large")]
    TooLarge,
}

/// The Padmé length of `len`: the padded size, at most ~12% above `len`,
/// whose binary form keeps only the top ⌊log₂ E⌋+1 bits of the exponent E.
pub fn padme(len: u64) -> u64 {
    if len < 2 {
        return len;
    }
    let e = 63 - u64::from(len.leading_zeros()); // floor(log2 len)
    let s = 64 - u64::from(e.leading_zeros()); // floor(log2 e) + 1
    let last_bits = e - s;
    let mask = (1u64 << last_bits) - 1;
    len.saturating_add(mask) & !mask
}

/// Where a file's bytes sit in its blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Real file size.
    pub size: u64,
    /// Padded plaintext size.
    pub padded: u64,
    /// Number of sealed segments (at least one).
    pub segments: u64,
}

impl Layout {
    /// The layout of a `size`-byte file.
    pub fn new(size: u64) -> Result<Self, AttachmentError> {
        if size > MAX_SIZE {
            return Err(AttachmentError::TooLarge);
        }
        let padded = padme(size);
        let segments = padded.div_ceil(SEGMENT).max(1);
        if segments > u64::from(u32::MAX) {
            return Err(AttachmentError::TooLarge);
        }
        Ok(Self {
            size,
            padded,
            segments,
        })
    }

    /// Bytes of the encrypted blob.
    pub fn blob_len(&self) -> u64 {
        self.padded + self.segments * TAG
    }

    /// Padded plaintext bytes in segment `i`.
    pub fn plain_len(&self, i: u64) -> u64 {
        self.padded.saturating_sub(i * SEGMENT).min(SEGMENT)
    }

    /// Real file bytes in segment `i` (the rest is zero padding).
    pub fn real_len(&self, i: u64) -> u64 {
        self.size.saturating_sub(i * SEGMENT).min(SEGMENT)
    }

    /// Offset of segment `i` in the blob.
    pub fn blob_offset(&self, i: u64) -> u64 {
        i * SEALED_SEGMENT
    }

    /// The segment holding blob offset `offset`.
    pub fn segment_at(&self, offset: u64) -> u64 {
        (offset / SEALED_SEGMENT).min(self.segments)
    }

    /// Whether `i` is the last segment.
    pub fn is_last(&self, i: u64) -> bool {
        i + 1 == self.segments
    }
}

/// Seals and opens the segments of one attachment.
pub struct SegmentCipher {
    stream: StreamBE32<ChaCha20Poly1305>,
    layout: Layout,
}

impl std::fmt::Debug for SegmentCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SegmentCipher(..)")
    }
}

impl SegmentCipher {
    /// The cipher for a file of `layout` under `key`.
    pub fn new(key: &KeyBytes, layout: Layout) -> Self {
        let aead = ChaCha20Poly1305::new(GenericArray::from_slice(key.expose()));
        let nonce = GenericArray::default(); // fresh key per file: see module docs
        Self {
            stream: StreamBE32::from_aead(aead, &nonce),
            layout,
        }
    }

    /// The layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Seals segment `i` in place: `buf` holds its padded plaintext and gets
    /// the tag appended.
    pub fn seal(&self, i: u64, buf: &mut Vec<u8>) -> Result<(), AttachmentError> {
        let pos = u32::try_from(i).map_err(|_| AttachmentError::TooLarge)?;
        self.stream
            .encrypt_in_place(pos, self.layout.is_last(i), AAD, buf)
            .map_err(|_| AttachmentError::TooLarge)
    }

    /// Opens segment `i` in place: `buf` holds the sealed segment and keeps
    /// the padded plaintext.
    pub fn open(&self, i: u64, buf: &mut Vec<u8>) -> Result<(), AttachmentError> {
        let pos = u32::try_from(i).map_err(|_| AttachmentError::Tampered(i))?;
        if i >= self.layout.segments || buf.len() as u64 != self.layout.plain_len(i) + TAG {
            return Err(AttachmentError::Tampered(i));
        }
        self.stream
            .decrypt_in_place(pos, self.layout.is_last(i), AAD, buf)
            .map_err(|_| AttachmentError::Tampered(i))
    }
}

/// What kind of attachment it is (how a client presents it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentKind {
    /// Any file: photo, video, document.
    File,
    /// A voice message (Ogg/Opus).
    Voice,
}

impl AttachmentKind {
    /// Text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Voice => "voice",
        }
    }
}

/// Everything needed to fetch and decrypt an attachment. It carries the
/// key and the read token: it only ever lives inside MLS messages and in
/// vault records (crypto-shredded with the message). `Debug` shows only the
/// kind.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    /// Relay holding the blob.
    pub relay: String,
    /// Blob id (base64url).
    pub blob: ferry_proto::MailboxId,
    /// Read token for the blob.
    pub token: KeyBytes,
    /// Segment key.
    pub key: KeyBytes,
    /// Real file size in bytes.
    pub size: u64,
    /// SHA-256 of the plaintext file.
    #[serde(with = "ferry_proto::b64::bytes")]
    pub digest: Vec<u8>,
    /// The sender's file name (untrusted: never used as a path as is).
    pub name: String,
    /// Media type, if the sender knew it.
    #[serde(default)]
    pub mime: Option<String>,
    /// File or voice.
    pub kind: AttachmentKind,
    /// Voice duration, if known.
    #[serde(default)]
    pub duration_ms: Option<u64>,
}

impl std::fmt::Debug for AttachmentRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachmentRef")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl AttachmentRef {
    /// Whether a received reference is well formed.
    pub fn is_valid(&self) -> bool {
        self.size <= MAX_SIZE
            && self.digest.len() == 32
            && !self.name.is_empty()
            && self.name.len() <= MAX_NAME
            && self.mime.as_ref().is_none_or(|m| m.len() <= 255)
            && (self.relay.starts_with("http://") || self.relay.starts_with("https://"))
            && self.relay.len() <= 2048
    }

    /// The blob layout.
    pub fn layout(&self) -> Result<Layout, AttachmentError> {
        Layout::new(self.size)
    }

    /// A file name safe to create in a directory: the last path component,
    /// without separators, control characters or leading dots.
    pub fn safe_name(&self) -> String {
        let last = self.name.rsplit(['/', '\\']).next().unwrap_or_default();
        let mut cleaned = String::new();
        let kept: String = last.chars().filter(|c| !c.is_control()).collect();
        // At most 200 bytes, cut on a character boundary: with the partial
        // file's suffix it stays under the usual 255-byte name limit.
        for c in kept.trim_start_matches('.').trim().chars() {
            if cleaned.len() + c.len_utf8() > 200 {
                break;
            }
            cleaned.push(c);
        }
        if cleaned.is_empty() {
            "attachment".to_owned()
        } else {
            cleaned
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand_core::OsRng;

    use super::*;

    #[test]
    fn padme_matches_the_paper() {
        // Reference values from the Padmé definition (PURBs, Nikitin et al. 2019).
        assert_eq!(padme(0), 0);
        assert_eq!(padme(1), 1);
        assert_eq!(padme(9), 10);
        assert_eq!(padme(100), 104);
        assert_eq!(padme(1000), 1024);
        assert_eq!(padme(1_000_000), 1_015_808);
        assert_eq!(padme(1 << 30), 1 << 30);
        assert_eq!(padme((1 << 30) + 1), (1 << 30) + (1 << 25));
    }

    proptest! {
        #[test]
        fn padme_is_monotonic_and_bounded(len in 0u64..(1 << 41)) {
            let p = padme(len);
            prop_assert!(p >= len);
            prop_assert!(p - len <= len / 8 + 1, "overhead above 12.5%");
            prop_assert!(padme(len + 1) >= p);
        }
    }

    fn seal_all(key: &KeyBytes, data: &[u8]) -> Vec<Vec<u8>> {
        let layout = Layout::new(data.len() as u64).unwrap();
        let c = SegmentCipher::new(key, layout);
        (0..layout.segments)
            .map(|i| {
                let start = (i * SEGMENT) as usize;
                let real = layout.real_len(i) as usize;
                let mut buf = data[start..start + real].to_vec();
                buf.resize(layout.plain_len(i) as usize, 0);
                c.seal(i, &mut buf).unwrap();
                buf
            })
            .collect()
    }

    #[test]
    fn round_trip_and_layout_sizes() {
        for size in [0usize, 1, 100, 65_536, 65_537, 300_000] {
            let data: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
            let key = KeyBytes::random(&mut OsRng);
            let sealed = seal_all(&key, &data);
            let layout = Layout::new(size as u64).unwrap();
            assert_eq!(
                sealed.iter().map(|s| s.len() as u64).sum::<u64>(),
                layout.blob_len()
            );
            let c = SegmentCipher::new(&key, layout);
            let mut out = Vec::new();
            for (i, s) in sealed.iter().enumerate() {
                let mut buf = s.clone();
                c.open(i as u64, &mut buf).unwrap();
                buf.truncate(layout.real_len(i as u64) as usize);
                out.extend_from_slice(&buf);
            }
            assert_eq!(out, data);
        }
    }

    #[test]
    fn tampering_reordering_truncation_and_wrong_key_are_refused() {
        let data = vec![42u8; 200_000];
        let key = KeyBytes::random(&mut OsRng);
        let sealed = seal_all(&key, &data);
        let layout = Layout::new(data.len() as u64).unwrap();
        let c = SegmentCipher::new(&key, layout);
        let mut flipped = sealed[1].clone();
        flipped[10] ^= 1;
        assert_eq!(c.open(1, &mut flipped), Err(AttachmentError::Tampered(1)));
        // Reordered: segment 2 presented as segment 1.
        let mut moved = sealed[2].clone();
        assert!(c.open(1, &mut moved).is_err());
        // Truncated stream: a non-last segment presented as the last one.
        let short = Layout::new(2 * SEGMENT).unwrap();
        let mut early = sealed[1].clone();
        assert!(SegmentCipher::new(&key, short).open(1, &mut early).is_err());
        let mut other = sealed[0].clone();
        let wrong = SegmentCipher::new(&KeyBytes::random(&mut OsRng), layout);
        assert!(wrong.open(0, &mut other).is_err());
        let mut cut = sealed[0][..100].to_vec();
        assert!(c.open(0, &mut cut).is_err());
    }

    #[test]
    fn safe_names() {
        let mut r = AttachmentRef {
            relay: "http://r".into(),
            blob: ferry_proto::MailboxId::random(&mut OsRng),
            token: KeyBytes::random(&mut OsRng),
            key: KeyBytes::random(&mut OsRng),
            size: 1,
            digest: vec![0; 32],
            name: "../../etc/passwd".into(),
            mime: None,
            kind: AttachmentKind::File,
            duration_ms: None,
        };
        assert_eq!(r.safe_name(), "passwd");
        r.name = "..\\..\\x.txt".into();
        assert_eq!(r.safe_name(), "x.txt");
        r.name = "\u{1b}[31m.bashrc".into();
        assert_eq!(r.safe_name(), "[31m.bashrc");
        r.name = "..".into();
        assert_eq!(r.safe_name(), "attachment");
        r.name = "ж".repeat(120); // 240 bytes: valid, but too long with a suffix
        assert_eq!(r.safe_name().len(), 200);
        assert!(r.safe_name().chars().all(|c| c == 'ж'));
        assert!(r.is_valid());
        assert_eq!(format!("{r:?}"), "AttachmentRef { kind: File, .. }");
    }
}
