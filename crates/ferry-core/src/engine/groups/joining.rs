//! Adding and removing members: an admin's intents, committed one at a
//! time through the relay's compare-and-swap, and joining through the 1:1
//! conversation with the admin who adds us.
//!
//! Adding contact B to a group:
//! 1. The admin asks B for a key package over their 1:1 conversation
//!    (`GroupAsk`, a random ask id and nothing else).
//! 2. B's device answers with a fresh key package under a signing key made
//!    for this group alone (so members cannot be linked across groups).
//! 3. The admin commits the add against the relay's epoch. Only once the
//!    relay has taken the commit does it send B, over the 1:1 conversation,
//!    the welcome, the group's mailbox and relay keys, and the commit's log
//!    position: B reads the log from there.
//!
//! A commit the relay refuses (another admin's came first) is dropped, the
//! admin reads the log, and the same intents are committed again on top.

use ferry_proto::padding;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use super::{GroupEvent, GroupRecord, Loaded, MAX_GROUP_MEMBERS, b64, group_err};
use crate::engine::{Action, Contact, CoreError, Engine, Event, random_id, valid_relay_url};
use crate::envelope::{Body, GroupInvite};
use crate::group::{self, GroupChat, RelayKeys};
use crate::secret::KeyBytes;

/// Key packages given out and not used yet: the oldest goes beyond this.
const MAX_JOINS: usize = 16;

/// A contact being added by this admin.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct PendingAdd {
    #[serde(with = "ferry_proto::b64::bytes")]
    pub(crate) ask: Vec<u8>,
    pub(crate) contact: u64,
    /// Its key package, once it answered.
    #[serde(default, with = "ferry_proto::b64::opt_bytes")]
    pub(crate) key_package: Option<Vec<u8>>,
    /// In our pending commit.
    #[serde(default)]
    pub(crate) in_commit: bool,
}

/// A key package this profile gave a contact for a group it may be added
/// to.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Joining {
    #[serde(with = "ferry_proto::b64::bytes")]
    ask: Vec<u8>,
    contact: u64,
    /// The signing key made for that group (public; the key is in the MLS
    /// store).
    #[serde(with = "ferry_proto::b64::bytes")]
    signer: Vec<u8>,
    /// The key package given (to forget it if it is never used).
    #[serde(default, with = "ferry_proto::b64::bytes")]
    key_package: Vec<u8>,
}

/// A pending commit to send to the relay, exactly as first made.
pub struct CommitToSend {
    /// The group mailbox.
    pub group: ferry_proto::MailboxId,
    /// Our relay admin key seed.
    pub admin: KeyBytes,
    /// The relay epoch it was made against.
    pub expected: u64,
    /// The padded commit.
    pub payload: Vec<u8>,
    /// Seeds of the read and write keys it moves to.
    pub rotate: Option<(KeyBytes, KeyBytes)>,
}

