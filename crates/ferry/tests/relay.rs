//! End-to-end tests of `ferry relay` as a separate process on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::time::Duration;

use common::{Box_, mailbox};
use ferry_client::RelayClient;
use ferry_client::relay::SyncItem;
use ferry_proto::api::{ErrorBody, ServerFrame};
use ferry_proto::auth::{HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, RequestAuth};
use ferry_proto::{ErrorCode, MailboxId, MailboxKey, Seq};
use ferry_testkit::RelayProcess;
use rand_core::OsRng;

fn relay(extra: &[&str]) -> RelayProcess {
    RelayProcess::start(std::path::Path::new(env!("CARGO_BIN_EXE_ferry")), extra).unwrap()
}

/// A tus creation request signed by `b`'s sender key, as the relay now
/// requires of every blob.
fn signed_blob_post(http: &reqwest::Client, url: &str, b: &Box_) -> reqwest::RequestBuilder {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let auth = RequestAuth::sign(&[&b.sender], "POST", "/v1/blobs", b"", now, &mut OsRng);
    http.post(format!("{url}/v1/blobs"))
        .header("tus-resumable", "1.0.0")
        .header(ferry_proto::auth::HEADER_MAILBOX, b.id.to_b64())
        .header(HEADER_TIMESTAMP, auth.timestamp_value())
        .header(HEADER_NONCE, auth.nonce_value())
        .header(HEADER_SIGNATURE, auth.signatures_value())
}

/// Whoever learns an invite link after its mailbox was deleted cannot
/// re-create that mailbox (with their own key) and sit in the middle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_mailbox_id_cannot_be_taken_again() {
    let r = relay(&[]);
    let c = RelayClient::new(r.url()).unwrap();
    let invite = mailbox(&c).await;
    c.delete_mailbox(invite.id, &invite.recipient)
        .await
        .unwrap();
    let thief = MailboxKey::generate(&mut OsRng);
    let err = c.create_mailbox(invite.id, &thief).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::MailboxExists), "{err}");
    // The owner cannot bring it back either: the id is spent.
    let again = c
        .create_mailbox(invite.id, &invite.recipient)
        .await
        .unwrap_err();
    assert_eq!(again.code(), Some(ErrorCode::MailboxExists));
}

