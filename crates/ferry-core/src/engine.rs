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
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::envelope::{self, Address, Hello, WelcomeMsg};
use crate::invite::{self, InviteError, InviteLink};
use crate::mls_store::{Provider, TrackedStorage};
use crate::reject::RejectReason;
use crate::secret::KeyBytes;
use crate::state::{ActionId, Changes, ProfileState, Saved};

const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519;

/// Why an engine operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// An alias is already used by another contact.
    #[error("you already have a contact with that alias")]
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
}

pub(crate) fn mls<E: std::fmt::Display>(e: E) -> CoreError {
    CoreError::Mls(e.to_string())
}

/// A contact's place in the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactState {
    /// We invited them and wait for their hello.
    Invited,
    /// We accepted their invite and wait for their welcome.
    Accepted,
    /// The conversation is set up.
    Established,
}

impl ContactState {
    /// Text form for users and `--json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invited => "invited",
            Self::Accepted => "accepted",
            Self::Established => "established",
        }
    }
}

/// What the CLI shows of a contact. `Debug` hides the alias.
#[derive(Clone)]
pub struct ContactInfo {
    /// Local id (vault key for history).
    pub id: u64,
    /// The local alias.
    pub alias: String,
    /// Handshake state.
    pub state: ContactState,
    /// Set when the contact warned that their device is compromised.
    pub compromised: Option<Compromise>,
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Inbound {
    pub(crate) relay: String,
    mailbox: MailboxId,
    recipient: KeyBytes,
    /// Last sequence number processed.
    cursor: u64,
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Contact {
    pub(crate) id: u64,
    pub(crate) alias: String,
    pub(crate) state: ContactState,
    /// Disappearing-message timer in seconds agreed in the conversation
    /// (`None`: off, which must be chosen explicitly).
    #[serde(default = "default_timer")]
    pub(crate) timer: Option<u64>,
    created_at: u64,
    pub(crate) inbound: Inbound,
    /// The invite mailbox to delete once it served (inviter side).
    #[serde(default)]
    invite_inbound: Option<Inbound>,
    pub(crate) outbound: Option<Address>,
    invite_secret: Option<KeyBytes>,
    invite_expires_at: u64,
    #[serde(default, with = "opt_b64")]
    pub(crate) group_id: Option<Vec<u8>>,
    #[serde(with = "ferry_proto::b64::bytes")]
    signer_public: Vec<u8>,
    /// Shared with the contact outside the MLS ratchet (MLS exporter at
    /// set-up): authenticates compromise alerts.
    #[serde(default)]
    pub(crate) alert_key: Option<KeyBytes>,
    /// Set when the contact warned that their device is compromised.
    #[serde(default)]
    pub(crate) compromised: Option<Compromise>,
    /// "Prove it's you" state for this conversation.
    #[serde(default)]
    pub(crate) proof: crate::challenge::ProofState,
    /// Our dead-man switch for this contact, once assigned.
    #[serde(default)]
    pub(crate) canary: Option<crate::alert::CanaryRef>,
}

/// Why and when a contact was marked compromised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compromise {
    /// How the warning came.
    pub reason: AlertReason,
    /// When it was received (Unix seconds, this device's clock).
    pub at: u64,
}

/// How a compromise warning came.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertReason {
    /// The contact unlocked with their duress passphrase.
    Duress,
    /// The contact's dead-man switch fired.
    Canary,
    /// The contact raised it by hand.
    Manual,
}

impl AlertReason {
    /// Text form for users and `--json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Duress => "duress",
            Self::Canary => "canary",
            Self::Manual => "manual",
        }
    }
}

/// Messages disappear after 24 hours unless the conversation agrees otherwise.
pub const DEFAULT_TIMER_SECS: u64 = 24 * 3600;

/// Contacts are alerted if the owner does not unlock for 72 hours.
pub const DEFAULT_CANARY_SECS: u64 = 72 * 3600;

#[allow(clippy::unnecessary_wraps)]
pub(crate) fn default_canary() -> Option<u64> {
    Some(DEFAULT_CANARY_SECS)
}

#[allow(clippy::unnecessary_wraps)]
fn default_timer() -> Option<u64> {
    Some(DEFAULT_TIMER_SECS)
}

