//! What a local CA may vouch for: its name constraints (RFC 5280 §4.2.1.10), critical,
//! with both DNS and IP subtrees. DNS-only constraints leave IP addresses unconstrained,
//! so there are always IP subtrees too: a CA key stolen with a data directory can then
//! only impersonate the hosts that CA was made for, to clients told to trust it.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The permitted subtrees of a CA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameScope {
    /// DNS subtrees: each name and every name below it (`example.com` permits
    /// `a.b.example.com`).
    pub dns: Vec<String>,
    /// IP subtrees: address and prefix length.
    pub ips: Vec<(IpAddr, u8)>,
}

/// The IPv4 loopback network: a server listening on any of it is local.
const LOOPBACK_V4: (IpAddr, u8) = (IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 0)), 8);
/// `::1`.
const LOOPBACK_V6: (IpAddr, u8) = (IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), 128);

impl NameScope {
    /// The smallest scope covering the certificate names `names` (DNS names, wildcards,
    /// IP addresses), always with the loopback addresses.
    pub fn for_names(names: &[String]) -> NameScope {
        let mut scope = NameScope {
            dns: Vec::new(),
            ips: vec![LOOPBACK_V4, LOOPBACK_V6],
        };
        for name in names {
            match name.parse::<IpAddr>() {
                Ok(ip) => {
                    if !scope.covers(name) {
                        let prefix = if ip.is_ipv4() { 32 } else { 128 };
                        scope.ips.push((ip, prefix));
                    }
                }
                // A name whose last label is numeric is no host name (RFC 1123): no
                // client asks for it, and as a constraint it is malformed.
                Err(_) if numeric_tld(name) => {}
                Err(_) => {
                    let base = name
                        .strip_prefix("*.")
                        .unwrap_or(name)
                        .trim_end_matches('.')
                        .to_ascii_lowercase();
                    if !scope.dns.iter().any(|d| dns_within(&base, d)) {
                        scope.dns.retain(|d| !dns_within(d, &base));
                        scope.dns.push(base);
                    }
                }
            }
        }
        scope
    }

    /// Whether a certificate name (DNS name, wildcard or IP address) lies inside.
    pub fn covers(&self, name: &str) -> bool {
        match name.parse::<IpAddr>() {
            Ok(ip) => self
                .ips
                .iter()
                .any(|(net, prefix)| in_network(ip, *net, *prefix)),
            Err(_) => {
                let base = name
                    .strip_prefix("*.")
                    .unwrap_or(name)
                    .trim_end_matches('.');
                self.dns.iter().any(|d| dns_within(base, d))
            }
        }
    }

    /// The constraints as rcgen writes them (rcgen marks the extension critical).
    pub(crate) fn to_rcgen(&self) -> rcgen::NameConstraints {
        let mut permitted: Vec<rcgen::GeneralSubtree> = self
            .dns
            .iter()
            .map(|d| rcgen::GeneralSubtree::DnsName(d.clone()))
            .collect();
        permitted.extend(self.ips.iter().map(|(ip, prefix)| {
            rcgen::GeneralSubtree::IpAddress(rcgen::CidrSubnet::from_addr_prefix(*ip, *prefix))
        }));
        rcgen::NameConstraints {
            permitted_subtrees: permitted,
            excluded_subtrees: Vec::new(),
        }
    }
}

fn numeric_tld(name: &str) -> bool {
    name.trim_end_matches('.')
        .rsplit('.')
        .next()
        .is_some_and(|tld| !tld.is_empty() && tld.bytes().all(|b| b.is_ascii_digit()))
}

/// `name` equals `base` or ends with `.base` (case-insensitive, whole labels).
fn dns_within(name: &str, base: &str) -> bool {
    let (name, base) = (name.to_ascii_lowercase(), base.to_ascii_lowercase());
    name == base
        || name
            .strip_suffix(&base)
            .is_some_and(|head| head.ends_with('.'))
}

fn in_network(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_servers_names_become_a_host_subtree_and_loopback() {
        let s = NameScope::for_names(&names(&[
            "keyless.example",
            "*.vault.keyless.example",
            "vault.keyless.example",
            "localhost",
            "*.vault.localhost",
            "127.0.0.1",
            "::1",
        ]));
        assert_eq!(s.dns, ["keyless.example", "localhost"]);
        assert_eq!(s.ips, [LOOPBACK_V4, LOOPBACK_V6]);
        for inside in [
            "keyless.example",
            "a.vault.keyless.example",
            "127.0.0.9",
            "::1",
        ] {
            assert!(s.covers(inside), "{inside}");
        }
        for outside in [
            "evil.example",
            "keyless.example.evil",
            "notkeyless.example",
            "10.0.0.1",
            "::2",
        ] {
            assert!(!s.covers(outside), "{outside}");
        }
    }

    #[test]
    fn a_published_ip_address_is_its_own_subtree() {
        let s = NameScope::for_names(&names(&["10.1.2.3", "localhost"]));
        assert!(s.ips.contains(&("10.1.2.3".parse().unwrap(), 32)));
        assert!(s.covers("10.1.2.3") && !s.covers("10.1.2.4"));
    }
}
