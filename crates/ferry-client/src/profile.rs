//! A profile: the vault, the engine, and the relay calls that connect them.
//!
//! Every change follows one order: load the engine from the vault inside a
//! write transaction, let it process, commit state + MLS state + history
//! together, and only then talk to the relay (send queued actions, ack what
//! was processed). A crash at any point therefore loses nothing and shows
//! nothing twice: unacked messages come back and are recognised by their
//! sequence number; queued sends stay in the outbox until the relay took them.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry_core::alert::CapsuleEntry;
use ferry_core::{
    Action, AlertReason, ContactInfo, CoreError, Engine, Event, HistoryEntry, InviteLink,
};
use ferry_proto::api::ServerFrame;
use ferry_proto::{ErrorCode, MailboxId, Seq};
use ferry_vault::{Vault, VaultError};
use rand_core::OsRng;
use secrecy::SecretString;

use crate::relay::{ClientError, RelayClient, SyncItem};

mod attachments;
pub use attachments::{FileMeta, SaveOutcome};

const STATE_BLOB: &str = "profile";
/// The duress capsule, kept in the decoy only.
const CAPSULE_BLOB: &str = "capsule";
/// How long an invite stays valid.
pub const INVITE_TTL_SECS: u64 = 7 * 24 * 3600;

/// Why a profile operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The vault failed (wrong passphrase, no profile, ...).
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The engine refused.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The relay could not be reached or refused.
    #[error(transparent)]
    Relay(#[from] ClientError),
    /// The inviter's relay refused the invite.
    #[error("the invite was already used, withdrawn, or is not valid (the relay refused it)")]
    InviteRefused,
    /// The relay URL is not usable.
    #[error("the relay URL must start with http:// or https://")]
    BadRelayUrl,
    /// An attachment transfer failed.
    #[error(transparent)]
    Transfer(#[from] crate::transfer::TransferError),
    /// The message has no attachment (or does not exist).
    #[error("no attachment with that message id in this conversation")]
    NoAttachment,
}

impl ProfileError {
    /// A stable code for `--json` errors.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Vault(VaultError::WrongPassphrase) => "wrong_passphrase",
            Self::Vault(VaultError::NotFound) => "no_profile",
            Self::Vault(VaultError::AlreadyExists) => "profile_exists",
            Self::Vault(_) => "vault",
            Self::Core(CoreError::AliasTaken) => "alias_taken",
            Self::Core(CoreError::UnknownContact) => "unknown_contact",
            Self::Core(CoreError::NotEstablished) => "not_established",
            Self::Core(CoreError::Invite(ferry_core::InviteError::Expired)) => "invite_expired",
            Self::Core(CoreError::Invite(_)) => "invite_invalid",
            Self::Core(CoreError::Compromised) => "contact_compromised",
            Self::Core(CoreError::NoChallenge) => "no_challenge",
            Self::Core(CoreError::PhraseNeeded) => "phrase_needed",
            Self::Core(CoreError::InviteReused) | Self::InviteRefused => "invite_used",
            Self::Core(_) => "core",
            Self::Relay(_) => "relay",
            Self::BadRelayUrl => "bad_relay_url",
            Self::NoAttachment => "no_attachment",
            Self::Transfer(t) => {
                use crate::transfer::TransferError as T;
                match t {
                    T::Relay(_) => "relay",
                    T::Gone => "attachment_gone",
                    T::TooLarge { .. } => "file_too_large",
                    T::FileChanged => "file_changed",
                    T::Attachment(ferry_core::attachment::AttachmentError::TooLarge) => {
                        "file_too_large"
                    }
                    T::Attachment(_) => "attachment_tampered",
                    T::Exists => "destination_exists",
                    T::Io(_) => "io",
                    T::Interrupted { .. } => "transfer_interrupted",
                    T::RelayFull => "relay_full",
                }
            }
        }
    }
}

/// When a long-running session locks itself.
#[derive(Debug, Clone, Copy)]
pub struct LockLimits {
    /// Lock after this long without any message in or out.
    pub idle: Duration,
    /// Lock after this long unlocked, whatever happens.
    pub max_unlocked: Duration,
}

impl Default for LockLimits {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(15 * 60),
            max_unlocked: Duration::from_secs(8 * 3600),
        }
    }
}

/// Why a session locked itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockReason {
    /// No activity for the idle period.
    Idle,
    /// The maximum unlocked time passed.
    MaxUnlocked,
}

