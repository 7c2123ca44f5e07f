//! Ways a member or an admin's own client could split the group, each
//! refused so that every member stays on one epoch.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::*;

use super::tests::{Person, group_of, same_epoch};
use super::*;

/// Everyone holds the write key, so an admin (or a member) can post a
/// commit as a message, outside the relay's order, just before another
/// admin's commit. Nobody applies it (a commit counts only where the relay
/// ordered it), and the other admin's commit then applies everywhere.
#[test]
fn a_commit_posted_as_a_message_is_applied_by_no_one() {
    let (mut people, mut log) = group_of(3);
    let key1 = people[1].key();
    let s = people[0]
        .chat()
        .settings()
        .unwrap()
        .with_role(&key1, Role::Admin);
    let out = people[0]
        .act(|c, p, sg| c.change_settings(p, sg, &s))
        .unwrap();
    assert!(people[0].push(0, &mut log, out));
    for (i, p) in people.iter_mut().enumerate() {
        p.catch_up(i, &log);
    }
    let epoch = people[0].chat().epoch();
    // Admin 1 makes a commit every member would accept, and posts it as a
    // message instead of committing it at the relay.
    let mut t1 = people[1].chat().settings().unwrap();
    t1.timer = 30;
    let bytes = people[1]
        .act(|c, p, sg| c.change_settings(p, sg, &t1))
        .unwrap()
        .commit;
    people[1].act(|c, p, _| c.cancel(p)).unwrap();
    log.post(bytes);
    people[0].catch_up(0, &log);
    people[2].catch_up(2, &log);
    assert_eq!(people[0].chat().epoch(), epoch);
    assert_eq!(people[2].chat().epoch(), epoch);
    let mut s = people[0].chat().settings().unwrap();
    s.timer = 60;
    let out = people[0]
        .act(|c, p, sg| c.change_settings(p, sg, &s))
        .unwrap();
    assert!(people[0].push(0, &mut log, out));
    for (i, p) in people.iter_mut().enumerate() {
        p.catch_up(i, &log);
    }
    same_epoch(&mut people);
    assert_eq!(people[2].chat().settings().unwrap().timer, 60);
}

/// A member proposes adding someone, another proposes a key refresh:
/// nobody keeps either (a stored proposal would stop every member from
/// sending), everyone still sends, and the admin's next commit is one every
/// member applies.
#[test]
fn members_proposals_are_never_kept_or_committed() {
    let (mut people, mut log) = group_of(3);
    let outsider = Person::new();
    let kp = outsider.key_package("outsider");
    let bytes = people[2].act(|c, p, s| {
        let kp = KeyPackageIn::tls_deserialize_exact(&kp)
            .unwrap()
            .validate(p.crypto(), ProtocolVersion::Mls10)
            .unwrap();
        let (msg, _) = c.group.propose_add_member(p, s, &kp).unwrap();
        msg.tls_serialize_detached().unwrap()
    });
    log.post(bytes);
    let refresh = people[1].act(|c, p, s| {
        let (msg, _) = c
            .group
            .propose_self_update(p, s, LeafNodeParameters::default())
            .unwrap();
        msg.tls_serialize_detached().unwrap()
    });
    log.post(refresh);
    people[0].catch_up(0, &log);
    people[0].send(&mut log, "the admin still sends");
    let mut t = people[0].chat().settings().unwrap();
    t.timer = 30;
    let out = people[0]
        .act(|c, p, sg| c.change_settings(p, sg, &t))
        .unwrap();
    assert!(out.welcome.is_none(), "nobody was added");
    assert!(people[0].push(0, &mut log, out));
    for (i, p) in people.iter_mut().enumerate() {
        p.catch_up(i, &log);
        assert!(p.skipped.is_empty(), "member {i} skipped nothing");
    }
    same_epoch(&mut people);
    assert_eq!(people[1].chat().members().unwrap().len(), 3);
    assert!(
        people[2]
            .texts
            .iter()
            .any(|(_, b)| b == b"the admin still sends")
    );
}

