//! A session: one unlocked profile, its engine in memory, one event stream.
//!
//! Unlocking loads the engine from the vault once; the session then holds
//! the vault (and with it the profile lock, so no other process can fork the
//! state) until it is locked or dropped. Every operation follows one order:
//! the engine processes in memory, what it changed (settings, the touched
//! contacts, queued relay calls, the MLS keys written or deleted) is
//! committed to the vault in one transaction together with history changes,
//! and only then does the session talk to the relay (send queued calls, ack
//! what was processed). A crash at any point therefore loses nothing and
//! shows nothing twice: unacked messages come back and are recognised by
//! their sequence number; queued sends stay in the outbox until the relay
//! took them. If a commit fails, the engine is reloaded from the vault, so
//! memory never runs ahead of the disk.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry_core::{ActionId, Changes, ContactInfo, CoreError, Engine, HistoryEntry, Saved};
use ferry_vault::{Table, Tx, Vault, VaultError};
use rand_core::OsRng;
use secrecy::SecretString;

use crate::relay::RelayClient;

mod attachments;
mod calls;
mod downloads;
mod error;
mod events;
mod groups;
mod media;
mod messages;
mod network;
mod outbox;
mod restore;
mod seizure;
mod stow;
mod sync;

pub use attachments::{FileMeta, SaveOutcome};
pub use error::SessionError;
pub use events::{Event, EventStream, Listener, LockReason, STREAM_BACKLOG, Status};
pub use media::{MAX_INLINE, Media};
pub use restore::{RESTORE_JOURNAL, RestoreRequest, Restoring, restore_files};
pub use stow::Stowed;
pub use sync::{Job, JobFn};

/// The engine's settings record.
const STATE_BLOB: &str = "profile";
/// How long an invite stays valid.
pub const INVITE_TTL_SECS: u64 = 7 * 24 * 3600;

/// When a long-running session locks itself.
#[derive(Debug, Clone, Copy)]
pub struct LockLimits {
    /// Lock after this long without local input. Messages pushed from
    /// outside are not activity (whoever holds a seized phone could keep
    /// sending them), and a `watch` has no input, so it locks after this
    /// long whatever arrives.
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

/// Days since 1970-01-01 to (year, month, day), for front ends that show
/// dates (Howard Hinnant's algorithm).
pub fn civil_date(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// The current Unix time.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Whether `home` holds a profile.
pub fn profile_exists(home: &Path) -> bool {
    Vault::exists(home)
}

/// Destroys the profile in `home` at once, without a passphrase and
/// without the network, even while a session has it open (see
/// `ferry_vault::panic_wipe`); returns how many files were destroyed.
pub fn panic_wipe(home: &Path) -> Result<usize, SessionError> {
    if !Vault::exists(home) && !home.exists() {
        return Err(VaultError::NotFound.into());
    }
    Ok(ferry_vault::panic_wipe(home, &mut OsRng)?)
}

/// A history change committed with an engine update.
pub(crate) enum Change {
    Insert(u64, HistoryEntry),
    Delete(u64, String),
    /// Forgets a pending upload (its message is queued in this commit).
    ForgetUpload(ferry_proto::MailboxId),
    /// Destroys a whole conversation's messages (a group left).
    DeleteAll(u64),
}

/// What an unlock is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Opening {
    /// Everyday use: a pending stow is finished first.
    Normal,
    /// A restore opens the profile it is installing (anyone else is
    /// refused while its journal is there).
    Restoring,
    /// The user gives up a pending stow and keeps the profile here.
    AbandonStow,
}

/// What a session cost, for benchmarks and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Times the engine was loaded from the vault (once per unlock, and
    /// again only after a failed operation).
    pub engine_loads: u64,
    /// Vault transactions committed by engine updates.
    pub commits: u64,
    /// Bytes of records, MLS keys and values handed to those transactions.
    pub bytes: u64,
}

