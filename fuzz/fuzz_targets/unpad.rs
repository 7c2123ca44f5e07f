//! Padded payloads from mailboxes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ferry_proto::padding::unpad(data);
});
