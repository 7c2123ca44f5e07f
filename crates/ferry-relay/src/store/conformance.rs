//! The conformance suite every [`MailboxStore`] backend runs.
//!
//! A backend's test module invokes
//! [`mailbox_store_conformance!`](crate::mailbox_store_conformance) with an
//! async function returning `(store, guard)`; the guard (e.g. a temporary
//! directory or database) is kept alive for the test's duration.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use bytes::Bytes;
use ferry_proto::{MailboxId, MailboxKey, PublicKey, Seq};
use rand_core::OsRng;

use super::{Created, FetchLimits, MailboxStore, Quota, StoreError};

mod groups;
mod stows;
pub use groups::*;
pub use stows::*;

/// Generous limits for reads in tests.
pub const LIMITS: FetchLimits = FetchLimits {
    per_mailbox: 1000,
    total_bytes: 1 << 30,
};

pub(crate) const QUOTA: Quota = Quota {
    max_messages: 1000,
    max_bytes: 1 << 30,
};

pub(crate) const FAR: u64 = 1_000_000;

pub(crate) fn key() -> PublicKey {
    MailboxKey::generate(&mut OsRng).public()
}

async fn new_mailbox<S: MailboxStore>(s: &S) -> MailboxId {
    let id = MailboxId::random(&mut OsRng);
    assert_eq!(s.create_mailbox(id, key(), 1).await.unwrap(), Created::New);
    id
}

fn payload(n: u8, len: usize) -> Bytes {
    Bytes::from(vec![n; len])
}

pub async fn create_is_idempotent_per_key<S: MailboxStore>(s: &S) {
    let id = MailboxId::random(&mut OsRng);
    let k = key();
    assert_eq!(s.create_mailbox(id, k, 1).await.unwrap(), Created::New);
    assert_eq!(s.create_mailbox(id, k, 2).await.unwrap(), Created::Existing);
    assert!(matches!(
        s.create_mailbox(id, key(), 3).await,
        Err(StoreError::MailboxExists)
    ));
    let rec = s
        .mailboxes(vec![id, MailboxId::random(&mut OsRng)])
        .await
        .unwrap();
    assert_eq!(rec[0].unwrap().recipient_key, k);
    assert_eq!(rec[0].unwrap().sender_key, None);
    assert!(rec[1].is_none());
}

pub async fn sender_key_is_set_once<S: MailboxStore>(s: &S) {
    let id = new_mailbox(s).await;
    let sk = key();
    s.set_sender_key(id, sk).await.unwrap();
    s.set_sender_key(id, sk).await.unwrap();
    assert!(matches!(
        s.set_sender_key(id, key()).await,
        Err(StoreError::SenderKeyAlreadySet)
    ));
    assert_eq!(
        s.mailboxes(vec![id]).await.unwrap()[0].unwrap().sender_key,
        Some(sk)
    );
    let unknown = MailboxId::random(&mut OsRng);
    assert!(matches!(
        s.set_sender_key(unknown, sk).await,
        Err(StoreError::UnknownMailbox)
    ));
}

pub async fn append_and_fetch_in_order<S: MailboxStore>(s: &S) {
    let id = new_mailbox(s).await;
    for i in 1..=5u8 {
        assert_eq!(
            s.append(id, payload(i, 10), FAR, QUOTA).await.unwrap(),
            Seq(u64::from(i))
        );
    }
    let all = s.fetch(vec![(id, Seq(0))], LIMITS, 10).await.unwrap();
    let seqs: Vec<u64> = all[0].messages.iter().map(|m| m.seq.0).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!(all[0].messages[2].payload, payload(3, 10));
    assert!(!all[0].more);
    let after = s.fetch(vec![(id, Seq(3))], LIMITS, 10).await.unwrap();
    assert_eq!(
        after[0]
            .messages
            .iter()
            .map(|m| m.seq.0)
            .collect::<Vec<_>>(),
        [4, 5]
    );
    let limited = FetchLimits {
        per_mailbox: 2,
        total_bytes: 1 << 20,
    };
    let page = s.fetch(vec![(id, Seq(0))], limited, 10).await.unwrap();
    assert_eq!(page[0].messages.len(), 2);
    assert!(page[0].more);
}