/// An owner's own client refuses a commit everyone would skip (demoting
/// the last owner), and leaves nothing pending.
#[test]
fn a_commit_others_would_skip_is_never_sent() {
    let (mut people, _log) = group_of(2);
    let me = people[0].key();
    let s = people[0]
        .chat()
        .settings()
        .unwrap()
        .with_role(&me, Role::Admin);
    let e = people[0]
        .act(|c, p, sg| c.change_settings(p, sg, &s))
        .unwrap_err();
    assert!(
        matches!(e, GroupError::Refused(Refusal::BadSettings)),
        "{e}"
    );
    assert!(people[0].chat().pending_commit().is_none());
    // A change others accept is kept pending, whole, until confirmed.
    let key1 = people[1].key();
    let s = people[0].chat().settings().unwrap();
    let out = people[0]
        .act(|c, p, sg| c.change_settings(p, sg, &s.with_role(&key1, Role::Admin)))
        .unwrap();
    assert_eq!(
        people[0].chat().pending_commit().unwrap().commit,
        out.commit
    );
    people[0].act(|c, p, _| c.confirm(p)).unwrap();
    assert!(people[0].chat().pending_commit().is_none());
}

/// Two owners asking to leave at once: a plain admin cannot remove an
/// owner, and whichever owner's removal goes first, the other is then the
/// last owner, whose request everyone ignores.
#[test]
fn requests_to_leave_never_leave_a_group_without_an_owner() {
    let (mut people, mut log) = group_of(3);
    let (key1, key2) = (people[1].key(), people[2].key());
    let s = people[0]
        .chat()
        .settings()
        .unwrap()
        .with_role(&key1, Role::Owner)
        .with_role(&key2, Role::Admin);
    let out = people[0]
        .act(|c, p, sg| c.change_settings(p, sg, &s))
        .unwrap();
    assert!(people[0].push(0, &mut log, out));
    for (i, p) in people.iter_mut().enumerate() {
        p.catch_up(i, &log);
    }
    let key0 = people[0].key();
    for i in [0, 1] {
        let leave = people[i].act(|c, p, sg| c.request_leave(p, sg)).unwrap();
        log.post(leave);
    }
    people[2].catch_up(2, &log);
    assert_eq!(people[2].leaving, [key0.clone(), key1.clone()]);
    // The admin may not remove an owner.
    assert!(matches!(
        people[2].act(|c, p, sg| c.remove(p, sg, &key0)),
        Err(GroupError::NotAdmin)
    ));
    // Owner 1 removes owner 0; owner 1 is then the last owner.
    people[1].catch_up(1, &log);
    let out = people[1].act(|c, p, sg| c.remove(p, sg, &key0)).unwrap();
    assert!(people[1].push(1, &mut log, out));
    for (i, p) in people.iter_mut().enumerate() {
        p.catch_up(i, &log);
    }
    assert!(people[0].removed);
    assert!(people[1].act(|c, p, sg| c.request_leave(p, sg)).is_err());
    // Sent anyway (an old request, a modified client): ignored by all.
    let before = people[2].leaving.len();
    let forged = people[1].act(|c, p, sg| c.seal(p, sg, &[2])).unwrap();
    log.post(forged);
    people[2].catch_up(2, &log);
    assert_eq!(people[2].leaving.len(), before);
}

/// An admin whose answer from the relay was lost reads its own commit back
/// from the log and applies it there.
#[test]
fn an_admins_own_commit_read_back_from_the_log_is_applied() {
    let (mut people, mut log) = group_of(3);
    let mut s = people[0].chat().settings().unwrap();
    s.timer = 600;
    let out = people[0]
        .act(|c, p, sg| c.change_settings(p, sg, &s))
        .unwrap();
    let slots = log.slots;
    assert!(log.commit(0, slots, out.commit));
    for (i, p) in people.iter_mut().enumerate() {
        p.catch_up(i, &log);
    }
    assert!(people[0].chat().pending_commit().is_none());
    same_epoch(&mut people);
    assert_eq!(people[0].chat().settings().unwrap().timer, 600);
}
