//! Conformance cases for group mailboxes: one log per group, commits by
//! compare-and-swap, key changes with the commit.

use bytes::Bytes;
use ferry_proto::{MailboxId, Seq};
use rand_core::OsRng;

use super::{FAR, LIMITS, QUOTA, key};
use crate::store::{
    CommitPut, Committed, Created, EntryKind, GroupPost, KeyChanges, MailboxStore, NewGroup,
    StoreError,
};

fn new_group(id: MailboxId) -> NewGroup {
    NewGroup {
        id,
        admin: key(),
        read: key(),
        write: key(),
        now: 1,
    }
}

async fn make_group<S: MailboxStore>(s: &S) -> NewGroup {
    let g = new_group(MailboxId::random(&mut OsRng));
    assert_eq!(s.create_group(g.clone()).await.unwrap(), Created::New);
    g
}

fn post(g: &NewGroup, epoch: u64, byte: u8) -> GroupPost {
    GroupPost {
        group: g.id,
        write: g.write,
        epoch,
        payload: Bytes::from(vec![byte; 256]),
        expires_at: FAR,
        quota: QUOTA,
    }
}

fn commit(g: &NewGroup, expected: u64, byte: u8) -> CommitPut {
    CommitPut {
        group: g.id,
        admin: g.admin,
        quota: QUOTA,
        expected,
        payload: Bytes::from(vec![byte; 1024]),
        changes: KeyChanges::default(),
        expires_at: FAR,
    }
}

