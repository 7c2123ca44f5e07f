use rand_core::OsRng;
use secrecy::SecretString;
use zeroize::Zeroizing;

use super::*;

fn keys(phrase: &RecoveryPhrase, relay: &str, pin: Option<&str>) -> RelayKeys {
    let pin = pin.map(|p| SecretString::from(p.to_owned()));
    RecoverySeed::derive(phrase)
        .unwrap()
        .relay_keys(relay, pin.as_ref())
        .unwrap()
}

fn record(version: u64) -> StowRecord {
    StowRecord {
        version,
        stowed_at: 1_800_000_000,
        witnesses: vec!["https://w.example".into()],
        files: vec![
            StowFile {
                name: "0".into(),
                bytes: Zeroizing::new(vec![7u8; 5000]),
            },
            StowFile {
                name: "0.k".into(),
                bytes: Zeroizing::new(vec![9u8; 10]),
            },
        ],
    }
}

#[test]
fn a_phrase_reads_back_in_either_language_and_spacing() {
    let p = RecoveryPhrase::generate(&mut OsRng, PhraseLanguage::Korean);
    assert_eq!(p.words().len(), 12);
    let korean = p.text();
    assert!(
        korean
            .chars()
            .any(|c| ('\u{ac00}'..='\u{d7a3}').contains(&c))
    );
    let english = p.in_language(PhraseLanguage::English).text();
    assert!(english.is_ascii());
    for typed in [
        korean.to_string(),
        english.to_uppercase(),
        format!("  {}\n", english.replace(' ', "   ")),
        korean.chars().collect::<String>().replace(' ', "\t"),
    ] {
        let back = RecoveryPhrase::parse(&typed).unwrap();
        assert_eq!(back.entropy(), p.entropy());
    }
    // Decomposed Hangul (as some keyboards produce) too.
    use unicode_normalization::UnicodeNormalization as _;
    let nfd: String = korean.nfd().collect();
    assert_eq!(RecoveryPhrase::parse(&nfd).unwrap().entropy(), p.entropy());
    assert_eq!(format!("{p:?}"), "RecoveryPhrase(..)");
}

#[test]
fn three_distinct_words_are_asked_back_and_checked_as_typed() {
    let p = RecoveryPhrase::generate(&mut OsRng, PhraseLanguage::Korean);
    let words = p.words();
    for _ in 0..50 {
        let ask = RecoveryPhrase::positions_to_confirm(&mut OsRng);
        assert!(ask[0] < ask[1] && ask[1] < ask[2] && ask[2] < 12, "{ask:?}");
    }
    use unicode_normalization::UnicodeNormalization as _;
    let nfd: String = words[3].nfd().collect();
    assert!(p.word_matches(3, &format!("  {nfd}\n")));
    assert!(p.word_matches(3, &words[3]));
    assert!(!p.word_matches(3, &words[4]) || words[3] == words[4]);
    assert!(!p.word_matches(12, &words[3]));
    let e = p.in_language(PhraseLanguage::English);
    assert!(e.word_matches(0, &e.words()[0].to_uppercase()));
}

#[test]
fn wrong_words_and_checksums_are_refused() {
    let p = RecoveryPhrase::generate(&mut OsRng, PhraseLanguage::English);
    let words = p.words();
    // Two words swapped: the checksum catches it (or, 1 in 16, another
    // phrase results, which then derives other keys).
    let mut swapped = words.to_vec();
    swapped.swap(0, 11);
    if let Ok(other) = RecoveryPhrase::parse(&swapped.join(" ")) {
        assert_ne!(other.entropy(), p.entropy());
    }
    assert_eq!(
        RecoveryPhrase::parse(&words[..11].join(" ")).unwrap_err(),
        StowError::BadPhrase
    );
    let mut bad = words.to_vec();
    bad[3] = "ferry".into();
    assert_eq!(
        RecoveryPhrase::parse(&bad.join(" ")).unwrap_err(),
        StowError::BadPhrase
    );
    assert_eq!(RecoveryPhrase::parse("").unwrap_err(), StowError::BadPhrase);
}

