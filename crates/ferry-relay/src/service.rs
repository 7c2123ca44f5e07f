//! The relay's service layer, below every route: request authentication,
//! mailbox lookup, storing and pushing, canary release. Routes (HTTP, tus,
//! WebSocket) call into it; it never calls a route.

use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::body::Bytes;
use axum::http::{HeaderMap, Uri};
use ferry_proto::auth::{HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, RequestAuth};
use ferry_proto::{ErrorCode, MailboxId, PublicKey, Seq};

use crate::error::ApiError;
use crate::push::Pushed;
use crate::server::Shared;
use crate::store::{FetchLimits, MailboxRecord, Quota};

/// Signatures checked inline; above this many the check moves off the
/// async workers.
const INLINE_VERIFY: usize = 4;

pub(crate) fn request_auth(headers: &HeaderMap) -> Result<RequestAuth, ApiError> {
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

pub(crate) fn signed_path(uri: &Uri) -> &str {
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
    let verify = move || {
        auth.verify(&keys, method, &path, &body)
            .map(|()| (auth, keys))
    };
    let verified = if many {
        tokio::task::spawn_blocking(verify)
            .await
            .map_err(|_| ApiError::new(ErrorCode::Internal).detail("verify task failed"))?
    } else {
        verify()
    };
    let (auth, keys) =
        verified.map_err(|e| ApiError::new(ErrorCode::BadSignature).detail(e.to_string()))?;
    let now = s.clock.now();
    s.replay
        .remember(auth.timestamp, &auth.nonce, now)
        .map_err(|e| ApiError::replay(e, now))?;
    // Charged only for fresh requests the keys really signed (after the
    // signatures verify and the nonce is new), so neither a forger nor a
    // replayer can spend another key's allowance; all keys or none.
    let keys: Vec<[u8; 32]> = keys.iter().map(PublicKey::to_bytes).collect();
    if !s.per_key.take_each(&keys, std::time::Instant::now()) {
        s.metrics.limited.count(crate::limit::Limit::Key);
        // Slows the flood itself, as the connection limit does.
        tokio::time::sleep(crate::limit::REFUSAL_DELAY).await;
        return Err(ApiError::new(ErrorCode::RateLimited).detail("key rate"));
    }
    Ok(())
}

/// On a relay with an access token, creating a mailbox or a group needs it.
pub(crate) fn check_access_token(s: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    use subtle::ConstantTimeEq as _;
    if let Some(expected) = &s.config.access_token {
        let given = headers
            .get(ferry_proto::auth::HEADER_ACCESS_TOKEN)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !bool::from(given.ct_eq(expected.as_bytes())) {
            return Err(ApiError::new(ErrorCode::AccessTokenRequired));
        }
    }
    Ok(())
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
