//! The chat list: every contact with unread count, last activity and, for
//! a contact reported compromised, a banner.

use ferry_client::ContactState;
use maud::{Markup, html};

use super::{Cx, Section, page, time};

/// One line of the list.
pub(crate) struct ChatRow {
    pub(crate) id: u64,
    pub(crate) alias: String,
    pub(crate) state: ContactState,
    pub(crate) compromised: bool,
    pub(crate) unread: u32,
    pub(crate) last: Option<u64>,
    /// A group, with its number of members.
    pub(crate) group: Option<usize>,
}

/// The page.
pub(crate) fn page_for(cx: &Cx, rows: &[ChatRow]) -> Markup {
    page(
        cx,
        Section::Chats,
        html! {
            h1 { (cx.t("chats-title")) }
            div class="actions" {
                a class="button primary" href="/invite" { (cx.t("chats-invite")) }
                a class="button" href="/accept" { (cx.t("chats-accept")) }
                a class="button" href="/groups/new" { (cx.t("group-new")) }
            }
            div id="chats" data-src="/chats" { (list(cx, rows)) }
        },
    )
}

/// The list itself (also served alone, to refresh it).
pub(crate) fn list(cx: &Cx, rows: &[ChatRow]) -> Markup {
    let compromised: Vec<&ChatRow> = rows.iter().filter(|r| r.compromised).collect();
    html! {
        @for r in &compromised {
            p class="banner danger" role="alert" {
                (cx.lang.t_args("chats-compromised-banner", &[("name", r.alias.clone().into())]))
            }
        }
        @if rows.is_empty() {
            p class="empty" { (cx.t("chats-empty")) }
        } @else {
            ul class="chats" aria-label=(cx.t("chats-title")) {
                @for r in rows {
                    li class=[r.compromised.then_some("compromised")] {
                        a href=(match r.group {
                            Some(_) => format!("/g/{}", r.id),
                            None => format!("/c/{}", r.id),
                        }) {
                            span class="name" dir="auto" { (r.alias) }
                            @if let Some(n) = r.group {
                                span class="badge group" {
                                    (cx.lang.t_args("group-members-count", &[("count", n.into())]))
                                }
                            }
                            span class="state" {
                                @if r.compromised {
                                    span class="badge danger" { (cx.t("contact-compromised")) }
                                } @else if r.state != ContactState::Established {
                                    span class="badge" { (cx.t("contact-waiting")) }
                                }
                            }
                            @if r.unread > 0 {
                                span class="unread"
                                    aria-label=(cx.lang.t_args("chats-unread", &[("count", r.unread.into())])) {
                                    (r.unread)
                                }
                            }
                            @if let Some(at) = r.last {
                                span class="last" { (time(at)) }
                            }
                        }
                    }
                }
            }
        }
    }
}
