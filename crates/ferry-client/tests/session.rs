//! A session against a real relay on loopback: one engine load for a whole
//! burst of pushed messages, and one event stream that reports them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/peer.rs"]
mod peer;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ferry_client::{Event, LockLimits, Session, Status};
use ferry_relay::{Relay, RelayConfig};
use rand_core::OsRng;
use secrecy::SecretString;

const BURST: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_1000_pushed_messages_is_processed_with_one_engine_load() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = RelayConfig::new(dir.path().join("relay"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.max_messages_per_mailbox = 10_000;
    // A scripted burst far faster than a person: not about abuse limits.
    config.rate_per_key = ferry_relay::limit::Rate::new(1e6, 1e6);
    let running = Relay::embedded(config).unwrap().start().await.unwrap();
    let url = running.url();
    let pass = SecretString::from("session test passphrase".to_owned());
    let home = dir.path().join("me");
    drop(Session::init(&home, &pass, &url, None).unwrap());
    let mut s = Session::unlock(&home, &pass).await.unwrap();
    let mut peers = peer::add_peers(&mut s, &url, 1, 0).await;
    let mut peer = peers.remove(0);

    let mut stream = s.subscribe();
    let seen = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(tokio::sync::Notify::new());
    let (counter, notify) = (seen.clone(), done.clone());
    s.set_listener(Some(Box::new(move |ev| {
        if matches!(ev, Event::Received { .. })
            && counter.fetch_add(1, Ordering::SeqCst) + 1 == BURST
        {
            notify.notify_one();
        }
    })));
    let loads_before = s.write_stats().engine_loads;
    let sender = tokio::spawn(async move {
        // After watch has subscribed: these arrive as live pushes.
        tokio::time::sleep(Duration::from_millis(500)).await;
        for i in 0..BURST {
            peer.send_text(&format!("burst {i}")).await;
        }
        peer
    });
    let stop = async {
        tokio::select! {
            () = done.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(300)) => panic!("the burst did not arrive"),
        }
    };
    let locked = s.watch(stop, LockLimits::default()).await.unwrap();
    assert!(locked.is_none());
    let mut peer = sender.await.unwrap();
    assert_eq!(
        s.write_stats().engine_loads,
        loads_before,
        "the engine was loaded again while processing the burst"
    );

    // The stream reported each message once, in order, and the history
    // holds them all.
    let mut texts = Vec::new();
    while let Ok(ev) = stream.try_recv() {
        if let Event::Received { entry, .. } = ev {
            texts.push(entry.text);
        }
    }
    let want: Vec<String> = (0..BURST).map(|i| format!("burst {i}")).collect();
    assert_eq!(texts, want);
    let history: Vec<String> = s
        .history("peer 0")
        .unwrap()
        .into_iter()
        .map(|e| e.text)
        .collect();
    assert_eq!(history, want);

    // A send is reported queued, then on the relay; the peer gets it.
    let mut stream = s.subscribe();
    let sent = s.send("peer 0", "back to you", false, false).await.unwrap();
    let mut statuses = Vec::new();
    while let Ok(ev) = stream.try_recv() {
        if let Event::Status { id, status, .. } = ev {
            assert_eq!(id, sent.id);
            statuses.push(status);
        }
    }
    assert_eq!(statuses, [Status::Queued, Status::OnRelay]);
    peer.receive().await;

    // Sending it again (the app's "retry" for a refused message) makes a
    // new message with the same text and forgets the old one.
    let mut stream = s.subscribe();
    let again = s.resend("peer 0", &sent.id).await.unwrap();
    assert_ne!(again.id, sent.id);
    assert_eq!(again.text, "back to you");
    let ids: Vec<String> = s
        .history("peer 0")
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert!(ids.contains(&again.id) && !ids.contains(&sent.id));
    let mut statuses = Vec::new();
    while let Ok(ev) = stream.try_recv() {
        if let Event::Status { id, status, .. } = ev {
            assert_eq!(id, again.id);
            statuses.push(status);
        }
    }
    assert_eq!(statuses, [Status::Queued, Status::OnRelay]);
    assert!(matches!(
        s.resend("peer 0", "no-such-id").await,
        Err(ferry_client::SessionError::NoMessage)
    ));
    peer.receive().await;
    drop(s);
    running.shutdown().await.unwrap();
}

