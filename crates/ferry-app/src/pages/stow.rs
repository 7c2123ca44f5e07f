//! Stow and restore: the recovery phrase (shown once, three words typed
//! back), "Stow now" behind the whole phrase, and "Restore" on the first
//! screen.

use maud::{Markup, html};

use super::{Cx, error_slot};

/// The settings card: set up a phrase, or stow.
pub(crate) fn card(cx: &Cx, has_recovery: bool) -> Markup {
    html! {
        section class="card" id="stow" {
            h2 { (cx.t("stow-title")) }
            p { (cx.t("stow-intro")) }
            @if has_recovery {
                form action="/stow" method="post" autocomplete="off" data-target="#stow" {
                    label for="stow-phrase" { (cx.t("stow-phrase")) }
                    textarea id="stow-phrase" name="phrase" required rows="3"
                        autocomplete="off" spellcheck="false" autocapitalize="none" {}
                    label for="stow-pin" { (cx.t("stow-pin")) }
                    input id="stow-pin" name="pin" type="password" inputmode="numeric"
                        autocomplete="off";
                    label class="check" {
                        input type="checkbox" name="with_history" value="1";
                        " " (cx.t("stow-with-history"))
                    }
                    p class="hint" { (cx.t("stow-hint")) }
                    (error_slot())
                    button type="submit" class="danger" { (cx.t("stow-button")) }
                }
            } @else {
                form action="/recovery/new" method="post" autocomplete="off" data-target="#stow" {
                    p class="hint" { (cx.t("recovery-hint")) }
                    (error_slot())
                    button type="submit" class="primary" { (cx.t("recovery-new")) }
                }
            }
        }
    }
}

/// The new phrase, shown once, with three of its words to type back.
pub(crate) fn phrase(cx: &Cx, words: &[String], ask: &[usize]) -> Markup {
    html! {
        h2 { (cx.t("recovery-title")) }
        p { (cx.t("recovery-write")) }
        ol class="words" lang=(if words.first().is_some_and(|w| w.is_ascii()) { "en" } else { "ko" }) {
            @for w in words {
                li { (w) }
            }
        }
        form action="/recovery/confirm" method="post" autocomplete="off" data-target="#stow" {
            p { (cx.t("recovery-confirm")) }
            @for (i, p) in ask.iter().enumerate() {
                label for=(format!("word{i}")) {
                    (cx.lang.t_args("recovery-word", &[("n", (p + 1).into())]))
                }
                input id=(format!("word{i}")) name=(format!("w{i}")) type="text" required
                    autocomplete="off" spellcheck="false" autocapitalize="none";
            }
            label for="recovery-pin" { (cx.t("recovery-pin")) }
            input id="recovery-pin" name="pin" type="password" inputmode="numeric"
                autocomplete="off";
            p class="hint" { (cx.t("recovery-pin-hint")) }
            details {
                summary { (cx.t("recovery-witnesses")) }
                label for="recovery-witnesses" { (cx.t("recovery-witnesses-label")) }
                textarea id="recovery-witnesses" name="witnesses" rows="2"
                    autocomplete="off" spellcheck="false" autocapitalize="none" {}
                p class="hint" { (cx.t("recovery-witnesses-hint")) }
            }
            (error_slot())
            button type="submit" class="primary" { (cx.t("recovery-done")) }
        }
    }
}

/// After a stow: what is left to know.
pub(crate) fn stowed(cx: &Cx, deadline: Option<u64>) -> Markup {
    html! {
        section class="card narrow" id="stowed" {
            h2 { (cx.t("stowed-title")) }
            p role="status" { (cx.t("stowed-text")) }
            @if let Some(t) = deadline {
                p { (cx.t("stowed-deadline")) " " time data-unix=(t) { (t) } }
            }
            p class="hint" { (cx.t("stowed-restore")) }
        }
    }
}

/// The first screen's restore card.
pub(crate) fn restore(cx: &Cx) -> Markup {
    html! {
        section class="card narrow" id="restore" {
            h2 { (cx.t("restore-title")) }
            p { (cx.t("restore-intro")) }
            form action="/restore" method="post" autocomplete="off" {
                label for="restore-relay" { (cx.t("setup-relay")) }
                input id="restore-relay" name="relay" type="url" required
                    autocomplete="off" spellcheck="false" inputmode="url"
                    placeholder="https://relay.example";
                label for="restore-phrase" { (cx.t("restore-phrase")) }
                textarea id="restore-phrase" name="phrase" required rows="3"
                    autocomplete="off" spellcheck="false" autocapitalize="none" {}
                label for="restore-pin" { (cx.t("stow-pin")) }
                input id="restore-pin" name="pin" type="password" inputmode="numeric"
                    autocomplete="off";
                label for="restore-passphrase" { (cx.t("unlock-passphrase")) }
                input id="restore-passphrase" name="passphrase" type="password" required
                    autocomplete="off";
                label class="check" {
                    input type="checkbox" name="takeover" value="1";
                    " " (cx.t("restore-takeover"))
                }
                details {
                    summary { (cx.t("setup-proxy")) }
                    p class="hint" { (cx.t("setup-proxy-hint")) }
                    label for="restore-proxy" { (cx.t("setup-proxy-label")) }
                    input id="restore-proxy" name="proxy" type="text" autocomplete="off"
                        spellcheck="false" placeholder="socks5h://127.0.0.1:9050";
                }
                (error_slot())
                button type="submit" class="primary" { (cx.t("restore-button")) }
            }
        }
    }
}
