//! Group chats end to end: the real binary, a real relay process, profiles
//! on disk, every step a command a person (or a script) runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
use common::*;

/// Texts of group messages in a run, as "sender: text".
fn group_texts(r: &Run) -> Vec<String> {
    r.of_type("message")
        .iter()
        .map(|m| {
            format!(
                "{}: {}",
                m["from"].as_str().unwrap_or("(you)"),
                m["text"].as_str().unwrap()
            )
        })
        .collect()
}

/// Every byte the relay keeps on disk.
fn relay_bytes(w: &World) -> Vec<u8> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(w.relay.data_dir()).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            all.extend(std::fs::read(p).unwrap());
        }
    }
    all
}

#[test]
fn a_group_made_from_the_cli_carries_messages_and_shuts_a_removed_member_out() {
    let w = world();
    let made =
        w.a.run(&["group", "create", "가족 family", "--as", "Amina"]);
    assert_eq!(made.of_type("group_created").len(), 1);
    w.a.run(&["group", "add", "가족 family", "Bashir", "Chen"]);
    // Each one's device answers with a key package at its sync; the admin
    // commits the adds at its own and sends each one its welcome.
    assert!(w.b.run(&["sync"]).of_type("group_joined").is_empty());
    w.c.run(&["sync"]);
    w.a.run(&["sync"]);
    let joined = w.b.run(&["sync"]);
    let j = joined.of_type("group_joined");
    assert_eq!(j.len(), 1, "{:?}", joined.lines);
    assert_eq!(j[0]["by"], "Amina", "told who added them (their alias)");
    assert_eq!(j[0]["group"], "가족 family");
    assert_eq!(w.c.run(&["sync"]).of_type("group_joined").len(), 1);

    let members = w.c.run(&["group", "members", "가족 family"]);
    let m = members.of_type("group_member");
    assert_eq!(m.len(), 3, "{:?}", members.lines);
    let owner: Vec<_> = m.iter().filter(|m| m["role"] == "owner").collect();
    assert_eq!(owner.len(), 1);
    assert_eq!(owner[0]["name"], "Amina");
    assert_eq!(m.iter().filter(|m| m["you"] == true).count(), 1);
    // The admin sees who is who among its own contacts.
    let mine = w.a.run(&["group", "members", "가족 family"]);
    let mut contacts: Vec<_> = mine
        .of_type("group_member")
        .iter()
        .filter_map(|m| m["contact"].as_str().map(str::to_owned))
        .collect();
    contacts.sort();
    assert_eq!(contacts, ["Bashir", "Chen"]);
    // Members who joined with no name of their own show a neutral one.
    let b_name = m
        .iter()
        .find(|x| x["role"] == "member" && x["you"] == false)
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(b_name.starts_with("member-"), "{b_name}");

    // `send` and `history` take the group's name as they take an alias.
    w.a.run(&["send", "가족 family", "dinner at 7"]);
    w.b.run(&["send", "가족 family", "I'll bring rice"]);
    let c_in = w.c.run(&["sync"]);
    assert_eq!(
        group_texts(&c_in),
        ["Amina: dinner at 7", &format!("{b_name}: I'll bring rice")]
    );
    assert_eq!(group_texts(&w.b.run(&["sync"])), ["Amina: dinner at 7"]);
    let history = w.c.run(&["history", "가족 family"]);
    assert_eq!(history.texts(), ["dinner at 7", "I'll bring rice"]);
    // Nothing is shown twice.
    assert!(w.c.run(&["sync"]).texts().is_empty());

    // The relay holds each message once and nothing readable.
    let stored = relay_bytes(&w);
    for needle in ["dinner at 7", "가족", "Amina", "Bashir", "Chen", "member-"] {
        assert!(
            !contains(&stored, needle.as_bytes()),
            "{needle} on the relay"
        );
    }

    // The admin removes Chen: Chen's device wipes the group; the others go
    // on, and Chen reads nothing sent after.
    // The admin reads the group's log before it commits (B's message is
    // taken in with the command), so nothing of the epoch before is lost.
    w.a.run(&["group", "remove", "가족 family", "Chen"]);
    assert_eq!(
        w.a.run(&["history", "가족 family"]).texts(),
        ["dinner at 7", "I'll bring rice"]
    );
    let c_out = w.c.run(&["sync"]);
    assert_eq!(c_out.of_type("group_removed").len(), 1, "{:?}", c_out.lines);
    assert!(w.c.run(&["group", "list"]).of_type("group").is_empty());
    assert_ne!(w.c.try_run(&["history", "가족 family"]).code, 0);
    let b_sees = w.b.run(&["sync"]);
    assert_eq!(b_sees.of_type("group_members").len(), 1);
    w.b.run(&["send", "가족 family", "just us now"]);
    assert_eq!(
        group_texts(&w.a.run(&["sync"])),
        [format!("{b_name}: just us now")]
    );
    assert!(w.c.run(&["sync"]).texts().is_empty());
    let list = w.b.run(&["group", "list"]);
    assert_eq!(list.of_type("group")[0]["members"], 2);

    // A member cannot remove anyone; B leaves, and the admin commits it.
    let refused = w.b.try_run(&["group", "remove", "가족 family", "Amina"]);
    assert_ne!(refused.code, 0);
    w.b.run(&["group", "leave", "가족 family"]);
    assert!(w.b.run(&["group", "list"]).of_type("group").is_empty());
    w.a.run(&["sync"]);
    let a_list = w.a.run(&["group", "list"]);
    assert_eq!(a_list.of_type("group")[0]["members"], 1);
}

