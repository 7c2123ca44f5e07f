//! Why a session operation failed.

use ferry_core::CoreError;
use ferry_vault::VaultError;

use crate::relay::ClientError;
use crate::transfer::TransferError;

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The vault failed (wrong passphrase, no profile, ...).
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The engine refused.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The relay could not be reached or refused.
    #[error(transparent)]
    Relay(#[from] ClientError),
    /// The inviter's relay refused the invite.
    #[error("the invite was already used, withdrawn, or is not valid (the relay refused it)")]
    InviteRefused,
    /// The relay URL is not usable.
    #[error("the relay URL must start with http:// or https://")]
    BadRelayUrl,
    /// An attachment transfer failed.
    #[error(transparent)]
    Transfer(#[from] TransferError),
    /// The message has no attachment (or does not exist).
    #[error("no attachment with that message id in this conversation")]
    NoAttachment,
    /// No duress passphrase (and so no decoy) is set.
    #[error("no duress passphrase is set, so there is no decoy")]
    NoDecoy,
    /// No such message in this conversation (or it is gone).
    #[error("no such message in this conversation")]
    NoMessage,
    /// Calls are off while the profile uses a proxy.
    #[error(
        "calls are off while a proxy is set: a call's audio and video cannot go through Tor or a SOCKS proxy, and would reveal your address to the relay's TURN server"
    )]
    CallsNeedDirect,
    /// No TURN credentials were fetched for this call.
    #[error("no TURN credentials for this call; start it again")]
    NoTurn,
    /// After a failure the session could not reload the profile; it
    /// changes nothing more.
    #[error("the profile could not be read back after an error; unlock it again")]
    OutOfStep,
}

/// The code of a relay call's failure: TLS and proxy trouble are told
/// apart from an unreachable or refusing relay.
fn client_code(e: &ClientError) -> &'static str {
    match e {
        ClientError::Certificate(_) => "relay_certificate",
        ClientError::Proxy(_) => "proxy_unreachable",
        _ => "relay",
    }
}

impl SessionError {
    /// A stable code for `--json` errors.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Vault(VaultError::WrongPassphrase) => "wrong_passphrase",
            Self::Vault(VaultError::NotFound) => "no_profile",
            Self::Vault(VaultError::AlreadyExists) => "profile_exists",
            Self::Vault(VaultError::InUse) => "profile_in_use",
            Self::Vault(VaultError::DuressIsPassphrase) => "duress_is_passphrase",
            Self::Vault(_) => "vault",
            Self::Core(CoreError::AliasTaken) => "alias_taken",
            Self::Core(CoreError::TooManyContacts) => "too_many_contacts",
            Self::Core(CoreError::UnknownContact) => "unknown_contact",
            Self::Core(CoreError::NotEstablished) => "not_established",
            Self::Core(CoreError::Invite(ferry_core::InviteError::Expired)) => "invite_expired",
            Self::Core(CoreError::Invite(_)) => "invite_invalid",
            Self::Core(CoreError::Compromised) => "contact_compromised",
            Self::Core(CoreError::NoChallenge) => "no_challenge",
            Self::Core(CoreError::PhraseNeeded) => "phrase_needed",
            Self::Core(CoreError::InviteReused) | Self::InviteRefused => "invite_used",
            Self::Core(CoreError::Call(ferry_core::call::CallError::Busy)) => "call_busy",
            Self::Core(CoreError::Call(ferry_core::call::CallError::NoCall)) => "no_call",
            Self::Core(CoreError::Call(ferry_core::call::CallError::Sdp(_))) => "call_refused",
            Self::CallsNeedDirect => "calls_need_direct",
            Self::NoTurn => "no_turn",
            Self::Core(_) => "core",
            Self::Relay(c) => client_code(c),
            Self::BadRelayUrl => "bad_relay_url",
            Self::NoAttachment => "no_attachment",
            Self::NoMessage => "no_message",
            Self::NoDecoy => "no_decoy",
            Self::OutOfStep => "session_out_of_step",
            Self::Transfer(t) => match t {
                TransferError::Relay(c) => client_code(c),
                TransferError::Gone => "attachment_gone",
                TransferError::TooLarge { .. } => "file_too_large",
                TransferError::FileChanged => "file_changed",
                TransferError::Attachment(ferry_core::attachment::AttachmentError::TooLarge) => {
                    "file_too_large"
                }
                TransferError::Attachment(_) => "attachment_tampered",
                TransferError::Exists => "destination_exists",
                TransferError::Io(_) => "io",
                TransferError::Interrupted { .. } => "transfer_interrupted",
                TransferError::RelayFull => "relay_full",
            },
        }
    }
}
