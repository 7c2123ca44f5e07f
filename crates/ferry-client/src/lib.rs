//! Ferry's client driver: the async side that talks to relays.
//!
//! [`relay::RelayClient`] is a typed client for the relay API (signed HTTP
//! requests and the live WebSocket); [`Profile`] drives `ferry-core` and
//! `ferry-vault` over it: one-round-trip sync of every mailbox, live watch,
//! retries with backoff, and acks only after what arrived is committed to the
//! vault. It reads the clock and the OS RNG on behalf of the sans-IO layers;
//! it must never log payloads, keys, aliases or mailbox ids.

pub mod live;
pub mod profile;
pub mod relay;
pub mod transfer;

pub use live::LiveConnection;
pub use profile::{LockLimits, LockReason, Profile, ProfileError, Shown};
pub use relay::{ClientError, RelayClient};
