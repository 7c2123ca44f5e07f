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
    /// No recovery phrase is set up for stowing.
    #[error("no recovery phrase is set up; run `ferry recovery setup` first")]
    NoRecovery,
    /// Nothing is stowed under this phrase (and PIN) at this relay.
    #[error(
        "nothing is stowed under this phrase at this relay: check the words, their order and the relay address"
    )]
    NoStow,
    /// The account is open on another device.
    #[error(
        "this account is open on another device: stow it there first, or take it over with --takeover (the other device is then shut out)"
    )]
    StowLeased,
    /// A restore elsewhere took the account over from this device.
    #[error(
        "this account was taken over by a restore on another device; this copy can no longer be stowed"
    )]
    StowTakenOver,
    /// The relay holds a newer stow than this device continues from.
    #[error("the relay holds a newer stow of this account than this device; nothing was changed")]
    StowConflict,
    /// The stow was sent but the relay's answer did not arrive: the next
    /// unlock finishes it before anything else.
    #[error(
        "the stow was sent but the relay did not confirm it ({0}); run `ferry stow` again when the relay is reachable (nothing else runs on this profile until then)"
    )]
    StowUnfinished(Box<ClientError>),
    /// The profile had a stow pending, which this unlock finished: the
    /// account is on the relay and the profile is gone from this device.
    #[error(
        "this profile had been stowed; the stow is now finished and the profile is gone from this device"
    )]
    StowFinished(super::stow::Stowed),
    /// The relay served an older stow than a witness relay has seen.
    #[error(
        "the relay served an older copy of the account (version {served}) than {witness} has seen (version {witnessed}); nothing was installed: this relay cannot be trusted with the account"
    )]
    StowStale {
        /// The version served.
        served: u64,
        /// The version the witness saw.
        witnessed: u64,
        /// The witness relay.
        witness: String,
    },
    /// A witness relay could not be asked.
    #[error(
        "cannot confirm the account's version with {witness} ({error}); nothing was installed, try again when it is reachable"
    )]
    WitnessUnreachable {
        /// The witness relay.
        witness: String,
        /// Why.
        error: Box<ClientError>,
    },
    /// A wrong PIN.
    #[error("wrong PIN; {left} tries left before the stowed account is deleted")]
    WrongPin {
        /// Tries left.
        left: u32,
    },
    /// The restored profile opened, but the relay did not take this
    /// device's copy back: the restore is not finished.
    #[error(
        "the relay did not take the restored account back ({0}); run `ferry restore` again with the same phrase when it is reachable"
    )]
    RestoreCheckpoint(Box<ClientError>),
    /// A restore into this directory did not finish.
    #[error(
        "a restore into this directory did not finish; run `ferry restore` again with the same phrase"
    )]
    RestoreUnfinished,
    /// The phrase or the stowed record.
    #[error(transparent)]
    Stow(#[from] ferry_core::stow::StowError),
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
            Self::Vault(VaultError::DuressInDecoy) => "duress_in_decoy",
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
            Self::Core(CoreError::UnknownGroup) => "unknown_group",
            Self::Core(CoreError::NotGroupAdmin) => "not_group_admin",
            Self::Core(CoreError::UnknownMember) => "unknown_member",
            Self::Core(CoreError::AmbiguousMember) => "ambiguous_member",
            Self::Core(CoreError::AlreadyMember) => "already_member",
            Self::Core(CoreError::GroupFull) => "group_full",
            Self::Core(CoreError::TooManyGroups) => "too_many_groups",
            Self::Core(CoreError::LastOwner) => "last_owner",
            Self::Core(_) => "core",
            Self::Relay(c) => client_code(c),
            Self::BadRelayUrl => "bad_relay_url",
            Self::NoAttachment => "no_attachment",
            Self::NoMessage => "no_message",
            Self::NoDecoy => "no_decoy",
            Self::OutOfStep => "session_out_of_step",
            Self::NoRecovery => "no_recovery",
            Self::NoStow => "no_stow",
            Self::StowLeased => "stow_leased",
            Self::StowTakenOver => "stow_taken_over",
            Self::StowConflict => "stow_conflict",
            Self::StowUnfinished(_) => "stow_unfinished",
            Self::StowFinished(_) => "stowed",
            Self::WrongPin { .. } => "wrong_pin",
            Self::StowStale { .. } => "stow_stale",
            Self::WitnessUnreachable { .. } => "witness_unreachable",
            Self::RestoreUnfinished | Self::RestoreCheckpoint(_) => "restore_unfinished",
            Self::Stow(ferry_core::stow::StowError::BadPhrase) => "bad_phrase",
            Self::Stow(_) => "stow_damaged",
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
