//! The app's pages: server-rendered HTML (maud, checked at compile time),
//! one module per screen, sharing one layout.
//!
//! Pages carry no inline script or style (the content security policy
//! forbids both): `assets/app.js` submits every form with `fetch`, adding
//! the CSRF token, and refreshes the regions marked `data-src` when the
//! session's event stream says something changed.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::i18n::Lang;
use crate::state::Prefs;

pub(crate) mod chats;
pub(crate) mod contact;
pub(crate) mod conversation;
pub(crate) mod group;
pub(crate) mod invite;
pub(crate) mod lock;
pub(crate) mod safety;
pub(crate) mod settings;
pub(crate) mod stow;

/// What every page needs to render.
pub(crate) struct Cx {
    pub(crate) lang: Lang,
    pub(crate) csrf: String,
    pub(crate) prefs: Prefs,
    /// The decoy is open for preparing: say so on every page.
    pub(crate) decoy: bool,
}

impl Cx {
    /// A translated string.
    pub(crate) fn t(&self, id: &str) -> String {
        self.lang.t(id)
    }
}

/// Which part of the app a page belongs to (for the navigation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    /// Before unlock: no navigation.
    Locked,
    Chats,
    Invite,
    Safety,
    Settings,
}

/// The whole page around `body`. The title and icon never change: titles
/// and addresses land in the browser's history.
pub(crate) fn page(cx: &Cx, section: Section, body: Markup) -> Markup {
    let theme = match cx.prefs.dark {
        Some(true) => "dark",
        Some(false) => "light",
        None => "system",
    };
    html! {
        (DOCTYPE)
        html lang=(cx.lang.tag()) data-theme=(theme) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                meta name="csrf" content=(cx.csrf);
                meta name="hidden-lock" content=(cx.prefs.hidden_lock_minutes);
                title { "Home" }
                link rel="icon" href="/assets/icon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/assets/app.css";
                script type="module" src="/assets/app.js" {}
            }
            body data-new-message=(cx.t("body-new-message")) data-offline=(cx.t("body-offline")) {
                a class="skip" href="#main" { (cx.t("nav-skip")) }
                @if section != Section::Locked {
                    header class="top" {
                        nav aria-label=(cx.t("nav-label")) {
                            ul {
                                (nav_item(cx, Section::Chats, section, "/", "nav-chats"))
                                (nav_item(cx, Section::Invite, section, "/invite", "nav-invite"))
                                (nav_item(cx, Section::Safety, section, "/safety", "nav-safety"))
                                (nav_item(cx, Section::Settings, section, "/settings", "nav-settings"))
                            }
                        }
                        form action="/lock" method="post" class="lock" {
                            button type="submit" { (cx.t("nav-lock")) }
                        }
                    }
                }
                @if cx.decoy {
                    p class="banner decoy" role="status" { (cx.t("decoy-banner")) }
                }
                main id="main" tabindex="-1" { (body) }
                @if section != Section::Locked {
                    (call_panel(cx))
                }
                div id="announce" class="visually-hidden" aria-live="polite" {}
                div id="shield" class="shield" aria-hidden="true" {}
            }
        }
    }
}

/// The call panel, hidden until a call rings or is placed (on every page,
/// so a call rings wherever the person is). `assets/call.js` drives it.
fn call_panel(cx: &Cx) -> Markup {
    html! {
        section id="call" class="call" hidden role="dialog" aria-labelledby="call-title"
            data-calling=(cx.t("call-calling")) data-ringing=(cx.t("call-ringing"))
            data-ringing-video=(cx.t("call-ringing-video")) data-connecting=(cx.t("call-connecting"))
            data-connected=(cx.t("call-connected")) data-ended=(cx.t("call-ended"))
            data-no-media=(cx.t("call-no-media")) data-reconnecting=(cx.t("call-reconnecting")) {
            h2 id="call-title" dir="auto" {}
            p data-call-status role="status" aria-live="polite" {}
            div class="call-media" {
                video data-call-remote autoplay playsinline aria-label=(cx.t("call-remote-video")) {}
                video data-call-local autoplay playsinline muted aria-label=(cx.t("call-local-video")) {}
                audio data-call-audio autoplay {}
            }
            p class="error" role="alert" data-call-error {}
            div class="call-buttons" {
                button type="button" class="primary" data-call-accept hidden { (cx.t("call-accept")) }
                button type="button" class="danger" data-call-decline hidden { (cx.t("call-decline")) }
                button type="button" class="danger" data-call-hangup hidden { (cx.t("call-hangup")) }
            }
        }
    }
}

fn nav_item(cx: &Cx, item: Section, current: Section, href: &str, label: &str) -> Markup {
    html! {
        li {
            @if item == current {
                a href=(href) aria-current="page" { (cx.t(label)) }
            } @else {
                a href=(href) { (cx.t(label)) }
            }
        }
    }
}

/// The slot where a form's script shows the server's error.
pub(crate) fn error_slot() -> Markup {
    html! { p class="error" role="alert" data-error {} }
}

/// An error sentence for a form (translated by code).
pub(crate) fn error_text(lang: Lang, code: &str) -> Markup {
    let id = format!("error-{code}");
    let text = lang.t(&id);
    let text = if text == id {
        lang.t("error-other")
    } else {
        text
    };
    html! { (text) }
}

/// A time the page's script shows in the reader's local time and language
/// (the server does not know the browser's time zone).
pub(crate) fn time(unix: u64) -> Markup {
    // A sender's clock is untrusted: kept within years 0..=9999.
    let unix = unix.min(253_402_300_799);
    html! { time datetime=(iso(unix)) data-unix=(unix) { (iso(unix)) } }
}

/// `YYYY-MM-DDTHH:MM:SSZ` from Unix seconds (UTC).
fn iso(secs: u64) -> String {
    let rem = secs % 86_400;
    let (y, m, d) = ferry_client::civil_date(secs / 86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A QR code as inline SVG (one path; no style attributes).
pub(crate) fn qr(text: &str, label: &str) -> Markup {
    let Ok(code) = qrcode::QrCode::new(text.as_bytes()) else {
        return html! {};
    };
    let width = code.width();
    let colors = code.to_colors();
    let mut d = String::new();
    for (i, c) in colors.iter().enumerate() {
        if *c == qrcode::Color::Dark {
            let (x, y) = (i % width + 4, i / width + 4);
            d.push_str(&format!("M{x} {y}h1v1h-1z"));
        }
    }
    let size = width + 8;
    let svg = format!(
        "<svg class=\"qr\" role=\"img\" aria-label=\"{}\" viewBox=\"0 0 {size} {size}\" \
         shape-rendering=\"crispEdges\" xmlns=\"http://www.w3.org/2000/svg\">\
         <rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/>\
         <path fill=\"#000\" d=\"{d}\"/></svg>",
        html! { (label) }.into_string()
    );
    html! { (PreEscaped(svg)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(iso(951_782_400), "2000-02-29T00:00:00Z");
    }
}
