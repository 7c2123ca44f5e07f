//! Creating, unlocking and locking the profile; the event stream.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use ferry_client::{Network, ProxyUrl, Session};
use futures_util::Stream;
use secrecy::SecretString;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{Req, St, fail, fail_with, go, html};
use crate::pages::{self, chats::ChatRow};
use crate::state::AppState;

/// `/`: the chat list, or the unlock page, or the setup page.
pub(crate) async fn home(State(state): St, req: Req) -> Response {
    if state.page_locked() {
        return html(pages::lock::unlock(&req.cx, "/page-unlock"));
    }
    let Some(h) = state.session() else {
        let unfinished = state
            .home
            .join(ferry_client::session::RESTORE_JOURNAL)
            .exists();
        return if ferry_client::profile_exists(&state.home) && !unfinished {
            html(pages::lock::unlock(&req.cx, "/unlock"))
        } else {
            html(pages::lock::setup(&req.cx, state.take_stowed()))
        };
    };
    match chat_rows(&state, &h, req.input).await {
        Ok(rows) => html(pages::chats::page_for(&req.cx, &rows)),
        Err(r) => r,
    }
}

/// The chat list's rows.
pub(crate) async fn chat_rows(
    state: &AppState,
    h: &crate::actor::SessionHandle,
    input: bool,
) -> Result<Vec<ChatRow>, Response> {
    let (contacts, groups) = h
        .run(input, |s| {
            Box::pin(async move { (s.contacts(), s.groups()) })
        })
        .await
        .map_err(IntoResponse::into_response)?;
    let view = state.view();
    let mut rows: Vec<ChatRow> = contacts
        .into_iter()
        .map(|c| ChatRow {
            id: c.id,
            unread: view.unread.get(&c.alias).copied().unwrap_or(0),
            last: view.last.get(&c.alias).copied(),
            compromised: c.compromised.is_some(),
            state: c.state,
            alias: c.alias,
            group: None,
        })
        .collect();
    rows.extend(groups.into_iter().map(|g| ChatRow {
        id: g.id,
        unread: view.unread.get(&g.name).copied().unwrap_or(0),
        last: view.last.get(&g.name).copied(),
        compromised: false,
        state: ferry_client::ContactState::Established,
        alias: g.name,
        group: Some(g.members),
    }));
    // Most recent first; then by name.
    rows.sort_by(|a, b| b.last.cmp(&a.last).then_with(|| a.alias.cmp(&b.alias)));
    Ok(rows)
}

#[derive(Deserialize)]
pub(crate) struct SetupForm {
    relay: String,
    passphrase: Zeroizing<String>,
    repeat: Zeroizing<String>,
    #[serde(default)]
    proxy: String,
}

/// Creates the profile (and stores the proxy before any connection).
pub(crate) async fn setup(State(state): St, req: Req, Form(f): Form<SetupForm>) -> Response {
    let lang = req.cx.lang;
    let _one = state.opening.lock().await;
    if state.session().is_some() || ferry_client::profile_exists(&state.home) {
        return fail(lang, "profile_exists");
    }
    if f.passphrase.chars().count() < 8 {
        return fail(lang, "passphrase_short");
    }
    if f.passphrase != f.repeat {
        return fail(lang, "passphrase_mismatch");
    }
    let proxy = match f.proxy.trim() {
        "" => None,
        p => match p.parse::<ProxyUrl>() {
            Ok(p) => Some(p),
            Err(_) => return fail(lang, "bad_proxy"),
        },
    };
    let home = state.home.clone();
    let relay = f.relay.trim().to_owned();
    let pass = SecretString::from(f.passphrase.as_str().to_owned());
    let verifier = verifier_for(f.passphrase.as_str()).await;
    let opened = open(&state, verifier, move || {
        Box::pin(async move {
            let mut s = Session::init(&home, &pass, &relay, None)?;
            if let Some(p) = proxy {
                s.set_network(Network::via(p))?;
            }
            Ok(s)
        })
    })
    .await;
    match opened {
        Ok(()) => go("/"),
        Err(e) => fail_with(lang, &e),
    }
}

#[derive(Deserialize)]
pub(crate) struct UnlockForm {
    passphrase: Zeroizing<String>,
    /// Give up a stow that cannot finish (its relay is gone for good).
    #[serde(default)]
    abandon_stow: Option<String>,
}

/// Unlocks with whichever passphrase was typed.
pub(crate) async fn unlock(State(state): St, req: Req, Form(f): Form<UnlockForm>) -> Response {
    match unlock_with(&state, &f.passphrase, f.abandon_stow.is_some()).await {
        Ok(()) => go("/"),
        Err(e) => fail_with(req.cx.lang, &e),
    }
}

