//! Which provider URLs and addresses Quiver may reach: https only (plain
//! http on loopback hosts when `QUIVER_ALLOW_INSECURE_LOOPBACK` is on),
//! and never link-local, site-local or cloud metadata addresses, whatever a
//! name resolves to and however an IPv6 address carries an IPv4 one.
//! Private addresses stay allowed: internal identity providers are real.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Whether an address must never be contacted: link-local (169.254.0.0/16,
/// fe80::/10), site-local (fec0::/10), cloud metadata (fd00:ec2::254,
/// 100.100.100.200) and the unspecified addresses — and every IPv6 address
/// that carries a refused IPv4 address (see [`embedded_v4`]).
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    ip.is_link_local() || ip.is_unspecified() || ip == Ipv4Addr::new(100, 100, 100, 200)
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_unspecified()
        || (first & 0xffc0) == 0xfe80
        || (first & 0xffc0) == 0xfec0
        || ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        || embedded_v4(ip).into_iter().any(forbidden_v4)
}

fn v4(bytes: [u8; 4]) -> Ipv4Addr {
    Ipv4Addr::from(bytes)
}

/// The IPv4 addresses an IPv6 address may lead to: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-translated (`::ffff:0:a.b.c.d`), IPv4-compatible
/// (`::a.b.c.d`), NAT64 (`64:ff9b::/96`, and `64:ff9b:1::/48` at each
/// RFC 6052 prefix length it can be cut at), 6to4 (`2002::/16`), Teredo
/// (`2001::/32`: the server and the obfuscated client address) and ISATAP
/// interface identifiers (`…:0:5efe:a.b.c.d`, `…:200:5efe:a.b.c.d`).
pub fn embedded_v4(ip: Ipv6Addr) -> Vec<Ipv4Addr> {
    let s = ip.segments();
    let b = ip.octets();
    let last = v4([b[12], b[13], b[14], b[15]]);
    let mut found = Vec::new();
    if s[..5] == [0; 5] && s[5] == 0xffff {
        found.push(last);
    }
    if s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0 {
        found.push(last);
    }
    if s[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified() {
        found.push(last);
    }
    if s[0] == 0x64 && s[1] == 0xff9b {
        if s[2..6] == [0; 4] {
            found.push(last);
        }
        if s[2] == 1 {
            // RFC 6052 §2.2: the translator's prefix is a /48, /56, /64 or
            // /96 inside 64:ff9b:1::/48 (bits 64 to 71 are skipped), and
            // Quiver cannot know which: every reading counts. The zero
            // fields of one reading are the others' padding, so a reading
            // of 0.0.0.0 says nothing and is left out.
            for candidate in [
                v4([b[6], b[7], b[9], b[10]]),
                v4([b[7], b[9], b[10], b[11]]),
                v4([b[9], b[10], b[11], b[12]]),
                last,
            ] {
                if !candidate.is_unspecified() {
                    found.push(candidate);
                }
            }
        }
    }
    if s[0] == 0x2002 {
        found.push(v4([b[2], b[3], b[4], b[5]]));
    }
    if s[0] == 0x2001 && s[1] == 0 {
        found.push(v4([b[4], b[5], b[6], b[7]]));
        found.push(v4([!b[12], !b[13], !b[14], !b[15]]));
    }
    if (s[4] & 0xfdff) == 0 && s[5] == 0x5efe {
        found.push(last);
    }
    found
}

pub(crate) fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

const REFUSED_ADDRESS: &str = "points at a link-local, site-local or cloud metadata address (or an IPv6 address carrying one), which Quiver never contacts";

/// Checks a provider URL; the message says what is wrong.
pub fn check_url(text: &str, allow_insecure_loopback: bool) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| format!("{text:?} is not a URL ({e})"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password".into());
    }
    if url.fragment().is_some() {
        return Err("must not have a #fragment".into());
    }
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure_loopback && is_loopback_host(&url) => {}
        "http" if is_loopback_host(&url) => {
            return Err(
                "must use https (plain http is allowed on loopback only when QUIVER_ALLOW_INSECURE_LOOPBACK is on)"
                    .into(),
            );
        }
        _ => return Err("must use https".into()),
    }
    match url.host() {
        Some(Host::Ipv4(ip)) if is_forbidden(IpAddr::V4(ip)) => Err(REFUSED_ADDRESS.into()),
        Some(Host::Ipv6(ip)) if is_forbidden(IpAddr::V6(ip)) => Err(REFUSED_ADDRESS.into()),
        None => Err("has no host".into()),
        _ => Ok(url),
    }
}

