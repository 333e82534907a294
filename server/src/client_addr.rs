//! The client's address, as the audit log and the sign-in limits see it:
//! the peer's address, unless the peer is one of `QUIVER_TRUSTED_PROXIES`.
//! From a trusted proxy, the hops it reports (`X-Forwarded-For` when
//! present, else `Forwarded`, RFC 7239) are read from the right, and the
//! first one that is not itself a trusted proxy is the client: everything
//! to its left was written by the client and proves nothing.

use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;

/// An address block, `203.0.113.0/24` or `2001:db8::/32` (a bare address
/// is a block of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

fn masked(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((bits & mask).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((bits & mask).into())
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let ip: IpAddr = address.parse().map_err(|_| {
            format!("{text:?} is not an address block (e.g. 10.0.0.0/8 or 2001:db8::/32)")
        })?;
        let ip = ip.to_canonical();
        let most = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => most,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= most)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {most}"))?,
        };
        Ok(Self {
            network: masked(ip, prefix),
            prefix,
        })
    }
}

impl Cidr {
    /// Whether `ip` is in the block (IPv4-mapped IPv6 addresses count as
    /// their IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.network.is_ipv4() && masked(ip, self.prefix) == self.network
    }
}

/// The proxies whose word about the client's address is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

/// One hop of a forwarding header: an address, with or without a port and
/// brackets; `None` for anything else (`unknown`, obfuscated names).
fn hop(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    // `192.0.2.1:4711`
    let (address, port) = text.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    address.parse().ok()
}

impl TrustedProxies {
    /// Comma-separated blocks; empty trusts none.
    pub fn parse(text: &str) -> Result<Self, String> {
        text.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(Cidr::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether none is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The hops the headers report, left (the client, by its own word) to
    /// right (the proxy next to us). `None` in a place that is not an
    /// address.
    fn hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
        let joined = |name: &str| -> Option<String> {
            let values: Vec<&str> = headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap_or("\u{0}"))
                .collect();
            (!values.is_empty()).then(|| values.join(","))
        };
        if let Some(list) = joined("x-forwarded-for") {
            return list.split(',').map(hop).collect();
        }
        if let Some(list) = joined("forwarded") {
            return list
                .split(',')
                .map(|element| {
                    element
                        .split(';')
                        .filter_map(|pair| pair.split_once('='))
                        .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                        .and_then(|(_, v)| hop(v))
                })
                .collect();
        }
        Vec::new()
    }

    /// The client's address for a request from `peer`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        for hop in Self::hops(headers).into_iter().rev() {
            match hop {
                // Reported by a proxy we trust: the hop before it may be
                // the client.
                Some(ip) if self.trusts(ip) => client = ip,
                Some(ip) => return ip,
                // Not an address: what stands left of it cannot be told
                // apart from what the client wrote.
                None => return client,
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_parse_and_contain() {
        let c: Cidr = "10.1.2.3/8".parse().unwrap();
        assert!(c.contains(ip("10.200.0.1")));
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.0.0.9")), "IPv4-mapped");
        let six: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(six.contains(ip("2001:db8:1::5")));
        assert!(!six.contains(ip("2001:db9::5")));
        assert!(
            "127.0.0.1"
                .parse::<Cidr>()
                .unwrap()
                .contains(ip("127.0.0.1"))
        );
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("8.8.8.8")));
        for bad in ["10.0.0.0/33", "::/129", "example.com", "10.0.0.0/x", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert!(TrustedProxies::parse("10.0.0.0/8, nope").is_err());
        assert!(TrustedProxies::parse(" ").unwrap().is_empty());
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let trusted = TrustedProxies::parse("127.0.0.1/32,10.0.0.0/8").unwrap();
        let peer = ip("127.0.0.1");
        // The client wrote a fake first hop; the proxies appended the truth.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.77, 10.0.0.5")]);
        assert_eq!(trusted.client(peer, &h), ip("203.0.113.77"));
        // Several header lines are one list.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "203.0.113.77:5555"),
        ]);
        assert_eq!(trusted.client(peer, &h), ip("203.0.113.77"));
        let h = headers(&[(
            "forwarded",
            "for=6.6.6.6, for=\"[2001:db8:cafe::17]:4711\";proto=https, for=10.1.1.1",
        )]);
        assert_eq!(trusted.client(peer, &h), ip("2001:db8:cafe::17"));
        // No header: the proxy itself.
        assert_eq!(trusted.client(peer, &HeaderMap::new()), peer);
        // Garbage next to the proxy: nothing to the left of it is believed.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, unknown")]);
        assert_eq!(trusted.client(peer, &h), peer);
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.77"),
            ("forwarded", "for=1.2.3.4"),
        ]);
        assert_eq!(trusted.client(ip("198.51.100.1"), &h), ip("198.51.100.1"));
        assert_eq!(
            TrustedProxies::default().client(ip("127.0.0.1"), &h),
            ip("127.0.0.1")
        );
    }
}
