//! The proxy setting: a SOCKS5 proxy that resolves names (`socks5h://`).

use std::time::Duration;

use zeroize::Zeroizing;

/// Why a proxy URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// Not a URL of the form `socks5h://HOST:PORT`.
    #[error("proxy must look like socks5h://127.0.0.1:9050")]
    Malformed,
    /// `socks5://` would look names up locally, in the clear, before
    /// connecting through the proxy.
    #[error("use socks5h:// (names resolved by the proxy), not {0}://")]
    Scheme(String),
}

/// A SOCKS5 proxy that resolves relay names itself, with optional
/// username and password (Tor isolates streams by them).
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    host: String,
    port: u16,
    auth: Option<(String, Zeroizing<String>)>,
}

impl std::fmt::Debug for ProxyUrl {
    /// Host and port only: never the credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "socks5h://{}", self.address())
    }
}

impl std::str::FromStr for ProxyUrl {
    type Err = ProxyError;

    fn from_str(s: &str) -> Result<Self, ProxyError> {
        let url = url::Url::parse(s.trim()).map_err(|_| ProxyError::Malformed)?;
        match url.scheme() {
            "socks5h" => {}
            other => return Err(ProxyError::Scheme(other.to_owned())),
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(ProxyError::Malformed);
        }
        let host = url.host_str().ok_or(ProxyError::Malformed)?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url.port().ok_or(ProxyError::Malformed)?;
        let auth = match (url.username(), url.password()) {
            ("", None) => None,
            (user, pass) => Some((decode(user)?, Zeroizing::new(decode(pass.unwrap_or(""))?))),
        };
        Ok(Self { host, port, auth })
    }
}

fn decode(part: &str) -> Result<String, ProxyError> {
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ProxyError::Malformed)
}

fn encode(part: &str) -> String {
    percent_encoding::utf8_percent_encode(part, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl ProxyUrl {
    /// `HOST:PORT` (IPv6 in brackets), for messages and connecting.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The full URL, credentials included: for the vault only.
    pub fn to_secret_string(&self) -> Zeroizing<String> {
        let creds = match &self.auth {
            Some((user, pass)) => format!("{}:{}@", encode(user), encode(pass)),
            None => String::new(),
        };
        Zeroizing::new(format!("socks5h://{creds}{}", self.address()))
    }

    pub(crate) fn credentials(&self) -> Option<(&str, &str)> {
        self.auth.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// The proxy for reqwest (every scheme, names resolved by the proxy).
    pub(crate) fn reqwest(&self) -> Result<reqwest::Proxy, reqwest::Error> {
        let p = reqwest::Proxy::all(format!("socks5h://{}", self.address()))?;
        Ok(match &self.auth {
            Some((user, pass)) => p.basic_auth(user, pass),
            None => p,
        })
    }

    /// Whether the proxy accepts TCP connections at all (to tell "the
    /// proxy is down" from "the relay is unreachable through it").
    pub(crate) async fn accepts(&self) -> bool {
        let connect = tokio::net::TcpStream::connect((self.host.as_str(), self.port));
        matches!(
            tokio::time::timeout(Duration::from_secs(5), connect).await,
            Ok(Ok(_))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_tor_users_type() {
        let p: ProxyUrl = "socks5h://127.0.0.1:9050".parse().unwrap();
        assert_eq!(p.address(), "127.0.0.1:9050");
        assert_eq!(p.credentials(), None);
        let p: ProxyUrl = "socks5h://alice:s%40cret@[::1]:9150/".parse().unwrap();
        assert_eq!(p.address(), "[::1]:9150");
        assert_eq!(p.credentials(), Some(("alice", "s@cret")));
        assert_eq!(
            p.to_secret_string().as_str(),
            "socks5h://alice:s%40cret@[::1]:9150"
        );
        let again: ProxyUrl = p.to_secret_string().parse().unwrap();
        assert_eq!(again, p);
    }

    #[test]
    fn refuses_what_would_leak_or_is_not_a_proxy() {
        assert_eq!(
            "socks5://127.0.0.1:9050".parse::<ProxyUrl>(),
            Err(ProxyError::Scheme("socks5".into()))
        );
        assert!(matches!(
            "http://127.0.0.1:8080".parse::<ProxyUrl>(),
            Err(ProxyError::Scheme(_))
        ));
        for bad in [
            "socks5h://127.0.0.1",
            "127.0.0.1:9050",
            "",
            "socks5h://h:1/x",
        ] {
            assert!(bad.parse::<ProxyUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_hides_credentials() {
        let p: ProxyUrl = "socks5h://user:hunter2@127.0.0.1:9050".parse().unwrap();
        let shown = format!("{p:?} {:?}", super::super::Network::via(p.clone()));
        assert!(
            !shown.contains("hunter2") && !shown.contains("user"),
            "{shown}"
        );
    }
}
