//! The group chats of a profile (see [`crate::group`] for one group's MLS
//! engine): their records in the vault, the relay calls they queue, and
//! reading their logs.
//!
//! A group's record holds what the MLS state does not: its local name, its
//! mailbox on the relay, this member's signing key (public half; the key is
//! in the MLS store), the read cursor, the relay's epoch, and, for an admin,
//! its relay admin key and the adds and removals it still has to commit.
//! The record and the MLS state change in one engine update, and so are
//! written in one vault transaction, before any relay call: a commit in the
//! MLS state is always in the record too, byte for byte (see
//! [`crate::group::SavedGroup`]).
//!
//! Joining goes through the 1:1 conversation with the admin ([`joining`]).

use std::collections::HashMap;

use ferry_proto::{MailboxId, padding};
use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::OpenMlsProvider as _;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use super::{CoreError, Direction, Engine, HistoryEntry, check_alias, random_id};
use crate::envelope::{AppMessage, Body};
use crate::group::{GroupChat, GroupError, Role, SavedGroup};
use crate::secret::KeyBytes;

mod joining;
mod receive;
#[cfg(test)]
mod tests;

pub use joining::CommitToSend;
pub(crate) use joining::Joining;

/// The most group chats a profile keeps.
pub const MAX_GROUPS: usize = 200;
/// The most members a group takes in this release: a welcome must fit one
/// 1:1 message (about 180 bytes per member; larger ones would go as blobs).
pub const MAX_GROUP_MEMBERS: usize = 300;

/// One group chat as this profile keeps it.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct GroupRecord {
    /// Local id (shared with contacts' ids: it keys the history).
    pub(crate) id: u64,
    /// Local name.
    pub(crate) name: String,
    /// The group's relay.
    pub(crate) relay: String,
    /// The group's mailbox there.
    pub(crate) mailbox: MailboxId,
    /// This member's signature key in the group (public).
    #[serde(with = "ferry_proto::b64::bytes")]
    pub(crate) signer: Vec<u8>,
    /// What the MLS state does not hold.
    pub(crate) saved: SavedGroup,
    /// The last log position read.
    pub(crate) cursor: u64,
    /// The relay's epoch as last seen.
    pub(crate) relay_epoch: u64,
    /// The relay epoch our pending commit was made against.
    #[serde(default)]
    pub(crate) commit_expected: u64,
    /// The log position of our last commit: the next one waits until the
    /// log has been read past it.
    #[serde(default)]
    pub(crate) landed_at: u64,
    /// This member's relay admin key (an admin's).
    #[serde(default)]
    pub(crate) admin: Option<KeyBytes>,
    /// Contacts being added.
    #[serde(default)]
    pub(crate) adds: Vec<joining::PendingAdd>,
    /// Members to remove (signature keys, base64url).
    #[serde(default)]
    pub(crate) removes: Vec<String>,
    /// Members this profile knows as contacts (key base64url, contact id).
    #[serde(default)]
    pub(crate) known: Vec<(String, u64)>,
    /// A disappearing timer to commit (seconds, 0: off), an admin's.
    #[serde(default)]
    pub(crate) set_timer: Option<u32>,
}

/// A group as the front end lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    /// Local id (its history's key).
    pub id: u64,
    /// Local name.
    pub name: String,
    /// Members now.
    pub members: usize,
    /// This profile may add and remove members.
    pub admin: bool,
    /// Contacts asked to join and not in yet.
    pub joining: usize,
}

/// A member of a group as the front end lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// Its signature key in this group (base64url): names it exactly.
    pub key: String,
    /// The member's own name in this group.
    pub name: String,
    /// Owner, admin or member.
    pub role: Role,
    /// This profile.
    pub you: bool,
    /// The contact this is, if this profile added them.
    pub contact: Option<String>,
    /// An alert quarantined them.
    pub quarantined: bool,
}

/// A group log to read.
#[derive(Clone)]
pub struct GroupRead {
    /// Local id.
    pub local: u64,
    /// Relay base URL.
    pub relay: String,
    /// The group mailbox.
    pub mailbox: MailboxId,
    /// Read key seed.
    pub read: KeyBytes,
    /// Last position read.
    pub cursor: u64,
}