/// An unlocked profile.
pub struct Session {
    vault: Vault,
    engine: Engine,
    relays: HashMap<String, RelayClient>,
    /// Clients for group mailboxes only: their own connections, so a relay
    /// does not see a group's reads on the connection of the 1:1 syncs.
    group_relays: HashMap<String, RelayClient>,
    /// How relays are reached (direct or through the profile's proxy).
    network: crate::net::Network,
    hub: events::Hub,
    /// Outgoing messages whose relay call is queued, by call.
    pending: HashMap<ActionId, (String, String)>,
    stats: WriteStats,
    /// The engine could not be brought back in step with the vault after a
    /// failure: the session refuses to change anything more.
    poisoned: bool,
    /// Inbound mailboxes the relay no longer has (reported once; never
    /// subscribed to).
    lost: std::collections::HashSet<ferry_proto::MailboxId>,
    /// A received view-once text stays (sealed in the vault) until the
    /// front end opens it with [`Session::open_view_once`], instead of
    /// being destroyed as soon as its event has been shown.
    view_once_on_open: bool,
    /// A message was deleted since the local attachment copies were last
    /// checked (expiry checks them when it destroyed something).
    media_dirty: bool,
    /// The relayed address of the TURN credentials last fetched, and for
    /// which contact: what the call's descriptions must name.
    call_relay_ip: Option<(String, std::net::IpAddr)>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Session(..)")
    }
}

fn check_relay_url(relay: &str) -> Result<(), SessionError> {
    if relay.starts_with("http://") || relay.starts_with("https://") {
        Ok(())
    } else {
        Err(SessionError::BadRelayUrl)
    }
}

/// Reads the engine's records from a vault.
fn load_engine(vault: &Vault) -> Result<Engine, SessionError> {
    let settings = vault
        .blob(STATE_BLOB)?
        .ok_or_else(|| VaultError::Corrupt("profile state missing".into()))?;
    let saved = Saved {
        settings,
        contacts: vault
            .records(Table::Contacts)?
            .into_iter()
            .map(|(_, r)| r)
            .collect(),
        outbox: vault.records(Table::Outbox)?,
        groups: vault
            .records(Table::Groups)?
            .into_iter()
            .map(|(_, r)| r)
            .collect(),
        mls: vault.mls_state()?,
    };
    Ok(Engine::load(saved)?)
}

/// Writes an engine's changes inside a transaction.
fn write_changes(tx: &Tx<'_>, c: &Changes) -> Result<(), VaultError> {
    if let Some(s) = &c.settings {
        tx.put_blob(STATE_BLOB, s)?;
    }
    for (id, r) in &c.contacts {
        tx.put_record(Table::Contacts, *id, r.as_ref().map(|r| r.as_slice()))?;
    }
    for (id, r) in &c.outbox {
        tx.put_record(Table::Outbox, *id, r.as_ref().map(|r| r.as_slice()))?;
    }
    for (id, r) in &c.groups {
        tx.put_record(Table::Groups, *id, r.as_ref().map(|r| r.as_slice()))?;
    }
    tx.update_mls(
        c.mls
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_ref().map(|v| v.as_slice()))),
    )
}

/// Writes a whole new engine into a fresh vault.
fn write_new(vault: &mut Vault, engine: &mut Engine) -> Result<(), SessionError> {
    let changes = engine.take_changes()?;
    vault.transaction(|tx| write_changes(tx, &changes))?;
    Ok(())
}

impl Session {
    fn open(vault: Vault) -> Result<Self, SessionError> {
        let engine = load_engine(&vault)?;
        let network = network::load(&vault)?;
        let mut s = Self {
            vault,
            engine,
            relays: HashMap::new(),
            group_relays: HashMap::new(),
            network,
            hub: events::Hub::default(),
            pending: HashMap::new(),
            stats: WriteStats {
                engine_loads: 1,
                ..WriteStats::default()
            },
            poisoned: false,
            lost: std::collections::HashSet::new(),
            view_once_on_open: false,
            media_dirty: true,
            call_relay_ip: None,
        };
        // A profile saved by an earlier release is rewritten in today's
        // layout here, in one transaction, before anything else.
        if s.engine.has_changes() {
            s.update(|_| Ok(((), Vec::new())))?;
        }
        seizure::ensure_capsule_region(&mut s.vault)?;
        if s.sweep_orphan_history().is_err() {
            tracing::warn!(
                "history no conversation owns could not be destroyed; tried again at the next unlock"
            );
        }
        Ok(s)
    }

