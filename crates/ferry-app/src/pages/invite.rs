//! Pairing: invite a contact (a one-time link and its QR code) or accept
//! a link someone gave you.

use maud::{Markup, html};

use super::{Cx, Section, error_slot, page, qr};

/// The invite form; the link replaces it.
pub(crate) fn invite(cx: &Cx) -> Markup {
    page(
        cx,
        Section::Invite,
        html! {
            section class="card" id="invite" {
                h1 { (cx.t("invite-title")) }
                p { (cx.t("invite-intro")) }
                form action="/invite" method="post" autocomplete="off" data-target="#invite" {
                    label for="alias" { (cx.t("invite-alias")) }
                    input id="alias" name="alias" type="text" required maxlength="64"
                        autocomplete="off" dir="auto";
                    p class="hint" { (cx.t("invite-alias-hint")) }
                    (error_slot())
                    button type="submit" class="primary" { (cx.t("invite-create")) }
                }
                p { a href="/accept" { (cx.t("invite-have-link")) } }
            }
        },
    )
}

/// The link, shown once: QR code, the text, a copy button.
pub(crate) fn link(cx: &Cx, alias: &str, link: &str) -> Markup {
    html! {
        h1 { (cx.t("invite-title")) }
        p { (cx.lang.t_args("invite-show", &[("name", alias.to_owned().into())])) }
        (qr(link, &cx.t("invite-qr")))
        label for="link" { (cx.t("invite-link")) }
        textarea id="link" class="link" readonly rows="4" autocomplete="off" spellcheck="false" { (link) }
        div class="actions" {
            button type="button" class="primary" data-copy="#link" data-copied=(cx.t("invite-copied")) {
                (cx.t("invite-copy"))
            }
            a class="button" href="/" { (cx.t("invite-done")) }
        }
        p class="hint" { (cx.t("invite-once")) }
    }
}

/// Accepting a link.
pub(crate) fn accept(cx: &Cx) -> Markup {
    page(
        cx,
        Section::Invite,
        html! {
            section class="card" {
                h1 { (cx.t("accept-title")) }
                form action="/accept" method="post" autocomplete="off" {
                    label for="link" { (cx.t("accept-link")) }
                    textarea id="link" name="link" required rows="4" autocomplete="off"
                        spellcheck="false" {}
                    label for="alias" { (cx.t("invite-alias")) }
                    input id="alias" name="alias" type="text" required maxlength="64"
                        autocomplete="off" dir="auto";
                    (error_slot())
                    button type="submit" class="primary" { (cx.t("accept-button")) }
                }
            }
        },
    )
}
