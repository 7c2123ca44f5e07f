//! `/v1/groups`: group mailboxes (see [`crate::store::NewGroup`]). The
//! relay orders commits by compare-and-swap on the group's epoch and takes
//! them only from admin keys, so a member who floods commits cannot take
//! the admins' slots; it never learns who is in a group.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ferry_proto::api::{
    CommitTaken, CreateGroup, GroupAdminQuery, GroupEntry, GroupEntryKind, GroupFetchQuery,
    GroupFetched, GroupPostQuery, PostCommit, Sent,
};
use ferry_proto::{ErrorCode, MailboxId, Seq, padding};

use super::{body_bytes, parse_id, parse_json, serde_urlencoded_query};
use crate::error::ApiError;
use crate::server::Shared;
use crate::service::{check_access_token, limits, quota, signed_by};
use crate::store::{
    CommitPut, EntryKind, GroupPost, GroupRecord, KeyChanges, MAX_ADMINS, NewGroup,
};

async fn group_of(s: &Shared, id: MailboxId) -> Result<GroupRecord, ApiError> {
    s.store
        .group(id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownMailbox))
}

fn not_admin() -> ApiError {
    ApiError::new(ErrorCode::NotAuthorized).detail("not an admin key of the group")
}

pub(crate) async fn create_group(
    State(s): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_bytes(body)?;
    check_access_token(&s, &headers)?;
    let req: CreateGroup = parse_json(&body)?;
    signed_by(
        &s,
        &headers,
        &uri,
        "POST",
        vec![req.admin_key, req.read_key, req.write_key],
        body,
    )
    .await?;
    let created = s
        .store
        .create_group(NewGroup {
            id: req.id,
            admin: req.admin_key,
            read: req.read_key,
            write: req.write_key,
            now: s.clock.now(),
        })
        .await?;
    let status = match created {
        crate::store::Created::New => StatusCode::CREATED,
        crate::store::Created::Existing => StatusCode::OK,
    };
    Ok((status, Json(serde_json::json!({ "id": req.id }))).into_response())
}

pub(crate) async fn post_message(
    State(s): State<Shared>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_bytes(body)?;
    let id = parse_id(&raw)?;
    let q: GroupPostQuery = serde_urlencoded_query(uri.query().unwrap_or(""))?;
    let rec = group_of(&s, id).await?;
    signed_by(&s, &headers, &uri, "POST", vec![rec.write], body.clone()).await?;
    if !padding::is_bucket_size(body.len()) {
        return Err(ApiError::new(ErrorCode::PayloadSizeNotBucket));
    }
    let seq = s
        .store
        .post_group(GroupPost {
            group: id,
            write: rec.write,
            epoch: q.epoch,
            payload: body,
            expires_at: s.clock.now().saturating_add(s.config.message_ttl.as_secs()),
            quota: quota(&s),
        })
        .await?;
    Ok((StatusCode::CREATED, Json(Sent { seq })).into_response())
}

pub(crate) async fn post_commit(
    State(s): State<Shared>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_bytes(body)?;
    let id = parse_id(&raw)?;
    let req: PostCommit = parse_json(&body)?;
    group_of(&s, id).await?;
    // The signature first: a stranger learns nothing about the group's
    // admins from the answer. Whether the key is an admin's is checked in
    // the commit's own transaction (after a retry is recognized, so an
    // admin whose commit removed its own key still gets its answer).
    signed_by(&s, &headers, &uri, "POST", vec![req.admin_key], body).await?;
    if !padding::is_commit_size(req.payload.len()) {
        return Err(ApiError::new(ErrorCode::PayloadSizeNotBucket));
    }
    if req.add_admins.len() > MAX_ADMINS || req.remove_admins.len() > MAX_ADMINS {
        return Err(ApiError::new(ErrorCode::BadRequest).detail("too many admin keys"));
    }
    let taken = s
        .store
        .commit_group(CommitPut {
            group: id,
            admin: req.admin_key,
            quota: quota(&s),
            expected: req.expected,
            payload: Bytes::from(req.payload),
            changes: KeyChanges {
                rotate: req.rotate.map(|r| (r.read_key, r.write_key)),
                add_admins: req.add_admins,
                remove_admins: req.remove_admins,
            },
            expires_at: s.clock.now().saturating_add(s.config.message_ttl.as_secs()),
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CommitTaken {
            seq: taken.seq,
            epoch: taken.epoch,
        }),
    )
        .into_response())
}

pub(crate) async fn fetch(
    State(s): State<Shared>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<GroupFetched>, ApiError> {
    let body = body_bytes(body)?;
    let id = parse_id(&raw)?;
    let q: GroupFetchQuery = serde_urlencoded_query(uri.query().unwrap_or(""))?;
    // The key, its reach and the epoch are read in one transaction.
    signed_by(&s, &headers, &uri, "GET", vec![q.key], body).await?;
    let batch = s
        .store
        .fetch_group(id, q.key, Seq(q.after), limits(&s, q.limit), s.clock.now())
        .await?;
    Ok(Json(GroupFetched {
        entries: batch
            .entries
            .into_iter()
            .map(|e| GroupEntry {
                seq: e.seq,
                epoch: e.epoch,
                kind: match e.kind {
                    EntryKind::Message => GroupEntryKind::Message,
                    EntryKind::Commit => GroupEntryKind::Commit,
                },
                payload: e.payload.to_vec(),
            })
            .collect(),
        more: batch.more,
        epoch: batch.epoch,
    }))
}

pub(crate) async fn delete_group(
    State(s): State<Shared>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = body_bytes(body)?;
    let id = parse_id(&raw)?;
    let q: GroupAdminQuery = serde_urlencoded_query(uri.query().unwrap_or(""))?;
    let rec = group_of(&s, id).await?;
    signed_by(&s, &headers, &uri, "DELETE", vec![q.admin_key], body).await?;
    if !rec.admins.contains(&q.admin_key) {
        return Err(not_admin());
    }
    let keep_until = s
        .clock
        .now()
        .saturating_add(s.config.tombstone_ttl.as_secs());
    s.store.delete_group(id, keep_until).await?;
    Ok(StatusCode::NO_CONTENT)
}
