//! Checking the session descriptions (SDP) of a call, ours before they
//! leave and the contact's before the browser sees them.
//!
//! A call must never reveal either side's address: the browser gathers only
//! relayed candidates (`iceTransportPolicy: "relay"`), and this check makes
//! sure of it whatever the browser does. Every address in an SDP must be the
//! TURN server's relayed address or `0.0.0.0`; every candidate must be of
//! type `relay` at that address with its related address zeroed (the
//! browser puts its own address there; ours is rewritten, the contact's
//! must arrive zeroed). The DTLS fingerprint must be SHA-256 and the same
//! in every section: it travels inside MLS, so the TURN operator cannot
//! stand in the middle of DTLS. The audio-level header extension is
//! removed (it would tell the TURN operator when someone speaks) and Opus
//! is asked for constant bitrate with in-band FEC and no DTX (variable
//! bitrate and silence suppression leak speech through packet sizes and
//! gaps).
//!
//! Nothing here copies SDP content into an error.

use std::net::IpAddr;

/// The largest SDP accepted or sent, in bytes.
pub const MAX_SDP: usize = 16 * 1024;

const MAX_LINES: usize = 400;

/// Why an SDP was refused. Carries no SDP content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// Larger than [`MAX_SDP`] or too many lines.
    #[error("the call description is too large")]
    TooLarge,
    /// Not printable ASCII lines.
    #[error("the call description is not text")]
    NotText,
    /// A section other than one audio and one video.
    #[error("the call description has sections a call does not use")]
    Sections,
    /// A candidate that is not relayed through TURN.
    #[error("the call description offers a direct connection (not through the relay)")]
    NotRelayed,
    /// An address other than the TURN server's.
    #[error("the call description names an address other than the relay's")]
    ForeignAddress,
    /// A candidate whose related address is not zeroed.
    #[error("the call description reveals a device's own address")]
    RelatedAddress,
    /// No relayed candidate at all.
    #[error("no connection through the relay's TURN server could be made")]
    NoCandidate,
    /// No DTLS fingerprint, or one that is not SHA-256.
    #[error("the call description has no SHA-256 DTLS fingerprint")]
    Fingerprint,
    /// Sections disagree on the fingerprint.
    #[error("the call description's DTLS fingerprints disagree")]
    FingerprintMismatch,
    /// A malformed line.
    #[error("the call description has a malformed line")]
    Malformed,
}

/// An SDP that passed, in the form to use, and its DTLS fingerprint.
#[derive(Clone, PartialEq, Eq)]
pub struct CheckedSdp {
    /// The SDP, rewritten as described in the module documentation.
    pub sdp: String,
    /// The SHA-256 DTLS fingerprint, upper-case hex pairs joined by `:`.
    pub fingerprint: String,
}

impl std::fmt::Debug for CheckedSdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CheckedSdp(..)")
    }
}

/// Whose SDP is checked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    /// Our browser's: related addresses are zeroed here.
    Local,
    /// The contact's: related addresses must arrive zeroed.
    Remote,
}

/// Checks and rewrites our browser's SDP before it is sent.
pub fn check_local(sdp: &str, relay_ip: IpAddr) -> Result<CheckedSdp, SdpError> {
    check(sdp, relay_ip, Side::Local)
}

/// Checks the contact's SDP before the browser is given it.
pub fn check_remote(sdp: &str, relay_ip: IpAddr) -> Result<CheckedSdp, SdpError> {
    check(sdp, relay_ip, Side::Remote)
}

