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

/// An inbound mailbox this side moved away from (see [`crate::relocate`]):
/// still read, with its own seal keys, until the contact has switched to
/// the new one and it is drained; then deleted.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct MovedFrom {
    pub(crate) inbound: Inbound,
    /// Open what arrives there, newest first (rotated with the epoch).
    pub(crate) seal: Vec<KeyBytes>,
    /// Something from the contact arrived in a newer mailbox: nothing more
    /// comes here once what is left has been read.
    pub(crate) switched: bool,
    /// The queued relay call announcing the newer mailbox (withdrawn if
    /// the relay refuses to create that mailbox).
    #[serde(default)]
    pub(crate) announce: Option<u64>,
}

/// What a contact waiting in the handshake holds: the invite's secret,
/// which seals the hello and the welcome, and its expiry.
#[derive(Clone)]
pub(crate) struct Pending {
    pub(crate) secret: KeyBytes,
    pub(crate) expires_at: u64,
}

/// What an established conversation holds.
#[derive(Clone)]
pub(crate) struct Established {
    /// The two-member MLS group.
    pub(crate) group_id: Vec<u8>,
    /// The contact's inbound mailbox for us.
    pub(crate) outbound: Address,
    /// Shared with the contact outside the MLS ratchet (MLS exporter at
    /// set-up): authenticates compromise alerts. `None` only for
    /// conversations set up before alerts existed.
    pub(crate) alert_key: Option<KeyBytes>,
    /// Seals what we store in the contact's mailbox (MLS exporter, see
    /// [`crate::mailbox_seal`]). `None` only in records written before
    /// payloads were sealed: derived at first use.
    pub(crate) seal_out: Option<KeyBytes>,
    /// Open what arrives in our mailbox, newest first.
    pub(crate) seal_in: Vec<KeyBytes>,
    /// Set for conversations that began before payloads were sealed: the
    /// contact may still send (or have left on the relay) unsealed
    /// payloads, accepted until the first sealed one arrives.
    pub(crate) legacy_in: bool,
    /// Alert keys of earlier epochs, newest first (alerts and canaries
    /// sealed before a rotation still verify).
    pub(crate) alert_prev: Vec<KeyBytes>,
    /// Post-compromise security bookkeeping (see [`crate::pcs`]).
    pub(crate) pcs: crate::pcs::Pcs,
}

/// Where a contact stands in the handshake; each stage holds exactly what
/// it needs, so no handler re-checks optional fields.
#[derive(Clone)]
pub(crate) enum Stage {
    /// We invited them and wait for their hello.
    Invited(Pending),
    /// We accepted their invite and wait for their welcome.
    Accepted(Pending),
    /// The conversation is set up.
    Established(Box<Established>),
}

impl Stage {
    pub(crate) fn state(&self) -> ContactState {
        match self {
            Self::Invited(_) => ContactState::Invited,
            Self::Accepted(_) => ContactState::Accepted,
            Self::Established(_) => ContactState::Established,
        }
    }
}

/// A contact. Saved as [`ContactRecord`] (contact record version 1).
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "ContactRecord", into = "ContactRecord")]
pub(crate) struct Contact {
    pub(crate) id: u64,
    pub(crate) alias: String,
    pub(crate) stage: Stage,
    /// Disappearing-message timer in seconds agreed in the conversation
    /// (`None`: off, which must be chosen explicitly).
    pub(crate) timer: Option<u64>,
    pub(crate) created_at: u64,
    /// Our mailbox for this contact (the invite mailbox until the
    /// handshake is done, inviter side).
    pub(crate) inbound: Inbound,
    pub(crate) signer_public: Vec<u8>,
    /// Set when the contact warned that their device is compromised.
    pub(crate) compromised: Option<Compromise>,
    /// "Prove it's you" state for this conversation.
    pub(crate) proof: crate::challenge::ProofState,
    /// Our dead-man switch for this contact, once assigned.
    pub(crate) canary: Option<crate::alert::CanaryRef>,
    /// The ids of the last alerts taken from this contact: the same alert
    /// again (a relay replaying it) changes nothing.
    pub(crate) alerts_taken: Vec<String>,
    /// Earlier inbound mailboxes still read, newest first.
    pub(crate) moved: Vec<MovedFrom>,
    /// When the inbound mailbox last moved (0: never).
    pub(crate) moved_at: u64,
}

impl Contact {
    /// The conversation, once set up.
    pub(crate) fn established(&self) -> Option<&Established> {
        match &self.stage {
            Stage::Established(e) => Some(e.as_ref()),
            _ => None,
        }
    }

    /// The MLS group id (empty before the conversation is set up).
    pub(crate) fn group_id(&self) -> Vec<u8> {
        self.established()
            .map(|e| e.group_id.clone())
            .unwrap_or_default()
    }
}

