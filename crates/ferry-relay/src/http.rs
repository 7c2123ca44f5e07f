//! The HTTP API: routes, request authentication and handlers.
//!
//! The route list in [`routes`] is the only way the router is built, and
//! [`ROUTES`] is derived from it, so the OpenAPI check sees exactly what the
//! relay serves.

use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use ferry_proto::api::{
    Ack, Acked, CreateMailbox, Fetched, Message, Sent, SetSender, SyncRequest, SyncResponse,
    SyncResult,
};
use ferry_proto::auth::{
    HEADER_ACCESS_TOKEN, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, RequestAuth,
};
use ferry_proto::{ErrorCode, MailboxId, PublicKey, Seq, padding};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq as _;

use crate::error::ApiError;
use crate::push::Pushed;
use crate::server::Shared;
use crate::store::{FetchBatch, FetchLimits, MailboxRecord, Quota};

/// Every route the relay serves, as `(METHOD, path template)`.
pub static ROUTES: std::sync::LazyLock<Vec<(&'static str, &'static str)>> =
    std::sync::LazyLock::new(|| routes().into_iter().map(|(m, p, _)| (m, p)).collect());

/// Signatures checked inline; above this many the check moves off the
/// async workers.
const INLINE_VERIFY: usize = 4;

fn routes() -> Vec<(&'static str, &'static str, MethodRouter<Shared>)> {
    let json_limit = DefaultBodyLimit::max(1024 * 1024);
    vec![
        ("GET", "/health", get(health)),
        ("GET", "/metrics", get(metrics)),
        (
            "POST",
            "/v1/mailboxes",
            post(create_mailbox).layer(json_limit),
        ),
        (
            "DELETE",
            "/v1/mailboxes/{id}",
            delete(delete_mailbox).layer(json_limit),
        ),
        (
            "PUT",
            "/v1/mailboxes/{id}/sender",
            put(set_sender).layer(json_limit),
        ),
        (
            "POST",
            "/v1/mailboxes/{id}/messages",
            post(send).layer(DefaultBodyLimit::max(padding::MAX_PAYLOAD)),
        ),
        (
            "GET",
            "/v1/mailboxes/{id}/messages",
            get(fetch).layer(json_limit),
        ),
        (
            "POST",
            "/v1/mailboxes/{id}/ack",
            post(ack).layer(json_limit),
        ),
        ("POST", "/v1/sync", post(sync).layer(json_limit)),
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
            "PUT",
            "/v1/canaries/{id}",
            put(deposit_canary).layer(json_limit),
        ),
        (
            "DELETE",
            "/v1/canaries/{id}",
            delete(delete_canary).layer(json_limit),
        ),
        (
            "POST",
            "/v1/canaries/{id}/renew",
            post(renew_canary).layer(json_limit),
        ),
        (
            "POST",
            "/v1/canaries/{id}/fire",
            post(fire_canary).layer(json_limit),
        ),
        ("GET", "/v1/ws", get(crate::ws::upgrade)),
    ]
}

pub(crate) fn router(state: Shared) -> Router {
    let mut r = Router::new();
    for (_, path, method_router) in routes() {
        r = r.route(path, method_router);
    }
    r.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
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
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}

// ---- request plumbing -------------------------------------------------------

fn body_bytes(r: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    r.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ErrorCode::BodyTooLarge)
        } else {
            ApiError::new(ErrorCode::BadRequest).detail("unreadable body")
        }
    })
}

fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        // serde_json's message names the problem and position, not values.
        ApiError::new(ErrorCode::MalformedJson).detail(format!(
            "{:?} at column {}",
            e.classify(),
            e.column()
        ))
    })
}

fn parse_id(raw: &str) -> Result<MailboxId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::new(ErrorCode::BadRequest).detail("malformed mailbox id"))
}

