//! Group chats on MLS, sans-IO: one MLS group per chat, its roles and
//! settings in the group context ([`roles`]), every commit checked against
//! the roles before it ([`policy`]) by every member alike, so the group
//! never forks.
//!
//! The relay orders a group's log (see `ferry-relay`'s group mailboxes):
//! an admin's commit is only *pending* until the relay has taken it
//! ([`GroupChat::confirm`]); refused, it is dropped ([`GroupChat::cancel`])
//! and the admin reads the log and decides again. Messages and commits
//! are read in log order with [`GroupChat::receive`].
//!
//! The relay keys of a group (read and write) come from the MLS exporter
//! of the epoch of its last removal ([`RelayKeys`]): a commit that removes
//! someone moves them on, and the admin hands the new public halves to the
//! relay with that commit, so the removed member's keys stop working at its
//! removal. A new member gets the current ones with its welcome.

mod alerts;
mod commits;
mod keys;
pub mod policy;
pub mod roles;
mod saved;

#[cfg(test)]
mod no_fork_tests;
#[cfg(test)]
mod tests;

use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::OpenMlsProvider;
use zeroize::Zeroizing;

pub use keys::{
    RelayKeys, forget_key_package, key_package, key_package_signer, neutral_name, new_signer,
};
use keys::{capabilities, credential, name_of};
pub use policy::Refusal;
pub use roles::{Role, Settings};
pub use saved::{SavedCommit, SavedGroup};

const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519;

/// Exporter label of the relay keys.
const RELAY_KEYS_LABEL: &str = "ferry group relay keys v1";

/// Past epochs whose messages can still be read: a message posted just
/// before a commit is read after it by the admin who made the commit
/// (everyone else reads the log in order, and an admin commits again only
/// once caught up). Each one kept costs every later message: at 1,000
/// members three made sending and reading 2.3 ms instead of 0.7.
const PAST_EPOCHS: usize = 1;

/// Longest display name in a group, in bytes.
pub const MAX_NAME: usize = 64;

/// Why a group operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// MLS refused (the text names the operation, never key material).
    #[error("MLS: {0}")]
    Mls(String),
    /// Only an admin (or owner) may do this.
    #[error("only an admin may do this")]
    NotAdmin,
    /// No member with that key.
    #[error("no such member")]
    UnknownMember,
    /// The bytes are not an MLS message of this group.
    #[error("malformed group message")]
    Malformed,
    /// A commit of ours is waiting for the relay's answer.
    #[error("a commit is already waiting for the relay")]
    CommitPending,
    /// Every member would skip this commit: it is not sent.
    #[error("the group's roles do not allow this: {0}")]
    Refused(Refusal),
    /// The group's settings cannot be read.
    #[error(transparent)]
    Settings(#[from] roles::MalformedSettings),
}

pub(super) fn mls(e: impl std::fmt::Display) -> GroupError {
    GroupError::Mls(e.to_string())
}

/// A commit to hand to the relay, with what it changes there.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The MLS commit.
    pub commit: Vec<u8>,
    /// The welcome for members it adds.
    pub welcome: Option<Vec<u8>>,
    /// New relay keys it takes effect with (a removal).
    pub rotate: Option<RelayKeys>,
}

/// A member as the group lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// Its signature key in this group (its identity here only).
    pub key: Vec<u8>,
    /// Its display name in this group.
    pub name: String,
    /// What it may do.
    pub role: Role,
}

/// Which kind of entry of the relay's log bytes came from: the relay takes
/// commits only from admin keys and messages only with the write key, so a
/// commit found in a message entry (a member posting one) is never applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// Posted with the write key.
    Message,
    /// Taken by compare-and-swap from an admin key.
    Commit,
}

/// What reading one entry of the log did.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Received {
    /// A message from a member.
    Message {
        /// The sender's key in this group.
        from: Vec<u8>,
        /// The plaintext.
        body: Vec<u8>,
        /// The sender is quarantined: show it as possibly not from them.
        quarantined: bool,
    },
    /// An alert quarantined a member (itself, or by an admin), at the same
    /// position for every member.
    Quarantined {
        /// The member now quarantined.
        member: Vec<u8>,
        /// Who raised the alert.
        by: Vec<u8>,
    },
    /// A plain member's alert about someone else: refused by everyone.
    AlertRefused {
        /// Who raised it.
        by: Vec<u8>,
    },
    /// A commit was applied.
    Applied {
        /// Keys of members it added.
        added: Vec<Vec<u8>>,
        /// Keys of members it removed.
        removed: Vec<Vec<u8>>,
        /// New relay keys from now on (it removed someone).
        rotated: bool,
    },
    /// A commit was refused by the roles and skipped (by every member).
    Skipped(Refusal),
    /// A member asks to leave: an admin removes it.
    LeaveRequest {
        /// Its key.
        member: Vec<u8>,
    },
    /// This member was removed: the group is over for it.
    RemovedMe,
    /// This member's own pending commit, read back from the log (the
    /// relay's answer was lost): applied now.
    OwnCommit,
    /// Unreadable or from another epoch or group: ignored, nothing changed.
    Ignored,
}

