//! The vault's own tests: files, passphrases, duress, shredding, wipes.

use std::path::Path;

use rand_core::OsRng;

use super::*;
use crate::record::open_record;
use crate::schema::SCHEMA_VERSION;

fn pass(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn sizes(dir: &Path) -> Vec<(String, u64)> {
    snapshot(dir)
        .into_iter()
        .map(|(n, b)| (n, b.len() as u64))
        .collect()
}

#[test]
fn create_reopen_and_wrong_passphrase_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("profile");
    {
        let mut v = Vault::create(&p, &pass("correct horse"), &mut OsRng).unwrap();
        v.transaction(|tx| {
            tx.put_blob("state", b"hello")?;
            assert!(tx.insert_message(1, b"m1", b"record one", None)?);
            assert!(!tx.insert_message(1, b"m1", b"duplicate", None)?);
            assert!(tx.insert_message(1, b"m2", b"short-lived", Some(10))?);
            assert_eq!(tx.expire(9)?, 0);
            assert_eq!(tx.expire(10)?, 1);
            Ok(())
        })
        .unwrap();
    }
    let before = snapshot(&p);
    assert!(matches!(
        Vault::unlock(&p, &pass("wrong"), &mut OsRng),
        Err(VaultError::WrongPassphrase)
    ));
    assert_eq!(snapshot(&p), before, "a wrong passphrase changed the files");
    let v = Vault::unlock(&p, &pass("correct horse"), &mut OsRng).unwrap();
    assert_eq!(v.blob("state").unwrap().unwrap().as_slice(), b"hello");
    let msgs = v.messages(1).unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].as_slice(), b"record one");
    assert!(matches!(
        Vault::create(&p, &pass("x"), &mut OsRng),
        Err(VaultError::AlreadyExists)
    ));
    assert!(matches!(
        Vault::unlock(&dir.path().join("none"), &pass("x"), &mut OsRng),
        Err(VaultError::NotFound)
    ));
}

#[test]
fn files_have_no_recognizable_header_or_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("profile");
    let mut v = Vault::create(&p, &pass("pw"), &mut OsRng).unwrap();
    v.transaction(|tx| {
        tx.put_blob("alias-Marker", b"PLAINTEXT-MARKER-7781")?;
        tx.insert_message(3, b"id", b"MESSAGE-MARKER-1234", None)
            .map(|_| ())
    })
    .unwrap();
    drop(v);
    for (name, bytes) in snapshot(&p) {
        assert!(
            !bytes.starts_with(b"SQLite format"),
            "{name} has a SQLite header"
        );
        for marker in [
            &b"PLAINTEXT-MARKER-7781"[..],
            b"MESSAGE-MARKER-1234",
            b"alias-Marker",
            b"CREATE TABLE",
        ] {
            assert!(
                !bytes.windows(marker.len()).any(|w| w == marker),
                "{name} leaks"
            );
        }
    }
}

