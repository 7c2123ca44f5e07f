//! Safety actions: warn contacts, the dead-man switch, the duress
//! passphrase, wipe-after, panic.

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{Req, St, fail, fail_with, go, html, session, to_unlock};
use crate::pages;

/// `/safety`.
pub(crate) async fn show(State(state): St, req: Req) -> Response {
    if state.session().is_none() {
        return to_unlock();
    }
    html(pages::safety::page_for(&req.cx))
}

/// Runs a session call; the sentence `ok` on success.
async fn act<T: Send + 'static>(
    state: &crate::state::AppState,
    req: &Req,
    ok: &str,
    f: impl for<'a> FnOnce(
        &'a mut ferry_client::Session,
    )
        -> crate::actor::LocalBoxFuture<'a, Result<T, ferry_client::SessionError>>
    + Send
    + 'static,
) -> Response {
    let h = match session(state) {
        Ok(h) => h,
        Err(r) => return r,
    };
    match h.run(true, f).await {
        Ok(Ok(_)) => html(pages::safety::done(&req.cx, ok)),
        Ok(Err(e)) => fail_with(req.cx.lang, &e),
        Err(g) => g.into_response(),
    }
}

/// Warns every contact that this device may be compromised.
pub(crate) async fn alert(State(state): St, req: Req) -> Response {
    act(&state, &req, "safety-alert-done", |s| {
        Box::pin(async move { s.alert(None).await })
    })
    .await
}

#[derive(Deserialize)]
pub(crate) struct CanaryForm {
    secs: u64,
}

/// Sets (or turns off) the dead-man switch.
pub(crate) async fn canary(State(state): St, req: Req, Form(f): Form<CanaryForm>) -> Response {
    let secs = (f.secs > 0).then_some(f.secs.max(60));
    act(&state, &req, "safety-canary-done", move |s| {
        Box::pin(async move { s.set_canary(secs).await })
    })
    .await
}

#[derive(Deserialize)]
pub(crate) struct DuressForm {
    duress: Zeroizing<String>,
    repeat: Zeroizing<String>,
}

/// Sets the duress passphrase (and creates an empty decoy).
pub(crate) async fn duress(State(state): St, req: Req, Form(f): Form<DuressForm>) -> Response {
    if f.duress.chars().count() < 8 {
        return fail(req.cx.lang, "passphrase_short");
    }
    if f.duress != f.repeat {
        return fail(req.cx.lang, "passphrase_mismatch");
    }
    let duress = SecretString::from(f.duress.as_str().to_owned());
    drop(f);
    act(&state, &req, "safety-duress-done", move |s| {
        Box::pin(async move {
            let relay = s.relay_url().to_owned();
            s.set_duress(&duress, &relay)
        })
    })
    .await
}

#[derive(Deserialize)]
pub(crate) struct PhraseForm {
    phrase: Zeroizing<String>,
    duress_phrase: Zeroizing<String>,
    #[serde(default)]
    current: Zeroizing<String>,
}

/// Gives every contact verifiers for a phrase and a duress phrase.
pub(crate) async fn phrase(State(state): St, req: Req, Form(f): Form<PhraseForm>) -> Response {
    if f.phrase.trim().chars().count() < 4 || f.duress_phrase.trim().chars().count() < 4 {
        return fail(req.cx.lang, "phrase_short");
    }
    if f.phrase.trim() == f.duress_phrase.trim() {
        return fail(req.cx.lang, "phrase_same");
    }
    let phrase = SecretString::from(f.phrase.as_str().to_owned());
    let duress = SecretString::from(f.duress_phrase.as_str().to_owned());
    let current =
        (!f.current.trim().is_empty()).then(|| SecretString::from(f.current.as_str().to_owned()));
    drop(f);
    act(&state, &req, "safety-phrase-done", move |s| {
        Box::pin(async move { s.set_phrase(&phrase, &duress, current.as_ref()).await })
    })
    .await
}

#[derive(Deserialize)]
pub(crate) struct WipeAfterForm {
    attempts: u32,
}

/// Destroys the profile after N wrong passphrases.
pub(crate) async fn wipe_after(
    State(state): St,
    req: Req,
    Form(f): Form<WipeAfterForm>,
) -> Response {
    let n = f.attempts.min(100);
    act(&state, &req, "safety-wipe-after-done", move |s| {
        Box::pin(async move { s.set_wipe_after(n) })
    })
    .await
}

/// Destroys the profile at once (works locked or not).
pub(crate) async fn panic(State(state): St, req: Req) -> Response {
    let wiped = ferry_client::panic_wipe(&state.home);
    let _ = state.lock_and_wait().await;
    match wiped {
        Ok(_) => go("/"),
        Err(e) => fail_with(req.cx.lang, &e),
    }
}