/// One group chat as one member holds it.
pub struct GroupChat {
    group: MlsGroup,
    relay_keys: RelayKeys,
    /// Members an alert has quarantined, until an admin removes them.
    quarantined: Vec<Vec<u8>>,
    /// Our commit waiting for the relay, as sent.
    pending: Option<Outgoing>,
}

impl std::fmt::Debug for GroupChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupChat")
            .field("epoch", &self.group.epoch().as_u64())
            .finish_non_exhaustive()
    }
}

impl GroupChat {
    /// Creates a group its creator owns.
    pub fn create(
        provider: &impl OpenMlsProvider,
        signer: &SignatureKeyPair,
        name: &str,
        timer: u32,
    ) -> Result<Self, GroupError> {
        let settings = Settings::founded_by(signer.public(), timer);
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(CIPHERSUITE)
            .use_ratchet_tree_extension(true)
            .max_past_epochs(PAST_EPOCHS)
            .capabilities(capabilities())
            .with_group_context_extensions(settings.extensions()?)
            .build();
        let group =
            MlsGroup::new(provider, signer, &config, credential(signer, name)).map_err(mls)?;
        let relay_keys = Self::keys_of(provider, &group)?;
        Ok(Self {
            group,
            relay_keys,
            quarantined: Vec::new(),
            pending: None,
        })
    }

    /// Joins from a welcome; `relay_keys` come with it (over the 1:1
    /// conversation that carried it). Returns who added this member.
    pub fn join(
        provider: &impl OpenMlsProvider,
        welcome: &[u8],
        relay_keys: RelayKeys,
    ) -> Result<(Self, MemberInfo), GroupError> {
        let msg =
            MlsMessageIn::tls_deserialize_exact(welcome).map_err(|_| GroupError::Malformed)?;
        let MlsMessageBodyIn::Welcome(w) = msg.extract() else {
            return Err(GroupError::Malformed);
        };
        let config = MlsGroupJoinConfig::builder()
            .use_ratchet_tree_extension(true)
            .max_past_epochs(PAST_EPOCHS)
            .build();
        let staged = StagedWelcome::new_from_welcome(provider, &config, w, None).map_err(mls)?;
        let adder = staged.welcome_sender().map_err(mls)?;
        let adder_key = adder.signature_key().as_slice().to_vec();
        let adder_name = name_of(adder.credential());
        let group = staged.into_group(provider).map_err(mls)?;
        let chat = Self {
            group,
            relay_keys,
            quarantined: Vec::new(),
            pending: None,
        };
        // A group without readable settings is never kept (a hostile
        // admin's welcome must leave nothing behind).
        let role = match chat.settings() {
            Ok(s) => s.role_of(&adder_key),
            Err(e) => {
                chat.delete(provider)?;
                return Err(e);
            }
        };
        Ok((
            chat,
            MemberInfo {
                key: adder_key,
                name: adder_name,
                role,
            },
        ))
    }

    pub(super) fn keys_of(
        provider: &impl OpenMlsProvider,
        group: &MlsGroup,
    ) -> Result<RelayKeys, GroupError> {
        let secret = Zeroizing::new(
            group
                .export_secret(provider.crypto(), RELAY_KEYS_LABEL, &[], 32)
                .map_err(mls)?,
        );
        RelayKeys::from_exported(&secret)
    }

    /// The relay keys in force.
    pub fn relay_keys(&self) -> &RelayKeys {
        &self.relay_keys
    }

    /// The MLS epoch.
    pub fn epoch(&self) -> u64 {
        self.group.epoch().as_u64()
    }

    /// The epoch authenticator (equal for every member at one epoch).
    pub fn epoch_authenticator(&self) -> Vec<u8> {
        self.group.epoch_authenticator().as_slice().to_vec()
    }

    /// This member's key in the group.
    pub fn own_key(&self) -> Vec<u8> {
        self.group
            .member_at(self.group.own_leaf_index())
            .map(|m| m.signature_key)
            .unwrap_or_default()
    }

    /// Whether `key` is the only owner still in the group.
    pub(super) fn is_last_owner(&self, key: &[u8]) -> Result<bool, GroupError> {
        let s = self.settings()?;
        let owners: Vec<Vec<u8>> = self
            .group
            .members()
            .map(|m| m.signature_key)
            .filter(|k| s.role_of(k) == Role::Owner)
            .collect();
        Ok(owners.len() == 1 && owners[0] == key)
    }

    /// Roles and settings now.
    pub fn settings(&self) -> Result<Settings, GroupError> {
        Ok(Settings::from_extensions(self.group.extensions())?)
    }