    /// Creates a profile in `home` whose mailboxes live on `relay`.
    pub fn init(
        home: &Path,
        pass: &SecretString,
        relay: &str,
        token: Option<String>,
    ) -> Result<Self, SessionError> {
        check_relay_url(relay)?;
        let mut vault = Vault::create(home, pass, &mut OsRng)?;
        let mut engine = Engine::new(relay);
        engine.set_relay_token(token);
        write_new(&mut vault, &mut engine)?;
        Self::open(vault)
    }

    /// Unlocks the profile in `home` (waiting a little if another process
    /// has it open), silently, whichever passphrase was given:
    ///
    /// - after a duress unlock, the capsule in the decoy warns every contact
    ///   of the destroyed profile first, from the vault alone, so nothing
    ///   that could fail later (loading the decoy, a write) holds the
    ///   warnings back;
    /// - after a real unlock, the dead-man switches are renewed;
    /// - either way, expired messages are destroyed before anything can be
    ///   shown.
    pub async fn unlock(home: &Path, pass: &SecretString) -> Result<Self, SessionError> {
        Self::unlock_with(home, pass, None).await
    }

    /// [`Session::unlock`], first storing `network` as the profile's way
    /// to reach relays (in both slots), so that not even the unlock's own
    /// connections go out another way.
    pub async fn unlock_with(
        home: &Path,
        pass: &SecretString,
        network: Option<crate::net::Network>,
    ) -> Result<Self, SessionError> {
        Self::unlock_inner(home, pass, network, Opening::Normal).await
    }

    /// [`Session::unlock`] that gives up a stow left unfinished instead of
    /// finishing it (its relay is gone for good): the profile stays here
    /// and is used again. If that stow did land, the relay's copy is newer
    /// than this one, and stowing this one over it is refused.
    pub async fn unlock_abandoning_stow(
        home: &Path,
        pass: &SecretString,
    ) -> Result<Self, SessionError> {
        Self::unlock_inner(home, pass, None, Opening::AbandonStow).await
    }

    /// The unlock, as `opening` says.
    async fn unlock_inner(
        home: &Path,
        pass: &SecretString,
        network: Option<crate::net::Network>,
        opening: Opening,
    ) -> Result<Self, SessionError> {
        if opening != Opening::Restoring && home.join(restore::RESTORE_JOURNAL).exists() {
            return Err(SessionError::RestoreUnfinished);
        }
        let mut vault = Vault::unlock(home, pass, &mut OsRng)?;
        // A failure to store the given setting must not hold back the
        // duress warnings: they go out the way asked for, and the error is
        // reported after.
        let stored = match &network {
            Some(net) => network::store_everywhere(&mut vault, net),
            None => Ok(()),
        };
        // The warnings go out the way the profile says (its proxy), or not
        // at all if that setting cannot be read.
        let way_out = match network {
            Some(net) => Ok(net),
            None => network::load(&vault),
        };
        let coerced = match way_out {
            Ok(net) => seizure::fire_capsule(&mut vault, &net).await,
            Err(_) => false,
        };
        stored?;
        let mut s = Self::open(vault)?;
        if s.stow_pending()? && opening == Opening::AbandonStow {
            s.abandon_stow()?;
        } else if s.stow_pending()? {
            // A stow was under way: it is finished first, and nothing else
            // runs on this profile.
            return Err(match s.finish_stow().await {
                Ok(stowed) => SessionError::StowFinished(stowed),
                Err(e) => e,
            });
        }
        s.expire()?;
        if !coerced {
            // Failures are left for the next unlock.
            let _ = s.renew_canaries().await;
        }
        Ok(s)
    }

    /// Sets the duress passphrase: creates a decoy profile (its mailboxes on
    /// `relay`) that the duress passphrase opens, destroying this one.
    pub fn set_duress(&mut self, duress: &SecretString, relay: &str) -> Result<(), SessionError> {
        check_relay_url(relay)?;
        let changes = Engine::new(relay).take_changes()?;
        let net = self.network.clone();
        self.vault.set_duress(duress, &mut OsRng, |decoy| {
            decoy.transaction(|tx| {
                write_changes(tx, &changes)?;
                network::store(tx, &net)
            })
        })?;
        Ok(())
    }

