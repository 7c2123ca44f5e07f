//! A group member's keys: its signing key and key package (one per
//! group, so members cannot be linked across groups), and the group's relay
//! keys derived from the MLS exporter.

use hkdf::Hkdf;
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::OpenMlsProvider;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{CIPHERSUITE, GroupError, MAX_NAME, mls, roles};

/// The seeds of a group's relay read and write keys (Ed25519), wiped on
/// drop.
#[derive(Clone, PartialEq, Eq)]
pub struct RelayKeys {
    /// Seed of the read key.
    pub read: Zeroizing<[u8; 32]>,
    /// Seed of the write key.
    pub write: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for RelayKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RelayKeys(..)")
    }
}

impl RelayKeys {
    pub(super) fn from_exported(secret: &[u8]) -> Result<Self, GroupError> {
        let hk = Hkdf::<Sha256>::new(None, secret);
        let mut read = Zeroizing::new([0u8; 32]);
        let mut write = Zeroizing::new([0u8; 32]);
        hk.expand(b"read", read.as_mut()).map_err(mls)?;
        hk.expand(b"write", write.as_mut()).map_err(mls)?;
        Ok(Self { read, write })
    }
}

pub(super) fn capabilities() -> Capabilities {
    Capabilities::new(
        None,
        Some(&[CIPHERSUITE]),
        Some(&[roles::extension_type()]),
        None,
        None,
    )
}

pub(super) fn credential(signer: &SignatureKeyPair, name: &str) -> CredentialWithKey {
    let mut name = name.as_bytes().to_vec();
    name.truncate(MAX_NAME);
    CredentialWithKey {
        credential: BasicCredential::new(name).into(),
        signature_key: signer.public().into(),
    }
}

pub(super) fn name_of(c: &Credential) -> String {
    BasicCredential::try_from(c.clone())
        .map(|b| String::from_utf8_lossy(b.identity()).into_owned())
        .unwrap_or_default()
}

/// A new signing key for one group (never reused in another, so members
/// cannot be linked across groups), stored in `provider`.
pub fn new_signer(provider: &impl OpenMlsProvider) -> Result<SignatureKeyPair, GroupError> {
    let signer = SignatureKeyPair::new(CIPHERSUITE.signature_algorithm()).map_err(mls)?;
    signer.store(provider.storage()).map_err(mls)?;
    Ok(signer)
}

/// A key package to join a group under `name` with `signer`.
pub fn key_package(
    provider: &impl OpenMlsProvider,
    signer: &SignatureKeyPair,
    name: &str,
) -> Result<Vec<u8>, GroupError> {
    let kp = KeyPackage::builder()
        .leaf_node_capabilities(capabilities())
        .build(CIPHERSUITE, provider, signer, credential(signer, name))
        .map_err(mls)?;
    kp.key_package().tls_serialize_detached().map_err(mls)
}

/// The signature key a key package would join with (it must validate).
pub fn key_package_signer(
    provider: &impl OpenMlsProvider,
    key_package: &[u8],
) -> Result<Vec<u8>, GroupError> {
    use openmls::prelude::tls_codec::Deserialize as _;
    let kp = KeyPackageIn::tls_deserialize_exact(key_package).map_err(|_| GroupError::Malformed)?;
    let kp = kp
        .validate(provider.crypto(), ProtocolVersion::Mls10)
        .map_err(mls)?;
    Ok(kp.leaf_node().signature_key().as_slice().to_vec())
}

/// Forgets a key package given out and never used, with the signing key
/// made for it (a contact who asks again and again leaves nothing behind).
pub fn forget_key_package(
    provider: &impl OpenMlsProvider,
    key_package: &[u8],
    signer_public: &[u8],
) -> Result<(), GroupError> {
    use openmls::prelude::tls_codec::Deserialize as _;
    use openmls_traits::storage::StorageProvider as _;
    // The signing key goes whatever becomes of the package.
    let _ = SignatureKeyPair::delete(
        provider.storage(),
        signer_public,
        CIPHERSUITE.signature_algorithm(),
    );
    let kp = KeyPackageIn::tls_deserialize_exact(key_package).map_err(|_| GroupError::Malformed)?;
    let kp = kp
        .validate(provider.crypto(), ProtocolVersion::Mls10)
        .map_err(mls)?;
    let hash_ref = kp.hash_ref(provider.crypto()).map_err(mls)?;
    provider
        .storage()
        .delete_key_package(&hash_ref)
        .map_err(mls)
}

/// A name in a group that says nothing about its member (`member-3fa2`),
/// for members who give none of their own.
pub fn neutral_name(rng: &mut impl rand_core::CryptoRngCore) -> String {
    let mut b = [0u8; 2];
    rng.fill_bytes(&mut b);
    format!("member-{:02x}{:02x}", b[0], b[1])
}
