//! Messages inside an established conversation: text (optionally view-once),
//! the agreed disappearing-message timer, and delete-for-both.
//!
//! Every message carries the timer in force when it was sent; the receiver
//! destroys it that long after it arrived (its own clock), the sender that
//! long after sending. A timer change is itself a message, so both sides
//! always apply the same timer.

use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::*;
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::attachment::AttachmentRef;
use crate::engine::{
    Contact, CoreError, Direction, Engine, Event, HistoryEntry, mls, random_id, rejected,
};
use crate::envelope::{AppMessage, Body};
use crate::reject::RejectReason;

/// Longest text message, in bytes.
pub const MAX_TEXT: usize = 16 * 1024;

impl Engine {
    pub(crate) fn established(&self, alias: &str) -> Result<Contact, CoreError> {
        let c = self
            .state
            .contacts
            .iter()
            .find(|c| c.alias == alias)
            .cloned()
            .ok_or(CoreError::UnknownContact)?;
        if c.established().is_none() {
            return Err(CoreError::NotEstablished);
        }
        Ok(c)
    }

    /// Encrypts `body` for the contact and queues it.
    pub(crate) fn queue(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        c: &Contact,
        body: Body,
    ) -> Result<String, CoreError> {
        let idx = self
            .state
            .contacts
            .position(|x| x.id == c.id)
            .ok_or(CoreError::UnknownContact)?;
        let id = random_id(rng);
        let app = AppMessage {
            id: id.to_vec(),
            sent_at: now,
            expire_after: c.timer,
            body,
        };
        let bytes = crate::wire::encode(&app).map_err(|e| CoreError::State(e.to_string()))?;
        let (group, signer, provider) = self.group_mut(c)?;
        let mls_msg = match group.create_message(provider, signer, &bytes) {
            Ok(m) => m,
            Err(e) => {
                self.evict_group(c);
                return Err(mls(e));
            }
        };
        self.queue_mls(rng, idx, &mls_msg)?;
        // Refreshed at the next message if it cannot be now.
        let _ = self.count_message(now, rng, idx);
        Ok(ferry_proto::b64::encode(&id))
    }

    /// Encrypts a text for `alias` and queues it; returns the contact id and
    /// the history entry (a view-once message is not kept by its sender).
    pub fn send_text(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        alias: &str,
        text: &str,
        view_once: bool,
    ) -> Result<(u64, HistoryEntry), CoreError> {
        self.send_text_to(now, rng, alias, text, view_once, false)
    }

    /// [`Engine::send_text`], with `force` to send to a compromised contact.
    pub fn send_text_to(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        alias: &str,
        text: &str,
        view_once: bool,
        force: bool,
    ) -> Result<(u64, HistoryEntry), CoreError> {
        if text.len() > MAX_TEXT {
            return Err(CoreError::TooLong);
        }
        self.send_content(now, rng, alias, text.to_owned(), None, view_once, force)
    }

    /// Queues the message for an uploaded attachment; returns the contact id
    /// and the history entry (not kept by the sender when view-once).
    pub fn send_attachment(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        alias: &str,
        attachment: AttachmentRef,
        view_once: bool,
        force: bool,
    ) -> Result<(u64, HistoryEntry), CoreError> {
        self.send_content(
            now,
            rng,
            alias,
            String::new(),
            Some(attachment),
            view_once,
            force,
        )
    }

    /// Queues a text or an attachment and builds its outgoing history entry.
    #[allow(clippy::too_many_arguments)]
    fn send_content(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        alias: &str,
        text: String,
        attachment: Option<AttachmentRef>,
        view_once: bool,
        force: bool,
    ) -> Result<(u64, HistoryEntry), CoreError> {
        let c = self.established(alias)?;
        if c.compromised.is_some() && !force {
            return Err(CoreError::Compromised);
        }
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
        let id = self.queue(now, rng, &c, body)?;
        Ok((
            c.id,
            HistoryEntry {
                id,
                direction: Direction::Out,
                text,
                sent_at: now,
                expires_at: c.timer.map(|t| now.saturating_add(t)),
                view_once,
                flagged: false,
                attachment: attachment.map(Box::new),
                call: None,
                from: None,
            },
        ))
    }

