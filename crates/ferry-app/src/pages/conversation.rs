//! One conversation: its messages (a list, oldest first), the compose box,
//! the disappearing timer, view-once and delete for both.

use std::collections::HashMap;

use ferry_client::{
    AttachmentKind, AttachmentRef, Compromise, ContactState, Direction, HistoryEntry, MAX_INLINE,
    Status,
};
use maud::{Markup, html};

use super::{Cx, Section, error_slot, page, time};

/// What the page shows of a conversation.
pub(crate) struct Conversation {
    pub(crate) id: u64,
    pub(crate) alias: String,
    pub(crate) state: ContactState,
    pub(crate) compromised: Option<Compromise>,
    pub(crate) timer: Option<u64>,
    pub(crate) entries: Vec<HistoryEntry>,
    pub(crate) status: HashMap<String, Status>,
    pub(crate) now: u64,
    pub(crate) challenged: bool,
    pub(crate) mailbox_gone: bool,
}

/// The timer choices, in seconds (`0`: off).
const TIMERS: [(u64, &str); 7] = [
    (0, "timer-off"),
    (30, "timer-30s"),
    (300, "timer-5m"),
    (3600, "timer-1h"),
    (86_400, "timer-24h"),
    (7 * 86_400, "timer-7d"),
    (30 * 86_400, "timer-30d"),
];

/// The page.
pub(crate) fn page_for(cx: &Cx, c: &Conversation) -> Markup {
    let base = format!("/c/{}", c.id);
    page(
        cx,
        Section::Chats,
        html! {
            div class="conversation" {
                header class="conv-head" {
                    a class="back" href="/" aria-label=(cx.t("conv-back")) { "‹" }
                    h1 dir="auto" { (c.alias) }
                    @if c.state == ContactState::Established && c.compromised.is_none() {
                        button type="button" class="call-start" data-call-start="voice" data-contact=(c.id)
                            data-name=(c.alias) { (cx.t("call-voice")) }
                        button type="button" class="call-start" data-call-start="video" data-contact=(c.id)
                            data-name=(c.alias) { (cx.t("call-video")) }
                    }
                    a class="button info" href=(format!("{base}/info")) { (cx.t("conv-info")) }
                    form class="timer" action=(format!("{base}/timer")) method="post" data-autosubmit {
                        label for="timer" { (cx.t("conv-timer")) }
                        select id="timer" name="secs" {
                            @for (secs, label) in TIMERS {
                                option value=(secs) selected[c.timer.unwrap_or(0) == secs] { (cx.t(label)) }
                            }
                            @if let Some(t) = c.timer.filter(|t| !TIMERS.iter().any(|(s, _)| s == t)) {
                                option value=(t) selected { (cx.lang.t_args("timer-seconds", &[("secs", t.into())])) }
                            }
                        }
                    }
                }
                div id="conv-live" data-src=(format!("{base}/messages")) {
                    (messages(cx, c))
                }
                div id="reveal" {}
                @if c.state == ContactState::Established && c.compromised.is_none() {
                    form id="compose" class="compose" action=(format!("{base}/send")) method="post"
                        autocomplete="off" data-reset {
                        label for="text" class="visually-hidden" { (cx.t("conv-message")) }
                        textarea id="text" name="text" rows="1" required maxlength="60000"
                            autocomplete="off" placeholder=(cx.t("conv-message")) dir="auto" {}
                        label class="check" {
                            input type="checkbox" name="view_once" value="1";
                            (cx.t("conv-view-once"))
                        }
                        button type="submit" class="primary" { (cx.t("conv-send")) }
                        (error_slot())
                    }
                    form class="attach" action=(format!("{base}/file")) method="post"
                        enctype="multipart/form-data" data-reset {
                        label for="file" { (cx.t("conv-attach")) }
                        input id="file" name="file" type="file" required;
                        p class="hint" { (cx.t("conv-attach-hint")) }
                        label class="check" {
                            input type="checkbox" name="view_once" value="1";
                            (cx.t("conv-view-once"))
                        }
                        button type="submit" { (cx.t("conv-send-file")) }
                        progress id="upload" max="1" value="0" hidden aria-label=(cx.t("conv-uploading")) {}
                        (error_slot())
                    }
                    form class="voice" action=(format!("{base}/voice")) method="post"
                        data-no-mic=(cx.t("conv-no-mic")) data-recording-text=(cx.t("conv-recording")) {
                        button type="button" data-record aria-pressed="false"
                            data-start=(cx.t("conv-record")) data-stop=(cx.t("conv-record-stop")) {
                            (cx.t("conv-record"))
                        }
                        " "
                        span data-recording role="status" {}
                        (error_slot())
                    }
                }
            }
        },
    )
}

