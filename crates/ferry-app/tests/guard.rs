//! The app's local security, tried as another local process or a hostile
//! web page would: raw HTTP requests with a wrong or missing launch token,
//! a wrong `Host` (DNS rebinding, `Host: :PORT`), a wrong or missing
//! `Origin`, a missing CSRF token. Each is refused and changes nothing on
//! disk; the same request done right works (the positive control).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::time::Duration;

use common::{launch, raw, setup_body, snapshot, start, token_of};
use ferry_app::{App, AppConfig};
use ferry_client::LockLimits;

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
