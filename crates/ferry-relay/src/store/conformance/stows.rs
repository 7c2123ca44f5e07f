//! Conformance cases for stow records.

use bytes::Bytes;
use ferry_proto::{MailboxId, MailboxKey};
use rand_core::OsRng;
use sha2::{Digest as _, Sha256};

use crate::store::{Claim, MailboxStore, StoreError, StowPut};

const ACCESS: [u8; 32] = [1; 32];
const LEASE_A: [u8; 32] = [0xa; 32];
const LEASE_B: [u8; 32] = [0xb; 32];

fn put(
    locator: MailboxId,
    owner: &MailboxKey,
    expected: u64,
    lease: Option<[u8; 32]>,
    keep: bool,
    fill: u8,
) -> StowPut {
    StowPut {
        locator,
        owner: owner.public(),
        access: ACCESS,
        expected,
        version: expected + 1,
        lease,
        keep_lease: keep,
        record: Bytes::from(vec![fill; 4096]),
        now: 1,
    }
}

pub async fn stows_are_compare_and_swap<S: MailboxStore>(s: &S) {
    let loc = MailboxId::random(&mut OsRng);
    let owner = MailboxKey::generate(&mut OsRng);
    assert!(s.stow_state(loc).await.unwrap().is_none());
    // Only version 0 -> 1 creates.
    assert!(matches!(
        s.put_stow(put(loc, &owner, 1, None, false, 1)).await,
        Err(StoreError::StowConflict { current: 0 })
    ));
    s.put_stow(put(loc, &owner, 0, None, false, 1))
        .await
        .unwrap();
    // The same expected version twice: the second loses.
    assert!(matches!(
        s.put_stow(put(loc, &owner, 0, None, false, 2)).await,
        Err(StoreError::StowConflict { current: 1 })
    ));
    s.put_stow(put(loc, &owner, 1, None, false, 2))
        .await
        .unwrap();
    let st = s.stow_state(loc).await.unwrap().unwrap();
    assert_eq!(st.version, 2);
    // A witness jumps ahead; never back, never in place.
    let mut jump = put(loc, &owner, 2, None, false, 2);
    jump.version = 7;
    s.put_stow(jump.clone()).await.unwrap();
    assert_eq!(s.stow_state(loc).await.unwrap().unwrap().version, 7);
    for v in [7, 3] {
        let mut back = put(loc, &owner, 7, None, false, 2);
        back.version = v;
        assert!(matches!(
            s.put_stow(back).await,
            Err(StoreError::StowConflict { current: 7 })
        ));
    }
    s.delete_stow(loc).await.unwrap();
    s.put_stow(put(loc, &owner, 0, None, false, 1))
        .await
        .unwrap();
    s.put_stow(put(loc, &owner, 1, None, false, 2))
        .await
        .unwrap();
    let st = s.stow_state(loc).await.unwrap().unwrap();
    assert_eq!(st.owner, owner.public());
    assert_eq!(st.digest, <[u8; 32]>::from(Sha256::digest([2u8; 4096])));
    assert!(st.lease.is_none());
    // Another owner cannot overwrite.
    let other = MailboxKey::generate(&mut OsRng);
    assert!(matches!(
        s.put_stow(put(loc, &other, 2, None, false, 3)).await,
        Err(StoreError::StowConflict { .. })
    ));
    assert!(s.delete_stow(loc).await.unwrap());
    assert!(!s.delete_stow(loc).await.unwrap());
    assert!(s.stow_state(loc).await.unwrap().is_none());
}

