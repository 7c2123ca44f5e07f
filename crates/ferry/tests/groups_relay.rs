//! Group mailboxes at a real relay over HTTP: one upload per message read
//! by every member's cursor, commits ordered by compare-and-swap and taken
//! only from admin keys, a removal that shuts the removed key out, and a
//! commit that survives `kill -9`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use ferry_client::{ClientError, GroupCommit, RelayClient};
use ferry_proto::api::GroupEntryKind;
use ferry_proto::{ErrorCode, MailboxId, MailboxKey, Seq};
use ferry_testkit::RelayProcess;
use rand_core::OsRng;

fn relay() -> RelayProcess {
    RelayProcess::start(std::path::Path::new(env!("CARGO_BIN_EXE_ferry")), &[]).unwrap()
}

struct Group {
    id: MailboxId,
    admin: MailboxKey,
    read: MailboxKey,
    write: MailboxKey,
}

async fn group(c: &RelayClient) -> Group {
    let g = Group {
        id: MailboxId::random(&mut OsRng),
        admin: MailboxKey::generate(&mut OsRng),
        read: MailboxKey::generate(&mut OsRng),
        write: MailboxKey::generate(&mut OsRng),
    };
    c.create_group(g.id, &g.admin, &g.read, &g.write)
        .await
        .unwrap();
    g
}

fn commit(expected: u64, tag: &[u8]) -> GroupCommit {
    let mut payload = vec![0u8; 1024];
    payload[..tag.len()].copy_from_slice(tag);
    GroupCommit {
        expected,
        payload,
        rotate: None,
        add_admins: Vec::new(),
        remove_admins: Vec::new(),
    }
}

fn rows(r: &RelayProcess, table: &str) -> i64 {
    let db = rusqlite::Connection::open_with_flags(
        r.data_dir().join("relay.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    db.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
        row.get(0)
    })
    .unwrap()
}

fn moved_on(e: &ClientError) -> Option<(ErrorCode, u64)> {
    match e {
        ClientError::GroupMovedOn { code, epoch } => Some((*code, *epoch)),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_stored_once_and_every_member_reads_it_at_its_own_pace() {
    let r = relay();
    let c = RelayClient::new(r.url()).unwrap();
    let g = group(&c).await;
    for i in 0..10u8 {
        c.post_group(g.id, &g.write, 0, vec![i; 256]).await.unwrap();
    }
    assert_eq!(rows(&r, "group_entries"), 10, "each message stored once");
    // Three members at three cursors; reading removes nothing.
    for after in [0u64, 4, 9] {
        let got = c
            .fetch_group(g.id, &g.read, Seq(after), None)
            .await
            .unwrap();
        assert_eq!(got.entries.len(), 10 - after as usize);
        assert_eq!(got.entries[0].payload, vec![after as u8; 256]);
        assert!(!got.more);
        assert_eq!(got.epoch, 0);
    }
    assert_eq!(rows(&r, "group_entries"), 10);
    // The write key cannot read, the read key cannot write.
    let e = c
        .fetch_group(g.id, &g.write, Seq(0), None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotAuthorized), "{e}");
    let e = c
        .post_group(g.id, &g.read, 0, vec![0; 256])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::BadSignature), "{e}");
    // Sizes other than the buckets are refused.
    let e = c
        .post_group(g.id, &g.write, 0, vec![0; 300])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::PayloadSizeNotBucket), "{e}");
}

