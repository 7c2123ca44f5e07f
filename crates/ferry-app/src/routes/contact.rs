//! A contact's page and its actions: prove it's you, warn this contact.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{Req, St, contact_by_id, fail, html, on_contact, to_unlock};
use crate::pages::{self, contact::ContactView};

/// `/c/{id}/info`.
pub(crate) async fn show(State(state): St, Path(id): Path<u64>, req: Req) -> Response {
    let Some(h) = state.session() else {
        return to_unlock();
    };
    let got = h
        .run(req.input, move |s| {
            Box::pin(async move {
                let c = contact_by_id(s.contacts(), id)?;
                let safety = s.safety_code(&c.alias).ok();
                Some((c, safety))
            })
        })
        .await;
    let (c, safety) = match got {
        Ok(Some(x)) => x,
        Ok(None) => return to_unlock(),
        Err(g) => return g.into_response(),
    };
    let (challenged, proof) = {
        let v = state.view();
        (
            v.challenged.contains(&c.alias),
            v.proofs.get(&c.alias).copied(),
        )
    };
    html(pages::contact::page_for(
        &req.cx,
        &ContactView {
            id,
            alias: c.alias,
            state: c.state,
            compromised: c.compromised,
            safety,
            challenged,
            proof,
        },
    ))
}

/// Asks the contact to prove it is them.
pub(crate) async fn challenge(State(state): St, Path(id): Path<u64>, req: Req) -> Response {
    on_contact(
        &state,
        id,
        req.cx.lang,
        Box::new(|s, alias| Box::pin(async move { s.challenge(&alias).await })),
    )
    .await
}

#[derive(Deserialize)]
pub(crate) struct AnswerForm {
    phrase: Zeroizing<String>,
}

/// Answers the contact's challenge with the typed phrase.
pub(crate) async fn answer(
    State(state): St,
    Path(id): Path<u64>,
    req: Req,
    Form(f): Form<AnswerForm>,
) -> Response {
    if f.phrase.trim().is_empty() {
        return fail(req.cx.lang, "empty");
    }
    let phrase = SecretString::from(f.phrase.as_str().to_owned());
    drop(f);
    let st = std::sync::Arc::clone(&state);
    on_contact(
        &state,
        id,
        req.cx.lang,
        Box::new(move |s, alias| {
            Box::pin(async move {
                s.answer(&alias, &phrase).await?;
                st.view().challenged.remove(&alias);
                Ok(())
            })
        }),
    )
    .await
}

/// Warns this contact alone that this device may be compromised.
pub(crate) async fn alert(State(state): St, Path(id): Path<u64>, req: Req) -> Response {
    on_contact(
        &state,
        id,
        req.cx.lang,
        Box::new(|s, alias| Box::pin(async move { s.alert(Some(&alias)).await.map(|_| ()) })),
    )
    .await
}
