//! WebSocket frames from clients, and the JSON bodies of relay requests.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<ferry_proto::api::ClientFrame>(data);
    let _ = serde_json::from_slice::<ferry_proto::api::SyncRequest>(data);
    let _ = serde_json::from_slice::<ferry_proto::api::CreateMailbox>(data);
    let _ = serde_json::from_slice::<ferry_proto::api::ServerFrame>(data);
});
