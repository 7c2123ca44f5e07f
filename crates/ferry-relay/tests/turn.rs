//! The relay's TURN service as a stranger, a contact and a captor would
//! use it: credentials only for a holder of a mailbox key; the embedded
//! TURN server refuses expired and forged credentials, relays only between
//! its own allocations, and forgets an allocation its owner releases.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytecodec::{DecodeExt as _, EncodeExt as _};
use ferry_client::relay::RelayClient;
use ferry_proto::{ErrorCode, MailboxId, MailboxKey};
use ferry_relay::{Relay, RelayConfig, RunningRelay, TurnSettings};
use medea_turn::attr::{
    Attribute, Data, ErrorCode as StunError, Lifetime, MessageIntegrity, Nonce, Realm,
    RequestedTransport, Username, XorPeerAddress, XorRelayAddress,
};
use rand_core::OsRng;
use stun_codec::rfc5766::methods::{ALLOCATE, CREATE_PERMISSION, DATA, REFRESH, SEND};
use stun_codec::{Message, MessageClass, MessageDecoder, MessageEncoder, Method, TransactionId};
use tokio::net::UdpSocket;

const SECRET: &[u8] = b"a shared secret of the operator";
const RELAY_IP: [u8; 4] = [127, 0, 0, 2];

async fn relay() -> (RunningRelay, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = RelayConfig::new(dir.path().join("data"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.fsync = false;
    let mut turn = TurnSettings::embedded(SocketAddr::new(RELAY_IP.into(), 0));
    turn.secret = zeroize::Zeroizing::new(SECRET.to_vec());
    config.turn = Some(turn);
    let r = Relay::embedded(config).unwrap().start().await.unwrap();
    (r, dir)
}

/// A mailbox secured with a sender key: `(id, recipient, sender)`.
async fn secured(api: &RelayClient) -> (MailboxId, MailboxKey, MailboxKey) {
    let id = MailboxId::random(&mut OsRng);
    let recipient = MailboxKey::generate(&mut OsRng);
    let sender = MailboxKey::generate(&mut OsRng);
    api.create_mailbox(id, &recipient).await.unwrap();
    api.set_sender(id, &recipient, sender.public())
        .await
        .unwrap();
    (id, recipient, sender)
}

async fn metric(r: &RunningRelay, name: &str) -> u64 {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let text = reqwest::get(format!("{}/metrics", r.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in metrics"))
}

#[tokio::test]
async fn only_a_holder_of_a_mailbox_key_gets_turn_credentials() {
    let (r, _dir) = relay().await;
    let api = RelayClient::new(&r.url()).unwrap();
    let (id, recipient, sender) = secured(&api).await;
    // Both sides of the conversation (the mailbox's owner and the contact
    // who sends to it) get credentials, each a fresh random username.
    let a = api.turn_credentials(id, &recipient).await.unwrap();
    let b = api.turn_credentials(id, &sender).await.unwrap();
    assert_ne!(a.username, b.username);
    assert_eq!(a.relay_ip, IpAddr::from(RELAY_IP));
    let turn = r.turn_addr().unwrap();
    assert_eq!(
        a.urls,
        vec![
            format!("turn:{turn}?transport=udp"),
            format!("turn:{turn}?transport=tcp")
        ]
    );
    assert!(!format!("{a:?}").contains(&a.credential), "Debug hides it");

    // A stranger's key, an unknown mailbox, a mailbox not yet secured:
    // nothing.
    let stranger = MailboxKey::generate(&mut OsRng);
    let e = api.turn_credentials(id, &stranger).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::BadSignature));
    let e = api
        .turn_credentials(MailboxId::random(&mut OsRng), &recipient)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::MissingAuth));
    let open = MailboxId::random(&mut OsRng);
    let owner = MailboxKey::generate(&mut OsRng);
    api.create_mailbox(open, &owner).await.unwrap();
    let e = api.turn_credentials(open, &owner).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::MissingAuth));
    assert_eq!(metric(&r, "ferry_turn_credentials_total").await, 2);
    r.shutdown().await.unwrap();
}

