//! The hardened HTTP fetcher for issuer discovery documents and JWKS
//! (SECURITY.md): https only; redirects only within the same host; connect and total
//! timeouts; a response size cap; loopback, private, link-local and metadata addresses
//! refused unless the operator allows them — checked on the resolved addresses, so a
//! public name pointing at a private address is refused too.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use keyless_core::federation::{FetchError, MetadataFetcher};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Largest discovery document or JWKS accepted.
pub const MAX_METADATA_BYTES: usize = 256 * 1024;

/// Fetcher options.
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// Allow loopback, private and link-local addresses.
    pub allow_private: bool,
    /// Extra trusted roots (PEM files) on top of the system's.
    pub trust_ca: Vec<PathBuf>,
}

/// Whether an address may be fetched without the private-issuer switch.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])) // carrier-grade NAT
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19)) // benchmarking
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            let [a, b, c, d, e, f, _, _] = v6.segments();
            // Every IPv6 form that embeds or translates to an IPv4 address is refused
            // outright rather than judged by the embedded address: the translation
            // happens in a gateway Keyless cannot see, and the embedded address is
            // attacker-chosen.
            let ipv4_mapped = v6.to_ipv4_mapped().is_some(); // ::ffff:a.b.c.d
            let ipv4_compatible = [a, b, c, d, e, f] == [0; 6]; // ::a.b.c.d (and ::, ::1)
            let nat64 = [a, b, c, d, e, f] == [0x64, 0xff9b, 0, 0, 0, 0] // 64:ff9b::/96
                || (a == 0x64 && b == 0xff9b && c == 1); // 64:ff9b:1::/48, local use
            let six_to_four = a == 0x2002; // 2002::/16
            let teredo = a == 0x2001 && b == 0; // 2001::/32
            let documentation = a == 0x2001 && b == 0xdb8; // 2001:db8::/32
            !(ipv4_mapped
                || ipv4_compatible
                || nat64
                || six_to_four
                || teredo
                || documentation
                || v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (a & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (a & 0xffc0) == 0xfe80 // link local fe80::/10
                || (a & 0xffc0) == 0xfec0) // site local fec0::/10 (deprecated, still routed)
        }
    }
}

#[derive(Debug)]
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| allow || is_public(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(format!(
                    "'{host}' resolves only to loopback, private or link-local addresses; start Keyless with --allow-private-issuers to trust such issuers"
                )
                .into());
            }
            let it: Addrs = Box::new(allowed.into_iter());
            Ok(it)
        })
    }
}

/// The reqwest-based fetcher.
#[derive(Debug, Clone)]
pub struct HttpFetcher {
    client: reqwest::Client,
    allow_private: bool,
}

impl HttpFetcher {
    /// Builds the client.
    pub fn new(opts: &FetchOptions) -> Result<Self, String> {
        let mut roots = Vec::new();
        for path in &opts.trust_ca {
            let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            roots.extend(certs);
        }
        let client = reqwest::Client::builder()
            .https_only(true)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                let same_host = attempt.previous().first().is_some_and(|first| {
                    first.host_str() == attempt.url().host_str()
                        && first.port_or_known_default() == attempt.url().port_or_known_default()
                });
                if attempt.previous().len() > 3 {
                    attempt.error("too many redirects")
                } else if !same_host {
                    attempt.error("redirect to another host refused")
                } else {
                    attempt.follow()
                }
            }))
            .dns_resolver(Arc::new(GuardedResolver {
                allow_private: opts.allow_private,
            }))
            .tls_certs_merge(roots)
            .user_agent(concat!("keyless/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            allow_private: opts.allow_private,
        })
    }
}

fn failed(url: &str, reason: impl std::fmt::Display) -> FetchError {
    FetchError::Failed {
        url: url.to_string(),
        reason: reason.to_string(),
    }
}

fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[async_trait]
impl MetadataFetcher for HttpFetcher {
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| FetchError::Refused {
            url: url.into(),
            reason: e.to_string(),
        })?;
        if parsed.scheme() != "https" {
            return Err(FetchError::Refused {
                url: url.into(),
                reason: "only https is allowed".into(),
            });
        }
        // IP literals never reach the resolver: check them here.
        if let Some(host) = parsed.host_str()
            && let Ok(ip) = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
            && !self.allow_private
            && !is_public(ip)
        {
            return Err(FetchError::Refused {
                url: url.into(),
                reason: format!(
                    "{ip} is a loopback, private or link-local address; start Keyless with --allow-private-issuers to trust such issuers"
                ),
            });
        }
        let mut resp = self
            .client
            .get(parsed)
            .send()
            .await
            .map_err(|e| failed(url, error_chain(&e)))?;
        if !resp.status().is_success() {
            return Err(failed(url, format!("HTTP status {}", resp.status())));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_METADATA_BYTES as u64)
        {
            return Err(failed(
                url,
                format!("the document is larger than {MAX_METADATA_BYTES} bytes"),
            ));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| failed(url, error_chain(&e)))?
        {
            if body.len() + chunk.len() > MAX_METADATA_BYTES {
                return Err(failed(
                    url,
                    format!("the document is larger than {MAX_METADATA_BYTES} bytes"),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "::ffff:8.8.8.8",
            "::8.8.8.8",
            "::127.0.0.1",
            "64:ff9b::808:808",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "2002:a00:1::1",
            "2002:808:808::1",
            "2001:0:4136:e378::1",
            "2001:db8::1",
            "fec0::1",
            "feff::1",
            "ff02::1",
            "ff0e::1",
            "100.127.255.255",
            "0.1.2.3",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "20.190.128.1",
            "100.128.0.1",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn refuses_http_and_private_literals() {
        let f = HttpFetcher::new(&FetchOptions::default()).unwrap();
        assert!(matches!(
            f.get("http://example.com/x").await,
            Err(FetchError::Refused { .. })
        ));
        assert!(matches!(
            f.get("https://169.254.169.254/latest").await,
            Err(FetchError::Refused { .. })
        ));
        let e = f.get("https://localhost:1/x").await.unwrap_err();
        assert!(e.to_string().contains("--allow-private-issuers"), "{e}");
    }
}