/// A's group "kin" with B and C in it.
fn kin(w: &World) {
    w.a.run(&["group", "create", "kin", "--as", "Amina"]);
    w.a.run(&["group", "add", "kin", "Bashir", "Chen"]);
    w.b.run(&["sync"]);
    w.c.run(&["sync"]);
    w.a.run(&["sync"]);
    w.b.run(&["sync"]);
    w.c.run(&["sync"]);
    assert_eq!(w.c.run(&["group", "list"]).of_type("group").len(), 1);
}

#[test]
fn a_member_who_raises_an_alert_is_quarantined_by_all_and_removed_by_the_admin() {
    let w = world();
    kin(&w);
    // Chen's phone is taken: `alert --all` warns the contacts and every
    // group.
    let warned = w.c.run(&["alert", "--all"]);
    assert!(!warned.lines.is_empty(), "{:?}", warned.lines);
    let a_sees = w.a.run(&["sync"]);
    assert_eq!(
        a_sees.of_type("group_quarantined").len(),
        1,
        "{:?}",
        a_sees.lines
    );
    // The admin removed Chen with that same sync.
    let b_sees = w.b.run(&["sync"]);
    assert_eq!(
        b_sees.of_type("group_quarantined").len(),
        1,
        "{:?}",
        b_sees.lines
    );
    assert_eq!(
        b_sees.of_type("group_members").len(),
        1,
        "{:?}",
        b_sees.lines
    );
    assert_eq!(
        w.b.run(&["group", "list"]).of_type("group")[0]["members"],
        2
    );
    assert_eq!(w.c.run(&["sync"]).of_type("group_removed").len(), 1);
}

#[test]
fn a_file_sent_to_a_group_goes_up_once_and_every_member_saves_it() {
    let w = world();
    kin(&w);
    let src = w.dir.path().join("plan.txt");
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&src, &body).unwrap();
    let blobs = |w: &World| {
        walk(&w.relay.data_dir())
            .into_iter()
            .filter(|p| p.to_string_lossy().contains("blob"))
            .count()
    };
    let before = blobs(&w);
    w.b.run(&["send-file", "kin", src.to_str().unwrap()]);
    let uploaded = blobs(&w) - before;
    assert!(uploaded > 0, "the file is on the relay");
    for (n, u) in [&w.a, &w.c].into_iter().enumerate() {
        let got = u.run(&["sync"]);
        let m = got.of_type("message");
        assert_eq!(m.len(), 1, "{:?}", got.lines);
        assert_eq!(m[0]["attachment"]["name"], "plan.txt");
        let id = m[0]["id"].as_str().unwrap().to_owned();
        let out = w.dir.path().join(format!("saved-{n}"));
        u.run(&["save", "kin", &id, out.to_str().unwrap()]);
        assert_eq!(std::fs::read(&out).unwrap(), body);
    }
    // One upload for the whole group: nothing more went up for the second
    // member.
    assert_eq!(blobs(&w) - before, uploaded);
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
