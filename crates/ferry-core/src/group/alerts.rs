//! What a group message carries, and alerts inside a group.
//!
//! Every group message starts with a one-byte tag: `0` content (the rest is
//! the application's, opaque here), `1` an alert: "this member's device may
//! be in someone else's hands". An alert is an MLS message, so its sender
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

/// A group message's content, decoded.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Content<'a> {
    /// For the application.
    App(&'a [u8]),
    /// An alert about the member with this key (`None`: the sender).
    Alert(Option<&'a [u8]>),
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
            None => Ok(Received::Ignored),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_round_trips_and_unknown_tags_are_refused() {
        assert_eq!(parse(&content(b"hi")), Some(Content::App(b"hi")));
        assert_eq!(parse(&content(b"")), Some(Content::App(b"")));
        assert_eq!(parse(&alert(None)), Some(Content::Alert(None)));
        assert_eq!(parse(&alert(Some(b"k"))), Some(Content::Alert(Some(b"k"))));
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&[9, 1, 2]), None);
    }
}
