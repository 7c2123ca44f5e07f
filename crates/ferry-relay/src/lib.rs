//! The Ferry relay: anonymous mailboxes with durable store-and-forward and
//! live push over WebSocket.
//!
//! It owns the HTTP API (documented in `openapi.json`, checked by tests),
//! request authentication (Ed25519 signatures by mailbox keys, replay and
//! staleness checks), quotas, expiry, metrics, and storage behind
//! [`store::MailboxStore`].
//!
//! It must never learn or log who talks to whom: no user identities exist
//! here, payloads are opaque padded ciphertext, and logs carry no mailbox ids,
//! IP addresses or payload sizes. Clients get a status and a stable error
//! code; the detail goes to the log.

pub mod blob;
pub mod clock;
pub mod config;
mod error;
pub mod limit;
mod metrics;
mod push;
mod records;
mod replay;
mod router;
mod routes;
mod server;
mod service;
pub mod store;
pub mod tls;
pub mod turn;
mod tus;
mod ws;

pub use clock::{Clock, SystemClock};
pub use config::RelayConfig;
pub use router::ROUTES;
pub use server::{Relay, RelayError, RunningRelay};
pub use tls::TlsFiles;
pub use turn::TurnSettings;

/// The HTTP status the relay answers with for an error code.
pub fn http_status(code: ferry_proto::ErrorCode) -> u16 {
    error::status_of(code).as_u16()
}
