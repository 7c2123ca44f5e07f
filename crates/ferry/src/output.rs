//! What the CLI prints. Every printable thing is a [`Line`]; one renderer
//! turns it into a human line or one JSON object, so the two forms never
//! drift apart. Human forms are pinned by snapshot tests.

use std::path::PathBuf;

use ferry_client::transfer::TransferStats;
use ferry_client::{
    AlertReason, Compromise, Direction, Event, HistoryEntry, LockReason, ProofResult, RejectReason,
};
use serde_json::{Value, json};
use zeroize::Zeroizing;

/// Where lines go: human text, or JSON with `--json`.
#[derive(Clone, Copy)]
pub(crate) struct Output {
    pub(crate) json: bool,
}

/// Everything the CLI prints.
pub(crate) enum Line {
    Initialized {
        relay: String,
    },
    /// `ferry app`: the address to open (a one-time link).
    App {
        url: String,
    },
    Invite {
        link: Zeroizing<String>,
        tty: bool,
    },
    Contact {
        alias: String,
        state: &'static str,
        compromised: Option<Compromise>,
    },
    CompromisedBanner {
        contact: String,
        compromise: Compromise,
    },
    Message {
        contact: String,
        entry: HistoryEntry,
    },
    Group {
        name: String,
        members: usize,
        admin: bool,
        joining: usize,
    },
    GroupMember {
        group: String,
        member: ferry_client::GroupMember,
    },
    GroupDone {
        group: String,
        what: &'static str,
    },
    GroupJoined {
        group: String,
        by: String,
    },
    GroupMembers {
        group: String,
        added: Vec<String>,
        removed: Vec<String>,
    },
    GroupQuarantined {
        group: String,
        member: String,
    },
    GroupRemoved {
        group: String,
    },
    Established {
        contact: String,
    },
    Timer {
        contact: String,
        secs: Option<u64>,
    },
    Deleted {
        contact: String,
        id: String,
    },
    Rejected {
        contact: String,
        reason: RejectReason,
    },
    MailboxGone {
        contact: String,
    },
    Challenged {
        contact: String,
    },
    Proof {
        contact: String,
        result: ProofResult,
        lifted: bool,
    },
    Verifiers {
        contact: String,
        first: bool,
    },
    Alert {
        contact: String,
        reason: AlertReason,
    },
    DuressSet,
    Canary {
        seconds: Option<u64>,
        deposited: usize,
    },
    PhraseSet {
        contacts: usize,
    },
    ChallengeSent {
        contact: String,
    },
    Answered {
        contact: String,
    },
    Alerted {
        contacts: usize,
    },
    WipeAfter {
        attempts: u32,
    },
    /// A conversation's safety code.
    Safety {
        contact: String,
        code: String,
    },
    /// The proxy now in use (`socks5h://HOST:PORT`, no credentials), or
    /// none for direct connections.
    Proxy {
        address: Option<String>,
    },
    Locked {
        reason: LockReason,
    },
    Wiped {
        millis: u64,
    },
    /// `recovery setup`: the phrase, shown once.
    RecoveryPhrase {
        words: Zeroizing<Vec<String>>,
        pin: bool,
    },
    /// `recovery setup` finished (after the words were confirmed).
    RecoverySet,
    /// `stow`: the account is on the relay, the profile gone.
    Stowed {
        version: u64,
        bytes: u64,
        relay: String,
        deadline: Option<u64>,
        attachments_until: Option<u64>,
        messages_until: Option<u64>,
        restore_by: Option<u64>,
    },
    /// `restore`: the account is back.
    Restored {
        version: u64,
    },
    /// `stow --abandon`: the unfinished stow was given up.
    StowAbandoned,
    Progress {
        phase: &'static str,
        done: u64,
        total: u64,
    },
    Resumed {
        phase: &'static str,
        offset: u64,
    },
    Uploaded {
        stats: TransferStats,
    },
    Saved {
        stats: TransferStats,
        path: PathBuf,
        destroyed: bool,
    },
    Error {
        code: &'static str,
        message: String,
    },
}

