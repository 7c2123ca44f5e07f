//! The app's local security, tried as another local process or a hostile
//! web page would: raw HTTP requests with a wrong or missing launch token,
//! a wrong `Host` (DNS rebinding, `Host: :PORT`), a wrong or missing
//! `Origin`, a missing CSRF token. Each is refused and changes nothing on
//! disk; the same request done right works (the positive control).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use ferry_app::{App, AppConfig};
use ferry_client::LockLimits;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One raw HTTP/1.1 request; `head` lines are sent exactly as given.
async fn raw(addr: &str, method: &str, path: &str, head: &[String], body: &str) -> Answer {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for h in head {
        req.push_str(h);
        req.push_str("\r\n");
    }
    if !body.is_empty() || method == "POST" {
        req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// Every file in the profile directory with its bytes.
fn snapshot(home: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir(home) {
        for e in rd.flatten() {
            m.insert(
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap_or_default(),
            );
        }
    }
    m
}

struct Running {
    addr: String,
    links: tokio::sync::mpsc::UnboundedReceiver<String>,
    first: String,
    _dir: tempfile::TempDir,
    home: std::path::PathBuf,
}

async fn start() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("profile");
    let mut app = App::bind(AppConfig {
        home: home.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        limits: LockLimits::default(),
    })
    .await
    .unwrap();
    let addr = app.origin().trim_start_matches("http://").to_owned();
    let mut links = app.take_links();
    let first = links.recv().await.unwrap();
    tokio::spawn(app.serve(std::future::pending()));
    Running {
        addr,
        links,
        first,
        _dir: dir,
        home,
    }
}

fn token_of(link: &str) -> String {
    link.split("token=").nth(1).unwrap().to_owned()
}

/// Trades the launch token; returns the cookie pair and the CSRF token.
async fn launch(r: &Running, link: &str) -> (String, String) {
    let host = format!("Host: {}", r.addr);
    let a = raw(
        &r.addr,
        "GET",
        &format!("/?token={}", token_of(link)),
        std::slice::from_ref(&host),
        "",
    )
    .await;
    assert_eq!(a.status, 303, "the launch token is traded");
    assert_eq!(
        a.header("location"),
        Some("/"),
        "the redirect drops the token"
    );
    let set = a.header("set-cookie").unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_owned();
    let page = raw(
        &r.addr,
        "GET",
        "/",
        &[host, format!("Cookie: {cookie}")],
        "",
    )
    .await;
    assert_eq!(page.status, 200);
    let csrf = page
        .body
        .split("name=\"csrf\" content=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    (cookie, csrf)
}

fn setup_body() -> String {
    "relay=http%3A%2F%2F127.0.0.1%3A9&passphrase=correct+horse+1&repeat=correct+horse+1&proxy="
        .into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_the_launch_token_or_cookie_are_refused_and_change_nothing() {
    let mut r = start().await;
    let host = format!("Host: {}", r.addr);
    for (path, head) in [
        ("/", vec![host.clone()]),
        ("/?token=wrong", vec![host.clone()]),
        ("/?token=", vec![host.clone()]),
        ("/", vec![host.clone(), "Cookie: ferry_1=forged".into()]),
        ("/assets/app.js", vec![host.clone()]),
        ("/events", vec![host.clone()]),
    ] {
        let a = raw(&r.addr, "GET", path, &head, "").await;
        assert_eq!(a.status, 403, "GET {path} {head:?}");
        assert!(a.header("set-cookie").is_none());
        assert!(!a.body.contains("csrf"), "no page behind the guard");
    }
    // Creating a profile (or typing passphrases) without the cookie.
    let origin = format!("Origin: http://{}", r.addr);
    let a = raw(
        &r.addr,
        "POST",
        "/setup",
        &[host.clone(), origin.clone()],
        &setup_body(),
    )
    .await;
    assert_eq!(a.status, 403);
    assert!(!r.home.exists(), "no profile was created");
    // Wrong tokens did not burn the right one: it still works, once.
    let (_cookie, _) = launch(&r, &r.first.clone()).await;
    let again = raw(
        &r.addr,
        "GET",
        &format!("/?token={}", token_of(&r.first)),
        &[host],
        "",
    )
    .await;
    assert_eq!(again.status, 403, "a used launch token is dead");
    // A fresh link was printed for the next browser, and it works.
    let fresh = r.links.recv().await.unwrap();
    assert_ne!(fresh, r.first);
    launch(&r, &fresh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_host_is_refused_even_with_the_right_token() {
    let r = start().await;
    let port = r.addr.rsplit(':').next().unwrap().to_owned();
    let token = token_of(&r.first);
    for host in [
        format!("Host: :{port}"),
        format!("Host: localhost:{port}"),
        format!("Host: evil.example:{port}"),
        "Host: 127.0.0.1".to_owned(),
        format!("Host: 127.0.0.2:{port}"),
        "Host: evil.example".to_owned(),
    ] {
        let a = raw(
            &r.addr,
            "GET",
            &format!("/?token={token}"),
            std::slice::from_ref(&host),
            "",
        )
        .await;
        assert!(a.status >= 400, "{host}: {}", a.status);
        assert!(a.header("set-cookie").is_none(), "{host}: no cookie");
    }
    // No Host at all.
    let a = raw(&r.addr, "GET", &format!("/?token={token}"), &[], "").await;
    assert!(a.status >= 400 && a.header("set-cookie").is_none());
    // The token survived all of that.
    launch(&r, &r.first).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_need_the_apps_origin_and_the_csrf_token() {
    let r = start().await;
    let (cookie, csrf) = launch(&r, &r.first).await;
    let host = format!("Host: {}", r.addr);
    let cookie = format!("Cookie: {cookie}");
    let good_origin = format!("Origin: http://{}", r.addr);
    let good_csrf = format!("X-CSRF-Token: {csrf}");
    let port = r.addr.rsplit(':').next().unwrap();
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("no Origin", vec![good_csrf.clone()]),
        (
            "other origin",
            vec![
                format!("Origin: http://evil.example:{port}"),
                good_csrf.clone(),
            ],
        ),
        (
            "other port",
            vec!["Origin: http://127.0.0.1:1".into(), good_csrf.clone()],
        ),
        (
            "null origin",
            vec!["Origin: null".into(), good_csrf.clone()],
        ),
        ("no CSRF token", vec![good_origin.clone()]),
        (
            "wrong CSRF token",
            vec![good_origin.clone(), "X-CSRF-Token: nope".into()],
        ),
        ("CSRF in the body only", vec![good_origin.clone()]),
    ];
    for (what, extra) in cases {
        let mut head = vec![host.clone(), cookie.clone()];
        head.extend(extra);
        let body = if what == "CSRF in the body only" {
            format!("{}&csrf={csrf}", setup_body())
        } else {
            setup_body()
        };
        let before = snapshot(&r.home);
        let a = raw(&r.addr, "POST", "/setup", &head, &body).await;
        assert_eq!(a.status, 403, "{what}");
        assert_eq!(snapshot(&r.home), before, "{what}: nothing changed on disk");
        assert!(!r.home.exists(), "{what}: no profile");
    }
    // Positive control: the same request done right creates the profile.
    let a = raw(
        &r.addr,
        "POST",
        "/setup",
        &[host, cookie, good_origin, good_csrf],
        &setup_body(),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.header("x-ferry-go"), Some("/"));
    assert!(ferry_client::profile_exists(&r.home));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_local_process_cannot_type_passphrases_to_trigger_wipe_after() {
    let r = start().await;
    let (cookie, csrf) = launch(&r, &r.first).await;
    let host = format!("Host: {}", r.addr);
    let origin = format!("Origin: http://{}", r.addr);
    let ok = [
        host.clone(),
        format!("Cookie: {cookie}"),
        origin.clone(),
        format!("X-CSRF-Token: {csrf}"),
    ];
    assert_eq!(
        raw(&r.addr, "POST", "/setup", &ok, &setup_body())
            .await
            .status,
        200
    );
    let a = raw(&r.addr, "POST", "/safety/wipe-after", &ok, "attempts=3").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(raw(&r.addr, "POST", "/lock", &ok, "").await.status, 200);
    // Wait for the session to lock and even out its files.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = snapshot(&r.home);
    // Without the cookie, wrong passphrases never reach the vault.
    for _ in 0..5 {
        let a = raw(
            &r.addr,
            "POST",
            "/unlock",
            &[host.clone(), origin.clone()],
            "passphrase=wrong+guess+1",
        )
        .await;
        assert_eq!(a.status, 403);
    }
    assert_eq!(snapshot(&r.home), before, "no attempt was counted");
    // Positive control: the page itself counts a wrong passphrase.
    let a = raw(&r.addr, "POST", "/unlock", &ok, "passphrase=wrong+guess+1").await;
    assert_eq!(a.status, 422, "{}", a.body);
    assert!(a.body.contains("passphrase"), "{}", a.body);
    assert_ne!(snapshot(&r.home), before, "the attempt was counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_forbids_caching_and_inline_script() {
    let r = start().await;
    let (cookie, _) = launch(&r, &r.first).await;
    let host = format!("Host: {}", r.addr);
    let cookie = format!("Cookie: {cookie}");
    let answers = vec![
        raw(&r.addr, "GET", "/", &[host.clone(), cookie.clone()], "").await,
        raw(
            &r.addr,
            "GET",
            "/assets/app.js",
            &[host.clone(), cookie.clone()],
            "",
        )
        .await,
        raw(
            &r.addr,
            "GET",
            "/assets/app.css",
            &[host.clone(), cookie.clone()],
            "",
        )
        .await,
        raw(
            &r.addr,
            "GET",
            "/nowhere",
            &[host.clone(), cookie.clone()],
            "",
        )
        .await,
        raw(&r.addr, "GET", "/", std::slice::from_ref(&host), "").await,
        raw(&r.addr, "GET", "/", &["Host: :1".to_owned()], "").await,
    ];
    for a in answers {
        assert_eq!(
            a.header("cache-control"),
            Some("no-store"),
            "status {}",
            a.status
        );
        let csp = a.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    }
    let page = raw(&r.addr, "GET", "/", &[host, cookie], "").await;
    assert!(!page.body.contains("<script>"), "no inline script");
    assert!(!page.body.contains(" style="), "no inline style");
    let handlers = page
        .body
        .match_indices(" on")
        .filter(|(i, _)| {
            let rest = &page.body[i + 3..];
            let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        })
        .count();
    assert_eq!(handlers, 0, "no inline event handlers");
}

#[tokio::test]
async fn the_app_listens_on_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    let e = App::bind(AppConfig {
        home: dir.path().join("p"),
        listen: "0.0.0.0:0".parse().unwrap(),
        limits: LockLimits::default(),
    })
    .await
    .unwrap_err();
    assert!(e.to_string().contains("loopback"), "{e}");
}
