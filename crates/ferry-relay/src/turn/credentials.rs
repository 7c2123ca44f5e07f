//! Short-lived TURN credentials in the TURN REST API scheme (the one
//! coturn's `use-auth-secret` checks): `username = expiry ":" random`,
//! `password = base64(HMAC-SHA1(secret, username))`. Nothing is stored: the
//! TURN server recomputes the password from the username, so an expired
//! or forged username simply has no password.

use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use rand_core::CryptoRngCore;
use sha1::Sha1;
use zeroize::Zeroizing;

/// A username and its password.
pub(crate) struct Issued {
    pub(crate) username: String,
    pub(crate) password: Zeroizing<String>,
    pub(crate) expires_at: u64,
}

/// New credentials valid until `now + ttl`; the username names nobody
/// (its random half is 16 bytes from `rng`).
pub(crate) fn issue(secret: &[u8], now: u64, ttl: u64, rng: &mut impl CryptoRngCore) -> Issued {
    let expires_at = now.saturating_add(ttl);
    let mut random = [0u8; 16];
    rng.fill_bytes(&mut random);
    let username = format!("{expires_at}:{}", ferry_proto::b64::encode(&random));
    let password = password(secret, &username);
    Issued {
        username,
        password,
        expires_at,
    }
}

/// The password for `username`, or `None` when it has expired at `now` or
/// is not of the scheme's form.
pub(crate) fn check(secret: &[u8], username: &str, now: u64) -> Option<Zeroizing<String>> {
    let (expiry, rest) = username.split_once(':')?;
    if rest.is_empty() || rest.len() > 64 {
        return None;
    }
    let expiry: u64 = expiry.parse().ok()?;
    if expiry <= now {
        return None;
    }
    Some(password(secret, username))
}

fn password(secret: &[u8], username: &str) -> Zeroizing<String> {
    // HMAC accepts keys of any length.
    let mut mac = match Hmac::<Sha1>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return Zeroizing::new(String::new()),
    };
    mac.update(username.as_bytes());
    let tag = Zeroizing::new(mac.finalize().into_bytes().to_vec());
    Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&*tag))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use rand_core::OsRng;

    use super::*;

    #[test]
    fn issued_credentials_check_until_they_expire() {
        let secret = b"operator secret";
        let c = issue(secret, 1_000, 600, &mut OsRng);
        assert_eq!(c.expires_at, 1_600);
        assert!(c.username.starts_with("1600:"));
        assert_eq!(
            check(secret, &c.username, 1_599).as_deref(),
            Some(&*c.password)
        );
        assert_eq!(check(secret, &c.username, 1_600), None, "expired");
        // Another relay's secret gives another password: the TURN server's
        // integrity check refuses it.
        assert_ne!(
            check(b"other secret", &c.username, 1_000).as_deref(),
            Some(&*c.password)
        );
        // A username whose expiry was pushed forward has another password.
        let forged = c.username.replacen("1600", "9999", 1);
        assert_ne!(check(secret, &forged, 1_000).as_deref(), Some(&*c.password));
        let other = issue(secret, 1_000, 600, &mut OsRng);
        assert_ne!(other.username, c.username, "random usernames");
    }

    #[test]
    fn malformed_usernames_have_no_password() {
        for u in [
            "",
            "alice",
            ":x",
            "12:",
            "x:y",
            "-5:abc",
            "99999999999999999999999:a",
        ] {
            assert_eq!(check(b"s", u, 0), None, "{u}");
        }
    }

    /// A known answer, computed independently with
    /// `printf '%s' 1700000000:user | openssl dgst -sha1 -hmac north -binary | base64`.
    #[test]
    fn password_is_base64_of_hmac_sha1() {
        assert_eq!(
            *password(b"north", "1700000000:user"),
            "2uyGWnO1vHFmQfE0HWQNi1ldYAk="
        );
    }
}
