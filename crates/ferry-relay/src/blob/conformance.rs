//! The conformance suite every [`BlobStore`] backend runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use bytes::Bytes;
use rand_core::OsRng;

use super::{BlobError, BlobId, BlobStore, Reservation};

pub async fn upload_resume_read_delete<S: BlobStore>(s: &S) {
    let id = BlobId::random(&mut OsRng);
    s.create(id, 10, [7; 32], 100, Reservation::total(u64::MAX))
        .await
        .unwrap();
    assert!(matches!(
        s.create(id, 10, [7; 32], 100, Reservation::total(u64::MAX))
            .await,
        Err(BlobError::Exists)
    ));
    let info = s.info(id).await.unwrap().unwrap();
    assert_eq!(
        (info.length, info.offset, info.expires_at, info.token_hash),
        (10, 0, 100, [7; 32])
    );
    assert_eq!(
        s.append(id, 0, Bytes::from_static(b"hello")).await.unwrap(),
        5
    );
    s.sync(id).await.unwrap();
    assert!(matches!(
        s.append(id, 3, Bytes::from_static(b"x")).await,
        Err(BlobError::OffsetMismatch)
    ));
    assert!(matches!(
        s.append(id, 5, Bytes::from_static(b"too long!")).await,
        Err(BlobError::TooLong)
    ));
    assert_eq!(
        s.info(id).await.unwrap().unwrap().offset,
        5,
        "refused writes store nothing"
    );
    assert_eq!(
        s.append(id, 5, Bytes::from_static(b"world")).await.unwrap(),
        10
    );
    s.sync(id).await.unwrap();
    assert_eq!(&s.read(id, 3, 4).await.unwrap()[..], b"lowo");
    assert_eq!(&s.read(id, 8, 100).await.unwrap()[..], b"ld");
    assert!(s.delete(id).await.unwrap());
    assert!(s.info(id).await.unwrap().is_none());
    assert!(!s.delete(id).await.unwrap());
}

pub async fn expiry_removes_only_expired<S: BlobStore>(s: &S) {
    let old = BlobId::random(&mut OsRng);
    let new = BlobId::random(&mut OsRng);
    s.create(old, 1, [0; 32], 50, Reservation::total(u64::MAX))
        .await
        .unwrap();
    s.create(new, 1, [0; 32], 500, Reservation::total(u64::MAX))
        .await
        .unwrap();
    assert_eq!(s.expire(100).await.unwrap(), 1);
    assert!(s.info(old).await.unwrap().is_none());
    assert!(s.info(new).await.unwrap().is_some());
}

pub async fn storage_budget_is_enforced_and_freed<S: BlobStore>(s: &S) {
    let base = s.reserved().await.unwrap();
    let (a, b, c) = (
        BlobId::random(&mut OsRng),
        BlobId::random(&mut OsRng),
        BlobId::random(&mut OsRng),
    );
    s.create(a, 600, [0; 32], 50, Reservation::total(base + 1000))
        .await
        .unwrap();
    assert_eq!(s.reserved().await.unwrap(), base + 600);
    assert!(matches!(
        s.create(b, 500, [0; 32], 500, Reservation::total(base + 1000))
            .await,
        Err(BlobError::StorageFull)
    ));
    assert!(
        s.info(b).await.unwrap().is_none(),
        "a refused blob is not created"
    );
    s.create(b, 400, [0; 32], 500, Reservation::total(base + 1000))
        .await
        .unwrap();
    assert_eq!(s.reserved().await.unwrap(), base + 1000);
    // Deleting and expiring give the room back.
    assert!(s.delete(b).await.unwrap());
    assert_eq!(s.reserved().await.unwrap(), base + 600);
    assert_eq!(s.expire(100).await.unwrap(), 1);
    assert_eq!(s.reserved().await.unwrap(), base);
    s.create(c, 1000, [0; 32], 500, Reservation::total(base + 1000))
        .await
        .unwrap();
}

pub async fn each_owner_has_its_own_budget<S: BlobStore>(s: &S) {
    let (alice, mallory) = ([1u8; 32], [2u8; 32]);
    let budget = |owner| Reservation {
        owner,
        total: u64::MAX,
        per_owner: 1000,
    };
    let ids: Vec<BlobId> = (0..4).map(|_| BlobId::random(&mut OsRng)).collect();
    s.create(ids[0], 700, [0; 32], 500, budget(mallory))
        .await
        .unwrap();
    assert!(matches!(
        s.create(ids[1], 400, [0; 32], 500, budget(mallory)).await,
        Err(BlobError::OwnerBudget)
    ));
    // Another owner is not held back by the first.
    s.create(ids[2], 1000, [0; 32], 500, budget(alice))
        .await
        .unwrap();
    // Deleting gives the owner's room back.
    assert!(s.delete(ids[0]).await.unwrap());
    s.create(ids[3], 1000, [0; 32], 500, budget(mallory))
        .await
        .unwrap();
}

/// Runs the suite against `$make`, an `async fn() -> (impl BlobStore, Guard)`.
#[macro_export]
macro_rules! blob_store_conformance {
    ($make:path) => {
        mod blob_store_conformance {
            use $crate::blob::conformance as suite;

            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test]
                    async fn $name() {
                        let (store, _guard) = $make().await;
                        suite::$name(&store).await;
                    }
                };
            }
            case!(upload_resume_read_delete);
            case!(expiry_removes_only_expired);
            case!(storage_budget_is_enforced_and_freed);
            case!(each_owner_has_its_own_budget);
        }
    };
}
