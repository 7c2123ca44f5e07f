//! Turning a one-time invite into a two-member MLS conversation (see the
//! module documentation of [`crate::engine`]).

use ferry_proto::MailboxId;
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::contact::{Established, Pending, Stage};
use super::{
    Action, CIPHERSUITE, Contact, CoreError, Engine, Event, Inbound, default_timer, mls, rejected,
    valid_relay_url,
};
use crate::envelope::{self, Address, Hello, WelcomeMsg};
use crate::invite::{self, InviteLink};
use crate::mailbox_seal;
use crate::reject::RejectReason;
use crate::secret::KeyBytes;

impl Engine {
    /// Creates a one-time invite for the contact to be called `alias`.
    pub fn create_invite(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        alias: &str,
        ttl_secs: u64,
    ) -> Result<InviteLink, CoreError> {
        self.alias_free(alias)?;
        let secret = KeyBytes::random(rng);
        let invite_box = Inbound {
            relay: self.state.settings().relay.clone(),
            mailbox: MailboxId::random(rng),
            recipient: KeyBytes::random(rng),
            cursor: 0,
        };
        let link = InviteLink {
            relay: self.state.settings().relay.clone(),
            mailbox: invite_box.mailbox,
            secret: secret.clone(),
            expires_at: now.saturating_add(ttl_secs),
        };
        let signer = self.new_signer()?;
        self.state.outbox.push(Action::CreateMailbox {
            relay: invite_box.relay.clone(),
            mailbox: invite_box.mailbox,
            recipient: invite_box.recipient.clone(),
            sender_public: invite::sender_key(&secret).public(),
        });
        let id = self.state.next_contact_id();
        self.state.contacts.push(Contact {
            id,
            alias: alias.to_owned(),
            stage: Stage::Invited(Pending {
                secret,
                expires_at: link.expires_at,
            }),
            timer: default_timer(),
            created_at: now,
            inbound: invite_box.clone(),
            signer_public: signer.public().to_vec(),
            compromised: None,
            proof: Default::default(),
            canary: None,
            alerts_taken: Vec::new(),
            moved: Vec::new(),
            moved_at: 0,
        });
        Ok(link)
    }

    /// Accepts an invite: the contact will be called `alias`.
    pub fn accept_invite(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        link: &InviteLink,
        alias: &str,
    ) -> Result<(), CoreError> {
        link.check_fresh(now)?;
        if self
            .state
            .settings()
            .accepted_invites
            .contains(&link.mailbox)
        {
            return Err(CoreError::InviteReused);
        }
        self.alias_free(alias)?;
        let signer = self.new_signer()?;
        let kp = KeyPackage::builder()
            .build(
                CIPHERSUITE,
                &self.provider,
                &signer,
                Self::credential(&signer),
            )
            .map_err(mls)?;
        let kp_bytes = kp.key_package().tls_serialize_detached().map_err(mls)?;
        let (inbound, sender) = self.new_inbound(rng);
        let hello = Hello {
            key_package: kp_bytes,
            reply_to: Address {
                relay: inbound.relay.clone(),
                mailbox: inbound.mailbox,
                sender: sender.clone(),
            },
        };
        let hello_json = Zeroizing::new(
            serde_json::to_vec(&hello).map_err(|e| CoreError::State(e.to_string()))?,
        );
        let sealed = invite::seal(
            &invite::seal_key(&link.secret),
            envelope::HELLO_LABEL,
            &hello_json,
            rng,
        );
        let payload = mailbox_seal::seal(
            &invite::invite_box_key(&link.secret),
            &link.mailbox,
            envelope::HELLO,
            &sealed,
            rng,
        )
        .ok_or(CoreError::TooLong)?;
        self.state.outbox.push(Action::CreateMailbox {
            relay: inbound.relay.clone(),
            mailbox: inbound.mailbox,
            recipient: inbound.recipient.clone(),
            sender_public: sender.mailbox_key().public(),
        });
        self.state.outbox.push(Action::Send {
            relay: link.relay.clone(),
            mailbox: link.mailbox,
            sender: KeyBytes(*invite::sender_key(&link.secret).secret_bytes()),
            payload,
        });
        self.state
            .settings_mut()
            .accepted_invites
            .push(link.mailbox);
        let id = self.state.next_contact_id();
        self.state.contacts.push(Contact {
            id,
            alias: alias.to_owned(),
            stage: Stage::Accepted(Pending {
                secret: link.secret.clone(),
                expires_at: link.expires_at,
            }),
            timer: default_timer(),
            created_at: now,
            inbound,
            signer_public: signer.public().to_vec(),
            compromised: None,
            proof: Default::default(),
            canary: None,
            alerts_taken: Vec::new(),
            moved: Vec::new(),
            moved_at: 0,
        });
        Ok(())
    }

