//! Post-compromise security: both members' MLS leaf keys are refreshed at
//! least every [`UPDATE_EVERY_MSGS`] messages or [`UPDATE_EVERY_SECS`] in a
//! conversation, so a copy of one side's keys stops reading it.
//!
//! The inviter stays the only committer: when due, it commits an update of
//! its own leaf; the invitee instead proposes an update of its leaf, which
//! the inviter commits as soon as it arrives (with a fresh path of its own).
//! Only after the invitee's update is committed is the invitee's old leaf
//! key useless; only after any commit by the inviter is the inviter's.
//!
//! Every epoch change rotates the keys exported from the group: the mailbox
//! seal keys (older ones kept to open what was sent before) and the alert
//! key (older ones kept to verify alerts and canaries sealed before; the
//! canary is deposited again).
//!
//! Forks: the invitee remembers the hash of the commit it merged in each of
//! the last epochs. A different commit for an epoch already passed (as a
//! stale copy of the inviter's phone would send), or any commit from the
//! invitee (who never commits), quarantines the contact instead of being
//! followed.

use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::*;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::engine::{
    Action, AlertReason, Compromise, CoreError, Engine, Event, Stage, mls, rejected,
};
use crate::envelope;
use crate::mailbox_seal;
use crate::reject::RejectReason;
use crate::secret::KeyBytes;

/// A side refreshes its leaf after this many messages (both ways).
pub const UPDATE_EVERY_MSGS: u32 = 50;
/// ... or this long after its last refresh, whichever comes first.
pub const UPDATE_EVERY_SECS: u64 = 24 * 3600;
/// Past epochs whose messages still decrypt (sent before the sender saw a
/// commit). One is enough: the inviter commits again only once the invitee
/// wrote in the current epoch, and the invitee reads the inviter's
/// messages in order, commit included. It is also how long a stolen copy
/// can still write messages that open after a refresh.
pub(crate) const PAST_EPOCHS: usize = 1;
/// Older keys kept per contact (seal keys, alert keys), and commit hashes
/// remembered for fork detection.
const KEEP: usize = 4;

/// Per-conversation bookkeeping, saved with the contact.
#[derive(Clone, Default, Serialize, Deserialize)]
pub(crate) struct Pcs {
    /// Messages (both ways) since this side's leaf was refreshed.
    msgs: u32,
    /// When this side's leaf was last refreshed (0: never, so due).
    since: u64,
    /// The epoch in which this side (the invitee) last proposed an update.
    proposed: Option<u64>,
    /// The commits merged here: (epoch they were made in, SHA-256).
    commits: Vec<(u64, [u8; 32])>,
    /// The update proposals committed here (inviter): (epoch, SHA-256).
    #[serde(default)]
    proposals: Vec<(u64, [u8; 32])>,
    /// The newest epoch a message from the contact was made in: the
    /// inviter commits again only once the contact caught up with its last
    /// commit, so the contact is never more than one epoch behind.
    #[serde(default)]
    peer_epoch: u64,
    /// This side's update proposal awaiting the inviter's commit, kept out
    /// of the group's proposal store (openmls sends nothing while a
    /// proposal is pending) and put back only to process a commit.
    #[serde(default)]
    pending: Option<String>,
}

impl Pcs {
    pub(crate) fn new(now: u64) -> Self {
        Self {
            since: now,
            ..Self::default()
        }
    }

    /// The inviter's bookkeeping for a conversation the contact joins (by
    /// the welcome) at `epoch`: they are in step from the start.
    pub(crate) fn joined_at(now: u64, epoch: u64) -> Self {
        Self {
            since: now,
            peer_epoch: epoch,
            ..Self::default()
        }
    }

    fn due(&self, now: u64) -> bool {
        self.msgs >= UPDATE_EVERY_MSGS || now.saturating_sub(self.since) >= UPDATE_EVERY_SECS
    }

    fn refreshed(&mut self, now: u64) {
        self.msgs = 0;
        self.since = now;
        self.proposed = None;
    }

