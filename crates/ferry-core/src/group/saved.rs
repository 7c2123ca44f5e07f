//! What a member keeps of a group besides the MLS state, for the vault.
//!
//! The client writes it in the same vault transaction as the MLS changes
//! of the same operation, and before it sends a commit: then a commit in
//! the MLS state is always in here too, byte for byte with its key changes,
//! and a restart sends exactly what may already have reached the relay.

use openmls::prelude::*;
use openmls_traits::OpenMlsProvider;
use zeroize::Zeroizing;

use super::{GroupChat, GroupError, Outgoing, RelayKeys, mls};

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
    /// Our commit waiting for the relay, with its welcome and key changes.
    #[serde(default)]
    pub pending: Option<SavedCommit>,
}

/// A commit waiting for the relay's answer, as it was sent.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct SavedCommit {
    /// The commit.
    #[serde(with = "ferry_proto::b64::bytes")]
    pub commit: Vec<u8>,
    /// Its welcome, if it adds members.
    #[serde(default, with = "ferry_proto::b64::opt_bytes")]
    pub welcome: Option<Vec<u8>>,
    /// Seeds of the relay read and write keys it moves to.
    #[serde(default)]
    pub rotate: Option<(crate::secret::KeyBytes, crate::secret::KeyBytes)>,
}

impl std::fmt::Debug for SavedCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SavedCommit(..)")
    }
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
            pending: self.pending.as_ref().map(|o| SavedCommit {
                commit: o.commit.clone(),
                welcome: o.welcome.clone(),
                rotate: o.rotate.as_ref().map(|k| {
                    (
                        crate::secret::KeyBytes::from_bytes(*k.read),
                        crate::secret::KeyBytes::from_bytes(*k.write),
                    )
                }),
            }),
        }
    }

    /// Loads a group from `saved` and the MLS state in `provider`. If the
    /// two disagree about a pending commit (they were not written
    /// together), the commit is dropped: one the MLS state holds alone was
    /// never sent.
    pub fn load(provider: &impl OpenMlsProvider, saved: &SavedGroup) -> Result<Self, GroupError> {
        let mut group = MlsGroup::load(provider.storage(), &GroupId::from_slice(&saved.group_id))
            .map_err(mls)?
            .ok_or_else(|| GroupError::Mls("group state missing".into()))?;
        let pending = match (&saved.pending, group.pending_commit().is_some()) {
            (Some(p), true) => Some(Outgoing {
                commit: p.commit.clone(),
                welcome: p.welcome.clone(),
                rotate: p.rotate.as_ref().map(|(r, w)| RelayKeys {
                    read: Zeroizing::new(*r.expose()),
                    write: Zeroizing::new(*w.expose()),
                }),
            }),
            (None, true) => {
                group
                    .clear_pending_commit(provider.storage())
                    .map_err(mls)?;
                None
            }
            (_, false) => None,
        };
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
            pending,
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