impl Line {
    /// What a session reports while receiving; outgoing statuses, expiry
    /// counts, transfers and locks are printed by the commands.
    pub(crate) fn from_event(ev: &Event) -> Option<Self> {
        Some(match ev {
            Event::Received { contact, entry } => Self::Message {
                contact: contact.clone(),
                entry: entry.clone(),
            },
            Event::Established { contact } => Self::Established {
                contact: contact.clone(),
            },
            Event::Timer { contact, secs } => Self::Timer {
                contact: contact.clone(),
                secs: *secs,
            },
            Event::Deleted { contact, id } => Self::Deleted {
                contact: contact.clone(),
                id: id.clone(),
            },
            Event::Rejected { contact, reason } => Self::Rejected {
                contact: contact.clone(),
                reason: *reason,
            },
            Event::Challenged { contact } => Self::Challenged {
                contact: contact.clone(),
            },
            Event::Proof {
                contact,
                result,
                lifted,
            } => Self::Proof {
                contact: contact.clone(),
                result: *result,
                lifted: *lifted,
            },
            Event::Verifiers { contact, first } => Self::Verifiers {
                contact: contact.clone(),
                first: *first,
            },
            Event::Compromised { contact, reason } => Self::Alert {
                contact: contact.clone(),
                reason: *reason,
            },
            Event::MailboxGone { contact } => Self::MailboxGone {
                contact: contact.clone(),
            },
            Event::GroupJoined { group, by } => Self::GroupJoined {
                group: group.clone(),
                by: by.clone(),
            },
            Event::GroupMembers {
                group,
                added,
                removed,
            } => Self::GroupMembers {
                group: group.clone(),
                added: added.clone(),
                removed: removed.clone(),
            },
            Event::GroupQuarantined { group, member } => Self::GroupQuarantined {
                group: group.clone(),
                member: member.clone(),
            },
            Event::GroupRemoved { group } => Self::GroupRemoved {
                group: group.clone(),
            },
            _ => return None,
        })
    }

