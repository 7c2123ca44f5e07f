//! Calls at the session: a contact's call rings, is accepted and answered
//! with credentials for the relay's TURN server; through a proxy no
//! credentials are ever fetched; a contact reported compromised never
//! rings and gets nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/peer.rs"]
mod peer;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use ferry_client::{Event, Network, ProxyUrl, Session, SessionError};
use ferry_core::call::{CallOutcome, CallUpdate, Phase};
use ferry_relay::{Relay, RelayConfig, RunningRelay, TurnSettings};
use rand_core::OsRng;
use secrecy::SecretString;

const RELAY_IP: [u8; 4] = [127, 0, 0, 2];

/// What a browser gathers with `iceTransportPolicy: "relay"`.
fn sdp() -> String {
    let fp = "7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08";
    format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
m=audio 50000 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 127.0.0.2\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
a=candidate:1 1 udp 41885439 127.0.0.2 50000 typ relay raddr 127.0.0.1 rport 40000 generation 0\r\n\
a=ice-ufrag:EsAw\r\na=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\r\na=fingerprint:sha-256 {fp}\r\n\
a=setup:actpass\r\na=mid:0\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"
    )
}

async fn relay(dir: &std::path::Path) -> RunningRelay {
    let mut config = RelayConfig::new(dir.join("relay"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.fsync = false;
    config.turn = Some(TurnSettings::embedded(SocketAddr::new(RELAY_IP.into(), 0)));
    Relay::embedded(config).unwrap().start().await.unwrap()
}

async fn issued(r: &RunningRelay) -> u64 {
    let text = reqwest::get(format!("{}/metrics", r.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("ferry_turn_credentials_total "))
        .unwrap()
        .parse()
        .unwrap()
}

/// The session's call events.
fn calls(s: &mut Session) -> Arc<Mutex<Vec<CallUpdate>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    s.set_listener(Some(Box::new(move |ev| {
        if let Event::Call { update, .. } = ev {
            keep.lock().unwrap().push(update.clone());
        }
    })));
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_rings_and_is_answered_with_the_relays_turn_server() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let r = relay(dir.path()).await;
    let pass = SecretString::from("call test passphrase".to_owned());
    let home = dir.path().join("me");
    drop(Session::init(&home, &pass, &r.url(), None).unwrap());
    let mut s = Session::unlock(&home, &pass).await.unwrap();
    let mut peer = peer::add_peers(&mut s, &r.url(), 1, 0).await.remove(0);
    let seen = calls(&mut s);

    peer.engine
        .call_start(
            ferry_client::session::now(),
            &mut OsRng,
            "owner",
            false,
            &sdp(),
            IpAddr::from(RELAY_IP),
        )
        .unwrap();
    peer.flush().await;
    s.sync().await.unwrap();
    assert!(matches!(
        seen.lock().unwrap().as_slice(),
        [CallUpdate::Ringing { video: false }]
    ));
    assert_eq!(s.call_view().unwrap().phase, Phase::Ringing);
    assert_eq!(issued(&r).await, 0, "ringing fetches no credentials");
    // Accepting: credentials from the relay of our own mailbox (proven with
    // its recipient key), then the contact's offer, checked.
    let creds = s.call_turn("peer 0").await.unwrap();
    assert_eq!(creds.relay_ip, IpAddr::from(RELAY_IP));
    assert_eq!(issued(&r).await, 1);
    let offer = s.call_accept("peer 0").await.unwrap();
    assert!(!offer.sdp.contains("127.0.0.1"));
    s.call_answer("peer 0", &sdp()).await.unwrap();
    peer.receive().await;
    assert_eq!(peer.engine.call().map(|c| c.phase), Some(Phase::Answered));
    // Hanging up leaves one entry here, under the conversation's timer.
    s.call_end("peer 0", ferry_core::call::EndReason::HangUp)
        .await
        .unwrap();
    let history = s.history("peer 0").unwrap();
    let log = history.iter().find_map(|e| e.call).unwrap();
    assert_eq!(log.outcome, CallOutcome::Answered);
    assert!(history.iter().all(|e| e.expires_at.is_some()));
    peer.receive().await;
    assert!(peer.engine.call().is_none(), "the contact saw the end");
    drop(s);
    r.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_refused_through_a_proxy_and_with_a_compromised_contact() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let r = relay(dir.path()).await;
    let pass = SecretString::from("call test passphrase".to_owned());
    let home = dir.path().join("me");
    drop(Session::init(&home, &pass, &r.url(), None).unwrap());
    let mut s = Session::unlock(&home, &pass).await.unwrap();
    let mut peer = peer::add_peers(&mut s, &r.url(), 1, 0).await.remove(0);
    let seen = calls(&mut s);

    // With a proxy (Tor cannot carry a call's UDP): refused before any
    // connection, in words.
    s.set_network(Network::via(
        "socks5h://127.0.0.1:9".parse::<ProxyUrl>().unwrap(),
    ))
    .unwrap();
    let e = s.call_turn("peer 0").await.unwrap_err();
    assert!(matches!(e, SessionError::CallsNeedDirect), "{e:?}");
    assert_eq!(e.code(), "calls_need_direct");
    assert!(e.to_string().contains("proxy"));
    s.set_network(Network::direct()).unwrap();
    assert_eq!(issued(&r).await, 0);

    // The contact warns that their phone is taken; then "they" call.
    peer.engine
        .alert(
            ferry_client::session::now(),
            &mut OsRng,
            None,
            ferry_core::AlertReason::Manual,
        )
        .unwrap();
    peer.flush().await;
    s.sync().await.unwrap();
    peer.engine
        .call_start(
            ferry_client::session::now(),
            &mut OsRng,
            "owner",
            true,
            &sdp(),
            IpAddr::from(RELAY_IP),
        )
        .unwrap();
    peer.flush().await;
    s.sync().await.unwrap();
    // It never rings: recorded, marked, and nothing more.
    match seen.lock().unwrap().as_slice() {
        [CallUpdate::Ended(e)] => {
            assert!(e.flagged);
            assert_eq!(e.call.unwrap().outcome, CallOutcome::Refused);
        }
        other => panic!("{other:?}"),
    }
    assert!(s.call_view().is_none());
    let e = s.call_turn("peer 0").await.unwrap_err();
    assert_eq!(e.code(), "contact_compromised");
    assert!(s.call_accept("peer 0").await.is_err());
    assert_eq!(issued(&r).await, 0, "no credentials for their call, ever");
    drop(s);
    r.shutdown().await.unwrap();
}