#[test]
fn a_destroyed_message_cannot_be_decrypted_from_an_old_copy() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("profile");
    let mut v = Vault::create(&p, &pass("pw"), &mut OsRng).unwrap();
    v.transaction(|tx| tx.insert_message(1, b"m", b"secret text", None).map(|_| ()))
        .unwrap();
    // Keep a copy of the sealed record, as stale disk blocks would.
    let (idx, sealed): (i64, Vec<u8>) = v
        .conn
        .query_row("SELECT key_idx, record FROM messages", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    let key_before = v.slab.key(idx as u64).unwrap();
    assert!(open_record(&key_before, 1, b"m", &sealed).is_some());
    v.transaction(|tx| tx.delete_message(1, b"m").map(|_| ()))
        .unwrap();
    let key_after = v.slab.key(idx as u64).unwrap();
    assert_ne!(*key_before, *key_after);
    assert!(
        open_record(&key_after, 1, b"m", &sealed).is_none(),
        "the old copy is unreadable"
    );
    // The freed entry is reused by the next message.
    v.transaction(|tx| tx.insert_message(1, b"n", b"next", None).map(|_| ()))
        .unwrap();
    let reused: i64 = v
        .conn
        .query_row("SELECT key_idx FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(reused, idx);
}

#[test]
fn duress_opens_the_decoy_and_destroys_the_real_profile() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("profile");
    let mut real = Vault::create(&p, &pass("real"), &mut OsRng).unwrap();
    real.transaction(|tx| tx.put_blob("who", b"real")).unwrap();
    real.set_duress(&pass("duress"), &mut OsRng, |decoy| {
        decoy.transaction(|tx| tx.put_blob("who", b"decoy"))
    })
    .unwrap();
    drop(real);
    let names_and_sizes = sizes(&p);
    // The real passphrase still opens the real profile, and leaves the decoy.
    let again = Vault::unlock(&p, &pass("real"), &mut OsRng).unwrap();
    assert_eq!(again.blob("who").unwrap().unwrap().as_slice(), b"real");
    assert!(again.open_decoy().unwrap().is_some());
    drop(again);
    // Duress: the decoy opens; the real one is gone; files and sizes stay.
    let d = Vault::unlock(&p, &pass("duress"), &mut OsRng).unwrap();
    assert_eq!(d.blob("who").unwrap().unwrap().as_slice(), b"decoy");
    assert!(d.open_decoy().unwrap().is_none());
    drop(d);
    assert_eq!(sizes(&p), names_and_sizes);
    assert!(matches!(
        Vault::unlock(&p, &pass("real"), &mut OsRng),
        Err(VaultError::WrongPassphrase)
    ));
    assert!(Vault::unlock(&p, &pass("duress"), &mut OsRng).is_ok());
}

/// Under coercion, a "duress passphrase" equal to the real one would open
/// the real profile. It is refused, and nothing is written.
#[test]
fn a_duress_passphrase_equal_to_the_passphrase_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("profile");
    let mut real = Vault::create(&p, &pass("same words"), &mut OsRng).unwrap();
    real.transaction(|tx| tx.put_blob("who", b"real")).unwrap();
    let before = snapshot(&p);
    let mut prepared = false;
    let err = real
        .set_duress(&pass("same words"), &mut OsRng, |_| {
            prepared = true;
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(err, VaultError::DuressIsPassphrase), "{err}");
    assert!(!prepared, "no decoy was made");
    assert!(real.open_decoy().unwrap().is_none());
    drop(real);
    let after = snapshot(&p);
    assert_eq!(before, after, "nothing was written");
    let again = Vault::unlock(&p, &pass("same words"), &mut OsRng).unwrap();
    assert_eq!(again.blob("who").unwrap().unwrap().as_slice(), b"real");
}

#[test]
fn slots_keep_equal_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("profile");
    let mut v = Vault::create(&p, &pass("pw"), &mut OsRng).unwrap();
    v.transaction(|tx| {
        for i in 0..300u32 {
            tx.insert_message(1, &i.to_be_bytes(), &[7u8; 2000], None)?;
        }
        Ok(())
    })
    .unwrap();
    v.equalize(&mut OsRng).unwrap();
    let s = sizes(&p);
    let get = |n: &str| s.iter().find(|(x, _)| x == n).map(|(_, l)| *l).unwrap();
    assert_eq!(get("0"), get("1"));
    assert_eq!(get("0.k"), get("1.k"));
}

