//! A short safety code both sides of a conversation can compare (read
//! aloud, or side by side): equal codes mean both devices are in the same
//! MLS group with the same two signature keys, so nobody sits between them
//! (the relay, or whoever re-created an invite's mailbox).
//!
//! The code is SHA-256 over a label, the group id and both members' MLS
//! signature keys (sorted, so each side computes the same bytes), shown as
//! 30 decimal digits in groups of five (about 100 bits). It does not change
//! with epochs, so a comparison stays valid after key updates.

use sha2::{Digest as _, Sha256};

use crate::{CoreError, Engine};

/// Domain separation for the hash.
const LABEL: &[u8] = b"ferry-safety-code-v1";
/// Digits shown.
const DIGITS: usize = 30;

impl Engine {
    /// The safety code of the conversation with `alias`.
    pub fn safety_code(&mut self, alias: &str) -> Result<String, CoreError> {
        let c = self.established(alias)?;
        let (group, _, _) = self.group_mut(&c)?;
        let mut keys: Vec<Vec<u8>> = group.members().map(|m| m.signature_key.clone()).collect();
        keys.sort();
        let mut h = Sha256::new();
        h.update(LABEL);
        let gid = group.group_id().as_slice();
        h.update((gid.len() as u64).to_be_bytes());
        h.update(gid);
        for k in &keys {
            h.update((k.len() as u64).to_be_bytes());
            h.update(k);
        }
        Ok(digits(&h.finalize()))
    }
}

/// 30 digits from a 32-byte hash, five per group: each group is a 5-digit
/// number from 3 bytes (reduced modulo 10^5: the bias, under 0.6%, tells an
/// attacker nothing useful).
fn digits(hash: &[u8]) -> String {
    hash.chunks(3)
        .take(DIGITS / 5)
        .map(|b| {
            let n = b.iter().fold(0u32, |acc, &x| (acc << 8) | u32::from(x));
            format!("{:05}", n % 100_000)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use crate::testing::pair;

    #[test]
    fn both_sides_see_the_same_code_and_other_pairs_do_not() {
        let (mut a, mut b, _) = pair("Bashir", "Amina");
        let ab = a.safety_code("Bashir").unwrap();
        assert_eq!(ab, b.safety_code("Amina").unwrap());
        assert_eq!(ab.len(), 30 + 5, "six groups of five digits: {ab}");
        assert!(
            ab.split(' ')
                .all(|g| g.len() == 5 && g.bytes().all(|c| c.is_ascii_digit()))
        );
        // Another conversation (other keys, other group) has another code.
        let (mut c, mut d, _) = pair("Dara", "Chen");
        let cd = c.safety_code("Dara").unwrap();
        assert_eq!(cd, d.safety_code("Chen").unwrap());
        assert_ne!(ab, cd);
        assert!(a.safety_code("nobody").is_err());
    }
}