pub async fn fetch_respects_byte_budget_but_always_progresses<S: MailboxStore>(s: &S) {
    let id = new_mailbox(s).await;
    for i in 0..4u8 {
        s.append(id, payload(i, 1000), FAR, QUOTA).await.unwrap();
    }
    let tiny = FetchLimits {
        per_mailbox: 100,
        total_bytes: 10,
    };
    let got = s.fetch(vec![(id, Seq(0))], tiny, 1).await.unwrap();
    assert_eq!(got[0].messages.len(), 1, "one message even over budget");
    assert!(got[0].more);
    let two = FetchLimits {
        per_mailbox: 100,
        total_bytes: 2500,
    };
    let got = s.fetch(vec![(id, Seq(0))], two, 1).await.unwrap();
    assert_eq!(got[0].messages.len(), 2);
    assert!(got[0].more);
}

pub async fn ack_removes_up_to_cursor_only<S: MailboxStore>(s: &S) {
    let id = new_mailbox(s).await;
    for i in 1..=4u8 {
        s.append(id, payload(i, 10), FAR, QUOTA).await.unwrap();
    }
    assert_eq!(s.ack(vec![(id, Seq(2))]).await.unwrap(), [2]);
    assert_eq!(
        s.ack(vec![(id, Seq(2))]).await.unwrap(),
        [0],
        "ack is idempotent"
    );
    let left = s.fetch(vec![(id, Seq(0))], LIMITS, 1).await.unwrap();
    assert_eq!(
        left[0].messages.iter().map(|m| m.seq.0).collect::<Vec<_>>(),
        [3, 4]
    );
    // Sequence numbers are never reused after an ack.
    assert_eq!(
        s.append(id, payload(9, 10), FAR, QUOTA).await.unwrap(),
        Seq(5)
    );
    let unknown = MailboxId::random(&mut OsRng);
    assert!(matches!(
        s.ack(vec![(id, Seq(5)), (unknown, Seq(1))]).await,
        Err(StoreError::UnknownMailbox)
    ));
    let still = s.fetch(vec![(id, Seq(0))], LIMITS, 1).await.unwrap();
    assert_eq!(
        still[0].messages.len(),
        3,
        "a failed ack batch changes nothing"
    );
}

pub async fn quotas_refuse_and_free<S: MailboxStore>(s: &S) {
    let id = new_mailbox(s).await;
    let q = Quota {
        max_messages: 3,
        max_bytes: 250,
    };
    for _ in 0..2 {
        s.append(id, payload(1, 100), FAR, q).await.unwrap();
    }
    assert!(
        matches!(
            s.append(id, payload(1, 100), FAR, q).await,
            Err(StoreError::MailboxFull)
        ),
        "bytes"
    );
    s.append(id, payload(1, 10), FAR, q).await.unwrap();
    assert!(
        matches!(
            s.append(id, payload(1, 1), FAR, q).await,
            Err(StoreError::MailboxFull)
        ),
        "count"
    );
    let waiting = s.fetch(vec![(id, Seq(0))], LIMITS, 1).await.unwrap();
    assert_eq!(
        waiting[0].messages.len(),
        3,
        "a refused send stores nothing"
    );
    s.ack(vec![(id, Seq(2))]).await.unwrap();
    s.append(id, payload(1, 100), FAR, q).await.unwrap();
}

