//! Attachment blobs over tus 1.0 (core protocol plus the creation,
//! termination and expiration extensions) and ranged downloads.
//!
//! `POST /v1/blobs` creates an upload (`Upload-Length`; the operator's access
//! token on a private relay) and answers with its `Location` and a read token
//! in `Ferry-Blob-Token`. `HEAD` tells the stored offset, `PATCH` appends at
//! `Upload-Offset` streaming the body to disk in constant memory, `DELETE`
//! terminates. `GET /v1/blobs/{id}` with the read token downloads, honouring
//! `Range`. Every PATCH is synced before it is answered, so an interrupted
//! transfer resumes from the last confirmed byte.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferry_proto::{ErrorCode, b64};
use futures_util::StreamExt as _;
use rand_core::{OsRng, RngCore as _};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::blob::{BlobError, BlobId};
use crate::error::ApiError;
use crate::server::Shared;

const TUS_VERSION: &str = "1.0.0";
use ferry_proto::auth::HEADER_BLOB_TOKEN;
const CHUNK: usize = 256 * 1024;
/// Largest single write of an upload.
const WRITE: usize = 1024 * 1024;

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::Unknown => ApiError::new(ErrorCode::NotFound),
            BlobError::Exists => ApiError::new(ErrorCode::Internal).detail("blob id collision"),
            BlobError::OffsetMismatch => ApiError::new(ErrorCode::OffsetMismatch),
            BlobError::TooLong => ApiError::new(ErrorCode::BodyTooLarge),
            BlobError::StorageFull => ApiError::new(ErrorCode::BlobStorageFull),
            BlobError::OwnerBudget => ApiError::new(ErrorCode::BlobBudgetExceeded),
            BlobError::Backend(d) => ApiError::new(ErrorCode::Internal).detail(d),
        }
    }
}

fn tus_headers(resp: &mut Response) {
    resp.headers_mut()
        .insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn with_tus(mut resp: Response) -> Response {
    tus_headers(&mut resp);
    resp
}

/// A request without `Tus-Resumable` is malformed (400); one naming a
/// version other than 1.0.0 gets the protocol's 412.
fn check_version(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get("tus-resumable").map(|v| v.to_str()) {
        Some(Ok(TUS_VERSION)) => Ok(()),
        None => Err(ApiError::new(ErrorCode::BadRequest).detail("Tus-Resumable header missing")),
        _ => Err(ApiError::new(ErrorCode::TusVersionUnsupported)),
    }
}

fn header_u64(headers: &HeaderMap, name: &str) -> Result<u64, ApiError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| {
            ApiError::new(ErrorCode::BadRequest).detail("missing or malformed tus header")
        })
}

fn parse_id(raw: &str) -> Result<BlobId, ApiError> {
    raw.parse().map_err(|_| ApiError::new(ErrorCode::NotFound))
}

fn expires_header(at: u64) -> HeaderValue {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(at);
    HeaderValue::from_str(&httpdate::fmt_http_date(t)).unwrap_or(HeaderValue::from_static(""))
}

pub(crate) async fn options(State(s): State<Shared>) -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    h.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    h.insert(
        "tus-extension",
        HeaderValue::from_static("creation,termination,expiration"),
    );
    if let Ok(v) = HeaderValue::from_str(&s.config.max_blob_size.to_string()) {
        h.insert("tus-max-size", v);
    }
    with_tus(resp)
}

pub(crate) async fn create(
    State(s): State<Shared>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_version(&headers)?;
    // Only a contact of one of this relay's users may store a blob, on any
    // relay: proven by a signature of the sender key of one of its secured
    // mailboxes (what that contact already sends with). The key that signed
    // owns the blob and has its own budget.
    let refused = || {
        if s.config.access_token.is_some() {
            ApiError::new(ErrorCode::AccessTokenRequired)
        } else {
            ApiError::new(ErrorCode::MissingAuth).detail("blob creation needs a mailbox signature")
        }
    };
    // Or a member of one of its groups: a signature of the group's current
    // write key (one file for the whole group).
    let id_in = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<ferry_proto::MailboxId>().ok())
    };
    let sender = match id_in(ferry_proto::auth::HEADER_GROUP) {
        Some(group) => s
            .store
            .group(group)
            .await
            .ok()
            .flatten()
            .map(|g| g.write)
            .ok_or_else(refused)?,
        None => {
            let mailbox = id_in(ferry_proto::auth::HEADER_MAILBOX).ok_or_else(refused)?;
            crate::service::lookup(&s, mailbox)
                .await
                .ok()
                .and_then(|r| r.sender_key)
                .ok_or_else(refused)?
        }
    };
    crate::service::signed_by(&s, &headers, &uri, "POST", vec![sender], Bytes::new()).await?;
    let length = header_u64(&headers, "upload-length")?;
    if length > s.config.max_blob_size {
        return Err(ApiError::new(ErrorCode::BodyTooLarge));
    }
    let id = BlobId::random(&mut OsRng);
    let mut token = [0u8; 32];
    OsRng.fill_bytes(&mut token);
    let expires_at = s.clock.now().saturating_add(s.config.blob_ttl.as_secs());
    s.blobs
        .create(
            id,
            length,
            Sha256::digest(token).into(),
            expires_at,
            crate::blob::Reservation {
                owner: sender.to_bytes(),
                total: s.config.max_blob_storage,
                per_owner: s.config.blob_budget_per_key,
            },
        )
        .await
        .inspect_err(|e| {
            if matches!(e, BlobError::OwnerBudget) {
                s.metrics.limited.count(crate::limit::Limit::BlobBudget);
            }
        })?;
    let mut resp = StatusCode::CREATED.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/blobs/{}", id.to_b64())) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&b64::encode(&token)) {
        h.insert(HEADER_BLOB_TOKEN, v);
    }
    h.insert("upload-expires", expires_header(expires_at));
    Ok(with_tus(resp))
}