    /// The JSON form: one object with a `type`.
    pub(crate) fn json(&self) -> Value {
        match self {
            Self::Initialized { relay } => json!({"type": "initialized", "relay": relay}),
            Self::App { url } => json!({"type": "app", "url": url}),
            Self::Invite { link, .. } => json!({"type": "invite", "link": link.as_str()}),
            Self::Contact {
                alias,
                state,
                compromised,
            } => {
                let c = compromised.map(|c| json!({"reason": c.reason.as_str(), "at": c.at}));
                json!({"type": "contact", "alias": alias, "state": state, "compromised": c})
            }
            Self::CompromisedBanner {
                contact,
                compromise: c,
            } => {
                json!({"type": "compromised", "contact": contact, "reason": c.reason.as_str(), "at": c.at})
            }
            Self::Message { contact, entry: e } => {
                let dir = match e.direction {
                    Direction::In => "in",
                    Direction::Out => "out",
                };
                // Messages from a contact reported compromised are never
                // shown as normal messages.
                let kind = if e.flagged { "quarantined" } else { "message" };
                let mut v = json!({"type": kind, "contact": contact, "id": e.id, "direction": dir,
                    "text": e.text, "sent_at": e.sent_at, "expires_at": e.expires_at,
                    "view_once": e.view_once, "flagged": e.flagged});
                // Never the key, token or blob id: only what a person sees.
                if let Some(a) = &e.attachment {
                    v["attachment"] = json!({"kind": a.kind.as_str(), "name": a.name,
                        "size": a.size, "mime": a.mime, "duration_ms": a.duration_ms});
                }
                if let Some(c) = &e.call {
                    v["call"] = json!({"video": c.video, "outcome": c.outcome.as_str(),
                        "seconds": c.secs});
                }
                if let Some(from) = &e.from {
                    v["from"] = json!(from);
                }
                v
            }
            Self::Group {
                name,
                members,
                admin,
                joining,
            } => json!({"type": "group", "name": name, "members": members, "admin": admin,
                "joining": joining}),
            Self::GroupMember { group, member: m } => json!({"type": "group_member",
                "group": group, "name": m.name, "role": role_str(m.role), "you": m.you,
                "contact": m.contact, "quarantined": m.quarantined}),
            Self::GroupDone { group, what } => json!({"type": what, "group": group}),
            Self::GroupJoined { group, by } => {
                json!({"type": "group_joined", "group": group, "by": by})
            }
            Self::GroupMembers {
                group,
                added,
                removed,
            } => json!({"type": "group_members", "group": group, "added": added,
                "removed": removed}),
            Self::GroupQuarantined { group, member } => {
                json!({"type": "group_quarantined", "group": group, "member": member})
            }
            Self::GroupRemoved { group } => json!({"type": "group_removed", "group": group}),
            Self::Established { contact } => json!({"type": "established", "contact": contact}),
            Self::Timer { contact, secs } => {
                json!({"type": "timer", "contact": contact, "seconds": secs})
            }
            Self::Deleted { contact, id } => {
                json!({"type": "deleted", "contact": contact, "id": id})
            }
            Self::Rejected { contact, reason } => {
                json!({"type": "rejected", "contact": contact, "reason": reason.as_str()})
            }
            Self::MailboxGone { contact } => json!({"type": "mailbox_gone", "contact": contact}),
            Self::Challenged { contact } => json!({"type": "challenge", "contact": contact}),
            Self::Proof {
                contact,
                result,
                lifted,
            } => {
                json!({"type": "challenge_result", "contact": contact, "result": result.as_str(), "quarantine_lifted": lifted})
            }
            Self::Verifiers { contact, first } => {
                json!({"type": "verifiers", "contact": contact, "first": first})
            }
            Self::Alert { contact, reason } => {
                json!({"type": "alert", "contact": contact, "reason": reason.as_str()})
            }
            Self::DuressSet => json!({"type": "duress_set"}),
            Self::Canary { seconds, deposited } => {
                json!({"type": "canary", "seconds": seconds, "deposited": deposited})
            }
            Self::PhraseSet { contacts } => json!({"type": "phrase_set", "contacts": contacts}),
            Self::ChallengeSent { contact } => {
                json!({"type": "challenge_sent", "contact": contact})
            }
            Self::Answered { contact } => json!({"type": "answered", "contact": contact}),
            Self::Alerted { contacts } => json!({"type": "alerted", "contacts": contacts}),
            Self::WipeAfter { attempts } => json!({"type": "wipe_after", "attempts": attempts}),
            Self::Proxy { address } => json!({"type": "proxy", "proxy": address}),
            Self::Safety { contact, code } => {
                json!({"type": "safety", "contact": contact, "code": code})
            }
            Self::Locked { reason } => json!({"type": "locked", "reason": reason.as_str()}),
            Self::Wiped { millis } => json!({"type": "wiped", "millis": millis}),
            Self::RecoveryPhrase { words, pin } => {
                json!({"type": "recovery_phrase", "phrase": words.join(" "), "pin": pin})
            }
            Self::RecoverySet => json!({"type": "recovery_set"}),
            Self::Stowed {
                version,
                bytes,
                relay,
                deadline,
                attachments_until,
                messages_until,
                restore_by,
            } => json!({
                "type": "stowed",
                "version": version,
                "bytes": bytes,
                "relay": relay,
                "deadline": deadline,
                "attachments_until": attachments_until,
                "messages_until": messages_until,
                "restore_by": restore_by,
            }),
            Self::Restored { version } => json!({"type": "restored", "version": version}),
            Self::StowAbandoned => json!({"type": "stow_abandoned"}),
            Self::Progress { phase, done, total } => {
                json!({"type": "progress", "phase": phase, "done": done, "total": total})
            }
            Self::Resumed { phase, offset } => {
                json!({"type": "resumed", "phase": phase, "offset": offset})
            }
            Self::Uploaded { stats } => json!({"type": "uploaded", "blob_bytes": stats.blob_len,
                "wire_bytes": stats.wire_bytes, "resumes": stats.resumes}),
            Self::Saved {
                stats,
                path,
                destroyed,
            } => json!({"type": "saved", "blob_bytes": stats.blob_len,
                "wire_bytes": stats.wire_bytes, "resumes": stats.resumes,
                "path": path.to_string_lossy(), "destroyed": destroyed}),
            Self::Error { code, message } => {
                json!({"type": "error", "code": code, "message": message})
            }
        }
    }

