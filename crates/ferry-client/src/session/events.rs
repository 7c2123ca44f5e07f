//! What a session tells whoever shows it: one typed stream.
//!
//! Every front end consumes the same events: the CLI registers a listener
//! that prints them as they happen (so a message is on screen before its
//! ack leaves), the app subscribes to an async stream. `Debug` shows only
//! the kind: events carry aliases and plaintext.

use ferry_core::challenge::ProofResult;
use ferry_core::{AlertReason, HistoryEntry};
use tokio::sync::mpsc;

use crate::transfer::Progress;

/// Where an outgoing message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// Committed here; not yet taken by the relay.
    Queued,
    /// The relay stored it durably.
    OnRelay,
    /// The relay refused it for good; it will not be sent.
    Failed,
}

impl Status {
    /// Text form for users and `--json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::OnRelay => "on_relay",
            Self::Failed => "failed",
        }
    }
}

/// Why a session locked itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockReason {
    /// No activity for the idle period.
    Idle,
    /// The maximum unlocked time passed.
    MaxUnlocked,
    /// The profile was destroyed under it (`ferry panic` from elsewhere):
    /// the session forgot its keys at once.
    Wiped,
    /// The person asked for it (a lock button, a panic shortcut).
    Asked,
}

impl LockReason {
    /// Text form for users and `--json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::MaxUnlocked => "max_unlocked",
            Self::Wiped => "wiped",
            Self::Asked => "asked",
        }
    }
}

/// Something that happened in a session.
#[derive(Clone)]
#[non_exhaustive]
pub enum Event {
    /// A contact added this profile to a group.
    GroupJoined {
        /// The group's local name.
        group: String,
        /// The contact who added us.
        by: String,
    },
    /// Members were added to or removed from a group.
    GroupMembers {
        /// The group's local name.
        group: String,
        /// Names of those added.
        added: Vec<String>,
        /// Names of those removed.
        removed: Vec<String>,
    },
    /// An alert quarantined a member of a group.
    GroupQuarantined {
        /// The group's local name.
        group: String,
        /// The member's name there.
        member: String,
    },
    /// This profile was removed from a group: it and its history are gone.
    GroupRemoved {
        /// The group's local name.
        group: String,
    },
    /// A message arrived and was committed.
    Received {
        /// Contact alias.
        contact: String,
        /// The message.
        entry: HistoryEntry,
    },
    /// A message was committed here, to be sent.
    Sent {
        /// Contact alias.
        contact: String,
        /// The message.
        entry: HistoryEntry,
    },
    /// An outgoing message moved on.
    Status {
        /// Contact alias.
        contact: String,
        /// Message id.
        id: String,
        /// Where it stands.
        status: Status,
    },
    /// A conversation is now set up.
    Established {
        /// Contact alias.
        contact: String,
    },
    /// A payload that did not come from the contact was dropped.
    Rejected {
        /// Contact alias whose mailbox it arrived in.
        contact: String,
        /// Why.
        reason: ferry_core::RejectReason,
    },
    /// The contact changed the disappearing-message timer.
    Timer {
        /// Contact alias.
        contact: String,
        /// Seconds, or `None` for off.
        secs: Option<u64>,
    },
    /// The contact deleted a message for both sides.
    Deleted {
        /// Contact alias.
        contact: String,
        /// The message id.
        id: String,
    },
    /// Messages whose timer ran out were destroyed.
    Expired {
        /// How many.
        count: usize,
    },
    /// The contact warned that their device is compromised.
    Compromised {
        /// Contact alias.
        contact: String,
        /// How the warning came.
        reason: AlertReason,
    },
    /// The contact asks us to prove it is us.
    Challenged {
        /// Contact alias.
        contact: String,
    },
    /// The contact answered our challenge.
    Proof {
        /// Contact alias.
        contact: String,
        /// Outcome.
        result: ProofResult,
        /// The real phrase lifted the contact's quarantine.
        lifted: bool,
    },
    /// The contact set or changed their phrase verifiers.
    Verifiers {
        /// Contact alias.
        contact: String,
        /// Their first phrase: taken on trust, so say so plainly.
        first: bool,
    },
    /// An attachment transfer moved on.
    Transfer(Progress),
    /// The session locked itself; the front end must drop it.
    Locked(LockReason),
    /// A call moved on (it rings, was answered, restarts, or ended).
    Call {
        /// Contact alias.
        contact: String,
        /// What happened.
        update: ferry_core::call::CallUpdate,
    },
    /// The relay no longer has this profile's mailbox for a contact: only
    /// a holder of its key can delete it, so the account was most likely
    /// restored on another device, which moved the conversation, and this
    /// copy is out of date.
    MailboxGone {
        /// Contact alias.
        contact: String,
    },
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Received { .. } => "Event::Received(..)",
            Self::GroupJoined { .. } => "Event::GroupJoined(..)",
            Self::GroupMembers { .. } => "Event::GroupMembers(..)",
            Self::GroupQuarantined { .. } => "Event::GroupQuarantined(..)",
            Self::GroupRemoved { .. } => "Event::GroupRemoved(..)",
            Self::Sent { .. } => "Event::Sent(..)",
            Self::Status { status, .. } => match status {
                Status::Queued => "Event::Status(queued)",
                Status::OnRelay => "Event::Status(on_relay)",
                Status::Failed => "Event::Status(failed)",
            },
            Self::Established { .. } => "Event::Established(..)",
            Self::Rejected { .. } => "Event::Rejected(..)",
            Self::Timer { .. } => "Event::Timer(..)",
            Self::Deleted { .. } => "Event::Deleted(..)",
            Self::Expired { .. } => "Event::Expired(..)",
            Self::Compromised { .. } => "Event::Compromised(..)",
            Self::Challenged { .. } => "Event::Challenged(..)",
            Self::Proof { .. } => "Event::Proof(..)",
            Self::Verifiers { .. } => "Event::Verifiers(..)",
            Self::Transfer(_) => "Event::Transfer(..)",
            Self::Locked(_) => "Event::Locked(..)",
            Self::Call { .. } => "Event::Call(..)",
            Self::MailboxGone { .. } => "Event::MailboxGone(..)",
        })
    }
}

/// A synchronous consumer: called in order, before the session goes on.
pub type Listener = Box<dyn FnMut(&Event) + Send>;

/// An async consumer's end of the stream.
pub type EventStream = mpsc::Receiver<Event>;

/// How far an async consumer may fall behind: one that does is dropped (its
/// stream ends) rather than letting memory grow; it resubscribes and reads
/// the current state again.
pub const STREAM_BACKLOG: usize = 4096;

/// Fans events out to the listener and the subscribers.
#[derive(Default)]
pub(crate) struct Hub {
    listener: Option<Listener>,
    subscribers: Vec<mpsc::Sender<Event>>,
}

impl Hub {
    pub(crate) fn set_listener(&mut self, l: Option<Listener>) {
        self.listener = l;
    }

    pub(crate) fn subscribe(&mut self) -> EventStream {
        let (tx, rx) = mpsc::channel(STREAM_BACKLOG);
        self.subscribers.push(tx);
        rx
    }

    pub(crate) fn emit(&mut self, ev: Event) {
        if let Some(l) = self.listener.as_mut() {
            l(&ev);
        }
        self.subscribers.retain(|s| match s.try_send(ev.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!("an event subscriber fell too far behind; its stream ends");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }
}
