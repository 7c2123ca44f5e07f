//! Group chats: the conversation (each message with its sender's name in
//! the group), the members with their roles, and making a group.

use std::collections::HashMap;

use ferry_client::{ContactInfo, Direction, GroupMember, GroupRole, HistoryEntry, Status};
use maud::{Markup, html};

use super::{Cx, Section, error_slot, page, time};

/// What the page shows of a group.
pub(crate) struct GroupView {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) members: usize,
    pub(crate) joining: usize,
    pub(crate) entries: Vec<HistoryEntry>,
    pub(crate) status: HashMap<String, Status>,
}

/// The conversation page.
pub(crate) fn page_for(cx: &Cx, g: &GroupView) -> Markup {
    let base = format!("/g/{}", g.id);
    page(
        cx,
        Section::Chats,
        html! {
            div class="conversation group" {
                header class="conv-head" {
                    a class="back" href="/" aria-label=(cx.t("conv-back")) { "‹" }
                    h1 dir="auto" { (g.name) }
                    a class="button info" href=(format!("{base}/members")) {
                        (cx.lang.t_args("group-members-count", &[("count", g.members.into())]))
                    }
                }
                div id="conv-live" data-src=(format!("{base}/messages")) {
                    (messages(cx, g))
                }
                form id="compose" class="compose" action=(format!("{base}/send")) method="post"
                    autocomplete="off" data-reset {
                    label for="text" class="visually-hidden" { (cx.t("conv-message")) }
                    textarea id="text" name="text" rows="1" required maxlength="16000"
                        autocomplete="off" placeholder=(cx.t("conv-message")) dir="auto" {}
                    button type="submit" class="primary" { (cx.t("conv-send")) }
                    (error_slot())
                }
            }
        },
    )
}

/// The list (also served alone, to refresh it).
pub(crate) fn messages(cx: &Cx, g: &GroupView) -> Markup {
    html! {
        @if g.joining > 0 {
            p class="banner" {
                (cx.lang.t_args("group-joining", &[("count", g.joining.into())]))
            }
        }
        @if g.entries.is_empty() {
            p class="empty" { (cx.t("conv-empty")) }
        }
        ol class="messages" aria-label=(cx.t("conv-messages")) {
            @for e in &g.entries {
                (message(cx, e, g.status.get(&e.id).copied()))
            }
        }
    }
}

fn message(cx: &Cx, e: &HistoryEntry, status: Option<Status>) -> Markup {
    let out = e.direction == Direction::Out;
    let class = format!(
        "msg {}{}",
        if out { "out" } else { "in" },
        if e.flagged { " flagged" } else { "" }
    );
    html! {
        li class=(class) {
            @if e.flagged {
                p class="flag" { (cx.t("group-flagged")) }
            }
            @if let (false, Some(from)) = (out, &e.from) {
                p class="from" dir="auto" { (from) }
            }
            p class="text" dir="auto" { (e.text) }
            p class="meta" {
                (time(e.sent_at))
                @if out {
                    " · "
                    span class="status" {
                        (cx.t(match status {
                            Some(Status::Queued) => "status-queued",
                            Some(Status::OnRelay) => "status-on-relay",
                            Some(Status::Failed) => "status-failed",
                            _ => "status-sent",
                        }))
                    }
                }
            }
        }
    }
}

/// The members page: names, roles, which ones are the person's contacts;
/// an admin can remove a member; anyone can leave.
pub(crate) fn members_page(
    cx: &Cx,
    id: u64,
    name: &str,
    admin: bool,
    members: &[GroupMember],
    contacts: &[ContactInfo],
) -> Markup {
    let base = format!("/g/{id}");
    page(
        cx,
        Section::Chats,
        html! {
            header class="conv-head" {
                a class="back" href=(base) aria-label=(cx.t("conv-back")) { "‹" }
                h1 dir="auto" { (name) }
            }
            h2 { (cx.t("group-members")) }
            ul class="members" {
                @for m in members {
                    li {
                        span class="name" dir="auto" { (m.name) }
                        " "
                        span class="badge" { (cx.t(role_key(m.role))) }
                        @if m.you {
                            " "
                            span class="badge" { (cx.t("group-you")) }
                        }
                        @if let Some(c) = &m.contact {
                            " "
                            span class="contact" dir="auto" {
                                (cx.lang.t_args("group-your-contact", &[("name", c.clone().into())]))
                            }
                        }
                        @if m.quarantined {
                            " "
                            span class="badge danger" { (cx.t("contact-compromised")) }
                        }
                        @if admin && !m.you {
                            form class="remove" action=(format!("{base}/remove")) method="post" {
                                input type="hidden" name="member" value=(m.key);
                                button type="submit" class="link" { (cx.t("group-remove")) }
                                (error_slot())
                            }
                        }
                    }
                }
            }
            @if admin {
                h2 { (cx.t("group-add")) }
                (contact_choice(cx, &format!("{base}/add"), contacts, "group-add-button"))
            }
            form class="leave" action=(format!("{base}/leave")) method="post" {
                button type="submit" class="danger" { (cx.t("group-leave")) }
                (error_slot())
            }
        },
    )
}

fn role_key(r: GroupRole) -> &'static str {
    match r {
        GroupRole::Owner => "group-owner",
        GroupRole::Admin => "group-admin",
        GroupRole::Member => "group-member",
    }
}

/// Checkboxes of the person's contacts, and a button.
fn contact_choice(cx: &Cx, action: &str, contacts: &[ContactInfo], button: &str) -> Markup {
    html! {
        form class="choose" action=(action) method="post" {
            (contact_boxes(cx, contacts))
            button type="submit" class="primary" { (cx.t(button)) }
            (error_slot())
        }
    }
}

/// A checkbox per contact (`add=ALIAS`), or a line saying there is none.
fn contact_boxes(cx: &Cx, contacts: &[ContactInfo]) -> Markup {
    html! {
        @if contacts.is_empty() {
            p class="empty" { (cx.t("group-no-contacts")) }
        }
        @for c in contacts {
            label class="check" {
                input type="checkbox" name="add" value=(c.alias);
                span dir="auto" { (c.alias) }
            }
        }
    }
}

/// Making a group: its name, the person's name in it, whom to add.
pub(crate) fn new_page(cx: &Cx, contacts: &[ContactInfo]) -> Markup {
    page(
        cx,
        Section::Chats,
        html! {
            h1 { (cx.t("group-new")) }
            form class="choose" action="/groups/new" method="post" autocomplete="off" {
                label for="name" { (cx.t("group-name")) }
                input id="name" name="name" required maxlength="64" dir="auto" autocomplete="off";
                p class="hint" { (cx.t("group-name-hint")) }
                label for="display" { (cx.t("group-display")) }
                input id="display" name="display" maxlength="64" dir="auto" autocomplete="off";
                p class="hint" { (cx.t("group-display-hint")) }
                fieldset {
                    legend { (cx.t("group-add")) }
                    (contact_boxes(cx, contacts))
                }
                button type="submit" class="primary" { (cx.t("group-create")) }
                (error_slot())
            }
        },
    )
}