#[test]
fn optional_wipe_after_wrong_passphrases() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("profile");
    let v = Vault::create(&p, &pass("pw"), &mut OsRng).unwrap();
    assert_eq!(v.wipe_after(), 0, "off by default");
    v.set_wipe_after(3, &mut OsRng).unwrap();
    drop(v);
    for _ in 0..2 {
        assert!(matches!(
            Vault::unlock(&p, &pass("no"), &mut OsRng),
            Err(VaultError::WrongPassphrase)
        ));
    }
    // A right passphrase resets the count.
    drop(Vault::unlock(&p, &pass("pw"), &mut OsRng).unwrap());
    for _ in 0..2 {
        assert!(matches!(
            Vault::unlock(&p, &pass("no"), &mut OsRng),
            Err(VaultError::WrongPassphrase)
        ));
    }
    assert!(p.exists());
    assert!(matches!(
        Vault::unlock(&p, &pass("no"), &mut OsRng),
        Err(VaultError::WrongPassphrase)
    ));
    assert!(
        !p.exists(),
        "the third wrong passphrase in a row wiped the profile"
    );
}

#[test]
fn old_files_are_migrated_and_newer_ones_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("profile");
    let v = Vault::create(&p, &pass("pw"), &mut OsRng).unwrap();
    // Make it look like a file of the first release: schema 1 only.
    v.conn
        .execute_batch(
            "DROP TABLE contacts; DROP TABLE outbox; DROP TABLE groups; DROP INDEX messages_key;
             DROP INDEX mls_key; DROP INDEX blobs_key;
             ALTER TABLE mls DROP COLUMN key_idx; ALTER TABLE blobs DROP COLUMN key_idx;
             PRAGMA user_version = 1;",
        )
        .unwrap();
    drop(v);
    let mut v = Vault::unlock(&p, &pass("pw"), &mut OsRng).unwrap();
    let version: i64 = v
        .conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    v.transaction(|tx| tx.put_record(Table::Contacts, 7, Some(b"seven")))
        .unwrap();
    assert_eq!(v.records(Table::Contacts).unwrap()[0].0, 7);
    v.transaction(|tx| tx.put_record(Table::Groups, 9, Some(b"nine")))
        .unwrap();
    assert_eq!(v.records(Table::Groups).unwrap()[0].0, 9);
    // A file from a newer Ferry: refused with a clear error, unchanged.
    v.conn.execute_batch("PRAGMA user_version = 99;").unwrap();
    drop(v);
    let before = snapshot(&p);
    match Vault::unlock(&p, &pass("pw"), &mut OsRng) {
        Err(VaultError::Corrupt(m)) => assert!(m.contains("newer"), "{m}"),
        other => panic!("opened a newer file: {:?}", other.map(|_| ())),
    }
    assert_eq!(snapshot(&p), before);
}

#[test]
fn versioned_blobs_read_old_bare_json_and_refuse_newer_versions() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("profile");
    let mut v = Vault::create(&p, &pass("pw"), &mut OsRng).unwrap();
    v.transaction(|tx| {
        tx.put_blob("old", br#"[1,2,3]"#)?;
        tx.put_json("new", 1, &vec![4u8, 5])?;
        tx.put_blob("future", b"\x07[1]")
    })
    .unwrap();
    assert_eq!(v.json::<Vec<u8>>("old", 1).unwrap(), Some(vec![1, 2, 3]));
    assert_eq!(v.json::<Vec<u8>>("new", 1).unwrap(), Some(vec![4, 5]));
    assert_eq!(v.blob("new").unwrap().unwrap()[0], 1, "version byte first");
    assert!(v.json::<Vec<u8>>("missing", 1).unwrap().is_none());
    match v.json::<Vec<u8>>("future", 1) {
        Err(VaultError::Corrupt(m)) => assert!(m.contains("newer"), "{m}"),
        other => panic!("read a newer record: {other:?}"),
    }
}

#[test]
fn expiring_with_nothing_due_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("profile");
    let mut v = Vault::create(&p, &pass("pw"), &mut OsRng).unwrap();
    v.transaction(|tx| tx.insert_message(1, b"m", b"later", Some(100)).map(|_| ()))
        .unwrap();
    let before = snapshot(&p);
    assert_eq!(v.expire(99).unwrap(), 0);
    assert_eq!(snapshot(&p), before, "a check with nothing due wrote");
    assert_eq!(v.expire(100).unwrap(), 1);
    assert!(v.messages(1).unwrap().is_empty());
}

