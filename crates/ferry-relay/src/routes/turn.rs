//! `POST /v1/turn`: TURN credentials for a holder of a key of a secured
//! mailbox here (its recipient, or the contact who sends to it), named in
//! `ferry-mailbox`. A stranger gets nothing: no TURN server for hire.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use ferry_proto::ErrorCode;
use ferry_proto::api::TurnCredentials;
use rand_core::OsRng;

use crate::error::ApiError;
use crate::server::Shared;

pub(crate) async fn credentials(
    State(s): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<TurnCredentials>, ApiError> {
    let body = super::body_bytes(body)?;
    let Some(turn) = &s.turn else {
        return Err(ApiError::new(ErrorCode::NotFound).detail("this relay carries no calls"));
    };
    let refused = || ApiError::new(ErrorCode::MissingAuth).detail("TURN needs a mailbox signature");
    let mailbox = headers
        .get(ferry_proto::auth::HEADER_MAILBOX)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<ferry_proto::MailboxId>().ok())
        .ok_or_else(refused)?;
    let record = crate::service::lookup(&s, mailbox)
        .await
        .map_err(|_| refused())?;
    // Only a secured mailbox: both of its holders are known.
    let sender = record.sender_key.ok_or_else(refused)?;
    let by_recipient = crate::service::signed_by(
        &s,
        &headers,
        &uri,
        "POST",
        vec![record.recipient_key],
        body.clone(),
    )
    .await;
    match by_recipient {
        Ok(()) => {}
        Err(e) if e.code == ErrorCode::BadSignature => {
            crate::service::signed_by(&s, &headers, &uri, "POST", vec![sender], body).await?;
        }
        Err(e) => return Err(e),
    }
    let issued = crate::turn::issue(
        &turn.settings.secret,
        s.clock.now(),
        turn.settings.ttl.as_secs(),
        &mut OsRng,
    );
    turn.count_issued();
    Ok(Json(TurnCredentials {
        urls: turn.urls.clone(),
        username: issued.username,
        credential: issued.password.to_string(),
        expires_at: issued.expires_at,
        relay_ip: turn.settings.relay_ip,
    }))
}
