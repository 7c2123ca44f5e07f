//! Performing the relay calls the engine queued.

use ferry_core::Action;
use ferry_proto::ErrorCode;

use super::groups::{GroupOutcome, STALE_RETRIES};
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
                before.is_none_or(|b| *action > b) && matches!(a, Action::Send { .. })
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
    /// the rest waits for the next run.
    pub async fn flush_outbox(&mut self) -> Result<Vec<ClientError>, SessionError> {
        let mut dropped = Vec::new();
        let mut resealed = 0;
        while let Some((id, action)) = self.engine().outbox_first() {
            let group = matches!(
                action,
                Action::CreateGroup { .. } | Action::GroupPost { .. } | Action::GroupCommit { .. }
            );
            let result = if group {
                match self.perform_group(id, &action).await {
                    Ok(GroupOutcome::Replaced) => {
                        resealed += 1;
                        if resealed > STALE_RETRIES {
                            return Err(ClientError::Protocol(
                                "the group keeps moving on; try again later".into(),
                            )
                            .into());
                        }
                        continue;
                    }
                    Ok(GroupOutcome::Done) => Ok(()),
                    Err(e) => Err(e),
                }
            } else {
                self.perform(&action).await
            };
            let outcome = match result {
                Ok(()) => Status::OnRelay,
                Err(e) if e.is_permanent() => {
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
