//! Group chats: creating, adding and removing members, sending, and
//! reading each group's log at the relay with its own cursor.
//!
//! Every step follows the session's order: the engine changes the group
//! (and queues its relay calls), the vault commits that together with the
//! history, and only then does the relay hear of it. A commit is therefore
//! always on disk before it is sent, and a retry sends the same bytes.

use ferry_core::{Action, ActionId, GroupEvent, GroupMember, GroupSummary, HistoryEntry};
use ferry_proto::{ErrorCode, MailboxKey, Seq};
use rand_core::OsRng;

use super::{Change, Event, Session, SessionError, now};
use crate::relay::GroupCommit;
use crate::transport::{ClientError, retry};

/// Entries asked for per read of a group's log.
const ENTRIES_PER_READ: usize = 200;
/// Times in one flush a group's post is sealed again, or its commit meets
/// a conflict, before its calls wait for the next run (a relay that always
/// says "stale" or "conflict" cannot keep the session busy).
pub(crate) const GROUP_RETRIES: u32 = 8;

/// What became of a queued group call.
pub(crate) enum GroupOutcome {
    /// Done, or dropped for good (logged): remove it.
    Done,
    /// The relay took it.
    OnRelay,
    /// The engine replaced it (sealed again in a later epoch): it is gone
    /// already.
    Replaced,
    /// Another admin's commit came first: ours was dropped and the same
    /// intents queued again.
    Conflict,
    /// Not now (the group's relay cannot be reached, or the log could not
    /// be read): it waits, and so do the group's later calls.
    Wait,
}

/// The group a queued call belongs to.
pub(crate) fn group_of(a: &Action) -> Option<u64> {
    match a {
        Action::CreateGroup { local, .. }
        | Action::GroupPost { local, .. }
        | Action::GroupCommit { local, .. } => Some(*local),
        _ => None,
    }
}

/// An engine step of a group call: a refusal of the engine drops the call
/// (logged); anything else (the vault) waits.
fn step<T>(r: Result<T, SessionError>) -> Result<Option<T>, GroupOutcome> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(SessionError::Core(_)) => {
            tracing::warn!("a queued group call no longer applies; dropped");
            Ok(None)
        }
        Err(_) => Err(GroupOutcome::Wait),
    }
}

impl Session {
    /// Creates a group this profile owns, on its relay; `display` is this
    /// member's name in it.
    pub async fn create_group(&mut self, name: &str, display: &str) -> Result<(), SessionError> {
        self.update(|e| {
            e.create_group(&mut OsRng, name, display)?;
            Ok(((), Vec::new()))
        })?;
        self.flush_or_fail().await
    }

    /// Whether `name` is a group's (and not a contact's).
    pub fn is_group(&self, name: &str) -> bool {
        self.engine.contact(name).is_none() && self.engine.group_id(name).is_some()
    }

    /// Every group.
    pub fn groups(&mut self) -> Vec<GroupSummary> {
        self.engine.groups()
    }

    /// The members of a group.
    pub fn group_members(&mut self, name: &str) -> Result<Vec<GroupMember>, SessionError> {
        Ok(self.engine.group_members(name)?)
    }

    /// Asks contacts to join a group (admins): each one's device answers
    /// with a key package at its next sync, and the add is committed at
    /// ours.
    pub async fn group_add(&mut self, name: &str, aliases: &[String]) -> Result<(), SessionError> {
        self.catch_up_group(name).await;
        self.update(|e| {
            for alias in aliases {
                e.group_add(now(), &mut OsRng, name, alias)?;
            }
            Ok(((), Vec::new()))
        })?;
        self.flush_or_fail().await
    }

    /// Removes a member (a contact's alias, or the member's name in the
    /// group); the commit also moves the group's relay keys on.
    pub async fn group_remove(&mut self, name: &str, member: &str) -> Result<(), SessionError> {
        self.catch_up_group(name).await;
        self.update(|e| Ok((e.group_remove(name, member)?, Vec::new())))?;
        self.flush_or_fail().await
    }

