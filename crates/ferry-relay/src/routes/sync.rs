//! `POST /v1/sync`: many mailboxes in one round trip.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, Uri};
use ferry_proto::api::{SyncRequest, SyncResponse, SyncResult};
use ferry_proto::{ErrorCode, MailboxId, Seq};

use super::{body_bytes, messages, parse_json};
use crate::error::ApiError;
use crate::server::Shared;
use crate::service::{authenticate_many, check_mailbox_list, limits, request_auth, signed_path};

pub(crate) async fn sync(
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
