//! Calls: the session's side of [`ferry_core::call`]. The browser does the
//! media; the session fetches TURN credentials (never for a contact
//! reported compromised, never through a proxy), checks and sends every
//! description inside MLS, and writes each call's history entry.

use std::net::IpAddr;

use ferry_core::call::{CallView, EndReason};
use ferry_core::sdp::CheckedSdp;
use ferry_proto::api::TurnCredentials;
use rand_core::OsRng;

use super::{Change, Event, Session, SessionError, now};

impl Session {
    /// TURN credentials for a call with `alias` (to place one, or to accept
    /// the one ringing). Refused for a contact reported compromised, and
    /// while the profile uses a proxy: calls go over UDP or TCP straight to
    /// the TURN server, and would reveal the device's address to it.
    pub async fn call_turn(&mut self, alias: &str) -> Result<TurnCredentials, SessionError> {
        if self.network.proxy().is_some() {
            return Err(SessionError::CallsNeedDirect);
        }
        let (relay, mailbox, key) = self.engine().call_mailbox(alias)?;
        let creds = self
            .relay(&relay)?
            .turn_credentials(mailbox, &key.mailbox_key())
            .await?;
        self.call_relay_ip = Some((alias.to_owned(), creds.relay_ip));
        Ok(creds)
    }

    /// The relayed address of the TURN credentials last fetched for
    /// `alias`.
    fn turn_ip(&self, alias: &str) -> Result<IpAddr, SessionError> {
        match &self.call_relay_ip {
            Some((a, ip)) if a == alias => Ok(*ip),
            _ => Err(SessionError::NoTurn),
        }
    }

    /// Calls `alias` with the browser's offer (gathered with the
    /// credentials of [`Session::call_turn`]); returns it as sent.
    pub async fn call_start(
        &mut self,
        alias: &str,
        video: bool,
        sdp: &str,
    ) -> Result<CheckedSdp, SessionError> {
        let ip = self.turn_ip(alias)?;
        let (_, checked) = self.update(|e| {
            Ok((
                e.call_start(now(), &mut OsRng, alias, video, sdp, ip)?,
                Vec::new(),
            ))
        })?;
        self.flush_or_fail().await?;
        Ok(checked)
    }

    /// The ringing call's offer, checked, for the browser to answer (after
    /// [`Session::call_turn`]).
    pub async fn call_accept(&mut self, alias: &str) -> Result<CheckedSdp, SessionError> {
        let ip = self.turn_ip(alias)?;
        let out = self.update(|e| Ok((e.call_accept(now(), &mut OsRng, alias, ip), Vec::new())))?;
        // A refused offer ended the call: its end goes out.
        self.flush_outbox().await?;
        Ok(out?)
    }

    /// Sends the browser's answer to the ringing call.
    pub async fn call_answer(
        &mut self,
        alias: &str,
        sdp: &str,
    ) -> Result<CheckedSdp, SessionError> {
        let checked =
            self.update(|e| Ok((e.call_answer(now(), &mut OsRng, alias, sdp)?, Vec::new())))?;
        self.flush_or_fail().await?;
        Ok(checked)
    }

    /// Sends an ICE-restart offer (or, with `answer`, the answer to the
    /// contact's).
    pub async fn call_restart(
        &mut self,
        alias: &str,
        sdp: &str,
        answer: bool,
    ) -> Result<CheckedSdp, SessionError> {
        let checked = self.update(|e| {
            Ok((
                e.call_restart(now(), &mut OsRng, alias, sdp, answer)?,
                Vec::new(),
            ))
        })?;
        self.flush_or_fail().await?;
        Ok(checked)
    }

    /// Ends the call with `alias` (hang up, decline, or give up): tells the
    /// contact and keeps the call's history entry.
    pub async fn call_end(&mut self, alias: &str, reason: EndReason) -> Result<(), SessionError> {
        let entry = self.update(|e| {
            let (contact, entry) = e.call_end(now(), &mut OsRng, alias, reason)?;
            Ok((entry.clone(), vec![Change::Insert(contact, entry)]))
        })?;
        self.call_ended(alias.to_owned(), entry).await;
        Ok(())
    }

    /// Tells the front end a call ended here and sends its end (best
    /// effort: the contact's side times out anyway).
    async fn call_ended(&mut self, alias: String, entry: ferry_core::HistoryEntry) {
        self.call_relay_ip = None;
        self.emit(Event::Call {
            contact: alias,
            update: ferry_core::call::CallUpdate::Ended(entry),
        });
        let _ = self.flush_outbox().await;
    }

    /// The current call.
    pub fn call_view(&self) -> Option<CallView> {
        self.engine().call()
    }

    /// Ends a call that rang or called too long (every second from
    /// [`Session::serve`]).
    pub(crate) async fn call_tick(&mut self) {
        let ended = self.update(|e| match e.call_tick(now(), &mut OsRng) {
            Some((contact, alias, entry)) => Ok((
                Some((alias, entry.clone())),
                vec![Change::Insert(contact, entry)],
            )),
            None => Ok((None, Vec::new())),
        });
        if let Ok(Some((alias, entry))) = ended {
            self.call_ended(alias, entry).await;
        }
    }
}