    /// Every member with name and role.
    pub fn members(&self) -> Result<Vec<MemberInfo>, GroupError> {
        let s = self.settings()?;
        Ok(self
            .group
            .members()
            .map(|m| MemberInfo {
                role: s.role_of(&m.signature_key),
                name: name_of(&m.credential),
                key: m.signature_key,
            })
            .collect())
    }

    /// Deletes this group's MLS state: the group is over for this member.
    pub fn delete(mut self, provider: &impl OpenMlsProvider) -> Result<(), GroupError> {
        self.group.delete(provider.storage()).map_err(mls)
    }

    /// Encrypts a message for the group.
    pub fn send(
        &mut self,
        provider: &impl OpenMlsProvider,
        signer: &SignatureKeyPair,
        body: &[u8],
    ) -> Result<Vec<u8>, GroupError> {
        self.seal(provider, signer, &alerts::content(body))
    }

    pub(super) fn seal(
        &mut self,
        provider: &impl OpenMlsProvider,
        signer: &SignatureKeyPair,
        bytes: &[u8],
    ) -> Result<Vec<u8>, GroupError> {
        let msg = self
            .group
            .create_message(provider, signer, bytes)
            .map_err(mls)?;
        msg.tls_serialize_detached().map_err(mls)
    }

    /// Reads one entry of the log (never one of our own commits: the
    /// relay's answer confirmed those).
    pub fn receive(
        &mut self,
        provider: &impl OpenMlsProvider,
        entry: Entry,
        bytes: &[u8],
    ) -> Result<Received, GroupError> {
        // Our own commit, whose answer from the relay was lost: MLS cannot
        // read it back (it is sealed by us), but its bytes are ours.
        if entry == Entry::Commit
            && self.group.pending_commit().is_some()
            && self.pending.as_ref().map(|o| &o.commit[..]) == Some(bytes)
        {
            self.confirm(provider)?;
            return Ok(Received::OwnCommit);
        }
        let Ok(msg) = MlsMessageIn::tls_deserialize_exact(bytes) else {
            return Ok(Received::Ignored);
        };
        let Ok(protocol) = msg.try_into_protocol_message() else {
            return Ok(Received::Ignored);
        };
        if protocol.group_id() != self.group.group_id() {
            return Ok(Received::Ignored);
        }
        // A commit counts only where the relay ordered it; anything else in
        // a commit entry is ignored too.
        let is_commit = protocol.content_type() == ContentType::Commit;
        if is_commit != (entry == Entry::Commit) {
            return Ok(Received::Ignored);
        }
        let processed = match self.group.process_message(provider, protocol) {
            Ok(p) => p,
            // Garbage, a forgery, a message from an epoch this member never
            // had: nothing changes.
            Err(_) => return Ok(Received::Ignored),
        };
        let sender = processed.sender().clone();
        let from = match &sender {
            Sender::Member(i) => self.group.member_at(*i).map(|m| m.signature_key),
            _ => None,
        };
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(app) => match from {
                Some(from) => self.on_app(from, &app.into_bytes()),
                None => Ok(Received::Ignored),
            },
            // Never stored: a stored proposal stops every member from
            // sending until an admin commits it (a member leaves with a
            // request the admins commit as a removal, see `alerts`).
            ProcessedMessageContent::ProposalMessage(_) => Ok(Received::Ignored),
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                let before = self.settings()?;
                if let Err(refusal) = policy::authorize(&self.group, &before, &sender, &staged) {
                    return Ok(Received::Skipped(refusal));
                }
                if staged.self_removed() {
                    return Ok(Received::RemovedMe);
                }
                let removed: Vec<Vec<u8>> = staged
                    .remove_proposals()
                    .filter_map(|r| {
                        self.group
                            .member_at(r.remove_proposal().removed())
                            .map(|m| m.signature_key)
                    })
                    .collect();
                let added: Vec<Vec<u8>> = staged
                    .add_proposals()
                    .map(|a| {
                        a.add_proposal()
                            .key_package()
                            .leaf_node()
                            .signature_key()
                            .as_slice()
                            .to_vec()
                    })
                    .collect();
                self.group
                    .merge_staged_commit(provider, *staged)
                    .map_err(mls)?;
                // Another admin's commit came first: ours is gone with it.
                self.pending = None;
                let rotated = !removed.is_empty();
                if rotated {
                    self.relay_keys = Self::keys_of(provider, &self.group)?;
                }
                self.quarantined.retain(|k| !removed.contains(k));
                Ok(Received::Applied {
                    added,
                    removed,
                    rotated,
                })
            }
            ProcessedMessageContent::OwnPendingCommit => {
                self.confirm(provider)?;
                Ok(Received::OwnCommit)
            }
            _ => Ok(Received::Ignored),
        }
    }
}
