//! The compact binary form of an [`AppMessage`] inside MLS, so a short text
//! (like an alert) fits the smallest padding bucket.
//!
//! ```text
//! message = FORMAT (0xF1) || id (bytes) || sent_at (varint)
//!           || expire_after (0 | 1 varint) || body
//! body    = tag (1) || fields, by tag:
//!   1 text        view_once (1) || text (bytes)
//!   2 attachment  view_once (1) || reference as JSON (bytes)
//!   3 timer       secs (0 | 1 varint)
//!   4 delete      target (bytes)
//!   5 verifiers   real (bytes) || duress (bytes) || prev_sig (0 | 1 bytes)
//!   6 challenge   nonce (bytes)
//!   7 answer      nonce (bytes) || sig (bytes)
//!   8 call        id (16) || signal (1) || fields, by signal:
//!                   1 offer video (1) || sdp (bytes); 2 answer sdp;
//!                   3 restart sdp; 4 restart answer sdp; 5 end reason (1)
//!   9 mailbox     relay (bytes) || mailbox id (16) || sender key (32)
//!  10 group ask   ask (bytes)
//!  11 group kp    ask (bytes) || key package (bytes)
//!  12 group join  ask (bytes) || relay (bytes) || mailbox id (16)
//!                 || read seed (32) || write seed (32) || after (varint)
//!                 || epoch (varint) || name (bytes) || welcome (bytes)
//! bytes   = length (varint) || bytes
//! varint  = unsigned LEB128, at most 10 bytes
//! ```
//!
//! Messages from releases before this framing are JSON (they start with
//! `{`) and still read.

use zeroize::Zeroizing;

use crate::envelope::{AppMessage, Body};

const FORMAT: u8 = 0xF1;

const TEXT: u8 = 1;
const ATTACHMENT: u8 = 2;
const TIMER: u8 = 3;
const DELETE: u8 = 4;
const VERIFIERS: u8 = 5;
const CHALLENGE: u8 = 6;
const ANSWER: u8 = 7;
const CALL: u8 = 8;
const MAILBOX: u8 = 9;
const GROUP_ASK: u8 = 10;
const GROUP_KEY_PACKAGE: u8 = 11;
const GROUP_INVITE: u8 = 12;

struct Writer(Zeroizing<Vec<u8>>);

impl Writer {
    fn byte(&mut self, b: u8) {
        self.0.push(b);
    }

