//! Attachments: sending a file picked in the page, showing photos, videos
//! and voice notes inline (decrypted into memory, served with Range), and
//! the explicit "save to device" export.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use zeroize::Zeroizing;

use super::{Req, St, fail, on_contact, session, with_contact};
use crate::upload::{self, MAX_UPLOAD};

/// Sends the file of a multipart form (fields `file`, `view_once`).
pub(crate) async fn send_file(
    State(state): St,
    Path(id): Path<u64>,
    req: Req,
    mut form: Multipart,
) -> Response {
    let lang = req.cx.lang;
    let mut picked = None;
    let mut view_once = false;
    loop {
        match form.next_field().await {
            Ok(Some(field)) => match field.name() {
                Some("file") => {
                    let name = field.file_name().unwrap_or("file").to_owned();
                    let mime = field.content_type().map(str::to_owned);
                    match field.bytes().await {
                        Ok(b) if !b.is_empty() && b.len() <= MAX_UPLOAD => {
                            picked = Some((name, mime, Zeroizing::new(b.to_vec())));
                        }
                        Ok(b) if b.is_empty() => return fail(lang, "empty"),
                        _ => return fail(lang, "file_too_large"),
                    }
                }
                Some("view_once") => view_once = true,
                _ => {}
            },
            Ok(None) => break,
            Err(_) => return fail(lang, "file_too_large"),
        }
    }
    let Some((name, mime, bytes)) = picked else {
        return fail(lang, "empty");
    };
    let (source, meta) = match upload::prepare(&name, mime.as_deref(), bytes) {
        Ok(p) => p,
        Err(code) => return fail(lang, code),
    };
    send(&state, id, lang, source, meta, view_once).await
}

/// Sends a prepared attachment to contact `id`.
async fn send(
    state: &crate::state::AppState,
    id: u64,
    lang: crate::i18n::Lang,
    source: ferry_client::transfer::Source,
    meta: ferry_client::FileMeta,
    view_once: bool,
) -> Response {
    on_contact(
        state,
        id,
        lang,
        Box::new(move |s, alias| {
            Box::pin(async move {
                s.send_attachment(&alias, source, meta, view_once, false, &mut |_| {})
                    .await
                    .map(|_| ())
            })
        }),
    )
    .await
}

/// Sends a voice note recorded in the page (field `voice`: 16-bit WAV),
/// encoded with Opus here, in memory.
pub(crate) async fn send_voice(
    State(state): St,
    Path(id): Path<u64>,
    req: Req,
    mut form: Multipart,
) -> Response {
    let lang = req.cx.lang;
    let mut wav = None;
    while let Ok(Some(field)) = form.next_field().await {
        if field.name() == Some("voice") {
            match field.bytes().await {
                Ok(b) if b.len() <= MAX_UPLOAD => wav = Some(Zeroizing::new(b.to_vec())),
                _ => return fail(lang, "file_too_large"),
            }
        }
    }
    let Some(wav) = wav else {
        return fail(lang, "empty");
    };
    let mut note = match ferry_media::wav_to_ogg_opus(std::io::Cursor::new(&wav[..])) {
        Ok(n) => n,
        Err(_) => return fail(lang, "not_voice"),
    };
    drop(wav);
    let meta = ferry_client::FileMeta {
        name: "voice.ogg".to_owned(),
        mime: Some("audio/ogg".to_owned()),
        kind: ferry_client::AttachmentKind::Voice,
        duration_ms: Some(note.duration_ms),
    };
    let source = ferry_client::transfer::Source::Memory(Arc::new(Zeroizing::new(std::mem::take(
        &mut note.ogg,
    ))));
    send(&state, id, lang, source, meta, false).await
}

/// The decrypted attachment of message `msg`, from the app's memory or
/// through the session.
async fn media(
    state: &crate::state::AppState,
    id: u64,
    msg: String,
) -> Result<Arc<ferry_client::Media>, Response> {
    // Locked: nothing is served, not even from memory.
    session(state)?;
    let key = (id, msg.clone());
    let generation = {
        let v = state.view();
        if let Some(m) = v.media.get(&key) {
            return Ok(Arc::clone(m));
        }
        v.generation
    };
    let got = with_contact(
        state,
        id,
        false,
        Box::new(move |s, alias| Box::pin(async move { s.open_media(&alias, &msg).await })),
    )
    .await?;
    match got {
        Ok(m) => {
            let m = Arc::new(m);
            state.view().keep_media(generation, key, Arc::clone(&m));
            Ok(m)
        }
        Err(e) => Err((StatusCode::NOT_FOUND, e.code()).into_response()),
    }
}

/// A response body that wipes its bytes once sent.
fn secret_body(bytes: &[u8]) -> Body {
    Body::from(bytes::Bytes::from_owner(Zeroizing::new(bytes.to_vec())))
}

