//! What a member keeps of a group besides the MLS state, for the vault.

use openmls::prelude::*;
use openmls_traits::OpenMlsProvider;
use zeroize::Zeroizing;

use super::{GroupChat, GroupError, RelayKeys, mls};

/// What a member keeps of a group besides the MLS state (which openmls
/// keeps in the provider's storage): serialized into the vault.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct SavedGroup {
    /// The MLS group id.
    #[serde(with = "ferry_proto::b64::bytes")]
    pub group_id: Vec<u8>,
    /// Seed of the relay read key in force.
    pub read: crate::secret::KeyBytes,
    /// Seed of the relay write key in force.
    pub write: crate::secret::KeyBytes,
    /// Quarantined members' keys.
    #[serde(default)]
    pub quarantined: Vec<String>,
    /// Our commit waiting for the relay, byte for byte.
    #[serde(default, with = "ferry_proto::b64::opt_bytes")]
    pub pending: Option<Vec<u8>>,
}

impl std::fmt::Debug for SavedGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SavedGroup(..)")
    }
}

impl GroupChat {
    /// What to keep besides the MLS state.
    pub fn save(&self) -> SavedGroup {
        SavedGroup {
            group_id: self.group.group_id().as_slice().to_vec(),
            read: crate::secret::KeyBytes::from_bytes(*self.relay_keys.read),
            write: crate::secret::KeyBytes::from_bytes(*self.relay_keys.write),
            quarantined: self
                .quarantined
                .iter()
                .map(|k| ferry_proto::b64::encode(k))
                .collect(),
            pending: self.pending.clone(),
        }
    }

    /// Loads a group from `saved` and the MLS state in `provider`.
    pub fn load(provider: &impl OpenMlsProvider, saved: &SavedGroup) -> Result<Self, GroupError> {
        let group = MlsGroup::load(provider.storage(), &GroupId::from_slice(&saved.group_id))
            .map_err(mls)?
            .ok_or_else(|| GroupError::Mls("group state missing".into()))?;
        let quarantined = saved
            .quarantined
            .iter()
            .map(|k| ferry_proto::b64::decode(k).map_err(|_| GroupError::Malformed))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            group,
            relay_keys: RelayKeys {
                read: Zeroizing::new(*saved.read.expose()),
                write: Zeroizing::new(*saved.write.expose()),
            },
            quarantined,
            pending: saved.pending.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::super::tests::{Person, group_of};
    use super::super::*;

    /// A member's group comes back from what it saved (the vault) and the MLS
    /// state in its store, and reads on: relay keys and quarantine included.
    #[test]
    fn a_saved_group_loads_and_reads_on() {
        let (mut people, mut log) = group_of(3);
        let alert = people[2].act(|c, p, s| c.send_alert(p, s, None)).unwrap();
        log.post(alert);
        people[1].catch_up(1, &log);
        let saved = people[1].chat().save();
        let json = serde_json::to_string(&saved).unwrap();
        let seed = ferry_proto::b64::encode(saved.read.expose());
        assert!(json.contains(&seed), "the seed is saved");
        let shown = format!("{saved:?}");
        assert!(!shown.contains(&seed) && !shown.contains("read"), "{shown}");
        let back: SavedGroup = serde_json::from_str(&json).unwrap();
        let before = people[1].chat().epoch_authenticator();
        let keys = people[1].chat().relay_keys().clone();
        people[1].chat = Some(GroupChat::load(&people[1].provider, &back).unwrap());
        assert_eq!(people[1].chat().epoch_authenticator(), before);
        assert_eq!(people[1].chat().relay_keys(), &keys);
        let key2 = people[2].key();
        assert_eq!(people[1].chat().quarantined(), [key2]);
        people[0].send(&mut log, "after the reload");
        people[1].catch_up(1, &log);
        assert_eq!(people[1].texts.last().unwrap().1, b"after the reload");
        // A saved group whose MLS state is gone is an error, not a panic.
        let other = Person::new();
        assert!(GroupChat::load(&other.provider, &back).is_err());
    }
}
