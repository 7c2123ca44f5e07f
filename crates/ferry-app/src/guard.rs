//! Who may talk to the app: the local security of a loopback web service,
//! as Jupyter and Syncthing do it.
//!
//! - The first request must carry the one-time launch token printed by
//!   `ferry app`; it is traded for an HttpOnly, SameSite=Strict cookie and a
//!   redirect that drops the token from the address bar. A used token is
//!   dead at once, and a fresh link is printed for the next browser.
//! - Every request must name exactly the address the app listens on in
//!   `Host` (DNS rebinding gets nowhere), and carry the cookie (another
//!   local process or a web page cannot even reach the unlock page, so it
//!   cannot type wrong passphrases to trigger wipe-after).
//! - Every request that changes state must come from the app's own origin
//!   (`Origin`) and carry the session's CSRF token in `X-CSRF-Token`.
//! - Every answer forbids caching and carries a strict content security
//!   policy (no inline script, no eval, nothing from elsewhere).

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::{OsRng, RngCore as _};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

/// The content security policy of every answer.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob:; media-src 'self' blob:; connect-src 'self'; font-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the launch link answers: a page that goes on to `/` at once.
const LAUNCH_PAGE: &str = "<!DOCTYPE html><meta charset=\"utf-8\">\
     <meta http-equiv=\"refresh\" content=\"0;url=/\"><title>Home</title>";

/// Header a page's script sends with the CSRF token.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// A random token of 32 bytes, base64url.
fn token() -> Zeroizing<String> {
    let mut b = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(&mut *b);
    Zeroizing::new(URL_SAFE_NO_PAD.encode(*b))
}

/// Constant-time equality of two tokens.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Why a request was refused (the answer says no more than the status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `Host` is not exactly the app's address.
    Host,
    /// No valid cookie and no valid launch token.
    Token,
    /// A state-changing request from elsewhere.
    Origin,
    /// A state-changing request without the session's CSRF token.
    Csrf,
}

/// What a request that passed the guard may use.
#[derive(Clone)]
pub(crate) struct Visitor {
    /// The session's CSRF token, for the page to send back.
    pub(crate) csrf: String,
}

/// What the guard decided.
pub(crate) enum Verdict {
    /// Go on to the route.
    Pass(Visitor),
    /// The launch token was good: set this cookie and go to `/`.
    Launch {
        /// The `Set-Cookie` value.
        cookie: String,
    },
    /// Refused.
    Refuse(Refusal),
}

/// The guard's state: the current launch token and the cookie sessions.
pub(crate) struct Guard {
    host: String,
    origin: String,
    cookie_name: String,
    launch: Mutex<Zeroizing<String>>,
    /// Cookie value → CSRF token.
    visitors: Mutex<HashMap<String, String>>,
}

impl Guard {
    /// A guard for an app listening on `host` (`127.0.0.1:PORT`).
    pub(crate) fn new(host: String) -> Self {
        let port = host.rsplit(':').next().unwrap_or("0").to_owned();
        Self {
            origin: format!("http://{host}"),
            host,
            // Cookies are per host, not per port: two apps side by side
            // keep theirs apart.
            cookie_name: format!("ferry_{port}"),
            launch: Mutex::new(token()),
            visitors: Mutex::new(HashMap::new()),
        }
    }

    /// The address to open now (with the current launch token).
    pub(crate) fn launch_url(&self) -> String {
        let t = self.launch.lock().map(|t| t.as_str().to_owned());
        format!("{}/?token={}", self.origin, t.unwrap_or_default())
    }

    /// The app's origin, `http://127.0.0.1:PORT`.
    pub(crate) fn origin(&self) -> &str {
        &self.origin
    }

