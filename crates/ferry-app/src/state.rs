//! What the app holds while it runs: the guard, the session (when
//! unlocked), what the page shows beside the vault (delivery states,
//! unread counts, transfers) and the page's preferences.
//!
//! Nothing here is written anywhere: delivery states and unread counts
//! start again at each unlock.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use ferry_client::{Event, LockLimits, Status};
use tokio::sync::{broadcast, mpsc};

use crate::actor::SessionHandle;
use crate::guard::Guard;
use crate::i18n::Lang;

/// What the page is told through its event stream: only that something
/// changed, never what (the page asks for what it shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Notice {
    /// Messages, contacts or states changed: refresh.
    Changed,
    /// A transfer moved on: bytes done of total.
    Progress(u64, u64),
    /// The session locked: go to the unlock page.
    Locked,
    /// A call moved on: ask `/call/state`.
    Call,
}

impl Notice {
    /// What the event carries (never content).
    pub(crate) fn data(self) -> String {
        match self {
            Self::Progress(done, total) => format!("{done} {total}"),
            _ => "1".to_owned(),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Changed => "changed",
            Self::Progress(..) => "progress",
            Self::Locked => "locked",
            Self::Call => "call",
        }
    }
}

/// What the page shows beside the vault's records.
#[derive(Default)]
pub(crate) struct View {
    /// Delivery state of outgoing messages, by message id.
    pub(crate) status: HashMap<String, Status>,
    /// Messages received since the conversation was last open, by alias.
    pub(crate) unread: HashMap<String, u32>,
    /// Last message in or out, by alias (Unix seconds).
    pub(crate) last: HashMap<String, u64>,
    /// Attachments decrypted for display, by contact and message id
    /// (memory only; dropped when any message goes and at lock).
    pub(crate) media: HashMap<(u64, String), Arc<ferry_client::Media>>,
    /// Bumped whenever decrypted attachments must go (a message went, the
    /// session locked): a copy decrypted before is not kept after.
    pub(crate) generation: u64,
    /// The view-once attachment being shown (its random address and its
    /// bytes), until closed.
    pub(crate) once: Option<(String, Arc<ferry_client::Media>)>,
    /// Contacts who asked us to prove it is us (until we answer).
    pub(crate) challenged: std::collections::HashSet<String>,
    /// Contacts whose mailbox the relay no longer has: this copy of the
    /// account is out of date.
    pub(crate) mailbox_gone: std::collections::HashSet<String>,
    /// The last answer to our challenge, by alias: outcome, and whether it
    /// lifted the contact's quarantine.
    pub(crate) proofs: HashMap<String, (ferry_client::ProofResult, bool)>,
    /// What the calls said since the page last asked, oldest first.
    pub(crate) calls: std::collections::VecDeque<CallNote>,
}

/// One thing a call said, for the page's script (no `Debug`: the
/// descriptions hold ICE passwords).
#[derive(Clone, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum CallNote {
    /// It rings.
    Ringing,
    /// Our call was answered: the contact's description.
    Answered { sdp: String },
    /// The contact restarts ICE: their new offer.
    Restart { sdp: String },
    /// The answer to our restart.
    RestartAnswer { sdp: String },
    /// Over.
    Ended,
}

/// Most call notes kept for a page that does not ask.
const MAX_CALL_NOTES: usize = 16;

/// Most bytes of decrypted attachments kept in memory at once.
const MEDIA_BUDGET: usize = 256 * 1024 * 1024;

impl View {
    /// Keeps a decrypted attachment for the next requests, unless
    /// something went since it was asked for; stays under the budget.
    pub(crate) fn keep_media(
        &mut self,
        generation: u64,
        key: (u64, String),
        m: Arc<ferry_client::Media>,
    ) {
        if generation != self.generation {
            return;
        }
        let held: usize = self.media.values().map(|m| m.bytes.len()).sum();
        if held + m.bytes.len() > MEDIA_BUDGET {
            self.media.clear();
        }
        self.media.insert(key, m);
    }

    /// Drops every decrypted attachment (a message went).
    pub(crate) fn drop_media(&mut self) {
        self.media.clear();
        self.generation += 1;
    }
}

/// The page's preferences (kept in memory only: nothing in the browser).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Prefs {
    /// Chosen language; `None`: the browser's preference.
    pub(crate) lang: Option<Lang>,
    /// Dark theme forced on or off; `None`: the system's.
    pub(crate) dark: Option<bool>,
    /// Minutes the page may stay hidden before it locks.
    pub(crate) hidden_lock_minutes: u32,
    /// Minutes without use before the session locks (from the next
    /// unlock); `None`: the `--idle-lock` given to `ferry app`.
    pub(crate) idle_lock_minutes: Option<u32>,
}