fn check(sdp: &str, relay_ip: IpAddr, side: Side) -> Result<CheckedSdp, SdpError> {
    if sdp.len() > MAX_SDP {
        return Err(SdpError::TooLarge);
    }
    if !sdp
        .bytes()
        .all(|b| b == b'\r' || b == b'\n' || (0x20..0x7f).contains(&b))
    {
        return Err(SdpError::NotText);
    }
    let lines: Vec<&str> = sdp
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.is_empty())
        .collect();
    // A carriage return only ends a line.
    if lines.iter().any(|l| l.contains('\r')) {
        return Err(SdpError::NotText);
    }
    if lines.len() > MAX_LINES {
        return Err(SdpError::TooLarge);
    }
    if lines.first() != Some(&"v=0") {
        return Err(SdpError::Malformed);
    }
    let opus = opus_payload_types(&lines);
    let mut out: Vec<String> = Vec::with_capacity(lines.len() + 2);
    let mut fingerprint: Option<String> = None;
    let mut candidates = 0usize;
    let (mut audio, mut video) = (0u8, 0u8);
    let mut fmtp_seen: Vec<&str> = Vec::new();
    for line in &lines {
        let rewritten = if let Some(rest) = line.strip_prefix("m=") {
            match rest.split(' ').next() {
                Some("audio") => audio += 1,
                Some("video") => video += 1,
                _ => return Err(SdpError::Sections),
            }
            if audio > 1 || video > 1 {
                return Err(SdpError::Sections);
            }
            (*line).to_owned()
        } else if let Some(rest) = line.strip_prefix("o=") {
            origin(rest)?
        } else if let Some(rest) = line.strip_prefix("c=") {
            format!("c={}", connection(rest, relay_ip)?)
        } else if let Some(rest) = line.strip_prefix("a=rtcp:") {
            let (port, addr) = rest.split_once(' ').ok_or(SdpError::Malformed)?;
            format!("a=rtcp:{port} {}", connection(addr, relay_ip)?)
        } else if let Some(rest) = line.strip_prefix("a=candidate:") {
            candidates += 1;
            format!("a=candidate:{}", candidate(rest, relay_ip, side)?)
        } else if let Some(rest) = line.strip_prefix("a=fingerprint:") {
            let fp = sha256_fingerprint(rest)?;
            match &fingerprint {
                Some(f) if *f != fp => return Err(SdpError::FingerprintMismatch),
                _ => fingerprint = Some(fp.clone()),
            }
            format!("a=fingerprint:sha-256 {fp}")
        } else if let Some(rest) = line.strip_prefix("a=extmap:") {
            if rest.contains("audio-level") {
                continue;
            }
            (*line).to_owned()
        } else if line.starts_with("a=remote-candidates") {
            return Err(SdpError::NotRelayed);
        } else if let Some(rest) = line.strip_prefix("a=fmtp:") {
            let (pt, params) = rest.split_once(' ').ok_or(SdpError::Malformed)?;
            if opus.contains(&pt) {
                fmtp_seen.push(pt);
                format!("a=fmtp:{pt} {}", opus_params(params))
            } else {
                (*line).to_owned()
            }
        } else {
            (*line).to_owned()
        };
        out.push(rewritten);
    }
    // An Opus payload type without parameters gets them, right after its
    // rtpmap line.
    for pt in &opus {
        if fmtp_seen.contains(pt) {
            continue;
        }
        let at = out
            .iter()
            .position(|l| l.starts_with(&format!("a=rtpmap:{pt} ")))
            .ok_or(SdpError::Malformed)?;
        out.insert(at + 1, format!("a=fmtp:{pt} {}", opus_params("")));
    }
    if audio != 1 {
        return Err(SdpError::Sections);
    }
    let fingerprint = fingerprint.ok_or(SdpError::Fingerprint)?;
    if candidates == 0 {
        return Err(SdpError::NoCandidate);
    }
    // Belt and braces: no address but the relay's (or none) anywhere.
    let foreign = |token: &str| {
        token
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip != relay_ip && !ip.is_unspecified())
    };
    for l in &out {
        // IPv6 between separators (bracketed, or after `attr:`); IPv4
        // anywhere between separators.
        let v6 = l.split([' ', '/', ',', ';', '=']).any(|t| {
            let t = t.trim_matches(['[', ']']);
            foreign(t)
                || t.split_once(':')
                    .is_some_and(|(_, rest)| foreign(rest.trim_matches(['[', ']'])))
        });
        let bracketed = l
            .split('[')
            .skip(1)
            .any(|t| t.split(']').next().is_some_and(foreign));
        if v6
            || bracketed
            || l.split([' ', '/', ':', '=', ',', ';', '[', ']'])
                .any(foreign)
        {
            return Err(SdpError::ForeignAddress);
        }
    }
    let mut sdp = out.join("\r\n");
    sdp.push_str("\r\n");
    if sdp.len() > MAX_SDP {
        return Err(SdpError::TooLarge);
    }
    Ok(CheckedSdp { sdp, fingerprint })
}

