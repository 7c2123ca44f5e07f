//! The chat list and one conversation. Contacts appear in addresses by
//! their local number, never by name: addresses land in the browser's
//! history.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{
    Req, St, contact_by_id, fail, fail_with, html, on_contact, session, to_unlock, with_contact,
};
use crate::pages::{self, conversation::Conversation};
use crate::state::AppState;

/// `/chats`: the list alone, to refresh it.
pub(crate) async fn chat_list(State(state): St, req: Req) -> Response {
    let h = match session(&state) {
        Ok(h) => h,
        Err(r) => return r,
    };
    match super::lock::chat_rows(&state, &h, req.input).await {
        Ok(rows) => html(pages::chats::list(&req.cx, &rows)),
        Err(r) => r,
    }
}

/// Reads a conversation (and marks it read).
async fn load(state: &AppState, id: u64, input: bool) -> Result<Option<Conversation>, Response> {
    let h = session(state)?;
    let got = h
        .run(input, move |s| {
            Box::pin(async move {
                let c = contact_by_id(s.contacts(), id)?;
                let entries = s.history(&c.alias).ok()?;
                let timer = s.timer(&c.alias).ok().flatten();
                Some((c, entries, timer))
            })
        })
        .await
        .map_err(IntoResponse::into_response)?;
    let Some((c, entries, timer)) = got else {
        return Ok(None);
    };
    let mut view = state.view();
    view.unread.remove(&c.alias);
    Ok(Some(Conversation {
        id,
        challenged: view.challenged.contains(&c.alias),
        mailbox_gone: view.mailbox_gone.contains(&c.alias),
        status: entries
            .iter()
            .filter_map(|e| view.status.get(&e.id).map(|s| (e.id.clone(), *s)))
            .collect(),
        alias: c.alias,
        state: c.state,
        compromised: c.compromised,
        timer,
        entries,
        now: ferry_client::now(),
    }))
}

/// `/c/{id}`: the conversation page.
pub(crate) async fn show(State(state): St, Path(id): Path<u64>, req: Req) -> Response {
    if state.session().is_none() {
        return to_unlock();
    }
    match load(&state, id, req.input).await {
        Ok(Some(c)) => html(pages::conversation::page_for(&req.cx, &c)),
        Ok(None) => to_unlock(),
        Err(r) => r,
    }
}

/// `/c/{id}/messages`: the list alone, to refresh it.
pub(crate) async fn live(State(state): St, Path(id): Path<u64>, req: Req) -> Response {
    match load(&state, id, req.input).await {
        Ok(Some(c)) => html(pages::conversation::messages(&req.cx, &c)),
        Ok(None) => fail(req.cx.lang, "unknown_contact"),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub(crate) struct SendForm {
    text: Zeroizing<String>,
    #[serde(default)]
    view_once: Option<String>,
}

/// Sends a text.
pub(crate) async fn send(
    State(state): St,
    Path(id): Path<u64>,
    req: Req,
    Form(f): Form<SendForm>,
) -> Response {
    let lang = req.cx.lang;
    if f.text.trim().is_empty() {
        return fail(lang, "empty");
    }
    let view_once = f.view_once.is_some();
    on_contact(
        &state,
        id,
        lang,
        Box::new(move |s, alias| {
            Box::pin(async move { s.send(&alias, &f.text, view_once, false).await.map(|_| ()) })
        }),
    )
    .await
}

#[derive(Deserialize)]
pub(crate) struct MessageForm {
    id: String,
}

/// Deletes a message on both sides.
pub(crate) async fn delete(
    State(state): St,
    Path(id): Path<u64>,
    req: Req,
    Form(f): Form<MessageForm>,
) -> Response {
    on_contact(
        &state,
        id,
        req.cx.lang,
        Box::new(move |s, alias| Box::pin(async move { s.delete(&alias, &f.id).await })),
    )
    .await
}

#[derive(Deserialize)]
pub(crate) struct TimerForm {
    secs: u64,
}

/// Sends a refused message again.
pub(crate) async fn retry(
    State(state): St,
    Path(id): Path<u64>,
    req: Req,
    Form(f): Form<MessageForm>,
) -> Response {
    on_contact(
        &state,
        id,
        req.cx.lang,
        Box::new(move |s, alias| {
            Box::pin(async move { s.resend(&alias, &f.id).await.map(|_| ()) })
        }),
    )
    .await
}

/// Sets the disappearing timer on both sides.
pub(crate) async fn timer(
    State(state): St,
    Path(id): Path<u64>,
    req: Req,
    Form(f): Form<TimerForm>,
) -> Response {
    let secs = (f.secs > 0).then_some(f.secs);
    on_contact(
        &state,
        id,
        req.cx.lang,
        Box::new(move |s, alias| Box::pin(async move { s.set_timer(&alias, secs).await })),
    )
    .await
}

/// Shows a view-once text once (and destroys it).
pub(crate) async fn open_once(
    State(state): St,
    Path(id): Path<u64>,
    req: Req,
    Form(f): Form<MessageForm>,
) -> Response {
    let got = with_contact(
        &state,
        id,
        true,
        Box::new(move |s, alias| Box::pin(async move { s.open_view_once(&alias, &f.id) })),
    )
    .await;
    match got {
        Ok(Ok(entry)) => {
            let _ = state.notices.send(crate::state::Notice::Changed);
            html(pages::conversation::revealed(&req.cx, &entry))
        }
        Ok(Err(e)) => fail_with(req.cx.lang, &e),
        Err(r) => r,
    }
}
