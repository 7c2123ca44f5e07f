//! Calls: signalling inside the conversation's MLS messages, and the one
//! call a profile may be in at a time. Sans-IO like the rest of the engine;
//! the call itself (media, ICE, DTLS) is the browser's.
//!
//! - An offer from a contact reported compromised never rings: it is
//!   recorded, flagged, as a refused call, and nothing else happens (no
//!   TURN credentials, no camera). Calling such a contact is refused.
//! - An offer older than [`RING_SECS`] (fetched late, after the app was
//!   closed) is a missed call, never a ring.
//! - Both calling at once: the inviter's call wins (the conversation's
//!   committer, leaf 0), deterministically on both sides.
//! - Every call leaves one history entry on each side (answered with its
//!   length, missed, declined, busy, unanswered, refused), under the
//!   conversation's disappearing timer like any message.

use std::net::IpAddr;

use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use crate::engine::{Contact, CoreError, Direction, Engine, Event, HistoryEntry, random_id};
use crate::envelope::Body;
use crate::sdp::{CheckedSdp, SdpError, check_local, check_remote};

/// How long a call rings before it is missed, in seconds.
pub const RING_SECS: u64 = 45;

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

/// What the front end sees of the current call.
#[derive(Debug, Clone, PartialEq, Eq)]
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

impl Engine {
    /// The current call, if any.
    pub fn call(&self) -> Option<CallView> {
        let c = self.call.as_ref()?;
        let alias = self
            .state
            .contacts
            .iter()
            .find(|x| x.id == c.contact)?
            .alias
            .clone();
        Some(CallView {
            contact: c.contact,
            alias,
            id: c.id,
            outgoing: c.outgoing,
            video: c.video,
            phase: c.phase,
            started_at: c.started_at,
            answered_at: c.answered_at,
        })
    }

    /// Moves the call state out (kept across a reload of the engine).
    pub fn take_call(&mut self) -> Option<Box<dyn std::any::Any + Send>> {
        self.call
            .take()
            .map(|c| Box::new(c) as Box<dyn std::any::Any + Send>)
    }

    /// Puts back what [`Engine::take_call`] moved out.
    pub fn restore_call(&mut self, saved: Option<Box<dyn std::any::Any + Send>>) {
        self.call = saved.and_then(|b| b.downcast::<Current>().ok()).map(|b| *b);
    }

    /// Where a call with `alias` gets its TURN credentials: the relay of
    /// the callee's mailbox for the caller, where both sides hold a key
    /// (the caller its sender key, the callee its recipient key), so both
    /// use the same TURN server. Refused for a contact reported
    /// compromised: no credentials, ever, for their calls.
    pub fn call_mailbox(
        &self,
        alias: &str,
    ) -> Result<(String, ferry_proto::MailboxId, crate::KeyBytes), CoreError> {
        let c = self.established(alias)?;
        if c.compromised.is_some() {
            return Err(CoreError::Compromised);
        }
        let callee = self
            .call
            .as_ref()
            .is_some_and(|x| x.contact == c.id && !x.outgoing);
        if callee {
            Ok((
                c.inbound.relay.clone(),
                c.inbound.mailbox,
                c.inbound.recipient.clone(),
            ))
        } else {
            self.attachment_upload(alias)
        }
    }

    /// Calls `alias` with our browser's offer (checked and cleaned here
    /// against the TURN server's relayed address). A contact reported
    /// compromised cannot be called.
    pub fn call_start(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        alias: &str,
        video: bool,
        sdp: &str,
        relay_ip: IpAddr,
    ) -> Result<(CallId, CheckedSdp), CoreError> {
        let c = self.established(alias)?;
        if c.compromised.is_some() {
            return Err(CoreError::Compromised);
        }
        if self.call.is_some() {
            return Err(CallError::Busy.into());
        }
        let checked = check_local(sdp, relay_ip).map_err(CallError::from)?;
        let id = CallId(random_id(rng));
        self.queue(
            now,
            rng,
            &c,
            Body::Call {
                id,
                signal: Signal::Offer {
                    video,
                    sdp: checked.sdp.clone(),
                },
            },
        )?;
        self.call = Some(Current {
            contact: c.id,
            id,
            outgoing: true,
            video,
            phase: Phase::Calling,
            started_at: now,
            answered_at: None,
            relay_ip: Some(relay_ip),
            offer: None,
        });
        Ok((id, checked))
    }

