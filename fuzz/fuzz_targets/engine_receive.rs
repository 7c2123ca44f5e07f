//! Anything a relay (or someone holding a sender key) can put in a mailbox,
//! fed to an engine in every handshake state.
#![no_main]
use ferry_core::{Engine, InviteLink};
use rand_core::OsRng;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut payload = data.to_vec();
    let size = ferry_proto::padding::bucket_for(payload.len().saturating_sub(4)).unwrap_or(256);
    payload.resize(size, 0);
    let mut inviter = Engine::new("http://relay");
    let Ok(link) = inviter.create_invite(0, &mut OsRng, "x", 100) else { return };
    let mut invitee = Engine::new("http://relay");
    let Ok(parsed) = InviteLink::parse(&link.to_link()) else { return };
    if invitee.accept_invite(0, &mut OsRng, &parsed, "y").is_err() {
        return;
    }
    for e in [&mut inviter, &mut invitee] {
        for ib in e.inbound() {
            let _ = e.receive(1, &mut OsRng, ib.mailbox, 1, &payload);
        }
    }
});
