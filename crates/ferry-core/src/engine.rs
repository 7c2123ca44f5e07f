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

use ferry_proto::{MailboxId, padding};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::envelope::{self, Address, Hello, WelcomeMsg};
use crate::invite::{self, InviteError, InviteLink};
use crate::secret::KeyBytes;

/// MLS key-value pairs as persisted, values zeroized on drop.
pub type MlsEntries = Vec<(Vec<u8>, Zeroizing<Vec<u8>>)>;

const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519;
const STATE_VERSION: u32 = 1;

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
fn default_canary() -> Option<u64> {
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
    /// Serialized form for the vault.
    pub fn to_record(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Parses a vault record.
    pub fn from_record(b: &[u8]) -> Result<Self, CoreError> {
        serde_json::from_slice(b).map_err(|e| CoreError::State(e.to_string()))
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
        reason: &'static str,
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

#[derive(Serialize, Deserialize)]
pub(crate) struct ProfileState {
    version: u32,
    relay: String,
    /// Access token of the profile's relay, if it is a private one.
    #[serde(default)]
    relay_token: Option<String>,
    /// Dead-man switch interval in seconds (`None`: off).
    #[serde(default = "default_canary")]
    pub(crate) canary_interval: Option<u64>,
    next_contact: u64,
    pub(crate) contacts: Vec<Contact>,
    pub(crate) outbox: Vec<Action>,
    /// Invite mailboxes this profile accepted (to refuse reuse).
    accepted_invites: Vec<MailboxId>,
}

/// The client engine for one profile.
pub struct Engine {
    pub(crate) state: ProfileState,
    pub(crate) provider: OpenMlsRustCrypto,
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
pub(crate) fn rejected(alias: &str, reason: &'static str) -> Result<Event, CoreError> {
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
            state: ProfileState {
                version: STATE_VERSION,
                relay: relay.trim_end_matches('/').to_owned(),
                relay_token: None,
                canary_interval: default_canary(),
                next_contact: 1,
                contacts: Vec::new(),
                outbox: Vec::new(),
                accepted_invites: Vec::new(),
            },
            provider: OpenMlsRustCrypto::default(),
        }
    }

    /// Restores a profile from what [`Engine::export`] returned.
    pub fn restore(state: &[u8], mls_state: MlsEntries) -> Result<Self, CoreError> {
        let state: ProfileState =
            serde_json::from_slice(state).map_err(|e| CoreError::State(e.to_string()))?;
        if state.version != STATE_VERSION {
            return Err(CoreError::State(format!(
                "unknown state version {}",
                state.version
            )));
        }
        let provider = OpenMlsRustCrypto::default();
        {
            let mut values = provider
                .storage()
                .values
                .write()
                .map_err(|_| CoreError::State("lock".into()))?;
            for (k, v) in mls_state {
                values.insert(k, v.to_vec());
            }
        }
        Ok(Self { state, provider })
    }

    /// The state to persist: the profile record and the MLS key-value pairs.
    pub fn export(&self) -> Result<(Zeroizing<Vec<u8>>, MlsEntries), CoreError> {
        let state = Zeroizing::new(
            serde_json::to_vec(&self.state).map_err(|e| CoreError::State(e.to_string()))?,
        );
        let values = self
            .provider
            .storage()
            .values
            .read()
            .map_err(|_| CoreError::State("lock".into()))?;
        let mls = values
            .iter()
            .map(|(k, v)| (k.clone(), Zeroizing::new(v.clone())))
            .collect();
        Ok((state, mls))
    }

    /// This profile's relay.
    pub fn relay(&self) -> &str {
        &self.state.relay
    }

    /// The access token for creating mailboxes on this profile's relay.
    pub fn relay_token(&self) -> Option<&str> {
        self.state.relay_token.as_deref()
    }

    /// Sets the access token of a private relay.
    pub fn set_relay_token(&mut self, token: Option<String>) {
        self.state.relay_token = token;
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
        self.contacts().into_iter().find(|c| c.alias == alias)
    }

    /// Relay calls still to make, oldest first.
    pub fn outbox(&self) -> &[Action] {
        &self.state.outbox
    }

    /// Marks the oldest outbox action as done.
    pub fn outbox_done(&mut self) {
        if !self.state.outbox.is_empty() {
            self.state.outbox.remove(0);
        }
    }

    /// Marks `action` as done (whatever its position: another process may
    /// have changed the outbox meanwhile); `false` if it was not there.
    pub fn outbox_remove(&mut self, action: &Action) -> bool {
        match self.state.outbox.iter().position(|a| a == action) {
            Some(i) => {
                self.state.outbox.remove(i);
                true
            }
            None => false,
        }
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
                relay: self.state.relay.clone(),
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
            relay: self.state.relay.clone(),
            mailbox: MailboxId::random(rng),
            recipient: KeyBytes::random(rng),
            cursor: 0,
        };
        let link = InviteLink {
            relay: self.state.relay.clone(),
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
        let id = self.state.next_contact;
        self.state.next_contact += 1;
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
        if self.state.accepted_invites.contains(&link.mailbox) {
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
        self.state.accepted_invites.push(link.mailbox);
        let id = self.state.next_contact;
        self.state.next_contact += 1;
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
        let inbound = if self.state.contacts[idx].inbound.mailbox == mailbox {
            &mut self.state.contacts[idx].inbound
        } else {
            match self.state.contacts[idx].invite_inbound.as_mut() {
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
            return rejected(&alias, "malformed padding");
        };
        let Some((&kind, body)) = content.split_first() else {
            return rejected(&alias, "empty message");
        };
        let state = self.state.contacts[idx].state;
        let result = match (state, kind) {
            (ContactState::Invited, envelope::HELLO) => self.on_hello(now, rng, idx, body),
            (ContactState::Accepted, envelope::WELCOME) => self.on_welcome(idx, body),
            (ContactState::Established, envelope::MLS) => self.on_mls(now, idx, body),
            (ContactState::Established, envelope::ALERT) => self.on_alert(now, idx, body),
            (ContactState::Established, envelope::HELLO) => rejected(&alias, "invite already used"),
            _ => rejected(&alias, "unexpected message for this contact"),
        };
        match result {
            // A broken saved state is ours to report; anything else came
            // from the payload and must never stop the other messages.
            Err(e @ CoreError::State(_)) => Err(e),
            Err(_) => rejected(&alias, "could not be processed"),
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
            return rejected(&alias, "invite expired");
        }
        let Some(secret) = c.invite_secret.as_ref() else {
            return rejected(&alias, "invite already used");
        };
        let Some(plain) = invite::open(&invite::seal_key(secret), envelope::HELLO_LABEL, sealed)
        else {
            return rejected(&alias, "not sealed with the invite");
        };
        let Ok(hello) = serde_json::from_slice::<Hello>(&plain) else {
            return rejected(&alias, "malformed hello");
        };
        if !valid_relay_url(&hello.reply_to.relay) {
            return rejected(&alias, "malformed hello");
        }
        let Ok(kp_in) = KeyPackageIn::tls_deserialize_exact(&hello.key_package) else {
            return rejected(&alias, "malformed key package");
        };
        let Ok(kp) = kp_in.validate(self.provider.crypto(), ProtocolVersion::Mls10) else {
            return rejected(&alias, "invalid key package");
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
            Err(_) => return rejected(&alias, "key package refused"),
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
        let contact = &mut self.state.contacts[idx];
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
            return rejected(&alias, "unexpected welcome");
        };
        let Some(plain) = invite::open(&invite::seal_key(secret), envelope::WELCOME_LABEL, sealed)
        else {
            return rejected(&alias, "not sealed with the invite");
        };
        let Ok(msg) = serde_json::from_slice::<WelcomeMsg>(&plain) else {
            return rejected(&alias, "malformed welcome");
        };
        if !valid_relay_url(&msg.reply_to.relay) {
            return rejected(&alias, "malformed welcome");
        }
        let Ok(mls_in) = MlsMessageIn::tls_deserialize_exact(&msg.welcome) else {
            return rejected(&alias, "malformed MLS welcome");
        };
        let MlsMessageBodyIn::Welcome(welcome) = mls_in.extract() else {
            return rejected(&alias, "not an MLS welcome");
        };
        let join = MlsGroupJoinConfig::builder()
            .use_ratchet_tree_extension(true)
            .build();
        let group = match StagedWelcome::new_from_welcome(&self.provider, &join, welcome, None)
            .and_then(|s| s.into_group(&self.provider))
        {
            Ok(g) => g,
            Err(_) => return rejected(&alias, "MLS welcome refused"),
        };
        let alert_key = crate::alert::export_key(&group, &self.provider)?;
        let contact = &mut self.state.contacts[idx];
        contact.alert_key = Some(alert_key);
        contact.outbound = Some(msg.reply_to);
        contact.invite_secret = None;
        contact.group_id = Some(group.group_id().as_slice().to_vec());
        contact.state = ContactState::Established;
        Ok(Event::Established {
            alias: contact.alias.clone(),
        })
    }

    pub(crate) fn group(&self, c: &Contact) -> Result<MlsGroup, CoreError> {
        let gid = c.group_id.as_ref().ok_or(CoreError::NotEstablished)?;
        MlsGroup::load(self.provider.storage(), &GroupId::from_slice(gid))
            .map_err(mls)?
            .ok_or_else(|| CoreError::State("conversation state missing".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    /// Delivers every queued Send of `from` to `to` (as a relay would), and
    /// returns the events.
    fn deliver(
        from: &mut Engine,
        to: &mut Engine,
        seqs: &mut HashMap<MailboxId, u64>,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(a) = from.outbox().first().cloned() {
            from.outbox_done();
            if let Action::Send {
                mailbox, payload, ..
            } = a
            {
                let seq = seqs.entry(mailbox).or_insert(0);
                *seq += 1;
                events.push(to.receive(10, &mut OsRng, mailbox, *seq, &payload).unwrap());
            }
        }
        events
    }

    use std::collections::HashMap;

    fn pair() -> (Engine, Engine, HashMap<MailboxId, u64>) {
        let mut a = Engine::new("http://relay-a");
        let mut b = Engine::new("http://relay-b");
        let mut seqs = HashMap::new();
        let link = a.create_invite(0, &mut OsRng, "bob", 3600).unwrap();
        let link = InviteLink::parse(&link.to_link()).unwrap();
        b.accept_invite(1, &mut OsRng, &link, "alice").unwrap();
        let ev = deliver(&mut b, &mut a, &mut seqs);
        assert!(matches!(ev.as_slice(), [Event::Established { alias }] if alias == "bob"));
        let ev = deliver(&mut a, &mut b, &mut seqs);
        assert!(matches!(ev.as_slice(), [Event::Established { alias }] if alias == "alice"));
        (a, b, seqs)
    }

    #[test]
    fn handshake_then_messages_both_ways_survive_export_restore() {
        let (mut a, mut b, mut seqs) = pair();
        let (_, sent) = a
            .send_text(20, &mut OsRng, "bob", "hello bob", false)
            .unwrap();
        let ev = deliver(&mut a, &mut b, &mut seqs);
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
        let (s, m) = b.export().unwrap();
        let mut b = Engine::restore(&s, m).unwrap();
        let (s, m) = a.export().unwrap();
        let mut a = Engine::restore(&s, m).unwrap();
        b.send_text(30, &mut OsRng, "alice", "hi alice", false)
            .unwrap();
        let ev = deliver(&mut b, &mut a, &mut seqs);
        assert!(
            matches!(ev.as_slice(), [Event::Message { entry, .. }] if entry.text == "hi alice")
        );
        assert_eq!(a.contact("bob").unwrap().state, ContactState::Established);
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
        seqs.insert(mailbox, 101);
        let ev = deliver(&mut a, &mut b, &mut seqs);
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