/// A minimal TURN client (RFC 5766) over UDP, built from the same STUN
/// codec the server uses.
struct TurnClient {
    sock: UdpSocket,
    server: SocketAddr,
    auth: Option<(Username, Realm, Nonce, String)>,
}

impl TurnClient {
    async fn new(server: SocketAddr) -> Self {
        Self {
            sock: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            server,
            auth: None,
        }
    }

    async fn roundtrip(&self, msg: Message<Attribute>) -> Option<Message<Attribute>> {
        let id = msg.transaction_id();
        let bytes = MessageEncoder::new().encode_into_bytes(msg).unwrap();
        self.sock.send_to(&bytes, self.server).await.unwrap();
        let mut buf = vec![0u8; 2048];
        loop {
            let n = tokio::time::timeout(Duration::from_millis(700), self.sock.recv(&mut buf))
                .await
                .ok()?
                .unwrap();
            let m = MessageDecoder::<Attribute>::new()
                .decode_from_bytes(&buf[..n])
                .unwrap()
                .unwrap();
            if m.transaction_id() == id {
                return Some(m);
            }
        }
    }

    fn signed(&self, method: Method, attrs: Vec<Attribute>) -> Message<Attribute> {
        let mut m = Message::new(
            MessageClass::Request,
            method,
            TransactionId::new(rand_bytes()),
        );
        for a in attrs {
            m.add_attribute(a);
        }
        let (u, realm, nonce, password) = self.auth.as_ref().unwrap();
        m.add_attribute(u.clone());
        m.add_attribute(realm.clone());
        m.add_attribute(nonce.clone());
        let mi = MessageIntegrity::new_long_term_credential(&m, u, realm, password).unwrap();
        m.add_attribute(mi);
        m
    }

    /// Allocates a relayed address; the STUN error code on refusal.
    async fn allocate(&mut self, username: &str, password: &str) -> Result<SocketAddr, u16> {
        let mut m = Message::new(
            MessageClass::Request,
            ALLOCATE,
            TransactionId::new(rand_bytes()),
        );
        m.add_attribute(RequestedTransport::new(17));
        let challenge = self.roundtrip(m).await.expect("an answer");
        let realm = challenge.get_attribute::<Realm>().unwrap().clone();
        let nonce = challenge.get_attribute::<Nonce>().unwrap().clone();
        self.auth = Some((
            Username::new(username.to_owned()).unwrap(),
            realm,
            nonce,
            password.to_owned(),
        ));
        let m = self.signed(ALLOCATE, vec![RequestedTransport::new(17).into()]);
        let resp = self.roundtrip(m).await.expect("an answer");
        match resp.class() {
            MessageClass::SuccessResponse => {
                Ok(resp.get_attribute::<XorRelayAddress>().unwrap().address())
            }
            _ => Err(resp.get_attribute::<StunError>().map_or(0, StunError::code)),
        }
    }

    /// Whether a permission for `peer` is granted (`None`: no answer).
    async fn permit(&self, peer: SocketAddr) -> Option<bool> {
        let m = self.signed(CREATE_PERMISSION, vec![XorPeerAddress::new(peer).into()]);
        self.roundtrip(m)
            .await
            .map(|r| r.class() == MessageClass::SuccessResponse)
    }

    async fn send(&self, peer: SocketAddr, data: &[u8]) {
        let mut m = Message::<Attribute>::new(
            MessageClass::Indication,
            SEND,
            TransactionId::new(rand_bytes()),
        );
        m.add_attribute(XorPeerAddress::new(peer));
        m.add_attribute(Data::new(data.to_vec()).unwrap());
        let bytes = MessageEncoder::new().encode_into_bytes(m).unwrap();
        self.sock.send_to(&bytes, self.server).await.unwrap();
    }

