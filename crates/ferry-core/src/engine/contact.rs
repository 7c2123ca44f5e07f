//! Contacts: their state in the handshake, warnings about them, and the
//! record kept for each.

use ferry_proto::MailboxId;
use serde::{Deserialize, Serialize};

use crate::envelope::Address;
use crate::secret::KeyBytes;

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
    pub(crate) mailbox: MailboxId,
    pub(crate) recipient: KeyBytes,
    /// Last sequence number processed.
    pub(crate) cursor: u64,
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
    pub(crate) created_at: u64,
    pub(crate) inbound: Inbound,
    /// The invite mailbox to delete once it served (inviter side).
    #[serde(default)]
    pub(crate) invite_inbound: Option<Inbound>,
    pub(crate) outbound: Option<Address>,
    pub(crate) invite_secret: Option<KeyBytes>,
    pub(crate) invite_expires_at: u64,
    #[serde(default, with = "opt_b64")]
    pub(crate) group_id: Option<Vec<u8>>,
    #[serde(with = "ferry_proto::b64::bytes")]
    pub(crate) signer_public: Vec<u8>,
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
pub(crate) fn default_timer() -> Option<u64> {
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

impl std::fmt::Debug for ContactInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContactInfo")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}
