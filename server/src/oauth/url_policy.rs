//! Which provider URLs and addresses Quiver may reach: https only (plain
//! http on loopback hosts when `QUIVER_ALLOW_INSECURE_LOOPBACK` is on),
//! and never link-local or cloud metadata addresses, whatever a name
//! resolves to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Whether an address must never be contacted: link-local (169.254.0.0/16,
/// fe80::/10), cloud metadata (fd00:ec2::254, 100.100.100.200), the
/// unspecified address, and the IPv4-mapped and -compatible forms of these.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let segments = v6.segments();
            // IPv4-compatible (deprecated) ::a.b.c.d
            if segments[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
                let v4 = Ipv4Addr::from(((segments[6] as u32) << 16) | segments[7] as u32);
                return forbidden_v4(v4);
            }
            v6.is_unspecified()
                || (segments[0] & 0xffc0) == 0xfe80
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    ip.is_link_local() || ip.is_unspecified() || ip == Ipv4Addr::new(100, 100, 100, 200)
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

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
        Some(Host::Ipv4(ip)) if is_forbidden(IpAddr::V4(ip)) => Err(
            "points at a link-local or cloud metadata address, which Quiver never contacts".into(),
        ),
        Some(Host::Ipv6(ip)) if is_forbidden(IpAddr::V6(ip)) => Err(
            "points at a link-local or cloud metadata address, which Quiver never contacts".into(),
        ),
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