    /// Destroys the profile after `n` wrong passphrases in a row (0: never).
    pub fn set_wipe_after(&self, n: u32) -> Result<(), SessionError> {
        Ok(self.vault.set_wipe_after(n, &mut OsRng)?)
    }

    /// This profile's relay.
    pub fn relay_url(&self) -> &str {
        self.engine.relay()
    }

    /// The decoy profile, to prepare it (contacts, messages), opened
    /// through this real session, which it replaces: one live engine per
    /// slot.
    pub fn into_decoy(self) -> Result<Option<Session>, SessionError> {
        self.vault.open_decoy()?.map(Self::open).transpose()
    }

    /// Whether the profile's files are gone (a panic wipe from another
    /// process): a long-running front end then locks at once.
    pub fn wiped(&self) -> bool {
        !Vault::exists(self.vault.dir())
    }

    /// Calls `listener` with every event, in order, before the session goes
    /// on (the CLI prints through it).
    pub fn set_listener(&mut self, listener: Option<Listener>) {
        self.hub.set_listener(listener);
    }

    /// A stream of every event from now on.
    pub fn subscribe(&mut self) -> EventStream {
        self.hub.subscribe()
    }

    pub(crate) fn emit(&mut self, ev: Event) {
        self.hub.emit(ev);
    }

    /// Keeps received view-once texts until [`Session::open_view_once`]
    /// shows them (a front end whose events do not display the text, such
    /// as the app, where the person taps to open it).
    pub fn keep_view_once_until_opened(&mut self) {
        self.view_once_on_open = true;
    }

    /// What engine updates asked the vault to write so far.
    pub fn write_stats(&self) -> WriteStats {
        self.stats
    }

    /// Locks the session: refreshes the duress capsule, evens out the slot
    /// sizes, tells the listeners, then closes the vault (zeroizing the
    /// engine's secrets as they drop).
    pub fn lock(mut self, reason: LockReason) -> Result<(), SessionError> {
        let finished = self.finish();
        self.emit(Event::Locked(reason));
        finished
    }

    /// Runs `f` on the engine and commits what it changed, plus `f`'s
    /// history changes, in one transaction. If `f` fails or the commit
    /// does, the engine is reloaded from the vault: nothing of a failed
    /// operation is kept, in memory or on disk.
    pub(crate) fn update<T>(
        &mut self,
        f: impl FnOnce(&mut Engine) -> Result<(T, Vec<Change>), SessionError>,
    ) -> Result<T, SessionError> {
        if self.poisoned {
            return Err(SessionError::OutOfStep);
        }
        // Nothing of a failed operation is kept: not even its call state.
        let call = self.engine.save_call();
        let (value, history) = match f(&mut self.engine) {
            Ok(v) => v,
            Err(e) => {
                if self.engine.has_changes() {
                    self.recover(call);
                } else {
                    self.engine.restore_call(call);
                }
                return Err(e);
            }
        };
        let changes = match self.engine.take_changes() {
            Ok(c) => c,
            Err(e) => {
                self.recover(call);
                return Err(e.into());
            }
        };
        if changes.is_empty() && history.is_empty() {
            return Ok(value);
        }
        let bytes = changes.bytes();
        if history
            .iter()
            .any(|c| matches!(c, Change::Delete(..) | Change::DeleteAll(_)))
        {
            self.media_dirty = true;
        }
        let outcome = self.vault.transaction(|tx| {
            write_changes(tx, &changes)?;
            for change in &history {
                match change {
                    Change::Insert(contact, e) => {
                        tx.insert_message(*contact, e.id.as_bytes(), &e.to_record(), e.expires_at)?;
                    }
                    Change::Delete(contact, id) => {
                        tx.delete_message(*contact, id.as_bytes())?;
                    }
                    Change::ForgetUpload(blob) => attachments::forget_upload(tx, *blob)?,
                    Change::DeleteAll(contact) => {
                        tx.delete_conversation(*contact)?;
                    }
                }
            }
            Ok(())
        });
        match outcome {
            Ok(()) => {
                self.stats.commits += 1;
                self.stats.bytes += bytes as u64;
                Ok(value)
            }
            Err(e) => {
                self.recover(call);
                Err(e.into())
            }
        }
    }