pub async fn one_lease_at_a_time_and_takeover_locks_out_the_old_device<S: MailboxStore>(s: &S) {
    let loc = MailboxId::random(&mut OsRng);
    let owner = MailboxKey::generate(&mut OsRng);
    assert_eq!(
        s.claim_stow(loc, ACCESS, LEASE_A, false, 10).await.unwrap(),
        Claim::NotFound
    );
    s.put_stow(put(loc, &owner, 0, None, false, 1))
        .await
        .unwrap();
    let Claim::Granted { version, record } =
        s.claim_stow(loc, ACCESS, LEASE_A, false, 10).await.unwrap()
    else {
        panic!("first claim refused");
    };
    assert_eq!(version, 1);
    assert_eq!(record.len(), 4096);
    // The same device again (a resumed restore): granted; another: refused.
    assert!(matches!(
        s.claim_stow(loc, ACCESS, LEASE_A, false, 10).await.unwrap(),
        Claim::Granted { .. }
    ));
    assert_eq!(
        s.claim_stow(loc, ACCESS, LEASE_B, false, 10).await.unwrap(),
        Claim::Leased
    );
    assert_eq!(
        s.stow_state(loc).await.unwrap().unwrap().lease,
        Some(LEASE_A)
    );
    // A put without the lease is refused; a checkpoint keeps it.
    assert!(matches!(
        s.put_stow(put(loc, &owner, 1, None, false, 2)).await,
        Err(StoreError::StowLeaseLost)
    ));
    s.put_stow(put(loc, &owner, 1, Some(LEASE_A), true, 2))
        .await
        .unwrap();
    assert_eq!(
        s.claim_stow(loc, ACCESS, LEASE_B, false, 10).await.unwrap(),
        Claim::Leased
    );
    // Takeover: B holds it now, A's stow is refused.
    assert!(matches!(
        s.claim_stow(loc, ACCESS, LEASE_B, true, 10).await.unwrap(),
        Claim::Granted { version: 2, .. }
    ));
    assert!(matches!(
        s.put_stow(put(loc, &owner, 2, Some(LEASE_A), false, 3))
            .await,
        Err(StoreError::StowLeaseLost)
    ));
    // B stows: released, anyone may claim.
    s.put_stow(put(loc, &owner, 2, Some(LEASE_B), false, 3))
        .await
        .unwrap();
    assert!(s.stow_state(loc).await.unwrap().unwrap().lease.is_none());
    assert!(matches!(
        s.claim_stow(loc, ACCESS, LEASE_A, false, 10).await.unwrap(),
        Claim::Granted { version: 3, .. }
    ));
}

pub async fn wrong_access_is_counted_and_deletes_the_record<S: MailboxStore>(s: &S) {
    let loc = MailboxId::random(&mut OsRng);
    let owner = MailboxKey::generate(&mut OsRng);
    s.put_stow(put(loc, &owner, 0, None, false, 1))
        .await
        .unwrap();
    let wrong = [9u8; 32];
    assert_eq!(
        s.claim_stow(loc, wrong, LEASE_A, false, 3).await.unwrap(),
        Claim::WrongAccess { left: 2 }
    );
    // A good claim resets the count.
    assert!(matches!(
        s.claim_stow(loc, ACCESS, LEASE_A, false, 3).await.unwrap(),
        Claim::Granted { .. }
    ));
    assert_eq!(s.stow_state(loc).await.unwrap().unwrap().failures, 0);
    assert_eq!(
        s.claim_stow(loc, wrong, LEASE_A, false, 3).await.unwrap(),
        Claim::WrongAccess { left: 2 }
    );
    assert_eq!(
        s.claim_stow(loc, wrong, LEASE_A, false, 3).await.unwrap(),
        Claim::WrongAccess { left: 1 }
    );
    assert_eq!(
        s.claim_stow(loc, wrong, LEASE_A, false, 3).await.unwrap(),
        Claim::NotFound
    );
    assert!(s.stow_state(loc).await.unwrap().is_none());
    assert_eq!(
        s.claim_stow(loc, ACCESS, LEASE_A, false, 3).await.unwrap(),
        Claim::NotFound
    );
}

pub async fn concurrent_claims_grant_exactly_one<S: MailboxStore>(s: &S) {
    let loc = MailboxId::random(&mut OsRng);
    let owner = MailboxKey::generate(&mut OsRng);
    s.put_stow(put(loc, &owner, 0, None, false, 1))
        .await
        .unwrap();
    let claims = (0..8u8).map(|i| s.claim_stow(loc, ACCESS, [i; 32], false, 10));
    let results = futures_util::future::join_all(claims).await;
    let granted = results
        .into_iter()
        .filter(|r| matches!(r, Ok(Claim::Granted { .. })))
        .count();
    assert_eq!(granted, 1);
}