/// The page-lock check of `pass`, computed off the async threads.
pub(super) async fn verifier_for(pass: &str) -> Option<crate::page_lock::Verifier> {
    let pass = SecretString::from(pass.to_owned());
    tokio::task::spawn_blocking(move || crate::page_lock::Verifier::new(&pass))
        .await
        .ok()
        .flatten()
}

/// Opens the session with `pass` (whichever passphrase it is).
async fn unlock_with(
    state: &Arc<AppState>,
    pass: &str,
    abandon_stow: bool,
) -> Result<(), ferry_client::SessionError> {
    let _one = state.opening.lock().await;
    if state.session().is_some() {
        return Ok(());
    }
    let home = state.home.clone();
    let secret = SecretString::from(pass.to_owned());
    let verifier = verifier_for(pass).await;
    open(state, verifier, move || {
        Box::pin(async move {
            if abandon_stow {
                Session::unlock_abandoning_stow(&home, &secret).await
            } else {
                Session::unlock(&home, &secret).await
            }
        })
    })
    .await
}

/// Opens the decoy profile to prepare it (innocuous contacts and
/// messages): the real session is locked and the decoy is opened through
/// the real profile, which needs its passphrase. Locking leaves it.
pub(crate) async fn prepare_decoy(
    State(state): St,
    req: Req,
    Form(f): Form<UnlockForm>,
) -> Response {
    let lang = req.cx.lang;
    let pass = SecretString::from(f.passphrase.as_str().to_owned());
    let same = {
        let verifier = state.verifier();
        let pass = SecretString::from(f.passphrase.as_str().to_owned());
        tokio::task::spawn_blocking(move || verifier.is_some_and(|v| v.matches(&pass)))
            .await
            .unwrap_or(false)
    };
    if !same {
        return fail(lang, "wrong_passphrase");
    }
    if !state.lock_and_wait().await {
        return fail(lang, "busy");
    }
    let _one = state.opening.lock().await;
    let home = state.home.clone();
    let verifier = verifier_for(f.passphrase.as_str()).await;
    let opened = open(&state, verifier, move || {
        Box::pin(async move {
            Session::unlock(&home, &pass)
                .await?
                .into_decoy()?
                .ok_or(ferry_client::SessionError::NoDecoy)
        })
    })
    .await;
    match opened {
        Ok(()) => {
            state.set_decoy(true);
            go("/")
        }
        Err(e) => fail_with(lang, &e),
    }
}

/// Hides the page behind the passphrase; the session goes on receiving.
pub(crate) async fn page_lock(State(state): St) -> Response {
    state.set_page_locked(true);
    go("/")
}

/// Shows the page again: the session's own passphrase does; anything
/// else locks the session and is tried as a full unlock (so the duress
/// passphrase acts as it does on the unlock screen).
pub(crate) async fn page_unlock(State(state): St, req: Req, Form(f): Form<UnlockForm>) -> Response {
    if !state.page_locked() {
        return go("/");
    }
    let pass = SecretString::from(f.passphrase.as_str().to_owned());
    let verifier = state.verifier();
    let same = tokio::task::spawn_blocking(move || verifier.is_some_and(|v| v.matches(&pass)))
        .await
        .unwrap_or(false);
    if same {
        state.set_page_locked(false);
        return go("/");
    }
    // The session must be gone before the passphrase is tried as an
    // unlock (or the duress passphrase would be ignored).
    if !state.lock_and_wait().await {
        return fail(req.cx.lang, "busy");
    }
    match unlock_with(&state, &f.passphrase, false).await {
        Ok(()) => go("/"),
        Err(e) => fail_with(req.cx.lang, &e),
    }
}

/// Starts the session thread with `opener` and records it.
pub(super) async fn open(
    state: &Arc<AppState>,
    verifier: Option<crate::page_lock::Verifier>,
    opener: impl FnOnce() -> crate::actor::LocalBoxFuture<
        'static,
        Result<Session, ferry_client::SessionError>,
    > + Send
    + 'static,
) -> Result<(), ferry_client::SessionError> {
    let listener = state.listener();
    let ended = Arc::clone(state);
    let h = crate::actor::start(
        opener,
        move |s| {
            s.set_listener(Some(listener));
            s.keep_view_once_until_opened();
        },
        state.limits(),
        move |_| ended.set_locked(),
    )
    .await?;
    state.set_open(h, verifier);
    Ok(())
}

/// Locks the session now.
pub(crate) async fn lock(State(state): St) -> Response {
    let _ = state.lock_and_wait().await;
    go("/")
}

/// The page's event stream: only the names of what changed.
pub(crate) async fn events(
    State(state): St,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = state.notices.subscribe();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let (name, data) = match rx.recv().await {
            Ok(n) => (n.name(), n.data()),
            // Fell behind: one refresh covers whatever was missed.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => ("changed", "1".to_owned()),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
        };
        // (An event with empty data is never dispatched by browsers.)
        Some((Ok(SseEvent::default().event(name).data(data)), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
