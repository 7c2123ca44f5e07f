//! `/v1/canaries`: deposit, renew, fire, delete.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use ferry_proto::{ErrorCode, MailboxId, PublicKey, padding};

use super::{body_bytes, parse_id, parse_json};
use crate::error::ApiError;
use crate::server::Shared;
use crate::service::{
    authenticate, lookup, release_canaries, request_auth, signed_by, signed_path,
};
use crate::store::CanaryKeys;

/// Longest a canary may be set ahead.
const MAX_CANARY_AHEAD: u64 = 366 * 24 * 3600;

fn check_release(s: &Shared, release_at: u64) -> Result<(), ApiError> {
    let now = s.clock.now();
    if release_at <= now || release_at > now.saturating_add(MAX_CANARY_AHEAD) {
        return Err(ApiError::new(ErrorCode::BadReleaseTime));
    }
    Ok(())
}

async fn canary_keys(s: &Shared, id: MailboxId) -> Result<CanaryKeys, ApiError> {
    s.store
        .canary_keys(id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownCanary))
}

async fn canary_owner(s: &Shared, id: MailboxId) -> Result<PublicKey, ApiError> {
    Ok(canary_keys(s, id).await?.owner)
}

pub(crate) async fn deposit_canary(
    State(s): State<Shared>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = body_bytes(body)?;
    let id = parse_id(&raw)?;
    let req: ferry_proto::api::DepositCanary = parse_json(&body)?;
    let target = lookup(&s, req.mailbox).await?;
    let sender = target
        .sender_key
        .ok_or_else(|| ApiError::new(ErrorCode::MailboxNotSecured))?;
    // The owner proves the key it registers; the sender key proves the
    // depositor may send to the mailbox, which the release will do. Both
    // before anything else is looked at.
    signed_by(&s, &headers, &uri, "PUT", vec![req.owner_key, sender], body).await?;
    if !padding::is_bucket_size(req.payload.len())
        || req
            .fire_payload
            .as_ref()
            .is_some_and(|f| f.len() != req.payload.len())
    {
        return Err(ApiError::new(ErrorCode::PayloadSizeNotBucket));
    }
    if req.fire_payload.is_some() != req.fire_key.is_some() {
        return Err(
            ApiError::new(ErrorCode::BadRequest).detail("fire_key and fire_payload go together")
        );
    }
    check_release(&s, req.release_at)?;
    let put = s
        .store
        .put_canary(
            crate::store::Canary {
                id,
                owner: req.owner_key,
                mailbox: req.mailbox,
                release_at: req.release_at,
                payload: Bytes::from(req.payload),
                fire_key: req.fire_key,
                fire_payload: req.fire_payload.map(Bytes::from),
            },
            crate::service::quota(&s),
            s.config.max_canaries_per_mailbox,
        )
        .await;
    if matches!(put, Err(crate::store::StoreError::TooManyCanaries)) {
        s.metrics.limited.count(crate::limit::Limit::Canaries);
    }
    put?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn renew_canary(
    State(s): State<Shared>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = body_bytes(body)?;
    let id = parse_id(&raw)?;
    let req: ferry_proto::api::RenewCanary = parse_json(&body)?;
    let keys = canary_keys(&s, id).await?;
    // Signed by the fire key, the same request fires the canary: a duress
    // session makes no request a real one does not.
    let auth = request_auth(&headers)?;
    let fired = keys.fire.is_some_and(|fire| {
        auth.verify(&[fire], "POST", signed_path(&uri), &body)
            .is_ok()
    });
    let signer = match keys.fire {
        Some(fire) if fired => fire,
        _ => keys.owner,
    };
    authenticate(
        &s,
        auth,
        vec![signer],
        "POST",
        signed_path(&uri).to_owned(),
        body,
    )
    .await?;
    check_release(&s, req.release_at)?;
    if fired {
        release_canaries(&s, Some(id)).await?;
    } else if !s.store.renew_canary(id, req.release_at).await? {
        return Err(ApiError::new(ErrorCode::UnknownCanary));
    }
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn fire_canary(
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

pub(crate) async fn delete_canary(
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
