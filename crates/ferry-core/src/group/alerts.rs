//! What a group message carries, and alerts inside a group.
//!
//! Every group message starts with a one-byte tag: `0` content (the rest is
//! the application's, opaque here), `1` an alert: "this member's device may
//! be in someone else's hands", `2` a request to leave (an admin removes
//! the sender: members never store MLS proposals, which would stop every
//! member from sending until an admin committed them). An alert is an MLS message, so its sender
//! is authenticated by its group credential: a member may raise one about
//! itself (its duress unlock or dead-man switch does), an admin or owner
//! about anyone; a plain member's alert about someone else is refused by
//! everyone, so one informant cannot get another member quarantined. Every
//! member reads the log in the same order and quarantines the member at
//! the same position; the first admin online removes it.

use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::OpenMlsProvider;

use super::{GroupChat, GroupError, Received};

/// Content for the application.
const CONTENT: u8 = 0;
/// An alert; the rest is the member's key, or nothing for the sender.
const ALERT: u8 = 1;
/// The sender asks to leave.
const LEAVE: u8 = 2;

/// A group message's content, decoded.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Content<'a> {
    /// For the application.
    App(&'a [u8]),
    /// An alert about the member with this key (`None`: the sender).
    Alert(Option<&'a [u8]>),
    /// The sender asks to leave.
    Leave,
}

pub(super) fn content(body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(body.len() + 1);
    v.push(CONTENT);
    v.extend_from_slice(body);
    v
}

pub(super) fn alert(about: Option<&[u8]>) -> Vec<u8> {
    let mut v = vec![ALERT];
    v.extend_from_slice(about.unwrap_or_default());
    v
}

/// `None` for anything this version does not know.
pub(super) fn parse(bytes: &[u8]) -> Option<Content<'_>> {
    match bytes.split_first()? {
        (&CONTENT, rest) => Some(Content::App(rest)),
        (&ALERT, []) => Some(Content::Alert(None)),
        (&ALERT, key) => Some(Content::Alert(Some(key))),
        (&LEAVE, []) => Some(Content::Leave),
        _ => None,
    }
}

impl GroupChat {
    /// Raises an alert about `about` (`None`: this member itself, as a
    /// duress unlock does); only an admin's alert about someone else counts.
    pub fn send_alert(
        &mut self,
        provider: &impl OpenMlsProvider,
        signer: &SignatureKeyPair,
        about: Option<&[u8]>,
    ) -> Result<Vec<u8>, GroupError> {
        self.seal(provider, signer, &alert(about))
    }

    /// Asks the admins to remove this member (its leaving). The last owner
    /// cannot leave: refused here, and ignored by everyone if sent anyway.
    pub fn request_leave(
        &mut self,
        provider: &impl OpenMlsProvider,
        signer: &SignatureKeyPair,
    ) -> Result<Vec<u8>, GroupError> {
        if self.is_last_owner(&self.own_key())? {
            return Err(GroupError::Refused(super::Refusal::BadSettings));
        }
        self.seal(provider, signer, &[LEAVE])
    }

    /// Members quarantined by an alert and not removed yet (an admin
    /// removes them).
    pub fn quarantined(&self) -> &[Vec<u8>] {
        &self.quarantined
    }

    pub(super) fn on_app(&mut self, from: Vec<u8>, bytes: &[u8]) -> Result<Received, GroupError> {
        match parse(bytes) {
            Some(Content::App(body)) => Ok(Received::Message {
                quarantined: self.quarantined.contains(&from),
                from,
                body: body.to_vec(),
            }),
            Some(Content::Alert(about)) => {
                let member = about.map_or_else(|| from.clone(), <[u8]>::to_vec);
                if member != from && !self.settings()?.role_of(&from).is_admin() {
                    return Ok(Received::AlertRefused { by: from });
                }
                if self.index_of(&member).is_err() {
                    return Ok(Received::Ignored);
                }
                if !self.quarantined.contains(&member) {
                    self.quarantined.push(member.clone());
                }
                Ok(Received::Quarantined { member, by: from })
            }
            Some(Content::Leave) => {
                if self.is_last_owner(&from)? {
                    return Ok(Received::Ignored);
                }
                Ok(Received::LeaveRequest { member: from })
            }
            None => Ok(Received::Ignored),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::group::tests::group_of;

    #[test]
    fn framing_round_trips_and_unknown_tags_are_refused() {
        assert_eq!(parse(&content(b"hi")), Some(Content::App(b"hi")));
        assert_eq!(parse(&content(b"")), Some(Content::App(b"")));
        assert_eq!(parse(&alert(None)), Some(Content::Alert(None)));
        assert_eq!(parse(&alert(Some(b"k"))), Some(Content::Alert(Some(b"k"))));
        assert_eq!(parse(&[LEAVE]), Some(Content::Leave));
        assert_eq!(parse(&[LEAVE, 1]), None);
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&[9, 1, 2]), None);
    }

    /// A member's duress alert about itself quarantines it for everyone at the
    /// same position; a plain member cannot get another quarantined; an
    /// admin's alert can, and the admin then removes the member.
    #[test]
    fn alerts_quarantine_alike_and_one_informant_cannot_forge_one() {
        let (mut people, mut log) = group_of(4);
        let (key1, key2, key3) = (people[1].key(), people[2].key(), people[3].key());
        // Member 2 accuses member 3: refused by everyone.
        let accusation = people[2]
            .act(|c, p, s| c.send_alert(p, s, Some(&key3)))
            .unwrap();
        log.post(accusation);
        // Member 1 unlocks under duress: its alert is about itself.
        people[1].send(&mut log, "before the duress");
        let duress = people[1].act(|c, p, s| c.send_alert(p, s, None)).unwrap();
        log.post(duress);
        people[1].send(&mut log, "sent by whoever holds the phone");
        for (i, p) in people.iter_mut().enumerate() {
            p.catch_up(i, &log);
        }
        for i in [0, 2, 3] {
            assert_eq!(
                people[i].chat().quarantined(),
                std::slice::from_ref(&key1),
                "member {i}"
            );
        }
        // What it sent after the alert is marked, what came before is not;
        // the accusation was refused by everyone who read it.
        for i in [0, 3] {
            assert_eq!(
                people[i].flagged,
                [b"sent by whoever holds the phone".to_vec()]
            );
            assert_eq!(people[i].refused, 1);
            assert!(
                people[i]
                    .texts
                    .iter()
                    .any(|(_, b)| b == b"before the duress")
            );
        }
        assert_eq!(people[1].refused, 1);
        // The owner's alert about member 2 counts; then it removes both.
        let alert = people[0]
            .act(|c, p, s| c.send_alert(p, s, Some(&key2)))
            .unwrap();
        log.post(alert);
        people[3].catch_up(3, &log);
        assert_eq!(people[3].chat().quarantined(), [key1.clone(), key2.clone()]);
        for victim in [&key1, &key2] {
            people[0].catch_up(0, &log);
            let out = people[0].act(|c, p, s| c.remove(p, s, victim)).unwrap();
            assert!(people[0].push(0, &mut log, out));
        }
        people[0].catch_up(0, &log);
        people[3].catch_up(3, &log);
        assert!(people[0].chat().quarantined().is_empty());
        assert!(people[3].chat().quarantined().is_empty());
        assert_eq!(people[3].chat().members().unwrap().len(), 2);
    }
}