/// The saved layout of a contact (unchanged since the first releases): a
/// state tag plus the fields of every stage.
#[derive(Clone, Serialize, Deserialize)]
struct ContactRecord {
    id: u64,
    alias: String,
    state: ContactState,
    #[serde(default = "default_timer")]
    timer: Option<u64>,
    created_at: u64,
    inbound: Inbound,
    /// Never set by any release; kept so old records read.
    #[serde(default)]
    invite_inbound: Option<Inbound>,
    outbound: Option<Address>,
    invite_secret: Option<KeyBytes>,
    invite_expires_at: u64,
    #[serde(default, with = "ferry_proto::b64::opt_bytes")]
    group_id: Option<Vec<u8>>,
    #[serde(with = "ferry_proto::b64::bytes")]
    signer_public: Vec<u8>,
    #[serde(default)]
    alert_key: Option<KeyBytes>,
    #[serde(default)]
    compromised: Option<Compromise>,
    #[serde(default)]
    proof: crate::challenge::ProofState,
    #[serde(default)]
    canary: Option<crate::alert::CanaryRef>,
    #[serde(default)]
    alerts_taken: Vec<String>,
    #[serde(default)]
    seal_out: Option<KeyBytes>,
    #[serde(default)]
    seal_in: Vec<KeyBytes>,
    #[serde(default)]
    legacy_in: bool,
    #[serde(default)]
    alert_prev: Vec<KeyBytes>,
    #[serde(default)]
    pcs: crate::pcs::Pcs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    moved: Vec<MovedFrom>,
    #[serde(default)]
    moved_at: u64,
}

impl TryFrom<ContactRecord> for Contact {
    type Error = String;

    fn try_from(r: ContactRecord) -> Result<Self, String> {
        let pending = |r: &ContactRecord| -> Result<Pending, String> {
            Ok(Pending {
                secret: r
                    .invite_secret
                    .clone()
                    .ok_or("a contact in the handshake has no invite secret")?,
                expires_at: r.invite_expires_at,
            })
        };
        let stage = match r.state {
            ContactState::Invited => Stage::Invited(pending(&r)?),
            ContactState::Accepted => Stage::Accepted(pending(&r)?),
            ContactState::Established => Stage::Established(Box::new(Established {
                group_id: r
                    .group_id
                    .clone()
                    .ok_or("an established contact has no group")?,
                outbound: r
                    .outbound
                    .clone()
                    .ok_or("an established contact has no address")?,
                alert_key: r.alert_key.clone(),
                seal_out: r.seal_out.clone(),
                seal_in: r.seal_in.clone(),
                legacy_in: r.legacy_in,
                alert_prev: r.alert_prev.clone(),
                pcs: r.pcs.clone(),
            })),
        };
        Ok(Self {
            id: r.id,
            alias: r.alias,
            stage,
            timer: r.timer,
            created_at: r.created_at,
            inbound: r.inbound,
            signer_public: r.signer_public,
            compromised: r.compromised,
            proof: r.proof,
            canary: r.canary,
            alerts_taken: r.alerts_taken,
            moved: r.moved,
            moved_at: r.moved_at,
        })
    }
}

impl From<Contact> for ContactRecord {
    fn from(c: Contact) -> Self {
        let state = c.stage.state();
        let (pending, established) = match c.stage {
            Stage::Invited(p) | Stage::Accepted(p) => (Some(p), None),
            Stage::Established(e) => (None, Some(e)),
        };
        Self {
            id: c.id,
            alias: c.alias,
            state,
            timer: c.timer,
            created_at: c.created_at,
            inbound: c.inbound,
            invite_inbound: None,
            outbound: established.as_ref().map(|e| e.outbound.clone()),
            invite_secret: pending.as_ref().map(|p| p.secret.clone()),
            invite_expires_at: pending.as_ref().map_or(0, |p| p.expires_at),
            group_id: established.as_ref().map(|e| e.group_id.clone()),
            signer_public: c.signer_public,
            alert_key: established.as_ref().and_then(|e| e.alert_key.clone()),
            seal_out: established.as_ref().and_then(|e| e.seal_out.clone()),
            seal_in: established
                .as_ref()
                .map(|e| e.seal_in.clone())
                .unwrap_or_default(),
            legacy_in: established.as_ref().is_some_and(|e| e.legacy_in),
            alert_prev: established
                .as_ref()
                .map(|e| e.alert_prev.clone())
                .unwrap_or_default(),
            pcs: established.map(|e| e.pcs).unwrap_or_default(),
            compromised: c.compromised,
            proof: c.proof,
            canary: c.canary,
            alerts_taken: c.alerts_taken,
            moved: c.moved,
            moved_at: c.moved_at,
        }
    }
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
    /// Two different histories of the conversation arrived: a copy of the
    /// contact's phone (or of its saved state) is in use.
    Fork,
}

impl AlertReason {
    /// Text form for users and `--json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Duress => "duress",
            Self::Canary => "canary",
            Self::Manual => "manual",
            Self::Fork => "fork",
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

impl std::fmt::Debug for ContactInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContactInfo")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}