    /// Decides about one request.
    pub(crate) fn check(
        &self,
        method: &Method,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Verdict {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        if host != Some(self.host.as_str()) {
            return Verdict::Refuse(Refusal::Host);
        }
        if method == Method::GET
            && let Some(given) = query.and_then(launch_token)
        {
            return self.trade(&given);
        }
        // Browsers say where a request comes from. Another loopback port
        // is the same *site* (cookies are not kept apart by port), so only
        // the app's own pages, or a person typing the address, may use
        // the cookie; a page elsewhere cannot even make it count as use.
        let from = headers.get("sec-fetch-site").and_then(|h| h.to_str().ok());
        if !matches!(from, None | Some("same-origin" | "none")) {
            return Verdict::Refuse(Refusal::Origin);
        }
        let Some(csrf) = self.visitor(headers) else {
            return Verdict::Refuse(Refusal::Token);
        };
        if method != Method::GET && method != Method::HEAD {
            let origin = headers.get(header::ORIGIN).and_then(|h| h.to_str().ok());
            if origin != Some(self.origin.as_str()) {
                return Verdict::Refuse(Refusal::Origin);
            }
            let sent = headers.get(CSRF_HEADER).and_then(|h| h.to_str().ok());
            if !sent.is_some_and(|s| same(s, &csrf)) {
                return Verdict::Refuse(Refusal::Csrf);
            }
        }
        Verdict::Pass(Visitor { csrf })
    }

    /// Trades a launch token for a cookie; the token dies either way if
    /// it was right.
    fn trade(&self, given: &str) -> Verdict {
        let Ok(mut launch) = self.launch.lock() else {
            return Verdict::Refuse(Refusal::Token);
        };
        if !same(given, &launch) {
            return Verdict::Refuse(Refusal::Token);
        }
        *launch = token();
        drop(launch);
        let cookie = token();
        let csrf = token();
        if let Ok(mut v) = self.visitors.lock() {
            // One browser at a time: a newly launched one ends the others'
            // access (someone who traded a link first loses it as soon as
            // the person opens the next one).
            v.clear();
            v.insert(cookie.as_str().to_owned(), csrf.as_str().to_owned());
        }
        Verdict::Launch {
            cookie: format!(
                "{}={}; Path=/; HttpOnly; SameSite=Strict",
                self.cookie_name,
                cookie.as_str()
            ),
        }
    }

    /// The CSRF token of the request's cookie session, if it has one.
    fn visitor(&self, headers: &HeaderMap) -> Option<String> {
        let prefix = format!("{}=", self.cookie_name);
        let visitors = self.visitors.lock().ok()?;
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|h| h.to_str().ok())
            .flat_map(|h| h.split(';'))
            .filter_map(|c| c.trim().strip_prefix(prefix.as_str()))
            .find_map(|value| {
                visitors
                    .iter()
                    .find(|(k, _)| same(k, value))
                    .map(|(_, csrf)| csrf.clone())
            })
    }
}

/// The `token` parameter of a query string.
fn launch_token(query: &str) -> Option<String> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .map(str::to_owned)
}

/// The headers every answer carries.
pub(crate) fn harden(headers: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(headers, header::CONTENT_SECURITY_POLICY, CSP);
    set(headers, header::CACHE_CONTROL, "no-store");
    set(headers, header::PRAGMA, "no-cache");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "permissions-policy",
        HeaderValue::from_static(
            "camera=(self), microphone=(self), geolocation=(), interest-cohort=()",
        ),
    );
}