/// What reading a group's log produced.
#[derive(Debug)]
#[non_exhaustive]
pub enum GroupEvent {
    /// A message to store and show.
    Message {
        /// Local id (history key).
        group: u64,
        /// Local name.
        name: String,
        /// The message, with the sender's name in `from`.
        entry: HistoryEntry,
    },
    /// Members were added or removed.
    Members {
        /// Local name.
        name: String,
        /// Names of those added.
        added: Vec<String>,
        /// Names of those removed.
        removed: Vec<String>,
    },
    /// An alert quarantined a member: what they send is flagged.
    Quarantined {
        /// Local name.
        name: String,
        /// The member's name.
        member: String,
    },
    /// This profile was removed: the group and its history are gone.
    RemovedMe {
        /// Local id (history to delete).
        group: u64,
        /// Local name.
        name: String,
    },
}

pub(crate) fn group_err(e: GroupError) -> CoreError {
    match e {
        GroupError::NotAdmin => CoreError::NotGroupAdmin,
        GroupError::UnknownMember => CoreError::UnknownMember,
        other => CoreError::Group(other.to_string()),
    }
}

fn b64(k: &[u8]) -> String {
    ferry_proto::b64::encode(k)
}

/// A group and this member's signer, loaded from the store once.
pub(crate) struct Loaded {
    chat: GroupChat,
    signer: SignatureKeyPair,
}

/// Loaded groups by local id.
pub(crate) type Chats = HashMap<u64, Loaded>;

impl Engine {
    pub(crate) fn group_record(&self, name: &str) -> Result<&GroupRecord, CoreError> {
        self.state
            .groups
            .find(|g| g.name == name)
            .ok_or(CoreError::UnknownGroup)
    }

    fn group_by_id(&self, id: u64) -> Result<&GroupRecord, CoreError> {
        self.state
            .groups
            .find(|g| g.id == id)
            .ok_or(CoreError::UnknownGroup)
    }

    /// The group `id`, loaded once, with this member's signer.
    pub(crate) fn chat(&mut self, id: u64) -> Result<&mut Loaded, CoreError> {
        if !self.chats.contains_key(&id) {
            let rec = self.group_by_id(id)?;
            let chat = GroupChat::load(&self.provider, &rec.saved).map_err(group_err)?;
            let signer = SignatureKeyPair::read(
                self.provider.storage(),
                &rec.signer,
                openmls::prelude::SignatureScheme::ED25519,
            )
            .ok_or_else(|| CoreError::State("group signing key missing".into()))?;
            self.chats.insert(id, Loaded { chat, signer });
        }
        self.chats
            .get_mut(&id)
            .ok_or_else(|| CoreError::State("group state missing".into()))
    }

    /// Runs `f` on group `id` and writes what it changed into the record.
    /// A failure drops the loaded group (the next use loads it again).
    pub(crate) fn with_chat<T>(
        &mut self,
        id: u64,
        f: impl FnOnce(
            &mut GroupChat,
            &SignatureKeyPair,
            &crate::mls_store::Provider,
        ) -> Result<T, GroupError>,
    ) -> Result<T, CoreError> {
        self.chat(id)?;
        let Some(loaded) = self.chats.get_mut(&id) else {
            return Err(CoreError::UnknownGroup);
        };
        let out = f(&mut loaded.chat, &loaded.signer, &self.provider);
        let saved = loaded.chat.save();
        match out {
            Ok(v) => {
                if let Some(rec) = self.state.groups.get_mut(id) {
                    rec.saved = saved;
                }
                Ok(v)
            }
            Err(e) => {
                self.chats.remove(&id);
                Err(group_err(e))
            }
        }
    }

    fn check_group_name(&self, name: &str) -> Result<(), CoreError> {
        check_alias(name)?;
        if self.state.groups.find(|g| g.name == name).is_some()
            || self.state.contacts.iter().any(|c| c.alias == name)
        {
            return Err(CoreError::AliasTaken);
        }
        Ok(())
    }

