//! Why a payload was dropped instead of shown.
//!
//! Every payload problem ends as [`crate::Event::Rejected`] with one of
//! these reasons (never with content); only a broken saved state is an
//! error. The text forms are stable: `--json` prints them.

/// Why a payload was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// The padding is malformed.
    MalformedPadding,
    /// Not sealed with this mailbox's key (not from the contact, or moved
    /// from another mailbox).
    NotSealedForMailbox,
    /// Sealed by the contact with a framing of another Ferry release.
    OtherVersion,
    /// A sequence number far beyond anything the relay could have stored.
    ImplausibleSequence,
    /// The message is empty.
    Empty,
    /// This kind of message is not expected from this contact now.
    UnexpectedForContact,
    /// The invite was already used.
    InviteUsed,
    /// The invite expired.
    InviteExpired,
    /// Not sealed with the invite's key.
    NotSealedWithInvite,
    /// A malformed invite reply.
    MalformedHello,
    /// A malformed MLS key package.
    MalformedKeyPackage,
    /// An invalid MLS key package.
    InvalidKeyPackage,
    /// MLS refused the key package.
    KeyPackageRefused,
    /// A welcome that was not expected.
    UnexpectedWelcome,
    /// A malformed welcome.
    MalformedWelcome,
    /// A malformed MLS welcome.
    MalformedMlsWelcome,
    /// Not an MLS welcome.
    NotMlsWelcome,
    /// MLS refused the welcome.
    WelcomeRefused,
    /// A malformed MLS message.
    MalformedMls,
    /// Not an MLS protocol message.
    NotMlsProtocolMessage,
    /// Does not decrypt as the contact.
    DoesNotDecrypt,
    /// An MLS handshake message where none is expected.
    UnexpectedHandshake,
    /// Malformed message content.
    MalformedContent,
    /// A malformed attachment reference.
    MalformedAttachment,
    /// An attachment on another relay than the contact's.
    ForeignRelayAttachment,
    /// Could not be processed.
    Unprocessable,
    /// An alert before any alert key was agreed.
    AlertWithoutKey,
    /// An alert not sealed with the contact's alert key.
    ForgedAlert,
    /// A malformed alert.
    MalformedAlert,
    /// Malformed phrase verifiers.
    MalformedVerifiers,
    /// A verifier change not signed with the current phrase.
    UnsignedVerifierChange,
    /// A malformed challenge.
    MalformedChallenge,
    /// An answer to no open challenge.
    UnaskedAnswer,
    /// A mailbox move to another relay than the contact's.
    MailboxElsewhere,
    /// Made in an epoch the contact had already left: an out-of-date copy
    /// of the contact's phone.
    StaleEpoch,
}

impl RejectReason {
    /// Stable text form for users and `--json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MalformedPadding => "malformed padding",
            Self::NotSealedForMailbox => "not sealed for this mailbox",
            Self::OtherVersion => "sent by another Ferry version; both sides need the same release",
            Self::ImplausibleSequence => "implausible sequence number from the relay",
            Self::Empty => "empty message",
            Self::UnexpectedForContact => "unexpected message for this contact",
            Self::InviteUsed => "invite already used",
            Self::InviteExpired => "invite expired",
            Self::NotSealedWithInvite => "not sealed with the invite",
            Self::MalformedHello => "malformed hello",
            Self::MalformedKeyPackage => "malformed key package",
            Self::InvalidKeyPackage => "invalid key package",
            Self::KeyPackageRefused => "key package refused",
            Self::UnexpectedWelcome => "unexpected welcome",
            Self::MalformedWelcome => "malformed welcome",
            Self::MalformedMlsWelcome => "malformed MLS welcome",
            Self::NotMlsWelcome => "not an MLS welcome",
            Self::WelcomeRefused => "MLS welcome refused",
            Self::MalformedMls => "malformed MLS message",
            Self::NotMlsProtocolMessage => "not an MLS protocol message",
            Self::DoesNotDecrypt => "does not decrypt as the contact",
            Self::UnexpectedHandshake => "unexpected MLS handshake message",
            Self::MalformedContent => "malformed message content",
            Self::MalformedAttachment => "malformed attachment reference",
            Self::ForeignRelayAttachment => "attachment on a foreign relay",
            Self::Unprocessable => "could not be processed",
            Self::AlertWithoutKey => "alert without a key",
            Self::ForgedAlert => "forged alert",
            Self::MalformedAlert => "malformed alert",
            Self::MalformedVerifiers => "malformed verifiers",
            Self::UnsignedVerifierChange => "verifier change not signed with the current phrase",
            Self::MalformedChallenge => "malformed challenge",
            Self::UnaskedAnswer => "answer to no open challenge",
            Self::MailboxElsewhere => "mailbox move to another relay",
            Self::StaleEpoch => {
                "sent with keys the contact no longer uses (an old copy of their phone?)"
            }
        }
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