/// The answer to a refused request: a status and a plain sentence, in
/// both languages (the refused visitor has no language yet).
pub(crate) fn refused(r: Refusal) -> Response<Body> {
    let (status, text) = match r {
        Refusal::Host => (
            StatusCode::MISDIRECTED_REQUEST,
            "This address is not the app's. / 앱의 주소가 아닙니다.",
        ),
        Refusal::Token => (
            StatusCode::FORBIDDEN,
            "Open the link that `ferry app` printed last. / `ferry app`이 마지막으로 출력한 링크를 여세요.",
        ),
        Refusal::Origin | Refusal::Csrf => (
            StatusCode::FORBIDDEN,
            "Refused: this request did not come from the app's page. / 거부됨: 앱 페이지에서 온 요청이 아닙니다.",
        ),
    };
    let mut resp = Response::new(Body::from(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// The middleware: every request passes here first.
pub(crate) async fn middleware(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<crate::state::AppState>>,
    mut req: Request<Body>,
    next: axum::middleware::Next,
) -> Response<Body> {
    let verdict = state
        .guard
        .check(req.method(), req.uri().query(), req.headers());
    let mut resp = match verdict {
        Verdict::Refuse(r) => refused(r),
        Verdict::Launch { cookie } => {
            // A fresh link for the next browser; this one is dead.
            state.announce_link();
            // The page moves on to `/` itself (a meta refresh, no script):
            // that request then comes from the app's own origin, whereas
            // after a redirect it would still count as coming from
            // wherever the link was opened.
            let mut resp = Response::new(Body::from(LAUNCH_PAGE));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Verdict::Pass(visitor) => {
            req.extensions_mut().insert(visitor);
            next.run(req).await
        }
    };
    harden(resp.headers_mut());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                *k,
                HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("")),
            );
        }
        h
    }

    fn launched(g: &Guard) -> (String, String) {
        let url = g.launch_url();
        let token = url.split("token=").nth(1).unwrap_or_default().to_owned();
        let h = headers(&[("host", "127.0.0.1:4000")]);
        let Verdict::Launch { cookie } = g.check(&Method::GET, Some(&format!("token={token}")), &h)
        else {
            panic!("the launch token was refused");
        };
        let pair = cookie.split(';').next().unwrap_or_default().to_owned();
        let h = headers(&[("host", "127.0.0.1:4000"), ("cookie", &pair)]);
        let Verdict::Pass(v) = g.check(&Method::GET, None, &h) else {
            panic!("the cookie was refused");
        };
        (pair, v.csrf)
    }

    #[test]
    fn a_launch_token_works_once() {
        let g = Guard::new("127.0.0.1:4000".into());
        let url = g.launch_url();
        let token = url.split("token=").nth(1).unwrap_or_default().to_owned();
        let _ = launched_with(&g, &token);
        let h = headers(&[("host", "127.0.0.1:4000")]);
        assert!(matches!(
            g.check(&Method::GET, Some(&format!("token={token}")), &h),
            Verdict::Refuse(Refusal::Token)
        ));
        assert_ne!(g.launch_url(), url, "a fresh link replaces the used one");
    }

    fn launched_with(g: &Guard, token: &str) -> bool {
        let h = headers(&[("host", "127.0.0.1:4000")]);
        matches!(
            g.check(&Method::GET, Some(&format!("token={token}")), &h),
            Verdict::Launch { .. }
        )
    }

    #[test]
    fn writes_need_origin_and_csrf() {
        let g = Guard::new("127.0.0.1:4000".into());
        let (cookie, csrf) = launched(&g);
        let base = [("host", "127.0.0.1:4000"), ("cookie", cookie.as_str())];
        let with = |extra: &[(&'static str, &str)]| {
            let mut all = base.to_vec();
            all.extend_from_slice(extra);
            g.check(&Method::POST, None, &headers(&all))
        };
        assert!(matches!(with(&[]), Verdict::Refuse(Refusal::Origin)));
        assert!(matches!(
            with(&[("origin", "http://127.0.0.1:4001"), (CSRF_HEADER, &csrf)]),
            Verdict::Refuse(Refusal::Origin)
        ));
        assert!(matches!(
            with(&[("origin", "http://127.0.0.1:4000")]),
            Verdict::Refuse(Refusal::Csrf)
        ));
        assert!(matches!(
            with(&[("origin", "http://127.0.0.1:4000"), (CSRF_HEADER, "x")]),
            Verdict::Refuse(Refusal::Csrf)
        ));
        assert!(matches!(
            with(&[("origin", "http://127.0.0.1:4000"), (CSRF_HEADER, &csrf)]),
            Verdict::Pass(_)
        ));
    }

    #[test]
    fn requests_from_other_sites_and_ports_are_refused_even_for_reading() {
        let g = Guard::new("127.0.0.1:4000".into());
        let (cookie, _) = launched(&g);
        for site in ["same-site", "cross-site", "weird"] {
            let h = headers(&[
                ("host", "127.0.0.1:4000"),
                ("cookie", &cookie),
                ("sec-fetch-site", site),
            ]);
            assert!(
                matches!(
                    g.check(&Method::GET, None, &h),
                    Verdict::Refuse(Refusal::Origin)
                ),
                "{site}"
            );
        }
        for site in ["same-origin", "none"] {
            let h = headers(&[
                ("host", "127.0.0.1:4000"),
                ("cookie", &cookie),
                ("sec-fetch-site", site),
            ]);
            assert!(
                matches!(g.check(&Method::GET, None, &h), Verdict::Pass(_)),
                "{site}"
            );
        }
    }

    #[test]
    fn a_new_browser_ends_the_previous_ones_access() {
        let g = Guard::new("127.0.0.1:4000".into());
        let (first, _) = launched(&g);
        let (_second, _) = launched(&g);
        let h = headers(&[("host", "127.0.0.1:4000"), ("cookie", &first)]);
        assert!(matches!(
            g.check(&Method::GET, None, &h),
            Verdict::Refuse(Refusal::Token)
        ));
    }

    #[test]
    fn host_must_be_exact() {
        let g = Guard::new("127.0.0.1:4000".into());
        let (cookie, _) = launched(&g);
        for host in [
            ":4000",
            "localhost:4000",
            "127.0.0.1",
            "127.0.0.1:40000",
            "evil.test",
        ] {
            let h = headers(&[("host", host), ("cookie", &cookie)]);
            assert!(
                matches!(
                    g.check(&Method::GET, None, &h),
                    Verdict::Refuse(Refusal::Host)
                ),
                "{host}"
            );
        }
    }
}