#[test]
fn keys_differ_per_relay_and_pin_only_where_they_should() {
    let p = RecoveryPhrase::generate(&mut OsRng, PhraseLanguage::English);
    let a = keys(&p, "https://a.example", None);
    let a2 = keys(
        &p.in_language(PhraseLanguage::Korean),
        "https://a.example/",
        None,
    );
    let b = keys(&p, "https://b.example", None);
    let a_pin = keys(&p, "https://a.example", Some("1234"));
    assert_eq!(a.locator(), a2.locator());
    assert_eq!(a.access_token(), a2.access_token());
    assert_ne!(a.locator(), b.locator());
    assert_ne!(a.owner().public(), b.owner().public());
    // The PIN changes the access token and the record key only.
    assert_eq!(a.locator(), a_pin.locator());
    assert_eq!(a.owner().public(), a_pin.owner().public());
    assert_ne!(a.access_token(), a_pin.access_token());
    assert_ne!(a.record_key(), a_pin.record_key());
    let other = keys(
        &RecoveryPhrase::generate(&mut OsRng, PhraseLanguage::English),
        "https://a.example",
        None,
    );
    assert_ne!(a.locator(), other.locator());
    assert_eq!(format!("{a:?}"), "RelayKeys { .. }");
    let json = serde_json::to_string(&a).unwrap();
    let back: RelayKeys = serde_json::from_str(&json).unwrap();
    assert_eq!(back.record_key(), a.record_key());
}

#[test]
fn a_record_opens_only_with_its_keys_locator_and_version() {
    let p = RecoveryPhrase::generate(&mut OsRng, PhraseLanguage::English);
    let k = keys(&p, "https://a.example", None);
    let sealed = record(3).seal(&k, &mut OsRng).unwrap();
    assert_eq!(sealed.len() as u64 % record::RECORD_UNIT, 0);
    // Header 20, witnesses 1 + 1 + 17, count 2, files 6 + 5000 and 8 + 10.
    assert_eq!(
        sealed.len() as u64,
        record::sealed_len(20 + 19 + 2 + 5006 + 18)
    );
    let back = StowRecord::open(&sealed, &k, 3).unwrap();
    assert_eq!(back.witnesses, ["https://w.example"]);
    assert_eq!(back.files.len(), 2);
    assert_eq!(&back.files[0].bytes[..], &[7u8; 5000][..]);
    assert_eq!(back.files[1].name, "0.k");
    // Relabelled version, another relay's keys, another PIN: refused.
    assert_eq!(
        StowRecord::open(&sealed, &k, 2).unwrap_err(),
        StowError::Sealed
    );
    let b = keys(&p, "https://b.example", None);
    assert_eq!(
        StowRecord::open(&sealed, &b, 3).unwrap_err(),
        StowError::Sealed
    );
    let pin = keys(&p, "https://a.example", Some("0000"));
    assert_eq!(
        StowRecord::open(&sealed, &pin, 3).unwrap_err(),
        StowError::Sealed
    );
    // A flipped bit, a truncation: refused.
    let mut flipped = sealed.clone();
    flipped[100] ^= 1;
    assert_eq!(
        StowRecord::open(&flipped, &k, 3).unwrap_err(),
        StowError::Sealed
    );
    assert_eq!(
        StowRecord::open(&sealed[..sealed.len() - 1], &k, 3).unwrap_err(),
        StowError::Sealed
    );
    assert_eq!(StowRecord::open(&[], &k, 3).unwrap_err(), StowError::Sealed);
}

#[test]
fn bad_file_names_are_refused_both_ways() {
    let p = RecoveryPhrase::generate(&mut OsRng, PhraseLanguage::English);
    let k = keys(&p, "https://a.example", None);
    for name in ["", "..", "../x", "a/b", "x\0"] {
        let mut r = record(1);
        r.files[0].name = name.into();
        assert!(r.seal(&k, &mut OsRng).is_err(), "{name:?}");
    }
}

fn fixed_keys() -> &'static RelayKeys {
    static KEYS: std::sync::OnceLock<RelayKeys> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let p = RecoveryPhrase::parse(
            "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
        )
        .unwrap();
        keys(&p, "https://a.example", None)
    })
}

proptest::proptest! {
    #[test]
    fn garbage_never_opens_or_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..2000)) {
        proptest::prop_assert!(StowRecord::open(&data, fixed_keys(), 1).is_err());
    }
}
