//! The app's HTTP routes. Every request has passed the guard.
//!
//! What a form submission gets back (read by `assets/app.js`):
//! - `204`: done; the page resets the form and refreshes its regions;
//! - `200` with `x-ferry-go: PATH`: go to PATH;
//! - `200` with HTML: put it where the form's `data-target` says;
//! - `422` with HTML: the error, shown in the form's error slot;
//! - `409` with `x-ferry-go: /`: the session is locked.

// Handlers return early with a ready answer (`Result<_, Response>`), the
// usual axum idiom; the answer is built once per request.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ferry_client::{ContactInfo, SessionError};
use maud::Markup;

use crate::actor::{Gone, SessionHandle};
use crate::guard::Visitor;
use crate::i18n::Lang;
use crate::pages::{Cx, error_text};
use crate::state::AppState;

mod assets;
mod call;
mod contact;
mod conversation;
mod groups;
mod lock;
mod media;
mod pairing;
mod safety;
mod settings;
pub(crate) mod stow;

pub(crate) type St = State<Arc<AppState>>;

/// The router (the guard is added around it by the caller).
pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(lock::home))
        .route("/setup", post(lock::setup))
        .route("/unlock", post(lock::unlock))
        .route("/lock", post(lock::lock))
        .route("/page-lock", post(lock::page_lock))
        .route("/safety/decoy", post(lock::prepare_decoy))
        .route("/page-unlock", post(lock::page_unlock))
        .route("/events", get(lock::events))
        .route("/chats", get(conversation::chat_list))
        .route("/c/{id}", get(conversation::show))
        .route("/c/{id}/messages", get(conversation::live))
        .route("/c/{id}/send", post(conversation::send))
        .route("/c/{id}/delete", post(conversation::delete))
        .route("/c/{id}/retry", post(conversation::retry))
        .route("/c/{id}/timer", post(conversation::timer))
        .route("/c/{id}/open", post(conversation::open_once))
        .route("/c/{id}/call/turn", post(call::turn))
        .route("/c/{id}/call/start", post(call::start))
        .route("/c/{id}/call/accept", post(call::accept))
        .route("/c/{id}/call/answer", post(call::answer_call))
        .route("/c/{id}/call/restart", post(call::restart))
        .route("/c/{id}/call/end", post(call::end))
        .route("/call/state", post(call::state))
        .route("/c/{id}/info", get(contact::show))
        .route("/c/{id}/challenge", post(contact::challenge))
        .route("/c/{id}/answer", post(contact::answer))
        .route("/c/{id}/alert", post(contact::alert))
        .route(
            "/c/{id}/file",
            post(media::send_file).layer(axum::extract::DefaultBodyLimit::max(
                crate::upload::MAX_UPLOAD + 64 * 1024,
            )),
        )
        .route(
            "/c/{id}/voice",
            post(media::send_voice).layer(axum::extract::DefaultBodyLimit::max(
                crate::upload::MAX_UPLOAD + 64 * 1024,
            )),
        )
        .route("/c/{id}/media/{msg}", get(media::show))
        .route("/c/{id}/open-media", post(media::open_once))
        .route("/c/{id}/once/{token}", get(media::show_once))
        .route("/c/{id}/close-once", post(media::close_once))
        .route("/c/{id}/export/{msg}", get(media::export))
        .route("/groups/new", get(groups::new_page).post(groups::create))
        .route("/g/{id}", get(groups::show))
        .route("/g/{id}/messages", get(groups::live))
        .route("/g/{id}/send", post(groups::send))
        .route("/g/{id}/members", get(groups::members))
        .route("/g/{id}/add", post(groups::add))
        .route("/g/{id}/remove", post(groups::remove))
        .route("/g/{id}/leave", post(groups::leave))
        .route("/invite", get(pairing::invite_page).post(pairing::invite))
        .route("/accept", get(pairing::accept_page).post(pairing::accept))
        .route("/settings", get(settings::show).post(settings::save))
        .route("/settings/proxy", post(settings::proxy))
        .route("/recovery/new", post(stow::new_phrase))
        .route("/recovery/confirm", post(stow::confirm))
        .route("/stow", post(stow::stow))
        .route("/restore", post(stow::restore))
        .route("/safety", get(safety::show))
        .route("/safety/alert", post(safety::alert))
        .route("/safety/phrase", post(safety::phrase))
        .route("/safety/canary", post(safety::canary))
        .route("/safety/duress", post(safety::duress))
        .route("/safety/wipe-after", post(safety::wipe_after))
        .route("/safety/panic", post(safety::panic))
        .route("/assets/{name}", get(assets::asset))
}