    /// Reads a group's log before acting on it (an admin commits only once
    /// caught up); a failure leaves the act queued for the next sync.
    pub(crate) async fn catch_up_group(&mut self, name: &str) {
        if let Some(id) = self.engine.group_id(name)
            && self.read_group_log(id).await.is_err()
        {
            tracing::debug!("the group's log could not be read now");
        }
    }

    /// Leaves a group: the admins commit it; here the group and its
    /// history are gone at once.
    pub async fn group_leave(&mut self, name: &str) -> Result<(), SessionError> {
        // The request goes in the epoch now, and is sealed again while the
        // group is still here if the relay finds it stale.
        self.catch_up_group(name).await;
        self.update(|e| Ok((e.group_request_leave(name)?, Vec::new())))?;
        // Best effort: the group goes from here whatever the relay says (a
        // request that could not go waits in the outbox).
        let _ = self.flush_outbox().await;
        self.update(|e| {
            let id = e.group_forget(name)?;
            Ok(((), vec![Change::DeleteAll(id)]))
        })?;
        Ok(())
    }

    /// Sends a text to a group.
    pub async fn group_send(
        &mut self,
        name: &str,
        text: &str,
        view_once: bool,
    ) -> Result<HistoryEntry, SessionError> {
        let before = self.engine().outbox_last();
        let entry = self.update(|e| {
            let (id, entry) = e.group_send(now(), &mut OsRng, name, text, view_once)?;
            let keep = if view_once {
                Vec::new()
            } else {
                vec![Change::Insert(id, entry.clone())]
            };
            Ok((entry, keep))
        })?;
        self.emit(Event::Sent {
            contact: name.to_owned(),
            entry: entry.clone(),
        });
        let queued: Vec<ActionId> = self
            .engine()
            .outbox_ids()
            .into_iter()
            .filter(|(a, act)| {
                before.is_none_or(|b| *a > b) && matches!(act, Action::GroupPost { .. })
            })
            .map(|(a, _)| a)
            .collect();
        for a in queued {
            self.pending.insert(a, (name.to_owned(), entry.id.clone()));
        }
        self.flush_or_fail().await?;
        Ok(entry)
    }

