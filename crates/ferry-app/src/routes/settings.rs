//! Settings: display preferences (kept in the app's memory, never in the
//! browser) and the profile's proxy (kept in the vault).

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use ferry_client::{Network, ProxyUrl};
use serde::Deserialize;

use super::{Req, St, fail, fail_with, go, html, session, to_unlock};
use crate::i18n::Lang;
use crate::pages::{self, settings::Profile};

/// `/settings`.
pub(crate) async fn show(State(state): St, req: Req) -> Response {
    let Some(h) = state.session() else {
        return to_unlock();
    };
    let got = h
        .run(req.input, |s| {
            Box::pin(async move {
                Profile {
                    idle_minutes: 0,
                    relay: s.relay_url().to_owned(),
                    proxy: s.network().proxy().map(|p| format!("{p:?}")),
                    has_recovery: s.has_recovery().unwrap_or(false),
                }
            })
        })
        .await;
    let idle = u32::try_from(state.limits().idle.as_secs() / 60).unwrap_or(u32::MAX);
    match got {
        Ok(mut p) => {
            p.idle_minutes = idle;
            html(pages::settings::page_for(&req.cx, &p))
        }
        Err(g) => g.into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct PrefsForm {
    lang: String,
    theme: String,
    hidden_lock_minutes: u32,
    idle_lock_minutes: u32,
}

/// Saves the display preferences.
pub(crate) async fn save(State(state): St, req: Req, Form(f): Form<PrefsForm>) -> Response {
    let Some(lang) = Lang::from_tag(&f.lang) else {
        return fail(req.cx.lang, "other");
    };
    let dark = match f.theme.as_str() {
        "dark" => Some(true),
        "light" => Some(false),
        _ => None,
    };
    let minutes = f.hidden_lock_minutes.clamp(1, 24 * 60);
    let idle = f.idle_lock_minutes.clamp(1, 8 * 60);
    state.set_prefs(|p| {
        p.lang = Some(lang);
        p.dark = dark;
        p.hidden_lock_minutes = minutes;
        p.idle_lock_minutes = Some(idle);
    });
    go("/settings")
}

#[derive(Deserialize)]
pub(crate) struct ProxyForm {
    #[serde(default)]
    proxy: String,
}

/// Sets or clears the profile's proxy.
pub(crate) async fn proxy(State(state): St, req: Req, Form(f): Form<ProxyForm>) -> Response {
    let lang = req.cx.lang;
    let network = match f.proxy.trim() {
        "" | "off" => Network::direct(),
        p => match p.parse::<ProxyUrl>() {
            Ok(p) => Network::via(p),
            Err(_) => return fail(lang, "bad_proxy"),
        },
    };
    let h = match session(&state) {
        Ok(h) => h,
        Err(r) => return r,
    };
    match h
        .run(true, move |s| {
            Box::pin(async move { s.set_network(network) })
        })
        .await
    {
        Ok(Ok(())) => go("/settings"),
        Ok(Err(e)) => fail_with(lang, &e),
        Err(g) => g.into_response(),
    }
}
