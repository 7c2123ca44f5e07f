//! What this side does: place, accept, answer, restart, end a call, and
//! the ring timeout.

use std::net::IpAddr;

use rand_core::CryptoRngCore;

use super::incoming::log_entry;
use super::*;
use crate::engine::{Contact, CoreError, Engine, HistoryEntry, random_id};
use crate::envelope::Body;
use crate::sdp::{CheckedSdp, check_local, check_remote};

impl Engine {
    /// The current call, if any.
    pub fn call(&self) -> Option<CallView> {
        let c = self.call.as_ref()?;
        let alias = self.alias_of(c.contact)?;
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

    /// A copy of the call state (to put back on a reloaded engine: a call
    /// lives in memory only).
    pub fn save_call(&self) -> SavedCall {
        SavedCall(self.call.clone())
    }

    /// Puts back what [`Engine::save_call`] copied.
    pub fn restore_call(&mut self, saved: SavedCall) {
        self.call = saved.0;
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
        let alias = self.alias_of(cur.contact)?;
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

    fn alias_of(&self, contact: u64) -> Option<String> {
        self.state
            .contacts
            .iter()
            .find(|c| c.id == contact)
            .map(|c| c.alias.clone())
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
    pub(super) fn inviter_of(&mut self, c: &Contact) -> bool {
        self.group_mut(c)
            .map(|(g, _, _)| g.own_leaf_index().u32() == 0)
            .unwrap_or(false)
    }
}
