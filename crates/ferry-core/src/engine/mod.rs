//! The engine: profile state, contacts, handshakes and MLS conversations.
//!
//! Handshake (A invites B):
//! 1. A: `create_invite` makes a one-time invite mailbox on A's relay whose
//!    sender key derives from the invite secret.
//! 2. B: `accept_invite` makes B's inbound mailbox for A, then sends a sealed
//!    *hello* (B's MLS key package, B's mailbox and its sender key) to the
//!    invite mailbox.
//! 3. A: receiving the hello creates the MLS group (A is its only committer),
//!    adds B, makes A's inbound mailbox for B and sends a sealed *welcome*
//!    (MLS Welcome, A's mailbox and its sender key) to B's mailbox; the
//!    invite mailbox is deleted, so the invite cannot be used again.
//! 4. B: receiving the welcome joins the group. Both can now send MLS
//!    application messages to each other's mailbox.
//!
//! Anything that does not decrypt or authenticate as the contact is rejected
//! and reported as [`Event::Rejected`], never shown.

use std::collections::HashMap;

use ferry_proto::{MailboxId, padding};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use rand_core::CryptoRngCore;

use zeroize::Zeroizing;

use crate::envelope::{self, Address};
use crate::invite::InviteError;
use crate::mailbox_seal;
use crate::mls_store::{Provider, TrackedStorage};
use crate::reject::RejectReason;
use crate::relocate::Slot;
use crate::secret::KeyBytes;
use crate::state::{ActionId, Changes, ProfileState, Saved};

mod contact;
mod groups;
mod handshake;
#[cfg(test)]
mod tests;
mod types;

pub use contact::{
    AlertReason, Compromise, ContactInfo, ContactState, DEFAULT_CANARY_SECS, DEFAULT_TIMER_SECS,
};
pub(crate) use contact::{Contact, Inbound, MovedFrom, Stage, default_canary, default_timer};
pub use groups::{
    CommitToSend, GroupEvent, GroupMember, GroupRead, GroupSummary, MAX_GROUP_MEMBERS, MAX_GROUPS,
};
pub(crate) use groups::{GroupRecord, Joining};
pub use types::{Action, Direction, Event, HistoryEntry, InboundMailbox};

/// The most contacts a profile keeps (the duress capsule has room for
/// every one of them).
pub const MAX_CONTACTS: usize = 1000;

const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519;

/// Why an engine operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// An alias is already used by another contact (or a group).
    #[error("you already have a contact or group with that name")]
    AliasTaken,
    /// No contact has that alias.
    #[error("no contact with that alias")]
    UnknownContact,
    /// The contact is not ready for messages yet.
    #[error("the conversation is not set up yet; run sync on both sides first")]
    NotEstablished,
    /// Aliases must be 1..=64 printable characters.
    #[error("an alias must be 1 to 64 characters, without control characters")]
    BadAlias,
    /// The message is too long.
    #[error(
        "the message is too long (at most {} bytes)",
        crate::conversation::MAX_TEXT
    )]
    TooLong,
    /// The invite cannot be used.
    #[error(transparent)]
    Invite(#[from] InviteError),
    /// This invite was already accepted in this profile.
    #[error("you already accepted this invite")]
    InviteReused,
    /// The profile has as many contacts as Ferry keeps.
    #[error(
        "you have {} contacts, the most a profile keeps; remove one first",
        MAX_CONTACTS
    )]
    TooManyContacts,
    /// The contact warned that their device is compromised.
    #[error("this contact's device is compromised; use --force to send anyway")]
    Compromised,
    /// No challenge from this contact is waiting for an answer.
    #[error("this contact has not asked you to prove it is you")]
    NoChallenge,
    /// Replacing verifiers needs the current phrase.
    #[error("your phrase was already given to this contact; give the current phrase to change it")]
    PhraseNeeded,
    /// The saved state could not be read.
    #[error("saved state is unreadable: {0}")]
    State(String),
    /// MLS failed.
    #[error("MLS: {0}")]
    Mls(String),
    /// A call operation was refused.
    #[error(transparent)]
    Call(#[from] crate::call::CallError),
    /// No group has that name.
    #[error("no group with that name")]
    UnknownGroup,
    /// Only a group's admins may do this.
    #[error("only an admin of this group may do this")]
    NotGroupAdmin,
    /// No member of the group matches.
    #[error("no member of this group by that name")]
    UnknownMember,
    /// Several members have that name.
    #[error("several members have that name; use the alias of the contact you added")]
    AmbiguousMember,
    /// The contact is in the group or being added.
    #[error("that contact is already in this group or being added")]
    AlreadyMember,
    /// The group has as many members as this release takes.
    #[error(
        "this group has {} members, the most this release takes",
        groups::MAX_GROUP_MEMBERS
    )]
    GroupFull,
    /// The profile has as many groups as Ferry keeps.
    #[error("you are in {} groups, the most a profile keeps", groups::MAX_GROUPS)]
    TooManyGroups,
    /// The last owner cannot leave a group others are still in.
    #[error("you are this group's last owner; make someone else owner first")]
    LastOwner,
    /// A group operation failed.
    #[error("group: {0}")]
    Group(String),
}

