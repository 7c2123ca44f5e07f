//! Receiving: one-round-trip sync and live push.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::pin::Pin;
use std::time::Duration;

use ferry_core::Event as CoreEvent;
use ferry_proto::api::ServerFrame;
use ferry_proto::{MailboxId, Seq};
use rand_core::OsRng;
use tokio::sync::mpsc;

use super::{Change, Event, LockLimits, LockReason, Session, SessionError, now};
use crate::LiveConnection;
use crate::relay::{ClientError, SyncItem};
use crate::transport::retry;

/// Work a front end hands to a session that is watching (see
/// [`Session::serve`]): a closure over the session, run between pushes.
pub struct Job {
    /// What to do.
    pub run: JobFn,
    /// A person asked for it: it counts as activity for the idle lock.
    pub input: bool,
}

/// A job's closure.
pub type JobFn = Box<
    dyn for<'a> FnOnce(&'a mut Session) -> Pin<Box<dyn std::future::Future<Output = ()> + 'a>>
        + Send,
>;

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("input", &self.input)
            .finish_non_exhaustive()
    }
}

/// The next job, or never when there is no queue.
async fn next_job(jobs: &mut Option<&mut mpsc::Receiver<Job>>) -> Option<Job> {
    match jobs {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// How often (in one-second ticks) `watch` retries a duress capsule's fires
/// and renews the canaries that are due.
const CAPSULE_RETRY_TICKS: u64 = 60;

/// When `watch` next reads the group logs: 3 to 8 one-second ticks after
/// `now`, drawn at random each time.
fn next_group_read_after(now: u64) -> u64 {
    use rand_core::RngCore as _;
    now + 3 + u64::from(OsRng.next_u32() % 6)
}

/// Mailboxes named in one sync or subscribe request: well under the
/// relay's default limit (1,000), which a profile with many contacts and
/// moves in progress would otherwise exceed.
const MAILBOXES_PER_REQUEST: usize = 500;

impl Session {
    /// Processes fetched messages with the engine in memory, commits once,
    /// then reports them (view-once texts are destroyed once reported).
    /// Returns those to acknowledge: all but what does not open under this
    /// mailbox's keys (a copy of this profile whose keys are out of date
    /// must not make the relay drop what the phone can read; anything that
    /// opens and is refused after, a stale or forged message, goes).
    fn process(
        &mut self,
        fetched: Vec<(MailboxId, Seq, Vec<u8>)>,
    ) -> Result<Vec<(MailboxId, Seq)>, SessionError> {
        let (shown, taken) = self.update(|engine| {
            let mut shown: Vec<(u64, Event)> = Vec::new();
            let mut taken = Vec::new();
            let mut history = Vec::new();
            for (mailbox, seq, payload) in fetched {
                let got = engine.receive(now(), &mut OsRng, mailbox, seq.0, &payload)?;
                if !matches!(
                    got,
                    CoreEvent::Rejected {
                        reason: ferry_core::RejectReason::NotSealedForMailbox,
                        ..
                    }
                ) {
                    taken.push((mailbox, seq));
                }
                let ev = match got {
                    CoreEvent::Message {
                        contact,
                        alias,
                        entry,
                    } => {
                        history.push(Change::Insert(contact, entry.clone()));
                        shown.push((
                            contact,
                            Event::Received {
                                contact: alias,
                                entry,
                            },
                        ));
                        continue;
                    }
                    CoreEvent::Established { alias } => Event::Established { contact: alias },
                    CoreEvent::Rejected { alias, reason } => {
                        tracing::warn!(
                            reason = reason.as_str(),
                            "dropped a message that did not come from the contact"
                        );
                        Event::Rejected {
                            contact: alias,
                            reason,
                        }
                    }
                    CoreEvent::TimerChanged { alias, secs } => Event::Timer {
                        contact: alias,
                        secs,
                    },
                    CoreEvent::Deleted { contact, alias, id } => {
                        history.push(Change::Delete(contact, id.clone()));
                        Event::Deleted { contact: alias, id }
                    }
                    CoreEvent::ChallengeReceived { alias } => Event::Challenged { contact: alias },
                    CoreEvent::ChallengeResult {
                        alias,
                        result,
                        lifted,
                    } => Event::Proof {
                        contact: alias,
                        result,
                        lifted,
                    },
                    CoreEvent::VerifiersUpdated { alias, first } => Event::Verifiers {
                        contact: alias,
                        first,
                    },
                    // Nothing changed here: a compromised contact's control
                    // message, or a timer longer than this device's.
                    CoreEvent::Ignored { .. }
                    | CoreEvent::Rekeyed { .. }
                    | CoreEvent::Moved { .. } => continue,
                    CoreEvent::Compromised { alias, reason } => Event::Compromised {
                        contact: alias,
                        reason,
                    },
                    CoreEvent::Call {
                        contact,
                        alias,
                        update,
                    } => {
                        if let ferry_core::call::CallUpdate::Ended(entry) = &update {
                            history.push(Change::Insert(contact, entry.clone()));
                        }
                        Event::Call {
                            contact: alias,
                            update,
                        }
                    }
                    CoreEvent::Duplicate => continue,
                    CoreEvent::GroupJoined { group, by } => Event::GroupJoined { group, by },
                };
                shown.push((0, ev));
                // A contact reported compromised (a warning, or a duress
                // answer to a challenge) is cut off mid-call at once.
                if let Some(v) = engine.call()
                    && engine
                        .contact(&v.alias)
                        .is_some_and(|c| c.compromised.is_some())
                    && let Some(entry) = engine.call_cut(now(), &mut OsRng, v.contact)
                {
                    history.push(Change::Insert(v.contact, entry.clone()));
                    shown.push((
                        0,
                        Event::Call {
                            contact: v.alias,
                            update: ferry_core::call::CallUpdate::Ended(entry),
                        },
                    ));
                }
            }
            Ok(((shown, taken), history))
        })?;
        let mut viewed = Vec::new();
        for (contact, ev) in shown {
            if let Event::Received { entry, .. } = &ev
                && !self.view_once_on_open
                && entry.view_once
                && entry.attachment.is_none()
            {
                viewed.push((contact, entry.id.clone()));
            }
            self.emit(ev);
        }
        self.destroy_viewed(&viewed)?;
        Ok(taken)
    }

    /// One sync: sends what is queued, fetches every mailbox in one request
    /// per relay, processes and commits, reports (through the events), then
    /// acks.
    pub async fn sync(&mut self) -> Result<(), SessionError> {
        // Uploads an earlier run left unfinished go on first (their
        // messages are queued when they complete). One that cannot go on
        // now stays pending and never holds up the mail.
        if self.resume_uploads(&mut |_| {}).await.is_err() {
            tracing::warn!("an unfinished upload could not be resumed; the next sync tries again");
        }
        self.flush_outbox().await?;
        let mut acks: HashMap<MailboxId, Seq> = HashMap::new();
        // Read in this sync, taken or not: not asked for again.
        let mut read: HashMap<MailboxId, Seq> = HashMap::new();
        let mut gone: Vec<MailboxId> = Vec::new();
        loop {
            let mut by_relay: BTreeMap<String, Vec<ferry_core::InboundMailbox>> = BTreeMap::new();
            for ib in self.engine().inbound() {
                by_relay.entry(ib.relay.clone()).or_default().push(ib);
            }
            let mut fetched = Vec::new();
            // A contact's mailboxes come oldest first (after a move): while
            // an older one has more to read, a newer one waits, so what was
            // sent before the move (a commit above all) is processed before
            // what was sent after.
            let mut behind: HashSet<u64> = HashSet::new();
            for (url, all) in by_relay {
                let client = self.relay(&url)?.clone();
                // In requests the relay takes (in order, so a contact's
                // mailboxes stay oldest first).
                for boxes in all.chunks(MAILBOXES_PER_REQUEST) {
                    let keys: Vec<ferry_proto::MailboxKey> =
                        boxes.iter().map(|b| b.recipient.mailbox_key()).collect();
                    let items: Vec<SyncItem<'_>> = boxes
                        .iter()
                        .zip(&keys)
                        .map(|(b, k)| SyncItem {
                            id: b.mailbox,
                            key: k,
                            after: Seq(b.cursor.max(read.get(&b.mailbox).map_or(0, |s| s.0))),
                            ack_up_to: acks.get(&b.mailbox).copied(),
                        })
                        .collect();
                    let resp = match retry(|| client.sync(&items)).await {
                        Ok(r) => r,
                        // Not one of them is there any more (the relay
                        // answers so when no mailbox's key can check the
                        // request): all gone.
                        Err(e) if e.code() == Some(ferry_proto::ErrorCode::UnknownMailbox) => {
                            gone.extend(boxes.iter().map(|b| b.mailbox));
                            continue;
                        }
                        Err(e) => return Err(e.into()),
                    };
                    let mut by_id: HashMap<MailboxId, _> =
                        resp.mailboxes.into_iter().map(|r| (r.id, r)).collect();
                    for b in boxes {
                        if behind.contains(&b.contact) {
                            continue;
                        }
                        let Some(r) = by_id.remove(&b.mailbox) else {
                            continue;
                        };
                        if r.error == Some(ferry_proto::ErrorCode::UnknownMailbox) {
                            gone.push(b.mailbox);
                        }
                        let after = b.cursor.max(read.get(&b.mailbox).map_or(0, |s| s.0));
                        for m in r.messages {
                            // What was asked for only (a relay serving old
                            // numbers again cannot keep this loop going).
                            if m.seq.0 <= after {
                                continue;
                            }
                            let up = read.entry(r.id).or_insert(m.seq);
                            *up = (*up).max(m.seq);
                            fetched.push((r.id, m.seq, m.payload));
                        }
                        if r.more {
                            behind.insert(b.contact);
                        }
                    }
                }
            }
            if fetched.is_empty() {
                self.report_gone(&gone)?;
                // Every mailbox read to its end: those the contacts have
                // moved away from go, unless something there was kept
                // unacknowledged (it could not be opened here).
                let kept: Vec<MailboxId> = read
                    .iter()
                    .filter(|(m, s)| acks.get(m).is_none_or(|a| a < *s))
                    .map(|(m, _)| *m)
                    .collect();
                if self.engine().has_mailboxes_to_retire() {
                    self.update(|e| Ok((e.retire_moved(&kept), Vec::new())))?;
                    self.flush_outbox().await?;
                }
                self.deposit_new_canaries().await;
                // Group logs after the 1:1 mailboxes (an invite to a group
                // arrives there), each with its own cursor and key.
                self.sync_groups().await?;
                // Commits made on what was read (an admin's adds and
                // removals, members' requests to leave) go out now.
                self.flush_outbox().await?;
                return Ok(());
            }
            for (mailbox, seq) in self.process(fetched)? {
                let up = acks.entry(mailbox).or_insert(seq);
                *up = (*up).max(seq);
            }
            if std::env::var_os("FERRY_FAULT_EXIT_BEFORE_ACK").is_some() {
                // Fault injection for crash tests: die after commit, before ack.
                std::process::exit(75);
            }
            // Handshakes may have queued replies.
            self.flush_outbox().await?;
            // Loop: the next request acks what was processed and reads on.
        }
    }

    /// Mailboxes the relay no longer has: an earlier one (a move's) is
    /// forgotten; the current one of a set-up conversation is reported,
    /// once per session.
    fn report_gone(&mut self, gone: &[MailboxId]) -> Result<(), SessionError> {
        for &mailbox in gone {
            if self.lost.contains(&mailbox) {
                continue;
            }
            let lost = self.update(|e| Ok((e.mailbox_lost(mailbox), Vec::new())))?;
            if let Some(contact) = lost {
                tracing::warn!("a mailbox of this profile is gone from the relay");
                self.lost.insert(mailbox);
                self.emit(Event::MailboxGone { contact });
            }
        }
        Ok(())
    }

    /// Stays connected and processes messages as they are pushed, until
    /// `stop` resolves (`Ok(None)`) or an auto-lock limit is reached
    /// (`Ok(Some(reason))`): then the caller must lock the session and ask
    /// for the passphrase again.
    pub async fn watch(
        &mut self,
        stop: impl std::future::Future<Output = ()>,
        limits: LockLimits,
    ) -> Result<Option<LockReason>, SessionError> {
        self.serve(stop, limits, None).await
    }

    /// [`Session::watch`] that also runs the jobs arriving on `jobs`, in
    /// order, between pushes and on the same live connection (a front end
    /// acting on the session never makes it reconnect, so the relay cannot
    /// time a person's taps by the connections). A job marked as input
    /// counts as activity for the idle lock. Ends like `watch`, and with
    /// `Ok(None)` when `jobs` closes.
    pub async fn serve(
        &mut self,
        stop: impl std::future::Future<Output = ()>,
        limits: LockLimits,
        mut jobs: Option<&mut mpsc::Receiver<Job>>,
    ) -> Result<Option<LockReason>, SessionError> {
        tokio::pin!(stop);
        let started = tokio::time::Instant::now();
        // Only local input counts as activity: what the network pushes
        // (which whoever holds a seized phone could keep sending) never
        // keeps a session unlocked, and a plain watch has no input.
        let mut last_activity = started;
        let lock_at = |last: tokio::time::Instant| -> (tokio::time::Instant, LockReason) {
            let idle = last + limits.idle;
            let max = started + limits.max_unlocked;
            if idle <= max {
                (idle, LockReason::Idle)
            } else {
                (max, LockReason::MaxUnlocked)
            }
        };
        let mut backoff = Duration::from_millis(200);
        let mut expiry = tokio::time::interval(Duration::from_secs(1));
        let mut ticks: u64 = 0;
        let mut next_group_read = next_group_read_after(0);
        loop {
            // In a decoy opened under duress, canaries not fired yet are
            // fired as soon as the relay can be reached (nothing is shown).
            self.retry_capsule().await;
            self.sync().await?;
            let relay_url = self.engine().relay().to_owned();
            let mut live = match self.relay(&relay_url)?.connect_live().await {
                Ok(l) => l,
                Err(_) => {
                    // Offline: timers still run out on time, jobs still
                    // run, and the connection is tried again later.
                    let wait = tokio::time::sleep(backoff);
                    tokio::pin!(wait);
                    loop {
                        if self.wiped() {
                            return Ok(Some(LockReason::Wiped));
                        }
                        let (deadline, reason) = lock_at(last_activity);
                        tokio::select! {
                            () = &mut stop => return Ok(None),
                            () = tokio::time::sleep_until(deadline) => return Ok(Some(reason)),
                            job = next_job(&mut jobs) => {
                                let Some(job) = job else { return Ok(None) };
                                self.run_job(job, &mut last_activity).await;
                            }
                            _ = expiry.tick() => {
                                self.expire()?;
                                self.call_tick().await;
                            }
                            () = &mut wait => break,
                        }
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            backoff = Duration::from_millis(200);
            let mut subscribed: Vec<MailboxId> = Vec::new();
            let mut pending = VecDeque::new();
            match self.subscribe_new(&mut live, &mut subscribed).await {
                Ok(m) => pending.extend(m),
                Err(_) => {
                    // Not again at once: the relay refused (a mailbox it
                    // no longer has is left out from now on).
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            }
            loop {
                let (deadline, reason) = lock_at(last_activity);
                if let Some((mailbox, message)) = pending.pop_front() {
                    self.handle_pushed(&mut live, mailbox, message).await?;
                    continue;
                }
                let frame = tokio::select! {
                    () = &mut stop => return Ok(None),
                    () = tokio::time::sleep_until(deadline) => return Ok(Some(reason)),
                    job = next_job(&mut jobs) => {
                        let Some(job) = job else { return Ok(None) };
                        self.run_job(job, &mut last_activity).await;
                        if self.wiped() {
                            return Ok(Some(LockReason::Wiped));
                        }
                        // The job may have added mailboxes (an invite, an
                        // accepted link): follow them on this connection.
                        match self.subscribe_new(&mut live, &mut subscribed).await {
                            Ok(m) => pending.extend(m),
                            Err(_) => break,
                        }
                        continue;
                    }
                    _ = expiry.tick() => {
                        if self.wiped() {
                            return Ok(Some(LockReason::Wiped));
                        }
                        // Disappearing messages go while watch runs, too.
                        self.expire()?;
                        self.call_tick().await;
                        ticks += 1;
                        if ticks >= next_group_read {
                            // Group logs have no push: read every few
                            // seconds, at random moments apart from the
                            // 1:1 traffic. Failures wait for the next read.
                            next_group_read = next_group_read_after(ticks);
                            if self.read_groups_now().await.is_err() {
                                tracing::debug!("a group log could not be read; trying again later");
                            }
                        }
                        if ticks.is_multiple_of(CAPSULE_RETRY_TICKS) {
                            self.retry_capsule().await;
                            // Each canary is renewed when its own time comes,
                            // and idle conversations refresh their keys.
                            let _ = self.renew_canaries().await;
                            let _ = self.refresh_keys().await;
                            // Contacts left an earlier mailbox: a sync on
                            // a new connection reads it to its end first,
                            // then deletes it.
                            if self.engine().has_mailboxes_to_retire() {
                                break;
                            }
                        }
                        continue;
                    }
                    f = live.next() => f,
                };
                match frame {
                    Some(Ok(ServerFrame::Message { mailbox, message })) => {
                        if !self.handle_pushed(&mut live, mailbox, message).await? {
                            break;
                        }
                        match self.subscribe_new(&mut live, &mut subscribed).await {
                            Ok(m) => pending.extend(m),
                            Err(_) => break,
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                }
            }
        }
    }

    async fn run_job(&mut self, job: Job, last_activity: &mut tokio::time::Instant) {
        if job.input {
            *last_activity = tokio::time::Instant::now();
        }
        (job.run)(self).await;
    }

    /// Processes one pushed message, reports it, acks it on the socket and
    /// sends what it queued; `false` if the connection broke.
    async fn handle_pushed(
        &mut self,
        live: &mut LiveConnection,
        mailbox: MailboxId,
        message: ferry_proto::api::Message,
    ) -> Result<bool, SessionError> {
        if self.engine().waits_for_older(&mailbox) {
            // The contact moved here, and an earlier mailbox may still hold
            // what it sent before (a commit above all): a sync on a new
            // connection reads them in order, this one included.
            return Ok(false);
        }
        let seq = message.seq;
        let taken = self.process(vec![(mailbox, seq, message.payload)])?;
        if !taken.is_empty() && live.ack(mailbox, seq).await.is_err() {
            return Ok(false);
        }
        self.flush_outbox().await?;
        Ok(true)
    }

    /// Subscribes to inbound mailboxes not yet followed and waits for the
    /// relay's answer; returns messages pushed meanwhile.
    async fn subscribe_new(
        &mut self,
        live: &mut LiveConnection,
        subscribed: &mut Vec<MailboxId>,
    ) -> Result<Vec<(MailboxId, ferry_proto::api::Message)>, SessionError> {
        let own = self.engine().relay().to_owned();
        let mut got = Vec::new();
        loop {
            let new: Vec<ferry_core::InboundMailbox> = self
                .engine()
                .inbound()
                .into_iter()
                .filter(|b| {
                    b.relay == own
                        && !subscribed.contains(&b.mailbox)
                        && !self.lost.contains(&b.mailbox)
                })
                .take(MAILBOXES_PER_REQUEST)
                .collect();
            if new.is_empty() {
                return Ok(got);
            }
            let keys: Vec<ferry_proto::MailboxKey> =
                new.iter().map(|b| b.recipient.mailbox_key()).collect();
            let items: Vec<(MailboxId, &ferry_proto::MailboxKey, Seq)> = new
                .iter()
                .zip(&keys)
                .map(|(b, k)| (b.mailbox, k, Seq(b.cursor)))
                .collect();
            let req = live.subscribe(&items).await?;
            let answer = live
                .wait_for(req, |f| {
                    if let ServerFrame::Message { mailbox, message } = f {
                        got.push((mailbox, message));
                    }
                })
                .await?;
            match answer {
                ServerFrame::Ok { .. } => subscribed.extend(new.iter().map(|b| b.mailbox)),
                ServerFrame::Error { code, .. } => {
                    return Err(ClientError::Relay { status: 0, code }.into());
                }
                _ => {
                    return Err(
                        ClientError::Protocol("unexpected answer to subscribe".into()).into(),
                    );
                }
            }
        }
    }
}
