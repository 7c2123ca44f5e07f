//! Moving a conversation's inbound mailbox, so that whoever holds an older
//! copy of this profile (a device taken over after a restore, an image of
//! the phone) can no longer fetch or delete what the contact sends.
//!
//! A relay authorises fetching and deleting a mailbox's messages by the
//! mailbox's recipient key. That key never changes on its own, so a copy
//! of the profile keeps it: after the MLS keys are refreshed such a copy
//! reads nothing, but it can still fetch and acknowledge (delete) every
//! new message before the real device sees it. A move replaces the key:
//!
//! 1. This side makes a new mailbox on its relay (new id, new recipient
//!    key, new sender key) and tells the contact inside the conversation
//!    (an MLS application message: the address and its sender key). The
//!    new recipient key never leaves this device.
//! 2. The contact sends there from the message's processing on; what it
//!    queued before still goes to the old mailbox (its outbox is sent in
//!    order), which this side keeps reading with the old mailbox's seal
//!    keys.
//! 3. The first payload from the contact in the new mailbox proves the
//!    switch: once a sync has then read the old mailbox to its end, it is
//!    deleted at the relay.
//!
//! The relay sees a mailbox created and, later, one deleted. It already
//! sees every mailbox of a profile fetched in one request per sync, so the
//! pair adds nothing about who talks to whom. A move announced to a contact
//! reported compromised is ignored there (as every control message from
//! such a contact is), and a move can only stay on the contact's relay: a
//! contact cannot make this device connect anywhere new.
//!
//! Not moved: a conversation set up before payloads were sealed (its
//! contact may run a release that cannot follow), and one that already
//! reads [`MAX_MOVED`] earlier mailboxes (its contact has not synced
//! since; the next restore moves it). A contact on a release before moves
//! reports the announcement as malformed and keeps the old mailbox, which
//! this side then keeps reading.

use rand_core::CryptoRngCore;

use crate::engine::{
    Action, Contact, CoreError, Engine, Event, Inbound, MovedFrom, Stage, rejected,
};
use crate::envelope::{Address, Body};
use crate::mailbox_seal;
use crate::reject::RejectReason;
use crate::secret::KeyBytes;

/// Earlier mailboxes a conversation keeps reading at most; no move is
/// made beyond that.
pub const MAX_MOVED: usize = 3;

/// A key refresh moves the mailbox along if the last move is this old.
pub const MOVE_EVERY_SECS: u64 = 24 * 3600;

/// Which of a contact's inbound mailboxes a payload arrived in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The one the contact was last told about.
    Current,
    /// An earlier one, by index in [`Contact::moved`].
    Moved(usize),
}

impl Contact {
    /// Which inbound mailbox of this contact `mailbox` is.
    pub(crate) fn slot(&self, mailbox: &ferry_proto::MailboxId) -> Option<Slot> {
        if self.inbound.mailbox == *mailbox {
            return Some(Slot::Current);
        }
        self.moved
            .iter()
            .position(|m| m.inbound.mailbox == *mailbox)
            .map(Slot::Moved)
    }

    /// The inbound mailbox in `slot`.
    pub(crate) fn inbound_at(&self, slot: Slot) -> Option<&Inbound> {
        match slot {
            Slot::Current => Some(&self.inbound),
            Slot::Moved(i) => self.moved.get(i).map(|m| &m.inbound),
        }
    }
}

impl Engine {
    /// Moves the inbound mailbox of every set-up conversation (after a
    /// restore, so the device it came from can no longer fetch or delete
    /// what contacts send). Returns how many moves were queued; a
    /// conversation whose state cannot be used now keeps its mailbox.
    pub fn move_mailboxes(&mut self, now: u64, rng: &mut impl CryptoRngCore) -> usize {
        let mut moved = 0;
        for idx in 0..self.state.contacts.len() {
            if let Ok(true) = self.move_mailbox(now, rng, idx) {
                moved += 1;
            }
        }
        moved
    }

    /// With a key refresh: moves conversation `idx`'s inbound mailbox if
    /// the last move is a day old and the contact has switched to it, so a
    /// recipient key taken out of a copy of this profile stops working
    /// within about a day. Returns whether it moved.
    pub(crate) fn move_if_due(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        idx: usize,
    ) -> Result<bool, CoreError> {
        let c = &self.state.contacts[idx];
        if now.saturating_sub(c.moved_at) < MOVE_EVERY_SECS || c.moved.iter().any(|m| !m.switched) {
            return Ok(false);
        }
        self.move_mailbox(now, rng, idx)
    }