pub async fn expired_messages_are_hidden_then_removed<S: MailboxStore>(s: &S) {
    let id = new_mailbox(s).await;
    let q = Quota {
        max_messages: 2,
        max_bytes: 1 << 20,
    };
    s.append(id, payload(1, 10), 100, q).await.unwrap();
    s.append(id, payload(2, 10), 200, q).await.unwrap();
    let at_150 = s.fetch(vec![(id, Seq(0))], LIMITS, 150).await.unwrap();
    assert_eq!(
        at_150[0]
            .messages
            .iter()
            .map(|m| m.seq.0)
            .collect::<Vec<_>>(),
        [2]
    );
    assert_eq!(s.expire(150).await.unwrap(), 1);
    // The expired message no longer counts against the quota.
    s.append(id, payload(3, 10), 300, q).await.unwrap();
    assert_eq!(s.expire(1000).await.unwrap(), 2);
    assert!(
        s.fetch(vec![(id, Seq(0))], LIMITS, 0).await.unwrap()[0]
            .messages
            .is_empty()
    );
}

pub async fn delete_removes_everything<S: MailboxStore>(s: &S) {
    let id = new_mailbox(s).await;
    s.append(id, payload(1, 10), FAR, QUOTA).await.unwrap();
    assert!(s.delete_mailbox(id, 5_000).await.unwrap());
    assert!(!s.delete_mailbox(id, 5_000).await.unwrap());
    assert!(s.mailboxes(vec![id]).await.unwrap()[0].is_none());
    assert!(
        s.fetch(vec![(id, Seq(0))], LIMITS, 1).await.unwrap()[0]
            .messages
            .is_empty()
    );
    assert!(matches!(
        s.append(id, payload(1, 10), FAR, QUOTA).await,
        Err(StoreError::UnknownMailbox)
    ));
}

/// A leaked invite link must not let anyone re-create its mailbox once
/// deleted (and so sit in the middle): the id stays taken until the
/// tombstone expires, whatever the key.
pub async fn deleted_ids_stay_taken_until_their_tombstone_expires<S: MailboxStore>(s: &S) {
    let id = MailboxId::random(&mut OsRng);
    let owner = key();
    s.create_mailbox(id, owner, 1).await.unwrap();
    assert!(s.delete_mailbox(id, 5_000).await.unwrap());
    for k in [key(), owner] {
        assert!(matches!(
            s.create_mailbox(id, k, 2).await,
            Err(StoreError::MailboxExists)
        ));
    }
    s.expire(4_999).await.unwrap();
    assert!(matches!(
        s.create_mailbox(id, key(), 3).await,
        Err(StoreError::MailboxExists)
    ));
    s.expire(5_000).await.unwrap();
    assert!(matches!(
        s.create_mailbox(id, key(), 4).await,
        Ok(super::Created::New)
    ));
}

pub async fn fetch_many_mailboxes_at_once<S: MailboxStore>(s: &S) {
    let mut ids = Vec::new();
    for i in 0..120u8 {
        let id = new_mailbox(s).await;
        s.append(id, payload(i, 20), FAR, QUOTA).await.unwrap();
        ids.push(id);
    }
    ids.push(MailboxId::random(&mut OsRng));
    let reads = ids.iter().map(|&id| (id, Seq(0))).collect();
    let got = s.fetch(reads, LIMITS, 1).await.unwrap();
    assert_eq!(got.len(), 121);
    for (i, b) in got.iter().take(120).enumerate() {
        assert_eq!(b.messages.len(), 1);
        assert_eq!(b.messages[0].payload, payload(i as u8, 20));
    }
    assert!(got[120].messages.is_empty());
}

pub async fn concurrent_appends_get_distinct_seqs<S: MailboxStore>(s: &S) {
    let id = new_mailbox(s).await;
    let futs = (0..64u8).map(|i| s.append(id, payload(i, 8), FAR, QUOTA));
    let mut seqs: Vec<u64> = futures_util::future::join_all(futs)
        .await
        .into_iter()
        .map(|r| r.unwrap().0)
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=64).collect::<Vec<_>>());
}