    fn varint(&mut self, mut v: u64) {
        loop {
            let low = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(low);
                return;
            }
            self.0.push(low | 0x80);
        }
    }

    fn bytes(&mut self, b: &[u8]) {
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn opt(&mut self, v: Option<u64>) {
        match v {
            None => self.byte(0),
            Some(x) => {
                self.byte(1);
                self.varint(x);
            }
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if i == 9 && bits > 1 {
                return None;
            }
            v |= bits << (7 * i);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        if len > self.0.len() {
            return None;
        }
        let (b, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(b)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        if self.0.len() < N {
            return None;
        }
        let (b, rest) = self.0.split_at(N);
        self.0 = rest;
        b.try_into().ok()
    }

    fn flag(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    fn opt(&mut self) -> Option<Option<u64>> {
        if self.flag()? {
            Some(Some(self.varint()?))
        } else {
            Some(None)
        }
    }

    fn text(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
}

/// Encodes a message for MLS.
pub(crate) fn encode(m: &AppMessage) -> Result<Zeroizing<Vec<u8>>, serde_json::Error> {
    let mut w = Writer(Zeroizing::new(Vec::with_capacity(64)));
    w.byte(FORMAT);
    w.bytes(&m.id);
    w.varint(m.sent_at);
    w.opt(m.expire_after);
    match &m.body {
        Body::Text { text, view_once } => {
            w.byte(TEXT);
            w.byte(u8::from(*view_once));
            w.bytes(text.as_bytes());
        }
        Body::Attachment {
            attachment,
            view_once,
        } => {
            w.byte(ATTACHMENT);
            w.byte(u8::from(*view_once));
            w.bytes(&Zeroizing::new(serde_json::to_vec(attachment)?));
        }
        Body::Timer { secs } => {
            w.byte(TIMER);
            w.opt(*secs);
        }
        Body::Delete { target } => {
            w.byte(DELETE);
            w.bytes(target.as_bytes());
        }
        Body::Verifiers {
            real,
            duress,
            prev_sig,
        } => {
            w.byte(VERIFIERS);
            w.bytes(real);
            w.bytes(duress);
            match prev_sig {
                None => w.byte(0),
                Some(s) => {
                    w.byte(1);
                    w.bytes(s);
                }
            }
        }
        Body::Challenge { nonce } => {
            w.byte(CHALLENGE);
            w.bytes(nonce);
        }
        Body::Answer { nonce, sig } => {
            w.byte(ANSWER);
            w.bytes(nonce);
            w.bytes(sig);
        }
        Body::Call { id, signal } => {
            use crate::call::Signal;
            w.byte(CALL);
            w.0.extend_from_slice(&id.0);
            match signal {
                Signal::Offer { video, sdp } => {
                    w.byte(1);
                    w.byte(u8::from(*video));
                    w.bytes(sdp.as_bytes());
                }
                Signal::Answer { sdp } => {
                    w.byte(2);
                    w.bytes(sdp.as_bytes());
                }
                Signal::Restart { sdp } => {
                    w.byte(3);
                    w.bytes(sdp.as_bytes());
                }
                Signal::RestartAnswer { sdp } => {
                    w.byte(4);
                    w.bytes(sdp.as_bytes());
                }
                Signal::End { reason } => {
                    w.byte(5);
                    w.byte(reason.to_byte());
                }
            }
        }
        Body::Mailbox {
            relay,
            mailbox,
            sender,
        } => {
            w.byte(MAILBOX);
            w.bytes(relay.as_bytes());
            w.0.extend_from_slice(mailbox.as_bytes());
            w.0.extend_from_slice(sender.expose());
        }
        Body::GroupAsk { ask } => {
            w.byte(GROUP_ASK);
            w.bytes(ask);
        }
        Body::GroupKeyPackage { ask, key_package } => {
            w.byte(GROUP_KEY_PACKAGE);
            w.bytes(ask);
            w.bytes(key_package);
        }
        Body::GroupInvite(g) => {
            w.byte(GROUP_INVITE);
            w.bytes(&g.ask);
            w.bytes(g.relay.as_bytes());
            w.0.extend_from_slice(g.mailbox.as_bytes());
            w.0.extend_from_slice(g.read.expose());
            w.0.extend_from_slice(g.write.expose());
            w.varint(g.after);
            w.varint(g.epoch);
            w.bytes(g.name.as_bytes());
            w.bytes(&g.welcome);
        }
    }
    Ok(w.0)
}

/// Decodes a message from MLS (this framing or the JSON of older releases);
/// `None` if it is neither, or has bytes left over.
pub(crate) fn decode(b: &[u8]) -> Option<AppMessage> {
    match b.first()? {
        &FORMAT => decode_binary(&b[1..]),
        b'{' => serde_json::from_slice(b).ok(),
        _ => None,
    }
}

fn decode_binary(b: &[u8]) -> Option<AppMessage> {
    let mut r = Reader(b);
    let id = r.bytes()?.to_vec();
    let sent_at = r.varint()?;
    let expire_after = r.opt()?;
    let body = match r.byte()? {
        TEXT => {
            let view_once = r.flag()?;
            Body::Text {
                text: r.text()?,
                view_once,
            }
        }
        ATTACHMENT => {
            let view_once = r.flag()?;
            Body::Attachment {
                attachment: serde_json::from_slice(r.bytes()?).ok()?,
                view_once,
            }
        }
        TIMER => Body::Timer { secs: r.opt()? },
        DELETE => Body::Delete { target: r.text()? },
        VERIFIERS => {
            let real = r.bytes()?.to_vec();
            let duress = r.bytes()?.to_vec();
            let prev_sig = if r.flag()? {
                Some(r.bytes()?.to_vec())
            } else {
                None
            };
            Body::Verifiers {
                real,
                duress,
                prev_sig,
            }
        }
        CHALLENGE => Body::Challenge {
            nonce: r.bytes()?.to_vec(),
        },
        ANSWER => Body::Answer {
            nonce: r.bytes()?.to_vec(),
            sig: r.bytes()?.to_vec(),
        },
        CALL => {
            use crate::call::{CallId, EndReason, Signal};
            let id: [u8; 16] = r.array()?;
            let signal = match r.byte()? {
                1 => {
                    let video = r.flag()?;
                    Signal::Offer {
                        video,
                        sdp: r.text()?,
                    }
                }
                2 => Signal::Answer { sdp: r.text()? },
                3 => Signal::Restart { sdp: r.text()? },
                4 => Signal::RestartAnswer { sdp: r.text()? },
                5 => Signal::End {
                    reason: EndReason::from_byte(r.byte()?)?,
                },
                _ => return None,
            };
            Body::Call {
                id: CallId(id),
                signal,
            }
        }
        MAILBOX => Body::Mailbox {
            relay: r.text()?,
            mailbox: ferry_proto::MailboxId::from_bytes(r.array()?),
            sender: crate::secret::KeyBytes::from_bytes(r.array()?),
        },
        GROUP_ASK => Body::GroupAsk {
            ask: r.bytes()?.to_vec(),
        },
        GROUP_KEY_PACKAGE => Body::GroupKeyPackage {
            ask: r.bytes()?.to_vec(),
            key_package: r.bytes()?.to_vec(),
        },
        GROUP_INVITE => Body::GroupInvite(Box::new(crate::envelope::GroupInvite {
            ask: r.bytes()?.to_vec(),
            relay: r.text()?,
            mailbox: ferry_proto::MailboxId::from_bytes(r.array()?),
            read: crate::secret::KeyBytes::from_bytes(r.array()?),
            write: crate::secret::KeyBytes::from_bytes(r.array()?),
            after: r.varint()?,
            epoch: r.varint()?,
            name: r.text()?,
            welcome: r.bytes()?.to_vec(),
        })),
        _ => return None,
    };
    if !r.0.is_empty() {
        return None;
    }
    Some(AppMessage {
        id,
        sent_at,
        expire_after,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(t: &str) -> AppMessage {
        AppMessage {
            id: vec![9; 16],
            sent_at: 1_790_000_000,
            expire_after: Some(86_400),
            body: Body::Text {
                text: t.into(),
                view_once: false,
            },
        }
    }

    fn same(a: &AppMessage, b: &AppMessage) -> bool {
        serde_json::to_vec(a).ok() == serde_json::to_vec(b).ok()
    }

    #[test]
    fn short_text_is_small_and_round_trips() {
        let m = text("hi");
        let e = encode(&m).unwrap();
        let json = serde_json::to_vec(&m).unwrap();
        assert!(e.len() <= 40, "{} bytes", e.len());
        assert!(json.len() > 2 * e.len());
        assert!(same(&decode(&e).unwrap(), &m));
        // What older releases sent still reads.
        assert!(same(&decode(&json).unwrap(), &m));
    }

    #[test]
    fn every_body_round_trips() {
        let bodies = vec![
            Body::Timer { secs: None },
            Body::Timer {
                secs: Some(u64::MAX),
            },
            Body::Delete {
                target: "abc".into(),
            },
            Body::Verifiers {
                real: vec![1; 32],
                duress: vec![2; 32],
                prev_sig: Some(vec![3; 64]),
            },
            Body::Verifiers {
                real: vec![],
                duress: vec![],
                prev_sig: None,
            },
            Body::Challenge { nonce: vec![4; 16] },
            Body::Answer {
                nonce: vec![4; 16],
                sig: vec![5; 64],
            },
            Body::Mailbox {
                relay: "https://relay.example:8443".into(),
                mailbox: ferry_proto::MailboxId::from_bytes([6; 16]),
                sender: crate::secret::KeyBytes::from_bytes([7; 32]),
            },
            Body::GroupAsk { ask: vec![8; 16] },
            Body::GroupKeyPackage {
                ask: vec![8; 16],
                key_package: vec![9; 300],
            },
            Body::GroupInvite(Box::new(crate::envelope::GroupInvite {
                ask: vec![8; 16],
                relay: "https://relay.example".into(),
                mailbox: ferry_proto::MailboxId::from_bytes([1; 16]),
                read: crate::secret::KeyBytes::from_bytes([2; 32]),
                write: crate::secret::KeyBytes::from_bytes([3; 32]),
                after: 12,
                epoch: 3,
                name: "가족".into(),
                welcome: vec![4; 2000],
            })),
        ];
        for body in bodies {
            let m = AppMessage {
                id: vec![1; 16],
                sent_at: 0,
                expire_after: None,
                body,
            };
            assert!(same(&decode(&encode(&m).unwrap()).unwrap(), &m));
        }
    }

    #[test]
    fn trailing_or_truncated_bytes_are_refused() {
        let e = encode(&text("hello")).unwrap();
        let mut longer = e.to_vec();
        longer.push(0);
        assert!(decode(&longer).is_none());
        for n in 0..e.len() {
            assert!(decode(&e[..n]).is_none(), "prefix of {n} bytes");
        }
        // An over-long varint.
        assert!(
            decode(&[
                FORMAT, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f
            ])
            .is_none()
        );
    }

    proptest! {
        #[test]
        fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut d = data.clone();
            d.insert(0, FORMAT);
            let _ = decode(&d);
            let _ = decode(&data);
        }

        #[test]
        fn text_round_trips(t in "\\PC{0,200}", sent in any::<u64>(), exp in proptest::option::of(any::<u64>()), vo in any::<bool>()) {
            let m = AppMessage { id: vec![7; 16], sent_at: sent, expire_after: exp, body: Body::Text { text: t, view_once: vo } };
            prop_assert!(same(&decode(&encode(&m).unwrap()).unwrap(), &m));
        }
    }
}