    /// A free local name near `wanted` (a group joined under a name
    /// already used here gets a number).
    fn free_group_name(&self, wanted: &str) -> String {
        let base: String = wanted
            .chars()
            .filter(|c| !c.is_control())
            .take(48)
            .collect();
        let base = if base.trim().is_empty() {
            "group".to_owned()
        } else {
            base
        };
        let mut name = base.clone();
        let mut n = 2;
        while self.check_group_name(&name).is_err() {
            name = format!("{base} ({n})");
            n += 1;
        }
        name
    }

    /// Creates a group this profile owns, on its relay, under the local
    /// `name`; `display` is this member's name in it.
    pub fn create_group(
        &mut self,
        rng: &mut impl CryptoRngCore,
        name: &str,
        display: &str,
    ) -> Result<u64, CoreError> {
        self.check_group_name(name)?;
        check_alias(display)?;
        if self.state.groups.iter().count() >= MAX_GROUPS {
            return Err(CoreError::TooManyGroups);
        }
        let signer = crate::group::new_signer(&self.provider).map_err(group_err)?;
        let timer = u32::try_from(super::default_timer().unwrap_or(0)).unwrap_or(u32::MAX);
        let chat = GroupChat::create(&self.provider, &signer, display, timer).map_err(group_err)?;
        let id = self.state.next_contact_id();
        let relay = self.state.settings().relay.clone();
        let mailbox = MailboxId::random(rng);
        let admin = KeyBytes::random(rng);
        let keys = chat.relay_keys();
        self.state.outbox.push(super::Action::CreateGroup {
            relay: relay.clone(),
            local: id,
            group: mailbox,
            admin: admin.clone(),
            read: KeyBytes::from_bytes(*keys.read),
            write: KeyBytes::from_bytes(*keys.write),
        });
        self.state.groups.push(GroupRecord {
            id,
            name: name.to_owned(),
            relay,
            mailbox,
            signer: signer.public().to_vec(),
            saved: chat.save(),
            cursor: 0,
            relay_epoch: 0,
            commit_expected: 0,
            landed_at: 0,
            admin: Some(admin),
            adds: Vec::new(),
            removes: Vec::new(),
            known: Vec::new(),
            set_timer: None,
        });
        self.chats.insert(id, Loaded { chat, signer });
        Ok(id)
    }

    /// Every group.
    pub fn groups(&mut self) -> Vec<GroupSummary> {
        let ids: Vec<u64> = self.state.groups.iter().map(|g| g.id).collect();
        let mut out = Vec::new();
        for id in ids {
            let Ok(loaded) = self.chat(id) else { continue };
            let members = loaded.chat.members().map(|m| m.len()).unwrap_or(0);
            let own = loaded.chat.own_key();
            let role = loaded
                .chat
                .settings()
                .map(|s| s.role_of(&own))
                .unwrap_or(Role::Member);
            let Ok(rec) = self.group_by_id(id) else {
                continue;
            };
            out.push(GroupSummary {
                id,
                name: rec.name.clone(),
                members,
                admin: role.is_admin() && rec.admin.is_some(),
                joining: rec.adds.len(),
            });
        }
        out
    }

    /// The local id of the group called `name`, if there is one.
    pub fn group_id(&self, name: &str) -> Option<u64> {
        self.group_record(name).ok().map(|g| g.id)
    }

    /// The members of a group.
    pub fn group_members(&mut self, name: &str) -> Result<Vec<GroupMember>, CoreError> {
        let rec = self.group_record(name)?.clone();
        let loaded = self.chat(rec.id)?;
        let own = loaded.chat.own_key();
        let quarantined = loaded.chat.quarantined().to_vec();
        let members = loaded.chat.members().map_err(group_err)?;
        Ok(members
            .into_iter()
            .map(|m| {
                let key = b64(&m.key);
                let contact = rec
                    .known
                    .iter()
                    .find(|(k, _)| *k == key)
                    .and_then(|(_, c)| self.state.contacts.iter().find(|x| x.id == *c))
                    .map(|c| c.alias.clone());
                GroupMember {
                    key: key.clone(),
                    you: m.key == own,
                    quarantined: quarantined.contains(&m.key),
                    name: m.name,
                    role: m.role,
                    contact,
                }
            })
            .collect())
    }

