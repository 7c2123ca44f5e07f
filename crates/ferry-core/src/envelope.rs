//! What goes inside a padded mailbox payload: a one-byte kind and its body.

use serde::{Deserialize, Serialize};

use crate::secret::KeyBytes;

pub(crate) const HELLO: u8 = 1;
pub(crate) const WELCOME: u8 = 2;
pub(crate) const MLS: u8 = 3;
pub(crate) const ALERT: u8 = 4;

pub(crate) const HELLO_LABEL: &[u8] = b"ferry hello v1";
pub(crate) const WELCOME_LABEL: &[u8] = b"ferry welcome v1";

/// Where and how to send to a contact: their mailbox and its sender key.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Address {
    pub(crate) relay: String,
    pub(crate) mailbox: ferry_proto::MailboxId,
    pub(crate) sender: KeyBytes,
}

/// Sealed from the invitee to the invite mailbox.
#[derive(Serialize, Deserialize)]
pub(crate) struct Hello {
    #[serde(with = "ferry_proto::b64::bytes")]
    pub(crate) key_package: Vec<u8>,
    pub(crate) reply_to: Address,
}

/// Sealed from the inviter to the invitee's mailbox.
#[derive(Serialize, Deserialize)]
pub(crate) struct WelcomeMsg {
    #[serde(with = "ferry_proto::b64::bytes")]
    pub(crate) welcome: Vec<u8>,
    pub(crate) reply_to: Address,
}

/// What a conversation message carries.
#[derive(Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub(crate) enum Body {
    /// A text message.
    Text {
        text: String,
        #[serde(default)]
        view_once: bool,
    },
    /// A file or voice message in the relay's blob store.
    Attachment {
        attachment: crate::attachment::AttachmentRef,
        #[serde(default)]
        view_once: bool,
    },
    /// The sender changed the disappearing-message timer.
    Timer { secs: Option<u64> },
    /// Delete a message on both sides.
    Delete { target: String },
    /// The sender's phrase verifiers (public keys); a replacement carries a
    /// signature by the current real verifier's key.
    Verifiers {
        #[serde(with = "ferry_proto::b64::bytes")]
        real: Vec<u8>,
        #[serde(with = "ferry_proto::b64::bytes")]
        duress: Vec<u8>,
        #[serde(default, with = "ferry_proto::b64::opt_bytes")]
        prev_sig: Option<Vec<u8>>,
    },
    /// "Prove it's you."
    Challenge {
        #[serde(with = "ferry_proto::b64::bytes")]
        nonce: Vec<u8>,
    },
    /// The answer: a signature over the challenge, bound to the conversation.
    Answer {
        #[serde(with = "ferry_proto::b64::bytes")]
        nonce: Vec<u8>,
        #[serde(with = "ferry_proto::b64::bytes")]
        sig: Vec<u8>,
    },
    /// A call's signalling (see [`crate::call`]).
    Call {
        id: crate::call::CallId,
        signal: crate::call::Signal,
    },
    /// The sender moved its mailbox for us (see [`crate::relocate`]): send
    /// there from now on, with this sender key.
    Mailbox {
        relay: String,
        mailbox: ferry_proto::MailboxId,
        sender: crate::secret::KeyBytes,
    },
    /// An admin asks for a key package to add us to a group.
    GroupAsk {
        #[serde(with = "ferry_proto::b64::bytes")]
        ask: Vec<u8>,
    },
    /// Our key package for the group asked about.
    GroupKeyPackage {
        #[serde(with = "ferry_proto::b64::bytes")]
        ask: Vec<u8>,
        #[serde(with = "ferry_proto::b64::bytes")]
        key_package: Vec<u8>,
    },
    /// We were added to a group: how to join it and read its log.
    GroupInvite(Box<GroupInvite>),
}

/// Everything a new member needs to join a group, sent over the 1:1
/// conversation with the admin who added it.
#[derive(Serialize, Deserialize)]
pub(crate) struct GroupInvite {
    /// The ask this answers (our key package went with it).
    #[serde(with = "ferry_proto::b64::bytes")]
    pub(crate) ask: Vec<u8>,
    /// The group's relay.
    pub(crate) relay: String,
    /// The group's mailbox there.
    pub(crate) mailbox: ferry_proto::MailboxId,
    /// Seeds of the relay read and write keys in force.
    pub(crate) read: KeyBytes,
    pub(crate) write: KeyBytes,
    /// The log position of the commit that added us: read after it.
    pub(crate) after: u64,
    /// The relay's epoch after that commit.
    pub(crate) epoch: u64,
    /// The group's name as the admin calls it (a suggestion).
    pub(crate) name: String,
    /// The MLS welcome.
    #[serde(with = "ferry_proto::b64::bytes")]
    pub(crate) welcome: Vec<u8>,
}

/// The application content inside MLS.
#[derive(Serialize, Deserialize)]
pub(crate) struct AppMessage {
    #[serde(with = "ferry_proto::b64::bytes")]
    pub(crate) id: Vec<u8>,
    pub(crate) sent_at: u64,
    /// The timer in force when sent: the receiver destroys the message this
    /// long after it arrives.
    pub(crate) expire_after: Option<u64>,
    pub(crate) body: Body,
}

pub(crate) fn wrap(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(body.len() + 1);
    v.push(kind);
    v.extend_from_slice(body);
    v
}
