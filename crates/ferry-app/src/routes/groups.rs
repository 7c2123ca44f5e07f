//! Group chats: making one, its conversation, its members. Groups appear
//! in addresses by their local number, never by name.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use ferry_client::{ContactInfo, ContactState, GroupSummary, Session, SessionError};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{Req, St, done, fail, fail_with, go, html, session, to_unlock};
use crate::pages::{self, group::GroupView};
use crate::state::AppState;

/// The group with local id `id`.
fn group_by_id(s: &mut Session, id: u64) -> Result<GroupSummary, SessionError> {
    s.groups()
        .into_iter()
        .find(|g| g.id == id)
        .ok_or_else(|| ferry_core::CoreError::UnknownGroup.into())
}

/// Contacts one can add to a group (set up and not reported compromised).
fn addable(contacts: Vec<ContactInfo>) -> Vec<ContactInfo> {
    contacts
        .into_iter()
        .filter(|c| c.state == ContactState::Established && c.compromised.is_none())
        .collect()
}

/// The names of the contacts ticked in a form (`add=…`, repeated).
fn ticked(pairs: &[(String, String)]) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == "add")
        .map(|(_, v)| v.clone())
        .collect()
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// Reads a group for its page (and marks it read).
async fn load(state: &AppState, id: u64, input: bool) -> Result<Option<GroupView>, Response> {
    let h = session(state)?;
    let got = h
        .run(input, move |s| {
            Box::pin(async move {
                let g = group_by_id(s, id).ok()?;
                let entries = s.history(&g.name).ok()?;
                Some((g, entries))
            })
        })
        .await
        .map_err(IntoResponse::into_response)?;
    let Some((g, entries)) = got else {
        return Ok(None);
    };
    let mut view = state.view();
    view.unread.remove(&g.name);
    Ok(Some(GroupView {
        id,
        status: entries
            .iter()
            .filter_map(|e| view.status.get(&e.id).map(|s| (e.id.clone(), *s)))
            .collect(),
        name: g.name,
        members: g.members,
        joining: g.joining,
        entries,
    }))
}

/// `/g/{id}`: the group's conversation.
pub(crate) async fn show(State(state): St, Path(id): Path<u64>, req: Req) -> Response {
    if state.session().is_none() {
        return to_unlock();
    }
    match load(&state, id, req.input).await {
        Ok(Some(g)) => html(pages::group::page_for(&req.cx, &g)),
        Ok(None) => to_unlock(),
        Err(r) => r,
    }
}

