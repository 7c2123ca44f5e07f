//! The profile's network setting (direct, or through a proxy), kept in the
//! vault of each slot so that it applies before the first connection,
//! including everything a duress unlock sends.

use ferry_vault::{Tx, Vault, VaultError};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{Session, SessionError};
use crate::net::{Network, ProxyUrl};

const NETWORK_BLOB: &str = "network";
const NETWORK_VERSION: u8 = 1;

#[derive(Serialize, Deserialize)]
struct Stored {
    /// `socks5h://…`, credentials included, or none for direct.
    proxy: Option<Zeroizing<String>>,
}

/// The network setting stored in `vault` (direct when none is stored). A
/// stored setting that cannot be read is an error, never "direct": the
/// caller must then not connect at all.
pub(super) fn load(vault: &Vault) -> Result<Network, SessionError> {
    match vault.json::<Stored>(NETWORK_BLOB, NETWORK_VERSION)? {
        None | Some(Stored { proxy: None }) => Ok(Network::direct()),
        Some(Stored { proxy: Some(p) }) => p
            .parse::<ProxyUrl>()
            .map(Network::via)
            .map_err(|_| VaultError::Corrupt("stored proxy setting unreadable".into()).into()),
    }
}

pub(super) fn store(tx: &Tx<'_>, network: &Network) -> Result<(), VaultError> {
    let stored = Stored {
        proxy: network.proxy().map(ProxyUrl::to_secret_string),
    };
    tx.put_json(NETWORK_BLOB, NETWORK_VERSION, &stored)
}

/// Stores `network` in `vault` and in its decoy, if it has one (decoy
/// first).
pub(super) fn store_everywhere(vault: &mut Vault, network: &Network) -> Result<(), SessionError> {
    if let Some(mut decoy) = vault.open_decoy()? {
        decoy.transaction(|tx| store(tx, network))?;
    }
    vault.transaction(|tx| store(tx, network))?;
    Ok(())
}

impl Session {
    /// Copies this profile's network setting into the decoy again (done at
    /// every [`Session::finish`], so a decoy that missed a change catches
    /// up).
    pub(super) fn mirror_network(&self) -> Result<(), SessionError> {
        if let Some(mut decoy) = self.vault.open_decoy()? {
            let net = self.network.clone();
            decoy.transaction(|tx| store(tx, &net))?;
        }
        Ok(())
    }

    /// How this profile reaches relays.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Sets how this profile reaches relays: through `proxy`, or directly
    /// with `None`. Takes effect for every connection from now on; stored
    /// in this profile and, when a duress decoy exists, in the decoy too,
    /// so a duress unlock goes out the same way.
    pub fn set_network(&mut self, network: Network) -> Result<(), SessionError> {
        // The decoy first: if this fails half way, the duress unlock is
        // never the one left going out the old way.
        store_everywhere(&mut self.vault, &network)?;
        self.network = network;
        // Clients made for the old setting must not be used again.
        self.relays.clear();
        self.group_relays.clear();
        Ok(())
    }
}