impl std::fmt::Debug for CommitToSend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitToSend")
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Asks contact `alias` to join group `name` (admins): its device
    /// answers with a key package, and the add is committed then.
    pub fn group_add(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        name: &str,
        alias: &str,
    ) -> Result<(), CoreError> {
        let rec = self.group_record(name)?.clone();
        if rec.admin.is_none() {
            return Err(CoreError::NotGroupAdmin);
        }
        let own_role = {
            let loaded = self.chat(rec.id)?;
            let own = loaded.chat.own_key();
            loaded.chat.settings().map_err(group_err)?.role_of(&own)
        };
        if !own_role.is_admin() {
            return Err(CoreError::NotGroupAdmin);
        }
        let c = self.established(alias)?;
        if rec.adds.iter().any(|a| a.contact == c.id) || rec.known.iter().any(|(_, k)| *k == c.id) {
            return Err(CoreError::AlreadyMember);
        }
        let members = self.chat(rec.id)?.chat.members().map_err(group_err)?.len();
        if members + rec.adds.len() >= MAX_GROUP_MEMBERS {
            return Err(CoreError::GroupFull);
        }
        let ask = random_id(rng).to_vec();
        self.queue(now, rng, &c, Body::GroupAsk { ask: ask.clone() })?;
        if let Some(rec) = self.state.groups.get_mut(rec.id) {
            rec.adds.push(PendingAdd {
                ask,
                contact: c.id,
                key_package: None,
                in_commit: false,
            });
        }
        Ok(())
    }

    /// A contact asks for a key package to add us to a group.
    pub(crate) fn on_group_ask(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        c: &Contact,
        ask: Vec<u8>,
    ) -> Result<Event, CoreError> {
        let alias = c.alias.clone();
        if ask.len() != 16 || self.state.groups.iter().count() >= super::MAX_GROUPS {
            return Ok(Event::Ignored { alias });
        }
        let signer = group::new_signer(&self.provider).map_err(group_err)?;
        let kp = group::key_package(&self.provider, &signer, &group::neutral_name(rng))
            .map_err(group_err)?;
        let joins = &mut self.state.settings_mut().group_joins;
        let mut dropped: Vec<Joining> = Vec::new();
        joins.retain(|j| {
            let keep = j.ask != ask || j.contact != c.id;
            if !keep {
                dropped.push(j.clone());
            }
            keep
        });
        if joins.len() >= MAX_JOINS {
            dropped.push(joins.remove(0));
        }
        joins.push(Joining {
            ask: ask.clone(),
            contact: c.id,
            signer: signer.public().to_vec(),
            key_package: kp.clone(),
        });
        // What was given for an older ask goes: at most MAX_JOINS key
        // packages and their signing keys are ever kept.
        for j in dropped {
            let _ = group::forget_key_package(&self.provider, &j.key_package, &j.signer);
        }
        self.queue(
            now,
            rng,
            c,
            Body::GroupKeyPackage {
                ask,
                key_package: kp,
            },
        )?;
        Ok(Event::Ignored { alias })
    }

    /// A contact we asked answered with its key package: the add is
    /// committed as soon as nothing else is pending.
    pub(crate) fn on_group_key_package(
        &mut self,
        c: &Contact,
        ask: &[u8],
        key_package: Vec<u8>,
    ) -> Result<Event, CoreError> {
        let alias = c.alias.clone();
        let Some(id) = self
            .state
            .groups
            .find(|g| g.adds.iter().any(|a| a.ask == ask && a.contact == c.id))
            .map(|g| g.id)
        else {
            return Ok(Event::Ignored { alias });
        };
        // A key package that does not validate (a broken or hostile
        // device) drops this add alone.
        let valid = group::key_package_signer(&self.provider, &key_package).is_ok();
        if let Some(rec) = self.state.groups.get_mut(id) {
            if valid {
                if let Some(a) = rec
                    .adds
                    .iter_mut()
                    .find(|a| a.ask == ask && a.key_package.is_none())
                {
                    a.key_package = Some(key_package);
                }
            } else {
                rec.adds.retain(|a| a.ask != ask);
            }
        }
        self.group_follow_up(id)?;
        Ok(Event::Ignored { alias })
    }

    /// The admin who asked us added us: join from the welcome.
    pub(crate) fn on_group_invite(
        &mut self,
        c: &Contact,
        invite: GroupInvite,
    ) -> Result<Event, CoreError> {
        let alias = c.alias.clone();
        let Some(at) = self
            .state
            .settings()
            .group_joins
            .iter()
            .position(|j| j.ask == invite.ask && j.contact == c.id)
        else {
            return Ok(Event::Ignored { alias });
        };
        // Only the relay this contact's own mailbox is on, or ours: a
        // contact cannot make us connect anywhere else.
        let theirs = c.established().map(|e| e.outbound.relay.clone());
        let ours = self.state.settings().relay.clone();
        if !valid_relay_url(&invite.relay)
            || (Some(&invite.relay) != theirs.as_ref() && invite.relay != ours)
        {
            return Ok(Event::Ignored { alias });
        }
        if self.state.groups.iter().count() >= super::MAX_GROUPS {
            return Ok(Event::Ignored { alias });
        }
        // The ask is used up whatever happens next: a welcome that does not
        // work leaves neither its key package nor its signing key behind.
        let joining = self.state.settings_mut().group_joins.remove(at);
        let keys = RelayKeys {
            read: zeroize::Zeroizing::new(*invite.read.expose()),
            write: zeroize::Zeroizing::new(*invite.write.expose()),
        };
        let joined = GroupChat::join(&self.provider, &invite.welcome, keys);
        let signer = openmls_basic_credential::SignatureKeyPair::read(
            openmls_traits::OpenMlsProvider::storage(&self.provider),
            &joining.signer,
            openmls::prelude::SignatureScheme::ED25519,
        );
        let (chat, adder, signer) = match (joined, signer) {
            // Our own leaf must be the key made for this ask.
            (Ok((chat, adder)), Some(signer)) if chat.own_key() == joining.signer => {
                (chat, adder, signer)
            }
            (joined, _) => {
                if let Ok((chat, _)) = joined {
                    let _ = chat.delete(&self.provider);
                }
                let _ = group::forget_key_package(
                    &self.provider,
                    &joining.key_package,
                    &joining.signer,
                );
                return Ok(Event::Ignored { alias });
            }
        };
        let name = self.free_group_name(&invite.name);
        let id = self.state.next_contact_id();
        self.state.groups.push(GroupRecord {
            id,
            name: name.clone(),
            relay: invite.relay,
            mailbox: invite.mailbox,
            signer: joining.signer,
            saved: chat.save(),
            cursor: invite.after,
            relay_epoch: invite.epoch,
            commit_expected: 0,
            landed_at: 0,
            admin: None,
            adds: Vec::new(),
            removes: Vec::new(),
            known: vec![(b64(&adder.key), c.id)],
            set_timer: None,
        });
        self.chats.insert(id, Loaded { chat, signer });
        Ok(Event::GroupJoined {
            group: name,
            by: alias,
        })
    }

    /// Commits what the admin still has to (removals, then adds with their
    /// key packages), one commit at a time, and only once the log has been
    /// read past our last commit (so messages of the epoch before it are
    /// still readable here). An intent that cannot be committed is dropped;
    /// nothing here fails for a member's input.
    pub(crate) fn group_follow_up(&mut self, id: u64) -> Result<(), CoreError> {
        let rec = self.group_by_id(id)?.clone();
        if rec.admin.is_none() || rec.cursor < rec.landed_at {
            return Ok(());
        }
        if self.chat(id)?.chat.pending_commit().is_some() {
            return Ok(());
        }
        let made = if let Some(key) = rec.removes.first().cloned() {
            let bytes = ferry_proto::b64::decode(&key).unwrap_or_default();
            let made = self
                .with_chat(id, |chat, signer, provider| {
                    chat.remove(provider, signer, &bytes)
                })
                .is_ok();
            if !made {
                // Gone already, or not ours to remove: dropped.
                if let Some(rec) = self.state.groups.get_mut(id) {
                    rec.removes.retain(|k| *k != key);
                }
                return self.group_follow_up(id);
            }
            true
        } else {
            let kps: Vec<Vec<u8>> = rec
                .adds
                .iter()
                .filter_map(|a| a.key_package.clone())
                .collect();
            if kps.is_empty() {
                match rec.set_timer {
                    Some(t) => {
                        let made = self
                            .with_chat(id, |chat, signer, provider| {
                                let mut s = chat.settings()?;
                                s.timer = t;
                                chat.change_settings(provider, signer, &s)
                            })
                            .is_ok();
                        if let Some(rec) = self.state.groups.get_mut(id) {
                            // Committed (and then in the group) or refused:
                            // either way not asked again.
                            rec.set_timer = None;
                        }
                        made
                    }
                    None => false,
                }
            } else {
                let made = self
                    .with_chat(id, |chat, signer, provider| {
                        chat.add(provider, signer, &kps)
                    })
                    .is_ok();
                if let Some(rec) = self.state.groups.get_mut(id) {
                    if made {
                        for a in &mut rec.adds {
                            a.in_commit = a.key_package.is_some();
                        }
                    } else {
                        // Each one validated on arrival: what fails now
                        // (a member already, a full group) is dropped.
                        rec.adds.retain(|a| a.key_package.is_none());
                    }
                }
                made
            }
        };
        if made {
            let relay = rec.relay.clone();
            if let Some(rec) = self.state.groups.get_mut(id) {
                rec.commit_expected = rec.relay_epoch;
            }
            self.state
                .outbox
                .push(Action::GroupCommit { relay, local: id });
        }
        Ok(())
    }

    /// The pending commit of group `local`, to send (`None`: nothing is
    /// pending any more).
    pub fn group_commit_to_send(&mut self, local: u64) -> Result<Option<CommitToSend>, CoreError> {
        let Ok(rec) = self.group_by_id(local).cloned() else {
            return Ok(None);
        };
        let Some(admin) = rec.admin.clone() else {
            return Ok(None);
        };
        let Some(out) = self.chat(local)?.chat.pending_commit().cloned() else {
            // Dropped meanwhile (a refusal, a restart in between): what is
            // still to do is committed anew.
            self.group_follow_up(local)?;
            return Ok(None);
        };
        let payload = padding::pad_commit(&out.commit).map_err(|_| CoreError::GroupFull)?;
        Ok(Some(CommitToSend {
            group: rec.mailbox,
            admin,
            expected: rec.commit_expected,
            payload,
            rotate: out.rotate.map(|k| {
                (
                    KeyBytes::from_bytes(*k.read),
                    KeyBytes::from_bytes(*k.write),
                )
            }),
        }))
    }

    /// The relay took our pending commit of group `local` at `seq`, moving
    /// it to relay epoch `epoch`: apply it, and send the new members their
    /// welcome.
    /// Returns who it added and removed.
    pub fn group_commit_landed(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        local: u64,
        seq: u64,
        epoch: u64,
    ) -> Result<Option<GroupEvent>, CoreError> {
        let Some(out) = self.chat(local)?.chat.pending_commit().cloned() else {
            return Ok(None);
        };
        let before = self.chat(local)?.chat.members().unwrap_or_default();
        self.with_chat(local, |chat, _, provider| chat.confirm(provider))?;
        self.after_landing(now, rng, local, out, seq, epoch);
        Ok(self.members_changed(local, &before))
    }

    /// Who joined and who went since `before`, as an event (`None`: the
    /// same members).
    pub(super) fn members_changed(
        &mut self,
        local: u64,
        before: &[group::MemberInfo],
    ) -> Option<GroupEvent> {
        let name = self.group_by_id(local).ok()?.name.clone();
        let after = self.chat(local).ok()?.chat.members().ok()?;
        let added: Vec<String> = after
            .iter()
            .filter(|m| before.iter().all(|b| b.key != m.key))
            .map(|m| m.name.clone())
            .collect();
        let removed: Vec<String> = before
            .iter()
            .filter(|b| after.iter().all(|m| m.key != b.key))
            .map(|b| b.name.clone())
            .collect();
        (!added.is_empty() || !removed.is_empty()).then_some(GroupEvent::Members {
            name,
            added,
            removed,
        })
    }

    /// What follows our commit `out` landing at `seq` (already applied):
    /// the bookkeeping and the new members' welcomes. Nothing here fails:
    /// the commit is in the group whatever happens.
    pub(super) fn after_landing(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        local: u64,
        out: group::Outgoing,
        seq: u64,
        epoch: u64,
    ) {
        let Ok(rec) = self.group_by_id(local).cloned() else {
            return;
        };
        let Ok(loaded) = self.chat(local) else {
            return;
        };
        let keys = loaded.chat.relay_keys().clone();
        let present: Vec<String> = loaded
            .chat
            .members()
            .map(|m| m.iter().map(|m| b64(&m.key)).collect())
            .unwrap_or_default();
        if let Some(r) = self.state.groups.get_mut(local) {
            r.relay_epoch = r.relay_epoch.max(epoch);
            r.landed_at = r.landed_at.max(seq);
            r.removes.retain(|k| present.contains(k));
            r.known.retain(|(k, _)| present.contains(k));
        }
        let Some(welcome) = out.welcome else {
            return;
        };
        for add in rec.adds.iter().filter(|a| a.in_commit) {
            let Some(c) = self
                .state
                .contacts
                .iter()
                .find(|c| c.id == add.contact)
                .cloned()
            else {
                continue;
            };
            let key = add
                .key_package
                .as_deref()
                .and_then(|kp| group::key_package_signer(&self.provider, kp).ok());
            let invite = GroupInvite {
                ask: add.ask.clone(),
                relay: rec.relay.clone(),
                mailbox: rec.mailbox,
                read: KeyBytes::from_bytes(*keys.read),
                write: KeyBytes::from_bytes(*keys.write),
                after: seq,
                epoch,
                name: rec.name.clone(),
                welcome: welcome.clone(),
            };
            // A welcome that cannot go (too large for one message, the
            // conversation gone) leaves that member in the group, unable to
            // join: an admin removes it.
            if self
                .queue(now, rng, &c, Body::GroupInvite(Box::new(invite)))
                .is_ok()
                && let (Some(key), Some(r)) = (key, self.state.groups.get_mut(local))
            {
                r.known.push((b64(&key), c.id));
            }
        }
        if let Some(r) = self.state.groups.get_mut(local) {
            r.adds.retain(|a| !a.in_commit);
        }
    }

    /// The relay refused our pending commit of group `local` (another
    /// admin's came first): it is dropped; the caller reads the log and
    /// calls [`Engine::group_retry`].
    pub fn group_commit_refused(&mut self, local: u64) -> Result<(), CoreError> {
        if self.group_by_id(local).is_err() {
            return Ok(());
        }
        self.with_chat(local, |chat, _, provider| chat.cancel(provider))?;
        if let Some(r) = self.state.groups.get_mut(local) {
            for a in &mut r.adds {
                a.in_commit = false;
            }
        }
        Ok(())
    }

    /// The relay refused our pending commit of group `local` for good (or
    /// it could not even be sent): it is dropped with the intent it was
    /// made for, so the same refused commit is not made again and the
    /// admin can go on with the rest.
    pub fn group_commit_dropped(&mut self, local: u64) -> Result<(), CoreError> {
        if self.group_by_id(local).is_err() {
            return Ok(());
        }
        let _ = self.with_chat(local, |chat, _, provider| chat.cancel(provider));
        if let Some(r) = self.state.groups.get_mut(local) {
            if !r.removes.is_empty() {
                r.removes.remove(0);
            } else if r.adds.iter().any(|a| a.in_commit) {
                r.adds.retain(|a| !a.in_commit);
            } else {
                r.set_timer = None;
            }
        }
        Ok(())
    }

    /// Commits the group's intents again (after a refusal, once the log is
    /// read).
    pub fn group_retry(&mut self, local: u64) -> Result<(), CoreError> {
        if self.group_by_id(local).is_err() {
            return Ok(());
        }
        self.group_follow_up(local)
    }
}