impl LockReason {
    /// Text form for users and `--json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::MaxUnlocked => "max_unlocked",
        }
    }
}

/// Something to show the user. `Debug` shows only the kind.
pub enum Shown {
    /// A message (in or out).
    Message {
        /// Contact alias.
        contact: String,
        /// The message.
        entry: HistoryEntry,
    },
    /// A conversation is now set up.
    Established {
        /// Contact alias.
        contact: String,
    },
    /// A payload that did not come from the contact was dropped.
    Rejected {
        /// Contact alias whose mailbox it arrived in.
        contact: String,
        /// Why.
        reason: &'static str,
    },
    /// The contact changed the disappearing-message timer.
    Timer {
        /// Contact alias.
        contact: String,
        /// Seconds, or `None` for off.
        secs: Option<u64>,
    },
    /// The contact deleted a message for both sides.
    Deleted {
        /// Contact alias.
        contact: String,
        /// The message id.
        id: String,
    },
    /// The contact warned that their device is compromised.
    Compromised {
        /// Contact alias.
        contact: String,
        /// How the warning came.
        reason: AlertReason,
    },
    /// The contact asks us to prove it is us.
    Challenged {
        /// Contact alias.
        contact: String,
    },
    /// The contact answered our challenge.
    Proof {
        /// Contact alias.
        contact: String,
        /// Outcome.
        result: ferry_core::challenge::ProofResult,
    },
    /// The contact set or changed their phrase verifiers.
    Verifiers {
        /// Contact alias.
        contact: String,
    },
}

impl std::fmt::Debug for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Message { .. } => "Shown::Message(..)",
            Self::Established { .. } => "Shown::Established(..)",
            Self::Rejected { .. } => "Shown::Rejected(..)",
            Self::Timer { .. } => "Shown::Timer(..)",
            Self::Deleted { .. } => "Shown::Deleted(..)",
            Self::Compromised { .. } => "Shown::Compromised(..)",
            Self::Challenged { .. } => "Shown::Challenged(..)",
            Self::Proof { .. } => "Shown::Proof(..)",
            Self::Verifiers { .. } => "Shown::Verifiers(..)",
        })
    }
}

/// The current Unix time.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn is_permanent(e: &ClientError) -> bool {
    matches!(e, ClientError::Relay { code, .. } if !matches!(
        code,
        ErrorCode::Unavailable | ErrorCode::Internal | ErrorCode::StaleTimestamp | ErrorCode::MailboxFull
    ))
}