#[test]
fn a_second_process_cannot_open_an_open_profile() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("profile");
    let v = Vault::create(&p, &pass("pw"), &mut OsRng).unwrap();
    // Another open file description on the same directory stands in for
    // another process: flock locks belong to the open file.
    let started = std::time::Instant::now();
    assert!(matches!(
        Vault::unlock(&p, &pass("pw"), &mut OsRng),
        Err(VaultError::InUse)
    ));
    assert!(started.elapsed() >= LOCK_WAIT);
    drop(v);
    assert!(Vault::unlock(&p, &pass("pw"), &mut OsRng).is_ok());
}

#[test]
fn panic_wipe_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("profile");
    let mut v = Vault::create(&p, &pass("pw"), &mut OsRng).unwrap();
    v.transaction(|tx| tx.put_blob("x", &[7u8; 100_000]))
        .unwrap();
    drop(v);
    let n = panic_wipe(&p, &mut OsRng).unwrap();
    assert!(n >= 4);
    assert!(!p.exists());
    assert!(matches!(
        Vault::unlock(&p, &pass("pw"), &mut OsRng),
        Err(VaultError::NotFound)
    ));
}

/// A replaced MLS secret (an old epoch) or blob (the keys of a pending
/// upload) cannot be read from an old copy of its row (freed pages, the
/// journal), even with the passphrase; a transaction that fails keeps the
/// old value readable.
#[test]
fn replaced_mls_secrets_and_blobs_cannot_be_read_from_an_old_copy() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("profile");
    let mut v = Vault::create(&p, &pass("pw"), &mut OsRng).unwrap();
    v.transaction(|tx| {
        tx.update_mls([(&b"epoch secret"[..], Some(&b"epoch 1 secret"[..]))])?;
        tx.put_blob("uploads", b"attachment key 1")
    })
    .unwrap();
    let row = |v: &Vault, sql: &str| -> (i64, Vec<u8>) {
        v.conn
            .query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
    };
    let (m_idx, m_old) = row(&v, "SELECT key_idx, v FROM mls");
    let (b_idx, b_old) = row(
        &v,
        "SELECT key_idx, value FROM blobs WHERE name = 'uploads'",
    );
    assert!(
        !m_old.windows(5).any(|w| w == b"epoch"),
        "stored in the clear"
    );
    let open = |v: &Vault, idx: i64, domain: u64, name: &[u8], sealed: &[u8]| {
        open_record(&v.slab.key(idx as u64).unwrap(), domain, name, sealed).is_some()
    };
    assert!(open(
        &v,
        m_idx,
        crate::schema::MLS_DOMAIN,
        b"epoch secret",
        &m_old
    ));

    // A transaction that replaces them and then fails changes nothing.
    let failed = v.transaction(|tx| {
        tx.update_mls([(&b"epoch secret"[..], Some(&b"never"[..]))])?;
        tx.put_blob("uploads", b"never")?;
        Err::<(), _>(VaultError::Db("interrupted".into()))
    });
    assert!(failed.is_err());
    assert_eq!(v.mls_state().unwrap()[0].1.as_slice(), b"epoch 1 secret");
    assert_eq!(
        v.blob("uploads").unwrap().unwrap().as_slice(),
        b"attachment key 1"
    );

    // Replaced: the new values read, the old copies no longer open.
    v.transaction(|tx| {
        tx.update_mls([(&b"epoch secret"[..], Some(&b"epoch 2 secret"[..]))])?;
        tx.put_blob("uploads", b"attachment key 2")
    })
    .unwrap();
    assert_eq!(v.mls_state().unwrap()[0].1.as_slice(), b"epoch 2 secret");
    assert_eq!(
        v.blob("uploads").unwrap().unwrap().as_slice(),
        b"attachment key 2"
    );
    assert!(!open(
        &v,
        m_idx,
        crate::schema::MLS_DOMAIN,
        b"epoch secret",
        &m_old
    ));
    assert!(!open(
        &v,
        b_idx,
        crate::schema::BLOB_DOMAIN,
        b"uploads",
        &b_old
    ));
    drop(v);
    // And across a reopen.
    let v = Vault::unlock(&p, &pass("pw"), &mut OsRng).unwrap();
    assert_eq!(v.mls_state().unwrap()[0].1.as_slice(), b"epoch 2 secret");
}