fn request_auth(headers: &HeaderMap) -> Result<RequestAuth, ApiError> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::new(ErrorCode::MissingAuth))
    };
    RequestAuth::from_parts(
        get(HEADER_TIMESTAMP)?,
        get(HEADER_NONCE)?,
        get(HEADER_SIGNATURE)?,
    )
    .map_err(|_| ApiError::new(ErrorCode::MissingAuth).detail("malformed auth headers"))
}

fn signed_path(uri: &Uri) -> &str {
    uri.path_and_query().map_or(uri.path(), |p| p.as_str())
}

/// Authenticates a request signed by exactly `keys` (see [`authenticate`]).
pub(crate) async fn signed_by(
    s: &Shared,
    headers: &HeaderMap,
    uri: &Uri,
    method: &'static str,
    keys: Vec<PublicKey>,
    body: Bytes,
) -> Result<(), ApiError> {
    let auth = request_auth(headers)?;
    authenticate(s, auth, keys, method, signed_path(uri).to_owned(), body).await
}

/// Checks freshness, every signature, then remembers the nonce. Many
/// signatures are verified off the async workers.
pub(crate) async fn authenticate(
    s: &Shared,
    auth: RequestAuth,
    keys: Vec<PublicKey>,
    method: &'static str,
    path: String,
    body: Bytes,
) -> Result<(), ApiError> {
    let now = s.clock.now();
    s.replay
        .check_time(auth.timestamp, now)
        .map_err(|e| ApiError::replay(e, now))?;
    let many = keys.len() > INLINE_VERIFY;
    let verify = move || auth.verify(&keys, method, &path, &body).map(|()| auth);
    let verified = if many {
        tokio::task::spawn_blocking(verify)
            .await
            .map_err(|_| ApiError::new(ErrorCode::Internal).detail("verify task failed"))?
    } else {
        verify()
    };
    let auth =
        verified.map_err(|e| ApiError::new(ErrorCode::BadSignature).detail(e.to_string()))?;
    let now = s.clock.now();
    s.replay
        .remember(auth.timestamp, &auth.nonce, now)
        .map_err(|e| ApiError::replay(e, now))
}

pub(crate) async fn lookup(s: &Shared, id: MailboxId) -> Result<MailboxRecord, ApiError> {
    if let Some(rec) = s.records.get(&id) {
        return Ok(rec);
    }
    let rec = s
        .store
        .mailboxes(vec![id])
        .await?
        .pop()
        .flatten()
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownMailbox))?;
    s.records.put(id, rec);
    Ok(rec)
}

fn messages(batch: FetchBatch) -> Vec<Message> {
    batch
        .messages
        .into_iter()
        .map(|m| Message {
            seq: m.seq,
            payload: m.payload.to_vec(),
        })
        .collect()
}

pub(crate) fn quota(s: &Shared) -> Quota {
    Quota {
        max_messages: s.config.max_messages_per_mailbox,
        max_bytes: s.config.max_bytes_per_mailbox,
    }
}

pub(crate) fn limits(s: &Shared, requested: Option<usize>) -> FetchLimits {
    FetchLimits {
        per_mailbox: requested
            .unwrap_or(s.config.fetch_limit)
            .clamp(1, s.config.fetch_limit),
        total_bytes: s.config.fetch_max_bytes,
    }
}

/// Stores a message and pushes it to live subscribers.
pub(crate) async fn store_and_push(
    s: &Shared,
    id: MailboxId,
    payload: Bytes,
) -> Result<Seq, ApiError> {
    let started = Instant::now();
    let expires_at = s.clock.now().saturating_add(s.config.message_ttl.as_secs());
    let seq = s
        .store
        .append(id, payload.clone(), expires_at, quota(s))
        .await?;
    s.metrics.observe_store_write(started.elapsed());
    s.metrics.messages_stored.fetch_add(1, Ordering::Relaxed);
    let n = s.hub.publish(Pushed {
        mailbox: id,
        seq,
        payload,
    });
    s.metrics
        .messages_pushed
        .fetch_add(n as u64, Ordering::Relaxed);
    Ok(seq)
}

