//! What the engine hands its driver: relay calls to make, history entries
//! to keep, events to show, mailboxes to read.

use ferry_proto::MailboxId;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{AlertReason, CoreError};
use crate::reject::RejectReason;
use crate::secret::KeyBytes;

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
    /// Create a group's mailbox with its first admin, read and write keys.
    CreateGroup {
        /// Relay base URL.
        relay: String,
        /// The group's local id.
        local: u64,
        /// The group mailbox.
        group: MailboxId,
        /// Seeds of the admin, read and write keys.
        admin: KeyBytes,
        /// Read key seed.
        read: KeyBytes,
        /// Write key seed.
        write: KeyBytes,
    },
    /// Post a padded message to a group's log in a relay epoch.
    GroupPost {
        /// Relay base URL.
        relay: String,
        /// The group mailbox.
        group: MailboxId,
        /// The group's local id.
        local: u64,
        /// Write key seed.
        write: KeyBytes,
        /// The relay epoch it was sealed in.
        epoch: u64,
        /// The padded MLS message.
        #[serde(with = "ferry_proto::b64::bytes")]
        payload: Vec<u8>,
        /// The message before MLS, to seal it again in a later epoch if
        /// the relay refuses it as stale (`None`: not sent again).
        #[serde(default, with = "ferry_proto::b64::opt_bytes")]
        plain: Option<Vec<u8>>,
        /// A request to leave (sealed again as one when stale).
        #[serde(default)]
        leave: bool,
    },
    /// Send the group's pending commit (kept in the group's record, so a
    /// retry sends the same bytes).
    GroupCommit {
        /// Relay base URL.
        relay: String,
        /// The group's local id.
        local: u64,
    },
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::CreateMailbox { .. } => "Action::CreateMailbox",
            Self::Send { .. } => "Action::Send",
            Self::DeleteMailbox { .. } => "Action::DeleteMailbox",
            Self::CreateGroup { .. } => "Action::CreateGroup",
            Self::GroupPost { .. } => "Action::GroupPost",
            Self::GroupCommit { .. } => "Action::GroupCommit",
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
    /// A call (then `text` is empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<crate::call::CallLog>,
    /// In a group: the sender's name there (`None`: this profile, or a
    /// 1:1 conversation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
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
        /// The real phrase lifted the contact's quarantine.
        lifted: bool,
    },
    /// The contact set or changed their phrase verifiers.
    VerifiersUpdated {
        /// Contact alias.
        alias: String,
        /// The first ever: taken on trust, so the user must hear of it.
        first: bool,
    },
    /// A control message (timer, verifiers, challenge) from a contact
    /// reported compromised, or a timer longer than this device's: ignored.
    Ignored {
        /// Contact alias.
        alias: String,
    },
    /// The conversation moved to a new epoch (leaf keys refreshed): nothing
    /// to show.
    Rekeyed {
        /// Contact alias.
        alias: String,
    },
    /// The contact moved its mailbox for us: what we send goes there now.
    /// Nothing to show.
    Moved {
        /// Contact alias.
        alias: String,
    },
    /// Already processed before (a retried fetch): nothing to do.
    Duplicate,
    /// An admin added us to a group: it is in the group list now.
    GroupJoined {
        /// The group's local name.
        group: String,
        /// The alias of the contact who added us.
        by: String,
    },
    /// A call moved on (see [`crate::call`]).
    Call {
        /// Contact id.
        contact: u64,
        /// Contact alias.
        alias: String,
        /// What happened.
        update: crate::call::CallUpdate,
    },
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
            Self::Ignored { .. } => "Event::Ignored(..)",
            Self::Rekeyed { .. } => "Event::Rekeyed(..)",
            Self::Moved { .. } => "Event::Moved(..)",
            Self::Duplicate => "Event::Duplicate",
            Self::Call { .. } => "Event::Call",
            Self::GroupJoined { .. } => "Event::GroupJoined",
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