    /// The human form (`None`: nothing to print for a person). Messages
    /// start with their time in brackets and continue indented; every other
    /// line starts with [`SYSTEM`] or `!!`, so no text can pass for one.
    pub(crate) fn human(&self) -> Option<String> {
        let text = self.human_text()?;
        Some(match self {
            Self::Message { .. } | Self::Invite { .. } | Self::Error { .. } => text,
            _ if text.starts_with("!!") => text,
            _ => format!("{SYSTEM}{text}"),
        })
    }

    fn human_text(&self) -> Option<String> {
        Some(match self {
            Self::Initialized { relay } => {
                format!("profile created; its mailboxes will live on {relay}")
            }
            Self::App { url } => url.clone(),
            Self::Invite { link, tty } => {
                let mut out = link.to_string();
                if *tty {
                    if let Ok(code) = qrcode::QrCode::new(link.as_bytes()) {
                        let art = code
                            .render::<qrcode::render::unicode::Dense1x2>()
                            .quiet_zone(true)
                            .build();
                        out.push('\n');
                        out.push_str(&art);
                    }
                    out.push_str(
                        "\nShow this in person only. It works once and expires in 7 days.",
                    );
                }
                out
            }
            Self::Contact {
                alias,
                state,
                compromised,
            } => match compromised {
                Some(c) => format!(
                    "{}\t{state}\t!! COMPROMISED ({}, since {}): do not trust new messages",
                    clean(alias),
                    c.reason.as_str(),
                    time(c.at)
                ),
                None => format!("{}\t{state}", clean(alias)),
            },
            Self::CompromisedBanner {
                contact,
                compromise: c,
            } => format!(
                "!! {} is COMPROMISED ({}, since {}): their messages are quarantined; do not answer them.",
                clean(contact),
                c.reason.as_str(),
                time(c.at)
            ),
            Self::Message { contact, entry } => message_text(contact, entry),
            Self::Group {
                name,
                members,
                admin,
                joining,
            } => {
                let admin = if *admin { ", you are an admin" } else { "" };
                let joining = if *joining > 0 {
                    format!(", {joining} joining")
                } else {
                    String::new()
                };
                format!("{}\t{members} member(s){admin}{joining}", clean(name))
            }
            Self::GroupMember { group, member: m } => {
                let you = if m.you { " (you)" } else { "" };
                let contact = m
                    .contact
                    .as_ref()
                    .map(|c| format!(" = your contact {}", clean(c)))
                    .unwrap_or_default();
                let q = if m.quarantined {
                    " !! QUARANTINED (reported compromised)"
                } else {
                    ""
                };
                format!(
                    "{}: {}\t{}{you}{contact}{q}",
                    clean(group),
                    clean(&m.name),
                    role_str(m.role)
                )
            }
            Self::GroupDone { group, what } => match *what {
                "group_created" => format!("group {} created; add contacts with `ferry group add`", clean(group)),
                "group_asked" => format!("{}: asked; they join once both of you have synced", clean(group)),
                "group_removing" => format!("{}: removed; the group's keys moved on", clean(group)),
                _ => format!("{}: you left; it is gone from this device", clean(group)),
            },
            Self::GroupJoined { group, by } => format!(
                "{} added you to the group {}; leave it with `ferry group leave`",
                clean(by),
                clean(group)
            ),
            Self::GroupMembers {
                group,
                added,
                removed,
            } => {
                let names = |v: &[String]| v.iter().map(|n| clean(n)).collect::<Vec<_>>().join(", ");
                match (added.is_empty(), removed.is_empty()) {
                    (false, true) => format!("{}: {} joined", clean(group), names(added)),
                    (true, false) => format!("{}: {} left or were removed", clean(group), names(removed)),
                    _ => format!("{}: members changed", clean(group)),
                }
            }
            Self::GroupQuarantined { group, member } => format!(
                "!! {}: {} is reported COMPROMISED; their messages are quarantined",
                clean(group),
                clean(member)
            ),
            Self::GroupRemoved { group } => format!(
                "you were removed from the group {}; it is gone from this device",
                clean(group)
            ),
            Self::Established { contact } => format!(
                "{}: conversation set up; you can now send messages",
                clean(contact)
            ),
            Self::Timer {
                contact,
                secs: None,
            } => format!("{}: messages no longer disappear", clean(contact)),
            Self::Timer { contact, secs } => format!(
                "{}: messages now disappear after {}",
                clean(contact),
                timer_text(*secs)
            ),
            Self::Deleted { contact, id } => format!(
                "{}: message {} deleted on both sides",
                clean(contact),
                clean(id)
            ),
            Self::Rejected { contact, reason } => {
                let c = clean(contact);
                format!(
                    "!! WARNING: dropped a message in {c}'s mailbox that did not come from {c} ({reason})"
                )
            }
            Self::MailboxGone { contact } => format!(
                "!! WARNING: the relay no longer has your mailbox for {}: this account was most likely restored on another device, and this copy is out of date (if that was not you, restore with --takeover)",
                clean(contact)
            ),
            Self::Challenged { contact } => format!(
                "{} asks you to prove it is you: run `ferry answer {}`",
                clean(contact),
                clean(contact)
            ),
            Self::Proof {
                contact,
                result,
                lifted,
            } => match result {
                ProofResult::Verified if *lifted => format!(
                    "{}: verified, they know the phrase. Their quarantine is LIFTED: their messages show as normal again.",
                    clean(contact)
                ),
                ProofResult::Verified => {
                    format!("{}: verified, they know the phrase", clean(contact))
                }
                ProofResult::Coerced => format!(
                    "!! WARNING: {} answered with the DURESS phrase: they are being forced and are now quarantined. Do not reveal anything.",
                    clean(contact)
                ),
                ProofResult::Failed => format!(
                    "!! WARNING: the answer from {} FAILED: whoever holds their phone does not know the phrase.",
                    clean(contact)
                ),
            },
            Self::Verifiers {
                contact,
                first: true,
            } => format!(
                "{} set a phrase for the first time; Ferry takes it on trust. If they did not tell you (in person) that they would, treat it as suspicious. You can now `ferry challenge {}`",
                clean(contact),
                clean(contact)
            ),
            Self::Verifiers {
                contact,
                first: false,
            } => format!(
                "{} changed their phrase (signed with the old one): you can `ferry challenge {}`",
                clean(contact),
                clean(contact)
            ),
            Self::Alert { contact, reason } => format!(
                "!! WARNING: {}'s device is COMPROMISED ({}). Their new messages are quarantined; do not answer them.",
                clean(contact),
                reason.as_str()
            ),
            Self::DuressSet => {
                "duress passphrase set; prepare the decoy with `ferry --decoy ...`".to_owned()
            }
            Self::Canary { seconds, deposited } => match seconds {
                Some(_) => format!(
                    "{deposited} contact(s) are warned if you do not unlock within that time"
                ),
                None => "dead-man switch off".to_owned(),
            },
            Self::PhraseSet { contacts } => format!(
                "{contacts} contact(s) can now challenge you; the phrases are not stored here"
            ),
            Self::ChallengeSent { .. } => {
                "challenge sent; the result appears with your next sync".to_owned()
            }
            // Identical whatever phrase was typed.
            Self::Answered { .. } => "answer sent".to_owned(),
            Self::Alerted { contacts } => {
                format!("warned {contacts} contact(s) that this device may be compromised")
            }
            Self::WipeAfter { attempts: 0 } => {
                "wrong passphrases will never wipe this profile".to_owned()
            }
            Self::WipeAfter { attempts } => {
                format!("this profile is destroyed after {attempts} wrong passphrases in a row")
            }
            Self::Proxy { address: Some(a) } => format!(
                "this profile reaches relays only through the proxy {a}; if it is down, nothing is sent"
            ),
            Self::Safety { contact, code } => format!(
                "safety code with {}: {code}\n  compare it with theirs in person or on a call you trust; if it differs, someone is in between",
                clean(contact)
            ),
            Self::Proxy { address: None } => {
                "this profile connects to relays directly (no proxy)".to_owned()
            }
            Self::Locked {
                reason: LockReason::Wiped,
            } => "the profile was destroyed; this session forgot its keys".to_owned(),
            Self::Locked { reason } => format!(
                "locked ({}); unlock again to keep watching",
                reason.as_str().replace('_', " ")
            ),
            Self::Wiped { millis } => format!("profile destroyed ({millis} ms)"),
            Self::RecoveryPhrase { words, pin } => {
                let mut out = String::from(
                    "your recovery phrase (write it on paper, keep it apart from the phone; it is shown once):\n",
                );
                for (i, w) in words.iter().enumerate() {
                    out.push_str(&format!("  {:>2}. {w}\n", i + 1));
                }
                out.push_str(if *pin {
                    "to restore you need these 12 words, the PIN, the relay address and your passphrase"
                } else {
                    "to restore you need these 12 words, the relay address and your passphrase"
                });
                out
            }
            Self::RecoverySet => "recovery phrase set; `ferry stow` now stores the account on the relay and removes it from this device".to_owned(),
            Self::Stowed {
                version,
                bytes,
                relay,
                deadline,
                attachments_until,
                ..
            } => {
                let mut when = String::new();
                if let Some(t) = attachments_until {
                    when.push_str(&format!(
                        "; restore before {} or attachments sent to you meanwhile start to expire",
                        time(*t)
                    ));
                }
                if let Some(t) = deadline {
                    when.push_str(&format!(
                        "; restore before {} or your contacts are warned (dead-man switch)",
                        time(*t)
                    ));
                }
                format!(
                    "stowed (version {version}, {}) on {}; nothing of Ferry is left in this profile directory{when}",
                    size_text(*bytes),
                    clean(relay)
                )
            }
            Self::Restored { version } => format!("restored (version {version}); this device now holds the account"),
            Self::StowAbandoned => "the unfinished stow was given up; this profile stays here".to_owned(),
            // A progress bar shows these on a terminal.
            Self::Progress { .. } | Self::Resumed { .. } | Self::Uploaded { .. } => return None,
            Self::Saved {
                path, destroyed, ..
            } => {
                let gone = if *destroyed {
                    " (view once: it is now gone from this device and the relay)"
                } else {
                    ""
                };
                format!("saved to {}{gone}", clean(&path.to_string_lossy()))
            }
            Self::Error { message, .. } => format!("error: {message}"),
        })
    }
}