// ---- handlers ----------------------------------------------------------------

async fn create_mailbox(
    State(s): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_bytes(body)?;
    if let Some(expected) = &s.config.access_token {
        let given = headers
            .get(HEADER_ACCESS_TOKEN)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !bool::from(given.ct_eq(expected.as_bytes())) {
            return Err(ApiError::new(ErrorCode::AccessTokenRequired));
        }
    }
    let req: CreateMailbox = parse_json(&body)?;
    signed_by(&s, &headers, &uri, "POST", vec![req.recipient_key], body).await?;
    let created = s
        .store
        .create_mailbox(req.id, req.recipient_key, s.clock.now())
        .await?;
    let status = match created {
        crate::store::Created::New => StatusCode::CREATED,
        crate::store::Created::Existing => StatusCode::OK,
    };
    Ok((status, Json(serde_json::json!({ "id": req.id }))).into_response())
}

async fn delete_mailbox(
    State(s): State<Shared>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = body_bytes(body)?;
    let id = parse_id(&raw)?;
    let rec = lookup(&s, id).await?;
    signed_by(&s, &headers, &uri, "DELETE", vec![rec.recipient_key], body).await?;
    s.store.delete_mailbox(id).await?;
    s.records.forget(&id);
    Ok(StatusCode::NO_CONTENT)
}