mod opt_b64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(&ferry_proto::b64::encode(b)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| ferry_proto::b64::decode(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// A relay call the client must make, kept in the outbox until done.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Create a mailbox and set its sender key.
    CreateMailbox {
        /// Relay base URL.
        relay: String,
        /// Mailbox id.
        mailbox: MailboxId,
        /// Recipient key.
        recipient: KeyBytes,
        /// Public sender key to set.
        sender_public: ferry_proto::PublicKey,
    },
    /// Send a padded payload.
    Send {
        /// Relay base URL.
        relay: String,
        /// Mailbox id.
        mailbox: MailboxId,
        /// Sender key.
        sender: KeyBytes,
        /// Padded payload.
        #[serde(with = "ferry_proto::b64::bytes")]
        payload: Vec<u8>,
    },
    /// Delete a mailbox we own.
    DeleteMailbox {
        /// Relay base URL.
        relay: String,
        /// Mailbox id.
        mailbox: MailboxId,
        /// Recipient key.
        recipient: KeyBytes,
    },
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::CreateMailbox { .. } => "Action::CreateMailbox",
            Self::Send { .. } => "Action::Send",
            Self::DeleteMailbox { .. } => "Action::DeleteMailbox",
        })
    }
}

/// Whether a message was sent or received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Received from the contact.
    In,
    /// Sent by this profile.
    Out,
}

/// Format version of history records (records of the first releases are
/// bare JSON and start with `{`).
const HISTORY_RECORD_VERSION: u8 = 1;

/// One message in a conversation's history (stored in the vault).
#[derive(Clone, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Message id (base64url), unique per conversation.
    pub id: String,
    /// In or out.
    pub direction: Direction,
    /// The text.
    pub text: String,
    /// Sender's clock when sent (Unix seconds).
    pub sent_at: u64,
    /// When this device destroys it (Unix seconds, this device's clock).
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// Destroyed after its first display.
    #[serde(default)]
    pub view_once: bool,
    /// Arrived after the contact was reported compromised: held, flagged.
    #[serde(default)]
    pub flagged: bool,
    /// A file or voice message (then `text` is empty).
    #[serde(default)]
    pub attachment: Option<Box<crate::attachment::AttachmentRef>>,
}

impl std::fmt::Debug for HistoryEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryEntry")
            .field("direction", &self.direction)
            .finish_non_exhaustive()
    }
}

impl HistoryEntry {
    /// Serialized form for the vault: format version 1, then JSON.
    pub fn to_record(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(vec![HISTORY_RECORD_VERSION]);
        if serde_json::to_writer(&mut *out, self).is_err() {
            out.truncate(1);
        }
        out
    }

    /// Parses a vault record (also the bare JSON of earlier releases).
    pub fn from_record(b: &[u8]) -> Result<Self, CoreError> {
        let json = match b.split_first() {
            Some((&HISTORY_RECORD_VERSION, json)) => json,
            Some((b'{', _)) => b,
            Some((v, _)) => {
                return Err(CoreError::State(format!(
                    "message record version {v} is not known (newer Ferry?)"
                )));
            }
            None => return Err(CoreError::State("empty message record".into())),
        };
        serde_json::from_slice(json).map_err(|e| CoreError::State(e.to_string()))
    }
}

impl std::fmt::Debug for ContactInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContactInfo")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// What processing an incoming payload produced. `Debug` shows only the kind.
pub enum Event {
    /// A message from a contact, to store and show.
    Message {
        /// Contact id.
        contact: u64,
        /// Contact alias.
        alias: String,
        /// The message.
        entry: HistoryEntry,
    },
    /// A handshake finished: the contact can now be messaged.
    Established {
        /// Contact alias.
        alias: String,
    },
    /// Something arrived that is not from the contact (or is damaged): dropped.
    Rejected {
        /// Contact alias whose mailbox it arrived in.
        alias: String,
        /// Why (no content).
        reason: RejectReason,
    },
    /// The contact changed the conversation's disappearing-message timer.
    TimerChanged {
        /// Contact alias.
        alias: String,
        /// New timer in seconds, `None` for off.
        secs: Option<u64>,
    },
    /// The contact deleted a message for both sides.
    Deleted {
        /// Contact id.
        contact: u64,
        /// Contact alias.
        alias: String,
        /// The message id.
        id: String,
    },
    /// The contact warned that their device is compromised.
    Compromised {
        /// Contact alias.
        alias: String,
        /// How.
        reason: AlertReason,
    },
    /// The contact asks us to prove it is us (`ferry answer`).
    ChallengeReceived {
        /// Contact alias.
        alias: String,
    },
    /// The contact answered our challenge.
    ChallengeResult {
        /// Contact alias.
        alias: String,
        /// The outcome.
        result: crate::challenge::ProofResult,
    },
    /// The contact set or changed their phrase verifiers.
    VerifiersUpdated {
        /// Contact alias.
        alias: String,
    },
    /// Already processed before (a retried fetch): nothing to do.
    Duplicate,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Message { .. } => "Event::Message(..)",
            Self::Established { .. } => "Event::Established(..)",
            Self::Rejected { .. } => "Event::Rejected(..)",
            Self::TimerChanged { .. } => "Event::TimerChanged(..)",
            Self::Deleted { .. } => "Event::Deleted(..)",
            Self::Compromised { .. } => "Event::Compromised(..)",
            Self::ChallengeReceived { .. } => "Event::ChallengeReceived(..)",
            Self::ChallengeResult { .. } => "Event::ChallengeResult(..)",
            Self::VerifiersUpdated { .. } => "Event::VerifiersUpdated(..)",
            Self::Duplicate => "Event::Duplicate",
        })
    }
}

