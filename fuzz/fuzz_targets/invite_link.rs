//! Invite links typed or scanned by users.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = ferry_core::InviteLink::parse(&text);
    let _ = ferry_core::InviteLink::parse(&format!("ferry://invite/v1/{text}"));
});