/// Where the session stands.
pub(crate) enum Phase {
    /// Locked (or no profile yet).
    Locked,
    /// Unlocked.
    Open(SessionHandle),
}

/// Everything the routes share.
pub(crate) struct AppState {
    pub(crate) guard: Guard,
    pub(crate) home: PathBuf,
    limits: LockLimits,
    phase: Mutex<Phase>,
    view: Arc<Mutex<View>>,
    pub(crate) notices: broadcast::Sender<Notice>,
    prefs: Mutex<Prefs>,
    links: mpsc::UnboundedSender<String>,
    /// Only one unlock or setup at a time.
    pub(crate) opening: tokio::sync::Mutex<()>,
    /// The page is locked (the session goes on behind it).
    page_locked: std::sync::atomic::AtomicBool,
    /// The open session is the decoy, opened to prepare it.
    decoy: std::sync::atomic::AtomicBool,
    /// The passphrase that opened the session, as an Argon2id hash.
    verifier: Mutex<Option<Arc<crate::page_lock::Verifier>>>,
    /// A recovery phrase shown and not yet confirmed.
    pending_phrase: Mutex<Option<crate::routes::stow::PendingPhrase>>,
    /// The account was stowed from this app: the dead-man deadline, if
    /// any, for the first screen.
    stowed: Mutex<Option<Option<u64>>>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl AppState {
    pub(crate) fn new(
        guard: Guard,
        home: PathBuf,
        limits: LockLimits,
        links: mpsc::UnboundedSender<String>,
    ) -> Self {
        let (notices, _) = broadcast::channel(64);
        Self {
            guard,
            home,
            limits,
            phase: Mutex::new(Phase::Locked),
            view: Arc::default(),
            notices,
            prefs: Mutex::new(Prefs {
                hidden_lock_minutes: 5,
                ..Prefs::default()
            }),
            links,
            opening: tokio::sync::Mutex::new(()),
            pending_phrase: Mutex::new(None),
            stowed: Mutex::new(None),
            page_locked: std::sync::atomic::AtomicBool::new(false),
            decoy: std::sync::atomic::AtomicBool::new(false),
            verifier: Mutex::new(None),
        }
    }

    /// The auto-lock limits for a session opened now.
    pub(crate) fn limits(&self) -> LockLimits {
        let mut l = self.limits;
        if let Some(m) = self.prefs().idle_lock_minutes {
            l.idle = std::time::Duration::from_secs(u64::from(m) * 60);
        }
        l
    }

    /// Prints a fresh launch link (the last one was used).
    pub(crate) fn announce_link(&self) {
        let _ = self.links.send(self.guard.launch_url());
    }

    /// The session, if unlocked.
    pub(crate) fn session(&self) -> Option<SessionHandle> {
        match &*locked(&self.phase) {
            Phase::Open(h) => Some(h.clone()),
            Phase::Locked => None,
        }
    }

    /// Locks the session and waits (up to 15 s) until its thread has
    /// finished: files evened out, keys gone. Pages asked for afterwards
    /// show the unlock screen.
    /// `false` if the session is still busy (a long transfer) after that.
    pub(crate) async fn lock_and_wait(&self) -> bool {
        let Some(h) = self.session() else {
            return true;
        };
        h.lock();
        for _ in 0..750 {
            if self.session().is_none() {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        false
    }

    pub(crate) fn set_open(&self, h: SessionHandle, verifier: Option<crate::page_lock::Verifier>) {
        *locked(&self.verifier) = verifier.map(Arc::new);
        self.page_locked
            .store(false, std::sync::atomic::Ordering::SeqCst);
        *locked(&self.phase) = Phase::Open(h);
    }

    /// Whether the open session is the decoy being prepared.
    pub(crate) fn decoy(&self) -> bool {
        self.decoy.load(std::sync::atomic::Ordering::SeqCst) && self.session().is_some()
    }

    pub(crate) fn set_decoy(&self, on: bool) {
        self.decoy.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether the page is locked in front of a running session.
    pub(crate) fn page_locked(&self) -> bool {
        self.page_locked.load(std::sync::atomic::Ordering::SeqCst) && self.session().is_some()
    }

    /// Locks or unlocks the page (not the session).
    pub(crate) fn set_page_locked(&self, on: bool) {
        self.page_locked
            .store(on, std::sync::atomic::Ordering::SeqCst);
        if on {
            let _ = self.notices.send(Notice::Locked);
        }
    }

    /// The passphrase check for the page lock.
    pub(crate) fn verifier(&self) -> Option<Arc<crate::page_lock::Verifier>> {
        locked(&self.verifier).clone()
    }

    /// Called once the session thread has locked.
    /// Keeps (or drops) the phrase shown and not yet confirmed.
    pub(crate) fn set_pending_phrase(&self, p: Option<crate::routes::stow::PendingPhrase>) {
        *locked(&self.pending_phrase) = p;
    }

    /// Notes a stow (with its deadline) for the first screen, or forgets it.
    pub(crate) fn set_stowed(&self, s: Option<Option<u64>>) {
        *locked(&self.stowed) = s;
    }

    /// The stow made from this app, if any, shown once (whoever picks the
    /// phone up later must not learn that an account is stowed).
    pub(crate) fn take_stowed(&self) -> Option<Option<u64>> {
        locked(&self.stowed).take()
    }

    /// Takes the phrase shown and not yet confirmed.
    pub(crate) fn take_pending_phrase(&self) -> Option<crate::routes::stow::PendingPhrase> {
        locked(&self.pending_phrase).take()
    }

    pub(crate) fn set_locked(&self) {
        *locked(&self.phase) = Phase::Locked;
        *locked(&self.verifier) = None;
        *locked(&self.pending_phrase) = None;
        self.decoy.store(false, std::sync::atomic::Ordering::SeqCst);
        self.page_locked
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let mut v = locked(&self.view);
        let generation = v.generation + 1;
        *v = View::default();
        v.generation = generation;
        drop(v);
        let _ = self.notices.send(Notice::Locked);
    }

    pub(crate) fn view(&self) -> MutexGuard<'_, View> {
        locked(&self.view)
    }

    pub(crate) fn prefs(&self) -> Prefs {
        *locked(&self.prefs)
    }

    pub(crate) fn set_prefs(&self, f: impl FnOnce(&mut Prefs)) {
        f(&mut locked(&self.prefs));
    }

    /// The session's listener: keeps the view up to date and tells pages.
    pub(crate) fn listener(&self) -> ferry_client::Listener {
        let view = Arc::clone(&self.view);
        let notices = self.notices.clone();
        Box::new(move |ev: &Event| {
            let notice = {
                let mut v = locked(&view);
                record(&mut v, ev)
            };
            if let Some(n) = notice {
                let _ = notices.send(n);
            }
        })
    }
}

/// Applies one session event to the view; what to tell the pages.
fn record(v: &mut View, ev: &Event) -> Option<Notice> {
    let now = ferry_client::now();
    match ev {
        Event::Received { contact, .. } => {
            *v.unread.entry(contact.clone()).or_default() += 1;
            v.last.insert(contact.clone(), now);
        }
        Event::Sent { contact, entry } => {
            v.last.insert(contact.clone(), now);
            v.status.insert(entry.id.clone(), Status::Queued);
        }
        Event::Status { id, status, .. } => {
            v.status.insert(id.clone(), *status);
        }
        Event::Locked(_) => return Some(Notice::Locked),
        Event::Challenged { contact } => {
            v.challenged.insert(contact.clone());
        }
        Event::MailboxGone { contact } => {
            v.mailbox_gone.insert(contact.clone());
        }
        Event::Proof {
            contact,
            result,
            lifted,
        } => {
            v.proofs.insert(contact.clone(), (*result, *lifted));
        }
        Event::Transfer(ferry_client::Progress::Bytes { done, total }) => {
            return Some(Notice::Progress(*done, *total));
        }
        Event::Transfer(_) => return None,
        // A message went: so do decrypted copies of attachments.
        Event::Deleted { .. } | Event::Expired { .. } => v.drop_media(),
        Event::Call { contact, update } => {
            use ferry_core::call::{CallOutcome, CallUpdate};
            let note = match update {
                CallUpdate::Ringing { .. } => CallNote::Ringing,
                CallUpdate::Answered(s) => CallNote::Answered { sdp: s.sdp.clone() },
                CallUpdate::Restart(s) => CallNote::Restart { sdp: s.sdp.clone() },
                CallUpdate::RestartAnswer(s) => CallNote::RestartAnswer { sdp: s.sdp.clone() },
                CallUpdate::Ended(entry) => {
                    v.last.insert(contact.clone(), now);
                    let missed = entry.call.is_some_and(|c| {
                        matches!(c.outcome, CallOutcome::Missed | CallOutcome::Refused)
                    });
                    if missed {
                        *v.unread.entry(contact.clone()).or_default() += 1;
                    }
                    CallNote::Ended
                }
                _ => return Some(Notice::Changed),
            };
            if v.calls.len() >= MAX_CALL_NOTES {
                v.calls.pop_front();
            }
            v.calls.push_back(note);
            return Some(Notice::Call);
        }
        _ => {}
    }
    Some(Notice::Changed)
}
