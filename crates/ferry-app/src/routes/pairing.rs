//! Invite and accept.

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{Req, St, fail, fail_with, go, html, session, to_unlock};
use crate::pages;

/// `/invite`.
pub(crate) async fn invite_page(State(state): St, req: Req) -> Response {
    if state.session().is_none() {
        return to_unlock();
    }
    html(pages::invite::invite(&req.cx))
}

/// `/accept`.
pub(crate) async fn accept_page(State(state): St, req: Req) -> Response {
    if state.session().is_none() {
        return to_unlock();
    }
    html(pages::invite::accept(&req.cx))
}

#[derive(Deserialize)]
pub(crate) struct InviteForm {
    alias: String,
}

/// A name for a contact: trimmed, not empty, no control characters.
fn clean_alias(alias: &str) -> Option<String> {
    let a = alias.trim();
    (!a.is_empty() && a.chars().count() <= 64 && !a.chars().any(char::is_control))
        .then(|| a.to_owned())
}

/// Creates an invite; answers with the link and its QR code.
pub(crate) async fn invite(State(state): St, req: Req, Form(f): Form<InviteForm>) -> Response {
    let lang = req.cx.lang;
    let Some(alias) = clean_alias(&f.alias) else {
        return fail(lang, "bad_alias");
    };
    let h = match session(&state) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let a = alias.clone();
    let got = h
        .run(true, move |s| {
            Box::pin(async move { s.invite(&a).await.map(|l| l.to_link()) })
        })
        .await;
    match got {
        Ok(Ok(link)) => html(pages::invite::link(&req.cx, &alias, &link)),
        Ok(Err(e)) => fail_with(lang, &e),
        Err(g) => g.into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct AcceptForm {
    link: Zeroizing<String>,
    alias: String,
}

/// Accepts a link.
pub(crate) async fn accept(State(state): St, req: Req, Form(f): Form<AcceptForm>) -> Response {
    let lang = req.cx.lang;
    let Some(alias) = clean_alias(&f.alias) else {
        return fail(lang, "bad_alias");
    };
    let h = match session(&state) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let got = h
        .run(true, move |s| {
            Box::pin(async move {
                s.accept(f.link.trim(), &alias).await?;
                Ok::<_, ferry_client::SessionError>(
                    s.contacts()
                        .into_iter()
                        .find(|c| c.alias == alias)
                        .map(|c| c.id),
                )
            })
        })
        .await;
    match got {
        Ok(Ok(Some(id))) => go(&format!("/c/{id}")),
        Ok(Ok(None)) => to_unlock(),
        Ok(Err(e)) => fail_with(lang, &e),
        Err(g) => g.into_response(),
    }
}