pub async fn groups_are_created_once_and_share_the_mailbox_ids<S: MailboxStore>(s: &S) {
    let g = make_group(s).await;
    assert_eq!(s.create_group(g.clone()).await.unwrap(), Created::Existing);
    let other = NewGroup {
        write: key(),
        ..g.clone()
    };
    assert!(matches!(
        s.create_group(other).await,
        Err(StoreError::MailboxExists)
    ));
    // A group's id cannot become a mailbox, nor a mailbox's a group.
    assert!(matches!(
        s.create_mailbox(g.id, key(), 1).await,
        Err(StoreError::MailboxExists)
    ));
    let mailbox = MailboxId::random(&mut OsRng);
    s.create_mailbox(mailbox, key(), 1).await.unwrap();
    assert!(matches!(
        s.create_group(new_group(mailbox)).await,
        Err(StoreError::MailboxExists)
    ));
    let rec = s.group(g.id).await.unwrap().unwrap();
    assert_eq!(rec.epoch, 0);
    assert_eq!(rec.admins, [g.admin]);
    assert_eq!(rec.write, g.write);
    assert_eq!(rec.read_key(&g.read).unwrap().until, None);
    assert!(
        s.group(MailboxId::random(&mut OsRng))
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn group_log_is_read_by_every_cursor_and_never_acked<S: MailboxStore>(s: &S) {
    let g = make_group(s).await;
    for i in 0..5u8 {
        assert_eq!(
            s.post_group(post(&g, 0, i)).await.unwrap(),
            Seq(u64::from(i) + 1)
        );
    }
    // Two members at different cursors each read what is after theirs;
    // reading removes nothing.
    let all = s
        .fetch_group(g.id, g.read, Seq(0), LIMITS, 2)
        .await
        .unwrap();
    assert_eq!(all.entries.len(), 5);
    assert!(
        all.entries
            .iter()
            .all(|e| e.kind == EntryKind::Message && e.epoch == 0)
    );
    let late = s
        .fetch_group(g.id, g.read, Seq(3), LIMITS, 2)
        .await
        .unwrap();
    assert_eq!(
        late.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [Seq(4), Seq(5)]
    );
    assert_eq!(late.entries[1].payload, Bytes::from(vec![4u8; 256]));
    let again = s
        .fetch_group(g.id, g.read, Seq(0), LIMITS, 2)
        .await
        .unwrap();
    assert_eq!(again, all);
    // Limits: two at a time, with `more`.
    let limits = crate::store::FetchLimits {
        per_mailbox: 2,
        total_bytes: 1 << 20,
    };
    let first = s
        .fetch_group(g.id, g.read, Seq(0), limits, 2)
        .await
        .unwrap();
    assert_eq!(first.entries.len(), 2);
    assert!(first.more);
    // Expired entries are hidden, then removed.
    let mut short = post(&g, 0, 9);
    short.expires_at = 10;
    s.post_group(short).await.unwrap();
    assert_eq!(
        s.fetch_group(g.id, g.read, Seq(5), LIMITS, 9)
            .await
            .unwrap()
            .entries
            .len(),
        1
    );
    assert!(
        s.fetch_group(g.id, g.read, Seq(5), LIMITS, 10)
            .await
            .unwrap()
            .entries
            .is_empty()
    );
    assert!(s.expire(10).await.unwrap() >= 1);
    assert!(
        s.fetch_group(g.id, g.read, Seq(5), LIMITS, 2)
            .await
            .unwrap()
            .entries
            .is_empty()
    );
}

pub async fn commits_are_compare_and_swap_and_a_retry_is_not_a_second_commit<S: MailboxStore>(
    s: &S,
) {
    let g = make_group(s).await;
    s.post_group(post(&g, 0, 1)).await.unwrap();
    let first = s.commit_group(commit(&g, 0, 7)).await.unwrap();
    assert_eq!(
        first,
        Committed {
            seq: Seq(2),
            epoch: 1
        }
    );
    // Another admin's commit against the same epoch loses.
    assert!(matches!(
        s.commit_group(commit(&g, 0, 8)).await,
        Err(StoreError::CommitConflict { current: 1 })
    ));
    // The same bytes again (the answer was lost) get the same answer and
    // make no second entry.
    assert_eq!(s.commit_group(commit(&g, 0, 7)).await.unwrap(), first);
    // A commit against a future epoch is a conflict too.
    assert!(matches!(
        s.commit_group(commit(&g, 5, 9)).await,
        Err(StoreError::CommitConflict { current: 1 })
    ));
    // A message sent in the old epoch is refused; in the new one it lands.
    assert!(matches!(
        s.post_group(post(&g, 0, 2)).await,
        Err(StoreError::StaleEpoch { current: 1 })
    ));
    assert_eq!(s.post_group(post(&g, 1, 3)).await.unwrap(), Seq(3));
    let log = s
        .fetch_group(g.id, g.read, Seq(0), LIMITS, 2)
        .await
        .unwrap();
    let kinds: Vec<(EntryKind, u64)> = log.entries.iter().map(|e| (e.kind, e.epoch)).collect();
    assert_eq!(
        kinds,
        [
            (EntryKind::Message, 0),
            (EntryKind::Commit, 0),
            (EntryKind::Message, 1)
        ]
    );
    assert_eq!(s.group(g.id).await.unwrap().unwrap().epoch, 1);
    assert!(matches!(
        s.commit_group(commit(&new_group(MailboxId::random(&mut OsRng)), 0, 1))
            .await,
        Err(StoreError::UnknownMailbox)
    ));
}

pub async fn concurrent_commits_take_one_slot_each<S: MailboxStore>(s: &S) {
    let g = make_group(s).await;
    // Five admins race for every epoch, each retrying with a new commit
    // on a conflict, until each has landed 10.
    let mut tasks = Vec::new();
    for admin in 0..5u8 {
        let id = g.id;
        let g = &g;
        tasks.push(async move {
            let mut landed = 0;
            let mut n = 0u8;
            while landed < 10 {
                let epoch = s.group(id).await.unwrap().unwrap().epoch;
                let mut c = commit(g, epoch, 0);
                c.payload = Bytes::from(vec![admin, n, 0, 0]);
                n = n.wrapping_add(1);
                match s.commit_group(c).await {
                    Ok(_) => landed += 1,
                    Err(StoreError::CommitConflict { .. }) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        });
    }
    futures_util::future::join_all(tasks).await;
    let log = s
        .fetch_group(g.id, g.read, Seq(0), LIMITS, 2)
        .await
        .unwrap();
    assert_eq!(log.entries.len(), 50);
    for (i, e) in log.entries.iter().enumerate() {
        assert_eq!(e.epoch, i as u64, "one commit per epoch, in order");
    }
    assert_eq!(s.group(g.id).await.unwrap().unwrap().epoch, 50);
}

pub async fn a_rotating_commit_ends_the_old_read_key_at_itself<S: MailboxStore>(s: &S) {
    let g = make_group(s).await;
    s.post_group(post(&g, 0, 1)).await.unwrap();
    let (read, write) = (key(), key());
    let mut c = commit(&g, 0, 2);
    c.changes.rotate = Some((read, write));
    let done = s.commit_group(c).await.unwrap();
    // The old write key is refused (as a stale epoch), the new one lands.
    assert!(matches!(
        s.post_group(post(&g, 1, 3)).await,
        Err(StoreError::StaleEpoch { current: 1 })
    ));
    let moved = NewGroup {
        read,
        write,
        ..g.clone()
    };
    s.post_group(post(&moved, 1, 3)).await.unwrap();
    let rec = s.group(g.id).await.unwrap().unwrap();
    assert_eq!(rec.write, write);
    assert_eq!(rec.read_key(&g.read).unwrap().until, Some(done.seq));
    assert_eq!(rec.read_key(&read).unwrap().until, None);
    assert_eq!(rec.reads.last().unwrap().key, read, "the current key last");
    // Read with the old key's limit: up to the commit, nothing after.
    let old = s
        .fetch_group(g.id, g.read, Seq(0), LIMITS, 2)
        .await
        .unwrap();
    assert_eq!(old.entries.len(), 2);
    assert_eq!(old.entries[1].kind, EntryKind::Commit);
    assert!(!old.more);
    let log = s.fetch_group(g.id, read, Seq(0), LIMITS, 2).await.unwrap();
    assert_eq!(log.entries.len(), 3);
    // A key that was never a read key reads nothing.
    assert!(matches!(
        s.fetch_group(g.id, write, Seq(0), LIMITS, 2).await,
        Err(StoreError::NotAuthorized)
    ));

    // Once everything up to the commit has expired, the old key goes.
    let g = make_group(s).await;
    let mut p = post(&g, 0, 1);
    p.expires_at = 10;
    s.post_group(p).await.unwrap();
    let mut c = commit(&g, 0, 2);
    c.expires_at = 10;
    let (read2, write2) = (key(), key());
    c.changes.rotate = Some((read2, write2));
    s.commit_group(c).await.unwrap();
    let moved = NewGroup {
        read: read2,
        write: write2,
        ..g.clone()
    };
    s.post_group(post(&moved, 1, 3)).await.unwrap();
    s.expire(9).await.unwrap();
    assert_eq!(s.group(g.id).await.unwrap().unwrap().reads.len(), 2);
    s.expire(10).await.unwrap();
    let rec = s.group(g.id).await.unwrap().unwrap();
    assert!(
        rec.read_key(&g.read).is_none(),
        "nothing left for it to read"
    );
    assert_eq!(rec.reads.len(), 1);
}

pub async fn admin_keys_change_with_commits_and_one_always_stays<S: MailboxStore>(s: &S) {
    let g = make_group(s).await;
    let second = key();
    let mut c = commit(&g, 0, 1);
    c.changes.add_admins = vec![second];
    s.commit_group(c).await.unwrap();
    let rec = s.group(g.id).await.unwrap().unwrap();
    assert_eq!(rec.admins.len(), 2);
    assert!(rec.admins.contains(&second));
    // Removing every admin is refused, and changes nothing.
    let mut c = commit(&g, 1, 2);
    c.changes.remove_admins = vec![g.admin, second];
    assert!(matches!(
        s.commit_group(c).await,
        Err(StoreError::NoAdminLeft)
    ));
    let rec = s.group(g.id).await.unwrap().unwrap();
    assert_eq!((rec.epoch, rec.admins.len()), (1, 2));
    assert_eq!(
        s.fetch_group(g.id, g.read, Seq(0), LIMITS, 2)
            .await
            .unwrap()
            .entries
            .len(),
        1
    );
    let mut c = commit(&g, 1, 3);
    c.changes.remove_admins = vec![g.admin];
    s.commit_group(c).await.unwrap();
    assert_eq!(s.group(g.id).await.unwrap().unwrap().admins, [second]);
}

pub async fn group_quota_refuses_messages_before_commits<S: MailboxStore>(s: &S) {
    let g = make_group(s).await;
    let tight = crate::store::Quota {
        max_messages: 2,
        max_bytes: 1 << 20,
    };
    for i in 0..2 {
        let mut p = post(&g, 0, i);
        p.quota = tight;
        s.post_group(p).await.unwrap();
    }
    let mut p = post(&g, 0, 3);
    p.quota = tight;
    assert!(matches!(
        s.post_group(p).await,
        Err(StoreError::MailboxFull)
    ));
    // An admin can still commit (to remove whoever fills the log).
    s.commit_group(commit(&g, 0, 4)).await.unwrap();
}

pub async fn a_deleted_group_is_gone_and_its_id_stays_taken<S: MailboxStore>(s: &S) {
    let g = make_group(s).await;
    s.post_group(post(&g, 0, 1)).await.unwrap();
    s.commit_group(commit(&g, 0, 2)).await.unwrap();
    assert!(s.delete_group(g.id, 100).await.unwrap());
    assert!(!s.delete_group(g.id, 100).await.unwrap());
    assert!(s.group(g.id).await.unwrap().is_none());
    assert!(matches!(
        s.fetch_group(g.id, g.read, Seq(0), LIMITS, 2).await,
        Err(StoreError::UnknownMailbox)
    ));
    assert!(matches!(
        s.post_group(post(&g, 0, 3)).await,
        Err(StoreError::UnknownMailbox)
    ));
    assert!(matches!(
        s.create_group(g.clone()).await,
        Err(StoreError::MailboxExists)
    ));
    s.expire(100).await.unwrap();
    assert_eq!(s.create_group(g).await.unwrap(), Created::New);
}

pub async fn only_admin_keys_commit_and_a_retry_repeats_everything<S: MailboxStore>(s: &S) {
    let g = make_group(s).await;
    // A key that is not an admin's takes no slot.
    let mut c = commit(&g, 0, 1);
    c.admin = g.write;
    assert!(matches!(
        s.commit_group(c).await,
        Err(StoreError::NotAuthorized)
    ));
    // An admin removes its own key with its commit; its retry, after two
    // more commits, still gets the first answer.
    let other = key();
    let mut mine = commit(&g, 0, 2);
    mine.changes.add_admins = vec![other];
    mine.changes.remove_admins = vec![g.admin];
    let first = s.commit_group(mine.clone()).await.unwrap();
    for (e, b) in [(1, 3u8), (2, 4)] {
        let mut c = commit(&g, e, b);
        c.admin = other;
        s.commit_group(c).await.unwrap();
    }
    assert_eq!(s.commit_group(mine.clone()).await.unwrap(), first);
    // Nor is the same commit sent with another key.
    let mut stranger = mine.clone();
    stranger.admin = other;
    assert!(matches!(
        s.commit_group(stranger).await,
        Err(StoreError::CommitConflict { current: 3 })
    ));
    // The same payload with other key changes is no retry.
    let mut changed = mine;
    changed.changes.remove_admins.clear();
    assert!(matches!(
        s.commit_group(changed).await,
        Err(StoreError::CommitConflict { current: 3 })
    ));
    // Nor is a retry answered once its entry has expired.
    let g2 = make_group(s).await;
    let mut short = commit(&g2, 0, 5);
    short.expires_at = 10;
    s.commit_group(short.clone()).await.unwrap();
    s.expire(10).await.unwrap();
    assert!(matches!(
        s.commit_group(short).await,
        Err(StoreError::CommitConflict { current: 1 })
    ));
}

pub async fn commits_have_room_beyond_the_message_quota_but_not_unbounded<S: MailboxStore>(s: &S) {
    let g = make_group(s).await;
    let tight = crate::store::Quota {
        max_messages: 2,
        max_bytes: 1 << 20,
    };
    for e in 0..4 {
        let mut c = commit(&g, e, 1);
        c.quota = tight;
        s.commit_group(c).await.unwrap();
    }
    let mut c = commit(&g, 4, 1);
    c.quota = tight;
    assert!(matches!(
        s.commit_group(c).await,
        Err(StoreError::MailboxFull)
    ));
}