pub async fn canaries_release_when_due_and_only_then<S: MailboxStore>(s: &S) {
    use super::Canary;
    let target = new_mailbox(s).await;
    let owner = key();
    let id = MailboxId::random(&mut OsRng);
    let canary = |release_at| Canary {
        id,
        owner,
        mailbox: target,
        release_at,
        payload: payload(9, 256),
        fire_key: None,
        fire_payload: None,
    };
    s.put_canary(canary(100), QUOTA, 4).await.unwrap();
    let keys = s.canary_keys(id).await.unwrap().unwrap();
    assert_eq!((keys.owner, keys.fire), (owner, None));
    let other = Canary {
        owner: key(),
        ..canary(100)
    };
    assert!(matches!(
        s.put_canary(other, QUOTA, 4).await,
        Err(StoreError::CanaryExists)
    ));
    assert!(
        s.release_canaries(99, None, FAR, QUOTA)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.renew_canary(id, 200).await.unwrap());
    assert!(
        s.release_canaries(150, None, FAR, QUOTA)
            .await
            .unwrap()
            .is_empty(),
        "renewed"
    );
    let out = s.release_canaries(200, None, FAR, QUOTA).await.unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].mailbox, target);
    let got = s.fetch(vec![(target, Seq(0))], LIMITS, 1).await.unwrap();
    assert_eq!(got[0].messages[0].payload, payload(9, 256));
    assert!(s.canary_keys(id).await.unwrap().is_none(), "released once");
    // Fired on demand, whatever its time; deleted ones never fire.
    s.put_canary(canary(10_000), QUOTA, 4).await.unwrap();
    assert_eq!(
        s.release_canaries(0, Some(id), FAR, QUOTA)
            .await
            .unwrap()
            .len(),
        1
    );
    // A canary with a fire key releases its fire payload when fired, and
    // its ordinary payload when it times out.
    let fire = key();
    let armed = |release_at| Canary {
        fire_key: Some(fire),
        fire_payload: Some(payload(8, 256)),
        ..canary(release_at)
    };
    s.put_canary(armed(10_000), QUOTA, 4).await.unwrap();
    assert_eq!(s.canary_keys(id).await.unwrap().unwrap().fire, Some(fire));
    let out = s.release_canaries(0, Some(id), FAR, QUOTA).await.unwrap();
    assert_eq!(out[0].payload, payload(8, 256));
    s.put_canary(armed(300), QUOTA, 4).await.unwrap();
    let out = s.release_canaries(300, None, FAR, QUOTA).await.unwrap();
    assert_eq!(out[0].payload, payload(9, 256));
    s.put_canary(canary(5), QUOTA, 4).await.unwrap();
    assert!(s.delete_canary(id).await.unwrap());
    assert!(
        s.release_canaries(1_000, None, FAR, QUOTA)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn canaries_reserve_quota_and_never_block_the_release<S: MailboxStore>(s: &S) {
    use super::Canary;
    let quota = Quota {
        max_messages: 3,
        max_bytes: 1 << 20,
    };
    let target = new_mailbox(s).await;
    let canary = |mailbox, release_at| Canary {
        id: MailboxId::random(&mut OsRng),
        owner: key(),
        mailbox,
        release_at,
        payload: payload(7, 256),
        fire_key: None,
        fire_payload: None,
    };
    // Two canaries reserve two of the three places; a third is one too
    // many for a mailbox; replacing one's own canary is not a new one.
    s.put_canary(canary(target, 100), quota, 2).await.unwrap();
    let second = canary(target, 100);
    s.put_canary(second.clone(), quota, 2).await.unwrap();
    assert!(matches!(
        s.put_canary(canary(target, 100), quota, 2).await,
        Err(StoreError::TooManyCanaries)
    ));
    s.put_canary(second.clone(), quota, 2).await.unwrap();
    // One send fits in the place left; the next does not, nor does a
    // canary allowed by the count but not by the quota.
    s.append(target, payload(1, 256), FAR, quota).await.unwrap();
    assert!(matches!(
        s.append(target, payload(2, 256), FAR, quota).await,
        Err(StoreError::MailboxFull)
    ));
    assert!(matches!(
        s.put_canary(canary(target, 100), quota, 5).await,
        Err(StoreError::MailboxFull)
    ));
    // But a renewal (the same canary deposited again) is never refused,
    // even with the mailbox full and the limits lowered: refusing it would
    // let the old release time fire a false alarm.
    let lowered = Quota {
        max_messages: 1,
        max_bytes: 1 << 20,
    };
    s.put_canary(second, lowered, 1).await.unwrap();
    // Both release into the places they held.
    let out = s.release_canaries(100, None, FAR, quota).await.unwrap();
    assert_eq!(out.len(), 2);

    // A thousand canaries that cannot be released (their mailbox's quota
    // was lowered under them) do not starve another mailbox's canary.
    let roomy = Quota {
        max_messages: 2000,
        max_bytes: 1 << 30,
    };
    let stuck = new_mailbox(s).await;
    for _ in 0..1000 {
        s.put_canary(canary(stuck, 10), roomy, 2000).await.unwrap();
    }
    let other = new_mailbox(s).await;
    s.put_canary(canary(other, 20), roomy, 2000).await.unwrap();
    let lowered = Quota {
        max_messages: 999,
        max_bytes: 1 << 30,
    };
    let first = s.release_canaries(30, None, FAR, lowered).await.unwrap();
    let second = s.release_canaries(31, None, FAR, lowered).await.unwrap();
    let released: Vec<MailboxId> = first.iter().chain(&second).map(|r| r.mailbox).collect();
    assert_eq!(released, [other], "the other mailbox's canary went out");
    // The postponed ones are tried again later.
    let later = 30 + super::CANARY_RETRY_SECS;
    assert_eq!(
        s.release_canaries(later, None, FAR, roomy)
            .await
            .unwrap()
            .len(),
        1000
    );
}

/// Runs the whole conformance suite against a backend. `$make` is a path to
/// an `async fn() -> (impl MailboxStore, Guard)`.
#[macro_export]
macro_rules! mailbox_store_conformance {
    ($make:path) => {
        mod mailbox_store_conformance {
            #![allow(clippy::unwrap_used)]
            use $crate::store::conformance as suite;

            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test]
                    async fn $name() {
                        let (store, _guard) = $make().await;
                        suite::$name(&store).await;
                    }
                };
            }
            case!(create_is_idempotent_per_key);
            case!(sender_key_is_set_once);
            case!(append_and_fetch_in_order);
            case!(fetch_respects_byte_budget_but_always_progresses);
            case!(ack_removes_up_to_cursor_only);
            case!(quotas_refuse_and_free);
            case!(expired_messages_are_hidden_then_removed);
            case!(delete_removes_everything);
            case!(deleted_ids_stay_taken_until_their_tombstone_expires);
            case!(fetch_many_mailboxes_at_once);
            case!(concurrent_appends_get_distinct_seqs);
            case!(canaries_release_when_due_and_only_then);
            case!(canaries_reserve_quota_and_never_block_the_release);
            case!(stows_are_compare_and_swap);
            case!(one_lease_at_a_time_and_takeover_locks_out_the_old_device);
            case!(wrong_access_is_counted_and_deletes_the_record);
            case!(concurrent_claims_grant_exactly_one);
            case!(groups_are_created_once_and_share_the_mailbox_ids);
            case!(group_log_is_read_by_every_cursor_and_never_acked);
            case!(commits_are_compare_and_swap_and_a_retry_is_not_a_second_commit);
            case!(concurrent_commits_take_one_slot_each);
            case!(a_rotating_commit_ends_the_old_read_key_at_itself);
            case!(admin_keys_change_with_commits_and_one_always_stays);
            case!(group_quota_refuses_messages_before_commits);
            case!(a_deleted_group_is_gone_and_its_id_stays_taken);
            case!(only_admin_keys_commit_and_a_retry_repeats_everything);
            case!(commits_have_room_beyond_the_message_quota_but_not_unbounded);
        }
    };
}