    /// Encrypts a text for the group and queues it; returns the group's id
    /// and the history entry.
    pub fn group_send(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        name: &str,
        text: &str,
        view_once: bool,
    ) -> Result<(u64, HistoryEntry), CoreError> {
        if text.len() > crate::MAX_TEXT {
            return Err(CoreError::TooLong);
        }
        let id = self.group_record(name)?.id;
        self.group_send_content(now, rng, id, text.to_owned(), None, view_once)
    }

    /// Queues a text or an attachment for group `id` in its epoch now, with
    /// the group's timer; returns the group's id and the history entry.
    fn group_send_content(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        id: u64,
        text: String,
        attachment: Option<crate::attachment::AttachmentRef>,
        view_once: bool,
    ) -> Result<(u64, HistoryEntry), CoreError> {
        let timer = self.group_timer(id)?;
        let msg_id = random_id(rng);
        let body = match &attachment {
            Some(a) => Body::Attachment {
                attachment: a.clone(),
                view_once,
            },
            None => Body::Text {
                text: text.clone(),
                view_once,
            },
        };
        let app = AppMessage {
            id: msg_id.to_vec(),
            sent_at: now,
            expire_after: timer,
            body,
        };
        let plain = crate::wire::encode(&app).map_err(|e| CoreError::State(e.to_string()))?;
        self.queue_group_post(id, plain.to_vec())?;
        Ok((
            id,
            HistoryEntry {
                id: ferry_proto::b64::encode(&msg_id),
                direction: Direction::Out,
                text,
                sent_at: now,
                expires_at: timer.map(|t| now.saturating_add(t)),
                view_once,
                flagged: false,
                attachment: attachment.map(Box::new),
                call: None,
                from: None,
            },
        ))
    }

    /// Sets the group's disappearing-message timer (admins): committed
    /// as soon as nothing else is pending; every member follows it.
    pub fn group_set_timer(&mut self, name: &str, secs: Option<u64>) -> Result<(), CoreError> {
        let rec = self.group_record(name)?.clone();
        let loaded = self.chat(rec.id)?;
        let own = loaded.chat.own_key();
        let admin = loaded
            .chat
            .settings()
            .map_err(group_err)?
            .role_of(&own)
            .is_admin();
        if rec.admin.is_none() || !admin {
            return Err(CoreError::NotGroupAdmin);
        }
        let secs = u32::try_from(secs.unwrap_or(0)).unwrap_or(u32::MAX);
        if let Some(r) = self.state.groups.get_mut(rec.id) {
            r.set_timer = Some(secs);
        }
        self.group_follow_up(rec.id)
    }

    /// The group's disappearing-message timer (`None`: off).
    pub fn group_timer_of(&mut self, name: &str) -> Result<Option<u64>, CoreError> {
        let id = self.group_record(name)?.id;
        self.group_timer(id)
    }

    /// Where a file for group `name` is uploaded (the group's relay: one
    /// upload for every member), and what signs its creation there (the
    /// group's mailbox and its write key).
    pub fn group_attachment_upload(
        &self,
        name: &str,
    ) -> Result<(String, MailboxId, KeyBytes), CoreError> {
        let rec = self.group_record(name)?;
        Ok((rec.relay.clone(), rec.mailbox, rec.saved.write.clone()))
    }

    /// Queues the message for a file uploaded to the group's relay;
    /// returns the group's id and the history entry.
    pub fn group_send_attachment(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        name: &str,
        attachment: crate::attachment::AttachmentRef,
        view_once: bool,
    ) -> Result<(u64, HistoryEntry), CoreError> {
        let id = self.group_record(name)?.id;
        self.group_send_content(now, rng, id, String::new(), Some(attachment), view_once)
    }