    /// Moves conversation `idx`'s inbound mailbox; `false` if it is not
    /// set up or already has as many earlier mailboxes as are kept.
    fn move_mailbox(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        idx: usize,
    ) -> Result<bool, CoreError> {
        let c = self.state.contacts[idx].clone();
        let Some(e) = c.established() else {
            return Ok(false);
        };
        if e.legacy_in || c.moved.len() >= MAX_MOVED {
            return Ok(false);
        }
        self.ensure_seal(idx)?;
        let before = self.state.contacts[idx].clone();
        let (inbound, sender) = self.new_inbound(rng);
        let (group, _, provider) = self.group_mut(&before)?;
        let seal = mailbox_seal::export_key(group, provider, &inbound.mailbox)?;
        // The new mailbox is this side's from here on, so that a refresh
        // made while the move is queued rotates its keys too.
        let contact = self.state.contacts.get_mut(idx);
        contact.moved_at = now;
        let old = std::mem::replace(&mut contact.inbound, inbound.clone());
        if let Stage::Established(e) = &mut contact.stage {
            let old_seal = std::mem::replace(&mut e.seal_in, vec![seal]);
            contact.moved.insert(
                0,
                MovedFrom {
                    inbound: old,
                    seal: old_seal,
                    switched: false,
                    announce: None,
                },
            );
        }
        let c = contact.clone();
        // Created before the contact can hear of it (the outbox goes in
        // order).
        self.state.outbox.push(Action::CreateMailbox {
            relay: inbound.relay.clone(),
            mailbox: inbound.mailbox,
            recipient: inbound.recipient.clone(),
            sender_public: sender.mailbox_key().public(),
        });
        let created = self.outbox_last();
        let body = Body::Mailbox {
            relay: inbound.relay.clone(),
            mailbox: inbound.mailbox,
            sender,
        };
        let before_announce = self.outbox_last();
        if let Err(e) = self.queue(now, rng, &c, body) {
            if let Some(id) = created {
                self.state.outbox.remove(id);
            }
            *self.state.contacts.get_mut(idx) = before;
            return Err(e);
        }
        // The announcement is the first send queued after the creation (a
        // refresh it triggered comes after it).
        let announce = self
            .outbox_ids()
            .into_iter()
            .find(|(id, a)| Some(*id) > before_announce && matches!(a, Action::Send { .. }))
            .map(|(id, _)| id.0);
        if let Some(m) = self.state.contacts.get_mut(idx).moved.first_mut() {
            m.announce = announce;
        }
        Ok(true)
    }

    /// The relay refused for good to create `mailbox` (a move's new
    /// mailbox): the move is undone, and its announcement withdrawn if it
    /// has not gone yet. Returns whether a move was undone.
    pub fn move_refused(&mut self, mailbox: ferry_proto::MailboxId) -> bool {
        let Some(idx) = self
            .state
            .contacts
            .position(|c| c.inbound.mailbox == mailbox && !c.moved.is_empty())
        else {
            return false;
        };
        let contact = self.state.contacts.get_mut(idx);
        let prev = contact.moved.remove(0);
        contact.inbound = prev.inbound;
        if let Stage::Established(e) = &mut contact.stage {
            e.seal_in = prev.seal;
        }
        if let Some(id) = prev.announce {
            self.state.outbox.remove(crate::state::ActionId(id));
        }
        true
    }

    /// The relay no longer has `mailbox`, one of this profile's inbound
    /// mailboxes. An earlier one (a move's) is simply forgotten; for the
    /// current one of a set-up conversation, the contact's alias is
    /// returned: someone holding its key deleted it, most likely another
    /// device that restored this account, so this copy is out of date.
    pub fn mailbox_lost(&mut self, mailbox: ferry_proto::MailboxId) -> Option<String> {
        let idx = self
            .state
            .contacts
            .position(|c| c.slot(&mailbox).is_some())?;
        match self.state.contacts[idx].slot(&mailbox)? {
            Slot::Moved(i) => {
                self.state.contacts.get_mut(idx).moved.remove(i);
                None
            }
            Slot::Current => {
                let c = &self.state.contacts[idx];
                c.established().map(|_| c.alias.clone())
            }
        }
    }

    /// Whether `mailbox` is the newest mailbox of a contact that may still
    /// send to an earlier one: what arrives there must wait until the
    /// earlier ones are read (a sync does that in order).
    pub fn waits_for_older(&self, mailbox: &ferry_proto::MailboxId) -> bool {
        self.state
            .contacts
            .iter()
            .any(|c| c.inbound.mailbox == *mailbox && c.moved.iter().any(|m| !m.switched))
    }