    /// Where an attachment for `alias` is uploaded: the relay of the
    /// contact's own mailbox, the one relay the contact already talks to.
    pub fn attachment_relay(&self, alias: &str) -> Result<String, CoreError> {
        Ok(self.attachment_upload(alias)?.0)
    }

    /// The relay for `alias`'s attachments, with the contact's mailbox there
    /// and its sender key: a private relay lets the holder of that key
    /// create blobs without the operator's token.
    pub fn attachment_upload(
        &self,
        alias: &str,
    ) -> Result<(String, ferry_proto::MailboxId, crate::KeyBytes), CoreError> {
        let c = self.established(alias)?;
        let out = c
            .established()
            .ok_or(CoreError::NotEstablished)?
            .outbound
            .clone();
        Ok((out.relay, out.mailbox, out.sender))
    }

    /// Sets the conversation's disappearing-message timer on both sides.
    pub fn set_timer(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        alias: &str,
        secs: Option<u64>,
    ) -> Result<(), CoreError> {
        let mut c = self.established(alias)?;
        c.timer = secs;
        self.queue(now, rng, &c, Body::Timer { secs })?;
        if let Some(i) = self.state.contacts.position(|x| x.id == c.id) {
            let x = self.state.contacts.get_mut(i);
            x.timer = secs;
        }
        Ok(())
    }

    /// The conversation's timer.
    pub fn timer(&self, alias: &str) -> Result<Option<u64>, CoreError> {
        self.state
            .contacts
            .iter()
            .find(|c| c.alias == alias)
            .map(|c| c.timer)
            .ok_or(CoreError::UnknownContact)
    }

    /// Asks the contact to delete message `id` (the caller deletes it here);
    /// returns the contact id.
    pub fn delete_for_both(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        alias: &str,
        id: &str,
    ) -> Result<u64, CoreError> {
        let c = self.established(alias)?;
        self.queue(
            now,
            rng,
            &c,
            Body::Delete {
                target: id.to_owned(),
            },
        )?;
        Ok(c.id)
    }