pub(crate) async fn head(
    State(s): State<Shared>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&raw)?;
    let info = s
        .blobs
        .info(id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound))?;
    let mut resp = StatusCode::OK.into_response();
    let h = resp.headers_mut();
    h.insert("upload-offset", HeaderValue::from(info.offset));
    h.insert("upload-length", HeaderValue::from(info.length));
    h.insert("upload-expires", expires_header(info.expires_at));
    Ok(with_tus(resp))
}

pub(crate) async fn patch(
    State(s): State<Shared>,
    Path(raw): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let headers = req.headers().clone();
    check_version(&headers)?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if ct != Some("application/offset+octet-stream") {
        return Err(ApiError::new(ErrorCode::UnsupportedMediaType));
    }
    let id = parse_id(&raw)?;
    let mut offset = header_u64(&headers, "upload-offset")?;
    let info = s
        .blobs
        .info(id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound))?;
    if offset != info.offset {
        return Err(ApiError::new(ErrorCode::OffsetMismatch));
    }
    let mut body = req.into_body().into_data_stream();
    let mut failed = None;
    // What arrives is gathered into writes of up to WRITE bytes and goes to
    // disk as it comes: memory stays bounded whatever the upload size, and
    // a dropped connection keeps everything that arrived.
    let mut pending = bytes::BytesMut::new();
    loop {
        let next = body.next().await;
        let flush = match &next {
            Some(Ok(b)) => {
                pending.extend_from_slice(b);
                pending.len() >= WRITE
            }
            _ => !pending.is_empty(),
        };
        if flush {
            let data = pending.split().freeze();
            match s.blobs.append(id, offset, data).await {
                Ok(o) => offset = o,
                Err(e) => {
                    failed = Some(ApiError::from(e));
                    break;
                }
            }
        }
        match next {
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    if s.config.fsync {
        s.blobs.sync(id).await?;
    }
    if let Some(e) = failed {
        return Err(e);
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert("upload-offset", HeaderValue::from(offset));
    Ok(with_tus(resp))
}

pub(crate) async fn terminate(
    State(s): State<Shared>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_version(&headers)?;
    let id = parse_id(&raw)?;
    if !s.blobs.delete(id).await? {
        return Err(ApiError::new(ErrorCode::NotFound));
    }
    Ok(with_tus(StatusCode::NO_CONTENT.into_response()))
}

fn parse_range(h: &str, len: u64) -> Option<(u64, u64)> {
    let spec = h.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            (len.saturating_sub(n), len.checked_sub(1)?)
        }
        (a, "") => (a.parse().ok()?, len.checked_sub(1)?),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.min(len.checked_sub(1)?),
        ),
    };
    (start <= end && end < len).then_some((start, end))
}

pub(crate) async fn download(
    State(s): State<Shared>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_id(&raw)?;
    let info = s
        .blobs
        .info(id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound))?;
    let token = headers
        .get(HEADER_BLOB_TOKEN)
        .and_then(|v| v.to_str().ok())
        .and_then(|t| b64::decode(t).ok())
        .unwrap_or_default();
    let given: [u8; 32] = Sha256::digest(&token).into();
    if !bool::from(given.ct_eq(&info.token_hash)) {
        // Same answer as an unknown id: no oracle for ids.
        return Err(ApiError::new(ErrorCode::NotFound));
    }
    if info.offset < info.length {
        return Err(ApiError::new(ErrorCode::UploadIncomplete));
    }
    let (start, end, status) = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None if info.length == 0 => (0, 0, StatusCode::OK),
        None => (0, info.length - 1, StatusCode::OK),
        Some(r) => match parse_range(r, info.length) {
            Some((a, b)) => (a, b, StatusCode::PARTIAL_CONTENT),
            None => {
                let mut resp = ApiError::new(ErrorCode::RangeNotSatisfiable).into_response();
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", info.length)) {
                    resp.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return Ok(resp);
            }
        },
    };
    let total = if info.length == 0 { 0 } else { end - start + 1 };
    let blobs = s.blobs.clone();
    let stream = futures_util::stream::unfold((start, total), move |(at, left)| {
        let blobs = blobs.clone();
        async move {
            if left == 0 {
                return None;
            }
            let n = usize::try_from(left.min(CHUNK as u64)).unwrap_or(CHUNK);
            match blobs.read(id, at, n).await {
                Ok(b) if !b.is_empty() => {
                    let got = b.len() as u64;
                    Some((Ok::<Bytes, std::io::Error>(b), (at + got, left - got)))
                }
                Ok(_) => None,
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), (at, 0))),
            }
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(total));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{}", info.length))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=50-500", 100), Some((50, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-1", 100), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=0-0", 0), None);
    }
}