/// Runs `f` up to 4 times with exponential backoff on transient failures.
async fn retry<T, F, Fut>(mut f: F) -> Result<T, ClientError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    let mut delay = Duration::from_millis(200);
    let mut attempt = 0;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < 3 && !is_permanent(&e) => {
                tracing::debug!("relay call failed, retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// A history change committed with an engine update.
enum Change {
    Insert(u64, HistoryEntry),
    Delete(u64, String),
    /// Forgets a pending upload (its message is queued in this commit).
    ForgetUpload(MailboxId),
}

/// An unlocked profile.
pub struct Profile {
    vault: Vault,
    relays: HashMap<String, RelayClient>,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Profile(..)")
    }
}

impl Profile {
    /// Creates a profile in `home` whose mailboxes live on `relay`.
    pub fn init(
        home: &Path,
        pass: &SecretString,
        relay: &str,
        token: Option<String>,
    ) -> Result<Self, ProfileError> {
        if !(relay.starts_with("http://") || relay.starts_with("https://")) {
            return Err(ProfileError::BadRelayUrl);
        }
        let mut vault = Vault::create(home, pass, &mut OsRng)?;
        let mut engine = Engine::new(relay);
        engine.set_relay_token(token);
        let (state, mls) = engine.export()?;
        vault.transaction(|tx| {
            tx.put_blob(STATE_BLOB, &state)?;
            tx.set_mls_state(mls.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))
        })?;
        Ok(Self {
            vault,
            relays: HashMap::new(),
        })
    }

    /// Unlocks the profile in `home`.
    pub fn unlock(home: &Path, pass: &SecretString) -> Result<Self, ProfileError> {
        let mut p = Self {
            vault: Vault::unlock(home, pass, &mut OsRng)?,
            relays: HashMap::new(),
        };
        // Expired messages are destroyed before anything can be shown.
        p.expire()?;
        Ok(p)
    }

    /// Sets the duress passphrase: creates a decoy profile (its mailboxes on
    /// `relay`) that the duress passphrase opens, destroying this one.
    pub fn set_duress(&mut self, duress: &SecretString, relay: &str) -> Result<(), ProfileError> {
        if !(relay.starts_with("http://") || relay.starts_with("https://")) {
            return Err(ProfileError::BadRelayUrl);
        }
        let mut decoy = self.vault.set_duress(duress, &mut OsRng)?;
        let engine = Engine::new(relay);
        let (state, mls) = engine.export()?;
        decoy.transaction(|tx| {
            tx.put_blob(STATE_BLOB, &state)?;
            tx.set_mls_state(mls.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))
        })?;
        self.vault.equalize(&mut OsRng)?;
        Ok(())
    }

    /// Destroys the profile after `n` wrong passphrases in a row (0: never).
    pub fn set_wipe_after(&self, n: u32) -> Result<(), ProfileError> {
        Ok(self.vault.set_wipe_after(n, &mut OsRng)?)
    }

    /// This profile's relay.
    pub fn relay_url(&self) -> Result<String, ProfileError> {
        Ok(self.read_engine()?.relay().to_owned())
    }

    /// Whether a duress passphrase is set.
    pub fn has_duress(&self) -> Result<bool, ProfileError> {
        Ok(self.vault.has_duress()?)
    }

    /// The decoy profile, to prepare it (contacts, messages) while unlocked.
    pub fn decoy(&self) -> Result<Option<Profile>, ProfileError> {
        Ok(self.vault.open_decoy()?.map(|vault| Profile {
            vault,
            relays: HashMap::new(),
        }))
    }

    /// Call when done with the profile: refreshes the duress capsule in the
    /// decoy (this profile's contacts' addresses and alert keys, no aliases)
    /// and keeps both slots the same size.
    pub fn finish(&self) -> Result<(), ProfileError> {
        if let Some(mut decoy) = self.vault.open_decoy()? {
            let capsule = self.read_engine()?.capsule();
            let json = zeroize::Zeroizing::new(
                serde_json::to_vec(&capsule)
                    .map_err(|e| ProfileError::Core(CoreError::State(e.to_string())))?,
            );
            decoy.transaction(|tx| tx.put_blob(CAPSULE_BLOB, &json))?;
        }
        Ok(self.vault.equalize(&mut OsRng)?)
    }

    /// After an unlock: if this is a decoy opened by the duress passphrase,
    /// warn every contact of the destroyed profile from the capsule, silently,
    /// and forget each entry once its relay took the alert (the rest is
    /// retried at the next unlock). Shows nothing, whatever happens.
    pub async fn after_unlock(&mut self) {
        let capsule = match self.vault.blob(CAPSULE_BLOB) {
            Ok(Some(json)) => serde_json::from_slice::<Vec<CapsuleEntry>>(&json).ok(),
            _ => None,
        };
        let Some(entries) = capsule else {
            // A normal unlock: renew the dead-man switches.
            let _ = self.renew_canaries().await;
            return;
        };
        let mut left = Vec::new();
        for e in entries {
            let Ok(c) = RelayClient::new(&e.relay) else {
                continue;
            };
            let sent = match ferry_core::alert::alert_payload(
                &e.alert_key,
                AlertReason::Duress,
                now(),
                &mut OsRng,
            ) {
                Ok(payload) => {
                    let key = e.sender.mailbox_key();
                    retry(|| c.send(e.mailbox, &key, payload.clone()))
                        .await
                        .is_ok()
                }
                Err(_) => true, // cannot ever be built: drop it
            };
            // The canary goes too, at once: it also reaches the contact if
            // this alert was lost, and it cannot be renewed any more.
            if let Some(canary) = &e.canary {
                let owner = canary.owner.mailbox_key();
                let _ = c.fire_canary(canary.id, &owner).await;
            }
            if !sent {
                left.push(e);
            }
        }
        let _ = if left.is_empty() {
            self.vault.transaction(|tx| tx.delete_blob(CAPSULE_BLOB))
        } else {
            match serde_json::to_vec(&left) {
                Ok(j) => self.vault.transaction(|tx| tx.put_blob(CAPSULE_BLOB, &j)),
                Err(_) => Ok(()),
            }
        };
    }

    /// Deposits or renews every contact's dead-man switch. Failures are left
    /// for the next unlock.
    pub async fn renew_canaries(&mut self) -> Result<usize, ProfileError> {
        let deposits = self.update(|e| Ok((e.canary_deposits(now(), &mut OsRng)?, Vec::new())))?;
        let mut ok = 0;
        for d in deposits {
            let Ok(client) = self.relay(&d.relay) else {
                continue;
            };
            let (owner, sender) = (d.canary.owner.mailbox_key(), d.sender.mailbox_key());
            if client
                .deposit_canary(
                    d.canary.id,
                    &owner,
                    &sender,
                    d.mailbox,
                    d.release_at,
                    d.payload.clone(),
                )
                .await
                .is_ok()
            {
                ok += 1;
            }
        }
        Ok(ok)
    }

    /// Sets the dead-man switch interval (`None`: off, removing the
    /// canaries from the relays).
    pub async fn set_canary(&mut self, secs: Option<u64>) -> Result<usize, ProfileError> {
        let removed = self.update(|e| Ok((e.set_canary_interval(secs), Vec::new())))?;
        for (relay, c) in removed {
            if let Ok(client) = self.relay(&relay) {
                let _ = client.delete_canary(c.id, &c.owner.mailbox_key()).await;
            }
        }
        self.renew_canaries().await
    }

    /// Gives every set-up contact verifiers for `phrase` and `duress`;
    /// contacts that already have some need the `current` phrase. Returns how
    /// many contacts got them.
    pub async fn set_phrase(
        &mut self,
        phrase: &SecretString,
        duress: &SecretString,
        current: Option<&SecretString>,
    ) -> Result<usize, ProfileError> {
        let aliases: Vec<String> = self
            .read_engine()?
            .contacts()
            .into_iter()
            .filter(|c| c.state == ferry_core::ContactState::Established)
            .map(|c| c.alias)
            .collect();
        let mut n = 0;
        for alias in aliases {
            self.update(|e| {
                if e.phrase_given(&alias)? && current.is_none() {
                    return Ok(((), Vec::new()));
                }
                e.set_phrase(now(), &mut OsRng, &alias, phrase, duress, current)?;
                n += 1;
                Ok(((), Vec::new()))
            })?;
        }
        if let Some(e) = self.flush_outbox().await?.into_iter().next() {
            return Err(e.into());
        }
        Ok(n)
    }

    /// Asks `alias` to prove it is them.
    pub async fn challenge(&mut self, alias: &str) -> Result<(), ProfileError> {
        self.update(|e| Ok((e.challenge(now(), &mut OsRng, alias)?, Vec::new())))?;
        if let Some(e) = self.flush_outbox().await?.into_iter().next() {
            return Err(e.into());
        }
        Ok(())
    }

    /// Answers `alias`'s challenge with the typed phrase.
    pub async fn answer(&mut self, alias: &str, phrase: &SecretString) -> Result<(), ProfileError> {
        self.update(|e| Ok((e.answer(now(), &mut OsRng, alias, phrase)?, Vec::new())))?;
        if let Some(e) = self.flush_outbox().await?.into_iter().next() {
            return Err(e.into());
        }
        Ok(())
    }

    /// Warns `alias` (or every contact) that this device may be compromised.
    pub async fn alert(&mut self, alias: Option<&str>) -> Result<usize, ProfileError> {
        let n = self.update(|e| {
            Ok((
                e.alert(now(), &mut OsRng, alias, AlertReason::Manual)?,
                Vec::new(),
            ))
        })?;
        if let Some(e) = self.flush_outbox().await?.into_iter().next() {
            return Err(e.into());
        }
        Ok(n)
    }

    /// Loads the engine, runs `f`, and commits the engine's new state plus
    /// `f`'s history entries in one transaction.
    fn update<T>(
        &mut self,
        f: impl FnOnce(&mut Engine) -> Result<(T, Vec<Change>), ProfileError>,
    ) -> Result<T, ProfileError> {
        let mut result: Option<Result<T, ProfileError>> = None;
        let outcome = self.vault.transaction(|tx| {
            let state = tx
                .blob(STATE_BLOB)?
                .ok_or_else(|| VaultError::Corrupt("profile state missing".into()))?;
            let mut engine = match Engine::restore(&state, tx.mls_state()?) {
                Ok(e) => e,
                Err(e) => {
                    result = Some(Err(e.into()));
                    return Ok(());
                }
            };
            match f(&mut engine) {
                Ok((value, entries)) => {
                    let (state, mls) = match engine.export() {
                        Ok(v) => v,
                        Err(e) => {
                            result = Some(Err(e.into()));
                            return Ok(());
                        }
                    };
                    tx.put_blob(STATE_BLOB, &state)?;
                    tx.set_mls_state(mls.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))?;
                    for change in &entries {
                        match change {
                            Change::Insert(contact, e) => {
                                tx.insert_message(
                                    *contact,
                                    e.id.as_bytes(),
                                    &e.to_record(),
                                    e.expires_at,
                                )?;
                            }
                            Change::Delete(contact, id) => {
                                tx.delete_message(*contact, id.as_bytes())?;
                            }
                            Change::ForgetUpload(blob) => attachments::forget_upload(tx, *blob)?,
                        }
                    }
                    result = Some(Ok(value));
                    Ok(())
                }
                Err(e) => {
                    result = Some(Err(e));
                    // Roll back: nothing of a failed operation is kept.
                    Err(VaultError::Db("rolled back".into()))
                }
            }
        });
        match outcome {
            Ok(()) => result
                .unwrap_or_else(|| Err(ProfileError::Vault(VaultError::Db("no result".into())))),
            // The closure's own error (it aborted the transaction on purpose).
            Err(_) if matches!(result, Some(Err(_))) => result
                .unwrap_or_else(|| Err(ProfileError::Vault(VaultError::Db("no result".into())))),
            // The commit itself failed: nothing was stored, whatever `f` said.
            Err(e) => Err(e.into()),
        }
    }

    fn read_engine(&self) -> Result<Engine, ProfileError> {
        let state = self
            .vault
            .blob(STATE_BLOB)?
            .ok_or_else(|| VaultError::Corrupt("profile state missing".into()))?;
        Ok(Engine::restore(&state, self.vault.mls_state()?)?)
    }

    fn relay(&mut self, url: &str) -> Result<&RelayClient, ProfileError> {
        if !self.relays.contains_key(url) {
            let engine = self.read_engine()?;
            let mut client = RelayClient::new(url)?;
            if let (true, Some(t)) = (engine.relay() == url, engine.relay_token()) {
                client = client.with_access_token(t);
            }
            self.relays.insert(url.to_owned(), client);
        }
        self.relays.get(url).ok_or(ProfileError::BadRelayUrl)
    }

    /// Performs queued relay calls in order. A call the relay refuses for
    /// good is dropped (and reported); a transient failure stops here and
    /// the rest waits for the next run.
    pub async fn flush_outbox(&mut self) -> Result<Vec<ClientError>, ProfileError> {
        let mut dropped = Vec::new();
        loop {
            let engine = self.read_engine()?;
            let Some(action) = engine.outbox().first().cloned() else {
                return Ok(dropped);
            };
            drop(engine);
            let result = self.perform(&action).await;
            match result {
                Ok(()) => {}
                Err(e) if is_permanent(&e) => {
                    tracing::warn!("relay refused a queued call for good; dropped");
                    dropped.push(e);
                }
                Err(e) => return Err(e.into()),
            }
            self.update(|engine| {
                engine.outbox_remove(&action);
                Ok(((), Vec::new()))
            })?;
        }
    }

    async fn perform(&mut self, action: &Action) -> Result<(), ClientError> {
        let url = match action {
            Action::CreateMailbox { relay, .. }
            | Action::Send { relay, .. }
            | Action::DeleteMailbox { relay, .. } => relay.clone(),
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
        }
    }

    /// Contacts.
    pub fn contacts(&self) -> Result<Vec<ContactInfo>, ProfileError> {
        Ok(self.read_engine()?.contacts())
    }

    /// A conversation's history, oldest first.
    pub fn history(&self, alias: &str) -> Result<Vec<HistoryEntry>, ProfileError> {
        let engine = self.read_engine()?;
        let c = engine.contact(alias).ok_or(CoreError::UnknownContact)?;
        self.vault
            .messages(c.id)?
            .iter()
            .map(|r| HistoryEntry::from_record(r).map_err(ProfileError::from))
            .collect()
    }

    /// Creates an invite and its mailbox on the relay; returns the link.
    pub async fn invite(&mut self, alias: &str) -> Result<InviteLink, ProfileError> {
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
    pub async fn accept(&mut self, link: &str, alias: &str) -> Result<(), ProfileError> {
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
            return Err(ProfileError::InviteRefused);
        }
        Ok(())
    }

    fn forget_contact(&mut self, alias: &str) -> Result<(), ProfileError> {
        self.update(|e| Ok((e.remove_contact(alias), Vec::new())))
    }

    /// Encrypts and sends a text. A view-once message is not kept here.
    pub async fn send(
        &mut self,
        alias: &str,
        text: &str,
        view_once: bool,
        force: bool,
    ) -> Result<HistoryEntry, ProfileError> {
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
        if let Some(e) = self.flush_outbox().await?.into_iter().next() {
            return Err(e.into());
        }
        Ok(entry)
    }

    /// Sets the conversation's disappearing-message timer on both sides.
    pub async fn set_timer(&mut self, alias: &str, secs: Option<u64>) -> Result<(), ProfileError> {
        self.update(|e| Ok((e.set_timer(now(), &mut OsRng, alias, secs)?, Vec::new())))?;
        if let Some(e) = self.flush_outbox().await?.into_iter().next() {
            return Err(e.into());
        }
        Ok(())
    }

    /// The conversation's timer.
    pub fn timer(&self, alias: &str) -> Result<Option<u64>, ProfileError> {
        Ok(self.read_engine()?.timer(alias)?)
    }

    /// Deletes a message here and asks the contact to delete it too.
    pub async fn delete(&mut self, alias: &str, id: &str) -> Result<(), ProfileError> {
        let attachment = self
            .history(alias)?
            .into_iter()
            .find(|e| e.id == id)
            .and_then(|e| e.attachment);
        self.update(|e| {
            let contact = e.delete_for_both(now(), &mut OsRng, alias, id)?;
            Ok(((), vec![Change::Delete(contact, id.to_owned())]))
        })?;
        if let Some(e) = self.flush_outbox().await?.into_iter().next() {
            return Err(e.into());
        }
        if let Some(a) = attachment {
            // Best effort: the relay's expiry removes it anyway.
            attachments::delete_blob(&a).await;
        }
        Ok(())
    }

    /// Destroys every message whose timer ran out; returns how many.
    pub fn expire(&mut self) -> Result<usize, ProfileError> {
        Ok(self.vault.transaction(|tx| tx.expire(now()))?)
    }

    /// Destroys view-once messages once they have been displayed.
    fn destroy_viewed(&mut self, viewed: &[(u64, String)]) -> Result<(), ProfileError> {
        if viewed.is_empty() {
            return Ok(());
        }
        self.vault.transaction(|tx| {
            for (contact, id) in viewed {
                tx.delete_message(*contact, id.as_bytes())?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Processes fetched messages and commits; returns what to show.
    fn process(
        &mut self,
        fetched: Vec<(MailboxId, Seq, Vec<u8>)>,
    ) -> Result<Vec<(u64, Shown)>, ProfileError> {
        self.update(|engine| {
            let mut shown: Vec<(u64, Shown)> = Vec::new();
            let mut entries = Vec::new();
            for (mailbox, seq, payload) in fetched {
                match engine.receive(now(), &mut OsRng, mailbox, seq.0, &payload)? {
                    Event::Message {
                        contact,
                        alias,
                        entry,
                    } => {
                        entries.push(Change::Insert(contact, entry.clone()));
                        shown.push((
                            contact,
                            Shown::Message {
                                contact: alias,
                                entry,
                            },
                        ));
                    }
                    Event::Established { alias } => {
                        shown.push((0, Shown::Established { contact: alias }))
                    }
                    Event::Rejected { alias, reason } => {
                        tracing::warn!(
                            reason,
                            "dropped a message that did not come from the contact"
                        );
                        shown.push((
                            0,
                            Shown::Rejected {
                                contact: alias,
                                reason,
                            },
                        ));
                    }
                    Event::TimerChanged { alias, secs } => shown.push((
                        0,
                        Shown::Timer {
                            contact: alias,
                            secs,
                        },
                    )),
                    Event::Deleted { contact, alias, id } => {
                        entries.push(Change::Delete(contact, id.clone()));
                        shown.push((0, Shown::Deleted { contact: alias, id }));
                    }
                    Event::ChallengeReceived { alias } => {
                        shown.push((0, Shown::Challenged { contact: alias }))
                    }
                    Event::ChallengeResult { alias, result } => shown.push((
                        0,
                        Shown::Proof {
                            contact: alias,
                            result,
                        },
                    )),
                    Event::VerifiersUpdated { alias } => {
                        shown.push((0, Shown::Verifiers { contact: alias }))
                    }
                    Event::Compromised { alias, reason } => shown.push((
                        0,
                        Shown::Compromised {
                            contact: alias,
                            reason,
                        },
                    )),
                    Event::Duplicate => {}
                }
            }
            Ok((shown, entries))
        })
    }

    fn show_all(
        &mut self,
        shown: &[(u64, Shown)],
        show: &mut impl FnMut(&Shown),
    ) -> Result<(), ProfileError> {
        let mut viewed = Vec::new();
        for (contact, s) in shown {
            show(s);
            if let Shown::Message { entry, .. } = s
                && entry.view_once
                && entry.attachment.is_none()
            {
                viewed.push((*contact, entry.id.clone()));
            }
        }
        self.destroy_viewed(&viewed)
    }

    /// A conversation's history, oldest first. Displaying it destroys the
    /// view-once messages in it.
    pub fn view_history(&mut self, alias: &str) -> Result<Vec<HistoryEntry>, ProfileError> {
        let entries = self.history(alias)?;
        let id = self
            .read_engine()?
            .contact(alias)
            .map(|c| c.id)
            .unwrap_or_default();
        let viewed: Vec<(u64, String)> = entries
            .iter()
            .filter(|e| e.view_once && e.attachment.is_none())
            .map(|e| (id, e.id.clone()))
            .collect();
        self.destroy_viewed(&viewed)?;
        Ok(entries)
    }

    /// One sync: sends what is queued, fetches every mailbox in one request
    /// per relay, processes and commits, shows (through `show`), then acks.
    pub async fn sync(&mut self, mut show: impl FnMut(&Shown)) -> Result<(), ProfileError> {
        // Uploads an earlier run left unfinished go on first (their
        // messages are queued when they complete). One that cannot go on
        // now stays pending and never holds up the mail.
        if self.resume_uploads(&mut |_| {}).await.is_err() {
            tracing::warn!("an unfinished upload could not be resumed; the next sync tries again");
        }
        self.flush_outbox().await?;
        let mut acks: HashMap<MailboxId, Seq> = HashMap::new();
        loop {
            let engine = self.read_engine()?;
            let mut by_relay: BTreeMap<String, Vec<ferry_core::InboundMailbox>> = BTreeMap::new();
            for ib in engine.inbound() {
                by_relay.entry(ib.relay.clone()).or_default().push(ib);
            }
            drop(engine);
            let mut fetched = Vec::new();
            for (url, boxes) in by_relay {
                let keys: Vec<ferry_proto::MailboxKey> =
                    boxes.iter().map(|b| b.recipient.mailbox_key()).collect();
                let items: Vec<SyncItem<'_>> = boxes
                    .iter()
                    .zip(&keys)
                    .map(|(b, k)| SyncItem {
                        id: b.mailbox,
                        key: k,
                        after: Seq(b.cursor),
                        ack_up_to: acks.get(&b.mailbox).copied(),
                    })
                    .collect();
                let client = self.relay(&url)?;
                let resp = retry(|| client.sync(&items)).await?;
                for r in resp.mailboxes {
                    for m in r.messages {
                        acks.insert(r.id, m.seq);
                        fetched.push((r.id, m.seq, m.payload));
                    }
                }
            }
            if fetched.is_empty() {
                return Ok(());
            }
            let shown = self.process(fetched)?;
            self.show_all(&shown, &mut show)?;
            if std::env::var_os("FERRY_FAULT_EXIT_BEFORE_ACK").is_some() {
                // Fault injection for crash tests: die after commit, before ack.
                std::process::exit(75);
            }
            // Handshakes may have queued replies.
            self.flush_outbox().await?;
            // Loop: the next request acks what was processed and reads on.
        }
    }

    /// Stays connected and processes messages as they are pushed, until
    /// `stop` resolves (`Ok(None)`) or an auto-lock limit is reached
    /// (`Ok(Some(reason))`): then the caller must drop the profile, which
    /// closes the vault, and ask for the passphrase again.
    pub async fn watch(
        &mut self,
        mut show: impl FnMut(&Shown),
        stop: impl std::future::Future<Output = ()>,
        limits: LockLimits,
    ) -> Result<Option<LockReason>, ProfileError> {
        tokio::pin!(stop);
        let started = tokio::time::Instant::now();
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
        loop {
            let mut any = false;
            self.sync(|s| {
                any = true;
                show(s);
            })
            .await?;
            if any {
                last_activity = tokio::time::Instant::now();
            }
            let relay_url = self.read_engine()?.relay().to_owned();
            let mut live = match self.relay(&relay_url)?.connect_live().await {
                Ok(l) => l,
                Err(_) => {
                    let (deadline, reason) = lock_at(last_activity);
                    tokio::select! {
                        () = &mut stop => return Ok(None),
                        () = tokio::time::sleep_until(deadline) => return Ok(Some(reason)),
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            backoff = Duration::from_millis(200);
            let mut subscribed: Vec<MailboxId> = Vec::new();
            let mut pending = std::collections::VecDeque::new();
            match self.subscribe_new(&mut live, &mut subscribed).await {
                Ok(m) => pending.extend(m),
                Err(_) => continue,
            }
            loop {
                let (deadline, reason) = lock_at(last_activity);
                if let Some((mailbox, message)) = pending.pop_front() {
                    self.handle_pushed(&mut live, mailbox, message, &mut show)
                        .await?;
                    last_activity = tokio::time::Instant::now();
                    continue;
                }
                let frame = tokio::select! {
                    () = &mut stop => return Ok(None),
                    () = tokio::time::sleep_until(deadline) => return Ok(Some(reason)),
                    _ = expiry.tick() => {
                        // Disappearing messages go while watch runs, too.
                        self.expire()?;
                        continue;
                    }
                    f = live.next() => f,
                };
                match frame {
                    Some(Ok(ServerFrame::Message { mailbox, message })) => {
                        last_activity = tokio::time::Instant::now();
                        if !self
                            .handle_pushed(&mut live, mailbox, message, &mut show)
                            .await?
                        {
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

    /// Processes one pushed message, shows it, acks it on the socket and
    /// sends what it queued; `false` if the connection broke.
    async fn handle_pushed(
        &mut self,
        live: &mut crate::LiveConnection,
        mailbox: MailboxId,
        message: ferry_proto::api::Message,
        show: &mut impl FnMut(&Shown),
    ) -> Result<bool, ProfileError> {
        let shown = self.process(vec![(mailbox, message.seq, message.payload)])?;
        self.show_all(&shown, show)?;
        if live.ack(mailbox, message.seq).await.is_err() {
            return Ok(false);
        }
        self.flush_outbox().await?;
        Ok(true)
    }

    /// Subscribes to inbound mailboxes not yet followed and waits for the
    /// relay's answer; returns messages pushed meanwhile.
    async fn subscribe_new(
        &mut self,
        live: &mut crate::LiveConnection,
        subscribed: &mut Vec<MailboxId>,
    ) -> Result<Vec<(MailboxId, ferry_proto::api::Message)>, ProfileError> {
        let engine = self.read_engine()?;
        let own = engine.relay().to_owned();
        let new: Vec<ferry_core::InboundMailbox> = engine
            .inbound()
            .into_iter()
            .filter(|b| b.relay == own && !subscribed.contains(&b.mailbox))
            .collect();
        if new.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<ferry_proto::MailboxKey> =
            new.iter().map(|b| b.recipient.mailbox_key()).collect();
        let items: Vec<(MailboxId, &ferry_proto::MailboxKey, Seq)> = new
            .iter()
            .zip(&keys)
            .map(|(b, k)| (b.mailbox, k, Seq(b.cursor)))
            .collect();
        let req = live.subscribe(&items).await?;
        let mut got = Vec::new();
        let answer = live
            .wait_for(req, |f| {
                if let ServerFrame::Message { mailbox, message } = f {
                    got.push((mailbox, message));
                }
            })
            .await?;
        match answer {
            ServerFrame::Ok { .. } => {
                subscribed.extend(new.iter().map(|b| b.mailbox));
                Ok(got)
            }
            ServerFrame::Error { code, .. } => Err(ClientError::Relay { status: 0, code }.into()),
            _ => Err(ClientError::Protocol("unexpected answer to subscribe".into()).into()),
        }
    }
}