/// Erases the scrollback (`CSI 3 J`), moves home and erases the screen.
pub(crate) const CLEAR_TERMINAL: &str = "\x1b[3J\x1b[H\x1b[2J";

impl Output {
    /// On a terminal (human output), erases the screen and its scrollback,
    /// so messages shown before a lock or exit cannot be scrolled back to.
    pub(crate) fn clear_terminal(self) {
        use std::io::Write as _;
        if !self.json && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(CLEAR_TERMINAL.as_bytes());
            let _ = out.flush();
        }
    }

    /// Prints one line in the chosen form (human errors go to stderr).
    pub(crate) fn print(self, line: &Line) {
        if self.json {
            println!("{}", line.json());
        } else if let Some(text) = line.human() {
            if matches!(line, Line::Error { .. }) {
                eprintln!("{text}");
            } else {
                println!("{text}");
            }
        }
    }

    /// Prints what a session reports, if it is for a person.
    pub(crate) fn event(self, ev: &Event) {
        if let Some(line) = Line::from_event(ev) {
            self.print(&line);
        }
    }

    pub(crate) fn error(self, code: &'static str, message: &str) {
        self.print(&Line::Error {
            code,
            message: message.to_owned(),
        });
    }
}

fn message_text(contact: &str, e: &HistoryEntry) -> String {
    let who = match (e.direction, &e.from) {
        (Direction::In, Some(from)) => format!("{} in {}", clean(from), clean(contact)),
        (Direction::In, None) => clean(contact),
        (Direction::Out, _) => format!("you → {}", clean(contact)),
    };
    let flag = if e.flagged {
        "!! QUARANTINED (sender reported compromised) "
    } else {
        ""
    };
    let body = match &e.attachment {
        None if e.call.is_some() => e.call.map(call_text).unwrap_or_default(),
        None => clean_text(&e.text),
        Some(a) => {
            let secs = a
                .duration_ms
                .map(|ms| format!(", {}s", ms.div_ceil(1000)))
                .unwrap_or_default();
            format!(
                "[{} {} ({}{secs}); save it with `ferry save {} {} PATH`]",
                a.kind.as_str(),
                clean(&a.name),
                size_text(a.size),
                clean(contact),
                e.id
            )
        }
    };
    let once = match (e.view_once, e.attachment.is_some()) {
        (false, _) => "",
        (true, false) => " (view once: gone after this display)",
        (true, true) => " (view once: can be saved once)",
    };
    format!("{flag}[{}] {who}: {body}{once}", time(e.sent_at))
}