    /// The ringing call's offer, checked against the TURN server's relayed
    /// address, for the browser to answer. A refused offer ends the call.
    pub fn call_accept(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        alias: &str,
        relay_ip: IpAddr,
    ) -> Result<CheckedSdp, CoreError> {
        let cur = self.current_with(alias, |c| c.phase == Phase::Ringing)?;
        let offer = cur.offer.clone().unwrap_or_default();
        match check_remote(&offer, relay_ip) {
            Ok(checked) => {
                if let Some(c) = self.call.as_mut() {
                    c.relay_ip = Some(relay_ip);
                }
                Ok(checked)
            }
            Err(e) => {
                self.call_end(now, rng, alias, EndReason::Failed)?;
                Err(CallError::Sdp(e).into())
            }
        }
    }

    /// Sends our browser's answer to the ringing call.
    pub fn call_answer(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        alias: &str,
        sdp: &str,
    ) -> Result<CheckedSdp, CoreError> {
        let cur = self.current_with(alias, |c| c.phase == Phase::Ringing)?;
        let relay_ip = cur.relay_ip.ok_or(CallError::NoCall)?;
        let checked = check_local(sdp, relay_ip).map_err(CallError::from)?;
        let c = self.established(alias)?;
        self.queue(
            now,
            rng,
            &c,
            Body::Call {
                id: cur.id,
                signal: Signal::Answer {
                    sdp: checked.sdp.clone(),
                },
            },
        )?;
        if let Some(x) = self.call.as_mut() {
            x.phase = Phase::Answered;
            x.answered_at = Some(now);
            x.offer = None;
        }
        Ok(checked)
    }

    /// Sends a restart offer (or, with `answer`, the answer to the
    /// contact's) during an answered call.
    pub fn call_restart(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        alias: &str,
        sdp: &str,
        answer: bool,
    ) -> Result<CheckedSdp, CoreError> {
        let cur = self.current_with(alias, |c| c.phase == Phase::Answered)?;
        let relay_ip = cur.relay_ip.ok_or(CallError::NoCall)?;
        let checked = check_local(sdp, relay_ip).map_err(CallError::from)?;
        let c = self.established(alias)?;
        let sdp = checked.sdp.clone();
        let signal = if answer {
            Signal::RestartAnswer { sdp }
        } else {
            Signal::Restart { sdp }
        };
        self.queue(now, rng, &c, Body::Call { id: cur.id, signal })?;
        Ok(checked)
    }

    /// Ends the call with `alias` here and tells the contact (unless they
    /// are reported compromised); returns its history entry.
    pub fn call_end(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        alias: &str,
        reason: EndReason,
    ) -> Result<(u64, HistoryEntry), CoreError> {
        let cur = self.current_with(alias, |_| true)?;
        let c = self.established(alias)?;
        self.call = None;
        if c.compromised.is_none() {
            self.queue(
                now,
                rng,
                &c,
                Body::Call {
                    id: cur.id,
                    signal: Signal::End { reason },
                },
            )?;
        }
        let outcome = match (cur.phase, cur.outgoing, reason) {
            (Phase::Answered, _, _) => CallOutcome::Answered,
            (Phase::Ringing, _, EndReason::Declined) => CallOutcome::Declined,
            (Phase::Ringing, _, EndReason::NoAnswer) => CallOutcome::Missed,
            (_, _, EndReason::Failed) => CallOutcome::Failed,
            (Phase::Calling, _, EndReason::NoAnswer) => CallOutcome::NoAnswer,
            (Phase::Calling, _, _) => CallOutcome::Cancelled,
            (Phase::Ringing, _, _) => CallOutcome::Missed,
        };
        Ok((c.id, log_entry(rng, &c, &cur, outcome, now, false)))
    }