    pub(crate) fn on_mls(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        idx: usize,
        body: &[u8],
        sealed: bool,
    ) -> Result<Event, CoreError> {
        let c = self.state.contacts[idx].clone();
        let alias = c.alias.clone();
        let Ok(msg) = MlsMessageIn::tls_deserialize_exact(body) else {
            return rejected(&alias, RejectReason::MalformedMls);
        };
        let Ok(pm) = msg.try_into_protocol_message() else {
            return rejected(&alias, RejectReason::NotMlsProtocolMessage);
        };
        let handshake = pm.is_handshake_message();
        let epoch = pm.epoch().as_u64();
        let content = pm.content_type();
        let commit = content == ContentType::Commit;
        // A message made in an epoch the contact has left: an out-of-date
        // copy of its phone writing with keys the phone no longer uses.
        // (Handshake messages go on to the fork checks.)
        if content == ContentType::Application && self.left_epoch(idx, epoch) {
            return rejected(&alias, RejectReason::StaleEpoch);
        }
        // Only a sealed payload (from the contact, not a forgery of an
        // earlier release's clear framing) can mark the contact as forked.
        if commit
            && sealed
            && let Some(ev) = self.check_fork(now, idx, epoch, body)?
        {
            return Ok(ev);
        }
        if commit {
            self.restore_proposal(idx)?;
        }
        let (group, _, provider) = self.group_mut(&c)?;
        let current = group.epoch().as_u64();
        let processed = match group.process_message(provider, pm) {
            Ok(p) => p,
            Err(e) if !handshake && key_used(&e) => {
                // This message's key was used before: the same message
                // again (a relay's replay, or a restored device sending
                // what its copy still had queued). Nothing to show, no
                // warning, and the cursor stays (a replay under a forged
                // sequence number skips nothing).
                self.evict_group(&c);
                return Ok(Event::Ignored { alias });
            }
            Err(_) => {
                if commit {
                    self.shelve_proposal(idx)?;
                }
                self.evict_group(&c);
                if handshake && epoch < current {
                    return Ok(self.on_stale_handshake(
                        now,
                        idx,
                        epoch,
                        sealed && content == ContentType::Proposal,
                        body,
                    ));
                }
                return rejected(&alias, RejectReason::DoesNotDecrypt);
            }
        };
        self.saw_epoch(idx, epoch);
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(app) => {
                let ev = self.on_app(now, rng, idx, &c, app)?;
                // A refresh that cannot be made now is tried at the next
                // message; the message itself is not lost for it.
                let _ = self.count_message(now, rng, idx);
                Ok(ev)
            }
            ProcessedMessageContent::ProposalMessage(p) => {
                self.on_proposal(now, rng, idx, *p, epoch, body)
            }
            ProcessedMessageContent::StagedCommitMessage(sc) => {
                self.on_commit(now, idx, *sc, epoch, body)
            }
            _ => rejected(&alias, RejectReason::UnexpectedHandshake),
        }
    }

    /// An application message from contact `idx` (`c`, as it was before).
    fn on_app(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        idx: usize,
        c: &Contact,
        app: ApplicationMessage,
    ) -> Result<Event, CoreError> {
        let alias = c.alias.clone();
        let bytes = Zeroizing::new(app.into_bytes());
        let Some(m) = crate::wire::decode(&bytes) else {
            return rejected(&alias, RejectReason::MalformedContent);
        };
        let id = ferry_proto::b64::encode(&m.id);
        let flagged = c.compromised.is_some();
        // A contact reported compromised may be a captor with the phone:
        // their messages are shown flagged, but nothing they send changes
        // anything here.
        if flagged
            && matches!(
                m.body,
                Body::Timer { .. }
                    | Body::Verifiers { .. }
                    | Body::Challenge { .. }
                    | Body::Delete { .. }
                    | Body::Mailbox { .. }
                    | Body::GroupAsk { .. }
                    | Body::GroupKeyPackage { .. }
                    | Body::GroupInvite(_)
            )
        {
            return Ok(Event::Ignored { alias });
        }
        // What arrives disappears after the shorter of the sender's timer
        // and this device's: a contact can never make something stay here
        // longer than the user chose.
        let expire_after = shorter(m.expire_after, c.timer);
        let incoming =
            |text: String, attachment: Option<AttachmentRef>, view_once: bool| Event::Message {
                contact: c.id,
                alias: alias.clone(),
                entry: HistoryEntry {
                    id: id.clone(),
                    direction: Direction::In,
                    text,
                    sent_at: m.sent_at,
                    expires_at: expire_after.map(|t| now.saturating_add(t)),
                    view_once,
                    flagged,
                    attachment: attachment.map(Box::new),
                    call: None,
                    from: None,
                },
            };
        match m.body {
            Body::Text { text, view_once } => Ok(incoming(text, None, view_once)),
            Body::Attachment {
                attachment,
                view_once,
            } => {
                if !attachment.is_valid() {
                    return rejected(&alias, RejectReason::MalformedAttachment);
                }
                // Only the relay this contact's messages already come
                // through: a contact cannot make us connect anywhere else.
                if attachment.relay != c.inbound.relay {
                    return rejected(&alias, RejectReason::ForeignRelayAttachment);
                }
                Ok(incoming(String::new(), Some(attachment), view_once))
            }
            Body::Timer { secs } => {
                // Followed when it shortens this device's timer; a longer
                // (or no) timer from the contact leaves this one as it is.
                let applied = shorter(secs, c.timer);
                if applied == c.timer {
                    return Ok(Event::Ignored { alias });
                }
                self.state.contacts.get_mut(idx).timer = applied;
                Ok(Event::TimerChanged {
                    alias,
                    secs: applied,
                })
            }
            Body::Delete { target } => Ok(Event::Deleted {
                contact: c.id,
                alias,
                id: target,
            }),
            Body::Verifiers {
                real,
                duress,
                prev_sig,
            } => Ok(self.on_verifiers(idx, &real, &duress, prev_sig.as_deref())),
            Body::Challenge { nonce } => Ok(self.on_challenge(idx, nonce)),
            Body::Answer { nonce, sig } => Ok(self.on_answer(now, idx, &nonce, &sig)),
            Body::Call { id, signal } => self.on_call(now, rng, c, id, signal, m.sent_at),
            Body::Mailbox {
                relay,
                mailbox,
                sender,
            } => self.on_mailbox(idx, c, relay, mailbox, sender),
            Body::GroupAsk { ask } => self.on_group_ask(now, rng, c, ask),
            Body::GroupKeyPackage { ask, key_package } => {
                self.on_group_key_package(c, &ask, key_package)
            }
            Body::GroupInvite(invite) => self.on_group_invite(c, *invite),
        }
    }
}