    /// Forgets a contact that never got set up (e.g. its invite was refused).
    pub fn remove_contact(&mut self, alias: &str) {
        self.state
            .contacts
            .retain(|c| c.alias != alias || c.established().is_some());
    }

    pub(super) fn on_hello(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        idx: usize,
        sealed: &[u8],
    ) -> Result<Event, CoreError> {
        let c = self.state.contacts[idx].clone();
        let alias = c.alias.clone();
        let Stage::Invited(pending) = &c.stage else {
            return rejected(&alias, RejectReason::InviteUsed);
        };
        if now > pending.expires_at {
            return rejected(&alias, RejectReason::InviteExpired);
        }
        let secret = &pending.secret;
        let Some(plain) = invite::open(&invite::seal_key(secret), envelope::HELLO_LABEL, sealed)
        else {
            return rejected(&alias, RejectReason::NotSealedWithInvite);
        };
        let Ok(hello) = serde_json::from_slice::<Hello>(&plain) else {
            return rejected(&alias, RejectReason::MalformedHello);
        };
        if !valid_relay_url(&hello.reply_to.relay) {
            return rejected(&alias, RejectReason::MalformedHello);
        }
        let Ok(kp_in) = KeyPackageIn::tls_deserialize_exact(&hello.key_package) else {
            return rejected(&alias, RejectReason::MalformedKeyPackage);
        };
        let Ok(kp) = kp_in.validate(self.provider.crypto(), ProtocolVersion::Mls10) else {
            return rejected(&alias, RejectReason::InvalidKeyPackage);
        };
        let signer = self.signer(&c)?;
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(CIPHERSUITE)
            .use_ratchet_tree_extension(true)
            .max_past_epochs(crate::pcs::PAST_EPOCHS)
            .build();
        let mut group = MlsGroup::new(&self.provider, &signer, &config, Self::credential(&signer))
            .map_err(mls)?;
        let (_commit, welcome, _info) = match group.add_members(&self.provider, &signer, &[kp]) {
            Ok(v) => v,
            Err(_) => return rejected(&alias, RejectReason::KeyPackageRefused),
        };
        group.merge_pending_commit(&self.provider).map_err(mls)?;
        let alert_key = crate::alert::export_key(&group, &self.provider)?;
        let welcome_bytes = welcome.tls_serialize_detached().map_err(mls)?;
        let (inbound, sender) = self.new_inbound(rng);
        let msg = WelcomeMsg {
            welcome: welcome_bytes,
            reply_to: Address {
                relay: inbound.relay.clone(),
                mailbox: inbound.mailbox,
                sender: sender.clone(),
            },
        };
        let json =
            Zeroizing::new(serde_json::to_vec(&msg).map_err(|e| CoreError::State(e.to_string()))?);
        let sealed = invite::seal(
            &invite::seal_key(secret),
            envelope::WELCOME_LABEL,
            &json,
            rng,
        );
        let reply = hello.reply_to;
        let payload = mailbox_seal::seal(
            &invite::reply_box_key(secret),
            &reply.mailbox,
            envelope::WELCOME,
            &sealed,
            rng,
        )
        .ok_or(CoreError::TooLong)?;
        let seal_out = mailbox_seal::export_key(&group, &self.provider, &reply.mailbox)?;
        let seal_in = mailbox_seal::export_key(&group, &self.provider, &inbound.mailbox)?;
        self.state.outbox.push(Action::CreateMailbox {
            relay: inbound.relay.clone(),
            mailbox: inbound.mailbox,
            recipient: inbound.recipient.clone(),
            sender_public: sender.mailbox_key().public(),
        });
        self.state.outbox.push(Action::Send {
            relay: reply.relay.clone(),
            mailbox: reply.mailbox,
            sender: reply.sender.clone(),
            payload,
        });
        self.state.outbox.push(Action::DeleteMailbox {
            relay: c.inbound.relay.clone(),
            mailbox: c.inbound.mailbox,
            recipient: c.inbound.recipient.clone(),
        });
        let contact = self.state.contacts.get_mut(idx);
        contact.inbound = inbound;
        // A new mailbox pair: the first move is due a day from now.
        contact.moved_at = now;
        contact.stage = Stage::Established(Box::new(Established {
            group_id: group.group_id().as_slice().to_vec(),
            outbound: reply,
            alert_key: Some(alert_key),
            seal_out: Some(seal_out),
            seal_in: vec![seal_in],
            legacy_in: false,
            alert_prev: Vec::new(),
            pcs: crate::pcs::Pcs::joined_at(now, group.epoch().as_u64()),
        }));
        Ok(Event::Established {
            alias: contact.alias.clone(),
        })
    }