/// A relay on loopback and a new profile on it.
struct Setup {
    dir: tempfile::TempDir,
    running: ferry_relay::RunningRelay,
    url: String,
    pass: SecretString,
    duress: SecretString,
    home: std::path::PathBuf,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut config = RelayConfig::new(dir.path().join("relay"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    let running = Relay::embedded(config).unwrap().start().await.unwrap();
    let url = running.url();
    let pass = SecretString::from("real passphrase".to_owned());
    let duress = SecretString::from("duress passphrase".to_owned());
    let home = dir.path().join("me");
    drop(Session::init(&home, &pass, &url, None).unwrap());
    Setup {
        dir,
        running,
        url,
        pass,
        duress,
        home,
    }
}

/// The captor forces the duress passphrase on a phone whose decoy cannot
/// even be loaded (damaged, or from a Ferry that cannot read it): the
/// contacts are warned all the same, and the real profile is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duress_unlock_warns_contacts_even_when_the_decoy_cannot_load() {
    let Setup {
        dir: _dir,
        running,
        url,
        pass,
        duress,
        home,
    } = setup().await;
    let mut s = Session::unlock(&home, &pass).await.unwrap();
    let mut peer = peer::add_peers(&mut s, &url, 1, 0).await.remove(0);
    s.set_duress(&duress, &url).unwrap();
    s.finish().unwrap(); // the capsule goes into the decoy
    drop(s);

    // Damage the decoy's engine state (through the real profile).
    {
        let real = ferry_vault::Vault::unlock(&home, &pass, &mut OsRng).unwrap();
        let mut decoy = real.open_decoy().unwrap().unwrap();
        decoy
            .transaction(|tx| tx.put_blob("profile", b"not a profile"))
            .unwrap();
    }
    assert!(peer.engine.contacts()[0].compromised.is_none());

    assert!(Session::unlock(&home, &duress).await.is_err());
    peer.receive().await;
    assert!(
        peer.engine.contacts()[0].compromised.is_some(),
        "the contact was not warned"
    );
    assert!(matches!(
        ferry_vault::Vault::unlock(&home, &pass, &mut OsRng),
        Err(ferry_vault::VaultError::WrongPassphrase)
    ));
    running.shutdown().await.unwrap();
}

/// The captor forces the duress passphrase and reads the decoy with a tool
/// of their own (nothing fires): its capsule holds, per contact, only a
/// relay, a canary id and a key that can fire that canary, in a region as
/// large as in every profile; the key can neither delete the canary nor
/// reveal where the contacts' mailboxes are, and using it warns them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_decoy_capsule_holds_only_what_can_fire() {
    let Setup {
        dir: _dir,
        running,
        url,
        pass,
        duress,
        home,
    } = setup().await;
    let mut s = Session::unlock(&home, &pass).await.unwrap();
    let mut peers = peer::add_peers(&mut s, &url, 2, 0).await;
    drop(s);
    // A profile without duress already holds a capsule region.
    let region = {
        let v = ferry_vault::Vault::unlock(&home, &pass, &mut OsRng).unwrap();
        v.blob("capsule").unwrap().expect("no capsule region").len()
    };
    let mut s = Session::unlock(&home, &pass).await.unwrap();
    s.set_duress(&duress, &url).unwrap();
    s.finish().unwrap();
    drop(s);

    let decoy = ferry_vault::Vault::unlock(&home, &duress, &mut OsRng).unwrap();
    let capsule = decoy.blob("capsule").unwrap().unwrap();
    assert_eq!(capsule.len(), region, "the capsule's size gives it away");
    let text = std::str::from_utf8(&capsule[1..]).unwrap();
    // Each relay once, then per canary: the relay's index, the canary id
    // and the fire key. Nothing else.
    let stored: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
    let fields: Vec<&String> = stored.as_object().unwrap().keys().collect();
    assert_eq!(fields, ["entries", "relays"], "{fields:?}");
    assert_eq!(stored["relays"].as_array().unwrap().len(), 1);
    let entries = stored["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for e in entries {
        let e = e.as_array().unwrap();
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].is_u64() && e[1].is_string() && e[2].is_string());
    }
    for p in &peers {
        let mailbox = p.engine.inbound()[0].mailbox.to_b64();
        assert!(
            !text.contains(&mailbox),
            "a contact's mailbox is in the capsule"
        );
    }
    drop(decoy);

    // The captor tries the keys: no deletion; a fire warns the contact.
    let client = ferry_client::RelayClient::new(&url).unwrap();
    let first = entries[0].as_array().unwrap();
    let id: ferry_proto::MailboxId = first[1].as_str().unwrap().parse().unwrap();
    let fire = ferry_proto::b64::decode_array::<32>(first[2].as_str().unwrap()).unwrap();
    let fire = ferry_proto::MailboxKey::from_secret_bytes(&fire);
    assert_eq!(
        client.delete_canary(id, &fire).await.unwrap_err().code(),
        Some(ferry_proto::ErrorCode::BadSignature)
    );
    client
        .renew_canary(id, &fire, ferry_client::session::now() + 3600)
        .await
        .unwrap();
    let mut warned = 0;
    for p in &mut peers {
        p.receive().await;
        if let Some(c) = p.engine.contacts()[0].compromised {
            assert_eq!(c.reason, ferry_core::AlertReason::Duress);
            warned += 1;
        }
    }
    assert_eq!(warned, 1, "exactly the fired canary's contact is warned");
    running.shutdown().await.unwrap();
}