/// Whether MLS refused a message because its key was already used.
fn key_used<E>(e: &ProcessMessageError<E>) -> bool {
    use openmls::framing::errors::{MessageDecryptionError, SecretTreeError};
    matches!(
        e,
        ProcessMessageError::ValidationError(ValidationError::UnableToDecrypt(
            MessageDecryptionError::SecretTreeError(SecretTreeError::SecretReuseError)
        ))
    )
}

/// The shorter of two timers (`None`: never).
fn shorter(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (Some(x), None) | (None, Some(x)) => Some(x),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use rand_core::OsRng;

    use super::*;
    use crate::testing::LoopRelay;

    fn pair() -> (Engine, Engine, LoopRelay) {
        crate::testing::pair("b", "a")
    }

    #[test]
    fn timer_is_agreed_and_applied_on_both_sides() {
        let (mut a, mut b, mut seq) = pair();
        assert_eq!(a.timer("b").unwrap(), Some(crate::DEFAULT_TIMER_SECS));
        let (_, out) = a.send_text(100, &mut OsRng, "b", "x", false).unwrap();
        assert_eq!(out.expires_at, Some(100 + 86_400));
        let ev = seq.deliver(&mut a, &mut b, 105);
        assert!(
            matches!(&ev[..], [Event::Message { entry, .. }] if entry.expires_at == Some(105 + 86_400))
        );

        a.set_timer(200, &mut OsRng, "b", Some(60)).unwrap();
        let ev = seq.deliver(&mut a, &mut b, 201);
        assert!(matches!(
            &ev[..],
            [Event::TimerChanged { secs: Some(60), .. }]
        ));
        assert_eq!(b.timer("a").unwrap(), Some(60));
        let (_, out) = b.send_text(300, &mut OsRng, "a", "y", true).unwrap();
        assert_eq!(out.expires_at, Some(360));
        let ev = seq.deliver(&mut b, &mut a, 302);
        assert!(
            matches!(&ev[..], [Event::Message { entry, .. }] if entry.expires_at == Some(362) && entry.view_once)
        );

        // Turning the timer off (or lengthening it) on one side does not
        // change the other: each device keeps the shorter of the two.
        b.set_timer(400, &mut OsRng, "a", None).unwrap();
        let ev = seq.deliver(&mut b, &mut a, 401);
        assert!(matches!(&ev[..], [Event::Ignored { .. }]), "{ev:?}");
        assert_eq!(a.timer("b").unwrap(), Some(60));
        // And what b now sends without a timer still disappears here.
        let (_, out) = b.send_text(500, &mut OsRng, "a", "z", false).unwrap();
        assert_eq!(out.expires_at, None);
        let ev = seq.deliver(&mut b, &mut a, 502);
        assert!(
            matches!(&ev[..], [Event::Message { entry, .. }] if entry.expires_at == Some(562)),
            "{ev:?}"
        );
    }

    /// A captor holding a compromised contact's phone cannot change the
    /// timer, the verifiers, or delete anything here.
    #[test]
    fn a_compromised_contact_changes_nothing_here() {
        let (mut a, mut b, mut seq) = pair();
        b.alert(10, &mut OsRng, None, crate::AlertReason::Manual)
            .unwrap();
        let ev = seq.deliver(&mut b, &mut a, 11);
        assert!(matches!(&ev[..], [Event::Compromised { .. }]), "{ev:?}");
        let (_, sent) = a
            .send_text_to(12, &mut OsRng, "b", "keep this", false, true)
            .unwrap();
        seq.deliver(&mut a, &mut b, 12);
        b.set_timer(20, &mut OsRng, "a", Some(1)).unwrap();
        b.delete_for_both(21, &mut OsRng, "a", &sent.id).unwrap();
        let ev = seq.deliver(&mut b, &mut a, 22);
        assert!(
            matches!(&ev[..], [Event::Ignored { .. }, Event::Ignored { .. }]),
            "{ev:?}"
        );
        assert_eq!(a.timer("b").unwrap(), Some(crate::DEFAULT_TIMER_SECS));
        // Their texts still arrive, flagged.
        b.send_text_to(30, &mut OsRng, "a", "trust me", false, true)
            .unwrap();
        let ev = seq.deliver(&mut b, &mut a, 31);
        assert!(
            ev.iter()
                .all(|e| matches!(e, Event::Message { entry, .. } if entry.flagged)),
            "{ev:?}"
        );
    }

    #[test]
    fn attachment_reference_reaches_the_contact_and_bad_ones_are_rejected() {
        use crate::attachment::{AttachmentKind, AttachmentRef};
        use crate::secret::KeyBytes;
        let (mut a, mut b, mut seq) = pair();
        let r = AttachmentRef {
            relay: a.attachment_relay("b").unwrap(),
            blob: ferry_proto::MailboxId::random(&mut OsRng),
            token: KeyBytes::random(&mut OsRng),
            key: KeyBytes::random(&mut OsRng),
            size: 123,
            digest: vec![7; 32],
            name: "photo.jpg".into(),
            mime: Some("image/jpeg".into()),
            kind: AttachmentKind::File,
            duration_ms: None,
        };
        assert_eq!(r.relay, "http://relay-b");
        let (_, sent) = a
            .send_attachment(10, &mut OsRng, "b", r.clone(), true, false)
            .unwrap();
        assert!(sent.view_once && sent.text.is_empty());
        let ev = seq.deliver(&mut a, &mut b, 11);
        assert!(
            matches!(&ev[..], [Event::Message { entry, .. }] if entry.attachment.as_deref() == Some(&r) && entry.view_once)
        );
        let mut foreign = r.clone();
        foreign.relay = "http://attacker.example".into();
        a.send_attachment(12, &mut OsRng, "b", foreign, false, false)
            .unwrap();
        let ev = seq.deliver(&mut a, &mut b, 13);
        assert!(matches!(&ev[..], [Event::Rejected { .. }]));
        let mut bad = r;
        bad.digest = vec![1; 5];
        a.send_attachment(12, &mut OsRng, "b", bad, false, false)
            .unwrap();
        let ev = seq.deliver(&mut a, &mut b, 13);
        assert!(matches!(&ev[..], [Event::Rejected { .. }]));
    }

    #[test]
    fn delete_for_both_reaches_the_contact() {
        let (mut a, mut b, mut seq) = pair();
        let (_, sent) = a.send_text(10, &mut OsRng, "b", "oops", false).unwrap();
        seq.deliver(&mut a, &mut b, 10);
        a.delete_for_both(11, &mut OsRng, "b", &sent.id).unwrap();
        let ev = seq.deliver(&mut a, &mut b, 12);
        assert!(matches!(&ev[..], [Event::Deleted { id, .. }] if *id == sent.id));
    }
}