    pub(super) fn on_welcome(
        &mut self,
        now: u64,
        idx: usize,
        sealed: &[u8],
    ) -> Result<Event, CoreError> {
        let c = self.state.contacts[idx].clone();
        let alias = c.alias.clone();
        let Stage::Accepted(Pending { secret, .. }) = &c.stage else {
            return rejected(&alias, RejectReason::UnexpectedWelcome);
        };
        let Some(plain) = invite::open(&invite::seal_key(secret), envelope::WELCOME_LABEL, sealed)
        else {
            return rejected(&alias, RejectReason::NotSealedWithInvite);
        };
        let Ok(msg) = serde_json::from_slice::<WelcomeMsg>(&plain) else {
            return rejected(&alias, RejectReason::MalformedWelcome);
        };
        if !valid_relay_url(&msg.reply_to.relay) {
            return rejected(&alias, RejectReason::MalformedWelcome);
        }
        let Ok(mls_in) = MlsMessageIn::tls_deserialize_exact(&msg.welcome) else {
            return rejected(&alias, RejectReason::MalformedMlsWelcome);
        };
        let MlsMessageBodyIn::Welcome(welcome) = mls_in.extract() else {
            return rejected(&alias, RejectReason::NotMlsWelcome);
        };
        let join = crate::pcs::join_config();
        let group = match StagedWelcome::new_from_welcome(&self.provider, &join, welcome, None)
            .and_then(|s| s.into_group(&self.provider))
        {
            Ok(g) => g,
            Err(_) => return rejected(&alias, RejectReason::WelcomeRefused),
        };
        let alert_key = crate::alert::export_key(&group, &self.provider)?;
        let seal_out = mailbox_seal::export_key(&group, &self.provider, &msg.reply_to.mailbox)?;
        let seal_in = mailbox_seal::export_key(&group, &self.provider, &c.inbound.mailbox)?;
        let contact = self.state.contacts.get_mut(idx);
        // A new mailbox pair: the first move is due a day from now.
        contact.moved_at = now;
        contact.stage = Stage::Established(Box::new(Established {
            group_id: group.group_id().as_slice().to_vec(),
            outbound: msg.reply_to,
            alert_key: Some(alert_key),
            seal_out: Some(seal_out),
            seal_in: vec![seal_in],
            legacy_in: false,
            alert_prev: Vec::new(),
            pcs: crate::pcs::Pcs::new(now),
        }));
        Ok(Event::Established {
            alias: contact.alias.clone(),
        })
    }
}
