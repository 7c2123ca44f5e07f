//! The first screens: create a profile, unlock it.
//!
//! The unlock form is the same whichever passphrase is typed: the
//! passphrase and the duress passphrase look and take the same, and what
//! opens looks like any profile.

use maud::{Markup, html};

use super::{Cx, Section, error_slot, page};

/// No profile yet: relay, passphrase (twice), optional proxy; and
/// restoring a stowed account (after a stow here, what is left to know
/// first: `stowed` holds the dead-man deadline, if any).
pub(crate) fn setup(cx: &Cx, stowed: Option<Option<u64>>) -> Markup {
    page(
        cx,
        Section::Locked,
        html! {
            @if let Some(deadline) = stowed {
                (super::stow::stowed(cx, deadline))
            }
            section class="card narrow" {
                h1 { (cx.t("setup-title")) }
                p { (cx.t("setup-intro")) }
                form action="/setup" method="post" autocomplete="off" {
                    label for="relay" { (cx.t("setup-relay")) }
                    input id="relay" name="relay" type="url" required
                        autocomplete="off" spellcheck="false" inputmode="url"
                        placeholder="https://relay.example";
                    label for="passphrase" { (cx.t("setup-passphrase")) }
                    input id="passphrase" name="passphrase" type="password" required
                        minlength="8" autocomplete="off";
                    label for="repeat" { (cx.t("setup-repeat")) }
                    input id="repeat" name="repeat" type="password" required
                        autocomplete="off";
                    details {
                        summary { (cx.t("setup-proxy")) }
                        p class="hint" { (cx.t("setup-proxy-hint")) }
                        label for="proxy" { (cx.t("setup-proxy-label")) }
                        input id="proxy" name="proxy" type="text" autocomplete="off"
                            spellcheck="false" placeholder="socks5h://127.0.0.1:9050";
                    }
                    (error_slot())
                    button type="submit" class="primary" { (cx.t("setup-create")) }
                }
            }
            (super::stow::restore(cx))
        },
    )
}

/// Locked: one passphrase field, posted to `action` (`/unlock`, or
/// `/page-unlock` when only the page is locked: both look the same).
pub(crate) fn unlock(cx: &Cx, action: &str) -> Markup {
    page(
        cx,
        Section::Locked,
        html! {
            section class="card narrow" {
                h1 { (cx.t("unlock-title")) }
                form action=(action) method="post" autocomplete="off" {
                    label for="passphrase" { (cx.t("unlock-passphrase")) }
                    input id="passphrase" name="passphrase" type="password" required
                        autocomplete="off" autofocus;
                    (error_slot())
                    @if action == "/unlock" {
                        details {
                            summary { (cx.t("unlock-abandon-summary")) }
                            label {
                                input type="checkbox" name="abandon_stow" value="1";
                                " " (cx.t("unlock-abandon-label"))
                            }
                            p class="hint" { (cx.t("unlock-abandon-hint")) }
                        }
                    }
                    button type="submit" class="primary" { (cx.t("unlock-button")) }
                }
                p class="hint" { (cx.t("unlock-hint")) }
            }
        },
    )
}
