//! Contacts and messages: invites, texts, timers, deletion, expiry.

use ferry_core::{CoreError, HistoryEntry, InviteLink};
use rand_core::OsRng;

use super::{Change, Event, INVITE_TTL_SECS, Session, SessionError, now};

impl Session {
    /// Creates an invite and its mailbox on the relay; returns the link.
    pub async fn invite(&mut self, alias: &str) -> Result<InviteLink, SessionError> {
        let link = self.update(|e| {
            Ok((
                e.create_invite(now(), &mut OsRng, alias, INVITE_TTL_SECS)?,
                Vec::new(),
            ))
        })?;
        if let Some(e) = self.flush_outbox().await?.into_iter().next() {
            // The relay refused the invite mailbox: the link would not work.
            self.forget_contact(alias)?;
            return Err(e.into());
        }
        Ok(link)
    }

    /// Accepts an invite: sends the hello. Nothing is kept if the inviter's
    /// relay refuses it.
    pub async fn accept(&mut self, link: &str, alias: &str) -> Result<(), SessionError> {
        let link = InviteLink::parse(link).map_err(CoreError::from)?;
        self.update(|e| {
            Ok((
                e.accept_invite(now(), &mut OsRng, &link, alias)?,
                Vec::new(),
            ))
        })?;
        let dropped = self.flush_outbox().await?;
        if !dropped.is_empty() {
            // The hello was refused: forget the half-made contact.
            self.forget_contact(alias)?;
            return Err(SessionError::InviteRefused);
        }
        Ok(())
    }

    fn forget_contact(&mut self, alias: &str) -> Result<(), SessionError> {
        self.update(|e| Ok((e.remove_contact(alias), Vec::new())))
    }

    /// Encrypts and sends a text. A view-once message is not kept here.
    pub async fn send(
        &mut self,
        alias: &str,
        text: &str,
        view_once: bool,
        force: bool,
    ) -> Result<HistoryEntry, SessionError> {
        let before = self.engine().outbox_last();
        let entry = self.update(|e| {
            let (contact, entry) =
                e.send_text_to(now(), &mut OsRng, alias, text, view_once, force)?;
            let keep = if view_once {
                Vec::new()
            } else {
                vec![Change::Insert(contact, entry.clone())]
            };
            Ok((entry, keep))
        })?;
        self.emit(Event::Sent {
            contact: alias.to_owned(),
            entry: entry.clone(),
        });
        self.track_sent(before, alias, &entry.id);
        self.flush_or_fail().await?;
        Ok(entry)
    }

    /// Sends the text of an outgoing message again, as a new message (for
    /// one the relay refused for good), and forgets the old one here: it
    /// never left this device.
    pub async fn resend(&mut self, alias: &str, id: &str) -> Result<HistoryEntry, SessionError> {
        let contact = self.contact_id(alias)?;
        let old = self
            .history(alias)?
            .into_iter()
            .find(|e| {
                e.id == id && e.direction == ferry_core::Direction::Out && e.attachment.is_none()
            })
            .ok_or(SessionError::NoMessage)?;
        let entry = self.send(alias, &old.text, old.view_once, false).await?;
        self.vault
            .transaction(|tx| tx.delete_message(contact, id.as_bytes()))?;
        self.media_dirty = true;
        Ok(entry)
    }

    /// Sets the conversation's disappearing-message timer on both sides.
    pub async fn set_timer(&mut self, alias: &str, secs: Option<u64>) -> Result<(), SessionError> {
        if self.is_group(alias) {
            // A group's: an admin's commit every member follows.
            self.catch_up_group(alias).await;
            self.update(|e| Ok((e.group_set_timer(alias, secs)?, Vec::new())))?;
            return self.flush_or_fail().await;
        }
        self.update(|e| Ok((e.set_timer(now(), &mut OsRng, alias, secs)?, Vec::new())))?;
        self.flush_or_fail().await
    }

    /// Deletes a message here and asks the contact to delete it too.
    pub async fn delete(&mut self, alias: &str, id: &str) -> Result<(), SessionError> {
        let attachment = self
            .history(alias)?
            .into_iter()
            .find(|e| e.id == id)
            .and_then(|e| e.attachment);
        self.update(|e| {
            let contact = e.delete_for_both(now(), &mut OsRng, alias, id)?;
            Ok(((), vec![Change::Delete(contact, id.to_owned())]))
        })?;
        self.flush_or_fail().await?;
        if let Some(a) = attachment {
            // Best effort: the relay's expiry removes it anyway.
            self.delete_blob(&a).await;
        }
        Ok(())
    }

    /// Destroys every message whose timer ran out; returns how many.
    pub fn expire(&mut self) -> Result<usize, SessionError> {
        let count = self.vault.expire(now())?;
        // Partial downloads of messages that are gone go too (this also
        // catches messages deleted for both or viewed once since).
        self.shred_orphan_downloads()?;
        // Local copies of attachments go with their messages (checked only
        // when something was destroyed: the check reads the history).
        if count > 0 || std::mem::take(&mut self.media_dirty) {
            self.shred_orphan_media()?;
        }
        if count > 0 {
            self.emit(Event::Expired { count });
        }
        Ok(count)
    }

    /// Destroys view-once messages once they have been displayed.
    pub(crate) fn destroy_viewed(&mut self, viewed: &[(u64, String)]) -> Result<(), SessionError> {
        if viewed.is_empty() {
            return Ok(());
        }
        self.vault.transaction(|tx| {
            for (contact, id) in viewed {
                tx.delete_message(*contact, id.as_bytes())?;
            }
            Ok(())
        })?;
        self.media_dirty = true;
        Ok(())
    }

    /// Shows one view-once text: returns it and destroys it in the same
    /// step (the page that asked shows it once; nothing can show it again).
    pub fn open_view_once(&mut self, alias: &str, id: &str) -> Result<HistoryEntry, SessionError> {
        let contact = self.contact_id(alias)?;
        let entry = self
            .history(alias)?
            .into_iter()
            .find(|e| e.id == id && e.view_once && e.attachment.is_none())
            .ok_or(SessionError::NoMessage)?;
        self.destroy_viewed(&[(contact, entry.id.clone())])?;
        Ok(entry)
    }

    /// A conversation's history, oldest first. Displaying it destroys the
    /// view-once messages in it.
    pub fn view_history(&mut self, alias: &str) -> Result<Vec<HistoryEntry>, SessionError> {
        let entries = self.history(alias)?;
        let id = self.contact_id(alias)?;
        let viewed: Vec<(u64, String)> = entries
            .iter()
            .filter(|e| e.view_once && e.attachment.is_none())
            .map(|e| (id, e.id.clone()))
            .collect();
        self.destroy_viewed(&viewed)?;
        Ok(entries)
    }
}