/// `bytes=A-B`, `bytes=A-` or `bytes=-N` over `len` bytes.
fn range(headers: &HeaderMap, len: usize) -> Option<Result<(usize, usize), ()>> {
    let spec = headers.get(header::RANGE)?.to_str().ok()?;
    let Some(spec) = spec.strip_prefix("bytes=") else {
        return Some(Err(()));
    };
    if spec.contains(',') || len == 0 {
        return Some(Err(()));
    }
    let (a, b) = spec.split_once('-')?;
    let r = match (a.trim(), b.trim()) {
        ("", n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .map(|n| (len.saturating_sub(n), len - 1)),
        (a, "") => a
            .parse::<usize>()
            .ok()
            .filter(|a| *a < len)
            .map(|a| (a, len - 1)),
        (a, b) => match (a.parse::<usize>(), b.parse::<usize>()) {
            (Ok(a), Ok(b)) if a <= b && a < len => Some((a, b.min(len - 1))),
            _ => None,
        },
    };
    Some(r.ok_or(()))
}

/// `/c/{id}/media/{msg}`: inline, with Range.
pub(crate) async fn show(
    State(state): St,
    Path((id, msg)): Path<(u64, String)>,
    headers: HeaderMap,
) -> Response {
    match media(&state, id, msg).await {
        Ok(m) => serve(&m, &headers),
        Err(r) => r,
    }
}

/// Opens a view-once photo, video or voice note: decrypted into memory,
/// destroyed in the vault in the same step, shown once under a random
/// address until closed (or the session locks).
pub(crate) async fn open_once(
    State(state): St,
    Path(id): Path<u64>,
    req: Req,
    axum::Form(f): axum::Form<OnceForm>,
) -> Response {
    let got = with_contact(
        &state,
        id,
        true,
        Box::new(move |s, alias| Box::pin(async move { s.open_media_once(&alias, &f.id).await })),
    )
    .await;
    let m = match got {
        Ok(Ok(m)) => Arc::new(m),
        Ok(Err(e)) => return super::fail_with(req.cx.lang, &e),
        Err(r) => return r,
    };
    let token = {
        use rand_core::RngCore as _;
        let mut b = [0u8; 16];
        rand_core::OsRng.fill_bytes(&mut b);
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    };
    let kind = upload::inline_type(m.mime.as_deref()).unwrap_or("");
    let voice = m.kind == ferry_client::AttachmentKind::Voice;
    state.view().once = Some((token.clone(), m));
    let _ = state.notices.send(crate::state::Notice::Changed);
    super::html(crate::pages::conversation::revealed_media(
        &req.cx,
        &format!("/c/{id}"),
        &token,
        kind,
        voice,
    ))
}

#[derive(serde::Deserialize)]
pub(crate) struct OnceForm {
    id: String,
}

/// `/c/{id}/once/{token}`: the view-once attachment being shown.
pub(crate) async fn show_once(
    State(state): St,
    Path((_id, token)): Path<(u64, String)>,
    headers: HeaderMap,
) -> Response {
    let m = state
        .view()
        .once
        .as_ref()
        .filter(|(t, _)| *t == token)
        .map(|(_, m)| Arc::clone(m));
    match m {
        Some(m) if state.session().is_some() => serve(&m, &headers),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Closes the view-once attachment: it is gone for good.
pub(crate) async fn close_once(State(state): St) -> Response {
    state.view().once = None;
    super::html(maud::html! {})
}

/// Serves decrypted bytes, whole or a Range of them.
fn serve(m: &ferry_client::Media, headers: &HeaderMap) -> Response {
    let kind = upload::inline_type(m.mime.as_deref()).unwrap_or("application/octet-stream");
    let len = m.bytes.len();
    let (status, from, to) = match range(headers, len) {
        None => (StatusCode::OK, 0, len.saturating_sub(1)),
        Some(Ok((a, b))) => (StatusCode::PARTIAL_CONTENT, a, b),
        Some(Err(())) => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let body = if len == 0 {
        Body::empty()
    } else {
        secret_body(&m.bytes[from..=to])
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline"),
    );
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {from}-{to}/{len}"))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    r
}

/// `/c/{id}/export/{msg}`: the file, to be saved outside Ferry (the page
/// says so before the link).
pub(crate) async fn export(State(state): St, Path((id, msg)): Path<(u64, String)>) -> Response {
    let m = match media(&state, id, msg).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let ascii: String = m
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut r = Response::new(secret_body(&m.bytes));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{ascii}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(v: &str, len: usize) -> Option<Result<(usize, usize), ()>> {
        let mut h = HeaderMap::new();
        h.insert(
            header::RANGE,
            HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("")),
        );
        range(&h, len)
    }

    #[test]
    fn ranges() {
        assert_eq!(r("bytes=0-99", 1000), Some(Ok((0, 99))));
        assert_eq!(r("bytes=900-", 1000), Some(Ok((900, 999))));
        assert_eq!(r("bytes=-100", 1000), Some(Ok((900, 999))));
        assert_eq!(r("bytes=990-2000", 1000), Some(Ok((990, 999))));
        assert_eq!(r("bytes=1000-", 1000), Some(Err(())));
        assert_eq!(r("bytes=5-1", 1000), Some(Err(())));
        assert_eq!(r("bytes=0-1,5-6", 1000), Some(Err(())));
        assert_eq!(r("items=0-1", 1000), Some(Err(())));
        assert_eq!(r("bytes=-0", 1000), Some(Err(())));
        assert_eq!(range(&HeaderMap::new(), 10), None);
    }
}