/// `/g/{id}/messages`: the list alone, to refresh it.
pub(crate) async fn live(State(state): St, Path(id): Path<u64>, req: Req) -> Response {
    match load(&state, id, req.input).await {
        Ok(Some(g)) => html(pages::group::messages(&req.cx, &g)),
        Ok(None) => fail(req.cx.lang, "unknown_group"),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub(crate) struct SendForm {
    text: Zeroizing<String>,
}

/// Runs `f` on group `id` as a person's request: `204`, the error in the
/// form, or the unlock screen.
async fn on_group(
    state: &AppState,
    id: u64,
    lang: crate::i18n::Lang,
    f: super::ContactCall<()>,
) -> Response {
    let h = match session(state) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let got = h
        .run(true, move |s| {
            Box::pin(async move {
                let name = group_by_id(s, id)?.name;
                f(s, name).await
            })
        })
        .await;
    match got {
        Ok(Ok(())) => done(),
        Ok(Err(e)) => fail_with(lang, &e),
        Err(g) => g.into_response(),
    }
}

/// Sends a text to the group.
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
    on_group(
        &state,
        id,
        lang,
        Box::new(move |s, name| {
            Box::pin(async move { s.group_send(&name, &f.text, false).await.map(|_| ()) })
        }),
    )
    .await
}

/// `/g/{id}/members`.
pub(crate) async fn members(State(state): St, Path(id): Path<u64>, req: Req) -> Response {
    let h = match session(&state) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let got = h
        .run(req.input, move |s| {
            Box::pin(async move {
                let g = group_by_id(s, id).ok()?;
                let members = s.group_members(&g.name).ok()?;
                let known: Vec<String> = members.iter().filter_map(|m| m.contact.clone()).collect();
                let contacts: Vec<ContactInfo> = addable(s.contacts())
                    .into_iter()
                    .filter(|c| !known.contains(&c.alias))
                    .collect();
                Some((g, members, contacts))
            })
        })
        .await;
    match got {
        Ok(Some((g, members, contacts))) => html(pages::group::members_page(
            &req.cx, id, &g.name, g.admin, &members, &contacts,
        )),
        Ok(None) => to_unlock(),
        Err(g) => g.into_response(),
    }
}

/// Adds the ticked contacts (admins).
pub(crate) async fn add(
    State(state): St,
    Path(id): Path<u64>,
    req: Req,
    Form(f): Form<Vec<(String, String)>>,
) -> Response {
    let aliases = ticked(&f);
    if aliases.is_empty() {
        return fail(req.cx.lang, "group_choose");
    }
    on_group(
        &state,
        id,
        req.cx.lang,
        Box::new(move |s, name| Box::pin(async move { s.group_add(&name, &aliases).await })),
    )
    .await
}

#[derive(Deserialize)]
pub(crate) struct MemberForm {
    member: String,
}

/// Removes a member (admins).
pub(crate) async fn remove(
    State(state): St,
    Path(id): Path<u64>,
    req: Req,
    Form(f): Form<MemberForm>,
) -> Response {
    on_group(
        &state,
        id,
        req.cx.lang,
        Box::new(move |s, name| Box::pin(async move { s.group_remove(&name, &f.member).await })),
    )
    .await
}

/// Leaves the group; back to the chat list.
pub(crate) async fn leave(State(state): St, Path(id): Path<u64>, req: Req) -> Response {
    match on_group(
        &state,
        id,
        req.cx.lang,
        Box::new(move |s, name| Box::pin(async move { s.group_leave(&name).await })),
    )
    .await
    {
        r if r.status() == axum::http::StatusCode::NO_CONTENT => go("/"),
        r => r,
    }
}

/// `/groups/new`: the form.
pub(crate) async fn new_page(State(state): St, req: Req) -> Response {
    let h = match session(&state) {
        Ok(h) => h,
        Err(r) => return r,
    };
    match h
        .run(req.input, |s| {
            Box::pin(async move { addable(s.contacts()) })
        })
        .await
    {
        Ok(contacts) => html(pages::group::new_page(&req.cx, &contacts)),
        Err(g) => g.into_response(),
    }
}

/// Makes the group and asks the ticked contacts to join; goes to it.
pub(crate) async fn create(
    State(state): St,
    req: Req,
    Form(f): Form<Vec<(String, String)>>,
) -> Response {
    let lang = req.cx.lang;
    let name = field(&f, "name").trim().to_owned();
    if name.is_empty() {
        return fail(lang, "empty");
    }
    let display = match field(&f, "display").trim() {
        "" => None,
        d => Some(d.to_owned()),
    };
    let aliases = ticked(&f);
    let h = match session(&state) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let got = h
        .run(true, move |s| {
            Box::pin(async move {
                let display =
                    display.unwrap_or_else(|| ferry_client::neutral_name(&mut rand_core::OsRng));
                s.create_group(&name, &display).await?;
                // The group exists now: its page opens even if an add
                // could not go (its members page shows who is joining).
                if !aliases.is_empty() && s.group_add(&name, &aliases).await.is_err() {
                    tracing::warn!("a contact could not be asked to join the new group");
                }
                group_id(s, &name)
            })
        })
        .await;
    match got {
        Ok(Ok(id)) => go(&format!("/g/{id}")),
        Ok(Err(e)) => fail_with(lang, &e),
        Err(g) => g.into_response(),
    }
}

fn group_id(s: &mut Session, name: &str) -> Result<u64, SessionError> {
    s.groups()
        .into_iter()
        .find(|g| g.name == name)
        .map(|g| g.id)
        .ok_or_else(|| ferry_core::CoreError::UnknownGroup.into())
}