    async fn received(&self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 2048];
        let n = tokio::time::timeout(Duration::from_secs(2), self.sock.recv(&mut buf))
            .await
            .ok()?
            .unwrap();
        let m = MessageDecoder::<Attribute>::new()
            .decode_from_bytes(&buf[..n])
            .unwrap()
            .unwrap();
        assert_eq!(m.method(), DATA);
        Some(m.get_attribute::<Data>().unwrap().data().to_vec())
    }

    async fn release(&self) -> bool {
        let m = self.signed(REFRESH, vec![Lifetime::new(Duration::ZERO).unwrap().into()]);
        self.roundtrip(m)
            .await
            .is_some_and(|r| r.class() == MessageClass::SuccessResponse)
    }
}

fn rand_bytes() -> [u8; 12] {
    let mut b = [0u8; 12];
    rand_core::RngCore::fill_bytes(&mut OsRng, &mut b);
    b
}

/// The REST scheme's password for `username` under `secret`.
fn password(secret: &[u8], username: &str) -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret).unwrap();
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn expired_and_forged_credentials_are_refused_and_only_own_allocations_are_peers() {
    let (r, _dir) = relay().await;
    let turn = r.turn_addr().unwrap();
    let api = RelayClient::new(&r.url()).unwrap();
    let (id, recipient, sender) = secured(&api).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();

    // Expired: the right secret, an expiry in the past. The server knows
    // no such user (400).
    let old = format!("{}:x", now - 1);
    let mut c = TurnClient::new(turn).await;
    assert_eq!(c.allocate(&old, &password(SECRET, &old)).await, Err(400));
    // Forged: a future expiry with a password from another secret, and an
    // issued username with its expiry moved forward. Integrity fails (401).
    let future = format!("{}:x", now + 600);
    assert_eq!(
        c.allocate(&future, &password(b"guessed secret here", &future))
            .await,
        Err(401)
    );
    let issued = api.turn_credentials(id, &recipient).await.unwrap();
    let (exp, rest) = issued.username.split_once(':').unwrap();
    let moved = format!("{}:{rest}", exp.parse::<u64>().unwrap() + 3600);
    assert_eq!(c.allocate(&moved, &issued.credential).await, Err(401));

    // Both sides of a call allocate with their own credentials.
    let mut a = TurnClient::new(turn).await;
    let ra = a
        .allocate(&issued.username, &issued.credential)
        .await
        .unwrap();
    let other = api.turn_credentials(id, &sender).await.unwrap();
    let mut b = TurnClient::new(turn).await;
    let rb = b
        .allocate(&other.username, &other.credential)
        .await
        .unwrap();
    assert_eq!(ra.ip(), IpAddr::from(RELAY_IP));
    assert_eq!(rb.ip(), IpAddr::from(RELAY_IP));
    assert_eq!(metric(&r, "ferry_turn_allocations").await, 2);

    // Anything but another allocation here is not a peer: a browser's own
    // address, the relay's HTTP port, another host. No answer, nothing
    // relayed, each counted.
    let refused_before = metric(&r, "ferry_turn_refused_peers_total").await;
    let b_own = b.sock.local_addr().unwrap();
    for peer in [
        b_own,
        r.local_addr(),
        SocketAddr::new(RELAY_IP.into(), r.local_addr().port()),
        "10.1.2.3:5000".parse().unwrap(),
    ] {
        assert_eq!(a.permit(peer).await, None, "{peer}");
    }
    a.send(b_own, b"to the browser directly").await;
    assert_eq!(
        metric(&r, "ferry_turn_refused_peers_total").await,
        refused_before + 5
    );

    // Between the two allocations, data flows both ways.
    assert_eq!(a.permit(rb).await, Some(true));
    assert_eq!(b.permit(ra).await, Some(true));
    a.send(rb, b"hello b").await;
    assert_eq!(b.received().await.as_deref(), Some(&b"hello b"[..]));
    b.send(ra, b"hello a").await;
    assert_eq!(a.received().await.as_deref(), Some(&b"hello a"[..]));

    // Releasing an allocation (what a browser does at hang-up) removes it.
    assert!(a.release().await);
    assert!(b.release().await);
    let mut left = u64::MAX;
    for _ in 0..50 {
        left = metric(&r, "ferry_turn_allocations").await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, 0);
    r.shutdown().await.unwrap();
}