/// `o=` with its address replaced by `0.0.0.0` (browsers put a placeholder
/// there; nothing else may be).
fn origin(rest: &str) -> Result<String, SdpError> {
    let f: Vec<&str> = rest.split(' ').collect();
    if f.len() != 6 || f[3] != "IN" {
        return Err(SdpError::Malformed);
    }
    let family = match f[4] {
        "IP4" => "IP4 0.0.0.0",
        "IP6" => "IP6 ::",
        _ => return Err(SdpError::Malformed),
    };
    Ok(format!("o={} {} {} IN {family}", f[0], f[1], f[2]))
}

/// `IN IP4 ADDR` where ADDR is the relay's or unspecified.
fn connection(rest: &str, relay_ip: IpAddr) -> Result<String, SdpError> {
    let f: Vec<&str> = rest.split(' ').collect();
    if f.len() != 3 || f[0] != "IN" || !(f[1] == "IP4" || f[1] == "IP6") {
        return Err(SdpError::Malformed);
    }
    let ip: IpAddr = f[2].parse().map_err(|_| SdpError::ForeignAddress)?;
    if ip != relay_ip && !ip.is_unspecified() {
        return Err(SdpError::ForeignAddress);
    }
    Ok(rest.to_owned())
}

/// A candidate attribute's value (after `a=candidate:`): relayed, at the
/// relay, related address zeroed (rewritten for ours, required of theirs).
fn candidate(rest: &str, relay_ip: IpAddr, side: Side) -> Result<String, SdpError> {
    let mut f: Vec<String> = rest.split(' ').map(str::to_owned).collect();
    // foundation component transport priority address port "typ" type ...
    if f.len() < 8 || f[6] != "typ" || !f.len().is_multiple_of(2) {
        return Err(SdpError::Malformed);
    }
    if f[7] != "relay" {
        return Err(SdpError::NotRelayed);
    }
    let ip: IpAddr = f[4].parse().map_err(|_| SdpError::ForeignAddress)?;
    if ip != relay_ip {
        return Err(SdpError::ForeignAddress);
    }
    f[5].parse::<u16>().map_err(|_| SdpError::Malformed)?;
    let mut i = 8;
    while i + 1 < f.len() {
        match f[i].as_str() {
            "raddr" => {
                let zero = f[i + 1].parse::<IpAddr>().is_ok_and(|a| a.is_unspecified());
                if !zero {
                    if side == Side::Remote {
                        return Err(SdpError::RelatedAddress);
                    }
                    f[i + 1] = "0.0.0.0".to_owned();
                }
            }
            "rport" if f[i + 1] != "0" => {
                if side == Side::Remote {
                    return Err(SdpError::RelatedAddress);
                }
                f[i + 1] = "0".to_owned();
            }
            _ => {}
        }
        i += 2;
    }
    Ok(f.join(" "))
}

/// `sha-256 AB:CD:…` (32 bytes) in upper case; any other hash is refused.
fn sha256_fingerprint(rest: &str) -> Result<String, SdpError> {
    let (algo, value) = rest.split_once(' ').ok_or(SdpError::Fingerprint)?;
    if !algo.eq_ignore_ascii_case("sha-256") {
        return Err(SdpError::Fingerprint);
    }
    let pairs: Vec<&str> = value.trim().split(':').collect();
    if pairs.len() != 32
        || !pairs
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(SdpError::Fingerprint);
    }
    Ok(value.trim().to_ascii_uppercase())
}

/// Payload types mapped to Opus.
fn opus_payload_types<'a>(lines: &[&'a str]) -> Vec<&'a str> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("a=rtpmap:"))
        .filter_map(|r| r.split_once(' '))
        .filter(|(_, codec)| codec.to_ascii_lowercase().starts_with("opus/"))
        .map(|(pt, _)| pt)
        .collect()
}

