//! Settings: language, theme, when a hidden page locks, relay and proxy.

use maud::{Markup, html};

use super::{Cx, Section, error_slot, page};
use crate::i18n::Lang;

/// What the settings page shows of the profile.
pub(crate) struct Profile {
    /// Minutes without use before the session locks.
    pub(crate) idle_minutes: u32,
    pub(crate) relay: String,
    pub(crate) proxy: Option<String>,
    /// A recovery phrase is set up (stowing is possible).
    pub(crate) has_recovery: bool,
}

/// The page.
pub(crate) fn page_for(cx: &Cx, p: &Profile) -> Markup {
    let theme = match cx.prefs.dark {
        Some(true) => "dark",
        Some(false) => "light",
        None => "system",
    };
    page(
        cx,
        Section::Settings,
        html! {
            h1 { (cx.t("settings-title")) }
            section class="card" {
                h2 { (cx.t("settings-display")) }
                form action="/settings" method="post" autocomplete="off" {
                    label for="lang" { (cx.t("settings-language")) }
                    select id="lang" name="lang" {
                        option value="ko" lang="ko" selected[cx.lang == Lang::Ko] { "한국어" }
                        option value="en" lang="en" selected[cx.lang == Lang::En] { "English" }
                    }
                    label for="theme" { (cx.t("settings-theme")) }
                    select id="theme" name="theme" {
                        option value="system" selected[theme == "system"] { (cx.t("theme-system")) }
                        option value="light" selected[theme == "light"] { (cx.t("theme-light")) }
                        option value="dark" selected[theme == "dark"] { (cx.t("theme-dark")) }
                    }
                    label for="hidden" { (cx.t("settings-hidden-lock")) }
                    select id="hidden" name="hidden_lock_minutes" {
                        @for m in [1u32, 5, 15, 60] {
                            option value=(m) selected[cx.prefs.hidden_lock_minutes == m] {
                                (cx.lang.t_args("left-minutes", &[("n", m.into())]))
                            }
                        }
                    }
                    label for="idle" { (cx.t("settings-idle-lock")) }
                    select id="idle" name="idle_lock_minutes" {
                        @for m in [5u32, 15, 30, 60] {
                            option value=(m) selected[p.idle_minutes == m] {
                                (cx.lang.t_args("left-minutes", &[("n", m.into())]))
                            }
                        }
                        @if ![5u32, 15, 30, 60].contains(&p.idle_minutes) {
                            option value=(p.idle_minutes) selected {
                                (cx.lang.t_args("left-minutes", &[("n", p.idle_minutes.into())]))
                            }
                        }
                    }
                    p class="hint" { (cx.t("settings-idle-hint")) }
                    (error_slot())
                    button type="submit" class="primary" { (cx.t("settings-save")) }
                }
            }
            section class="card" {
                h2 { (cx.t("settings-network")) }
                p { (cx.t("settings-relay")) ": " code { (p.relay) } }
                form action="/settings/proxy" method="post" autocomplete="off" {
                    label for="proxy" { (cx.t("setup-proxy-label")) }
                    input id="proxy" name="proxy" type="text" autocomplete="off" spellcheck="false"
                        placeholder="socks5h://127.0.0.1:9050" value=[p.proxy.as_deref()];
                    p class="hint" { (cx.t("setup-proxy-hint")) }
                    (error_slot())
                    button type="submit" { (cx.t("settings-save")) }
                }
            }
            (super::stow::card(cx, p.has_recovery))
        },
    )
}
