//! The script, the style sheet and the icon, compiled into the binary.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

const APP_JS: &str = include_str!("../../assets/app.js");
const APP_CSS: &str = include_str!("../../assets/app.css");
const CALL_JS: &str = include_str!("../../assets/call.js");
const RECORDER_JS: &str = include_str!("../../assets/recorder.js");
const ICON: &str = include_str!("../../assets/icon.svg");

/// `/assets/{name}`.
pub(crate) async fn asset(Path(name): Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "call.js" => (CALL_JS, "text/javascript; charset=utf-8"),
        "recorder.js" => (RECORDER_JS, "text/javascript; charset=utf-8"),
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        "icon.svg" => (ICON, "image/svg+xml"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}
