//! Safety: warn contacts, the dead-man switch, the duress passphrase,
//! wipe after wrong passphrases, and panic wipe behind a hold-to-confirm
//! control.

use maud::{Markup, html};

use super::{Cx, Section, error_slot, page};

/// The page.
pub(crate) fn page_for(cx: &Cx) -> Markup {
    page(
        cx,
        Section::Safety,
        html! {
            h1 { (cx.t("safety-title")) }
            section class="card" {
                h2 { (cx.t("safety-alert")) }
                p { (cx.t("safety-alert-intro")) }
                form action="/safety/alert" method="post" {
                    (error_slot())
                    button type="submit" class="danger" { (cx.t("safety-alert-button")) }
                }
            }
            section class="card" {
                h2 { (cx.t("safety-canary")) }
                p { (cx.t("safety-canary-intro")) }
                form action="/safety/canary" method="post" {
                    label for="canary" { (cx.t("safety-canary-after")) }
                    select id="canary" name="secs" {
                        option value="0" { (cx.t("timer-off")) }
                        option value="86400" { (cx.t("timer-24h")) }
                        option value="259200" selected { (cx.t("canary-72h")) }
                        option value="604800" { (cx.t("timer-7d")) }
                    }
                    (error_slot())
                    button type="submit" { (cx.t("settings-save")) }
                }
            }
            section class="card" {
                h2 { (cx.t("safety-phrase")) }
                p { (cx.t("safety-phrase-intro")) }
                form action="/safety/phrase" method="post" autocomplete="off" data-reset {
                    label for="phrase" { (cx.t("safety-phrase-real")) }
                    input id="phrase" name="phrase" type="password" required autocomplete="off";
                    label for="duress-phrase" { (cx.t("safety-phrase-duress")) }
                    input id="duress-phrase" name="duress_phrase" type="password" required autocomplete="off";
                    label for="current-phrase" { (cx.t("safety-phrase-current")) }
                    input id="current-phrase" name="current" type="password" autocomplete="off";
                    (error_slot())
                    button type="submit" { (cx.t("settings-save")) }
                }
            }
            // Not while the decoy is being prepared through the real
            // profile: the decoy has no decoy of its own.
            @if !cx.decoy {
                section class="card" {
                    h2 { (cx.t("safety-duress")) }
                    p { (cx.t("safety-duress-intro")) }
                    form action="/safety/duress" method="post" autocomplete="off" data-reset {
                        label for="duress" { (cx.t("safety-duress-passphrase")) }
                        input id="duress" name="duress" type="password" required minlength="8" autocomplete="off";
                        label for="duress2" { (cx.t("setup-repeat")) }
                        input id="duress2" name="repeat" type="password" required autocomplete="off";
                        (error_slot())
                        button type="submit" { (cx.t("safety-duress-set")) }
                    }
                }
            }
            @if !cx.decoy {
                section class="card" {
                    h2 { (cx.t("safety-decoy")) }
                    p { (cx.t("safety-decoy-intro")) }
                    form action="/safety/decoy" method="post" autocomplete="off" data-reset {
                        label for="decoy-pass" { (cx.t("unlock-passphrase")) }
                        input id="decoy-pass" name="passphrase" type="password" required autocomplete="off";
                        (error_slot())
                        button type="submit" { (cx.t("safety-decoy-open")) }
                    }
                }
            }
            section class="card" {
                h2 { (cx.t("safety-wipe-after")) }
                form action="/safety/wipe-after" method="post" {
                    label for="attempts" { (cx.t("safety-wipe-after-label")) }
                    select id="attempts" name="attempts" {
                        option value="0" { (cx.t("timer-off")) }
                        @for n in [3u32, 5, 10] {
                            option value=(n) { (n) }
                        }
                    }
                    (error_slot())
                    button type="submit" { (cx.t("settings-save")) }
                }
            }
            section class="card danger-zone" {
                h2 { (cx.t("safety-panic")) }
                p { (cx.t("safety-panic-intro")) }
                form action="/safety/panic" method="post" data-hold="2000" {
                    (error_slot())
                    button type="submit" class="danger hold" aria-describedby="hold-hint" {
                        span class="fill" aria-hidden="true" {}
                        span class="label" { (cx.t("safety-panic-button")) }
                    }
                    p id="hold-hint" class="hint" { (cx.t("safety-panic-hold")) }
                }
            }
        },
    )
}

/// A sentence saying a safety action was done.
pub(crate) fn done(cx: &Cx, id: &str) -> Markup {
    html! { p class="ok" role="status" { (cx.t(id)) } }
}