fn payload(tag: u8, len: usize) -> Vec<u8> {
    let mut v = vec![tag; len];
    v[0] = 0xF0;
    v
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn waiting(c: &RelayClient, b: &Box_) -> Vec<(u64, Vec<u8>)> {
    let f = c.fetch(b.id, &b.recipient, Seq(0), None).await.unwrap();
    f.messages
        .into_iter()
        .map(|m| (m.seq.0, m.payload))
        .collect()
}

/// Sends a hand-built request and returns (status, error code).
async fn raw(
    url: &str,
    method: reqwest::Method,
    path: &str,
    body: Vec<u8>,
    auth: Option<&RequestAuth>,
) -> (u16, Option<ErrorBody>) {
    let mut req = http_client()
        .request(method, format!("{url}{path}"))
        .body(body);
    if let Some(a) = auth {
        req = req
            .header(HEADER_TIMESTAMP, a.timestamp_value())
            .header(HEADER_NONCE, a.nonce_value())
            .header(HEADER_SIGNATURE, a.signatures_value());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    (status, serde_json::from_slice(&bytes).ok())
}

fn code_of(r: &(u16, Option<ErrorBody>)) -> (u16, Option<ErrorCode>) {
    (r.0, r.1.as_ref().map(|b| b.code))
}

fn sign(keys: &[&MailboxKey], method: &str, path: &str, body: &[u8], ts: u64) -> RequestAuth {
    RequestAuth::sign(keys, method, path, body, ts, &mut OsRng)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_fetch_ack() {
    let r = relay(&[]);
    let c = RelayClient::new(r.url()).unwrap();
    let b = mailbox(&c).await;
    for i in 1..=3u8 {
        let seq = c.send(b.id, &b.sender, payload(i, 256)).await.unwrap();
        assert_eq!(seq, Seq(u64::from(i)));
    }
    let got = waiting(&c, &b).await;
    assert_eq!(
        got,
        vec![
            (1, payload(1, 256)),
            (2, payload(2, 256)),
            (3, payload(3, 256))
        ]
    );
    let after = c.fetch(b.id, &b.recipient, Seq(2), None).await.unwrap();
    assert_eq!(after.messages.len(), 1);
    assert_eq!(c.ack(b.id, &b.recipient, Seq(2)).await.unwrap(), 2);
    assert_eq!(waiting(&c, &b).await, vec![(3, payload(3, 256))]);
    assert_eq!(c.ack(b.id, &b.recipient, Seq(3)).await.unwrap(), 1);
    assert!(waiting(&c, &b).await.is_empty());
    // Larger buckets work too.
    c.send(b.id, &b.sender, payload(9, 64 * 1024))
        .await
        .unwrap();
    assert_eq!(waiting(&c, &b).await, vec![(4, payload(9, 64 * 1024))]);
    // Deleting the mailbox removes it.
    c.delete_mailbox(b.id, &b.recipient).await.unwrap();
    let err = c.fetch(b.id, &b.recipient, Seq(0), None).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::UnknownMailbox));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_push_delivers_backlog_then_new_messages_and_acks_on_socket() {
    let r = relay(&[]);
    let c = RelayClient::new(r.url()).unwrap();
    let b = mailbox(&c).await;
    c.send(b.id, &b.sender, payload(1, 256)).await.unwrap();

    let mut live = c.connect_live().await.unwrap();
    let req = live
        .subscribe(&[(b.id, &b.recipient, Seq(0))])
        .await
        .unwrap();
    let mut pushed = Vec::new();
    let ok = live.wait_for(req, |f| pushed.push(f)).await.unwrap();
    assert_eq!(ok, ServerFrame::Ok { req });
    // The backlog follows the ok.
    while pushed.is_empty() {
        pushed.push(live.next().await.unwrap().unwrap());
    }
    assert!(
        matches!(&pushed[0], ServerFrame::Message { mailbox, message } if *mailbox == b.id && message.seq == Seq(1) && message.payload == payload(1, 256))
    );

    // A message sent over HTTP is pushed as soon as it is stored.
    c.send(b.id, &b.sender, payload(2, 1024)).await.unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(5), live.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(&frame, ServerFrame::Message { message, .. } if message.seq == Seq(2) && message.payload == payload(2, 1024))
    );

    // Sending over the socket after authorize_send, and acking on it.
    let req = live.authorize_send(&[(b.id, &b.sender)]).await.unwrap();
    assert_eq!(
        live.wait_for(req, |_| {}).await.unwrap(),
        ServerFrame::Ok { req }
    );
    let req = live.send(b.id, payload(3, 256)).await.unwrap();
    let mut seen = Vec::new();
    let sent = live.wait_for(req, |f| seen.push(f)).await.unwrap();
    assert_eq!(sent, ServerFrame::Sent { req, seq: Seq(3) });
    let req = live.ack(b.id, Seq(3)).await.unwrap();
    assert_eq!(
        live.wait_for(req, |f| seen.push(f)).await.unwrap(),
        ServerFrame::Ok { req }
    );
    assert!(
        seen.iter()
            .any(|f| matches!(f, ServerFrame::Message { message, .. } if message.seq == Seq(3)))
    );
    assert!(waiting(&c, &b).await.is_empty(), "acked on the socket");

    // Garbage frames get an error and the connection keeps working.
    live.send_raw_text("{not json").await.unwrap();
    let f = live.next().await.unwrap().unwrap();
    assert!(matches!(
        f,
        ServerFrame::Error {
            code: ErrorCode::MalformedJson,
            ..
        }
    ));
    // Sending to a mailbox the connection is not authorized for is refused.
    let other = mailbox(&c).await;
    let req = live.send(other.id, payload(1, 256)).await.unwrap();
    let f = live.wait_for(req, |_| {}).await.unwrap();
    assert!(matches!(
        f,
        ServerFrame::Error {
            code: ErrorCode::NotAuthorized,
            ..
        }
    ));
    assert!(waiting(&c, &other).await.is_empty());
    // A subscribe signed with the wrong key is refused.
    let req = live
        .subscribe(&[(other.id, &other.sender, Seq(0))])
        .await
        .unwrap();
    let f = live.wait_for(req, |_| {}).await.unwrap();
    assert!(matches!(
        f,
        ServerFrame::Error {
            code: ErrorCode::BadSignature,
            ..
        }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_sync_reads_and_acks_100_mailboxes_in_one_request() {
    let r = relay(&[]);
    let c = RelayClient::new(r.url()).unwrap();
    let mut boxes = Vec::new();
    for i in 0..100u8 {
        let b = mailbox(&c).await;
        c.send(b.id, &b.sender, payload(i, 256)).await.unwrap();
        c.send(b.id, &b.sender, payload(i.wrapping_add(1), 256))
            .await
            .unwrap();
        boxes.push(b);
    }
    let items: Vec<SyncItem<'_>> = boxes
        .iter()
        .map(|b| SyncItem {
            id: b.id,
            key: &b.recipient,
            after: Seq(0),
            ack_up_to: None,
        })
        .collect();
    let resp = c.sync(&items).await.unwrap();
    assert_eq!(resp.mailboxes.len(), 100);
    for (i, (res, b)) in resp.mailboxes.iter().zip(&boxes).enumerate() {
        assert_eq!(res.id, b.id);
        assert_eq!(res.error, None);
        let got: Vec<Vec<u8>> = res.messages.iter().map(|m| m.payload.clone()).collect();
        assert_eq!(
            got,
            vec![
                payload(i as u8, 256),
                payload((i as u8).wrapping_add(1), 256)
            ]
        );
    }
    // The next sync acks what was received and reads on in the same round trip.
    let items: Vec<SyncItem<'_>> = boxes
        .iter()
        .map(|b| SyncItem {
            id: b.id,
            key: &b.recipient,
            after: Seq(2),
            ack_up_to: Some(Seq(2)),
        })
        .collect();
    let resp = c.sync(&items).await.unwrap();
    assert!(
        resp.mailboxes
            .iter()
            .all(|m| m.messages.is_empty() && m.error.is_none())
    );
    for b in boxes.iter().take(5) {
        assert!(waiting(&c, b).await.is_empty());
    }
    // A sync with one bad signature is refused as a whole and acks nothing.
    let b0 = &boxes[0];
    c.send(b0.id, &b0.sender, payload(7, 256)).await.unwrap();
    let wrong = MailboxKey::generate(&mut OsRng);
    let items = [
        SyncItem {
            id: b0.id,
            key: &b0.recipient,
            after: Seq(0),
            ack_up_to: Some(Seq(3)),
        },
        SyncItem {
            id: boxes[1].id,
            key: &wrong,
            after: Seq(0),
            ack_up_to: None,
        },
    ];
    assert_eq!(
        c.sync(&items).await.unwrap_err().code(),
        Some(ErrorCode::BadSignature)
    );
    assert_eq!(waiting(&c, b0).await.len(), 1);
    // An unknown mailbox is reported per entry; the others still sync.
    let ghost = MailboxKey::generate(&mut OsRng);
    let items = [
        SyncItem {
            id: b0.id,
            key: &b0.recipient,
            after: Seq(0),
            ack_up_to: None,
        },
        SyncItem {
            id: MailboxId::random(&mut OsRng),
            key: &ghost,
            after: Seq(0),
            ack_up_to: None,
        },
    ];
    let resp = c.sync(&items).await.unwrap();
    assert_eq!(resp.mailboxes[0].messages.len(), 1);
    assert_eq!(resp.mailboxes[1].error, Some(ErrorCode::UnknownMailbox));
    // A sync naming only unknown mailboxes has no signature to check: refused.
    let only_ghost = [SyncItem {
        id: MailboxId::random(&mut OsRng),
        key: &ghost,
        after: Seq(0),
        ack_up_to: None,
    }];
    assert_eq!(
        c.sync(&only_ghost).await.unwrap_err().code(),
        Some(ErrorCode::UnknownMailbox)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_sends_survive_kill_9_and_acked_messages_stay_gone() {
    let mut r = relay(&[]);
    let c = RelayClient::new(r.url()).unwrap();
    let mut boxes = Vec::new();
    for _ in 0..4 {
        boxes.push(mailbox(&c).await);
    }
    // Many concurrent sends (sharing group commits); remember what was acknowledged.
    let mut tasks = Vec::new();
    for (bi, b) in boxes.iter().enumerate() {
        for i in 0..50u8 {
            let c = &c;
            tasks.push(async move {
                let p = payload(i, if i % 2 == 0 { 256 } else { 4096 });
                let seq = c.send(b.id, &b.sender, p.clone()).await.unwrap();
                (bi, seq, p)
            });
        }
    }
    let acked_sends = futures_util::future::join_all(tasks).await;
    // The recipient of mailbox 0 acks its first 20 messages.
    c.ack(boxes[0].id, &boxes[0].recipient, Seq(20))
        .await
        .unwrap();
    r.kill9().unwrap();
    r.restart().unwrap();

    let c = RelayClient::new(r.url()).unwrap();
    for (bi, b) in boxes.iter().enumerate() {
        let mut got = Vec::new();
        let mut after = Seq(0);
        loop {
            let f = c.fetch(b.id, &b.recipient, after, None).await.unwrap();
            if let Some(last) = f.messages.last() {
                after = last.seq;
            }
            got.extend(f.messages.into_iter().map(|m| (m.seq, m.payload)));
            if !f.more {
                break;
            }
        }
        let mut expected: Vec<(Seq, Vec<u8>)> = acked_sends
            .iter()
            .filter(|(i, seq, _)| *i == bi && !(bi == 0 && seq.0 <= 20))
            .map(|(_, s, p)| (*s, p.clone()))
            .collect();
        expected.sort_by_key(|(s, _)| *s);
        assert_eq!(got, expected, "mailbox {bi}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfetched_messages_expire() {
    let r = relay(&[
        "--message-ttl",
        "2s",
        "--sweep-interval",
        "1s",
        "--max-messages",
        "1",
    ]);
    let c = RelayClient::new(r.url()).unwrap();
    let b = mailbox(&c).await;
    c.send(b.id, &b.sender, payload(1, 256)).await.unwrap();
    assert_eq!(waiting(&c, &b).await.len(), 1);
    let full = c.send(b.id, &b.sender, payload(2, 256)).await.unwrap_err();
    assert_eq!(full.code(), Some(ErrorCode::MailboxFull));
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(waiting(&c, &b).await.is_empty(), "expired message is gone");
    // The sweep freed the quota.
    c.send(b.id, &b.sender, payload(3, 256)).await.unwrap();
    assert_eq!(
        waiting(&c, &b).await,
        vec![(2, payload(3, 256))],
        "the refused send used no sequence number"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_give_a_clear_error_and_keep_what_was_stored() {
    let r = relay(&["--max-messages", "3", "--max-bytes", "100000"]);
    let c = RelayClient::new(r.url()).unwrap();
    let b = mailbox(&c).await;
    for i in 0..3 {
        c.send(b.id, &b.sender, payload(i, 256)).await.unwrap();
    }
    let e = c.send(b.id, &b.sender, payload(9, 256)).await.unwrap_err();
    assert!(matches!(
        e,
        ferry_client::ClientError::Relay {
            status: 429,
            code: ErrorCode::MailboxFull
        }
    ));
    assert_eq!(waiting(&c, &b).await.len(), 3);
    c.ack(b.id, &b.recipient, Seq(1)).await.unwrap();
    c.send(b.id, &b.sender, payload(9, 256)).await.unwrap();
    // Bytes quota: two 64 KiB payloads exceed 100000 bytes.
    let b2 = mailbox(&c).await;
    c.send(b2.id, &b2.sender, payload(1, 65536)).await.unwrap();
    let e = c
        .send(b2.id, &b2.sender, payload(2, 65536))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::MailboxFull));
    assert_eq!(waiting(&c, &b2).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_4xx_codes_and_change_nothing() {
    let r = relay(&[]);
    let url = r.url().to_owned();
    let c = RelayClient::new(&url).unwrap();
    let b = mailbox(&c).await;
    let send_path = format!("/v1/mailboxes/{}/messages", b.id.to_b64());
    let post = reqwest::Method::POST;
    let body = payload(1, 256);

    // Bad signature: signed by the recipient key instead of the sender key.
    let a = sign(&[&b.recipient], "POST", &send_path, &body, now());
    let res = raw(&url, post.clone(), &send_path, body.clone(), Some(&a)).await;
    assert_eq!(code_of(&res), (401, Some(ErrorCode::BadSignature)));
    // Signature over a different body.
    let a = sign(&[&b.sender], "POST", &send_path, &payload(2, 256), now());
    let res = raw(&url, post.clone(), &send_path, body.clone(), Some(&a)).await;
    assert_eq!(code_of(&res), (401, Some(ErrorCode::BadSignature)));
    // Missing auth headers.
    let res = raw(&url, post.clone(), &send_path, body.clone(), None).await;
    assert_eq!(code_of(&res), (401, Some(ErrorCode::MissingAuth)));
    // Stale and future timestamps; the answer tells the relay's time.
    let a = sign(&[&b.sender], "POST", &send_path, &body, now() - 3600);
    let res = raw(&url, post.clone(), &send_path, body.clone(), Some(&a)).await;
    assert_eq!(code_of(&res), (401, Some(ErrorCode::StaleTimestamp)));
    assert!(res.1.unwrap().server_time.unwrap().abs_diff(now()) < 5);
    let a = sign(&[&b.sender], "POST", &send_path, &body, now() + 3600);
    let res = raw(&url, post.clone(), &send_path, body.clone(), Some(&a)).await;
    assert_eq!(code_of(&res), (401, Some(ErrorCode::StaleTimestamp)));
    assert!(
        waiting(&c, &b).await.is_empty(),
        "nothing stored by refused sends"
    );

    // Replay: the same signed request twice stores one message.
    let a = sign(&[&b.sender], "POST", &send_path, &body, now());
    let first = raw(&url, post.clone(), &send_path, body.clone(), Some(&a)).await;
    assert_eq!(first.0, 201);
    let again = raw(&url, post.clone(), &send_path, body.clone(), Some(&a)).await;
    assert_eq!(code_of(&again), (401, Some(ErrorCode::ReplayedRequest)));
    assert_eq!(waiting(&c, &b).await.len(), 1);

    // Payload sizes: not a bucket, and over the largest bucket.
    for (len, expected) in [
        (300, (400, Some(ErrorCode::PayloadSizeNotBucket))),
        (255, (400, Some(ErrorCode::PayloadSizeNotBucket))),
        (0, (400, Some(ErrorCode::PayloadSizeNotBucket))),
        (65537, (413, Some(ErrorCode::BodyTooLarge))),
        (1 << 20, (413, Some(ErrorCode::BodyTooLarge))),
    ] {
        let p = vec![1u8; len];
        let a = sign(&[&b.sender], "POST", &send_path, &p, now());
        let res = raw(&url, post.clone(), &send_path, p, Some(&a)).await;
        assert_eq!(code_of(&res), expected, "payload of {len} bytes");
    }
    // Oversized JSON body.
    let huge = vec![b' '; 2 << 20];
    let res = raw(&url, post.clone(), "/v1/sync", huge, None).await;
    assert_eq!(code_of(&res), (413, Some(ErrorCode::BodyTooLarge)));

    // Malformed JSON on every JSON route.
    let ack_path = format!("/v1/mailboxes/{}/ack", b.id.to_b64());
    for (m, path) in [
        (post.clone(), "/v1/mailboxes".to_owned()),
        (post.clone(), "/v1/sync".to_owned()),
        (post.clone(), ack_path.clone()),
        (
            reqwest::Method::PUT,
            format!("/v1/mailboxes/{}/sender", b.id.to_b64()),
        ),
    ] {
        for junk in [&b"{\"up_to\":"[..], b"[]", b"\xff\xfe", b"{\"unknown\":1}"] {
            let a = sign(&[&b.recipient], m.as_str(), &path, junk, now());
            let res = raw(&url, m.clone(), &path, junk.to_vec(), Some(&a)).await;
            assert_eq!(
                code_of(&res),
                (400, Some(ErrorCode::MalformedJson)),
                "{m} {path}"
            );
        }
    }
    assert_eq!(
        waiting(&c, &b).await.len(),
        1,
        "malformed ack removed nothing"
    );

    // Unknown mailbox, malformed mailbox id.
    let ghost = MailboxId::random(&mut OsRng);
    let ghost_path = format!("/v1/mailboxes/{}/messages", ghost.to_b64());
    let a = sign(&[&b.sender], "POST", &ghost_path, &body, now());
    let res = raw(&url, post.clone(), &ghost_path, body.clone(), Some(&a)).await;
    assert_eq!(code_of(&res), (404, Some(ErrorCode::UnknownMailbox)));
    let res = raw(
        &url,
        post.clone(),
        "/v1/mailboxes/not-an-id/messages",
        body.clone(),
        None,
    )
    .await;
    assert_eq!(code_of(&res), (400, Some(ErrorCode::BadRequest)));

    // Unsecured mailbox: nobody may send yet.
    let open = MailboxKey::generate(&mut OsRng);
    let open_id = MailboxId::random(&mut OsRng);
    c.create_mailbox(open_id, &open).await.unwrap();
    let open_path = format!("/v1/mailboxes/{}/messages", open_id.to_b64());
    let a = sign(&[&open], "POST", &open_path, &body, now());
    let res = raw(&url, post.clone(), &open_path, body.clone(), Some(&a)).await;
    assert_eq!(code_of(&res), (403, Some(ErrorCode::MailboxNotSecured)));

    // Sender key is settable once; a mailbox id cannot be taken over.
    let e = c
        .set_sender(
            b.id,
            &b.recipient,
            MailboxKey::generate(&mut OsRng).public(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::SenderKeyAlreadySet));
    let e = c
        .create_mailbox(b.id, &MailboxKey::generate(&mut OsRng))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::MailboxExists));
    let e = c
        .set_sender(b.id, &b.sender, b.sender.public())
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        Some(ErrorCode::BadSignature),
        "only the recipient key may secure"
    );
    let e = c.delete_mailbox(b.id, &b.sender).await.unwrap_err();
    assert_eq!(
        e.code(),
        Some(ErrorCode::BadSignature),
        "only the recipient key may delete"
    );

    // Too many mailboxes in one sync.
    let many: Vec<String> = (0..1001)
        .map(|_| format!("{{\"id\":\"{}\"}}", MailboxId::random(&mut OsRng).to_b64()))
        .collect();
    let body_many = format!("{{\"mailboxes\":[{}]}}", many.join(",")).into_bytes();
    let res = raw(&url, post.clone(), "/v1/sync", body_many, None).await;
    assert_eq!(code_of(&res), (400, Some(ErrorCode::TooManyMailboxes)));

    // Unknown routes and methods.
    let res = raw(&url, reqwest::Method::GET, "/v1/nothing", Vec::new(), None).await;
    assert_eq!(code_of(&res), (404, Some(ErrorCode::NotFound)));
    let res = raw(&url, reqwest::Method::PATCH, "/v1/sync", Vec::new(), None).await;
    assert_eq!(code_of(&res), (405, Some(ErrorCode::MethodNotAllowed)));

    // After all of that, the mailbox holds exactly the one accepted message.
    assert_eq!(waiting(&c, &b).await, vec![(1, payload(1, 256))]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_relay_requires_the_access_token_to_create_mailboxes() {
    let dir = tempfile_path();
    let token_file = dir.join("token");
    std::fs::write(&token_file, "correct-horse-battery-staple\n").unwrap();
    let r = relay(&["--access-token-file", token_file.to_str().unwrap()]);
    let key = MailboxKey::generate(&mut OsRng);
    let id = MailboxId::random(&mut OsRng);
    let anon = RelayClient::new(r.url()).unwrap();
    let e = anon.create_mailbox(id, &key).await.unwrap_err();
    assert!(matches!(
        e,
        ferry_client::ClientError::Relay {
            status: 401,
            code: ErrorCode::AccessTokenRequired
        }
    ));
    let wrong = RelayClient::new(r.url())
        .unwrap()
        .with_access_token("correct-horse-battery-stapler");
    assert_eq!(
        wrong.create_mailbox(id, &key).await.unwrap_err().code(),
        Some(ErrorCode::AccessTokenRequired)
    );
    let member = RelayClient::new(r.url())
        .unwrap()
        .with_access_token("correct-horse-battery-staple");
    member.create_mailbox(id, &key).await.unwrap();
    // Other operations do not need the token.
    anon.set_sender(id, &key, MailboxKey::generate(&mut OsRng).public())
        .await
        .unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

fn tempfile_path() -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!(
        "ferry-test-{}",
        MailboxId::random(&mut OsRng).to_b64()
    ));
    std::fs::create_dir_all(&p).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_metrics_hold_no_identifiers() {
    let r = relay(&[]);
    let c = RelayClient::new(r.url()).unwrap();
    let b = mailbox(&c).await;
    c.send(b.id, &b.sender, payload(1, 4096)).await.unwrap();
    c.fetch(b.id, &b.recipient, Seq(0), None).await.unwrap();
    c.ack(b.id, &b.recipient, Seq(1)).await.unwrap();
    let _ = c.send(b.id, &b.recipient, payload(1, 256)).await; // a refused request is logged too
    let _ = c
        .fetch(MailboxId::random(&mut OsRng), &b.recipient, Seq(0), None)
        .await;

    let metrics = reqwest::get(format!("{}/metrics", r.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains(r#"ferry_http_requests_total{route="/v1/mailboxes/{id}/messages",method="POST",status="201"} 1"#), "{metrics}");
    assert!(metrics.contains("ferry_messages_stored_total 1"));
    assert!(metrics.contains("ferry_http_request_duration_seconds_bucket"));

    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = std::fs::read_to_string(r.log_path()).unwrap();
    assert!(
        log.contains("request"),
        "debug request log is written: {log}"
    );
    for text in [&log, &metrics] {
        assert!(!text.contains(&b.id.to_b64()), "mailbox id leaked");
        assert!(!text.contains("127.0.0.1"), "address leaked");
        for field in ["size=", "len=", "bytes=", "length="] {
            assert!(!text.contains(field), "payload size leaked");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_a_wrong_clock_corrects_it_from_the_relay() {
    let r = relay(&[]);
    let c = RelayClient::new(r.url()).unwrap();
    let b = mailbox(&c).await;
    c.set_clock_offset(-3 * 3600);
    // The first attempt is refused as stale; the client learns the relay's
    // time from the answer and the retry goes through.
    c.send(b.id, &b.sender, payload(1, 256)).await.unwrap();
    assert!(c.now().abs_diff(now()) < 5);
    assert_eq!(waiting(&c, &b).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canaries_need_both_keys_and_only_the_owner_controls_them() {
    let r = relay(&[]);
    let c = RelayClient::new(r.url()).unwrap();
    let b = mailbox(&c).await;
    let owner = MailboxKey::generate(&mut OsRng);
    let stranger = MailboxKey::generate(&mut OsRng);
    let id = MailboxId::random(&mut OsRng);
    let later = now() + 3600;
    // The sender key must co-sign: a stranger cannot aim a canary at b.
    let e = c
        .deposit_canary(id, &owner, &stranger, b.id, later, payload(1, 256), None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::BadSignature));
    let e = c
        .deposit_canary(
            id,
            &owner,
            &b.sender,
            b.id,
            now() - 10,
            payload(1, 256),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::BadReleaseTime));
    let e = c
        .deposit_canary(id, &owner, &b.sender, b.id, later, vec![0; 300], None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::PayloadSizeNotBucket));
    c.deposit_canary(id, &owner, &b.sender, b.id, later, payload(7, 256), None)
        .await
        .unwrap();
    // Another owner cannot take the id over, fire it or delete it.
    let e = c
        .deposit_canary(id, &stranger, &b.sender, b.id, later, payload(8, 256), None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::CanaryExists));
    assert_eq!(
        c.fire_canary(id, &stranger).await.unwrap_err().code(),
        Some(ErrorCode::BadSignature)
    );
    assert_eq!(
        c.delete_canary(id, &stranger).await.unwrap_err().code(),
        Some(ErrorCode::BadSignature)
    );
    assert!(waiting(&c, &b).await.is_empty(), "nothing released yet");
    // The owner fires it: the sealed payload lands in the mailbox, once.
    c.fire_canary(id, &owner).await.unwrap();
    assert_eq!(waiting(&c, &b).await, vec![(1, payload(7, 256))]);
    assert_eq!(
        c.fire_canary(id, &owner).await.unwrap_err().code(),
        Some(ErrorCode::UnknownCanary)
    );
}

/// What a duress unlock holds is a fire-only key: signed by it, a renewal
/// (the very request a real session makes) releases the duress alert at
/// once; it cannot delete, replace or postpone the canary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fire_key_only_fires_and_looks_like_a_renewal() {
    let r = relay(&[]);
    let c = RelayClient::new(r.url()).unwrap();
    let b = mailbox(&c).await;
    let owner = MailboxKey::generate(&mut OsRng);
    let fire = MailboxKey::generate(&mut OsRng);
    let id = MailboxId::random(&mut OsRng);
    let later = now() + 3600;
    let armed = Some((fire.public(), payload(9, 256)));
    // The fire payload must have the ordinary payload's size.
    let e = c
        .deposit_canary(
            id,
            &owner,
            &b.sender,
            b.id,
            later,
            payload(7, 256),
            Some((fire.public(), payload(9, 1024))),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::PayloadSizeNotBucket));
    c.deposit_canary(
        id,
        &owner,
        &b.sender,
        b.id,
        later,
        payload(7, 256),
        armed.clone(),
    )
    .await
    .unwrap();
    // The owner renews: nothing is released.
    c.renew_canary(id, &owner, later + 60).await.unwrap();
    assert!(waiting(&c, &b).await.is_empty());
    // The fire key can neither delete nor replace it.
    assert_eq!(
        c.delete_canary(id, &fire).await.unwrap_err().code(),
        Some(ErrorCode::BadSignature)
    );
    assert_eq!(
        c.deposit_canary(id, &fire, &b.sender, b.id, later, payload(1, 256), None)
            .await
            .unwrap_err()
            .code(),
        Some(ErrorCode::CanaryExists)
    );
    let stranger = MailboxKey::generate(&mut OsRng);
    assert_eq!(
        c.renew_canary(id, &stranger, later)
            .await
            .unwrap_err()
            .code(),
        Some(ErrorCode::BadSignature)
    );
    // A "renewal" signed by the fire key releases the duress alert now.
    c.renew_canary(id, &fire, later).await.unwrap();
    assert_eq!(waiting(&c, &b).await, vec![(1, payload(9, 256))]);
    assert_eq!(
        c.renew_canary(id, &fire, later).await.unwrap_err().code(),
        Some(ErrorCode::UnknownCanary)
    );
}

/// Sends a PATCH that promises `total` bytes but delivers only `data`, then
/// drops the connection (a transfer cut mid-way).
async fn cut_patch(url: &str, path: &str, offset: u64, total: usize, data: &[u8]) {
    use tokio::io::AsyncWriteExt as _;
    let addr = url.strip_prefix("http://").unwrap();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: {addr}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: {total}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(data).await.unwrap();
    s.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(s);
    tokio::time::sleep(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_uploads_resume_after_cuts_and_kill_9_and_download_by_range() {
    let mut r = relay(&[]);
    let http = http_client();
    let url = r.url().to_owned();
    let blob: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();

    let opts = http
        .request(reqwest::Method::OPTIONS, format!("{url}/v1/blobs"))
        .send()
        .await
        .unwrap();
    assert_eq!(opts.headers()["tus-version"], "1.0.0");
    assert!(
        opts.headers()["tus-extension"]
            .to_str()
            .unwrap()
            .contains("creation")
    );

    // Refusals: no tus version (malformed), another tus version (the
    // protocol's 412), too large.
    let r400 = http
        .post(format!("{url}/v1/blobs"))
        .header("upload-length", "10")
        .send()
        .await
        .unwrap();
    assert_eq!(r400.status().as_u16(), 400);
    let r412 = http
        .post(format!("{url}/v1/blobs"))
        .header("tus-resumable", "0.2.2")
        .header("upload-length", "10")
        .send()
        .await
        .unwrap();
    assert_eq!(r412.status().as_u16(), 412);
    let owner = mailbox(&RelayClient::new(&url).unwrap()).await;
    let big = signed_blob_post(&http, &url, &owner)
        .header("upload-length", (3u64 << 30).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(big.status().as_u16(), 413);
    // Nobody stores anything without a mailbox's sender key, even here.
    let anonymous = http
        .post(format!("{url}/v1/blobs"))
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "10")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);

    let created = signed_blob_post(&http, &url, &owner)
        .header("upload-length", blob.len().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let path = created.headers()["location"].to_str().unwrap().to_owned();
    let token = created.headers()["ferry-blob-token"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(created.headers().contains_key("upload-expires"));

    let head = |http: reqwest::Client, url: String, path: String| async move {
        let h = http
            .head(format!("{url}{path}"))
            .header("tus-resumable", "1.0.0")
            .send()
            .await
            .unwrap();
        h.headers()["upload-offset"]
            .to_str()
            .unwrap()
            .parse::<usize>()
            .unwrap()
    };
    let patch = |http: reqwest::Client, url: String, path: String, offset: usize, data: Vec<u8>| async move {
        http.patch(format!("{url}{path}"))
            .header("tus-resumable", "1.0.0")
            .header("upload-offset", offset.to_string())
            .header("content-type", "application/offset+octet-stream")
            .body(data)
            .send()
            .await
            .unwrap()
    };

    // Cut three times at different points; each time resume from HEAD.
    let mut offset = 0;
    for cut in [700_000usize, 1_300_000, 2_100_000] {
        cut_patch(
            &url,
            &path,
            offset as u64,
            blob.len() - offset,
            &blob[offset..cut],
        )
        .await;
        let now = head(http.clone(), url.clone(), path.clone()).await;
        assert!(
            now > offset && now <= cut,
            "progress kept: {offset} -> {now} (cut at {cut})"
        );
        offset = now;
    }
    // The relay is killed mid-transfer and restarted: what was confirmed stays.
    r.kill9().unwrap();
    r.restart().unwrap();
    let after = head(http.clone(), url.clone(), path.clone()).await;
    assert_eq!(after, offset, "a confirmed offset survives kill -9");
    // Wrong offset and wrong content type are refused and store nothing.
    let wrong = patch(
        http.clone(),
        url.clone(),
        path.clone(),
        offset + 1,
        vec![0; 10],
    )
    .await;
    assert_eq!(wrong.status().as_u16(), 409);
    let ct = http
        .patch(format!("{url}{path}"))
        .header("tus-resumable", "1.0.0")
        .header("upload-offset", offset.to_string())
        .body(vec![0u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(ct.status().as_u16(), 415);
    // Not downloadable before it is complete.
    let early = http
        .get(format!("{url}{path}"))
        .header("ferry-blob-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(early.status().as_u16(), 409);
    let done = patch(
        http.clone(),
        url.clone(),
        path.clone(),
        offset,
        blob[offset..].to_vec(),
    )
    .await;
    assert_eq!(done.status().as_u16(), 204);
    assert_eq!(
        done.headers()["upload-offset"].to_str().unwrap(),
        blob.len().to_string()
    );
    let over = patch(http.clone(), url.clone(), path.clone(), blob.len(), vec![1]).await;
    assert_eq!(over.status().as_u16(), 413);

    // Download: whole, by range, and never without the token.
    let whole = http
        .get(format!("{url}{path}"))
        .header("ferry-blob-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(whole.status().as_u16(), 200);
    assert_eq!(whole.bytes().await.unwrap().as_ref(), &blob[..]);
    let part = http
        .get(format!("{url}{path}"))
        .header("ferry-blob-token", &token)
        .header("range", "bytes=1000000-1000999")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status().as_u16(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 1000000-1000999/{}", blob.len()).as_str()
    );
    assert_eq!(
        part.bytes().await.unwrap().as_ref(),
        &blob[1_000_000..1_001_000]
    );
    let bad_range = http
        .get(format!("{url}{path}"))
        .header("ferry-blob-token", &token)
        .header("range", "bytes=9999999-")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_range.status().as_u16(), 416);
    let no_token = http.get(format!("{url}{path}")).send().await.unwrap();
    assert_eq!(no_token.status().as_u16(), 404);
    let wrong_token = http
        .get(format!("{url}{path}"))
        .header("ferry-blob-token", "AAAA")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_token.status().as_u16(), 404);

    // Termination.
    let del = http
        .delete(format!("{url}{path}"))
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(del.status().as_u16(), 204);
    let gone = http.head(format!("{url}{path}")).send().await.unwrap();
    assert_eq!(gone.status().as_u16(), 404);
}

/// A bare HTTP client for requests the Ferry client would never make.
/// reqwest is built without a default TLS provider (Ferry configures
/// rustls itself), so one is installed first.
fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::new()
}

#[test]
fn a_third_party_tus_client_uploads_to_the_relay() {
    // tuspy (PyPI), installed by .ci/run. Creating a blob needs a mailbox
    // signature, which a generic tus client cannot make: it is refused, and
    // the upload the Ferry client created is then sent by tuspy.
    let r = relay(&[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let created = rt.block_on(async {
        let owner = mailbox(&RelayClient::new(r.url()).unwrap()).await;
        signed_blob_post(&http_client(), r.url(), &owner)
            .header("upload-length", "1500000")
            .send()
            .await
            .unwrap()
    });
    assert_eq!(created.status().as_u16(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("upload.bin");
    let data: Vec<u8> = (0..1_500_000u32)
        .map(|i| (i.wrapping_mul(40_503) >> 7) as u8)
        .collect();
    std::fs::write(&src, &data).unwrap();
    let script = format!(
        "from tusclient import client\n\
         from tusclient.exceptions import TusCommunicationError\n\
         c = client.TusClient('{url}/v1/blobs')\n\
         try:\n\
         \x20   c.uploader(file_path='{src}', chunk_size=256*1024).upload()\n\
         \x20   raise SystemExit('an unsigned creation was accepted')\n\
         except TusCommunicationError as e:\n\
         \x20   assert e.status_code == 401, e.status_code\n\
         u = c.uploader(file_path='{src}', url='{url}{location}', chunk_size=256*1024)\n\
         u.upload()\n\
         print(u.url)\n",
        url = r.url(),
        src = src.display()
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "tuspy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let upload_url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let id = upload_url.rsplit('/').next().unwrap().to_owned();
    let id: MailboxId = id.parse().unwrap();
    let hex: String = id.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let stored = std::fs::read(r.data_dir().join("blobs").join(hex)).unwrap();
    assert_eq!(
        stored, data,
        "the relay holds exactly what the tus client sent"
    );
}
