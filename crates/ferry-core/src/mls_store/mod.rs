//! openmls storage that knows what changed.
//!
//! openmls keeps a group's state in a key-value store it drives through the
//! `StorageProvider` trait. [`TrackedStorage`] keeps those pairs in memory,
//! exactly as `openmls_memory_storage` lays them out (key = label ‖ JSON key
//! ‖ storage version, value = JSON), so state saved by earlier releases loads
//! unchanged; in addition it remembers every key written or deleted since
//! the last [`TrackedStorage::take_changes`]. A session persists only those
//! keys after each operation: the cost of a send does not grow with the
//! number of conversations.
//!
//! Values are wiped from memory when replaced, deleted or dropped.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, RwLock};

use openmls_rust_crypto::RustCrypto;
use openmls_traits::OpenMlsProvider;
use openmls_traits::storage::CURRENT_VERSION;
use serde::Serialize;
use serde::de::DeserializeOwned;

mod storage_provider;
use zeroize::Zeroizing;

/// One changed MLS key: its new value, or `None` when it was deleted.
pub type MlsChange = (Vec<u8>, Option<Zeroizing<Vec<u8>>>);

/// MLS key-value pairs, values wiped on drop.
pub type MlsEntries = Vec<(Vec<u8>, Zeroizing<Vec<u8>>)>;

/// Why the MLS store failed. openmls only sees this as opaque.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MlsStoreError {
    /// A value could not be encoded or decoded.
    #[error("MLS state could not be encoded or decoded")]
    Encoding,
    /// A lock was poisoned by a panic elsewhere.
    #[error("MLS state lock poisoned")]
    Poisoned,
}

impl From<serde_json::Error> for MlsStoreError {
    fn from(_: serde_json::Error) -> Self {
        Self::Encoding
    }
}

fn storage_key(label: &[u8], key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(label.len() + key.len() + 2);
    out.extend_from_slice(label);
    out.extend_from_slice(key);
    out.extend_from_slice(&CURRENT_VERSION.to_be_bytes());
    out
}

pub(super) fn json(v: &impl Serialize) -> Result<Vec<u8>, MlsStoreError> {
    Ok(serde_json::to_vec(v)?)
}

/// The in-memory MLS key-value store with change tracking.
#[derive(Default)]
pub struct TrackedStorage {
    values: RwLock<HashMap<Vec<u8>, Zeroizing<Vec<u8>>>>,
    changed: Mutex<BTreeSet<Vec<u8>>>,
}

impl std::fmt::Debug for TrackedStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TrackedStorage(..)")
    }
}

impl TrackedStorage {
    /// A store holding `entries` (as saved), with nothing marked changed.
    pub fn from_entries(entries: impl IntoIterator<Item = (Vec<u8>, Zeroizing<Vec<u8>>)>) -> Self {
        Self {
            values: RwLock::new(entries.into_iter().collect()),
            changed: Mutex::new(BTreeSet::new()),
        }
    }

    /// Every pair, for a full save.
    pub fn entries(&self) -> Result<MlsEntries, MlsStoreError> {
        let values = self.values.read().map_err(|_| MlsStoreError::Poisoned)?;
        Ok(values
            .iter()
            .map(|(k, v)| (k.clone(), Zeroizing::new(v.to_vec())))
            .collect())
    }

    /// Whether anything changed since the last [`Self::take_changes`].
    pub fn has_changes(&self) -> bool {
        self.changed.lock().map(|c| !c.is_empty()).unwrap_or(true)
    }

    /// The keys written or deleted since the last call, with their current
    /// values (`None`: deleted), and forgets them.
    pub fn take_changes(&self) -> Result<Vec<MlsChange>, MlsStoreError> {
        let keys = std::mem::take(&mut *self.changed.lock().map_err(|_| MlsStoreError::Poisoned)?);
        let values = self.values.read().map_err(|_| MlsStoreError::Poisoned)?;
        Ok(keys
            .into_iter()
            .map(|k| {
                let v = values.get(&k).map(|v| Zeroizing::new(v.to_vec()));
                (k, v)
            })
            .collect())
    }

    fn mark(&self, key: &[u8]) -> Result<(), MlsStoreError> {
        self.changed
            .lock()
            .map_err(|_| MlsStoreError::Poisoned)?
            .insert(key.to_vec());
        Ok(())
    }

    pub(super) fn put(
        &self,
        label: &[u8],
        key: &[u8],
        value: Vec<u8>,
    ) -> Result<(), MlsStoreError> {
        let k = storage_key(label, key);
        self.mark(&k)?;
        self.values
            .write()
            .map_err(|_| MlsStoreError::Poisoned)?
            .insert(k, Zeroizing::new(value));
        Ok(())
    }

    pub(super) fn get<V: DeserializeOwned>(
        &self,
        label: &[u8],
        key: &[u8],
    ) -> Result<Option<V>, MlsStoreError> {
        let values = self.values.read().map_err(|_| MlsStoreError::Poisoned)?;
        match values.get(&storage_key(label, key)) {
            Some(v) => Ok(Some(serde_json::from_slice(v)?)),
            None => Ok(None),
        }
    }

    pub(super) fn del(&self, label: &[u8], key: &[u8]) -> Result<(), MlsStoreError> {
        let k = storage_key(label, key);
        self.mark(&k)?;
        self.values
            .write()
            .map_err(|_| MlsStoreError::Poisoned)?
            .remove(&k);
        Ok(())
    }

    /// A list value: a JSON array of JSON-encoded items.
    fn raw_list(&self, label: &[u8], key: &[u8]) -> Result<Vec<Vec<u8>>, MlsStoreError> {
        let values = self.values.read().map_err(|_| MlsStoreError::Poisoned)?;
        match values.get(&storage_key(label, key)) {
            Some(v) => Ok(serde_json::from_slice(v)?),
            None => Ok(Vec::new()),
        }
    }

    pub(super) fn list<V: DeserializeOwned>(
        &self,
        label: &[u8],
        key: &[u8],
    ) -> Result<Vec<V>, MlsStoreError> {
        self.raw_list(label, key)?
            .iter()
            .map(|item| Ok(serde_json::from_slice(item)?))
            .collect()
    }

    pub(super) fn edit_list(
        &self,
        label: &[u8],
        key: &[u8],
        f: impl FnOnce(&mut Vec<Vec<u8>>),
    ) -> Result<(), MlsStoreError> {
        let mut list = self.raw_list(label, key)?;
        f(&mut list);
        self.put(label, key, json(&list)?)
    }
}

/// The openmls provider of an engine: RustCrypto primitives (openmls draws
/// its own randomness from the OS through them) and the tracked store.
#[derive(Default, Debug)]
pub struct Provider {
    crypto: RustCrypto,
    storage: TrackedStorage,
}

impl Provider {
    /// A provider over saved MLS state.
    pub fn with_storage(storage: TrackedStorage) -> Self {
        Self {
            crypto: RustCrypto::default(),
            storage,
        }
    }
}

impl OpenMlsProvider for Provider {
    type CryptoProvider = RustCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = TrackedStorage;

    fn storage(&self) -> &Self::StorageProvider {
        &self.storage
    }

    fn crypto(&self) -> &Self::CryptoProvider {
        &self.crypto
    }

    fn rand(&self) -> &Self::RandProvider {
        &self.crypto
    }
}
