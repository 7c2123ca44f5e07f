//! Calls, for the page's script (`assets/call.js`): JSON in and out. The
//! browser does the media with `iceTransportPolicy: "relay"`; everything it
//! sends or is given passes the session's checks (see
//! `ferry_core::sdp`), and the TURN credentials are fetched only when a
//! call is placed or accepted, never for a contact reported compromised.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferry_client::SessionError;
use ferry_core::call::{EndReason, Phase};
use serde::{Deserialize, Serialize};

use serde_json::json;

use super::{Req, St, contact_by_id, session, with_contact};
use crate::i18n::Lang;

/// The browser's `RTCIceServer`.
#[derive(Serialize)]
struct IceServer {
    urls: Vec<String>,
    username: String,
    credential: String,
}

impl From<ferry_proto::api::TurnCredentials> for IceServer {
    fn from(c: ferry_proto::api::TurnCredentials) -> Self {
        Self {
            urls: c.urls,
            username: c.username,
            credential: c.credential,
        }
    }
}

/// A refusal the page shows: a stable code and its sentence.
fn refused(lang: Lang, e: &SessionError) -> Response {
    let code = e.code();
    let id = format!("error-{code}");
    let text = lang.t(&id);
    let message = if text == id {
        lang.t("error-other")
    } else {
        text
    };
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({ "error": code, "message": message })),
    )
        .into_response()
}

/// Runs `f` for contact `id`; its JSON, the refusal, or the unlock
/// screen.
async fn call_job(
    state: &crate::state::AppState,
    req: &Req,
    id: u64,
    f: super::ContactCall<serde_json::Value>,
) -> Response {
    match with_contact(state, id, req.input, f).await {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => refused(req.cx.lang, &e),
        Err(r) => r,
    }
}

/// `POST /c/{id}/call/turn`: credentials to place a call.
pub(crate) async fn turn(State(state): St, req: Req, Path(id): Path<u64>) -> Response {
    call_job(
        &state,
        &req,
        id,
        Box::new(|s, alias| {
            Box::pin(async move {
                let c = s.call_turn(&alias).await?;
                Ok(json!({ "ice": IceServer::from(c) }))
            })
        }),
    )
    .await
}

#[derive(Deserialize)]
pub(crate) struct Start {
    video: bool,
    sdp: String,
}

/// `POST /c/{id}/call/start`: place the call with the browser's offer.
pub(crate) async fn start(
    State(state): St,
    req: Req,
    Path(id): Path<u64>,
    Json(body): Json<Start>,
) -> Response {
    call_job(
        &state,
        &req,
        id,
        Box::new(move |s, alias| {
            Box::pin(async move {
                let sent = s.call_start(&alias, body.video, &body.sdp).await?;
                Ok(json!({ "fingerprint": sent.fingerprint }))
            })
        }),
    )
    .await
}

/// `POST /c/{id}/call/accept`: the ringing call's credentials and offer.
pub(crate) async fn accept(State(state): St, req: Req, Path(id): Path<u64>) -> Response {
    call_job(
        &state,
        &req,
        id,
        Box::new(|s, alias| {
            Box::pin(async move {
                let video = s.call_view().is_some_and(|c| c.video);
                let ice = match s.call_turn(&alias).await {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = s.call_end(&alias, EndReason::Failed).await;
                        return Err(e);
                    }
                };
                let offer = s.call_accept(&alias).await?;
                Ok(json!({
                    "ice": IceServer::from(ice),
                    "sdp": offer.sdp,
                    "fingerprint": offer.fingerprint,
                    "video": video,
                }))
            })
        }),
    )
    .await
}

#[derive(Deserialize)]
pub(crate) struct Sdp {
    sdp: String,
    #[serde(default)]
    answer: bool,
}

/// `POST /c/{id}/call/answer`: our answer to the ringing call.
pub(crate) async fn answer_call(
    State(state): St,
    req: Req,
    Path(id): Path<u64>,
    Json(body): Json<Sdp>,
) -> Response {
    call_job(
        &state,
        &req,
        id,
        Box::new(move |s, alias| {
            Box::pin(async move {
                let sent = s.call_answer(&alias, &body.sdp).await?;
                Ok(json!({ "fingerprint": sent.fingerprint }))
            })
        }),
    )
    .await
}

/// `POST /c/{id}/call/restart`: an ICE-restart offer or our answer to one.
pub(crate) async fn restart(
    State(state): St,
    req: Req,
    Path(id): Path<u64>,
    Json(body): Json<Sdp>,
) -> Response {
    call_job(
        &state,
        &req,
        id,
        Box::new(move |s, alias| {
            Box::pin(async move {
                s.call_restart(&alias, &body.sdp, body.answer).await?;
                Ok(json!({}))
            })
        }),
    )
    .await
}

#[derive(Deserialize)]
pub(crate) struct End {
    reason: String,
}

/// `POST /c/{id}/call/end`: hang up, decline, or give up.
pub(crate) async fn end(
    State(state): St,
    req: Req,
    Path(id): Path<u64>,
    Json(body): Json<End>,
) -> Response {
    let reason = match body.reason.as_str() {
        "decline" => EndReason::Declined,
        "failed" => EndReason::Failed,
        _ => EndReason::HangUp,
    };
    call_job(
        &state,
        &req,
        id,
        Box::new(move |s, alias| {
            Box::pin(async move {
                match s.call_end(&alias, reason).await {
                    // Already over (the other side ended first): fine.
                    Ok(()) | Err(SessionError::Core(ferry_core::CoreError::Call(_))) => {
                        Ok(json!({}))
                    }
                    Err(e) => Err(e),
                }
            })
        }),
    )
    .await
}

/// `POST /call/state`: the current call and what calls said since the
/// last ask (taken: each description is handed over once).
pub(crate) async fn state(State(state): St, req: Req) -> Response {
    let h = match session(&state) {
        Ok(h) => h,
        Err(r) => return r,
    };
    let view = h
        .run(false, |s| {
            Box::pin(async move {
                let v = s.call_view()?;
                let n = contact_by_id(s.contacts(), v.contact)?.id;
                Some((n, v))
            })
        })
        .await;
    let view = match view {
        Ok(v) => v,
        Err(g) => return g.into_response(),
    };
    let notes: Vec<_> = state.view().calls.drain(..).collect();
    let call = view.map(|(n, v)| {
        json!({
            "contact": n,
            "name": v.alias,
            "video": v.video,
            "outgoing": v.outgoing,
            "phase": match v.phase {
                Phase::Calling => "calling",
                Phase::Ringing => "ringing",
                Phase::Answered => "answered",
            },
        })
    });
    let _ = req;
    Json(json!({ "call": call, "notes": notes })).into_response()
}