    /// Performs a queued group call. A relay that refuses it for good
    /// drops it (`Err`, reported like any refused call).
    pub(crate) async fn perform_group(
        &mut self,
        id: ActionId,
        action: &Action,
    ) -> Result<GroupOutcome, ClientError> {
        let relay = match action {
            Action::CreateGroup { relay, .. }
            | Action::GroupPost { relay, .. }
            | Action::GroupCommit { relay, .. } => relay.clone(),
            _ => return Ok(GroupOutcome::Done),
        };
        let Ok(client) = self.group_relay(&relay).cloned() else {
            return Ok(GroupOutcome::Done);
        };
        let transient = |e: ClientError| {
            if e.is_permanent() {
                Err(e)
            } else {
                Ok(GroupOutcome::Wait)
            }
        };
        match action {
            Action::CreateGroup {
                group,
                admin,
                read,
                write,
                ..
            } => {
                let (admin, read, write) =
                    (admin.mailbox_key(), read.mailbox_key(), write.mailbox_key());
                match retry(|| client.create_group(*group, &admin, &read, &write)).await {
                    Ok(()) => Ok(GroupOutcome::OnRelay),
                    Err(e) => transient(e),
                }
            }
            Action::GroupPost {
                group,
                local,
                write,
                epoch,
                payload,
                ..
            } => {
                let key = write.mailbox_key();
                match retry(|| client.post_group(*group, &key, *epoch, payload.clone())).await {
                    Ok(_) => Ok(GroupOutcome::OnRelay),
                    Err(ClientError::GroupMovedOn { .. }) => {
                        // Read the commits that moved the group on, then
                        // seal it again in the epoch now.
                        if self.read_group_log(*local).await.is_err() {
                            return Ok(GroupOutcome::Wait);
                        }
                        match step(self.update(|e| Ok((e.group_reseal(id)?, Vec::new())))) {
                            Ok(Some(true)) => Ok(GroupOutcome::Replaced),
                            Ok(_) => Ok(GroupOutcome::Done),
                            Err(o) => Ok(o),
                        }
                    }
                    // The group's quota is full (a member flooding it):
                    // this message is refused, the rest goes on.
                    Err(e) if e.code() == Some(ErrorCode::MailboxFull) => Err(e),
                    Err(e) => transient(e),
                }
            }
            Action::GroupCommit { local, .. } => {
                let to_send = match step(
                    self.update(|e| Ok((e.group_commit_to_send(*local)?, Vec::new()))),
                ) {
                    Ok(Some(Some(c))) => c,
                    Ok(Some(None)) => return Ok(GroupOutcome::Done),
                    // It cannot even be sent (too large): dropped.
                    Ok(None) => {
                        self.drop_commit(*local);
                        return Ok(GroupOutcome::Done);
                    }
                    Err(o) => return Ok(o),
                };
                let c = to_send;
                let admin = c.admin.mailbox_key();
                let commit = GroupCommit {
                    expected: c.expected,
                    payload: c.payload,
                    rotate: c
                        .rotate
                        .as_ref()
                        .map(|(r, w)| (r.mailbox_key().public(), w.mailbox_key().public())),
                    add_admins: Vec::new(),
                    remove_admins: Vec::new(),
                };
                match retry(|| client.commit_group(c.group, &admin, &commit)).await {
                    Ok(taken) => {
                        let landed = self.update(|e| {
                            let changed = e.group_commit_landed(
                                now(),
                                &mut OsRng,
                                *local,
                                taken.seq.0,
                                taken.epoch,
                            )?;
                            Ok((changed, Vec::new()))
                        });
                        match step(landed) {
                            Ok(changed) => {
                                if let Some(Some(GroupEvent::Members {
                                    name,
                                    added,
                                    removed,
                                })) = changed
                                {
                                    self.emit(Event::GroupMembers {
                                        group: name,
                                        added,
                                        removed,
                                    });
                                }
                                Ok(GroupOutcome::OnRelay)
                            }
                            Err(o) => Ok(o),
                        }
                    }
                    Err(ClientError::GroupMovedOn {
                        code: ErrorCode::CommitConflict,
                        ..
                    }) => {
                        // Another admin's commit came first: ours is
                        // dropped, the log read, and the same intents
                        // committed again on top (`group_commit_to_send`
                        // does so for a retry that finds nothing pending).
                        if let Err(o) =
                            step(self.update(|e| Ok((e.group_commit_refused(*local)?, Vec::new()))))
                        {
                            return Ok(o);
                        }
                        if self.read_group_log(*local).await.is_err() {
                            return Ok(GroupOutcome::Wait);
                        }
                        // Committed anew on top (also when the read brought
                        // nothing new).
                        if let Err(o) =
                            step(self.update(|e| Ok((e.group_retry(*local)?, Vec::new()))))
                        {
                            return Ok(o);
                        }
                        Ok(GroupOutcome::Conflict)
                    }
                    Err(e) if e.is_permanent() => {
                        // Refused for good: ours goes with its intent, so
                        // the admin is not stuck behind it.
                        self.drop_commit(*local);
                        Err(e)
                    }
                    Err(e) => transient(e),
                }
            }
            _ => Ok(GroupOutcome::Done),
        }
    }

    /// Drops the pending commit of group `local` and the intent it was made
    /// for (logged; a failure leaves it for the next run).
    fn drop_commit(&mut self, local: u64) {
        tracing::warn!("a group commit was refused for good; dropped");
        let _ = self.update(|e| Ok((e.group_commit_dropped(local)?, Vec::new())));
    }

