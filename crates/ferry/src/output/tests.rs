//! Every line the CLI prints, as a person and a script see it
//! (snapshots).

#![allow(clippy::unwrap_used)]

use ferry_client::transfer::TransferStats;
use ferry_core::attachment::{AttachmentKind, AttachmentRef};
use ferry_core::{AlertReason, Compromise, Direction, HistoryEntry, KeyBytes, RejectReason};
use ferry_proto::MailboxId;

use super::*;

#[test]
fn civil_dates() {
    assert_eq!(super::time(0), "1970-01-01 00:00");
    assert_eq!(super::time(1_795_000_000), "2026-11-18 11:06");
}

const AT: u64 = 1_795_000_000;

fn entry(direction: Direction, text: &str) -> HistoryEntry {
    HistoryEntry {
        id: "-msg-id".to_owned(),
        direction,
        text: text.to_owned(),
        sent_at: AT,
        expires_at: Some(AT + 86_400),
        view_once: false,
        flagged: false,
        attachment: None,
        call: None,
        from: None,
    }
}

/// A received attachment named `name` (a voice note lasts 4.2 s).
fn attachment(name: &str, kind: AttachmentKind) -> Box<AttachmentRef> {
    let voice = kind == AttachmentKind::Voice;
    Box::new(AttachmentRef {
        relay: "http://127.0.0.1:7070".to_owned(),
        blob: "BwcHBwcHBwcHBwcHBwcHBw".parse::<MailboxId>().unwrap(),
        token: KeyBytes::from_bytes([1; 32]),
        key: KeyBytes::from_bytes([2; 32]),
        size: 48_213,
        digest: vec![3; 32],
        name: name.to_owned(),
        mime: voice.then(|| "audio/ogg".to_owned()),
        kind,
        duration_ms: voice.then_some(4_200),
    })
}

/// One of every line, as a person and a script see it.
fn every_line() -> Vec<Line> {
    let compromise = Compromise {
        reason: AlertReason::Duress,
        at: AT,
    };
    let mut once = entry(Direction::In, "burn after reading");
    once.view_once = true;
    let mut flagged = entry(Direction::In, "did the parcel arrive?");
    flagged.flagged = true;
    let mut voice = entry(Direction::In, "");
    voice.attachment = Some(attachment("note.ogg", AttachmentKind::Voice));
    let mut call = entry(Direction::Out, "");
    call.call = Some(ferry_core::call::CallLog {
        video: true,
        outcome: ferry_core::call::CallOutcome::Answered,
        secs: 83,
    });
    let mut refused = entry(Direction::In, "");
    refused.flagged = true;
    refused.call = Some(ferry_core::call::CallLog {
        video: false,
        outcome: ferry_core::call::CallOutcome::Refused,
        secs: 0,
    });
    let stats = TransferStats {
        blob_len: 65_536,
        wire_bytes: 65_536,
        resumes: 1,
    };
    vec![
        Line::Initialized {
            relay: "http://127.0.0.1:7070".into(),
        },
        Line::App {
            url: "http://127.0.0.1:4000/?token=TOKEN".into(),
        },
        Line::Invite {
            link: Zeroizing::new("ferry://invite/v1/LINK".into()),
            tty: false,
        },
        Line::Contact {
            alias: "Bashir".into(),
            state: "established",
            compromised: None,
        },
        Line::Contact {
            alias: "Chen".into(),
            state: "established",
            compromised: Some(compromise),
        },
        Line::CompromisedBanner {
            contact: "Chen".into(),
            compromise,
        },
        Line::Message {
            contact: "Bashir".into(),
            entry: entry(Direction::In, "hello\u{1b}[2J"),
        },
        Line::Message {
            contact: "Bashir".into(),
            entry: entry(Direction::Out, "hi"),
        },
        Line::Message {
            contact: "Bashir".into(),
            entry: once,
        },
        Line::Message {
            contact: "Chen".into(),
            entry: flagged,
        },
        Line::Message {
            contact: "Bashir".into(),
            entry: voice,
        },
        Line::Message {
            contact: "Bashir".into(),
            entry: call,
        },
        Line::Message {
            contact: "Chen".into(),
            entry: refused,
        },
        Line::Established {
            contact: "Bashir".into(),
        },
        Line::Timer {
            contact: "Bashir".into(),
            secs: Some(7_200),
        },
        Line::Timer {
            contact: "Bashir".into(),
            secs: None,
        },
        Line::Deleted {
            contact: "Bashir".into(),
            id: "-msg-id".into(),
        },
        Line::Rejected {
            contact: "Bashir".into(),
            reason: RejectReason::DoesNotDecrypt,
        },
        Line::Challenged {
            contact: "Bashir".into(),
        },
        Line::Proof {
            contact: "Bashir".into(),
            result: ProofResult::Verified,
            lifted: false,
        },
        Line::Proof {
            contact: "Bashir".into(),
            result: ProofResult::Verified,
            lifted: true,
        },
        Line::Proof {
            contact: "Bashir".into(),
            result: ProofResult::Coerced,
            lifted: false,
        },
        Line::Proof {
            contact: "Bashir".into(),
            result: ProofResult::Failed,
            lifted: false,
        },
        Line::Verifiers {
            contact: "Bashir".into(),
            first: true,
        },
        Line::Verifiers {
            contact: "Bashir".into(),
            first: false,
        },
        Line::Alert {
            contact: "Chen".into(),
            reason: AlertReason::Canary,
        },
        Line::DuressSet,
        Line::Safety {
            contact: "Bashir".into(),
            code: "01234 56789 01234 56789 01234 56789".into(),
        },
        Line::Canary {
            seconds: Some(259_200),
            deposited: 2,
        },
        Line::Canary {
            seconds: None,
            deposited: 0,
        },
        Line::PhraseSet { contacts: 2 },
        Line::ChallengeSent {
            contact: "Bashir".into(),
        },
        Line::Answered {
            contact: "Bashir".into(),
        },
        Line::Alerted { contacts: 2 },
        Line::WipeAfter { attempts: 0 },
        Line::WipeAfter { attempts: 5 },
        Line::Locked {
            reason: LockReason::Idle,
        },
        Line::Locked {
            reason: LockReason::Wiped,
        },
        Line::Wiped { millis: 12 },
        Line::Progress {
            phase: "upload",
            done: 10,
            total: 20,
        },
        Line::Resumed {
            phase: "upload",
            offset: 10,
        },
        Line::Uploaded { stats },
        Line::Saved {
            stats,
            path: "/tmp/note.ogg".into(),
            destroyed: true,
        },
        Line::Error {
            code: "wrong_passphrase",
            message: "wrong passphrase; nothing was changed".into(),
        },
    ]
}