/// While the page is locked, only the lock screen and what it needs
/// answer; everything else sends the page back to it.
pub(crate) async fn page_gate(
    State(state): St,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path();
    let open = matches!(
        path,
        "/" | "/page-unlock" | "/events" | "/lock" | "/safety/panic"
    ) || path.starts_with("/assets/");
    if open || !state.page_locked() {
        return next.run(req).await;
    }
    if req.method() == axum::http::Method::GET && !req.headers().contains_key("x-ferry-refresh") {
        to_unlock()
    } else {
        locked()
    }
}

/// A request as the routes see it: how to render, and whether a person
/// made it (a page refreshing itself after an event does not count as
/// activity for the idle lock).
pub(crate) struct Req {
    pub(crate) cx: Cx,
    pub(crate) input: bool,
}

impl FromRequestParts<Arc<AppState>> for Req {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let prefs = state.prefs();
        let lang = prefs.lang.unwrap_or_else(|| {
            Lang::from_accept(
                parts
                    .headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|h| h.to_str().ok()),
            )
        });
        let csrf = parts
            .extensions
            .get::<Visitor>()
            .map(|v| v.csrf.clone())
            .unwrap_or_default();
        let input = !parts.headers.contains_key("x-ferry-refresh");
        Ok(Self {
            cx: Cx {
                lang,
                csrf,
                prefs,
                decoy: state.decoy(),
            },
            input,
        })
    }
}

/// An HTML answer.
pub(crate) fn html(m: Markup) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        m.into_string(),
    )
        .into_response()
}

/// Go to `path` (for the page's script), or a plain redirect.
pub(crate) fn go(path: &str) -> Response {
    let mut r = Response::new(Body::empty());
    if let Ok(v) = HeaderValue::from_str(path) {
        r.headers_mut().insert("x-ferry-go", v);
    }
    r
}

/// Done; nothing to show but the refreshed regions.
pub(crate) fn done() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// A form's error, by code.
pub(crate) fn fail(lang: Lang, code: &str) -> Response {
    let mut r = html(error_text(lang, code));
    *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    r
}

/// A session error shown in the form.
pub(crate) fn fail_with(lang: Lang, e: &SessionError) -> Response {
    fail(lang, e.code())
}

/// The session is locked: back to the unlock page.
pub(crate) fn locked() -> Response {
    let mut r = go("/");
    *r.status_mut() = StatusCode::CONFLICT;
    r
}

/// A full page asked for while locked: redirect.
pub(crate) fn to_unlock() -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response()
}

/// The open session or the answer for a locked one.
pub(crate) fn session(state: &AppState) -> Result<SessionHandle, Response> {
    state.session().ok_or_else(locked)
}

impl IntoResponse for Gone {
    fn into_response(self) -> Response {
        locked()
    }
}

/// The contact with local id `id`.
pub(crate) fn contact_by_id(contacts: Vec<ContactInfo>, id: u64) -> Option<ContactInfo> {
    contacts.into_iter().find(|c| c.id == id)
}

/// A session call about the contact with local id `id` (given its alias).
pub(crate) type ContactCall<T> = Box<
    dyn for<'a> FnOnce(
            &'a mut ferry_client::Session,
            String,
        ) -> crate::actor::LocalBoxFuture<'a, Result<T, SessionError>>
        + Send,
>;

/// Runs `f` for contact `id` in one job (the alias is looked up there):
/// its result, or the answer for a locked session.
pub(crate) async fn with_contact<T: Send + 'static>(
    state: &AppState,
    id: u64,
    input: bool,
    f: ContactCall<T>,
) -> Result<Result<T, SessionError>, Response> {
    let h = session(state)?;
    h.run(input, move |s| {
        Box::pin(async move {
            let alias = contact_by_id(s.contacts(), id)
                .map(|c| c.alias)
                .ok_or(ferry_core::CoreError::UnknownContact)?;
            f(s, alias).await
        })
    })
    .await
    .map_err(IntoResponse::into_response)
}

/// Runs `f` for contact `id` as a person's request: `204`, the error in
/// the form, or the unlock screen.
pub(crate) async fn on_contact(
    state: &AppState,
    id: u64,
    lang: Lang,
    f: ContactCall<()>,
) -> Response {
    match with_contact(state, id, true, f).await {
        Ok(Ok(())) => done(),
        Ok(Err(e)) => fail_with(lang, &e),
        Err(r) => r,
    }
}
