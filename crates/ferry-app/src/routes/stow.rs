//! Stow and restore from the app.

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use ferry_client::session::{RestoreRequest, restore_files};
use ferry_client::{Network, PhraseLanguage, ProxyUrl, RecoveryPhrase, Session, SessionError};
use rand_core::OsRng;
use secrecy::SecretString;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{Req, St, fail, fail_with, go, html, session};
use crate::i18n::Lang;
use crate::pages;

/// A phrase shown and not yet confirmed (kept in memory only, until it
/// is confirmed, replaced or the session locks).
pub(crate) struct PendingPhrase {
    pub(crate) phrase: RecoveryPhrase,
    pub(crate) ask: [usize; 3],
}

fn pin_of(pin: &str) -> Option<SecretString> {
    let p = pin.trim();
    (!p.is_empty()).then(|| SecretString::from(p.to_owned()))
}

fn parse_phrase(text: &str) -> Result<RecoveryPhrase, &'static str> {
    RecoveryPhrase::parse(text).map_err(|_| "bad_phrase")
}

/// Makes a phrase and shows it once, with three words to type back.
pub(crate) async fn new_phrase(State(state): St, req: Req) -> Response {
    if let Err(r) = session(&state) {
        return r;
    }
    let language = match req.cx.lang {
        Lang::Ko => PhraseLanguage::Korean,
        Lang::En => PhraseLanguage::English,
    };
    let phrase = RecoveryPhrase::generate(&mut OsRng, language);
    let words = phrase.words();
    let ask = RecoveryPhrase::positions_to_confirm(&mut OsRng);
    let page = pages::stow::phrase(&req.cx, &words, &ask);
    state.set_pending_phrase(Some(PendingPhrase { phrase, ask }));
    html(page)
}

#[derive(Deserialize)]
pub(crate) struct ConfirmForm {
    w0: Zeroizing<String>,
    w1: Zeroizing<String>,
    w2: Zeroizing<String>,
    #[serde(default)]
    pin: Zeroizing<String>,
    /// Witness relays, one address per line.
    #[serde(default)]
    witnesses: String,
}

/// Keeps the phrase once three of its words were typed back.
pub(crate) async fn confirm(State(state): St, req: Req, Form(f): Form<ConfirmForm>) -> Response {
    let lang = req.cx.lang;
    let Some(pending) = state.take_pending_phrase() else {
        return fail(lang, "other");
    };
    let typed = [&f.w0, &f.w1, &f.w2];
    let ok = pending
        .ask
        .iter()
        .zip(typed)
        .all(|(&p, t)| pending.phrase.word_matches(p, t));
    if !ok {
        // Shown again: the same phrase, the same words to type.
        state.set_pending_phrase(Some(pending));
        return fail(lang, "phrase_words");
    }
    let h = match session(&state) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let pin = pin_of(&f.pin);
    let witnesses: Vec<String> = f
        .witnesses
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let phrase = pending.phrase;
    match h
        .run(true, move |s| {
            Box::pin(async move { s.recovery_setup(&phrase, pin.as_ref(), &witnesses).await })
        })
        .await
    {
        Ok(Ok(())) => go("/settings"),
        Ok(Err(e)) => fail_with(lang, &e),
        Err(g) => g.into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct StowForm {
    phrase: Zeroizing<String>,
    #[serde(default)]
    pin: Zeroizing<String>,
    #[serde(default)]
    with_history: Option<String>,
}

/// "Stow now": only with the phrase that was set up (typed whole), so
/// nobody stows an account they could not restore.
pub(crate) async fn stow(State(state): St, req: Req, Form(f): Form<StowForm>) -> Response {
    let lang = req.cx.lang;
    let phrase = match parse_phrase(&f.phrase) {
        Ok(p) => p,
        Err(code) => return fail(lang, code),
    };
    let pin = pin_of(&f.pin);
    let with_history = f.with_history.is_some();
    let h = match session(&state) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let got = h
        .run(true, move |s| {
            Box::pin(async move {
                if !s.recovery_matches(&phrase, pin.as_ref())? {
                    return Ok(None);
                }
                s.stow(with_history).await.map(Some)
            })
        })
        .await;
    match got {
        Ok(Ok(None)) => fail(lang, "phrase_not_this"),
        Ok(Ok(Some(stowed))) => {
            // The session notices its files are gone and locks; the first
            // screen says what is left to know.
            state.set_stowed(Some(stowed.restore_by()));
            h.lock();
            go("/")
        }
        Ok(Err(e)) => {
            if matches!(e, SessionError::StowUnfinished(_)) {
                // Nothing more may run on this profile until the stow is
                // finished: the next unlock does that first.
                h.lock();
            }
            fail_with(lang, &e)
        }
        Err(g) => g.into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct RestoreForm {
    relay: String,
    phrase: Zeroizing<String>,
    #[serde(default)]
    pin: Zeroizing<String>,
    passphrase: Zeroizing<String>,
    #[serde(default)]
    takeover: Option<String>,
    #[serde(default)]
    proxy: String,
}

/// "Restore" on the first screen: the account back from its phrase,
/// unlocked with whichever passphrase is typed.
pub(crate) async fn restore(State(state): St, req: Req, Form(f): Form<RestoreForm>) -> Response {
    let lang = req.cx.lang;
    let _one = state.opening.lock().await;
    let unfinished = state
        .home
        .join(ferry_client::session::RESTORE_JOURNAL)
        .exists();
    if state.session().is_some() || (ferry_client::profile_exists(&state.home) && !unfinished) {
        return fail(lang, "profile_exists");
    }
    let phrase = match parse_phrase(&f.phrase) {
        Ok(p) => p,
        Err(code) => return fail(lang, code),
    };
    // The claim already goes through the proxy; the restored profile
    // keeps its own setting, and this one too when given.
    let proxy = match f.proxy.trim() {
        "" => None,
        p => match p.parse::<ProxyUrl>() {
            Ok(p) => Some(p),
            Err(_) => return fail(lang, "bad_proxy"),
        },
    };
    let pin = pin_of(&f.pin);
    let home = state.home.clone();
    let relay = f.relay.trim().to_owned();
    let takeover = f.takeover.is_some();
    let pass = SecretString::from(f.passphrase.as_str().to_owned());
    let verifier = super::lock::verifier_for(f.passphrase.as_str()).await;
    state.set_stowed(None);
    let opened = super::lock::open(&state, verifier, move || {
        Box::pin(async move {
            let restoring = restore_files(RestoreRequest {
                home: &home,
                relay: &relay,
                phrase: &phrase,
                pin: pin.as_ref(),
                takeover,
                network: proxy.clone().map_or_else(Network::direct, Network::via),
            })
            .await?;
            Session::unlock_restored(restoring, &pass, proxy.map(Network::via)).await
        })
    })
    .await;
    match opened {
        Ok(()) => go("/"),
        Err(e) => fail_with(lang, &e),
    }
}