    /// A call that rang or called for [`RING_SECS`] without an answer ends
    /// (the caller tells the callee); its history entry.
    pub fn call_tick(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Option<(u64, String, HistoryEntry)> {
        let cur = self.call.clone()?;
        if cur.phase == Phase::Answered || now < cur.started_at.saturating_add(RING_SECS) {
            return None;
        }
        let alias = self
            .state
            .contacts
            .iter()
            .find(|c| c.id == cur.contact)?
            .alias
            .clone();
        match self.call_end(now, rng, &alias, EndReason::NoAnswer) {
            Ok((contact, entry)) => Some((contact, alias, entry)),
            Err(_) => {
                self.call = None;
                None
            }
        }
    }

    /// Cuts the call with `contact` without telling them (they were just
    /// reported compromised); its history entry.
    pub fn call_cut(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        contact: u64,
    ) -> Option<HistoryEntry> {
        let cur = self.call.clone()?;
        if cur.contact != contact {
            return None;
        }
        self.call = None;
        let c = self
            .state
            .contacts
            .iter()
            .find(|c| c.id == contact)?
            .clone();
        Some(log_entry(rng, &c, &cur, CallOutcome::Failed, now, false))
    }

    fn current_with(
        &self,
        alias: &str,
        ok: impl Fn(&Current) -> bool,
    ) -> Result<Current, CoreError> {
        let c = self.established(alias)?;
        match &self.call {
            Some(cur) if cur.contact == c.id && ok(cur) => Ok(cur.clone()),
            _ => Err(CallError::NoCall.into()),
        }
    }

    /// Whether we invited this contact (the conversation's committer).
    fn inviter_of(&mut self, c: &Contact) -> bool {
        self.group_mut(c)
            .map(|(g, _, _)| g.own_leaf_index().u32() == 0)
            .unwrap_or(false)
    }

    /// A call signal from contact `c` (as it was before), sent at its
    /// `sent_at`.
    pub(crate) fn on_call(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        c: &Contact,
        id: CallId,
        signal: Signal,
        sent_at: u64,
    ) -> Result<Event, CoreError> {
        let alias = c.alias.clone();
        let update = |update| {
            Ok(Event::Call {
                contact: c.id,
                alias: alias.clone(),
                update,
            })
        };
        let ignored = || {
            Ok(Event::Ignored {
                alias: alias.clone(),
            })
        };
        let incoming = |video| Current {
            contact: c.id,
            id,
            outgoing: false,
            video,
            phase: Phase::Ringing,
            started_at: now,
            answered_at: None,
            relay_ip: None,
            offer: None,
        };
        if c.compromised.is_some() {
            // Never rings, never asks for TURN or the camera: recorded.
            return match signal {
                Signal::Offer { video, .. } => {
                    let entry =
                        log_entry(rng, c, &incoming(video), CallOutcome::Refused, now, true);
                    update(CallUpdate::Ended(entry))
                }
                _ => ignored(),
            };
        }
        let same = self
            .call
            .as_ref()
            .is_some_and(|x| x.contact == c.id && x.id == id);
        match signal {
            Signal::Offer { video, sdp } => {
                if sdp.len() > crate::sdp::MAX_SDP {
                    return crate::engine::rejected(&alias, crate::RejectReason::MalformedContent);
                }
                let stale = now > sent_at.saturating_add(RING_SECS);
                let glare = self
                    .call
                    .as_ref()
                    .is_some_and(|x| x.contact == c.id && x.outgoing && x.phase == Phase::Calling);
                if glare && !stale {
                    if self.inviter_of(c) {
                        // Ours wins; they drop theirs when ours arrives.
                        return ignored();
                    }
                    self.call = None;
                } else if self.call.is_some() || stale {
                    if !stale {
                        self.queue(
                            now,
                            rng,
                            c,
                            Body::Call {
                                id,
                                signal: Signal::End {
                                    reason: EndReason::Busy,
                                },
                            },
                        )?;
                    }
                    let entry =
                        log_entry(rng, c, &incoming(video), CallOutcome::Missed, now, false);
                    return update(CallUpdate::Ended(entry));
                }
                let mut cur = incoming(video);
                cur.offer = Some(sdp);
                self.call = Some(cur);
                update(CallUpdate::Ringing { video })
            }
            Signal::Answer { sdp } => {
                let Some(cur) = self
                    .call
                    .clone()
                    .filter(|x| same && x.outgoing && x.phase == Phase::Calling)
                else {
                    return ignored();
                };
                let relay_ip = cur.relay_ip.ok_or(CallError::NoCall)?;
                match check_remote(&sdp, relay_ip) {
                    Ok(checked) => {
                        if let Some(x) = self.call.as_mut() {
                            x.phase = Phase::Answered;
                            x.answered_at = Some(now);
                        }
                        update(CallUpdate::Answered(checked))
                    }
                    Err(_) => {
                        let (_, entry) = self.call_end(now, rng, &alias, EndReason::Failed)?;
                        update(CallUpdate::Ended(entry))
                    }
                }
            }
            Signal::Restart { sdp } => self.on_restart(now, rng, c, same, &sdp, false),
            Signal::RestartAnswer { sdp } => self.on_restart(now, rng, c, same, &sdp, true),
            Signal::End { reason } => {
                let Some(cur) = self.call.clone().filter(|_| same) else {
                    return ignored();
                };
                self.call = None;
                let outcome = match (cur.phase, reason) {
                    (Phase::Answered, _) => CallOutcome::Answered,
                    (Phase::Ringing, _) => CallOutcome::Missed,
                    (Phase::Calling, EndReason::Declined) => CallOutcome::Declined,
                    (Phase::Calling, EndReason::Busy) => CallOutcome::Busy,
                    (Phase::Calling, EndReason::NoAnswer) => CallOutcome::NoAnswer,
                    (Phase::Calling, _) => CallOutcome::Failed,
                };
                let entry = log_entry(rng, c, &cur, outcome, now, false);
                update(CallUpdate::Ended(entry))
            }
        }
    }
}

impl Engine {
    /// A restart offer (or, with `answer`, the answer to ours) during the
    /// answered call.
    fn on_restart(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        c: &Contact,
        same: bool,
        sdp: &str,
        answer: bool,
    ) -> Result<Event, CoreError> {
        let alias = c.alias.clone();
        let Some(cur) = self
            .call
            .clone()
            .filter(|x| same && x.phase == Phase::Answered)
        else {
            return Ok(Event::Ignored { alias });
        };
        let relay_ip = cur.relay_ip.ok_or(CallError::NoCall)?;
        let update = match check_remote(sdp, relay_ip) {
            Ok(checked) if answer => CallUpdate::RestartAnswer(checked),
            Ok(checked) => CallUpdate::Restart(checked),
            Err(_) => {
                let (_, entry) = self.call_end(now, rng, &alias, EndReason::Failed)?;
                CallUpdate::Ended(entry)
            }
        };
        Ok(Event::Call {
            contact: c.id,
            alias,
            update,
        })
    }
}

/// The history entry of a call, under the conversation's timer.
fn log_entry(
    rng: &mut impl CryptoRngCore,
    c: &Contact,
    cur: &Current,
    outcome: CallOutcome,
    now: u64,
    flagged: bool,
) -> HistoryEntry {
    let secs = cur.answered_at.map_or(0, |a| now.saturating_sub(a));
    HistoryEntry {
        id: ferry_proto::b64::encode(&random_id(rng)),
        direction: if cur.outgoing {
            Direction::Out
        } else {
            Direction::In
        },
        text: String::new(),
        sent_at: cur.started_at,
        expires_at: c.timer.map(|t| now.saturating_add(t)),
        view_once: false,
        flagged,
        attachment: None,
        call: Some(CallLog {
            video: cur.video,
            outcome: if outcome == CallOutcome::Answered && cur.answered_at.is_none() {
                CallOutcome::Failed
            } else {
                outcome
            },
            secs,
        }),
    }
}

#[cfg(test)]
mod tests;
