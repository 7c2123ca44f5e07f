//! Reading a group's log: each entry in log order, what it does to the
//! group and what the front end shows of it.

use ferry_proto::padding;
use rand_core::CryptoRngCore;

use super::{GroupEvent, b64, group_err};
use crate::engine::{CoreError, Direction, Engine, HistoryEntry};
use crate::envelope::Body;
use crate::group::{Entry, Received};

impl Engine {
    /// Reads one entry of group `local`'s log (in log order; an entry at or
    /// before the cursor changes nothing).
    pub fn group_receive(
        &mut self,
        now: u64,
        rng: &mut impl CryptoRngCore,
        local: u64,
        entry: &ferry_proto::api::GroupEntry,
    ) -> Result<Vec<GroupEvent>, CoreError> {
        let rec = self.group_by_id(local)?;
        if entry.seq.0 <= rec.cursor {
            return Ok(Vec::new());
        }
        let name = rec.name.clone();
        let kind = match entry.kind {
            ferry_proto::api::GroupEntryKind::Message => Entry::Message,
            ferry_proto::api::GroupEntryKind::Commit => Entry::Commit,
        };
        if let Some(rec) = self.state.groups.get_mut(local) {
            rec.cursor = entry.seq.0;
            if kind == Entry::Commit {
                rec.relay_epoch = rec.relay_epoch.max(entry.epoch.saturating_add(1));
            }
        }
        let bytes = match kind {
            Entry::Message => padding::unpad(&entry.payload),
            Entry::Commit => padding::unpad_commit(&entry.payload),
        };
        let Ok(bytes) = bytes else {
            return Ok(Vec::new());
        };
        // Names of the members before this entry (a removed one's name is
        // gone after it).
        let before = self.chat(local)?.chat.members().map_err(group_err)?;
        let name_of = |key: &[u8]| {
            before
                .iter()
                .find(|m| m.key == key)
                .map_or_else(|| "?".to_owned(), |m| m.name.clone())
        };
        // Our pending commit as it was before this entry (read back from
        // the log, it is applied inside `receive`).
        let pending = self.chat(local)?.chat.pending_commit().cloned();
        // An entry this member cannot process is skipped (the cursor is
        // past it): one bad entry never stops the group's log.
        let Ok(got) = self.with_chat(local, |chat, _, provider| {
            chat.receive(provider, kind, bytes)
        }) else {
            return Ok(Vec::new());
        };
        let mut events = Vec::new();
        match got {
            Received::Message {
                from,
                body,
                quarantined,
            } => {
                let timer = self.group_timer(local)?;
                let relay = self.group_by_id(local)?.relay.clone();
                let content = crate::wire::decode(&body).and_then(|m| match m.body {
                    Body::Text { text, view_once } => {
                        Some((m.id, m.sent_at, m.expire_after, text, None, view_once))
                    }
                    // Only from the group's own relay: a member cannot make
                    // the others connect anywhere else.
                    Body::Attachment {
                        attachment,
                        view_once,
                    } if attachment.is_valid() && attachment.relay == relay => Some((
                        m.id,
                        m.sent_at,
                        m.expire_after,
                        String::new(),
                        Some(Box::new(attachment)),
                        view_once,
                    )),
                    _ => None,
                });
                if let Some((msg_id, sent_at, expire_after, text, attachment, view_once)) = content
                {
                    events.push(GroupEvent::Message {
                        group: local,
                        name,
                        entry: HistoryEntry {
                            id: ferry_proto::b64::encode(&msg_id),
                            direction: Direction::In,
                            text,
                            sent_at,
                            expires_at: expiry(expire_after, timer, now),
                            view_once,
                            flagged: quarantined,
                            attachment,
                            call: None,
                            from: Some(name_of(&from)),
                        },
                    });
                }
            }
            Received::Applied { added, removed, .. } => {
                let after = self.chat(local)?.chat.members().map_err(group_err)?;
                let added = added
                    .iter()
                    .map(|k| {
                        after
                            .iter()
                            .find(|m| m.key == *k)
                            .map_or_else(|| "?".to_owned(), |m| m.name.clone())
                    })
                    .collect();
                let removed_names = removed.iter().map(|k| name_of(k)).collect();
                if let Some(rec) = self.state.groups.get_mut(local) {
                    let gone: Vec<String> = removed.iter().map(|k| b64(k)).collect();
                    rec.removes.retain(|k| !gone.contains(k));
                    rec.known.retain(|(k, _)| !gone.contains(k));
                    // Another admin's commit came first: ours is to be
                    // made again.
                    for a in &mut rec.adds {
                        a.in_commit = false;
                    }
                }
                events.push(GroupEvent::Members {
                    name,
                    added,
                    removed: removed_names,
                });
            }
            Received::Quarantined { member, .. } => {
                events.push(GroupEvent::Quarantined {
                    name,
                    member: name_of(&member),
                });
                // The first admin to read it removes the member (its device
                // may be in someone else's hands); an admin never removes
                // itself this way.
                let own = self.chat(local)?.chat.own_key();
                let key = b64(&member);
                if member != own
                    && let Some(rec) = self.state.groups.get_mut(local)
                    && rec.admin.is_some()
                    && !rec.removes.contains(&key)
                {
                    rec.removes.push(key);
                }
            }
            Received::LeaveRequest { member } => {
                // An admin removes it (with the next commit it makes).
                let key = b64(&member);
                if let Some(rec) = self.state.groups.get_mut(local)
                    && rec.admin.is_some()
                    && !rec.removes.contains(&key)
                {
                    rec.removes.push(key);
                }
            }
            Received::OwnCommit => {
                if let Some(out) = pending {
                    self.after_landing(
                        now,
                        rng,
                        local,
                        out,
                        entry.seq.0,
                        entry.epoch.saturating_add(1),
                    );
                    events.extend(self.members_changed(local, &before));
                }
            }
            Received::RemovedMe => {
                self.forget_group(local)?;
                events.push(GroupEvent::RemovedMe { group: local, name });
            }
            _ => {}
        }
        Ok(events)
    }
}

/// When a message that arrived `now` is destroyed: after the shorter of
/// the sender's timer and the group's (`None`: never).
fn expiry(sent: Option<u64>, group: Option<u64>, now: u64) -> Option<u64> {
    let t = match (sent, group) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (Some(a), None) | (None, Some(a)) => Some(a),
        (None, None) => None,
    };
    t.map(|t| now.saturating_add(t))
}
