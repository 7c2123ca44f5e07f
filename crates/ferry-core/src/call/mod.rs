//! Calls: signalling inside the conversation's MLS messages, and the one
//! call a profile may be in at a time. Sans-IO like the rest of the engine;
//! the call itself (media, ICE, DTLS) is the browser's.
//!
//! - An offer from a contact reported compromised never rings: it is
//!   recorded, flagged, as a refused call, and nothing else happens (no
//!   TURN credentials, no camera). Calling such a contact is refused.
//! - An offer older than [`STALE_OFFER_SECS`] (fetched late, after the app was
//!   closed) is a missed call, never a ring.
//! - Both calling at once: the inviter's call wins (the conversation's
//!   committer, leaf 0), deterministically on both sides.
//! - Every call leaves one history entry on each side (answered with its
//!   length, missed, declined, busy, unanswered, refused), under the
//!   conversation's disappearing timer like any message.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::engine::HistoryEntry;
use crate::sdp::{CheckedSdp, SdpError};

/// How long a call rings before it is missed, in seconds.
pub const RING_SECS: u64 = 45;

/// An offer sent longer ago than this (by the caller's clock, which may be
/// a little off) is a missed call and never rings.
pub const STALE_OFFER_SECS: u64 = 180;

/// A call's id: 16 random bytes, the same on both sides.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CallId(pub [u8; 16]);

impl std::fmt::Debug for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallId(..)")
    }
}

/// What one side tells the other about a call.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Signal {
    /// "Call me": the caller's checked SDP.
    Offer {
        /// With video.
        video: bool,
        /// The SDP.
        sdp: String,
    },
    /// The callee accepted: its checked SDP.
    Answer {
        /// The SDP.
        sdp: String,
    },
    /// A new offer during the call (the network changed: ICE restart).
    Restart {
        /// The SDP.
        sdp: String,
    },
    /// The answer to a restart.
    RestartAnswer {
        /// The SDP.
        sdp: String,
    },
    /// The call is over (or never starts).
    End {
        /// Why.
        reason: EndReason,
    },
}

impl std::fmt::Debug for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Offer { .. } => "Signal::Offer(..)",
            Self::Answer { .. } => "Signal::Answer(..)",
            Self::Restart { .. } => "Signal::Restart(..)",
            Self::RestartAnswer { .. } => "Signal::RestartAnswer(..)",
            Self::End { .. } => "Signal::End(..)",
        })
    }
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Someone hung up (or the caller gave up before an answer).
    HangUp,
    /// The callee declined.
    Declined,
    /// The callee is in another call.
    Busy,
    /// Nobody answered in time.
    NoAnswer,
    /// The call could not be set up.
    Failed,
}

impl EndReason {
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            Self::HangUp => 1,
            Self::Declined => 2,
            Self::Busy => 3,
            Self::NoAnswer => 4,
            Self::Failed => 5,
        }
    }

    pub(crate) fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => Self::HangUp,
            2 => Self::Declined,
            3 => Self::Busy,
            4 => Self::NoAnswer,
            5 => Self::Failed,
            _ => return None,
        })
    }
}

/// How a call went, as the history shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CallOutcome {
    /// Talked (`secs` long).
    Answered,
    /// Rang here and nobody answered (or the caller gave up).
    Missed,
    /// Declined (by whoever was called).
    Declined,
    /// The person called was in another call.
    Busy,
    /// Called, nobody answered.
    NoAnswer,
    /// The caller gave up before an answer.
    Cancelled,
    /// Could not be set up, or was cut (a compromise warning mid-call).
    Failed,
    /// From a contact reported compromised: never rang.
    Refused,
}

impl CallOutcome {
    /// Text form for `--json` and the app.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Missed => "missed",
            Self::Declined => "declined",
            Self::Busy => "busy",
            Self::NoAnswer => "no_answer",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
            Self::Refused => "refused",
        }
    }
}

/// A call in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallLog {
    /// With video.
    pub video: bool,
    /// How it went.
    pub outcome: CallOutcome,
    /// How long it lasted once answered, in seconds.
    #[serde(default)]
    pub secs: u64,
}

/// Where the current call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// We call; no answer yet.
    Calling,
    /// It rings here.
    Ringing,
    /// Answered (media may still be connecting).
    Answered,
}

/// Why a call operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// Already in a call.
    #[error("you are already in a call")]
    Busy,
    /// No call with this contact in the state asked for.
    #[error("there is no such call with this contact")]
    NoCall,
    /// A description was refused.
    #[error(transparent)]
    Sdp(#[from] SdpError),
}

/// The one current call.
#[derive(Clone)]
pub(crate) struct Current {
    contact: u64,
    id: CallId,
    outgoing: bool,
    video: bool,
    phase: Phase,
    /// When it started here (this device's clock).
    started_at: u64,
    answered_at: Option<u64>,
    /// The TURN server's relayed address both sides must use.
    relay_ip: Option<IpAddr>,
    /// The contact's offer while it rings.
    offer: Option<String>,
}

/// The call state as it was before an operation (see
/// [`Engine::save_call`]).
#[derive(Clone)]
pub struct SavedCall(pub(crate) Option<Current>);

impl std::fmt::Debug for SavedCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SavedCall(..)")
    }
}

/// What the front end sees of the current call.
#[derive(Clone, PartialEq, Eq)]
pub struct CallView {
    /// Contact id.
    pub contact: u64,
    /// Contact alias.
    pub alias: String,
    /// The call's id.
    pub id: CallId,
    /// We called.
    pub outgoing: bool,
    /// With video.
    pub video: bool,
    /// Where it stands.
    pub phase: Phase,
    /// When it started here.
    pub started_at: u64,
    /// When it was answered.
    pub answered_at: Option<u64>,
}

impl std::fmt::Debug for CallView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallView")
            .field("outgoing", &self.outgoing)
            .field("video", &self.video)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

/// Something a call did that the front end must act on.
#[derive(Clone)]
#[non_exhaustive]
pub enum CallUpdate {
    /// An offer rings here.
    Ringing {
        /// With video.
        video: bool,
    },
    /// Our call was answered: give the browser this (checked) SDP.
    Answered(CheckedSdp),
    /// The contact restarts ICE: answer this checked offer.
    Restart(CheckedSdp),
    /// The answer to our restart.
    RestartAnswer(CheckedSdp),
    /// The call is over; its history entry.
    Ended(HistoryEntry),
}

impl std::fmt::Debug for CallUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Ringing { .. } => "CallUpdate::Ringing",
            Self::Answered(_) => "CallUpdate::Answered(..)",
            Self::Restart(_) => "CallUpdate::Restart(..)",
            Self::RestartAnswer(_) => "CallUpdate::RestartAnswer(..)",
            Self::Ended(_) => "CallUpdate::Ended(..)",
        })
    }
}

mod incoming;
mod local;

#[cfg(test)]
mod tests;