/// The banner and the list (also served alone, to refresh them).
pub(crate) fn messages(cx: &Cx, c: &Conversation) -> Markup {
    let base = format!("/c/{}", c.id);
    html! {
        @if c.compromised.is_some() {
            p class="banner danger" role="alert" {
                (cx.lang.t_args("conv-compromised", &[("name", c.alias.clone().into())]))
            }
        }
        @if c.mailbox_gone {
            p class="banner danger" role="alert" {
                (cx.lang.t_args("conv-mailbox-gone", &[("name", c.alias.clone().into())]))
            }
        }
        @if c.challenged {
            p class="banner" role="alert" {
                (cx.lang.t_args("contact-challenged", &[("name", c.alias.clone().into())]))
                " "
                a href=(format!("{base}/info")) { (cx.t("contact-answer")) }
            }
        }
        @if c.state != ContactState::Established {
            p class="banner" { (cx.t("conv-waiting")) }
        } @else if c.compromised.is_none() {
            // The page reloads once the conversation is set up (to show
            // the compose box).
            span data-established hidden {}
        }
        @if c.entries.is_empty() {
            p class="empty" { (cx.t("conv-empty")) }
        }
        ol class="messages" aria-label=(cx.t("conv-messages")) {
            @for e in &c.entries {
                (message(cx, &base, e, c.status.get(&e.id).copied(), c.now))
            }
        }
    }
}

fn message(cx: &Cx, base: &str, e: &HistoryEntry, status: Option<Status>, now: u64) -> Markup {
    let out = e.direction == Direction::Out;
    let class = format!(
        "msg {}{}",
        if out { "out" } else { "in" },
        if e.flagged { " flagged" } else { "" }
    );
    html! {
        li class=(class) {
            @if e.flagged {
                p class="flag" { (cx.t("conv-flagged")) }
            }
            @if let Some(log) = &e.call {
                (call_log(cx, log))
            } @else if let Some(a) = &e.attachment {
                (attachment(cx, base, e, a))
            } @else if e.view_once && !out {
                form action=(format!("{base}/open")) method="post" data-target="#reveal" {
                    input type="hidden" name="id" value=(e.id);
                    button type="submit" { (cx.t("conv-open-once")) }
                }
            } @else {
                p class="text" dir="auto" { (e.text) }
            }
            p class="meta" {
                (time(e.sent_at))
                @if out {
                    " · "
                    span class="status" { (status_text(cx, status)) }
                }
                @if let Some(at) = e.expires_at {
                    " · "
                    span class="expires" {
                        (cx.lang.t_args("conv-expires", &[("left", left(cx, at.saturating_sub(now)).into())]))
                    }
                }
            }
            @if out && status == Some(Status::Failed) && e.attachment.is_none() {
                form class="delete" action=(format!("{base}/retry")) method="post" {
                    input type="hidden" name="id" value=(e.id);
                    button type="submit" class="link" { (cx.t("conv-retry")) }
                }
            }
            form class="delete" action=(format!("{base}/delete")) method="post" {
                input type="hidden" name="id" value=(e.id);
                button type="submit" class="link" { (cx.t("conv-delete")) }
            }
        }
    }
}

