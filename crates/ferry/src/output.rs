//! What the CLI prints: human lines, or one JSON object per line.

use ferry_client::Event;
use ferry_core::{Direction, HistoryEntry};
use serde_json::json;

#[derive(Clone, Copy)]
pub(crate) struct Output {
    pub(crate) json: bool,
}

fn time(secs: u64) -> String {
    // UTC, minute precision, no date library needed.
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// Text from contacts goes to a terminal: control characters (escape
/// sequences that could fake warnings or hide text) are replaced.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\n' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
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

impl Output {
    pub(crate) fn compromised_banner(self, contact: &str, c: ferry_core::Compromise) {
        if self.json {
            println!(
                "{}",
                json!({"type": "compromised", "contact": contact, "reason": c.reason.as_str(), "at": c.at})
            );
        } else {
            println!(
                "!! {} is COMPROMISED ({}, since {}): their messages are quarantined; do not answer them.",
                clean(contact),
                c.reason.as_str(),
                time(c.at)
            );
        }
    }

    pub(crate) fn timer(self, contact: &str, secs: Option<u64>) {
        if self.json {
            println!(
                "{}",
                json!({"type": "timer", "contact": contact, "seconds": secs})
            );
        } else {
            println!(
                "{}: messages now disappear after {}",
                clean(contact),
                timer_text(secs)
            );
        }
    }

    pub(crate) fn deleted(self, contact: &str, id: &str) {
        if self.json {
            println!(
                "{}",
                json!({"type": "deleted", "contact": contact, "id": id})
            );
        } else {
            println!(
                "{}: message {} deleted on both sides",
                clean(contact),
                clean(id)
            );
        }
    }

    pub(crate) fn message(self, contact: &str, e: &HistoryEntry) {
        let dir = match e.direction {
            Direction::In => "in",
            Direction::Out => "out",
        };
        // Messages from a contact reported compromised are never shown as
        // normal messages.
        let kind = if e.flagged { "quarantined" } else { "message" };
        if self.json {
            let mut v = json!({"type": kind, "contact": contact, "id": e.id, "direction": dir, "text": e.text,
                       "sent_at": e.sent_at, "expires_at": e.expires_at, "view_once": e.view_once,
                       "flagged": e.flagged});
            // Never the key, token or blob id: only what a person sees.
            if let Some(a) = &e.attachment {
                v["attachment"] = json!({"kind": a.kind.as_str(), "name": a.name,
                    "size": a.size, "mime": a.mime, "duration_ms": a.duration_ms});
            }
            println!("{v}");
        } else {
            let who = match e.direction {
                Direction::In => clean(contact),
                Direction::Out => format!("you → {}", clean(contact)),
            };
            let once = if e.view_once {
                " (view once: gone after this display)"
            } else {
                ""
            };
            let flag = if e.flagged {
                "!! QUARANTINED (sender reported compromised) "
            } else {
                ""
            };
            let body = match &e.attachment {
                None => clean(&e.text),
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
            let once = if e.view_once && e.attachment.is_some() {
                " (view once: can be saved once)"
            } else {
                once
            };
            println!("{flag}[{}] {who}: {body}{once}", time(e.sent_at));
        }
    }

    /// Prints what a session reports while receiving. Outgoing statuses,
    /// expiry counts, transfers and locks are printed by the commands.
    pub(crate) fn event(self, ev: &Event) {
        match ev {
            Event::Received { contact, entry } => self.message(contact, entry),
            Event::Established { contact } => {
                if self.json {
                    println!("{}", json!({"type": "established", "contact": contact}));
                } else {
                    println!(
                        "{}: conversation set up; you can now send messages",
                        clean(contact)
                    );
                }
            }
            Event::Timer { contact, secs } => self.timer(contact, *secs),
            Event::Challenged { contact } => {
                if self.json {
                    println!("{}", json!({"type": "challenge", "contact": contact}));
                } else {
                    println!(
                        "{} asks you to prove it is you: run `ferry answer {}`",
                        clean(contact),
                        clean(contact)
                    );
                }
            }
            Event::Proof { contact, result } => {
                if self.json {
                    println!(
                        "{}",
                        json!({"type": "challenge_result", "contact": contact, "result": result.as_str()})
                    );
                } else {
                    match result {
                        ferry_core::challenge::ProofResult::Verified => {
                            println!("{}: verified, they know the phrase", clean(contact))
                        }
                        ferry_core::challenge::ProofResult::Coerced => println!(
                            "!! WARNING: {} answered with the DURESS phrase: they are being forced. Do not reveal anything.",
                            clean(contact)
                        ),
                        ferry_core::challenge::ProofResult::Failed => println!(
                            "!! WARNING: the answer from {} FAILED: whoever holds their phone does not know the phrase.",
                            clean(contact)
                        ),
                    }
                }
            }
            Event::Verifiers { contact } => {
                if self.json {
                    println!("{}", json!({"type": "verifiers", "contact": contact}));
                } else {
                    println!(
                        "{} set a phrase: you can now `ferry challenge {}`",
                        clean(contact),
                        clean(contact)
                    );
                }
            }
            Event::Compromised { contact, reason } => {
                if self.json {
                    println!(
                        "{}",
                        json!({"type": "alert", "contact": contact, "reason": reason.as_str()})
                    );
                } else {
                    println!(
                        "!! WARNING: {}'s device is COMPROMISED ({}). Their new messages are quarantined; do not answer them.",
                        clean(contact),
                        reason.as_str()
                    );
                }
            }
            Event::Deleted { contact, id } => self.deleted(contact, id),
            Event::Rejected { contact, reason } => {
                if self.json {
                    println!(
                        "{}",
                        json!({"type": "rejected", "contact": contact, "reason": reason.as_str()})
                    );
                } else {
                    println!(
                        "WARNING: dropped a message in {contact}'s mailbox that did not come from {contact} ({reason})"
                    );
                }
            }
            _ => {}
        }
    }

    pub(crate) fn invite(self, link: &str, tty: bool) {
        if self.json {
            println!("{}", json!({"type": "invite", "link": link}));
            return;
        }
        println!("{link}");
        if tty {
            if let Ok(code) = qrcode::QrCode::new(link.as_bytes()) {
                let art = code
                    .render::<qrcode::render::unicode::Dense1x2>()
                    .quiet_zone(true)
                    .build();
                println!("{art}");
            }
            println!("Show this in person only. It works once and expires in 7 days.");
        }
    }

    pub(crate) fn contact(
        self,
        alias: &str,
        state: &str,
        compromised: Option<ferry_core::Compromise>,
    ) {
        if self.json {
            let c = compromised.map(|c| json!({"reason": c.reason.as_str(), "at": c.at}));
            println!(
                "{}",
                json!({"type": "contact", "alias": alias, "state": state, "compromised": c})
            );
        } else {
            match compromised {
                Some(c) => println!(
                    "{}\t{state}\t!! COMPROMISED ({}, since {}): do not trust new messages",
                    clean(alias),
                    c.reason.as_str(),
                    time(c.at)
                ),
                None => println!("{}\t{state}", clean(alias)),
            }
        }
    }

    pub(crate) fn progress(self, phase: &str, done: u64, total: u64) {
        println!(
            "{}",
            json!({"type": "progress", "phase": phase, "done": done, "total": total})
        );
    }

    pub(crate) fn resumed(self, phase: &str, offset: u64) {
        println!(
            "{}",
            json!({"type": "resumed", "phase": phase, "offset": offset})
        );
    }

    /// A finished upload (`saved` is `None`) or save.
    pub(crate) fn transfer(
        self,
        kind: &str,
        stats: &ferry_client::transfer::TransferStats,
        saved: Option<(&std::path::Path, bool)>,
    ) {
        if self.json {
            let mut v = json!({"type": kind, "blob_bytes": stats.blob_len,
                               "wire_bytes": stats.wire_bytes, "resumes": stats.resumes});
            if let Some((path, destroyed)) = saved {
                v["path"] = json!(path.to_string_lossy());
                v["destroyed"] = json!(destroyed);
            }
            println!("{v}");
        } else if let Some((path, destroyed)) = saved {
            let gone = if destroyed {
                " (view once: it is now gone from this device and the relay)"
            } else {
                ""
            };
            println!("saved to {}{gone}", clean(&path.to_string_lossy()));
        }
    }

    pub(crate) fn error(self, code: &str, message: &str) {
        if self.json {
            println!(
                "{}",
                json!({"type": "error", "code": code, "message": message})
            );
        } else {
            eprintln!("error: {message}");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::time(0), "1970-01-01 00:00");
        assert_eq!(super::time(1_795_000_000), "2026-11-18 11:06");
    }
}
