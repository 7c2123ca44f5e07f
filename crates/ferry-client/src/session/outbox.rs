//! Performing the relay calls the engine queued.

use ferry_core::Action;
use ferry_proto::ErrorCode;

use std::collections::{HashMap, HashSet};

use super::groups::{GROUP_RETRIES, GroupOutcome, group_of};
use super::{Event, Session, SessionError, Status};
use crate::transport::{ClientError, retry};

impl Session {
    /// Remembers that the calls queued after `before` carry message `id`
    /// to `contact`, and reports it queued.
    pub(crate) fn track_sent(
        &mut self,
        before: Option<ferry_core::ActionId>,
        contact: &str,
        id: &str,
    ) {
        let queued: Vec<ferry_core::ActionId> = self
            .engine
            .outbox_ids()
            .into_iter()
            .filter(|(action, a)| {
                before.is_none_or(|b| *action > b)
                    && matches!(a, Action::Send { .. } | Action::GroupPost { .. })
            })
            .map(|(action, _)| action)
            .collect();
        for action in queued {
            self.pending
                .insert(action, (contact.to_owned(), id.to_owned()));
        }
        self.emit(Event::Status {
            contact: contact.to_owned(),
            id: id.to_owned(),
            status: Status::Queued,
        });
    }

    /// Performs queued relay calls in order. A call the relay refuses for
    /// good is dropped (and reported); a transient failure stops here and
    /// the rest waits for the next run. A group's calls that cannot go now
    /// wait without holding up anything else.
    pub async fn flush_outbox(&mut self) -> Result<Vec<ClientError>, SessionError> {
        let mut dropped = Vec::new();
        // Groups whose calls wait for the next run, and the retries each
        // one had in this run.
        let mut waiting: HashSet<u64> = HashSet::new();
        let mut retries: HashMap<u64, u32> = HashMap::new();
        loop {
            let next = self
                .engine()
                .outbox_ids()
                .into_iter()
                .find(|(_, a)| group_of(a).is_none_or(|g| !waiting.contains(&g)))
                .map(|(id, a)| (id, a.clone()));
            let Some((id, action)) = next else {
                break;
            };
            let result = match group_of(&action) {
                Some(g) => match self.perform_group(id, &action).await {
                    Ok(GroupOutcome::OnRelay) => Ok(true),
                    Ok(GroupOutcome::Done) => Ok(false),
                    Ok(GroupOutcome::Conflict | GroupOutcome::Replaced) => {
                        let n = retries.entry(g).or_default();
                        *n += 1;
                        if *n >= GROUP_RETRIES {
                            waiting.insert(g);
                        }
                        if let Some(p) = self.pending.remove(&id)
                            && let Some(new) = self.engine().outbox_last()
                            && new != id
                        {
                            // A resealed message: its status follows it.
                            self.pending.insert(new, p);
                        }
                        if self.engine().outbox_ids().iter().all(|(a, _)| *a != id) {
                            continue;
                        }
                        Ok(false)
                    }
                    Ok(GroupOutcome::Wait) => {
                        waiting.insert(g);
                        continue;
                    }
                    Err(e) => Err(e),
                },
                None => self.perform(&action).await.map(|()| true),
            };
            let outcome = match result {
                Ok(true) => Status::OnRelay,
                // Dropped for good, or done with nothing for the relay.
                Ok(false) => Status::Failed,
                Err(e) if e.is_permanent() || group_of(&action).is_some() => {
                    tracing::warn!("relay refused a queued call for good; dropped");
                    dropped.push(e);
                    Status::Failed
                }
                Err(e) => return Err(e.into()),
            };
            self.update(|engine| {
                engine.outbox_remove(id);
                if outcome == Status::Failed
                    && let Action::CreateMailbox { mailbox, .. } = &action
                    && engine.move_refused(*mailbox)
                {
                    // A move's new mailbox: the contact is never told of
                    // it, and the old one stays.
                    tracing::warn!(
                        "the relay refused a moved mailbox; the conversation stays where it was"
                    );
                }
                Ok(((), Vec::new()))
            })?;
            if let Some((contact, msg)) = self.pending.remove(&id) {
                self.emit(Event::Status {
                    contact,
                    id: msg,
                    status: outcome,
                });
            }
        }
        Ok(dropped)
    }

    /// Flushes and turns the first refusal into an error.
    pub(crate) async fn flush_or_fail(&mut self) -> Result<(), SessionError> {
        match self.flush_outbox().await?.into_iter().next() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    async fn perform(&mut self, action: &Action) -> Result<(), ClientError> {
        let url = match action {
            Action::CreateMailbox { relay, .. }
            | Action::Send { relay, .. }
            | Action::DeleteMailbox { relay, .. } => relay.clone(),
            _ => return Ok(()),
        };
        let client = self
            .relay(&url)
            .map_err(|_| ClientError::Protocol("bad relay URL".into()))?;
        match action {
            Action::CreateMailbox {
                mailbox,
                recipient,
                sender_public,
                ..
            } => {
                let key = recipient.mailbox_key();
                retry(|| client.create_mailbox(*mailbox, &key)).await?;
                retry(|| client.set_sender(*mailbox, &key, *sender_public)).await
            }
            Action::Send {
                mailbox,
                sender,
                payload,
                ..
            } => {
                let key = sender.mailbox_key();
                retry(|| client.send(*mailbox, &key, payload.clone()))
                    .await
                    .map(|_| ())
            }
            Action::DeleteMailbox {
                mailbox, recipient, ..
            } => {
                let key = recipient.mailbox_key();
                match retry(|| client.delete_mailbox(*mailbox, &key)).await {
                    Err(e) if e.code() == Some(ErrorCode::UnknownMailbox) => Ok(()),
                    other => other,
                }
            }
            _ => Ok(()),
        }
    }
}