/// One inbound mailbox to read.
#[derive(Clone)]
pub struct InboundMailbox {
    /// Contact id.
    pub contact: u64,
    /// Relay base URL.
    pub relay: String,
    /// Mailbox id.
    pub mailbox: MailboxId,
    /// Recipient key.
    pub recipient: KeyBytes,
    /// Last processed sequence number.
    pub cursor: u64,
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
            signers: HashMap::new(),
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
            signers: HashMap::new(),
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

    /// How many MLS key-value pairs the engine holds.
    pub fn mls_len(&self) -> usize {
        self.provider.storage().len()
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
                state: c.state,
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
                state: c.state,
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

    /// How many relay calls are queued.
    pub fn outbox_len(&self) -> usize {
        self.state.outbox.len()
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
            for ib in std::iter::once(&c.inbound).chain(c.invite_inbound.as_ref()) {
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
        if self.state.contacts.iter().any(|c| c.alias == alias) {
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

    fn new_inbound(&self, rng: &mut impl CryptoRngCore) -> (Inbound, KeyBytes) {
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
            state: ContactState::Invited,
            timer: default_timer(),
            created_at: now,
            inbound: invite_box.clone(),
            invite_inbound: None,
            outbound: None,
            invite_secret: Some(secret),
            invite_expires_at: link.expires_at,
            group_id: None,
            signer_public: signer.public().to_vec(),
            alert_key: None,
            compromised: None,
            proof: Default::default(),
            canary: None,
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
        let payload = padding::pad(&envelope::wrap(envelope::HELLO, &sealed))
            .map_err(|_| CoreError::TooLong)?;
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
            state: ContactState::Accepted,
            timer: default_timer(),
            created_at: now,
            inbound,
            invite_inbound: None,
            outbound: None,
            invite_secret: Some(link.secret.clone()),
            invite_expires_at: link.expires_at,
            group_id: None,
            signer_public: signer.public().to_vec(),
            alert_key: None,
            compromised: None,
            proof: Default::default(),
            canary: None,
        });
        Ok(())
    }

    /// Forgets a contact that never got set up (e.g. its invite was refused).
    pub fn remove_contact(&mut self, alias: &str) {
        self.state
            .contacts
            .retain(|c| c.alias != alias || c.state == ContactState::Established);
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
        let Some(idx) = self.state.contacts.iter().position(|c| {
            c.inbound.mailbox == mailbox
                || c.invite_inbound
                    .as_ref()
                    .is_some_and(|i| i.mailbox == mailbox)
        }) else {
            return Ok(Event::Duplicate);
        };
        let contact = self.state.contacts.get_mut(idx);
        let inbound = if contact.inbound.mailbox == mailbox {
            &mut contact.inbound
        } else {
            match contact.invite_inbound.as_mut() {
                Some(i) => i,
                None => return Ok(Event::Duplicate),
            }
        };
        if seq <= inbound.cursor {
            return Ok(Event::Duplicate);
        }
        inbound.cursor = seq;
        let alias = self.state.contacts[idx].alias.clone();
        let Ok(content) = padding::unpad(payload) else {
            return rejected(&alias, RejectReason::MalformedPadding);
        };
        let Some((&kind, body)) = content.split_first() else {
            return rejected(&alias, RejectReason::Empty);
        };
        let state = self.state.contacts[idx].state;
        let result = match (state, kind) {
            (ContactState::Invited, envelope::HELLO) => self.on_hello(now, rng, idx, body),
            (ContactState::Accepted, envelope::WELCOME) => self.on_welcome(idx, body),
            (ContactState::Established, envelope::MLS) => self.on_mls(now, idx, body),
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

    fn on_hello(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        idx: usize,
        sealed: &[u8],
    ) -> Result<Event, CoreError> {
        let c = self.state.contacts[idx].clone();
        let alias = c.alias.clone();
        if now > c.invite_expires_at {
            return rejected(&alias, RejectReason::InviteExpired);
        }
        let Some(secret) = c.invite_secret.as_ref() else {
            return rejected(&alias, RejectReason::InviteUsed);
        };
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
        let payload = padding::pad(&envelope::wrap(envelope::WELCOME, &sealed))
            .map_err(|_| CoreError::TooLong)?;
        let reply = hello.reply_to;
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
        contact.invite_inbound = None;
        contact.inbound = inbound;
        contact.outbound = Some(reply);
        contact.invite_secret = None;
        contact.group_id = Some(group.group_id().as_slice().to_vec());
        contact.state = ContactState::Established;
        contact.alert_key = Some(alert_key);
        Ok(Event::Established {
            alias: contact.alias.clone(),
        })
    }

    fn on_welcome(&mut self, idx: usize, sealed: &[u8]) -> Result<Event, CoreError> {
        let c = self.state.contacts[idx].clone();
        let alias = c.alias.clone();
        let Some(secret) = c.invite_secret.as_ref() else {
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
        let join = MlsGroupJoinConfig::builder()
            .use_ratchet_tree_extension(true)
            .build();
        let group = match StagedWelcome::new_from_welcome(&self.provider, &join, welcome, None)
            .and_then(|s| s.into_group(&self.provider))
        {
            Ok(g) => g,
            Err(_) => return rejected(&alias, RejectReason::WelcomeRefused),
        };
        let alert_key = crate::alert::export_key(&group, &self.provider)?;
        let contact = self.state.contacts.get_mut(idx);
        contact.alert_key = Some(alert_key);
        contact.outbound = Some(msg.reply_to);
        contact.invite_secret = None;
        contact.group_id = Some(group.group_id().as_slice().to_vec());
        contact.state = ContactState::Established;
        Ok(Event::Established {
            alias: contact.alias.clone(),
        })
    }

    /// The conversation's MLS group and this side's signer, loaded once.
    pub(crate) fn group_mut(
        &mut self,
        c: &Contact,
    ) -> Result<(&mut MlsGroup, &SignatureKeyPair, &Provider), CoreError> {
        let gid = c.group_id.as_ref().ok_or(CoreError::NotEstablished)?;
        if !self.groups.contains_key(gid) {
            let group = MlsGroup::load(self.provider.storage(), &GroupId::from_slice(gid))
                .map_err(mls)?
                .ok_or_else(|| CoreError::State("conversation state missing".into()))?;
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
        if let Some(gid) = &c.group_id {
            self.groups.remove(gid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    use crate::testing::LoopRelay;

    fn pair() -> (Engine, Engine, LoopRelay) {
        crate::testing::pair("bob", "alice")
    }

    #[test]
    fn handshake_then_messages_both_ways_survive_export_restore() {
        let (mut a, mut b, mut seqs) = pair();
        let (_, sent) = a
            .send_text(20, &mut OsRng, "bob", "hello bob", false)
            .unwrap();
        let ev = seqs.deliver(&mut a, &mut b, 10);
        match ev.as_slice() {
            [Event::Message { alias, entry, .. }] => {
                assert_eq!(alias, "alice");
                assert_eq!(entry.text, "hello bob");
                assert_eq!(entry.id, sent.id);
                assert_eq!(entry.direction, Direction::In);
            }
            other => panic!("{other:?}"),
        }
        // Persist and restore both sides, then talk the other way.
        let mut b = Engine::load(b.save().unwrap()).unwrap();
        let mut a = Engine::load(a.save().unwrap()).unwrap();
        b.send_text(30, &mut OsRng, "alice", "hi alice", false)
            .unwrap();
        let ev = seqs.deliver(&mut b, &mut a, 10);
        assert!(
            matches!(ev.as_slice(), [Event::Message { entry, .. }] if entry.text == "hi alice")
        );
        assert_eq!(a.contact("bob").unwrap().state, ContactState::Established);
    }

    /// A profile saved in full once, then kept up to date only by the
    /// changes each operation reports.
    struct Mirror {
        settings: Vec<u8>,
        contacts: std::collections::BTreeMap<u64, Vec<u8>>,
        outbox: std::collections::BTreeMap<u64, Vec<u8>>,
        mls: std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
    }

    impl Mirror {
        fn of(e: &mut Engine) -> Self {
            e.take_changes().unwrap();
            let saved = e.save().unwrap();
            let mut m = Mirror {
                settings: saved.settings.to_vec(),
                contacts: Default::default(),
                outbox: saved.outbox.iter().map(|(i, r)| (*i, r.to_vec())).collect(),
                mls: saved
                    .mls
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_vec()))
                    .collect(),
            };
            for c in e.state.contacts.iter() {
                m.contacts.insert(c.id, Vec::new());
            }
            // Contact records carry their id inside; pair them by order.
            for (id, r) in m.contacts.clone().keys().zip(saved.contacts.iter()) {
                m.contacts.insert(*id, r.to_vec());
            }
            m
        }

        fn apply(&mut self, c: &crate::Changes) {
            if let Some(s) = &c.settings {
                self.settings = s.to_vec();
            }
            for (id, r) in &c.contacts {
                match r {
                    Some(r) => self.contacts.insert(*id, r.to_vec()),
                    None => self.contacts.remove(id),
                };
            }
            for (id, r) in &c.outbox {
                match r {
                    Some(r) => self.outbox.insert(*id, r.to_vec()),
                    None => self.outbox.remove(id),
                };
            }
            for (k, v) in &c.mls {
                match v {
                    Some(v) => self.mls.insert(k.clone(), v.to_vec()),
                    None => self.mls.remove(k),
                };
            }
        }

        fn to_saved(&self) -> Saved {
            Saved {
                settings: Zeroizing::new(self.settings.clone()),
                contacts: self
                    .contacts
                    .values()
                    .map(|r| Zeroizing::new(r.clone()))
                    .collect(),
                outbox: self
                    .outbox
                    .iter()
                    .map(|(i, r)| (*i, Zeroizing::new(r.clone())))
                    .collect(),
                mls: self
                    .mls
                    .iter()
                    .map(|(k, v)| (k.clone(), Zeroizing::new(v.clone())))
                    .collect(),
            }
        }
    }

    #[test]
    fn changes_alone_keep_a_saved_profile_exactly_current() {
        let (mut a, mut b, mut relay) = pair();
        let mut ma = Mirror::of(&mut a);
        let mut mb = Mirror::of(&mut b);
        let step = |a: &mut Engine, b: &mut Engine, ma: &mut Mirror, mb: &mut Mirror| {
            ma.apply(&a.take_changes().unwrap());
            mb.apply(&b.take_changes().unwrap());
            assert!(!a.has_changes() && !b.has_changes());
        };
        for i in 0..60u64 {
            a.send_text(20 + i, &mut OsRng, "bob", &format!("a{i}"), false)
                .unwrap();
            step(&mut a, &mut b, &mut ma, &mut mb);
            relay.deliver(&mut a, &mut b, 20 + i);
            step(&mut a, &mut b, &mut ma, &mut mb);
            if i % 7 == 0 {
                b.send_text(20 + i, &mut OsRng, "alice", "b", false)
                    .unwrap();
                b.set_timer(20 + i, &mut OsRng, "alice", Some(60 + i))
                    .unwrap();
                step(&mut a, &mut b, &mut ma, &mut mb);
                relay.deliver(&mut b, &mut a, 21 + i);
                step(&mut a, &mut b, &mut ma, &mut mb);
            }
        }
        a.create_invite(100, &mut OsRng, "carol", 10).unwrap();
        a.remove_contact("carol");
        step(&mut a, &mut b, &mut ma, &mut mb);
        // What the changes built equals a full save, key for key...
        for (e, m) in [(&a, &ma), (&b, &mb)] {
            let full = Mirror {
                settings: Vec::new(),
                contacts: Default::default(),
                outbox: Default::default(),
                mls: e
                    .save()
                    .unwrap()
                    .mls
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_vec()))
                    .collect(),
            };
            assert_eq!(full.mls, m.mls, "MLS state differs from a full save");
            let saved = e.save().unwrap();
            assert_eq!(saved.settings.to_vec(), m.settings);
            let mut want: Vec<Vec<u8>> = saved.contacts.iter().map(|r| r.to_vec()).collect();
            let mut got: Vec<Vec<u8>> = m.contacts.values().cloned().collect();
            want.sort();
            got.sort();
            assert_eq!(want, got);
        }
        // ...and an engine loaded from it goes on talking.
        let mut a = Engine::load(ma.to_saved()).unwrap();
        let mut b = Engine::load(mb.to_saved()).unwrap();
        a.send_text(500, &mut OsRng, "bob", "after reload", false)
            .unwrap();
        let ev = relay.deliver(&mut a, &mut b, 500);
        assert!(
            matches!(ev.as_slice(), [Event::Message { entry, .. }] if entry.text == "after reload")
        );
    }

    #[test]
    fn a_send_writes_the_same_whatever_the_number_of_contacts() {
        let written = |contacts: usize| {
            let (mut a, mut b, mut relay) = pair();
            for i in 0..contacts {
                a.create_invite(3, &mut OsRng, &format!("pending {i}"), 3600)
                    .unwrap();
            }
            relay.deliver(&mut a, &mut b, 3);
            a.take_changes().unwrap();
            a.send_text(4, &mut OsRng, "bob", "hello", false).unwrap();
            let c = a.take_changes().unwrap();
            assert!(c.contacts.len() <= 1, "at most the conversation's contact");
            assert!(c.settings.is_none());
            (c.bytes(), c.mls.len())
        };
        let (few, few_keys) = written(1);
        let (many, many_keys) = written(200);
        assert_eq!(few_keys, many_keys);
        assert!(
            many.abs_diff(few) < 64,
            "a send wrote {few} bytes with 2 contacts, {many} with 201"
        );
    }

    #[test]
    fn forged_and_replayed_payloads_are_rejected_not_shown() {
        let (mut a, mut b, mut seqs) = pair();
        let mailbox = b.inbound()[0].mailbox;
        // Garbage of a valid bucket size.
        let junk = padding::pad(&envelope::wrap(envelope::MLS, b"not mls")).unwrap();
        let ev = b.receive(40, &mut OsRng, mailbox, 100, &junk).unwrap();
        assert!(matches!(ev, Event::Rejected { .. }));
        // A message encrypted in another group (a stranger) is rejected.
        let (mut c, _, _) = pair();
        c.send_text(41, &mut OsRng, "bob", "from a stranger", false)
            .unwrap();
        let Some(Action::Send { payload, .. }) = c.outbox().first().cloned() else {
            panic!()
        };
        let ev = b.receive(41, &mut OsRng, mailbox, 101, &payload).unwrap();
        assert!(matches!(ev, Event::Rejected { .. }));
        // A replay of an already processed sequence number is a duplicate.
        a.send_text(42, &mut OsRng, "bob", "once", false).unwrap();
        seqs.set_seq(mailbox, 101);
        let ev = seqs.deliver(&mut a, &mut b, 10);
        assert!(matches!(ev.as_slice(), [Event::Message { .. }]));
        let ev = b.receive(42, &mut OsRng, mailbox, 1, &junk).unwrap();
        assert!(matches!(ev, Event::Duplicate));
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let mut a = Engine::new("http://relay-a");
        let link = a.create_invite(0, &mut OsRng, "bob", 100).unwrap();
        let action = a.outbox()[0].clone();
        insta::assert_snapshot!(
            format!("{a:?} {link:?} {action:?} {:?}", KeyBytes::random(&mut OsRng)),
            @"Engine(..) InviteLink(..) Action::CreateMailbox KeyBytes(..)"
        );
    }

    #[test]
    fn invites_refuse_expiry_reuse_and_bad_aliases() {
        let mut a = Engine::new("http://relay-a");
        let mut b = Engine::new("http://relay-b");
        let link = a.create_invite(0, &mut OsRng, "bob", 100).unwrap();
        assert!(matches!(
            a.create_invite(0, &mut OsRng, "bob", 100),
            Err(CoreError::AliasTaken)
        ));
        assert!(matches!(
            a.create_invite(0, &mut OsRng, "", 100),
            Err(CoreError::BadAlias)
        ));
        assert!(matches!(
            b.accept_invite(101, &mut OsRng, &link, "alice"),
            Err(CoreError::Invite(InviteError::Expired))
        ));
        b.accept_invite(50, &mut OsRng, &link, "alice").unwrap();
        assert!(matches!(
            b.accept_invite(51, &mut OsRng, &link, "alice2"),
            Err(CoreError::InviteReused)
        ));
        assert!(matches!(
            b.send_text(52, &mut OsRng, "alice", "x", false),
            Err(CoreError::NotEstablished)
        ));
    }
}
