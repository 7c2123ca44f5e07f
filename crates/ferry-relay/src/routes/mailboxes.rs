//! `/v1/mailboxes`: create, secure, send, fetch, ack, delete.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ferry_proto::api::{Ack, Acked, CreateMailbox, Fetched, Sent, SetSender};
use ferry_proto::{ErrorCode, Seq, padding};

use super::{body_bytes, messages, parse_id, parse_json, serde_urlencoded_query};
use crate::error::ApiError;
use crate::server::Shared;
use crate::service::{check_access_token, limits, lookup, signed_by, store_and_push};

pub(crate) async fn create_mailbox(
    State(s): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_bytes(body)?;
    check_access_token(&s, &headers)?;
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

pub(crate) async fn delete_mailbox(
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
    let keep_until = s
        .clock
        .now()
        .saturating_add(s.config.tombstone_ttl.as_secs());
    s.store.delete_mailbox(id, keep_until).await?;
    s.records.forget(&id);
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn set_sender(
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

pub(crate) async fn send(
    State(s): State<Shared>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_bytes(body)?;
    let id = parse_id(&raw)?;
    let rec = lookup(&s, id).await?;
    let sender = rec
        .sender_key
        .ok_or_else(|| ApiError::new(ErrorCode::MailboxNotSecured))?;
    // Who sends is checked before what: a stranger learns nothing about
    // the mailbox from the answer to a malformed payload.
    signed_by(&s, &headers, &uri, "POST", vec![sender], body.clone()).await?;
    if !padding::is_bucket_size(body.len()) {
        return Err(ApiError::new(ErrorCode::PayloadSizeNotBucket));
    }
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

pub(crate) async fn fetch(
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

pub(crate) async fn ack(
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
