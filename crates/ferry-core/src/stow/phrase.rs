//! The recovery phrase: 12 words from BIP-39's English or Korean list,
//! encoding 128 random bits and a 4-bit checksum. Both lists encode the same
//! bits, so a phrase written in one language restores in the other too.

use rand_core::CryptoRngCore;
use unicode_normalization::UnicodeNormalization as _;
use zeroize::Zeroizing;

use super::StowError;

/// Bytes of entropy in a phrase (12 words).
pub const ENTROPY_LEN: usize = 16;
/// Words in a phrase.
pub const WORDS: usize = 12;

/// Which word list a phrase is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhraseLanguage {
    /// 한국어 (BIP-39 Korean list).
    Korean,
    /// English (BIP-39 English list).
    English,
}

impl PhraseLanguage {
    fn list(self) -> bip39::Language {
        match self {
            Self::Korean => bip39::Language::Korean,
            Self::English => bip39::Language::English,
        }
    }
}

/// A recovery phrase. Its `Debug` shows nothing; its bits are wiped on drop.
#[derive(Clone)]
pub struct RecoveryPhrase {
    entropy: Zeroizing<[u8; ENTROPY_LEN]>,
    language: PhraseLanguage,
}

impl std::fmt::Debug for RecoveryPhrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryPhrase(..)")
    }
}

impl RecoveryPhrase {
    /// A new phrase from 128 random bits.
    pub fn generate(rng: &mut impl CryptoRngCore, language: PhraseLanguage) -> Self {
        let mut entropy = Zeroizing::new([0u8; ENTROPY_LEN]);
        rng.fill_bytes(entropy.as_mut());
        Self { entropy, language }
    }

    /// Parses typed words: any spacing, any case, either list, Korean in
    /// composed or decomposed form. A wrong word or a wrong checksum is
    /// refused.
    pub fn parse(text: &str) -> Result<Self, StowError> {
        let words: Zeroizing<String> = Zeroizing::new(
            text.split_whitespace()
                .map(|w| w.to_lowercase())
                .collect::<Vec<_>>()
                .join(" ")
                .nfkd()
                .collect(),
        );
        if words.split(' ').count() != WORDS {
            return Err(StowError::BadPhrase);
        }
        for language in [PhraseLanguage::Korean, PhraseLanguage::English] {
            if let Ok(m) = bip39::Mnemonic::parse_in_normalized(language.list(), &words) {
                let (bytes, len) = m.to_entropy_array();
                let mut entropy = Zeroizing::new([0u8; ENTROPY_LEN]);
                if len != ENTROPY_LEN {
                    return Err(StowError::BadPhrase);
                }
                entropy.copy_from_slice(&bytes[..ENTROPY_LEN]);
                let mut bytes = bytes;
                zeroize::Zeroize::zeroize(&mut bytes[..]);
                return Ok(Self { entropy, language });
            }
        }
        Err(StowError::BadPhrase)
    }

    /// The language it is shown in.
    pub fn language(&self) -> PhraseLanguage {
        self.language
    }

    /// The same phrase in another list.
    pub fn in_language(&self, language: PhraseLanguage) -> Self {
        Self {
            entropy: self.entropy.clone(),
            language,
        }
    }

    /// The 12 words, in order (Korean composed, as people type it).
    pub fn words(&self) -> Zeroizing<Vec<String>> {
        let Ok(m) = bip39::Mnemonic::from_entropy_in(self.language.list(), &self.entropy[..])
        else {
            // 16 bytes is always a valid entropy length.
            return Zeroizing::new(Vec::new());
        };
        Zeroizing::new(m.words().map(|w| w.nfc().collect()).collect())
    }

    /// Three distinct word positions (0-based, ascending) for the person
    /// to type back when the phrase is shown.
    pub fn positions_to_confirm(rng: &mut impl CryptoRngCore) -> [usize; 3] {
        let mut ask = [usize::MAX; 3];
        let mut n = 0;
        while n < 3 {
            let p = (rng.next_u32() as usize) % WORDS;
            if !ask.contains(&p) {
                ask[n] = p;
                n += 1;
            }
        }
        ask.sort_unstable();
        ask
    }

    /// Whether `typed` is the word at `position` (any case, spacing around
    /// it, composed or decomposed Hangul).
    pub fn word_matches(&self, position: usize, typed: &str) -> bool {
        let typed: Zeroizing<String> = Zeroizing::new(typed.trim().to_lowercase().nfc().collect());
        self.words()
            .get(position)
            .is_some_and(|w| w.nfc().eq(typed.chars()))
    }

    /// The words joined by spaces.
    pub fn text(&self) -> Zeroizing<String> {
        Zeroizing::new(self.words().join(" "))
    }

    pub(super) fn entropy(&self) -> &[u8; ENTROPY_LEN] {
        &self.entropy
    }
}
