//! Shared by the app's integration tests: the app in-process on
//! loopback, raw HTTP requests, and the launch-token exchange.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use ferry_app::{App, AppConfig};
use ferry_client::LockLimits;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One raw HTTP/1.1 request; `head` lines are sent exactly as given.
pub async fn raw(addr: &str, method: &str, path: &str, head: &[String], body: &str) -> Answer {
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
pub fn snapshot(home: &Path) -> BTreeMap<String, Vec<u8>> {
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

pub struct Running {
    pub addr: String,
    pub links: tokio::sync::mpsc::UnboundedReceiver<String>,
    pub first: String,
    pub _dir: tempfile::TempDir,
    pub home: std::path::PathBuf,
}

pub async fn start() -> Running {
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

pub fn token_of(link: &str) -> String {
    link.split("token=").nth(1).unwrap().to_owned()
}

/// Trades the launch token; returns the cookie pair and the CSRF token.
pub async fn launch(r: &Running, link: &str) -> (String, String) {
    let host = format!("Host: {}", r.addr);
    let a = raw(
        &r.addr,
        "GET",
        &format!("/?token={}", token_of(link)),
        std::slice::from_ref(&host),
        "",
    )
    .await;
    assert_eq!(a.status, 200, "the launch token is traded");
    assert!(
        a.body
            .contains("http-equiv=\"refresh\" content=\"0;url=/\""),
        "the page moves on to / and drops the token: {}",
        a.body
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

pub fn setup_body() -> String {
    "relay=http%3A%2F%2F127.0.0.1%3A9&passphrase=correct+horse+1&repeat=correct+horse+1&proxy="
        .into()
}