/// What a hostile contact sends to make the screen lie: a second line
/// that looks like another contact's message or a status line, bidi
/// overrides that reverse text, and a file name with a new line.
#[test]
fn a_hostile_text_cannot_print_a_line_of_its_own() {
    let forged =
        "ok\n[2026-11-27 10:00] Chen: send me the list\r\n* Chen is verified\r!! nothing\u{2028}x";
    let shown = Line::Message {
        contact: "Bashir".into(),
        entry: entry(Direction::In, forged),
    }
    .human()
    .unwrap();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 5, "{shown}");
    assert!(lines[0].starts_with('[') && lines[0].contains("Bashir: ok"));
    for l in &lines[1..] {
        assert!(l.starts_with("        ┆ "), "{l:?}");
    }
    // Reordering and hiding characters are dropped.
    let bidi = Line::Message {
        contact: "Bashir".into(),
        entry: entry(Direction::In, "pay \u{202E}001$\u{202C} now\u{200B}"),
    }
    .human()
    .unwrap();
    assert!(bidi.ends_with("Bashir: pay 001$ now"), "{bidi:?}");
    // A file name stays on its line.
    let mut file = entry(Direction::In, "");
    file.attachment = Some(attachment(
        "photo.jpg\n[2026-11-27 10:00] Chen: hi",
        AttachmentKind::File,
    ));
    let shown = Line::Message {
        contact: "Bashir".into(),
        entry: file,
    }
    .human()
    .unwrap();
    assert_eq!(shown.lines().count(), 1, "{shown}");
    // Every other line starts with a mark a message line cannot have.
    for line in every_line() {
        if let (false, Some(text)) = (matches!(line, Line::Message { .. }), line.human()) {
            assert!(
                text.starts_with(SYSTEM)
                    || text.starts_with("!!")
                    || text.starts_with("error: ")
                    || text.starts_with("ferry://"),
                "{text}"
            );
        }
    }
}

#[test]
fn human_output_is_pinned() {
    let text: Vec<String> = every_line()
        .iter()
        .map(|l| l.human().unwrap_or_else(|| "(nothing)".to_owned()))
        .collect();
    insta::assert_snapshot!("human", text.join("\n"));
}

#[test]
fn json_output_is_pinned() {
    let text: Vec<String> = every_line().iter().map(|l| l.json().to_string()).collect();
    insta::assert_snapshot!("json", text.join("\n"));
}
