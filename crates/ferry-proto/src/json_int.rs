//! JSON integers as JSON Schema counts them: `7` and `7.0` are the same
//! integer (RFC 8259 has one number type), so both are taken; `7.5`, a
//! negative number or one beyond `u64` is refused.

use serde::Deserializer;
use serde::de::{Error, Visitor};

struct Integer;

impl Visitor<'_> for Integer {
    type Value = u64;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a non-negative integer")
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom("a negative number"))
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<u64, E> {
        // 2^64, the first value beyond u64, is exact in f64.
        if v.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&v) {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(v as u64)
        } else {
            Err(E::custom("not a non-negative integer"))
        }
    }
}

/// `serde(deserialize_with = "ferry_proto::json_int::deserialize")`.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_u64(Integer)
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize)]
    struct T {
        #[serde(deserialize_with = "super::deserialize")]
        n: u64,
    }

    fn parse(s: &str) -> Option<u64> {
        serde_json::from_str::<T>(s).ok().map(|t| t.n)
    }

    #[test]
    fn integral_numbers_in_any_spelling() {
        assert_eq!(parse(r#"{"n": 7}"#), Some(7));
        assert_eq!(parse(r#"{"n": 7.0}"#), Some(7));
        assert_eq!(parse(r#"{"n": 7e2}"#), Some(700));
        assert_eq!(parse(r#"{"n": 18446744073709551615}"#), Some(u64::MAX));
        assert_eq!(parse(r#"{"n": 7.5}"#), None);
        assert_eq!(parse(r#"{"n": -1}"#), None);
        assert_eq!(parse(r#"{"n": 1e30}"#), None);
        assert_eq!(parse(r#"{"n": "7"}"#), None);
    }
}
