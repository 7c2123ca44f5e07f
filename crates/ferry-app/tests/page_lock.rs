//! The page's own lock: while the page is locked nothing but the lock
//! screen answers, and the session goes on. The session's passphrase
//! opens the page again; a wrong passphrase locks the session itself.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::{launch, raw, setup_body, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_page_shows_nothing_and_only_the_passphrase_opens_it() {
    let r = start().await;
    let (cookie, csrf) = launch(&r, &r.first).await;
    let ok = vec![
        format!("Host: {}", r.addr),
        format!("Cookie: {cookie}"),
        format!("Origin: http://{}", r.addr),
        format!("X-CSRF-Token: {csrf}"),
    ];
    let get = &ok[..2];
    assert_eq!(
        raw(&r.addr, "POST", "/setup", &ok, &setup_body())
            .await
            .status,
        200
    );
    assert_eq!(raw(&r.addr, "GET", "/settings", get, "").await.status, 200);

    // Lock the page.
    assert_eq!(
        raw(&r.addr, "POST", "/page-lock", &ok, "").await.status,
        200
    );
    let home = raw(&r.addr, "GET", "/", get, "").await;
    assert!(
        home.body.contains("action=\"/page-unlock\""),
        "the lock screen"
    );
    assert!(
        !home.body.contains("/settings"),
        "no navigation behind the lock"
    );
    let s = raw(&r.addr, "GET", "/settings", get, "").await;
    assert_eq!((s.status, s.header("location")), (303, Some("/")));
    let w = raw(&r.addr, "POST", "/invite", &ok, "alias=x").await;
    assert_eq!((w.status, w.header("x-ferry-go")), (409, Some("/")));
    let chats = raw(
        &r.addr,
        "GET",
        "/chats",
        &[get, &["X-Ferry-Refresh: 1".to_owned()]].concat(),
        "",
    )
    .await;
    assert_eq!(chats.status, 409, "fragments are refused too");

    // The session's passphrase opens the page; the session was never
    // locked (the app still holds it: no unlock screen for the session).
    let a = raw(
        &r.addr,
        "POST",
        "/page-unlock",
        &ok,
        "passphrase=correct+horse+1",
    )
    .await;
    assert_eq!(
        (a.status, a.header("x-ferry-go")),
        (200, Some("/")),
        "{}",
        a.body
    );
    assert_eq!(raw(&r.addr, "GET", "/settings", get, "").await.status, 200);

    // A wrong passphrase at the page lock locks the session itself.
    assert_eq!(
        raw(&r.addr, "POST", "/page-lock", &ok, "").await.status,
        200
    );
    let a = raw(
        &r.addr,
        "POST",
        "/page-unlock",
        &ok,
        "passphrase=someone+else",
    )
    .await;
    assert_eq!(a.status, 422, "{}", a.body);
    let home = raw(&r.addr, "GET", "/", get, "").await;
    assert!(
        home.body.contains("action=\"/unlock\""),
        "the session is locked now"
    );
    let s = raw(&r.addr, "GET", "/settings", get, "").await;
    assert_eq!(s.status, 303);
    // And opens again normally.
    let a = raw(
        &r.addr,
        "POST",
        "/unlock",
        &ok,
        "passphrase=correct+horse+1",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(raw(&r.addr, "GET", "/settings", get, "").await.status, 200);
}