/// A member holds the read and write keys but no admin key: whatever it
/// sends as a commit takes no slot, so it cannot stall the admins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cannot_take_a_commit_slot() {
    let r = relay();
    let c = RelayClient::new(r.url()).unwrap();
    let g = group(&c).await;
    for key in [&g.write, &g.read, &MailboxKey::generate(&mut OsRng)] {
        let e = c
            .commit_group(g.id, key, &commit(0, b"garbage"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::NotAuthorized), "{e}");
    }
    assert_eq!(rows(&r, "group_entries"), 0);
    let taken = c
        .commit_group(g.id, &g.admin, &commit(0, b"admin"))
        .await
        .unwrap();
    assert_eq!((taken.seq, taken.epoch), (Seq(1), 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_admins_racing_get_one_commit_per_epoch() {
    let r = relay();
    let c = Arc::new(RelayClient::new(r.url()).unwrap());
    let g = group(&c).await;
    // The creator adds four more admins with its first commit.
    let admins: Vec<MailboxKey> = (0..4).map(|_| MailboxKey::generate(&mut OsRng)).collect();
    let mut first = commit(0, b"admins");
    first.add_admins = admins.iter().map(MailboxKey::public).collect();
    c.commit_group(g.id, &g.admin, &first).await.unwrap();
    let mut all = vec![g.admin];
    all.extend(admins);
    let rounds = 20u64;
    let mut tasks = Vec::new();
    for (n, admin) in all.into_iter().enumerate() {
        let c = Arc::clone(&c);
        let id = g.id;
        tasks.push(tokio::spawn(async move {
            let mut epoch = 1;
            let mut landed = 0;
            let mut conflicts = 0;
            let mut tries = 0u32;
            while landed < rounds {
                tries += 1;
                let tag = format!("admin {n} try {tries}");
                match c
                    .commit_group(id, &admin, &commit(epoch, tag.as_bytes()))
                    .await
                {
                    Ok(t) => {
                        landed += 1;
                        epoch = t.epoch;
                    }
                    Err(e) => {
                        let (code, now) = moved_on(&e).unwrap_or_else(|| panic!("{e}"));
                        assert_eq!(code, ErrorCode::CommitConflict);
                        conflicts += 1;
                        epoch = now;
                    }
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for t in tasks {
        conflicts += t.await.unwrap();
    }
    let mut entries = Vec::new();
    let mut after = Seq(0);
    loop {
        let got = c.fetch_group(g.id, &g.read, after, None).await.unwrap();
        after = got.entries.last().map_or(after, |e| e.seq);
        entries.extend(got.entries);
        if !got.more {
            break;
        }
    }
    assert_eq!(entries.len() as u64, 1 + 5 * rounds);
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.kind, GroupEntryKind::Commit);
        assert_eq!(e.epoch, i as u64, "one commit per epoch, in order");
    }
    assert!(conflicts > 0, "the admins did race");
    println!("five admins, {rounds} commits each: {conflicts} conflicts answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_commit_lands_once_even_across_a_kill_9() {
    let mut r = relay();
    let c = RelayClient::new(r.url()).unwrap();
    let g = group(&c).await;
    c.post_group(g.id, &g.write, 0, vec![1; 256]).await.unwrap();
    let mine = commit(0, b"mine");
    let first = c.commit_group(g.id, &g.admin, &mine).await.unwrap();
    // The relay dies after its fsync, before the admin hears back.
    r.restart().unwrap();
    let c = RelayClient::new(r.url()).unwrap();
    let again = c.commit_group(g.id, &g.admin, &mine).await.unwrap();
    assert_eq!(again, first, "the same answer, no second commit");
    assert_eq!(rows(&r, "group_entries"), 2);
    // Another commit against the same epoch is a conflict, not a fork.
    let e = c
        .commit_group(g.id, &g.admin, &commit(0, b"other"))
        .await
        .unwrap_err();
    assert_eq!(moved_on(&e), Some((ErrorCode::CommitConflict, 1)));
    // A message sent in the old epoch is refused with the new one, and
    // lands once sent in it.
    let e = c
        .post_group(g.id, &g.write, 0, vec![2; 256])
        .await
        .unwrap_err();
    assert_eq!(moved_on(&e), Some((ErrorCode::StaleEpoch, 1)));
    c.post_group(g.id, &g.write, 1, vec![2; 256]).await.unwrap();
}

/// A removal rotates the read and write keys with its commit: the removed
/// member's keys read up to the removal (so it sees it) and do nothing
/// after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_shuts_a_removed_member_out_at_its_removal() {
    let r = relay();
    let c = RelayClient::new(r.url()).unwrap();
    let g = group(&c).await;
    c.post_group(g.id, &g.write, 0, vec![1; 256]).await.unwrap();
    let (read, write) = (
        MailboxKey::generate(&mut OsRng),
        MailboxKey::generate(&mut OsRng),
    );
    let mut removal = commit(0, b"remove X");
    removal.rotate = Some((read.public(), write.public()));
    let taken = c.commit_group(g.id, &g.admin, &removal).await.unwrap();
    c.post_group(g.id, &write, 1, vec![3; 256]).await.unwrap();
    // The removed member (old keys) reads the message and its removal,
    // nothing after, and cannot post.
    let old = c.fetch_group(g.id, &g.read, Seq(0), None).await.unwrap();
    assert_eq!(
        old.entries.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [GroupEntryKind::Message, GroupEntryKind::Commit]
    );
    assert_eq!(old.entries[1].seq, taken.seq);
    assert!(
        c.fetch_group(g.id, &g.read, taken.seq, None)
            .await
            .unwrap()
            .entries
            .is_empty()
    );
    let e = c
        .post_group(g.id, &g.write, 1, vec![4; 256])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::BadSignature), "{e}");
    // Everyone else reads on with the new keys.
    let new = c.fetch_group(g.id, &read, Seq(0), None).await.unwrap();
    assert_eq!(new.entries.len(), 3);
    assert_eq!(new.entries[2].payload, vec![3; 256]);
    // An admin deletes the group; its read key finds nothing.
    c.delete_group(g.id, &g.admin).await.unwrap();
    let e = c.fetch_group(g.id, &read, Seq(0), None).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::UnknownMailbox), "{e}");
    // Nothing of it is left in the relay's database.
    assert_eq!(rows(&r, "groups"), 0);
}

/// A group of 1,000 through the relay: the creator adds 998 members in one
/// commit and the 1,000th in another (commits above 64 KiB are padded to a
/// multiple of it); the newcomer joins from its welcome (which reaches it
/// over its 1:1 conversation with the admin; handed over directly here)
/// with the group's relay keys, and reads the next message from the relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_thousandth_member_joins_from_its_welcome_and_reads_the_next_message() {
    use ferry_core::group::{self, GroupChat, Received};
    use ferry_proto::padding;
    use openmls_rust_crypto::OpenMlsRustCrypto;

    let r = relay();
    let c = RelayClient::new(r.url()).unwrap();
    let creator = OpenMlsRustCrypto::default();
    let creator_signer = group::new_signer(&creator).unwrap();
    let mut owner = GroupChat::create(&creator, &creator_signer, "지영", 0).unwrap();
    let keys = |chat: &GroupChat| {
        let k = chat.relay_keys();
        (
            MailboxKey::from_secret_bytes(&k.read),
            MailboxKey::from_secret_bytes(&k.write),
        )
    };
    let (read, write) = keys(&owner);
    let id = MailboxId::random(&mut OsRng);
    let admin = MailboxKey::generate(&mut OsRng);
    c.create_group(id, &admin, &read, &write).await.unwrap();

    let shared = OpenMlsRustCrypto::default();
    let kps: Vec<Vec<u8>> = (0..998)
        .map(|i| {
            let s = group::new_signer(&shared).unwrap();
            group::key_package(&shared, &s, &format!("member {i}")).unwrap()
        })
        .collect();
    let out = owner.add(&creator, &creator_signer, &kps).unwrap();
    let first = GroupCommit {
        expected: 0,
        payload: padding::pad_commit(&out.commit).unwrap(),
        rotate: None,
        add_admins: Vec::new(),
        remove_admins: Vec::new(),
    };
    let first_len = first.payload.len();
    c.commit_group(id, &admin, &first).await.unwrap();
    owner.confirm(&creator).unwrap();

    let newcomer = OpenMlsRustCrypto::default();
    let newcomer_signer = group::new_signer(&newcomer).unwrap();
    let kp = group::key_package(&newcomer, &newcomer_signer, "newcomer").unwrap();
    let out = owner.add(&creator, &creator_signer, &[kp]).unwrap();
    let second = GroupCommit {
        expected: 1,
        payload: padding::pad_commit(&out.commit).unwrap(),
        ..first.clone()
    };
    let taken = c.commit_group(id, &admin, &second).await.unwrap();
    owner.confirm(&creator).unwrap();
    assert_eq!(owner.members().unwrap().len(), 1000);
    println!(
        "commits at the relay: {} KiB (998 added), {} KiB (the 1,000th); welcome {} KiB",
        first_len / 1024,
        second.payload.len() / 1024,
        out.welcome.as_ref().unwrap().len() / 1024
    );
    assert!(
        second.payload.len() > padding::MAX_PAYLOAD,
        "above the largest bucket"
    );

    let welcome = out.welcome.unwrap();
    let (mut member, adder) =
        GroupChat::join(&newcomer, &welcome, owner.relay_keys().clone()).unwrap();
    assert_eq!(adder.name, "지영");
    let text = "환영합니다, 천 번째 분!";
    let sealed = owner
        .send(&creator, &creator_signer, text.as_bytes())
        .unwrap();
    c.post_group(id, &write, taken.epoch, padding::pad(&sealed).unwrap())
        .await
        .unwrap();
    // The newcomer reads on from its welcome's commit, with the keys it
    // was given.
    let (read, _) = keys(&member);
    let got = c.fetch_group(id, &read, taken.seq, None).await.unwrap();
    assert_eq!(got.entries.len(), 1);
    let payload = padding::unpad(&got.entries[0].payload).unwrap();
    match member
        .receive(&newcomer, group::Entry::Message, payload)
        .unwrap()
    {
        Received::Message { from, body, .. } => {
            assert_eq!(body, text.as_bytes());
            assert_eq!(from, owner.own_key());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(member.epoch_authenticator(), owner.epoch_authenticator());
    // The relay's files hold no display name of the 1,000 (the commits
    // carry every key package, sealed) and no text.
    drop(c);
    let mut files = Vec::new();
    for e in std::fs::read_dir(r.data_dir()).unwrap() {
        let path = e.unwrap().path();
        if path.is_file() {
            files.push(std::fs::read(&path).unwrap());
        }
    }
    // (A positive control: the scan does find what the relay stored.)
    let stored = &sealed[sealed.len() - 48..];
    assert!(
        files
            .iter()
            .any(|f| f.windows(stored.len()).any(|w| w == stored)),
        "the scan sees the stored message"
    );
    for needle in ["member 123", "newcomer", "지영", "천 번째"] {
        assert!(
            !files
                .iter()
                .any(|f| f.windows(needle.len()).any(|w| w == needle.as_bytes())),
            "{needle:?} is in the relay's files"
        );
    }
}

/// An admin's device dies at each step of a commit: before sending it,
/// and after the relay's fsync but before the admin recorded the answer
/// (the relay killed with -9 as well). Reloaded from its store, the admin
/// finds the commit still pending and sends the very same bytes: the relay
/// answers as the first time, no second commit lands, and every member
/// stays on one epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_interrupted_at_each_step_lands_once_without_a_fork() {
    use ferry_core::group::{self, GroupChat, Received};
    use ferry_proto::padding;
    use openmls_rust_crypto::OpenMlsRustCrypto;

    let mut r = relay();
    let c = RelayClient::new(r.url()).unwrap();
    let admin_store = OpenMlsRustCrypto::default();
    let admin_signer = group::new_signer(&admin_store).unwrap();
    let mut owner = GroupChat::create(&admin_store, &admin_signer, "admin", 0).unwrap();
    let k = owner.relay_keys();
    let (read, write) = (
        MailboxKey::from_secret_bytes(&k.read),
        MailboxKey::from_secret_bytes(&k.write),
    );
    let id = MailboxId::random(&mut OsRng);
    let admin = MailboxKey::generate(&mut OsRng);
    c.create_group(id, &admin, &read, &write).await.unwrap();
    let member_store = OpenMlsRustCrypto::default();
    let member_signer = group::new_signer(&member_store).unwrap();
    let kp = group::key_package(&member_store, &member_signer, "member").unwrap();
    let leaver_store = OpenMlsRustCrypto::default();
    let leaver_signer = group::new_signer(&leaver_store).unwrap();
    let leaver_kp = group::key_package(&leaver_store, &leaver_signer, "leaver").unwrap();
    let out = owner
        .add(&admin_store, &admin_signer, &[kp, leaver_kp])
        .unwrap();
    // The request a device sends for its pending commit: everything the
    // relay compares for a retry comes from the group's saved state.
    let commit = |expected, out: &group::Outgoing| GroupCommit {
        expected,
        payload: padding::pad_commit(&out.commit).unwrap(),
        rotate: out.rotate.as_ref().map(|k| {
            (
                MailboxKey::from_secret_bytes(&k.read).public(),
                MailboxKey::from_secret_bytes(&k.write).public(),
            )
        }),
        add_admins: Vec::new(),
        remove_admins: Vec::new(),
    };
    let first = c.commit_group(id, &admin, &commit(0, &out)).await.unwrap();
    owner.confirm(&admin_store).unwrap();
    let (mut member, _) = GroupChat::join(
        &member_store,
        &out.welcome.unwrap(),
        owner.relay_keys().clone(),
    )
    .unwrap();
    let mut cursor = first.seq;

    // 1. Killed after making the commit, before sending it: the commit is
    // pending in the store; the device sends it on restart.
    let mut settings = owner.settings().unwrap();
    settings.timer = 60;
    let out = owner
        .change_settings(&admin_store, &admin_signer, &settings)
        .unwrap();
    let saved = owner.save();
    drop((owner, out));
    let mut owner = GroupChat::load(&admin_store, &saved).unwrap();
    let again = owner
        .change_settings(&admin_store, &admin_signer, &settings)
        .unwrap_err();
    assert!(
        matches!(again, group::GroupError::CommitPending),
        "no second commit is made while one is pending: {again}"
    );
    let unsent = owner.pending_commit().expect("still pending").clone();
    let taken = c
        .commit_group(id, &admin, &commit(1, &unsent))
        .await
        .unwrap();
    owner.confirm(&admin_store).unwrap();

    // 2. Killed after the relay's fsync, before the admin recorded the
    // answer, and the relay killed -9 too: a removal, whose relay keys
    // must be sent again exactly.
    let leaver = owner
        .members()
        .unwrap()
        .into_iter()
        .find(|m| m.name == "leaver")
        .unwrap()
        .key;
    let out = owner.remove(&admin_store, &admin_signer, &leaver).unwrap();
    assert!(out.rotate.is_some());
    let saved = owner.save();
    let answered = c.commit_group(id, &admin, &commit(2, &out)).await.unwrap();
    drop((owner, out));
    r.restart().unwrap();
    let c = RelayClient::new(r.url()).unwrap();
    let mut owner = GroupChat::load(&admin_store, &saved).unwrap();
    // What the reloaded state says to send: the first answer, no second
    // slot.
    let again = owner.pending_commit().expect("still pending").clone();
    let retried = c
        .commit_group(id, &admin, &commit(2, &again))
        .await
        .unwrap();
    assert_eq!(retried, answered);
    owner.confirm(&admin_store).unwrap();
    let moved = owner.relay_keys().clone();
    let new_read = MailboxKey::from_secret_bytes(&moved.read);

    // The member reads one commit per step and ends on the admin's epoch.
    let log = c.fetch_group(id, &read, cursor, None).await.unwrap();
    assert_eq!(log.entries.len(), 2, "one commit per step, none twice");
    assert_eq!(log.epoch, 3);
    assert_eq!(log.entries[0].seq, taken.seq);
    for e in &log.entries {
        let bytes = padding::unpad_commit(&e.payload).unwrap();
        let got = member
            .receive(&member_store, group::Entry::Commit, bytes)
            .unwrap();
        assert!(matches!(got, Received::Applied { .. }), "{got:?}");
        cursor = e.seq;
    }
    assert_eq!(cursor, answered.seq);
    assert_eq!(member.settings().unwrap().timer, 60);
    assert_eq!(member.epoch_authenticator(), owner.epoch_authenticator());
    // Both moved to the relay keys the relay now holds.
    assert_eq!(member.relay_keys(), &moved);
    c.fetch_group(id, &new_read, cursor, None).await.unwrap();
}

/// A file for a group is created with a signature of the group's current
/// write key and nothing else: a stranger's key, an old write key after a
/// rotation, or a group that does not exist gets nothing stored.
#[tokio::test]
async fn only_a_groups_current_write_key_creates_a_blob_for_it() {
    use ferry_client::transfer::BlobClient;
    let r = relay();
    let c = RelayClient::new(r.url()).unwrap();
    let g = group(&c).await;
    let blobs = BlobClient::new(r.url()).unwrap();
    let stranger = MailboxKey::generate(&mut OsRng);
    let refused = |e: ClientError| {
        matches!(
            e.code(),
            Some(ErrorCode::MissingAuth | ErrorCode::BadSignature | ErrorCode::NotAuthorized)
        )
    };
    let e = blobs
        .create_for_group(1000, (g.id, &stranger))
        .await
        .unwrap_err();
    assert!(refused(e));
    let e = blobs
        .create_for_group(1000, (MailboxId::random(&mut OsRng), &g.write))
        .await
        .unwrap_err();
    assert!(refused(e));
    // The read key is not the write key either.
    let e = blobs
        .create_for_group(1000, (g.id, &g.read))
        .await
        .unwrap_err();
    assert!(refused(e));
    blobs
        .create_for_group(1000, (g.id, &g.write))
        .await
        .unwrap();
    // After a commit that rotates the keys, the old write key is refused.
    let (new_read, new_write) = (
        MailboxKey::generate(&mut OsRng),
        MailboxKey::generate(&mut OsRng),
    );
    let mut rotate = commit(0, b"rotate");
    rotate.rotate = Some((new_read.public(), new_write.public()));
    c.commit_group(g.id, &g.admin, &rotate).await.unwrap();
    let e = blobs
        .create_for_group(1000, (g.id, &g.write))
        .await
        .unwrap_err();
    assert!(refused(e));
    blobs
        .create_for_group(1000, (g.id, &new_write))
        .await
        .unwrap();
}
