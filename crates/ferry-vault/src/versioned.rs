//! Named blobs holding a versioned JSON value: `version ‖ JSON`. Blobs
//! written by the first releases are bare JSON (they start with `{` or `[`)
//! and read as the current version's predecessor, which every such record
//! still parses as. A version this release does not know is refused.

use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use crate::VaultError;

pub(crate) fn encode<T: Serialize>(
    version: u8,
    value: &T,
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let mut out = Zeroizing::new(vec![version]);
    serde_json::to_writer(&mut *out, value).map_err(|e| VaultError::Corrupt(e.to_string()))?;
    Ok(out)
}

pub(crate) fn decode<T: DeserializeOwned>(version: u8, bytes: &[u8]) -> Result<T, VaultError> {
    let json = match bytes.split_first() {
        Some((&v, json)) if v == version => json,
        // The first releases' bare JSON.
        Some((b'{' | b'[', _)) => bytes,
        Some((v, _)) => {
            return Err(VaultError::Corrupt(format!(
                "record version {v} is newer than this Ferry understands; update Ferry"
            )));
        }
        None => return Err(VaultError::Corrupt("empty record".into())),
    };
    serde_json::from_slice(json).map_err(|e| VaultError::Corrupt(e.to_string()))
}
