//! Every string the app shows, in Korean and English (Project Fluent).
//!
//! The translations live in `locales/{ko,en}.ftl`, compiled into the
//! binary. A test checks that both files hold the same messages and that
//! every message the code asks for exists.

use std::sync::OnceLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

/// A language the app speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    /// 한국어.
    Ko,
    /// English.
    En,
}

const KO: &str = include_str!("../locales/ko.ftl");
const EN: &str = include_str!("../locales/en.ftl");

impl Lang {
    /// The BCP 47 tag, for `lang` attributes.
    pub(crate) fn tag(self) -> &'static str {
        match self {
            Self::Ko => "ko",
            Self::En => "en",
        }
    }

    /// Parses a tag given by a settings form.
    pub(crate) fn from_tag(tag: &str) -> Option<Self> {
        match tag {
            "ko" => Some(Self::Ko),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    /// Korean when the browser prefers it to English, English otherwise
    /// (`Accept-Language`, in the browser's order of preference).
    pub(crate) fn from_accept(header: Option<&str>) -> Self {
        let Some(h) = header else {
            return Self::En;
        };
        let mut best: Option<(f32, usize, Self)> = None;
        for (i, part) in h.split(',').enumerate() {
            let mut bits = part.trim().split(';');
            let tag = bits.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = bits
                .find_map(|b| b.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let lang = match tag.split('-').next() {
                Some("ko") => Self::Ko,
                Some("en") => Self::En,
                _ => continue,
            };
            if best.is_none_or(|(bq, bi, _)| q > bq || (q == bq && i < bi)) {
                best = Some((q, i, lang));
            }
        }
        best.map_or(Self::En, |(_, _, l)| l)
    }

    fn bundle(self) -> &'static FluentBundle<FluentResource> {
        static KO_B: OnceLock<FluentBundle<FluentResource>> = OnceLock::new();
        static EN_B: OnceLock<FluentBundle<FluentResource>> = OnceLock::new();
        let (cell, src) = match self {
            Self::Ko => (&KO_B, KO),
            Self::En => (&EN_B, EN),
        };
        cell.get_or_init(|| build(self, src))
    }

    /// The message `id`.
    pub(crate) fn t(self, id: &str) -> String {
        self.format(id, None)
    }

    /// The message `id` with arguments.
    pub(crate) fn t_args(self, id: &str, args: &[(&str, FluentValue<'_>)]) -> String {
        let mut a = FluentArgs::new();
        for (k, v) in args {
            a.set(*k, v.clone());
        }
        self.format(id, Some(&a))
    }

    fn format(self, id: &str, args: Option<&FluentArgs<'_>>) -> String {
        let bundle = self.bundle();
        let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
            // A missing message shows its id (the tests keep this from
            // ever happening).
            return id.to_owned();
        };
        let mut errors = Vec::new();
        bundle
            .format_pattern(pattern, args, &mut errors)
            .into_owned()
    }
}

fn build(lang: Lang, src: &'static str) -> FluentBundle<FluentResource> {
    let tag = lang.tag().parse().unwrap_or_default();
    let mut b = FluentBundle::new_concurrent(vec![tag]);
    // Isolation marks would land in the HTML around every argument; the
    // page sets `dir` and `lang` itself.
    b.set_use_isolating(false);
    let res = match FluentResource::try_new(src.to_owned()) {
        Ok(r) => r,
        Err((r, _)) => r,
    };
    let _ = b.add_resource(res);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(src: &str) -> std::collections::BTreeSet<String> {
        let res = match FluentResource::try_new(src.to_owned()) {
            Ok(r) => r,
            Err((_, e)) => panic!("a translation file does not parse: {e:?}"),
        };
        res.entries()
            .filter_map(|e| match e {
                fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_owned()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn korean_and_english_hold_the_same_messages() {
        let ko = ids(KO);
        let en = ids(EN);
        let only_ko: Vec<_> = ko.difference(&en).collect();
        let only_en: Vec<_> = en.difference(&ko).collect();
        assert!(
            only_ko.is_empty() && only_en.is_empty(),
            "ko only: {only_ko:?}; en only: {only_en:?}"
        );
    }

    #[test]
    fn every_message_the_code_asks_for_exists() {
        let en = ids(EN);
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        let mut missing = Vec::new();
        let mut seen = 0;
        let mut stack = vec![std::path::PathBuf::from(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                for call in [".t(\"", ".t_args(\""] {
                    for part in text.split(call).skip(1) {
                        let id = part.split('"').next().unwrap_or_default();
                        seen += 1;
                        if !en.contains(id) {
                            missing.push(format!("{}: {id}", p.display()));
                        }
                    }
                }
            }
        }
        assert!(seen > 50, "the scan found only {seen} lookups");
        assert!(missing.is_empty(), "{missing:#?}");
    }

    #[test]
    fn korean_is_chosen_when_the_browser_prefers_it() {
        assert_eq!(Lang::from_accept(Some("ko-KR,ko;q=0.9,en;q=0.8")), Lang::Ko);
        assert_eq!(Lang::from_accept(Some("en-US,ko;q=0.5")), Lang::En);
        assert_eq!(Lang::from_accept(Some("fr,ko;q=0.4")), Lang::Ko);
        assert_eq!(Lang::from_accept(Some("de")), Lang::En);
        assert_eq!(Lang::from_accept(None), Lang::En);
        assert_eq!(Lang::Ko.t("unlock-title"), "잠금 해제");
    }
}
