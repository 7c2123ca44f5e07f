//! Durations on the command line: a number and a unit (`s`, `m`, `h`, `d`).

use std::time::Duration;

/// Parses `90s`, `15m`, `12h`, `21d` (a bare number means seconds).
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; use e.g. 90s, 15m, 12h or 21d"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit `{unit}`; use s, m, h or d")),
    };
    n.checked_mul(scale)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{text}` is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("21d"), Ok(Duration::from_secs(21 * 86_400)));
        assert_eq!(parse("5"), Ok(Duration::from_secs(5)));
        assert!(parse("5w").is_err());
        assert!(parse("").is_err());
        assert!(parse("99999999999999999999d").is_err());
    }
}
