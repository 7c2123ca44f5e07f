//! Errors as clients see them (status + stable code) and as the log sees
//! them (detail, free of identifiers).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferry_proto::ErrorCode;
use ferry_proto::api::ErrorBody;

use crate::replay::ReplayError;
use crate::store::StoreError;

/// An error answer.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) code: ErrorCode,
    pub(crate) server_time: Option<u64>,
    /// Tries left (`wrong_pin`).
    pub(crate) left: Option<u32>,
    /// The group's epoch (`stale_epoch`, `commit_conflict`).
    pub(crate) epoch: Option<u64>,
    /// For the log only; must not contain ids, addresses or sizes.
    pub(crate) detail: Option<String>,
}

impl ApiError {
    pub(crate) fn new(code: ErrorCode) -> Self {
        Self {
            code,
            server_time: None,
            left: None,
            epoch: None,
            detail: None,
        }
    }

    pub(crate) fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }

    pub(crate) fn replay(e: ReplayError, now: u64) -> Self {
        match e {
            ReplayError::Stale => Self {
                code: ErrorCode::StaleTimestamp,
                server_time: Some(now),
                left: None,
                epoch: None,
                detail: None,
            },
            ReplayError::Replayed => Self::new(ErrorCode::ReplayedRequest),
            ReplayError::Busy => Self::new(ErrorCode::Unavailable).detail("replay cache full"),
        }
    }
}

/// HTTP status for each code.
pub(crate) fn status_of(code: ErrorCode) -> StatusCode {
    use ErrorCode as E;
    match code {
        E::MalformedJson
        | E::BadRequest
        | E::PayloadSizeNotBucket
        | E::TooManyMailboxes
        | E::BadReleaseTime => StatusCode::BAD_REQUEST,
        E::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        E::MissingAuth
        | E::BadSignature
        | E::StaleTimestamp
        | E::ReplayedRequest
        | E::AccessTokenRequired => StatusCode::UNAUTHORIZED,
        E::MailboxNotSecured | E::NotAuthorized | E::WrongPin => StatusCode::FORBIDDEN,
        E::UnknownMailbox | E::NotFound | E::UnknownCanary | E::NoStow => StatusCode::NOT_FOUND,
        E::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        E::MailboxExists | E::SenderKeyAlreadySet | E::CanaryExists => StatusCode::CONFLICT,
        E::MailboxFull | E::RateLimited | E::TooManyCanaries | E::BlobBudgetExceeded => {
            StatusCode::TOO_MANY_REQUESTS
        }
        E::OffsetMismatch
        | E::UploadIncomplete
        | E::StowConflict
        | E::StowLeased
        | E::StowLeaseLost
        | E::StaleEpoch
        | E::CommitConflict => StatusCode::CONFLICT,
        E::BlobStorageFull => StatusCode::INSUFFICIENT_STORAGE,
        E::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        E::TusVersionUnsupported => StatusCode::PRECONDITION_FAILED,
        E::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
        E::Unavailable | E::TooManyConnections => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnknownMailbox => Self::new(ErrorCode::UnknownMailbox),
            StoreError::MailboxExists => Self::new(ErrorCode::MailboxExists),
            StoreError::SenderKeyAlreadySet => Self::new(ErrorCode::SenderKeyAlreadySet),
            StoreError::MailboxFull => Self::new(ErrorCode::MailboxFull),
            StoreError::CanaryExists => Self::new(ErrorCode::CanaryExists),
            StoreError::TooManyCanaries => Self::new(ErrorCode::TooManyCanaries),
            StoreError::StowConflict { .. } => Self::new(ErrorCode::StowConflict),
            StoreError::StowLeaseLost => Self::new(ErrorCode::StowLeaseLost),
            StoreError::StaleEpoch { current } => Self {
                epoch: Some(current),
                ..Self::new(ErrorCode::StaleEpoch)
            },
            StoreError::CommitConflict { current } => Self {
                epoch: Some(current),
                ..Self::new(ErrorCode::CommitConflict)
            },
            StoreError::NotAuthorized => {
                Self::new(ErrorCode::NotAuthorized).detail("not a key of the group for this")
            }
            StoreError::NoAdminLeft => {
                Self::new(ErrorCode::BadRequest).detail("a commit may not remove every admin key")
            }
            StoreError::Closed => Self::new(ErrorCode::Unavailable).detail("store closed"),
            other => Self::new(ErrorCode::Internal).detail(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(self.code);
        if status.is_server_error() {
            tracing::warn!(
                code = self.code.as_str(),
                detail = self.detail.as_deref(),
                "request failed"
            );
        } else {
            tracing::debug!(
                code = self.code.as_str(),
                detail = self.detail.as_deref(),
                "request refused"
            );
        }
        let mut resp = (
            status,
            Json(ErrorBody {
                code: self.code,
                server_time: self.server_time,
                left: self.left,
                epoch: self.epoch,
            }),
        )
            .into_response();
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        resp.extensions_mut().insert(self.code);
        resp
    }
}