    /// Reads every group's log and sends what that queued (commits an
    /// admin makes on what it read): what `watch` does every few seconds.
    pub(crate) async fn read_groups_now(&mut self) -> Result<(), SessionError> {
        if self.engine.group_reads().is_empty() {
            return Ok(());
        }
        self.sync_groups().await?;
        self.flush_outbox().await?;
        Ok(())
    }

    /// Reads every group's log to its end.
    pub(crate) async fn sync_groups(&mut self) -> Result<(), SessionError> {
        let locals: Vec<u64> = self.engine.group_reads().iter().map(|r| r.local).collect();
        for local in locals {
            // One group that cannot be read now never holds up the others
            // (or the 1:1 mail).
            if self.read_group_log(local).await.is_err() {
                tracing::warn!("a group's log could not be read; the next sync tries again");
            }
        }
        Ok(())
    }

    /// Reads group `local`'s log from its cursor to the end, committing and
    /// reporting each batch.
    pub(crate) async fn read_group_log(&mut self, local: u64) -> Result<(), SessionError> {
        loop {
            let Some(r) = self
                .engine
                .group_reads()
                .into_iter()
                .find(|r| r.local == local)
            else {
                return Ok(());
            };
            let key: MailboxKey = r.read.mailbox_key();
            let client = self.group_relay(&r.relay)?.clone();
            let got = retry(|| {
                client.fetch_group(r.mailbox, &key, Seq(r.cursor), Some(ENTRIES_PER_READ))
            })
            .await?;
            let entries: Vec<_> = got
                .entries
                .into_iter()
                .filter(|e| e.seq.0 > r.cursor)
                .collect();
            if entries.is_empty() {
                return Ok(());
            }
            let events = self.update(|engine| {
                let mut events = Vec::new();
                let mut history = Vec::new();
                for e in &entries {
                    if engine.group_reads().iter().all(|g| g.local != local) {
                        break;
                    }
                    // An entry that fails here is skipped (its cursor is
                    // past it): one bad entry never stops the group's log.
                    let Ok(got) = engine.group_receive(now(), &mut OsRng, local, e) else {
                        tracing::warn!("a group entry could not be processed; skipped");
                        continue;
                    };
                    for ev in got {
                        match &ev {
                            GroupEvent::Message { group, entry, .. } => {
                                history.push(Change::Insert(*group, entry.clone()));
                            }
                            // Its history goes in the same transaction.
                            GroupEvent::RemovedMe { group, .. } => {
                                history.push(Change::DeleteAll(*group));
                            }
                            _ => {}
                        }
                        events.push(ev);
                    }
                }
                // An admin's next commit (adds, removals, leaves asked
                // for) once the log is read past its last one.
                engine.group_retry(local)?;
                Ok((events, history))
            })?;
            let mut removed = false;
            let mut viewed = Vec::new();
            for ev in events {
                match ev {
                    GroupEvent::Message { group, name, entry } => {
                        if !self.view_once_on_open && entry.view_once {
                            viewed.push((group, entry.id.clone()));
                        }
                        self.emit(Event::Received {
                            contact: name,
                            entry,
                        });
                    }
                    GroupEvent::Members {
                        name,
                        added,
                        removed,
                    } => self.emit(Event::GroupMembers {
                        group: name,
                        added,
                        removed,
                    }),
                    GroupEvent::Quarantined { name, member } => {
                        self.emit(Event::GroupQuarantined {
                            group: name,
                            member,
                        })
                    }
                    GroupEvent::RemovedMe { name, .. } => {
                        self.emit(Event::GroupRemoved { group: name });
                        removed = true;
                    }
                    _ => {}
                }
            }
            self.destroy_viewed(&viewed)?;
            // Until a read comes back empty: a read key replaced by a
            // commit reads up to it, and the next read uses the new one.
            if removed {
                return Ok(());
            }
        }
    }
}