/// The captor compares the files: making the decoy deleted and created no
/// slot file again (inodes and creation times unchanged, so nothing dates
/// the decoy), and after a session every slot file has the same access and
/// modification times, whichever slot was used.
#[test]
fn the_files_neither_date_the_decoy_nor_show_which_slot_is_used() {
    use std::os::unix::fs::MetadataExt as _;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("profile");
    let mut v = Vault::create(&p, &pass("pw"), &mut OsRng).unwrap();
    v.equalize(&mut OsRng).unwrap();
    let identity = || -> Vec<(u64, Option<std::time::SystemTime>)> {
        crate::slot::slot_files(&p)
            .iter()
            .map(|f| {
                let m = std::fs::metadata(f).unwrap();
                (m.ino(), m.created().ok())
            })
            .collect()
    };
    let before = identity();
    std::thread::sleep(std::time::Duration::from_millis(20));
    v.set_duress(&pass("duress words"), &mut OsRng, |_| Ok(()))
        .unwrap();
    assert_eq!(identity(), before, "a slot file was created anew");
    let times: Vec<(i64, i64, i64, i64)> = crate::slot::slot_files(&p)
        .iter()
        .map(|f| {
            let m = std::fs::metadata(f).unwrap();
            (m.mtime(), m.mtime_nsec(), m.atime(), m.atime_nsec())
        })
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] == w[1]),
        "slot files have different times: {times:?}"
    );
}

/// The captor opens the decoy with the duress passphrase and looks at how
/// full it is: mostly free space, like any profile that has not been used
/// much, not a small profile padded to a bigger one's size.
#[test]
fn a_decoys_fill_level_is_that_of_any_little_used_profile() {
    let free_ratio = |v: &Vault| -> f64 {
        let free: i64 = v
            .conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))
            .unwrap();
        let pages: i64 = v
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        free as f64 / pages as f64
    };
    let dir = tempfile::tempdir().unwrap();
    let fresh = Vault::create(&dir.path().join("fresh"), &pass("pw"), &mut OsRng).unwrap();
    let fresh_ratio = free_ratio(&fresh);
    let p = dir.path().join("used");
    let mut v = Vault::create(&p, &pass("pw"), &mut OsRng).unwrap();
    v.transaction(|tx| {
        for i in 0..200u64 {
            tx.insert_message(1, &i.to_be_bytes(), &[7; 300], None)?;
        }
        Ok(())
    })
    .unwrap();
    v.set_duress(&pass("duress words"), &mut OsRng, |_| Ok(()))
        .unwrap();
    drop(v);
    let decoy = Vault::unlock(&p, &pass("duress words"), &mut OsRng).unwrap();
    let decoy_ratio = free_ratio(&decoy);
    assert!(
        fresh_ratio > 0.8,
        "a fresh profile is {fresh_ratio:.2} free"
    );
    assert!(
        (decoy_ratio - fresh_ratio).abs() < 0.1,
        "decoy {decoy_ratio:.2} free, a fresh profile {fresh_ratio:.2}"
    );
}

