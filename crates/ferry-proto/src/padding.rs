//! Padding buckets: every mailbox payload has one of a few fixed sizes, so the
//! relay (and anyone watching the radio) never learns a message's length.
//!
//! Layout of a padded payload: a 4-byte big-endian length `n`, the `n` content
//! bytes, then zeros up to the smallest bucket that fits. The relay only checks
//! the size; the layout is checked by the receiving client.

/// Allowed payload sizes in bytes, ascending.
pub const BUCKETS: [usize; 5] = [256, 1024, 4096, 16 * 1024, 64 * 1024];

/// Largest payload a mailbox accepts.
pub const MAX_PAYLOAD: usize = BUCKETS[BUCKETS.len() - 1];

const LEN_PREFIX: usize = 4;

/// Largest content that fits in the largest bucket.
pub const MAX_CONTENT: usize = MAX_PAYLOAD - LEN_PREFIX;

/// Why a payload could not be padded or unpadded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PaddingError {
    /// The content does not fit in the largest bucket.
    #[error("content of {0} bytes exceeds the largest bucket")]
    TooLarge(usize),
    /// The payload's size is not a bucket size.
    #[error("payload size is not a bucket size")]
    NotABucket,
    /// The length prefix points past the payload, or padding is not zero.
    #[error("malformed padding")]
    Malformed,
}

/// Whether `len` is an allowed payload size.
pub fn is_bucket_size(len: usize) -> bool {
    BUCKETS.contains(&len)
}

/// The smallest bucket that holds `content_len` bytes of content.
pub fn bucket_for(content_len: usize) -> Option<usize> {
    let needed = content_len.checked_add(LEN_PREFIX)?;
    BUCKETS.iter().copied().find(|&b| b >= needed)
}

/// Pads `content` to the smallest bucket that fits it.
pub fn pad(content: &[u8]) -> Result<Vec<u8>, PaddingError> {
    let size = bucket_for(content.len()).ok_or(PaddingError::TooLarge(content.len()))?;
    let len = u32::try_from(content.len()).map_err(|_| PaddingError::TooLarge(content.len()))?;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(content);
    out.resize(size, 0);
    Ok(out)
}

/// Largest group commit: MLS commits grow with a group (about 81 KiB at
/// 1,000 members), so above the largest bucket they are padded to a
/// multiple of it, up to this.
pub const MAX_COMMIT: usize = 16 * MAX_PAYLOAD;

/// Whether `len` is an allowed group commit size: a bucket, or a multiple
/// of the largest one up to [`MAX_COMMIT`].
pub fn is_commit_size(len: usize) -> bool {
    is_bucket_size(len) || (len > 0 && len.is_multiple_of(MAX_PAYLOAD) && len <= MAX_COMMIT)
}

/// Pads a group commit: to a bucket if it fits one, else to the next
/// multiple of the largest bucket.
pub fn pad_commit(content: &[u8]) -> Result<Vec<u8>, PaddingError> {
    if bucket_for(content.len()).is_some() {
        return pad(content);
    }
    let needed = content
        .len()
        .checked_add(LEN_PREFIX)
        .ok_or(PaddingError::TooLarge(content.len()))?;
    let size = needed.div_ceil(MAX_PAYLOAD) * MAX_PAYLOAD;
    if size > MAX_COMMIT {
        return Err(PaddingError::TooLarge(content.len()));
    }
    let len = u32::try_from(content.len()).map_err(|_| PaddingError::TooLarge(content.len()))?;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(content);
    out.resize(size, 0);
    Ok(out)
}

/// Strips a group commit's padding (see [`pad_commit`]).
pub fn unpad_commit(payload: &[u8]) -> Result<&[u8], PaddingError> {
    if !is_commit_size(payload.len()) {
        return Err(PaddingError::NotABucket);
    }
    strip(payload)
}

/// Strips padding, checking that the size is a bucket and the filler is zero.
pub fn unpad(payload: &[u8]) -> Result<&[u8], PaddingError> {
    if !is_bucket_size(payload.len()) {
        return Err(PaddingError::NotABucket);
    }
    strip(payload)
}

fn strip(payload: &[u8]) -> Result<&[u8], PaddingError> {
    if payload.len() < LEN_PREFIX {
        return Err(PaddingError::Malformed);
    }
    let (prefix, rest) = payload.split_at(LEN_PREFIX);
    let mut len_bytes = [0u8; LEN_PREFIX];
    len_bytes.copy_from_slice(prefix);
    let len = u32::from_be_bytes(len_bytes) as usize;
    if len > rest.len() {
        return Err(PaddingError::Malformed);
    }
    let (content, filler) = rest.split_at(len);
    if filler.iter().any(|&b| b != 0) {
        return Err(PaddingError::Malformed);
    }
    Ok(content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn commits_above_the_largest_bucket_take_multiples_of_it() {
        assert_eq!(pad_commit(&[1; 100]).unwrap().len(), 256);
        let big = pad_commit(&[7; 81 * 1024]).unwrap();
        assert_eq!(big.len(), 2 * MAX_PAYLOAD);
        assert!(is_commit_size(big.len()));
        assert!(!is_bucket_size(big.len()));
        assert_eq!(unpad_commit(&big).unwrap(), &[7; 81 * 1024][..]);
        assert!(unpad(&big).is_err(), "not a message size");
        assert_eq!(
            pad_commit(&[1; MAX_COMMIT]),
            Err(PaddingError::TooLarge(MAX_COMMIT))
        );
        assert!(!is_commit_size(MAX_COMMIT + MAX_PAYLOAD));
        assert!(!is_commit_size(3 * MAX_PAYLOAD + 1));
        assert!(!is_commit_size(0));
    }

    #[test]
    fn picks_smallest_bucket() {
        assert_eq!(pad(b"").unwrap().len(), 256);
        assert_eq!(pad(&[1; 252]).unwrap().len(), 256);
        assert_eq!(pad(&[1; 253]).unwrap().len(), 1024);
        assert_eq!(pad(&[1; MAX_CONTENT]).unwrap().len(), MAX_PAYLOAD);
        assert_eq!(
            pad(&[1; MAX_CONTENT + 1]),
            Err(PaddingError::TooLarge(MAX_CONTENT + 1))
        );
    }

    #[test]
    fn rejects_bad_layouts() {
        assert_eq!(unpad(&[0; 255]), Err(PaddingError::NotABucket));
        let mut p = pad(b"hi").unwrap();
        p[0] = 0xff;
        assert_eq!(unpad(&p), Err(PaddingError::Malformed));
        let mut p = pad(b"hi").unwrap();
        p[100] = 1;
        assert_eq!(unpad(&p), Err(PaddingError::Malformed));
    }

    proptest! {
        #[test]
        fn round_trip(content in proptest::collection::vec(any::<u8>(), 0..5000)) {
            let p = pad(&content).unwrap();
            prop_assert!(is_bucket_size(p.len()));
            prop_assert_eq!(unpad(&p).unwrap(), &content[..]);
        }

        #[test]
        fn unpad_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let _ = unpad(&data);
        }
    }
}