pub(crate) fn mls<E: std::fmt::Display>(e: E) -> CoreError {
    CoreError::Mls(e.to_string())
}

/// The client engine for one profile.
pub struct Engine {
    pub(crate) state: ProfileState,
    pub(crate) provider: Provider,
    /// Conversations' MLS groups and signers, loaded from the MLS store
    /// once and kept (openmls writes every change through to the store as
    /// it makes it). A group whose operation failed is dropped here and
    /// loaded again from the store.
    groups: HashMap<Vec<u8>, MlsGroup>,
    signers: HashMap<Vec<u8>, SignatureKeyPair>,
    /// Group chats loaded from the store, by local id.
    chats: groups::Chats,
    /// The one current call (in memory only: a call never outlives the
    /// session).
    pub(crate) call: Option<crate::call::Current>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Engine(..)")
    }
}

/// A relay address a contact gave us: http(s), printable, bounded.
fn valid_relay_url(url: &str) -> bool {
    (url.starts_with("http://") || url.starts_with("https://"))
        && url.len() <= 512
        && !url.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// The furthest a mailbox's sequence number may jump ahead of its cursor
/// (far beyond any relay's quota; a forged number is refused outright).
const MAX_SEQ_JUMP: u64 = 1 << 32;

/// A payload's kind, body, and whether it was sealed (not an unsealed
/// payload of an earlier release, which anyone on the path could forge).
type Opened = (u8, Zeroizing<Vec<u8>>, bool);

/// A payload dropped as not from the contact (or damaged), for `alias`.
pub(crate) fn rejected(alias: &str, reason: RejectReason) -> Result<Event, CoreError> {
    Ok(Event::Rejected {
        alias: alias.to_owned(),
        reason,
    })
}

fn check_alias(alias: &str) -> Result<(), CoreError> {
    if alias.is_empty() || alias.chars().count() > 64 || alias.chars().any(char::is_control) {
        return Err(CoreError::BadAlias);
    }
    Ok(())
}

pub(crate) fn random_id(rng: &mut impl CryptoRngCore) -> [u8; 16] {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    b
}

impl Engine {
    /// A new, empty profile whose own mailboxes live on `relay`.
    pub fn new(relay: &str) -> Self {
        Self {
            state: ProfileState::new(relay),
            provider: Provider::default(),
            groups: HashMap::new(),
            call: None,
            signers: HashMap::new(),
            chats: groups::Chats::new(),
        }
    }

    /// Loads a profile from its saved records (any earlier layout too; an
    /// old layout shows up as changes to write back).
    pub fn load(saved: Saved) -> Result<Self, CoreError> {
        let state = ProfileState::load(&saved)?;
        let storage = TrackedStorage::from_entries(saved.mls);
        Ok(Self {
            state,
            provider: Provider::with_storage(storage),
            groups: HashMap::new(),
            call: None,
            signers: HashMap::new(),
            chats: groups::Chats::new(),
        })
    }

    /// Every record, for a full save (a new profile, tests).
    pub fn save(&self) -> Result<Saved, CoreError> {
        let mut saved = self.state.save()?;
        saved.mls = self
            .provider
            .storage()
            .entries()
            .map_err(|e| CoreError::State(e.to_string()))?;
        Ok(saved)
    }

    /// Whether anything changed since the last [`Engine::take_changes`].
    pub fn has_changes(&self) -> bool {
        self.state.has_changes() || self.provider.storage().has_changes()
    }

    /// What changed since the last call, to write to the vault in one
    /// transaction; the engine then considers it saved.
    pub fn take_changes(&mut self) -> Result<Changes, CoreError> {
        let mut changes = self.state.take_changes()?;
        changes.mls = self
            .provider
            .storage()
            .take_changes()
            .map_err(|e| CoreError::State(e.to_string()))?;
        Ok(changes)
    }

    /// This profile's relay.
    pub fn relay(&self) -> &str {
        &self.state.settings().relay
    }

    /// The access token for creating mailboxes on this profile's relay.
    pub fn relay_token(&self) -> Option<&str> {
        self.state.settings().relay_token.as_deref()
    }

    /// Sets the access token of a private relay.
    pub fn set_relay_token(&mut self, token: Option<String>) {
        self.state.settings_mut().relay_token = token;
    }

    /// All contacts.
    pub fn contacts(&self) -> Vec<ContactInfo> {
        self.state
            .contacts
            .iter()
            .map(|c| ContactInfo {
                id: c.id,
                alias: c.alias.clone(),
                state: c.stage.state(),
                compromised: c.compromised,
            })
            .collect()
    }

    /// Looks a contact up by alias.
    pub fn contact(&self, alias: &str) -> Option<ContactInfo> {
        self.state
            .contacts
            .iter()
            .find(|c| c.alias == alias)
            .map(|c| ContactInfo {
                id: c.id,
                alias: c.alias.clone(),
                state: c.stage.state(),
                compromised: c.compromised,
            })
    }

    /// Relay calls still to make, oldest first.
    pub fn outbox(&self) -> Vec<Action> {
        self.state.outbox.iter().map(|(_, a)| a.clone()).collect()
    }

    /// The oldest relay call still to make.
    pub fn outbox_first(&self) -> Option<(ActionId, Action)> {
        self.state.outbox.first().map(|(id, a)| (id, a.clone()))
    }

    /// Every queued relay call with its id, oldest first.
    pub fn outbox_ids(&self) -> Vec<(ActionId, &Action)> {
        self.state.outbox.iter().collect()
    }

    /// The id of the newest queued call.
    pub fn outbox_last(&self) -> Option<ActionId> {
        self.state.outbox.iter().last().map(|(id, _)| id)
    }

    /// Marks the oldest outbox action as done.
    pub fn outbox_done(&mut self) {
        if let Some((id, _)) = self.state.outbox.first() {
            self.state.outbox.remove(id);
        }
    }

    /// Marks the call `id` as done; `false` if it was not queued.
    pub fn outbox_remove(&mut self, id: ActionId) -> bool {
        self.state.outbox.remove(id)
    }

    /// Every mailbox this profile reads.
    pub fn inbound(&self) -> Vec<InboundMailbox> {
        let mut out = Vec::new();
        for c in &self.state.contacts {
            // Oldest first: a sync then reads what the contact sent before
            // a move ahead of what it sent after.
            for ib in c.moved.iter().rev().map(|m| &m.inbound).chain([&c.inbound]) {
                out.push(InboundMailbox {
                    contact: c.id,
                    relay: ib.relay.clone(),
                    mailbox: ib.mailbox,
                    recipient: ib.recipient.clone(),
                    cursor: ib.cursor,
                });
            }
        }
        out
    }

    fn alias_free(&self, alias: &str) -> Result<(), CoreError> {
        check_alias(alias)?;
        if self.state.contacts.len() >= MAX_CONTACTS {
            return Err(CoreError::TooManyContacts);
        }
        // A group's name too: `send` and `history` take either.
        if self.state.contacts.iter().any(|c| c.alias == alias)
            || self.state.groups.find(|g| g.name == alias).is_some()
        {
            return Err(CoreError::AliasTaken);
        }
        Ok(())
    }

    fn new_signer(&self) -> Result<SignatureKeyPair, CoreError> {
        let signer = SignatureKeyPair::new(CIPHERSUITE.signature_algorithm()).map_err(mls)?;
        signer.store(self.provider.storage()).map_err(mls)?;
        Ok(signer)
    }

    pub(crate) fn signer(&self, c: &Contact) -> Result<SignatureKeyPair, CoreError> {
        SignatureKeyPair::read(
            self.provider.storage(),
            &c.signer_public,
            CIPHERSUITE.signature_algorithm(),
        )
        .ok_or_else(|| CoreError::State("signing key missing".into()))
    }

    fn credential(signer: &SignatureKeyPair) -> CredentialWithKey {
        // No identity at all: the credential is only the per-contact key.
        CredentialWithKey {
            credential: BasicCredential::new(Vec::new()).into(),
            signature_key: signer.public().into(),
        }
    }

    pub(crate) fn new_inbound(&self, rng: &mut impl CryptoRngCore) -> (Inbound, KeyBytes) {
        let sender = KeyBytes::random(rng);
        (
            Inbound {
                relay: self.state.settings().relay.clone(),
                mailbox: MailboxId::random(rng),
                recipient: KeyBytes::random(rng),
                cursor: 0,
            },
            sender,
        )
    }

    /// Processes one payload fetched from `mailbox` with sequence number `seq`.
    pub fn receive(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        mailbox: MailboxId,
        seq: u64,
        payload: &[u8],
    ) -> Result<Event, CoreError> {
        let Some((idx, slot)) = self
            .state
            .contacts
            .iter()
            .enumerate()
            .find_map(|(i, c)| c.slot(&mailbox).map(|s| (i, s)))
        else {
            return Ok(Event::Duplicate);
        };
        let Some(cursor) = self.state.contacts[idx]
            .inbound_at(slot)
            .map(|ib| ib.cursor)
        else {
            return Ok(Event::Duplicate);
        };
        if seq <= cursor {
            // Seen before (a fetch retried after a crash): nothing changes,
            // nothing is written.
            return Ok(Event::Duplicate);
        }
        let alias = self.state.contacts[idx].alias.clone();
        if seq - cursor > MAX_SEQ_JUMP {
            return rejected(&alias, RejectReason::ImplausibleSequence);
        }
        let event = self.dispatch(now, rng, idx, slot, mailbox, payload)?;
        // Looked up again: taking the payload may have moved the mailbox
        // (a refresh due), and what arrived in the one just left proves
        // nothing about it.
        if !matches!(event, Event::Rejected { .. })
            && let Some(arrived) = self.state.contacts[idx].slot(&mailbox)
        {
            self.note_arrival(idx, arrived);
        }
        // Only what the contact really sent moves the cursor: a relay that
        // serves junk or a replay under a forged sequence number cannot
        // make this mailbox skip the messages after it. (The handshake or
        // a move may have given the contact another mailbox meanwhile.)
        if !matches!(event, Event::Rejected { .. } | Event::Ignored { .. })
            && let Some(now_slot) = self.state.contacts[idx].slot(&mailbox)
        {
            self.set_cursor(idx, now_slot, seq);
        }
        Ok(event)
    }

    fn dispatch(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        idx: usize,
        slot: Slot,
        mailbox: MailboxId,
        payload: &[u8],
    ) -> Result<Event, CoreError> {
        let alias = self.state.contacts[idx].alias.clone();
        let (kind, body, sealed) = match self.open_payload(idx, slot, mailbox, payload)? {
            Ok(v) => v,
            Err(reason) => return rejected(&alias, reason),
        };
        let body = &body[..];
        let state = self.state.contacts[idx].stage.state();
        let result = match (state, kind) {
            (ContactState::Invited, envelope::HELLO) => self.on_hello(now, rng, idx, body),
            (ContactState::Accepted, envelope::WELCOME) => self.on_welcome(now, idx, body),
            (ContactState::Established, envelope::MLS) => self.on_mls(now, rng, idx, body, sealed),
            (ContactState::Established, envelope::ALERT) => self.on_alert(now, idx, body),
            (ContactState::Established, envelope::HELLO) => {
                rejected(&alias, RejectReason::InviteUsed)
            }
            _ => rejected(&alias, RejectReason::UnexpectedForContact),
        };
        match result {
            // A broken saved state is ours to report; anything else came
            // from the payload and must never stop the other messages.
            Err(e @ CoreError::State(_)) => Err(e),
            Err(_) => rejected(&alias, RejectReason::Unprocessable),
            ok => ok,
        }
    }

    /// Opens a payload from our mailbox for contact `idx`: its kind and
    /// body, or why it is refused (the outer error: a broken saved state).
    fn open_payload(
        &mut self,
        idx: usize,
        slot: Slot,
        mailbox: MailboxId,
        payload: &[u8],
    ) -> Result<Result<Opened, RejectReason>, CoreError> {
        self.ensure_seal(idx)?;
        let c = &self.state.contacts[idx];
        let (keys, legacy) = match (&c.stage, slot) {
            (Stage::Invited(p), _) => (vec![crate::invite::invite_box_key(&p.secret)], true),
            (Stage::Accepted(p), _) => (vec![crate::invite::reply_box_key(&p.secret)], true),
            (Stage::Established(e), Slot::Current) => (e.seal_in.clone(), e.legacy_in),
            // Moves came after sealing: an earlier mailbox takes only
            // sealed payloads.
            (Stage::Established(_), Slot::Moved(i)) => (
                c.moved.get(i).map(|m| m.seal.clone()).unwrap_or_default(),
                false,
            ),
        };
        match mailbox_seal::open(&keys, &mailbox, payload) {
            Ok(o) if o.version != mailbox_seal::VERSION => Ok(Err(RejectReason::OtherVersion)),
            Ok(o) => {
                // The contact now seals: nothing unsealed is taken any more.
                if legacy && let Stage::Established(e) = &mut self.state.contacts.get_mut(idx).stage
                {
                    e.legacy_in = false;
                }
                Ok(Ok((o.kind, o.body, true)))
            }
            Err(mailbox_seal::OpenError::Malformed) => Ok(Err(RejectReason::MalformedPadding)),
            // What a release before sealing sent (or left on the relay).
            Err(mailbox_seal::OpenError::NotForThisMailbox) if legacy => {
                match padding::unpad(payload).map(<[u8]>::split_first) {
                    Ok(Some((&kind, body))) => Ok(Ok((kind, Zeroizing::new(body.to_vec()), false))),
                    Ok(None) => Ok(Err(RejectReason::Empty)),
                    Err(_) => Ok(Err(RejectReason::NotSealedForMailbox)),
                }
            }
            Err(mailbox_seal::OpenError::NotForThisMailbox) => {
                Ok(Err(RejectReason::NotSealedForMailbox))
            }
        }
    }

    /// Derives the mailbox seal keys of a conversation set up before
    /// payloads were sealed (from its MLS group, as a new one does); its
    /// contact's unsealed payloads are taken until a sealed one arrives.
    pub(crate) fn ensure_seal(&mut self, idx: usize) -> Result<(), CoreError> {
        let c = self.state.contacts[idx].clone();
        let Some(e) = c.established() else {
            return Ok(());
        };
        if e.seal_out.is_some() {
            return Ok(());
        }
        let (out_box, in_box) = (e.outbound.mailbox, c.inbound.mailbox);
        let (group, _, provider) = self.group_mut(&c)?;
        let out = mailbox_seal::export_key(group, provider, &out_box)?;
        let inbound = mailbox_seal::export_key(group, provider, &in_box)?;
        if let Stage::Established(e) = &mut self.state.contacts.get_mut(idx).stage {
            e.seal_out = Some(out);
            e.seal_in = vec![inbound];
            e.legacy_in = true;
        }
        Ok(())
    }

    /// Where to send to contact `id`, and the key sealing it there.
    pub(crate) fn outbound_seal(&mut self, id: u64) -> Result<(Address, KeyBytes), CoreError> {
        let idx = self
            .state
            .contacts
            .position(|c| c.id == id)
            .ok_or(CoreError::UnknownContact)?;
        self.ensure_seal(idx)?;
        let e = self.state.contacts[idx]
            .established()
            .ok_or(CoreError::NotEstablished)?;
        let seal = e
            .seal_out
            .clone()
            .ok_or_else(|| CoreError::State("mailbox seal key missing".into()))?;
        Ok((e.outbound.clone(), seal))
    }

    /// The conversation's MLS group and this side's signer, loaded once.
    pub(crate) fn group_mut(
        &mut self,
        c: &Contact,
    ) -> Result<(&mut MlsGroup, &SignatureKeyPair, &Provider), CoreError> {
        let gid = &c.established().ok_or(CoreError::NotEstablished)?.group_id;
        if !self.groups.contains_key(gid) {
            let mut group = MlsGroup::load(self.provider.storage(), &GroupId::from_slice(gid))
                .map_err(mls)?
                .ok_or_else(|| CoreError::State("conversation state missing".into()))?;
            // Groups made before epochs advanced keep no past epochs.
            let config = crate::pcs::join_config();
            if group.configuration() != &config {
                group
                    .set_configuration(self.provider.storage(), &config)
                    .map_err(mls)?;
            }
            self.groups.insert(gid.clone(), group);
        }
        if !self.signers.contains_key(&c.signer_public) {
            let signer = self.signer(c)?;
            self.signers.insert(c.signer_public.clone(), signer);
        }
        let missing = || CoreError::State("conversation state missing".into());
        let group = self.groups.get_mut(gid).ok_or_else(missing)?;
        let signer = self.signers.get(&c.signer_public).ok_or_else(missing)?;
        Ok((group, signer, &self.provider))
    }

    /// Forgets the loaded group of `c` (after a failed operation): the next
    /// use loads it from the store.
    pub(crate) fn evict_group(&mut self, c: &Contact) {
        if let Some(e) = c.established() {
            self.groups.remove(&e.group_id);
        }
    }
}