fn copy_profile(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// The captor's carving, done with two images of the phone and the
/// passphrase: every old version of a page (what carving the journal's
/// freed blocks or a flash chip's stale copies yields) is in an image
/// taken earlier, and the key slab as it is now in one taken later. Old
/// pages opened with the passphrase and today's slab give back none of
/// the MLS secrets or keys replaced since; the control, old pages with the
/// slab of their own time, gives them all back.
#[test]
fn old_pages_carved_with_the_passphrase_give_back_no_replaced_secret() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("profile");
    let mut v = Vault::create(&p, &pass("pw"), &mut OsRng).unwrap();
    v.transaction(|tx| {
        tx.update_mls([(&b"epoch secret"[..], Some(&b"epoch 1 secret"[..]))])?;
        tx.put_blob("uploads", b"attachment key 1")
    })
    .unwrap();
    let slot = v.slot;
    drop(v);
    let early = dir.path().join("early image");
    copy_profile(&p, &early);

    let mut v = Vault::unlock(&p, &pass("pw"), &mut OsRng).unwrap();
    v.transaction(|tx| {
        tx.update_mls([(&b"epoch secret"[..], Some(&b"epoch 2 secret"[..]))])?;
        tx.put_blob("uploads", b"attachment key 2")
    })
    .unwrap();
    drop(v);
    let late = dir.path().join("late image");
    copy_profile(&p, &late);

    // Control: the early image as it is opens with the passphrase and
    // gives back what it held.
    let control = dir.path().join("control");
    copy_profile(&early, &control);
    let v = Vault::unlock(&control, &pass("pw"), &mut OsRng).unwrap();
    assert_eq!(v.mls_state().unwrap()[0].1.as_slice(), b"epoch 1 secret");
    assert_eq!(
        v.blob("uploads").unwrap().unwrap().as_slice(),
        b"attachment key 1"
    );
    drop(v);

    // The attack: the early pages with the late key slab.
    let carved = dir.path().join("carved");
    copy_profile(&early, &carved);
    std::fs::copy(slab_path(&late, slot), slab_path(&carved, slot)).unwrap();
    let v = Vault::unlock(&carved, &pass("pw"), &mut OsRng).unwrap();
    let mls = v.mls_state();
    assert!(
        mls.iter()
            .flatten()
            .all(|(_, val)| val.as_slice() != b"epoch 1 secret"),
        "an old MLS secret came back"
    );
    let blob = v.blob("uploads");
    assert!(
        !matches!(&blob, Ok(Some(b)) if b.as_slice() == b"attachment key 1"),
        "an old key came back"
    );
    // Every byte of every file, decrypted or not, is searched too.
    for name in [b"epoch 1 secret".as_slice(), b"attachment key 1"] {
        for (f, bytes) in snapshot(&carved) {
            assert!(
                !bytes.windows(name.len()).any(|w| w == name),
                "{f} holds an old secret in the clear"
            );
        }
    }
}

/// Preparing the decoy through the real profile, someone sets a duress
/// passphrase on the decoy itself: its other slot is the real profile,
/// which must not be made over into a decoy of the decoy.
#[test]
fn a_decoy_opened_through_the_real_profile_cannot_get_a_decoy() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("profile");
    let mut real = Vault::create(&p, &pass("real"), &mut OsRng).unwrap();
    real.transaction(|tx| tx.put_blob("who", b"real")).unwrap();
    real.set_duress(&pass("duress"), &mut OsRng, |_| Ok(()))
        .unwrap();
    let mut decoy = real.open_decoy().unwrap().unwrap();
    let before = snapshot(&p);
    let err = decoy
        .set_duress(&pass("another"), &mut OsRng, |_| Ok(()))
        .unwrap_err();
    assert!(matches!(err, VaultError::DuressInDecoy), "{err}");
    drop(decoy);
    drop(real);
    assert_eq!(snapshot(&p), before, "nothing was written");
    let again = Vault::unlock(&p, &pass("real"), &mut OsRng).unwrap();
    assert_eq!(again.blob("who").unwrap().unwrap().as_slice(), b"real");
}