    /// Destroys messages no contact or group owns any more (a crash between
    /// a group's end and the deletion of its history).
    fn sweep_orphan_history(&mut self) -> Result<(), SessionError> {
        let owned: std::collections::HashSet<u64> = self
            .engine
            .contacts()
            .iter()
            .map(|c| c.id)
            // Every group's record, loadable or not.
            .chain(self.engine.group_ids())
            .collect();
        let orphans: Vec<Change> = self
            .vault
            .conversations()?
            .into_iter()
            .filter(|c| !owned.contains(c))
            .map(Change::DeleteAll)
            .collect();
        if !orphans.is_empty() {
            self.update(|_| Ok(((), orphans)))?;
        }
        Ok(())
    }

    /// Replaces the engine with what the vault holds; if even that fails,
    /// the session stops changing anything (the front end must unlock
    /// again), since its memory may be ahead of the disk.
    fn recover(&mut self, call: ferry_core::call::SavedCall) {
        match load_engine(&self.vault) {
            Ok(mut engine) => {
                // A call lives in memory only: it goes on as it was before
                // the failed operation.
                engine.restore_call(call);
                self.engine = engine;
                self.stats.engine_loads += 1;
            }
            Err(_) => {
                tracing::warn!("could not reload the profile after a failure; session stopped");
                self.poisoned = true;
            }
        }
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(crate) fn relay(&mut self, url: &str) -> Result<&RelayClient, SessionError> {
        if !self.relays.contains_key(url) {
            let client = self.new_client(url)?;
            self.relays.insert(url.to_owned(), client);
        }
        self.relays.get(url).ok_or(SessionError::BadRelayUrl)
    }

    /// The client for group mailboxes on `url`: a connection of its own.
    pub(crate) fn group_relay(&mut self, url: &str) -> Result<&RelayClient, SessionError> {
        if !self.group_relays.contains_key(url) {
            let client = self.new_client(url)?;
            self.group_relays.insert(url.to_owned(), client);
        }
        self.group_relays.get(url).ok_or(SessionError::BadRelayUrl)
    }

    fn new_client(&self, url: &str) -> Result<RelayClient, SessionError> {
        let mut client = RelayClient::with_network(url, &self.network)?;
        if let (true, Some(t)) = (self.engine.relay() == url, self.engine.relay_token()) {
            client = client.with_access_token(t);
        }
        Ok(client)
    }

    /// Contacts.
    pub fn contacts(&self) -> Vec<ContactInfo> {
        self.engine.contacts()
    }

    /// The history key of a contact, or of a group by its name.
    fn contact_id(&self, alias: &str) -> Result<u64, SessionError> {
        match self.engine.contact(alias) {
            Some(c) => Ok(c.id),
            None => Ok(self
                .engine
                .group_id(alias)
                .ok_or(CoreError::UnknownContact)?),
        }
    }

    /// A conversation's history, oldest first.
    pub fn history(&self, alias: &str) -> Result<Vec<HistoryEntry>, SessionError> {
        let id = self.contact_id(alias)?;
        self.vault
            .messages(id)?
            .iter()
            .map(|r| HistoryEntry::from_record(r).map_err(SessionError::from))
            .collect()
    }

    /// The conversation's safety code: compared with the contact's (in
    /// person or on a channel both trust), equal codes mean nobody sits
    /// between the two devices.
    pub fn safety_code(&mut self, alias: &str) -> Result<String, SessionError> {
        Ok(self.engine.safety_code(alias)?)
    }

    /// The conversation's timer (a contact's or a group's).
    pub fn timer(&mut self, alias: &str) -> Result<Option<u64>, SessionError> {
        if self.is_group(alias) {
            return Ok(self.engine.group_timer_of(alias)?);
        }
        Ok(self.engine.timer(alias)?)
    }
}
