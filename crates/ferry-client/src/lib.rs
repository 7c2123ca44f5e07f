//! Ferry's client: a [`Session`] drives `ferry-core` and `ferry-vault` over
//! the relays.
//!
//! [`relay::RelayClient`] is a typed client for the relay API (signed HTTP
//! requests and the live WebSocket); a [`Session`] is one unlocked profile
//! with its engine in memory: one-round-trip sync of every mailbox, live
//! watch, retries with backoff, acks only after what arrived is committed to
//! the vault, and one typed stream of [`Event`]s for every front end. It
//! reads the clock and the OS RNG on behalf of the sans-IO layers; it must
//! never log payloads, keys, aliases or mailbox ids.

pub mod live;
pub mod net;
pub mod relay;
pub mod session;
pub mod transfer;
pub mod transport;

pub use ferry_core::stow::{PhraseLanguage, RecoveryPhrase};
pub use live::LiveConnection;
pub use net::{Network, ProxyError, ProxyUrl};
pub use relay::{GroupCommit, RelayClient};
pub use session::{
    Event, EventStream, FileMeta, Job, JobFn, Listener, LockLimits, LockReason, MAX_INLINE, Media,
    SaveOutcome, Session, SessionError, Status, WriteStats, civil_date, now, panic_wipe,
    profile_exists,
};
pub use transfer::Progress;
pub use transport::{ClientError, Transport};

// What front ends show, from the engine, so that they depend on this crate
// alone.
pub use ferry_core::attachment::{AttachmentKind, AttachmentRef};
pub use ferry_core::call::{
    CallLog, CallOutcome, CallUpdate, CallView, EndReason, Phase as CallPhase,
};
pub use ferry_core::challenge::ProofResult;
pub use ferry_core::group::{Role as GroupRole, neutral_name};
pub use ferry_core::{
    AlertReason, Compromise, ContactInfo, ContactState, Direction, GroupMember, GroupSummary,
    HistoryEntry, RejectReason,
};