    /// The group's disappearing-message timer (`None`: off).
    fn group_timer(&mut self, id: u64) -> Result<Option<u64>, CoreError> {
        let t = self.chat(id)?.chat.settings().map_err(group_err)?.timer;
        Ok((t > 0).then_some(u64::from(t)))
    }

    /// Seals `plain` for group `id` in its current epoch and queues it.
    fn queue_group_post(&mut self, id: u64, plain: Vec<u8>) -> Result<(), CoreError> {
        let sealed = self.with_chat(id, |chat, signer, provider| {
            chat.send(provider, signer, &plain)
        })?;
        let payload = padding::pad(&sealed).map_err(|_| CoreError::TooLong)?;
        self.push_post(id, payload, Some(plain), false)
    }

    /// Queues a padded post to group `id` in its relay epoch now.
    fn push_post(
        &mut self,
        id: u64,
        payload: Vec<u8>,
        plain: Option<Vec<u8>>,
        leave: bool,
    ) -> Result<(), CoreError> {
        let rec = self.group_by_id(id)?;
        let action = super::Action::GroupPost {
            relay: rec.relay.clone(),
            group: rec.mailbox,
            local: id,
            write: rec.saved.write.clone(),
            epoch: rec.relay_epoch,
            payload,
            plain,
            leave,
        };
        self.state.outbox.push(action);
        Ok(())
    }

    /// Seals a refused post again in the group's current epoch (the relay
    /// refused it as stale); `None` if the group is gone or the post was
    /// not one to send again.
    pub fn group_reseal(&mut self, action: crate::ActionId) -> Result<bool, CoreError> {
        let Some((local, plain, leave)) = self.state.outbox.iter().find_map(|(a, act)| match act {
            super::Action::GroupPost {
                local,
                plain,
                leave,
                ..
            } if a == action && (plain.is_some() || *leave) => {
                Some((*local, plain.clone(), *leave))
            }
            _ => None,
        }) else {
            return Ok(false);
        };
        self.state.outbox.remove(action);
        if self.group_by_id(local).is_err() {
            return Ok(false);
        }
        match plain {
            Some(plain) if !leave => self.queue_group_post(local, plain)?,
            _ => self.queue_leave(local)?,
        }
        Ok(true)
    }

    /// Warns every group that this member's device may be in someone
    /// else's hands (an alert about itself, as a duress unlock raises):
    /// every member quarantines it, and the first admin online removes it.
    pub fn group_alert(&mut self, name: &str) -> Result<(), CoreError> {
        let rec = self.group_record(name)?.clone();
        let alert = self.with_chat(rec.id, |chat, signer, provider| {
            chat.send_alert(provider, signer, None)
        })?;
        let payload = padding::pad(&alert).map_err(|_| CoreError::TooLong)?;
        self.push_post(rec.id, payload, None, false)
    }

    /// The local ids of every group (none loaded).
    pub fn group_ids(&self) -> Vec<u64> {
        self.state.groups.iter().map(|g| g.id).collect()
    }

    /// Every group log to read.
    pub fn group_reads(&self) -> Vec<GroupRead> {
        self.state
            .groups
            .iter()
            .map(|g| GroupRead {
                local: g.id,
                relay: g.relay.clone(),
                mailbox: g.mailbox,
                read: g.saved.read.clone(),
                cursor: g.cursor,
            })
            .collect()
    }

