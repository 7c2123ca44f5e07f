//! HTTP routes by resource, and the request plumbing they share. Each
//! handler parses, asks [`crate::service`] to authenticate, then acts.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{StatusCode, Uri};
use ferry_proto::api::Message;
use ferry_proto::{ErrorCode, MailboxId};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::store::FetchBatch;

pub(crate) mod canaries;
pub(crate) mod groups;
pub(crate) mod mailboxes;
pub(crate) mod stows;
pub(crate) mod sync;
pub(crate) mod turn;

pub(crate) fn body_bytes(r: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    r.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ErrorCode::BodyTooLarge)
        } else {
            ApiError::new(ErrorCode::BadRequest).detail("unreadable body")
        }
    })
}

pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        // serde_json's message names the problem and position, not values.
        ApiError::new(ErrorCode::MalformedJson).detail(format!(
            "{:?} at column {}",
            e.classify(),
            e.column()
        ))
    })
}

pub(crate) fn parse_id(raw: &str) -> Result<MailboxId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::new(ErrorCode::BadRequest).detail("malformed mailbox id"))
}

pub(crate) fn messages(batch: FetchBatch) -> Vec<Message> {
    batch
        .messages
        .into_iter()
        .map(|m| Message {
            seq: m.seq,
            payload: m.payload.to_vec(),
        })
        .collect()
}

pub(crate) fn serde_urlencoded_query<T: DeserializeOwned>(q: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(
        &Uri::try_from(format!("/?{q}")).map_err(|_| bad_query())?,
    )
    .map(|axum::extract::Query(v)| v)
    .map_err(|_| bad_query())
}

pub(crate) fn bad_query() -> ApiError {
    ApiError::new(ErrorCode::BadRequest).detail("malformed query")
}
