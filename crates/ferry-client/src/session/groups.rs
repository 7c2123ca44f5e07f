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
/// Times in one flush a post refused as stale is sealed again before the
/// rest waits for the next sync (a relay that always says "stale" cannot
/// keep the session busy).
pub(crate) const STALE_RETRIES: u32 = 3;

/// What became of a queued group call.
pub(crate) enum GroupOutcome {
    /// Done (or dropped for good): remove it.
    Done,
    /// The engine replaced it (sealed again, committed again): it is gone
    /// already.
    Replaced,
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
        self.update(|e| Ok((e.group_remove(name, member)?, Vec::new())))?;
        self.flush_or_fail().await
    }

    /// Leaves a group: the admins commit it; here the group and its
    /// history are gone at once.
    pub async fn group_leave(&mut self, name: &str) -> Result<(), SessionError> {
        let id = self
            .engine
            .group_id(name)
            .ok_or(ferry_core::CoreError::UnknownGroup)?;
        let wipe = self.history_ids(id)?;
        self.update(|e| {
            e.group_leave(name)?;
            Ok(((), wipe))
        })?;
        self.media_dirty = true;
        // Best effort: the group is gone here whatever the relay says.
        let _ = self.flush_outbox().await;
        Ok(())
    }

    /// Deletions of every message kept for `id`.
    fn history_ids(&self, id: u64) -> Result<Vec<Change>, SessionError> {
        Ok(self
            .vault
            .messages(id)?
            .iter()
            .filter_map(|r| HistoryEntry::from_record(r).ok())
            .map(|e| Change::Delete(id, e.id))
            .collect())
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

    /// Performs a queued group call.
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
        let client = self
            .group_relay(&relay)
            .map_err(|_| ClientError::Protocol("bad relay URL".into()))?
            .clone();
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
                retry(|| client.create_group(*group, &admin, &read, &write)).await?;
                Ok(GroupOutcome::Done)
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
                    Ok(_) => Ok(GroupOutcome::Done),
                    Err(ClientError::GroupMovedOn { .. }) => {
                        // Read the commits that moved the group on, then
                        // seal it again in the epoch now.
                        self.read_group_log(*local)
                            .await
                            .map_err(|e| ClientError::Protocol(e.to_string()))?;
                        let resealed = self
                            .update(|e| Ok((e.group_reseal(id)?, Vec::new())))
                            .map_err(|e| ClientError::Protocol(e.to_string()))?;
                        if resealed {
                            Ok(GroupOutcome::Replaced)
                        } else {
                            Ok(GroupOutcome::Done)
                        }
                    }
                    Err(e) => Err(e),
                }
            }
            Action::GroupCommit { local, .. } => {
                let to_send = self
                    .update(|e| Ok((e.group_commit_to_send(*local)?, Vec::new())))
                    .map_err(|e| ClientError::Protocol(e.to_string()))?;
                let Some(c) = to_send else {
                    return Ok(GroupOutcome::Done);
                };
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
                        self.update(|e| {
                            e.group_commit_landed(
                                now(),
                                &mut OsRng,
                                *local,
                                taken.seq.0,
                                taken.epoch,
                            )?;
                            Ok(((), Vec::new()))
                        })
                        .map_err(|e| ClientError::Protocol(e.to_string()))?;
                        Ok(GroupOutcome::Done)
                    }
                    Err(ClientError::GroupMovedOn {
                        code: ErrorCode::CommitConflict,
                        ..
                    }) => {
                        // Another admin's commit came first: ours is
                        // dropped, the log read, and the same intents
                        // committed again on top.
                        self.update(|e| Ok((e.group_commit_refused(*local)?, Vec::new())))
                            .map_err(|e| ClientError::Protocol(e.to_string()))?;
                        self.read_group_log(*local)
                            .await
                            .map_err(|e| ClientError::Protocol(e.to_string()))?;
                        self.update(|e| Ok((e.group_retry(*local)?, Vec::new())))
                            .map_err(|e| ClientError::Protocol(e.to_string()))?;
                        Ok(GroupOutcome::Done)
                    }
                    Err(e) => Err(e),
                }
            }
            _ => Ok(GroupOutcome::Done),
        }
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
            self.read_group_log(local).await?;
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
                    for ev in engine.group_receive(now(), &mut OsRng, local, e)? {
                        if let GroupEvent::Message { group, entry, .. } = &ev {
                            history.push(Change::Insert(*group, entry.clone()));
                        }
                        events.push(ev);
                    }
                }
                Ok((events, history))
            })?;
            let mut removed = false;
            for ev in events {
                match ev {
                    GroupEvent::Message { name, entry, .. } => self.emit(Event::Received {
                        contact: name,
                        entry,
                    }),
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
                    GroupEvent::RemovedMe { group, name } => {
                        let wipe = self.history_ids(group)?;
                        self.update(|_| Ok(((), wipe)))?;
                        self.media_dirty = true;
                        self.emit(Event::GroupRemoved { group: name });
                        removed = true;
                    }
                    _ => {}
                }
            }
            if removed || !got.more {
                return Ok(());
            }
        }
    }
}