/// The origin (scheme, host, port) of a URL, for "same origin" checks.
pub fn origin(url: &str) -> Option<String> {
    Url::parse(url)
        .ok()
        .map(|u| u.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_and_link_local_addresses_are_forbidden_in_every_form() {
        for ip in [
            "169.254.169.254",
            "169.254.0.1",
            "100.100.100.200",
            "0.0.0.0",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:169.254.169.254",
            "::169.254.169.254",
            "::",
        ] {
            assert!(is_forbidden(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["127.0.0.1", "10.0.0.1", "8.8.8.8", "::1", "2001:db8::1"] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn every_ipv6_form_of_a_refused_ipv4_address_is_refused() {
        // 169.254.169.254 is a9fe:a9fe; 100.100.100.200 is 6464:64c8.
        for (form, ip) in [
            ("IPv4-mapped", "::ffff:a9fe:a9fe"),
            ("IPv4-translated", "::ffff:0:a9fe:a9fe"),
            ("IPv4-compatible", "::a9fe:a9fe"),
            ("NAT64 well-known prefix", "64:ff9b::169.254.169.254"),
            ("NAT64 well-known prefix", "64:ff9b::6464:64c8"),
            ("NAT64 local-use /96", "64:ff9b:1::a9fe:a9fe"),
            ("NAT64 local-use /64", "64:ff9b:1:0:a9:fea9:fe00:0"),
            ("NAT64 local-use /56", "64:ff9b:1:a9:fe:a9fe::"),
            ("NAT64 local-use /48", "64:ff9b:1:a9fe:a9:fe00::"),
            ("6to4", "2002:a9fe:a9fe::1"),
            ("6to4 of 0.0.0.0", "2002::1"),
            ("Teredo server", "2001:0:a9fe:a9fe::1"),
            ("Teredo client", "2001:0:4136:e378:8000:63bf:5601:5601"),
            ("ISATAP", "2001:db8::5efe:a9fe:a9fe"),
            ("ISATAP (global)", "2001:db8::200:5efe:a9fe:a9fe"),
            ("site-local", "fec0::1"),
            ("site-local", "feff:1::1"),
        ] {
            assert!(is_forbidden(ip.parse().unwrap()), "{form}: {ip}");
            assert!(
                check_url(&format!("https://[{ip}]/token"), true)
                    .unwrap_err()
                    .contains("metadata"),
                "{form}: {ip}"
            );
        }
        // Private and loopback addresses stay allowed in every form.
        for ip in [
            "64:ff9b::10.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b:1::192.168.1.1",
            "64:ff9b:1:a00:0:100::",
            "2002:0a00:0001::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "fd00::1",
            "fc00::1",
        ] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn urls_must_be_https_except_loopback_when_allowed() {
        assert!(check_url("https://login.example.com/token", false).is_ok());
        assert!(
            check_url("http://login.example.com/token", true)
                .unwrap_err()
                .contains("https")
        );
        assert!(
            check_url("http://127.0.0.1:9/token", false)
                .unwrap_err()
                .contains("QUIVER_ALLOW_INSECURE_LOOPBACK")
        );
        assert!(check_url("http://127.0.0.1:9/token", true).is_ok());
        assert!(check_url("http://localhost:9/token", true).is_ok());
        assert!(check_url("http://[::1]:9/token", true).is_ok());
        for bad in [
            "https://169.254.169.254/latest/meta-data",
            "https://[fd00:ec2::254]/",
            "https://[::ffff:169.254.169.254]/",
            "https://[::ffff:a9fe:a9fe]/",
        ] {
            assert!(
                check_url(bad, true).unwrap_err().contains("metadata"),
                "{bad}"
            );
        }
        assert!(check_url("ftp://x/", true).is_err());
        assert!(check_url("https://user:pw@x/", true).is_err());
        assert!(check_url("not a url", true).is_err());
    }
}