    /// Asks for `member` (a contact's alias, or a member's name in the
    /// group) to be removed; committed as soon as nothing else is pending.
    pub fn group_remove(&mut self, name: &str, member: &str) -> Result<(), CoreError> {
        let rec = self.group_record(name)?.clone();
        if rec.admin.is_none() {
            return Err(CoreError::NotGroupAdmin);
        }
        let contact = self
            .state
            .contacts
            .iter()
            .find(|c| c.alias == member)
            .map(|c| c.id);
        let loaded = self.chat(rec.id)?;
        let own = loaded.chat.own_key();
        let members = loaded.chat.members().map_err(group_err)?;
        // A member's key (what the app sends) names exactly one member.
        let by_key = members
            .iter()
            .find(|m| b64(&m.key) == member)
            .map(|m| b64(&m.key));
        let by_contact = by_key.or_else(|| {
            contact.and_then(|c| {
                rec.known
                    .iter()
                    .find(|(_, id)| *id == c)
                    .map(|(k, _)| k.clone())
            })
        });
        let by_name: Vec<String> = members
            .iter()
            .filter(|m| m.name == member)
            .map(|m| b64(&m.key))
            .collect();
        let key = match (by_contact, by_name.as_slice()) {
            (Some(k), _) => k,
            (None, [one]) => one.clone(),
            (None, []) => return Err(CoreError::UnknownMember),
            (None, _) => return Err(CoreError::AmbiguousMember),
        };
        if !members.iter().any(|m| b64(&m.key) == key) {
            return Err(CoreError::UnknownMember);
        }
        if key == b64(&own) {
            return Err(CoreError::Group("to leave, use group leave".into()));
        }
        // Only an owner removes an owner (every member would skip it).
        let role_of = |k: &str| {
            members
                .iter()
                .find(|m| b64(&m.key) == k)
                .map_or(Role::Member, |m| m.role)
        };
        if role_of(&key) == Role::Owner && role_of(&b64(&own)) != Role::Owner {
            return Err(CoreError::NotGroupAdmin);
        }
        if let Some(rec) = self.state.groups.get_mut(rec.id)
            && !rec.removes.contains(&key)
        {
            rec.removes.push(key);
        }
        self.group_follow_up(rec.id)
    }

    /// Leaves a group: asks the admins to commit our leaving, and forgets
    /// the group here at once (its MLS state and record). Returns its id,
    /// whose history the caller deletes.
    pub fn group_leave(&mut self, name: &str) -> Result<u64, CoreError> {
        self.group_request_leave(name)?;
        self.group_forget(name)
    }

    /// Queues the request to leave (the group stays here until
    /// [`Engine::group_forget`], so a request the relay refuses as stale is
    /// sealed again). The last owner of a group others are in is refused.
    pub fn group_request_leave(&mut self, name: &str) -> Result<(), CoreError> {
        let rec = self.group_record(name)?.clone();
        let loaded = self.chat(rec.id)?;
        let own = loaded.chat.own_key();
        let members = loaded.chat.members().map_err(group_err)?;
        let owners = members.iter().filter(|m| m.role == Role::Owner).count();
        let own_role = members
            .iter()
            .find(|m| m.key == own)
            .map_or(Role::Member, |m| m.role);
        if own_role == Role::Owner && owners == 1 && members.len() > 1 {
            return Err(CoreError::LastOwner);
        }
        if members.len() > 1 {
            self.queue_leave(rec.id)?;
        }
        Ok(())
    }

    fn queue_leave(&mut self, id: u64) -> Result<(), CoreError> {
        let request = self.with_chat(id, |chat, signer, provider| {
            chat.request_leave(provider, signer)
        })?;
        let payload = padding::pad(&request).map_err(|_| CoreError::TooLong)?;
        self.push_post(id, payload, None, true)
    }

    /// Forgets a group here (its MLS state, signing key and record);
    /// returns its id, whose history the caller deletes.
    pub fn group_forget(&mut self, name: &str) -> Result<u64, CoreError> {
        let id = self.group_record(name)?.id;
        self.forget_group(id)?;
        Ok(id)
    }

    /// Deletes a group's MLS state, signer and record.
    fn forget_group(&mut self, id: u64) -> Result<(), CoreError> {
        self.chat(id)?;
        if let Some(loaded) = self.chats.remove(&id) {
            let public = loaded.signer.public().to_vec();
            loaded.chat.delete(&self.provider).map_err(group_err)?;
            let _ = SignatureKeyPair::delete(
                self.provider.storage(),
                &public,
                openmls::prelude::SignatureScheme::ED25519,
            );
        }
        self.state.groups.remove(id);
        Ok(())
    }
}
