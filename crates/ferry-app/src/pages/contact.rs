//! One contact: state, compromise warning, safety code, and "prove it's
//! you" (ask, answer, the last answer's outcome), and a warning to this
//! contact alone.

use ferry_client::{AlertReason, Compromise, ContactState, ProofResult};
use maud::{Markup, html};

use super::{Cx, Section, error_slot, page, time};

/// What the page shows.
pub(crate) struct ContactView {
    pub(crate) id: u64,
    pub(crate) alias: String,
    pub(crate) state: ContactState,
    pub(crate) compromised: Option<Compromise>,
    pub(crate) safety: Option<String>,
    pub(crate) challenged: bool,
    pub(crate) proof: Option<(ProofResult, bool)>,
}

/// The page.
pub(crate) fn page_for(cx: &Cx, c: &ContactView) -> Markup {
    let base = format!("/c/{}", c.id);
    page(
        cx,
        Section::Chats,
        html! {
            p { a href=(base) { "‹ " (cx.t("contact-back")) } }
            h1 dir="auto" { (c.alias) }
            @if let Some(w) = &c.compromised {
                p class="banner danger" role="alert" {
                    (cx.lang.t_args("conv-compromised", &[("name", c.alias.clone().into())]))
                    " "
                    (cx.t(match w.reason {
                        AlertReason::Duress => "contact-reason-duress",
                        AlertReason::Manual => "contact-reason-manual",
                        AlertReason::Fork => "contact-reason-fork",
                        _ => "contact-reason-canary",
                    }))
                    " · " (time(w.at))
                }
            }
            @if c.state != ContactState::Established {
                p class="banner" { (cx.t("conv-waiting")) }
            }
            @if let Some(code) = &c.safety {
                section class="card" {
                    h2 { (cx.t("contact-safety")) }
                    p class="safety-code" lang="zxx" { (code) }
                    p class="hint" { (cx.t("contact-safety-hint")) }
                }
            }
            @if c.state == ContactState::Established {
                section class="card" {
                    h2 { (cx.t("contact-prove")) }
                    @if let Some((result, lifted)) = c.proof {
                        p class=(if result == ProofResult::Verified { "ok" } else { "error" }) role="status" {
                            (cx.t(match result {
                                ProofResult::Verified if lifted => "proof-verified-lifted",
                                ProofResult::Verified => "proof-verified",
                                ProofResult::Coerced => "proof-coerced",
                                _ => "proof-failed",
                            }))
                        }
                    }
                    p { (cx.t("contact-prove-intro")) }
                    form action=(format!("{base}/challenge")) method="post" {
                        (error_slot())
                        button type="submit" { (cx.t("contact-challenge")) }
                    }
                    @if c.challenged {
                        form action=(format!("{base}/answer")) method="post" autocomplete="off" data-reset {
                            p class="banner" { (cx.lang.t_args("contact-challenged", &[("name", c.alias.clone().into())])) }
                            label for="phrase" { (cx.t("contact-your-phrase")) }
                            input id="phrase" name="phrase" type="password" required autocomplete="off";
                            (error_slot())
                            button type="submit" class="primary" { (cx.t("contact-answer")) }
                        }
                    }
                }
                section class="card" {
                    h2 { (cx.t("contact-warn")) }
                    p { (cx.t("contact-warn-intro")) }
                    form action=(format!("{base}/alert")) method="post" {
                        (error_slot())
                        button type="submit" class="danger" { (cx.t("contact-warn-button")) }
                    }
                }
            }
        },
    )
}
