//! What the contact's signals do here, and the history entry of a call.

use rand_core::CryptoRngCore;

use super::*;
use crate::engine::{Contact, CoreError, Direction, Engine, Event, HistoryEntry, random_id};
use crate::envelope::Body;
use crate::sdp::check_remote;

impl Engine {
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
                // The same offer again (fetched twice): nothing new.
                if self.call.as_ref().is_some_and(|x| x.id == id) {
                    return ignored();
                }
                // Judged by the sender's clock, with room for it to be off:
                // the ring itself times out by this device's clock.
                let stale = now > sent_at.saturating_add(STALE_OFFER_SECS);
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
pub(super) fn log_entry(
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
        from: None,
    }
}
