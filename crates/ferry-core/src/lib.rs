//! Ferry's client engine: contacts with local aliases, one-time invites, the
//! handshake that turns an accepted invite into a two-member MLS group, and
//! text messages with ids, timestamps and de-duplication.
//!
//! It is sans-IO: it never touches a socket, a file or the clock. Callers
//! pass `now` and an RNG, apply the [`Action`]s it returns (relay calls) and
//! persist [`Engine::export`] in the vault. (openmls draws its own
//! randomness from the OS through `openmls_rust_crypto`.)
//!
//! It must never put plaintext, keys or aliases anywhere but the state it
//! hands back for the encrypted vault, and never panic on input from the
//! network or from an invite link.
//!
//! Commit discipline: in every conversation the inviter creates the group
//! and is the only member that ever commits; the invitee sends application
//! messages and proposals to refresh its leaf ([`pcs`]). Two members
//! therefore never race to advance the epoch, and two commits for one epoch
//! mean a copy of a phone is in use.

pub mod alert;
pub mod attachment;
pub mod call;
pub mod challenge;
mod conversation;
mod engine;
mod envelope;
pub mod group;
pub mod invite;
pub mod mailbox_seal;
pub mod mls_store;
pub mod pcs;
mod reject;
pub mod relocate;
mod safety;
pub mod sdp;
mod secret;
mod state;
pub mod stow;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod wire;

pub use conversation::MAX_TEXT;
pub use engine::{
    Action, AlertReason, CommitToSend, Compromise, ContactInfo, ContactState, CoreError,
    DEFAULT_CANARY_SECS, DEFAULT_TIMER_SECS, Direction, Engine, Event, GroupEvent, GroupMember,
    GroupRead, GroupSummary, HistoryEntry, InboundMailbox, MAX_CONTACTS, MAX_GROUP_MEMBERS,
    MAX_GROUPS,
};
pub use invite::{InviteError, InviteLink};
pub use reject::RejectReason;
pub use secret::KeyBytes;
pub use state::{ActionId, Changes, Record, Saved};
