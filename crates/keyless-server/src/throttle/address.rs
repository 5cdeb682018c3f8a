//! The client's address as the limits see it: the peer, or behind trusted proxies the
//! right-most untrusted hop of `X-Forwarded-For`; IPv6 clients are counted per /64
//! (one host can hold a whole /64, so single IPv6 addresses are free to an attacker).

use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use axum::http::HeaderMap;

/// An address block (`10.0.0.0/8`, `fd00::/8`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside the block (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("'{s}' is not an address block (e.g. 10.0.0.0/8, fd00::/8 or 192.0.2.7)");
        let (ip, prefix) = match s.trim().split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (s.trim(), None),
        };
        let network = canonical(IpAddr::from_str(ip).map_err(|_| bad())?);
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Cidr { network, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The address a request comes from. With no trusted proxy it is the peer. When the
/// peer is a trusted proxy, `X-Forwarded-For` is read from the right (each proxy
/// appends the address it saw) and the first hop that is not itself a trusted proxy
/// is the client: entries left of it were written by the client and prove nothing.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut client = peer;
    // Several X-Forwarded-For headers are one list, in order.
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            // A hop we cannot read: stop at the last trusted proxy's view.
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, possibly bracketed or with a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = IpAddr::from_str(hop) {
        return Some(canonical(ip));
    }
    if let Ok(sa) = std::net::SocketAddr::from_str(hop) {
        return Some(canonical(sa.ip()));
    }
    let inner = hop.strip_prefix('[')?.split_once(']')?.0;
    Ipv6Addr::from_str(inner)
        .ok()
        .map(|ip| canonical(IpAddr::V6(ip)))
}

/// The key failures are counted under: the IPv4 address, or the IPv6 /64.
pub use keyless_http::address_key;

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn blocks_parse_and_match() {
        let c: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(c.contains(ip("10.1.200.3")));
        assert!(!c.contains(ip("10.2.0.1")));
        assert!(c.contains(ip("::ffff:10.1.0.9")));
        let any: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(any.contains(ip("203.0.113.9")));
        assert!(!any.contains(ip("2001:db8::1")));
        let one: Cidr = "2001:db8::1".parse().unwrap();
        assert!(one.contains(ip("2001:db8::1")) && !one.contains(ip("2001:db8::2")));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")));
        for bad in ["10.0.0.0/33", "fd00::/129", "nope", "10.0.0.0/", "/8", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_forwarded_header_counts_only_from_a_trusted_proxy() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let h = xff(&["203.0.113.5"]);
        // An untrusted peer's header is ignored: anyone can write it.
        assert_eq!(
            client_address(ip("198.51.100.1"), &h, &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), &h, &trusted),
            ip("203.0.113.5")
        );
        assert_eq!(client_address(ip("10.0.0.2"), &h, &[]), ip("10.0.0.2"));
    }

    #[test]
    fn spoofed_entries_left_of_the_client_are_ignored() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        // The client wrote "1.1.1.1"; the outer proxy appended the client's real address,
        // an inner proxy appended the outer one.
        let h = xff(&["1.1.1.1, 203.0.113.5", "10.0.0.9"]);
        assert_eq!(
            client_address(ip("10.0.0.2"), &h, &trusted),
            ip("203.0.113.5")
        );
        // Only trusted hops: the left-most one is as far as we can see.
        let h = xff(&["10.0.0.7"]);
        assert_eq!(client_address(ip("10.0.0.2"), &h, &trusted), ip("10.0.0.7"));
        // Garbage stops the walk at the last readable trusted view.
        let h = xff(&["203.0.113.5, garbage"]);
        assert_eq!(client_address(ip("10.0.0.2"), &h, &trusted), ip("10.0.0.2"));
        let h = xff(&["[2001:db8::5]:443", "198.51.100.4:1234"]);
        assert_eq!(
            client_address(ip("10.0.0.2"), &h, &trusted),
            ip("198.51.100.4")
        );
    }

    #[test]
    fn ipv6_is_counted_per_64() {
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa::1")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            address_key(ip("2001:db8:1:2:ffff::9")),
            address_key(ip("2001:db8:1:2::1"))
        );
        assert_eq!(address_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(address_key(ip("192.0.2.1")), ip("192.0.2.1"));
    }
}