    /// The contact moved its mailbox for us: what we send goes there from
    /// now on.
    pub(crate) fn on_mailbox(
        &mut self,
        idx: usize,
        c: &Contact,
        relay: String,
        mailbox: ferry_proto::MailboxId,
        sender: KeyBytes,
    ) -> Result<Event, CoreError> {
        let alias = c.alias.clone();
        let Some(e) = c.established() else {
            return rejected(&alias, RejectReason::UnexpectedForContact);
        };
        if relay != e.outbound.relay {
            return rejected(&alias, RejectReason::MailboxElsewhere);
        }
        if mailbox == e.outbound.mailbox {
            return Ok(Event::Ignored { alias });
        }
        let (group, _, provider) = self.group_mut(c)?;
        let seal = mailbox_seal::export_key(group, provider, &mailbox)?;
        let contact = self.state.contacts.get_mut(idx);
        if let Stage::Established(e) = &mut contact.stage {
            e.outbound = Address {
                relay,
                mailbox,
                sender,
            };
            e.seal_out = Some(seal);
        }
        // The canary's alerts were addressed to the old mailbox.
        if let Some(canary) = &mut contact.canary {
            canary.stale = true;
        }
        Ok(Event::Moved { alias })
    }

    /// Something from the contact arrived in `slot`: every older mailbox
    /// will get nothing more.
    pub(crate) fn note_arrival(&mut self, idx: usize, slot: Slot) {
        let older = match slot {
            Slot::Current => 0,
            Slot::Moved(i) => i + 1,
        };
        if self.state.contacts[idx].moved.len() <= older {
            return;
        }
        for m in self
            .state
            .contacts
            .get_mut(idx)
            .moved
            .iter_mut()
            .skip(older)
        {
            m.switched = true;
        }
    }

    /// Sets the cursor of the inbound mailbox in `slot` of contact `idx`.
    pub(crate) fn set_cursor(&mut self, idx: usize, slot: Slot, seq: u64) {
        let c = self.state.contacts.get_mut(idx);
        match slot {
            Slot::Current => c.inbound.cursor = seq,
            Slot::Moved(i) => {
                if let Some(m) = c.moved.get_mut(i) {
                    m.inbound.cursor = seq;
                }
            }
        }
    }

    /// Whether a contact has switched away from an earlier mailbox, so
    /// [`Engine::retire_moved`] has something to do.
    pub fn has_mailboxes_to_retire(&self) -> bool {
        self.state
            .contacts
            .iter()
            .any(|c| c.moved.iter().any(|m| m.switched))
    }

    /// After a sync read every mailbox to its end: deletes the earlier
    /// mailboxes the contacts have left (queued relay calls), except those
    /// in `keep` (something there is still unacknowledged). Returns how
    /// many.
    pub fn retire_moved(&mut self, keep: &[ferry_proto::MailboxId]) -> usize {
        let mut retired = Vec::new();
        let goes = |m: &MovedFrom| m.switched && !keep.contains(&m.inbound.mailbox);
        for idx in 0..self.state.contacts.len() {
            if !self.state.contacts[idx].moved.iter().any(goes) {
                continue;
            }
            self.state.contacts.get_mut(idx).moved.retain(|m| {
                if goes(m) {
                    retired.push(m.inbound.clone());
                }
                !goes(m)
            });
        }
        let n = retired.len();
        for ib in retired {
            self.state.outbox.push(Action::DeleteMailbox {
                relay: ib.relay,
                mailbox: ib.mailbox,
                recipient: ib.recipient,
            });
        }
        n
    }

    /// After an epoch change: the seal keys of the earlier mailboxes
    /// rotate too (the contact may send there in the new epoch until it
    /// has switched).
    pub(crate) fn rotate_moved(&mut self, idx: usize, keep: usize) -> Result<(), CoreError> {
        let c = self.state.contacts[idx].clone();
        if c.moved.is_empty() {
            return Ok(());
        }
        let (group, _, provider) = self.group_mut(&c)?;
        let mut keys = Vec::with_capacity(c.moved.len());
        for m in &c.moved {
            keys.push(mailbox_seal::export_key(
                group,
                provider,
                &m.inbound.mailbox,
            )?);
        }
        for (m, key) in self.state.contacts.get_mut(idx).moved.iter_mut().zip(keys) {
            m.seal.insert(0, key);
            m.seal.truncate(keep);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