/// Opus parameters with constant bitrate, in-band FEC and no DTX; others
/// kept.
fn opus_params(params: &str) -> String {
    let mut kept: Vec<&str> = params
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let key = p.split('=').next().unwrap_or("");
            !matches!(key, "cbr" | "useinbandfec" | "usedtx")
        })
        .collect();
    kept.extend(["useinbandfec=1", "cbr=1", "usedtx=0"]);
    kept.join(";")
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use proptest::prelude::*;

    use super::*;

    const FP: &str = "7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08";

    fn relay() -> IpAddr {
        [127, 0, 0, 2].into()
    }

    /// What Chromium produces with `iceTransportPolicy: "relay"` after
    /// gathering: relayed candidates whose related address is the
    /// browser's own.
    pub(crate) fn chromium_offer() -> String {
        format!(
            "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0 1\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS s\r\n\
m=audio 50000 UDP/TLS/RTP/SAVPF 111 63 9\r\nc=IN IP4 127.0.0.2\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
a=candidate:1467250027 1 udp 41885439 127.0.0.2 50000 typ relay raddr 127.0.0.1 rport 40000 generation 0 network-cost 999\r\n\
a=candidate:2 1 udp 8331263 127.0.0.2 50002 typ relay raddr 127.0.0.1 rport 40002 generation 0 network-cost 999\r\n\
a=ice-ufrag:EsAw\r\na=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\r\na=ice-options:trickle\r\n\
a=fingerprint:sha-256 {FP}\r\na=setup:actpass\r\na=mid:0\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
a=sendrecv\r\na=msid:s t\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\na=rtpmap:9 G722/8000\r\n\
a=ssrc:1001 cname:4TOk42mSjXCkVIa6\r\n\
m=video 50000 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 127.0.0.2\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:EsAw\r\na=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\r\na=ice-options:trickle\r\n\
a=fingerprint:sha-256 {FP}\r\na=setup:actpass\r\na=mid:1\r\n\
a=extmap:14 urn:ietf:params:rtp-hdrext:toffset\r\na=sendrecv\r\na=rtcp-mux\r\n\
a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n"
        )
    }

    #[test]
    fn our_offer_leaves_with_no_device_address_and_constant_bitrate_opus() {
        let c = check_local(&chromium_offer(), relay()).unwrap();
        assert_eq!(c.fingerprint, FP);
        assert!(!c.sdp.contains("127.0.0.1"), "{}", c.sdp);
        assert!(!c.sdp.contains("40000"));
        assert!(
            c.sdp
                .contains("typ relay raddr 0.0.0.0 rport 0 generation 0")
        );
        assert!(
            c.sdp
                .contains("o=- 4611731400430051336 2 IN IP4 0.0.0.0\r\n")
        );
        assert!(!c.sdp.contains("audio-level"));
        assert!(c.sdp.contains("abs-send-time"));
        assert!(
            c.sdp
                .contains("a=fmtp:111 minptime=10;useinbandfec=1;cbr=1;usedtx=0\r\n")
        );
        assert!(c.sdp.contains("a=fmtp:63 111/111\r\n"), "RED untouched");
        // What we send, the contact accepts unchanged.
        let r = check_remote(&c.sdp, relay()).unwrap();
        assert_eq!(r.sdp, c.sdp);
    }

    #[test]
    fn a_contacts_sdp_that_could_reveal_an_address_is_refused() {
        let ours = check_local(&chromium_offer(), relay()).unwrap().sdp;
        let cases: Vec<(String, SdpError)> = vec![
            // Their browser's own address as related address.
            (
                ours.replace("raddr 0.0.0.0 rport 0", "raddr 192.168.1.20 rport 0"),
                SdpError::RelatedAddress,
            ),
            (
                ours.replacen("rport 0", "rport 5000", 1),
                SdpError::RelatedAddress,
            ),
            // A host candidate: a direct connection to them.
            (
                ours.replacen("typ relay", "typ host", 1),
                SdpError::NotRelayed,
            ),
            (
                ours.replacen("typ relay", "typ srflx", 1),
                SdpError::NotRelayed,
            ),
            // A relay candidate on another server (theirs, or an attacker's).
            (
                ours.replacen("udp 41885439 127.0.0.2", "udp 41885439 203.0.113.9", 1),
                SdpError::ForeignAddress,
            ),
            (
                ours.replacen("c=IN IP4 127.0.0.2", "c=IN IP4 10.0.0.7", 1),
                SdpError::ForeignAddress,
            ),
            (
                ours.replace("a=mid:0\r\n", "a=mid:0\r\na=x-note:10.0.0.7\r\n"),
                SdpError::ForeignAddress,
            ),
            (
                ours.replace(
                    "a=mid:0\r\n",
                    "a=mid:0\r\na=remote-candidates:1 10.0.0.7 5\r\n",
                ),
                SdpError::NotRelayed,
            ),
            // mDNS host candidate.
            (
                ours.replacen(
                    "127.0.0.2 50002 typ relay raddr 0.0.0.0 rport 0",
                    "4f1c.local 50002 typ host",
                    1,
                ),
                SdpError::NotRelayed,
            ),
            // Fingerprints: another hash, a mismatch, none.
            (ours.replacen("sha-256", "sha-1", 1), SdpError::Fingerprint),
            (
                ours.replacen(FP, &FP.replace("7B", "7C"), 1),
                SdpError::FingerprintMismatch,
            ),
            (
                ours.lines()
                    .filter(|l| !l.starts_with("a=fingerprint"))
                    .collect::<Vec<_>>()
                    .join("\r\n"),
                SdpError::Fingerprint,
            ),
            // No candidate at all.
            (
                ours.lines()
                    .filter(|l| !l.starts_with("a=candidate"))
                    .collect::<Vec<_>>()
                    .join("\r\n"),
                SdpError::NoCandidate,
            ),
            // A data channel or a second audio section.
            (
                format!("{ours}m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"),
                SdpError::Sections,
            ),
            (
                format!("{ours}m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"),
                SdpError::Sections,
            ),
            (
                format!("{ours}a=x:{}\r\n", "y".repeat(MAX_SDP)),
                SdpError::TooLarge,
            ),
            (ours.replace("s=-", "s=\u{1b}[2J"), SdpError::NotText),
            (ours.replacen("v=0", "v=1", 1), SdpError::Malformed),
            // An IPv6 address hidden after an attribute name, or bracketed.
            (
                ours.replace("a=mid:0\r\n", "a=mid:0\r\na=ssrc:1 cname:2001:db8::5\r\n"),
                SdpError::ForeignAddress,
            ),
            (
                ours.replace("a=mid:0\r\n", "a=mid:0\r\na=x:[fe80::1]:5000\r\n"),
                SdpError::ForeignAddress,
            ),
            // A bare carriage return inside a line.
            (
                ours.replace("s=-", "s=-\rc=IN IP4 10.0.0.1"),
                SdpError::NotText,
            ),
            // Video only.
            (
                ours.split("m=video")
                    .next()
                    .map(|h| {
                        let (head, _) = h.split_once("m=audio").unwrap();
                        format!("{head}m=video{}", ours.split("m=video").nth(1).unwrap())
                    })
                    .unwrap(),
                SdpError::Sections,
            ),
        ];
        for (i, (sdp, want)) in cases.into_iter().enumerate() {
            assert_eq!(check_remote(&sdp, relay()), Err(want), "case {i}");
        }
        // An offer naming another TURN server than ours is refused too.
        assert_eq!(
            check_remote(&ours, [127, 0, 0, 3].into()),
            Err(SdpError::ForeignAddress)
        );
        // Our own browser's SDP with a host candidate never leaves.
        let leaky = chromium_offer().replacen("typ relay", "typ host", 1);
        assert_eq!(check_local(&leaky, relay()), Err(SdpError::NotRelayed));
    }

    #[test]
    fn errors_carry_no_sdp_content() {
        let e = check_remote("v=0\r\nc=IN IP4 198.51.100.77\r\n", relay()).unwrap_err();
        assert!(!e.to_string().contains("198.51"));
        assert!(!format!("{e:?}").contains("198.51"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Nothing a contact sends makes the check panic, and whatever
        /// passes names no address but the relay's.
        #[test]
        fn arbitrary_text_never_panics(s in "(?s).{0,2000}") {
            if let Ok(c) = check_remote(&s, relay()) {
                prop_assert!(!c.sdp.contains("127.0.0.1"));
            }
        }

        /// Mutations of a real offer line by line: what passes stays clean
        /// and checks again unchanged.
        #[test]
        fn mutated_offers_pass_only_clean(drop_line in 0usize..60, junk in "[ -~]{0,40}") {
            let mut lines: Vec<String> = check_local(&chromium_offer(), relay()).unwrap()
                .sdp.lines().map(str::to_owned).collect();
            if drop_line < lines.len() {
                lines[drop_line] = junk;
            }
            let sdp = lines.join("\r\n");
            if let Ok(c) = check_remote(&sdp, relay()) {
                prop_assert_eq!(check_remote(&c.sdp, relay()).map(|x| x.sdp), Ok(c.sdp.clone()));
                prop_assert!(!c.sdp.contains("audio-level"));
            }
        }
    }
}
