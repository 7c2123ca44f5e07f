//! `/v1/stows`: stowed accounts. The relay keeps one opaque, padded record
//! per locator, versioned by compare-and-swap, leased to one device at a
//! time; it learns a random locator, a coarse size and the times of stow
//! and restore. Every request is signed by the owner key the record was
//! first stored with; an unknown locator and a wrong phrase look alike.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use ferry_proto::api::{ClaimStow, HEADER_STOW_VERSION, PutStow, StowStatus, StowStored};
use ferry_proto::{ErrorCode, MailboxId, PublicKey, b64};
use sha2::{Digest as _, Sha256};

use super::{body_bytes, parse_id, parse_json, serde_urlencoded_query};
use crate::error::ApiError;
use crate::server::Shared;
use crate::service::signed_by;
use crate::store::{Claim, StowPut};

/// Sealed records are a multiple of this many bytes.
const RECORD_UNIT: usize = 4096;

fn token(text: &str) -> Result<[u8; 32], ApiError> {
    b64::decode_array::<32>(text)
        .map_err(|_| ApiError::new(ErrorCode::BadRequest).detail("malformed token"))
}

fn hash(token: &[u8; 32]) -> [u8; 32] {
    Sha256::digest(token).into()
}

async fn owner_of(s: &Shared, locator: MailboxId) -> Result<PublicKey, ApiError> {
    Ok(s.store
        .stow_state(locator)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NoStow))?
        .owner)
}

pub(crate) async fn put_stow(
    State(s): State<Shared>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<StowStored>, ApiError> {
    let body = body_bytes(body)?;
    let locator = parse_id(&raw)?;
    let q: PutStow = serde_urlencoded_query(uri.query().unwrap_or(""))?;
    signed_by(&s, &headers, &uri, "PUT", vec![q.owner], body.clone()).await?;
    if body.is_empty() || body.len() % RECORD_UNIT != 0 {
        return Err(ApiError::new(ErrorCode::PayloadSizeNotBucket)
            .detail("a stow record is a whole number of 4 KiB units"));
    }
    if body.len() as u64 > s.config.max_stow_size {
        return Err(ApiError::new(ErrorCode::BodyTooLarge));
    }
    let put = StowPut {
        locator,
        owner: q.owner,
        access: token(&q.access)?,
        expected: q.expected,
        version: q.version.unwrap_or(q.expected.saturating_add(1)),
        lease: q.lease.as_deref().map(token).transpose()?.map(|l| hash(&l)),
        keep_lease: q.keep,
        record: body,
        now: s.clock.now(),
    };
    let version = put.version;
    s.store.put_stow(put).await?;
    Ok(Json(StowStored {
        version,
        keeps_messages: s.config.message_ttl.as_secs(),
        keeps_attachments: s.config.blob_ttl.as_secs(),
    }))
}

pub(crate) async fn stow_status(
    State(s): State<Shared>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<StowStatus>, ApiError> {
    let locator = parse_id(&raw)?;
    let q: ferry_proto::api::StowStatusQuery = serde_urlencoded_query(uri.query().unwrap_or(""))?;
    let owner = owner_of(&s, locator).await?;
    signed_by(&s, &headers, &uri, "GET", vec![owner], Bytes::new()).await?;
    let st = s
        .store
        .stow_state(locator)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NoStow))?;
    Ok(Json(StowStatus {
        version: st.version,
        digest: b64::encode(&st.digest),
        leased: st.lease.is_some(),
        held: match q.lease.as_deref() {
            Some(t) => Some(st.lease == Some(hash(&token(t)?))),
            None => None,
        },
    }))
}

pub(crate) async fn claim_stow(
    State(s): State<Shared>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_bytes(body)?;
    let locator = parse_id(&raw)?;
    let req: ClaimStow = parse_json(&body)?;
    let owner = owner_of(&s, locator).await?;
    signed_by(&s, &headers, &uri, "POST", vec![owner], body).await?;
    let access = token(&req.access)?;
    let lease = token(&req.lease)?;
    let claim = s
        .store
        .claim_stow(
            locator,
            hash(&access),
            hash(&lease),
            req.takeover,
            s.config.stow_pin_tries.max(1),
        )
        .await?;
    match claim {
        Claim::Granted { version, record } => {
            let mut resp = (StatusCode::OK, record).into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            h.insert(HEADER_STOW_VERSION, HeaderValue::from(version));
            Ok(resp)
        }
        Claim::NotFound => Err(ApiError::new(ErrorCode::NoStow)),
        Claim::Leased => Err(ApiError::new(ErrorCode::StowLeased)),
        Claim::WrongAccess { left } => {
            let mut e = ApiError::new(ErrorCode::WrongPin);
            e.left = Some(left);
            Err(e)
        }
    }
}

pub(crate) async fn delete_stow(
    State(s): State<Shared>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = body_bytes(body)?;
    let locator = parse_id(&raw)?;
    let owner = owner_of(&s, locator).await?;
    signed_by(&s, &headers, &uri, "DELETE", vec![owner], body).await?;
    s.store.delete_stow(locator).await?;
    Ok(StatusCode::NO_CONTENT)
}