/// "[voice call, answered, 1:23]" (calls are made in the app).
fn call_text(c: ferry_client::CallLog) -> String {
    let kind = if c.video { "video call" } else { "voice call" };
    let outcome = c.outcome.as_str().replace('_', " ");
    if c.outcome == ferry_client::CallOutcome::Answered {
        format!("[{kind}, {outcome}, {}:{:02}]", c.secs / 60, c.secs % 60)
    } else {
        format!("[{kind}, {outcome}]")
    }
}

fn time(secs: u64) -> String {
    // UTC, minute precision, no date library needed.
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = ferry_client::civil_date(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Text from contacts goes to a terminal: control characters (escape
/// sequences that could fake warnings or hide text) are replaced.
/// Where a message's continuation lines start: indented, behind a mark no
/// other line has, so a text can never begin a line of its own.
const CONTINUATION: &str = "\n        ┆ ";

/// Prefix of every human line that is not a message (warnings keep their
/// own `!!`): no line of a message can begin with it.
const SYSTEM: &str = "* ";

/// Invisible characters that reorder or hide text (bidirectional controls
/// and other format characters), which a sender could use to make text
/// read as something else. Joiners (U+200C, U+200D) stay: emoji and
/// scripts need them and they move nothing.
fn hidden(c: char) -> bool {
    matches!(c,
        '\u{00AD}'
        | '\u{061C}'
        | '\u{180E}'
        | '\u{200B}'
        | '\u{200E}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{E0001}'
        | '\u{E0020}'..='\u{E007F}')
}

/// A name, alias, id or path on one line: control characters (new lines
/// included) shown as U+FFFD, hidden characters dropped.
fn role_str(r: ferry_client::GroupRole) -> &'static str {
    match r {
        ferry_client::GroupRole::Owner => "owner",
        ferry_client::GroupRole::Admin => "admin",
        ferry_client::GroupRole::Member => "member",
    }
}

fn clean(s: &str) -> String {
    s.chars()
        .filter(|&c| !hidden(c))
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// A message text: like [`clean`], but each new line continues indented
/// behind [`CONTINUATION`] (a carriage return too, so nothing can return to
/// the start of a line).
fn clean_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' | '\u{2028}' | '\u{2029}' | '\u{0085}' => out.push_str(CONTINUATION),
            c if hidden(c) => {}
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn size_text(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / f64::from(1u32 << 30)),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1u32 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

fn timer_text(secs: Option<u64>) -> String {
    match secs {
        None => "off".to_owned(),
        Some(s) if s % 86_400 == 0 => format!("{}d", s / 86_400),
        Some(s) if s % 3600 == 0 => format!("{}h", s / 3600),
        Some(s) if s % 60 == 0 => format!("{}m", s / 60),
        Some(s) => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests;
