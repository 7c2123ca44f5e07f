//! Ferry's wire format: identifiers, keys, padding buckets, signed-request
//! authentication and the JSON bodies exchanged with a relay.
//!
//! This crate owns every byte layout that crosses the network, so that the
//! relay and the client cannot disagree. It must never do I/O, read the clock
//! or use a global RNG: callers pass `now` and a `CryptoRngCore`.
//! Untrusted input is parsed into typed values or rejected with an error; it
//! never panics.

pub mod api;
pub mod auth;
pub mod b64;
pub mod error_code;
pub mod ids;
pub mod json_int;
pub mod keys;
pub mod padding;

pub use error_code::ErrorCode;
pub use ids::{MailboxId, Seq};
pub use keys::{MailboxKey, PublicKey};

/// Version of the relay HTTP API, the first segment of every path.
pub const API_VERSION: &str = "v1";