    fn remember(&mut self, epoch: u64, hash: [u8; 32]) {
        record(&mut self.commits, epoch, hash);
    }
}

/// Adds the hash of what was taken in `epoch` to a list of the last ones.
fn record(list: &mut Vec<(u64, [u8; 32])>, epoch: u64, hash: [u8; 32]) {
    list.insert(0, (epoch, hash));
    list.truncate(KEEP);
}

/// The hash recorded for `epoch`, if it is still remembered.
fn recorded(list: &[(u64, [u8; 32])], epoch: u64) -> Option<[u8; 32]> {
    list.iter().find(|(e, _)| *e == epoch).map(|(_, h)| *h)
}

/// How every conversation's group runs.
pub(crate) fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(true)
        .max_past_epochs(PAST_EPOCHS)
        .build()
}

fn hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl Engine {
    fn pcs_mut(&mut self, idx: usize) -> Option<&mut Pcs> {
        match &mut self.state.contacts.get_mut(idx).stage {
            Stage::Established(e) => Some(&mut e.pcs),
            _ => None,
        }
    }

    fn pcs(&self, idx: usize) -> Option<&Pcs> {
        self.state.contacts[idx].established().map(|e| &e.pcs)
    }

    /// Counts one message of conversation `idx` (sent or received) and, when
    /// due, refreshes this side's leaf: a commit (inviter) or a proposal
    /// (invitee, once per epoch).
    pub(crate) fn count_message(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        idx: usize,
    ) -> Result<(), CoreError> {
        if let Some(p) = self.pcs_mut(idx) {
            p.msgs = p.msgs.saturating_add(1);
        }
        self.refresh_if_due(now, rng, idx, true).map(|_| ())
    }

    /// Refreshes this side's leaf in every conversation where it is due by
    /// time, messages or not (the long-running session calls it): returns
    /// how many refreshes were queued.
    pub fn refresh_due(&mut self, now: u64, rng: &mut impl CryptoRngCore) -> usize {
        self.refresh_every(now, rng, true)
    }

    fn refresh_every(&mut self, now: u64, rng: &mut impl CryptoRngCore, moves: bool) -> usize {
        let mut queued = 0;
        for idx in 0..self.state.contacts.len() {
            // One conversation's broken state does not hold back the others.
            if let Ok(true) = self.refresh_if_due(now, rng, idx, moves) {
                queued += 1;
            }
        }
        queued
    }

    /// Makes every conversation's refresh due now (after a restore, above
    /// all one that took the account over from another device: that
    /// device's copy of the keys stops working once both sides have
    /// updated) and queues those that can go at once; the others go as soon
    /// as the contact has caught up with this side's last commit. Returns
    /// how many refreshes were queued now.
    pub fn refresh_all(&mut self, now: u64, rng: &mut impl CryptoRngCore) -> usize {
        for idx in 0..self.state.contacts.len() {
            if let Some(p) = self.pcs_mut(idx) {
                p.since = 0;
            }
        }
        // No mailbox moves along here: the restore moves every one itself.
        self.refresh_every(now, rng, false)
    }

    /// Refreshes this side's leaf in conversation `idx` if due; returns
    /// whether a refresh was queued. The inbound mailbox moves along at
    /// most once a day (see [`crate::relocate`]).
    fn refresh_if_due(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        idx: usize,
        moves: bool,
    ) -> Result<bool, CoreError> {
        let Some(p) = self.pcs(idx) else {
            return Ok(false);
        };
        if !p.due(now) {
            return Ok(false);
        }
        let (proposed, peer_epoch) = (p.proposed, p.peer_epoch);
        let c = self.state.contacts[idx].clone();
        let (group, _, _) = self.group_mut(&c)?;
        let epoch = group.epoch().as_u64();
        if group.own_leaf_index().u32() == 0 {
            if peer_epoch < epoch {
                // The contact has not seen the last commit yet.
                return Ok(false);
            }
            self.commit_update(now, rng, idx)?;
        } else if proposed != Some(epoch) {
            self.propose_update(rng, idx, epoch)?;
        } else {
            return Ok(false);
        }
        // A move that cannot be made now is made at a later refresh.
        if moves {
            let _ = self.move_if_due(now, rng, idx);
        }
        Ok(true)
    }

    /// Whether the contact has already moved past `epoch`: it sent
    /// something made in a later one, or a commit out of it. Its mailbox
    /// delivers in the order it sent, so what arrives from such an epoch
    /// now was not made by the contact's phone but by an out-of-date copy
    /// of it (still holding that epoch's keys).
    pub(crate) fn left_epoch(&self, idx: usize, epoch: u64) -> bool {
        self.pcs(idx).is_some_and(|p| epoch < p.peer_epoch)
    }

    /// Notes that the contact sent something made in `epoch`.
    pub(crate) fn saw_epoch(&mut self, idx: usize, epoch: u64) {
        if let Some(p) = self.pcs_mut(idx)
            && epoch > p.peer_epoch
        {
            p.peer_epoch = epoch;
        }
    }

    /// Seals an MLS message for the contact's mailbox and queues it (with
    /// the seal key of the epoch the contact is in); returns its bytes.
    pub(crate) fn queue_mls(
        &mut self,
        rng: &mut impl CryptoRngCore,
        idx: usize,
        msg: &MlsMessageOut,
    ) -> Result<Vec<u8>, CoreError> {
        let wire = Zeroizing::new(msg.tls_serialize_detached().map_err(mls)?);
        let id = self.state.contacts[idx].id;
        let (out, seal) = self.outbound_seal(id)?;
        let payload = mailbox_seal::seal(&seal, &out.mailbox, envelope::MLS, &wire, rng)
            .ok_or(CoreError::TooLong)?;
        self.state.outbox.push(Action::Send {
            relay: out.relay,
            mailbox: out.mailbox,
            sender: out.sender,
            payload,
        });
        Ok(wire.to_vec())
    }

    fn propose_update(
        &mut self,
        rng: &mut impl CryptoRngCore,
        idx: usize,
        epoch: u64,
    ) -> Result<(), CoreError> {
        let c = self.state.contacts[idx].clone();
        let (group, signer, provider) = self.group_mut(&c)?;
        let (msg, _) =
            match group.propose_self_update(provider, signer, LeafNodeParameters::default()) {
                Ok(v) => v,
                Err(e) => {
                    self.evict_group(&c);
                    return Err(mls(e));
                }
            };
        let queued: Vec<QueuedProposal> = group.pending_proposals().cloned().collect();
        group
            .clear_pending_proposals(provider.storage())
            .map_err(mls)?;
        let pending =
            serde_json::to_string(&queued).map_err(|e| CoreError::State(e.to_string()))?;
        self.queue_mls(rng, idx, &msg)?;
        if let Some(p) = self.pcs_mut(idx) {
            p.proposed = Some(epoch);
            p.pending = Some(pending);
        }
        Ok(())
    }

    /// The inviter commits: its own fresh leaf, and the invitee's pending
    /// update if one arrived.
    fn commit_update(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        idx: usize,
    ) -> Result<(), CoreError> {
        let c = self.state.contacts[idx].clone();
        let (group, signer, provider) = self.group_mut(&c)?;
        let epoch = group.epoch().as_u64();
        let bundle = match group.self_update(provider, signer, LeafNodeParameters::default()) {
            Ok(b) => b,
            Err(e) => {
                self.evict_group(&c);
                return Err(mls(e));
            }
        };
        let commit = bundle.commit().clone();
        // Queued first, sealed for the epoch the invitee is still in; the
        // group moves on only once the commit is on its way, and a commit
        // that cannot be queued is dropped, so the two never part.
        let wire = match self.queue_mls(rng, idx, &commit) {
            Ok(w) => w,
            Err(e) => {
                let (group, _, provider) = self.group_mut(&c)?;
                let _ = group.clear_pending_commit(provider.storage());
                self.evict_group(&c);
                return Err(e);
            }
        };
        let (group, _, provider) = self.group_mut(&c)?;
        if let Err(e) = group.merge_pending_commit(provider) {
            if let Some(id) = self.state.outbox.iter().last().map(|(id, _)| id) {
                self.state.outbox.remove(id);
            }
            self.evict_group(&c);
            return Err(mls(e));
        }
        self.rotate_keys(idx)?;
        if let Some(p) = self.pcs_mut(idx) {
            p.refreshed(now);
            p.remember(epoch, hash(&wire));
        }
        Ok(())
    }

    /// After an epoch change: the keys exported from the group rotate.
    fn rotate_keys(&mut self, idx: usize) -> Result<(), CoreError> {
        let c = self.state.contacts[idx].clone();
        let Some(e) = c.established() else {
            return Ok(());
        };
        let (out_box, in_box) = (e.outbound.mailbox, c.inbound.mailbox);
        let (group, _, provider) = self.group_mut(&c)?;
        let alert = crate::alert::export_key(group, provider)?;
        let seal_out = mailbox_seal::export_key(group, provider, &out_box)?;
        let seal_in = mailbox_seal::export_key(group, provider, &in_box)?;
        let contact = self.state.contacts.get_mut(idx);
        if let Stage::Established(e) = &mut contact.stage {
            if let Some(old) = e.alert_key.replace(alert) {
                e.alert_prev.insert(0, old);
                e.alert_prev.truncate(KEEP);
            }
            e.seal_out = Some(seal_out);
            e.seal_in.insert(0, seal_in);
            e.seal_in.truncate(KEEP + 1);
        }
        // The canary's alerts were sealed with the old keys.
        if let Some(canary) = &mut contact.canary {
            canary.stale = true;
        }
        self.rotate_moved(idx, KEEP + 1)
    }

    /// An update proposal from the invitee: committed at once.
    pub(crate) fn on_proposal(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        idx: usize,
        proposal: QueuedProposal,
        epoch: u64,
        wire: &[u8],
    ) -> Result<Event, CoreError> {
        let c = self.state.contacts[idx].clone();
        let alias = c.alias.clone();
        let (group, _, provider) = self.group_mut(&c)?;
        let from_other =
            matches!(proposal.sender(), Sender::Member(i) if *i != group.own_leaf_index());
        if group.own_leaf_index().u32() != 0
            || !from_other
            || !matches!(proposal.proposal(), Proposal::Update(_))
        {
            return rejected(&alias, RejectReason::UnexpectedHandshake);
        }
        group
            .store_pending_proposal(provider.storage(), proposal)
            .map_err(mls)?;
        self.commit_update(now, rng, idx)?;
        // This side refreshed too: its mailbox moves along when due.
        let _ = self.move_if_due(now, rng, idx);
        if let Some(p) = self.pcs_mut(idx) {
            record(&mut p.proposals, epoch, hash(wire));
        }
        Ok(Event::Rekeyed { alias })
    }

    /// A handshake message made in an epoch already passed. The invitee
    /// proposes once per epoch: a second, different proposal for an epoch
    /// whose proposal was committed (a stale copy of the invitee's phone
    /// that proposed first, or the phone after it) is a fork.
    pub(crate) fn on_stale_handshake(
        &mut self,
        now: u64,
        idx: usize,
        epoch: u64,
        proposal: bool,
        wire: &[u8],
    ) -> Event {
        let seen = self.pcs(idx).and_then(|p| recorded(&p.proposals, epoch));
        match seen {
            Some(h) if proposal && h != hash(wire) => self.forked(now, idx),
            // Overtaken by a commit, or a replay: the contact proposes again.
            _ => Event::Ignored {
                alias: self.state.contacts[idx].alias.clone(),
            },
        }
    }

    /// Before processing a commit made in `epoch`: `Some` event if it is a
    /// replay (ignored) or a fork (the contact is quarantined).
    pub(crate) fn check_fork(
        &mut self,
        now: u64,
        idx: usize,
        epoch: u64,
        wire: &[u8],
    ) -> Result<Option<Event>, CoreError> {
        let c = self.state.contacts[idx].clone();
        let (group, _, _) = self.group_mut(&c)?;
        let current = group.epoch().as_u64();
        if group.own_leaf_index().u32() == 0 {
            // The invitee never commits.
            return Ok(Some(self.forked(now, idx)));
        }
        if epoch >= current {
            return Ok(None);
        }
        let seen = self.pcs(idx).and_then(|p| recorded(&p.commits, epoch));
        Ok(Some(match seen {
            Some(h) if h == hash(wire) => Event::Ignored { alias: c.alias },
            _ => self.forked(now, idx),
        }))
    }

    /// Puts this side's outstanding proposal back in the group's store, for
    /// the commit about to be processed.
    pub(crate) fn restore_proposal(&mut self, idx: usize) -> Result<(), CoreError> {
        let Some(pending) = self.pcs(idx).and_then(|p| p.pending.clone()) else {
            return Ok(());
        };
        let queued: Vec<QueuedProposal> =
            serde_json::from_str(&pending).map_err(|e| CoreError::State(e.to_string()))?;
        let c = self.state.contacts[idx].clone();
        let (group, _, provider) = self.group_mut(&c)?;
        for q in queued {
            group
                .store_pending_proposal(provider.storage(), q)
                .map_err(mls)?;
        }
        Ok(())
    }

    /// Takes it out again (the commit did not merge).
    pub(crate) fn shelve_proposal(&mut self, idx: usize) -> Result<(), CoreError> {
        let c = self.state.contacts[idx].clone();
        let (group, _, provider) = self.group_mut(&c)?;
        group
            .clear_pending_proposals(provider.storage())
            .map_err(mls)
    }

    /// The contact's history split in two: quarantined, the user warned.
    fn forked(&mut self, now: u64, idx: usize) -> Event {
        let contact = self.state.contacts.get_mut(idx);
        if contact.compromised.is_none() {
            contact.compromised = Some(Compromise {
                reason: AlertReason::Fork,
                at: now,
            });
        }
        Event::Compromised {
            alias: contact.alias.clone(),
            reason: AlertReason::Fork,
        }
    }

    /// A commit from the inviter: merged if it only updates leaves.
    pub(crate) fn on_commit(
        &mut self,
        now: u64,
        idx: usize,
        staged: StagedCommit,
        epoch: u64,
        wire: &[u8],
    ) -> Result<Event, CoreError> {
        let c = self.state.contacts[idx].clone();
        let alias = c.alias.clone();
        let (group, _, provider) = self.group_mut(&c)?;
        let me = group.own_leaf_index();
        // Nobody is ever added to or removed from a conversation.
        let only_updates = staged
            .queued_proposals()
            .all(|q| matches!(q.proposal(), Proposal::Update(_)));
        if !only_updates || staged.self_removed() {
            self.shelve_proposal(idx)?;
            self.evict_group(&c);
            return rejected(&alias, RejectReason::UnexpectedHandshake);
        }
        let mine = staged
            .update_proposals()
            .any(|u| matches!(u.sender(), Sender::Member(i) if *i == me));
        if let Err(e) = group.merge_staged_commit(provider, staged) {
            self.shelve_proposal(idx)?;
            self.evict_group(&c);
            return Err(mls(e));
        }
        self.rotate_keys(idx)?;
        // The contact is in the new epoch from its commit on.
        self.saw_epoch(idx, epoch + 1);
        if let Some(p) = self.pcs_mut(idx) {
            p.remember(epoch, hash(wire));
            p.pending = None;
            if mine {
                p.refreshed(now);
            } else {
                p.proposed = None;
            }
        }
        Ok(Event::Rekeyed { alias })
    }

    /// The alert keys a contact's alert may be sealed with, newest first.
    pub(crate) fn alert_keys(&self, idx: usize) -> Vec<KeyBytes> {
        self.state.contacts[idx]
            .established()
            .map(|e| {
                e.alert_key
                    .iter()
                    .chain(e.alert_prev.iter())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
