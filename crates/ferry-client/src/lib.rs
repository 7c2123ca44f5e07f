//! Ferry's client driver: the async side that talks to relays.
//!
//! For now it holds [`relay::RelayClient`], a typed client for the relay API
//! (signed HTTP requests and the live WebSocket). It reads the clock and the
//! OS RNG on behalf of the sans-IO layers; it must never log payloads, keys
//! or mailbox ids.

pub mod live;
pub mod relay;

pub use live::LiveConnection;
pub use relay::{ClientError, RelayClient};