/// An attachment: photos, videos and voice notes inline (decrypted by
/// the client on the fly), any file with its explicit export.
fn attachment(cx: &Cx, base: &str, e: &HistoryEntry, a: &AttachmentRef) -> Markup {
    let src = format!("{base}/media/{}", e.id);
    let inline = !e.view_once && a.size <= MAX_INLINE;
    let mime = a.mime.as_deref().unwrap_or("");
    html! {
        @if inline && a.kind == AttachmentKind::Voice {
            p class="attachment" { (cx.t("conv-voice")) }
            audio controls preload="metadata" src=(src) aria-label=(cx.t("conv-voice")) {}
        } @else if inline && crate::upload::inline_type(Some(mime)).is_some_and(|t| t.starts_with("image/")) {
            img class="photo" src=(src) alt=(cx.t("conv-photo")) loading="lazy";
        } @else if inline && crate::upload::inline_type(Some(mime)).is_some_and(|t| t.starts_with("video/")) {
            video class="video" controls preload="metadata" src=(src) aria-label=(cx.t("conv-video")) {}
        } @else if inline && crate::upload::inline_type(Some(mime)).is_some_and(|t| t.starts_with("audio/")) {
            audio controls preload="metadata" src=(src) aria-label=(cx.t("conv-file")) {}
        } @else if e.view_once && e.direction == Direction::In && a.size <= MAX_INLINE
            && (a.kind == AttachmentKind::Voice || crate::upload::inline_type(Some(mime)).is_some()) {
            form action=(format!("{base}/open-media")) method="post" data-target="#reveal" {
                input type="hidden" name="id" value=(e.id);
                button type="submit" { (cx.t("conv-open-once")) }
            }
        } @else {
            p class="attachment" {
                (cx.t("conv-file")) " " span dir="auto" { (a.name) }
                " (" (size(a.size)) ")"
            }
        }
        @if inline {
            details class="export" {
                summary { (cx.t("conv-save")) }
                p class="hint" { (cx.t("conv-save-warning")) }
                a href=(format!("{base}/export/{}", e.id)) download { (cx.t("conv-save-anyway")) }
            }
        }
    }
}

/// A call in the history: "Voice call · 1:23", "Missed video call".
fn call_log(cx: &Cx, log: &ferry_core::call::CallLog) -> Markup {
    let kind = if log.video { "video" } else { "voice" };
    let id = format!("call-log-{}", log.outcome.as_str().replace('_', "-"));
    let length = format!("{}:{:02}", log.secs / 60, log.secs % 60);
    html! {
        p class="text call-log" {
            (cx.lang.t_args(&id, &[("kind", kind.into()), ("length", length.into())]))
        }
    }
}

/// "12 KB", "3.4 MB".
fn size(bytes: u64) -> String {
    if bytes < 1024 * 1024 {
        format!("{} KB", bytes.div_ceil(1024))
    } else {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
    }
}

fn status_text(cx: &Cx, s: Option<Status>) -> String {
    cx.t(match s {
        Some(Status::Queued) => "status-queued",
        Some(Status::OnRelay) => "status-on-relay",
        Some(Status::Failed) => "status-failed",
        // Sent before this unlock: it left this device then.
        _ => "status-sent",
    })
}

/// "5 min", "3 h", "2 d".
fn left(cx: &Cx, secs: u64) -> String {
    let (n, id) = if secs < 3600 {
        (secs.div_ceil(60).max(1), "left-minutes")
    } else if secs < 2 * 86_400 {
        (secs.div_ceil(3600), "left-hours")
    } else {
        (secs.div_ceil(86_400), "left-days")
    };
    cx.lang.t_args(id, &[("n", n.into())])
}

/// A view-once photo, video or voice note, shown once; closing it
/// forgets it.
pub(crate) fn revealed_media(cx: &Cx, base: &str, token: &str, kind: &str, voice: bool) -> Markup {
    let src = format!("{base}/once/{token}");
    html! {
        div class="revealed" role="dialog" aria-label=(cx.t("conv-view-once")) {
            @if voice || kind.starts_with("audio/") {
                audio controls src=(src) aria-label=(cx.t("conv-voice")) {}
            } @else if kind.starts_with("video/") {
                video class="video" controls src=(src) aria-label=(cx.t("conv-video")) {}
            } @else {
                img class="photo" src=(src) alt=(cx.t("conv-photo"));
            }
            p class="hint" { (cx.t("conv-once-gone")) }
            form action=(format!("{base}/close-once")) method="post" data-target="#reveal" {
                button type="submit" { (cx.t("conv-close")) }
            }
        }
    }
}

/// A view-once text, shown once.
pub(crate) fn revealed(cx: &Cx, e: &HistoryEntry) -> Markup {
    html! {
        div class="revealed" role="dialog" aria-label=(cx.t("conv-view-once")) {
            p class="text" dir="auto" { (e.text) }
            p class="hint" { (cx.t("conv-once-gone")) }
            button type="button" data-dismiss { (cx.t("conv-close")) }
        }
    }
}