async fn set_sender(
    State(s): State<Shared>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = body_bytes(body)?;
    let id = parse_id(&raw)?;
    let req: SetSender = parse_json(&body)?;
    let rec = lookup(&s, id).await?;
    signed_by(&s, &headers, &uri, "PUT", vec![rec.recipient_key], body).await?;
    s.store.set_sender_key(id, req.sender_key).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn send(
    State(s): State<Shared>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_bytes(body)?;
    let id = parse_id(&raw)?;
    if !padding::is_bucket_size(body.len()) {
        return Err(ApiError::new(ErrorCode::PayloadSizeNotBucket));
    }
    let rec = lookup(&s, id).await?;
    let sender = rec
        .sender_key
        .ok_or_else(|| ApiError::new(ErrorCode::MailboxNotSecured))?;
    signed_by(&s, &headers, &uri, "POST", vec![sender], body.clone()).await?;
    let seq = store_and_push(&s, id, body).await?;
    Ok((StatusCode::CREATED, Json(Sent { seq })).into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FetchQuery {
    #[serde(default)]
    after: u64,
    limit: Option<usize>,
}

async fn fetch(
    State(s): State<Shared>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Fetched>, ApiError> {
    let body = body_bytes(body)?;
    let id = parse_id(&raw)?;
    let q: FetchQuery = serde_urlencoded_query(uri.query().unwrap_or(""))?;
    let rec = lookup(&s, id).await?;
    signed_by(&s, &headers, &uri, "GET", vec![rec.recipient_key], body).await?;
    let mut batches = s
        .store
        .fetch(vec![(id, Seq(q.after))], limits(&s, q.limit), s.clock.now())
        .await?;
    let batch = batches.pop().unwrap_or_default();
    let more = batch.more;
    Ok(Json(Fetched {
        messages: messages(batch),
        more,
    }))
}

fn serde_urlencoded_query<T: DeserializeOwned>(q: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(
        &Uri::try_from(format!("/?{q}")).map_err(|_| bad_query())?,
    )
    .map(|axum::extract::Query(v)| v)
    .map_err(|_| bad_query())
}

fn bad_query() -> ApiError {
    ApiError::new(ErrorCode::BadRequest).detail("malformed query")
}

async fn ack(
    State(s): State<Shared>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Acked>, ApiError> {
    let body = body_bytes(body)?;
    let id = parse_id(&raw)?;
    let req: Ack = parse_json(&body)?;
    let rec = lookup(&s, id).await?;
    signed_by(&s, &headers, &uri, "POST", vec![rec.recipient_key], body).await?;
    let removed = s.store.ack(vec![(id, req.up_to)]).await?;
    Ok(Json(Acked {
        removed: removed.first().copied().unwrap_or(0),
    }))
}

/// Checks a list of mailboxes named by one request: count and duplicates.
pub(crate) fn check_mailbox_list(s: &Shared, ids: &[MailboxId]) -> Result<(), ApiError> {
    if ids.is_empty() {
        return Err(ApiError::new(ErrorCode::BadRequest).detail("no mailboxes"));
    }
    if ids.len() > s.config.max_mailboxes_per_request {
        return Err(ApiError::new(ErrorCode::TooManyMailboxes));
    }
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err(ApiError::new(ErrorCode::BadRequest).detail("duplicate mailbox"));
    }
    Ok(())
}

/// Verifies one signature per known mailbox (signatures are positional; an
/// unknown mailbox's signature is skipped). Returns the records.
pub(crate) async fn authenticate_many(
    s: &Shared,
    auth: RequestAuth,
    ids: &[MailboxId],
    pick: fn(&MailboxRecord) -> Option<PublicKey>,
    method: &'static str,
    path: String,
    body: Bytes,
) -> Result<Vec<Option<MailboxRecord>>, ApiError> {
    if auth.signatures.len() != ids.len() {
        return Err(ApiError::new(ErrorCode::BadSignature).detail("signature count"));
    }
    let records = s.store.mailboxes(ids.to_vec()).await?;
    let mut keys = Vec::with_capacity(ids.len());
    let mut sigs = Vec::with_capacity(ids.len());
    for (rec, sig) in records.iter().zip(&auth.signatures) {
        if let Some(rec) = rec {
            let key = pick(rec).ok_or_else(|| ApiError::new(ErrorCode::MailboxNotSecured))?;
            keys.push(key);
            sigs.push(*sig);
        }
    }
    if keys.is_empty() {
        // Nothing to verify against: refuse rather than accept (and
        // remember) a request that no key signed.
        return Err(ApiError::new(ErrorCode::UnknownMailbox));
    }
    let known = RequestAuth {
        timestamp: auth.timestamp,
        nonce: auth.nonce,
        signatures: sigs,
    };
    authenticate(s, known, keys, method, path, body).await?;
    Ok(records)
}

async fn sync(
    State(s): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<SyncResponse>, ApiError> {
    let body = body_bytes(body)?;
    let req: SyncRequest = parse_json(&body)?;
    let ids: Vec<MailboxId> = req.mailboxes.iter().map(|e| e.id).collect();
    check_mailbox_list(&s, &ids)?;
    let auth = request_auth(&headers)?;
    let records = authenticate_many(
        &s,
        auth,
        &ids,
        |r| Some(r.recipient_key),
        "POST",
        signed_path(&uri).to_owned(),
        body,
    )
    .await?;
    let acks: Vec<(MailboxId, Seq)> = req
        .mailboxes
        .iter()
        .zip(&records)
        .filter(|(_, r)| r.is_some())
        .filter_map(|(e, _)| e.ack_up_to.map(|up| (e.id, up)))
        .collect();
    if !acks.is_empty() {
        s.store.ack(acks).await?;
    }
    let reads: Vec<(MailboxId, Seq)> = req
        .mailboxes
        .iter()
        .zip(&records)
        .filter(|(_, r)| r.is_some())
        .map(|(e, _)| (e.id, e.after))
        .collect();
    let mut batches = s
        .store
        .fetch(reads, limits(&s, None), s.clock.now())
        .await?
        .into_iter();
    let mut out = Vec::with_capacity(ids.len());
    for (entry, rec) in req.mailboxes.iter().zip(&records) {
        if rec.is_none() {
            out.push(SyncResult {
                id: entry.id,
                messages: Vec::new(),
                more: false,
                error: Some(ErrorCode::UnknownMailbox),
            });
            continue;
        }
        let batch = batches.next().unwrap_or_default();
        let more = batch.more;
        out.push(SyncResult {
            id: entry.id,
            messages: messages(batch),
            more,
            error: None,
        });
    }
    Ok(Json(SyncResponse { mailboxes: out }))
}

// ---- canaries ----------------------------------------------------------------

/// Longest a canary may be set ahead.
const MAX_CANARY_AHEAD: u64 = 366 * 24 * 3600;

fn check_release(s: &Shared, release_at: u64) -> Result<(), ApiError> {
    let now = s.clock.now();
    if release_at <= now || release_at > now.saturating_add(MAX_CANARY_AHEAD) {
        return Err(ApiError::new(ErrorCode::BadReleaseTime));
    }
    Ok(())
}

async fn canary_owner(s: &Shared, id: MailboxId) -> Result<PublicKey, ApiError> {
    s.store
        .canary_owner(id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownCanary))
}

async fn deposit_canary(
    State(s): State<Shared>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = body_bytes(body)?;
    let id = parse_id(&raw)?;
    let req: ferry_proto::api::DepositCanary = parse_json(&body)?;
    if !padding::is_bucket_size(req.payload.len()) {
        return Err(ApiError::new(ErrorCode::PayloadSizeNotBucket));
    }
    check_release(&s, req.release_at)?;
    let target = lookup(&s, req.mailbox).await?;
    let sender = target
        .sender_key
        .ok_or_else(|| ApiError::new(ErrorCode::MailboxNotSecured))?;
    // The owner proves the key it registers; the sender key proves the
    // depositor may send to the mailbox, which the release will do.
    signed_by(&s, &headers, &uri, "PUT", vec![req.owner_key, sender], body).await?;
    s.store
        .put_canary(crate::store::Canary {
            id,
            owner: req.owner_key,
            mailbox: req.mailbox,
            release_at: req.release_at,
            payload: Bytes::from(req.payload),
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn renew_canary(
    State(s): State<Shared>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = body_bytes(body)?;
    let id = parse_id(&raw)?;
    let req: ferry_proto::api::RenewCanary = parse_json(&body)?;
    check_release(&s, req.release_at)?;
    let owner = canary_owner(&s, id).await?;
    signed_by(&s, &headers, &uri, "POST", vec![owner], body).await?;
    if !s.store.renew_canary(id, req.release_at).await? {
        return Err(ApiError::new(ErrorCode::UnknownCanary));
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn fire_canary(
    State(s): State<Shared>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = body_bytes(body)?;
    let id = parse_id(&raw)?;
    let owner = canary_owner(&s, id).await?;
    signed_by(&s, &headers, &uri, "POST", vec![owner], body).await?;
    release_canaries(&s, Some(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_canary(
    State(s): State<Shared>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = body_bytes(body)?;
    let id = parse_id(&raw)?;
    let owner = canary_owner(&s, id).await?;
    signed_by(&s, &headers, &uri, "DELETE", vec![owner], body).await?;
    s.store.delete_canary(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Releases due canaries (or one on demand) and pushes them live.
pub(crate) async fn release_canaries(
    s: &Shared,
    only: Option<MailboxId>,
) -> Result<usize, ApiError> {
    let now = s.clock.now();
    let expires_at = now.saturating_add(s.config.message_ttl.as_secs());
    let released = s
        .store
        .release_canaries(now, only, expires_at, quota(s))
        .await?;
    for r in &released {
        s.metrics.messages_stored.fetch_add(1, Ordering::Relaxed);
        s.hub.publish(Pushed {
            mailbox: r.mailbox,
            seq: r.seq,
            payload: r.payload.clone(),
        });
    }
    Ok(released.len())
}
