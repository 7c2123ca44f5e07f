//! The router: every route the relay serves, built from one list, with the
//! request observer. [`ROUTES`] is derived from the same list, so the
//! OpenAPI check sees exactly what the relay serves.

use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use ferry_proto::{ErrorCode, padding};

use crate::error::ApiError;
use crate::routes::{canaries, groups, mailboxes, stows, sync};
use crate::server::Shared;

/// Every route the relay serves, as `(METHOD, path template)`.
pub static ROUTES: std::sync::LazyLock<Vec<(&'static str, &'static str)>> =
    std::sync::LazyLock::new(|| routes().into_iter().map(|(m, p, _)| (m, p)).collect());

fn routes() -> Vec<(&'static str, &'static str, MethodRouter<Shared>)> {
    let json_limit = DefaultBodyLimit::max(1024 * 1024);
    vec![
        ("GET", "/health", get(health)),
        ("GET", "/metrics", get(metrics)),
        (
            "POST",
            "/v1/mailboxes",
            post(mailboxes::create_mailbox).layer(json_limit),
        ),
        (
            "DELETE",
            "/v1/mailboxes/{id}",
            delete(mailboxes::delete_mailbox).layer(json_limit),
        ),
        (
            "PUT",
            "/v1/mailboxes/{id}/sender",
            put(mailboxes::set_sender).layer(json_limit),
        ),
        (
            "POST",
            "/v1/mailboxes/{id}/messages",
            post(mailboxes::send).layer(DefaultBodyLimit::max(padding::MAX_PAYLOAD)),
        ),
        (
            "GET",
            "/v1/mailboxes/{id}/messages",
            get(mailboxes::fetch).layer(json_limit),
        ),
        (
            "POST",
            "/v1/mailboxes/{id}/ack",
            post(mailboxes::ack).layer(json_limit),
        ),
        ("POST", "/v1/sync", post(sync::sync).layer(json_limit)),
        (
            "OPTIONS",
            "/v1/blobs",
            axum::routing::options(crate::tus::options),
        ),
        (
            "POST",
            "/v1/blobs",
            post(crate::tus::create).layer(json_limit),
        ),
        (
            "HEAD",
            "/v1/blobs/{id}",
            axum::routing::head(crate::tus::head),
        ),
        (
            "PATCH",
            "/v1/blobs/{id}",
            axum::routing::patch(crate::tus::patch).layer(DefaultBodyLimit::disable()),
        ),
        ("DELETE", "/v1/blobs/{id}", delete(crate::tus::terminate)),
        ("GET", "/v1/blobs/{id}", get(crate::tus::download)),
        (
            "POST",
            "/v1/groups",
            post(groups::create_group).layer(json_limit),
        ),
        (
            "DELETE",
            "/v1/groups/{id}",
            delete(groups::delete_group).layer(json_limit),
        ),
        (
            "POST",
            "/v1/groups/{id}/messages",
            post(groups::post_message).layer(DefaultBodyLimit::max(padding::MAX_PAYLOAD)),
        ),
        (
            "GET",
            "/v1/groups/{id}/entries",
            get(groups::fetch).layer(json_limit),
        ),
        (
            "POST",
            "/v1/groups/{id}/commits",
            // A commit of up to 1 MiB, base64url in JSON, with its keys.
            post(groups::post_commit).layer(DefaultBodyLimit::max(
                padding::MAX_COMMIT / 3 * 4 + 64 * 1024,
            )),
        ),
        (
            "PUT",
            "/v1/canaries/{id}",
            put(canaries::deposit_canary).layer(json_limit),
        ),
        (
            "DELETE",
            "/v1/canaries/{id}",
            delete(canaries::delete_canary).layer(json_limit),
        ),
        (
            "POST",
            "/v1/canaries/{id}/renew",
            post(canaries::renew_canary).layer(json_limit),
        ),
        (
            "POST",
            "/v1/canaries/{id}/fire",
            post(canaries::fire_canary).layer(json_limit),
        ),
        (
            "PUT",
            "/v1/stows/{locator}",
            put(stows::put_stow).layer(DefaultBodyLimit::max(
                usize::try_from(crate::config::MAX_STOW_SIZE).unwrap_or(usize::MAX),
            )),
        ),
        ("GET", "/v1/stows/{locator}", get(stows::stow_status)),
        (
            "DELETE",
            "/v1/stows/{locator}",
            delete(stows::delete_stow).layer(json_limit),
        ),
        (
            "POST",
            "/v1/stows/{locator}/claim",
            post(stows::claim_stow).layer(json_limit),
        ),
        ("GET", "/v1/ws", get(crate::ws::upgrade)),
        (
            "POST",
            "/v1/turn",
            post(crate::routes::turn::credentials).layer(json_limit),
        ),
    ]
}

pub(crate) fn router(state: Shared) -> Router {
    let mut r = Router::new();
    for (_, path, method_router) in routes() {
        r = r.route(path, method_router);
    }
    r.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limit_connection,
        ))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound)
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed)
}

/// Logs and measures every request by route template: never the URI (it
/// holds mailbox ids), never the peer address, never sizes.
async fn observe(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = static_method(req.method());
    let resp = next.run(req).await;
    let took = started.elapsed();
    let status = resp.status().as_u16();
    s.metrics.observe_request(&route, method, status, took);
    tracing::debug!(
        route,
        method,
        status,
        micros = took.as_micros() as u64,
        "request"
    );
    resp
}

/// Most body bytes read from a request refused by the connection limit.
const DRAIN_ON_REFUSAL: usize = 128 * 1024;

/// The per-connection rate limit, before any work is done for a request
/// (health checks and metrics are exempt).
async fn limit_connection(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let exempt = matches!(req.uri().path(), "/health" | "/metrics");
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|axum::extract::ConnectInfo(a)| *a);
    if let (false, Some(peer)) = (exempt, peer)
        && !s.per_connection.take(&peer, Instant::now())
    {
        s.metrics.limited.count(crate::limit::Limit::Connection);
        // Read (and drop) a small body so the connection stays open with
        // its empty bucket: closing it would hand the client a fresh one on
        // reconnect. A large body closes the connection instead.
        let _ = axum::body::to_bytes(req.into_body(), DRAIN_ON_REFUSAL).await;
        // A flooding connection waits before each refusal: requests on one
        // connection come one after another, so this slows the flood itself
        // instead of letting it keep the relay busy with refusals.
        tokio::time::sleep(crate::limit::REFUSAL_DELAY).await;
        return ApiError::new(ErrorCode::RateLimited)
            .detail("connection rate")
            .into_response();
    }
    next.run(req).await
}

fn static_method(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

async fn health() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Metrics are for the operator only: served to loopback peers (a local
/// Prometheus or an SSH tunnel), refused to everyone else, because even
/// aggregate counts are a timing signal for an observer of the radio.
async fn metrics(State(s): State<Shared>, req: Request) -> Response {
    let local = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .is_some_and(|axum::extract::ConnectInfo(a)| a.ip().is_loopback());
    if !local {
        return ApiError::new(ErrorCode::NotFound).into_response();
    }
    let mut out = s.metrics.render();
    if let Some(turn) = &s.turn {
        turn.render(&mut out).await;
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
