//! Server settings the domain needs: public URLs, token lifetimes, limits.

use keyless_jose::Alg;

/// The public origin every published URL derives from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    /// Host name clients use (e.g. `localhost`).
    pub host: String,
    /// Port clients use.
    pub port: u16,
}

impl PublicUrl {
    fn host_port(&self, host: &str) -> String {
        if self.port == 443 {
            host.to_string()
        } else {
            format!("{host}:{}", self.port)
        }
    }
    /// `https://host[:port]`, no trailing slash: the authority host.
    pub fn authority(&self) -> String {
        format!("https://{}", self.host_port(&self.host))
    }
    /// `https://host[:port]/`: the resource manager URL and its token audience.
    pub fn resource_manager(&self) -> String {
        format!("{}/", self.authority())
    }
    /// `https://vault.host[:port]`: the vault resource (token audience).
    pub fn vault_resource(&self) -> String {
        format!(
            "https://{}",
            self.host_port(&format!("vault.{}", self.host))
        )
    }
    /// `https://{vault}.vault.host[:port]/`: one vault's URI.
    pub fn vault_uri(&self, vault: &str) -> String {
        format!(
            "https://{}/",
            self.host_port(&format!("{vault}.vault.{}", self.host))
        )
    }
    /// Issuer of v1 tokens of a tenant: `https://host[:port]/{tenant}/`.
    pub fn issuer_v1(&self, tenant: &str) -> String {
        format!("{}/{tenant}/", self.authority())
    }
    /// Issuer of v2 tokens of a tenant: `https://host[:port]/{tenant}/v2.0`.
    pub fn issuer_v2(&self, tenant: &str) -> String {
        format!("{}/{tenant}/v2.0", self.authority())
    }
}

/// Domain settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Public origin.
    pub public: PublicUrl,
    /// Lifetime of minted access tokens, seconds.
    pub token_lifetime_secs: i64,
    /// Algorithm of new signing keys.
    pub signing_alg: Alg,
    /// How long a new signing key is published before it signs, seconds.
    pub key_prepublish_secs: i64,
    /// Clock skew tolerated when checking token times, seconds.
    pub clock_leeway_secs: i64,
    /// Cap on federated credentials per identity (`None`: no cap).
    pub max_federated_credentials: Option<u32>,
    /// Issuer metadata cache tuning.
    pub issuer_cache: crate::federation::CacheSettings,
    /// Bounds of the sign-in log (retention, row cap, folding of repeated failures).
    pub signin_log: crate::signin::LogSettings,
    /// How often housekeeping runs (signing keys, purges, sign-in log bounds).
    pub housekeeping_interval: std::time::Duration,
}

impl Settings {
    /// Defaults for a public origin.
    pub fn new(public: PublicUrl) -> Self {
        Self {
            public,
            token_lifetime_secs: 3600,
            signing_alg: Alg::ES256,
            key_prepublish_secs: 0,
            clock_leeway_secs: 60,
            max_federated_credentials: None,
            issuer_cache: crate::federation::CacheSettings::default(),
            signin_log: crate::signin::LogSettings::default(),
            housekeeping_interval: std::time::Duration::from_secs(60),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_omit_default_port() {
        let p = PublicUrl {
            host: "keyless.example".into(),
            port: 443,
        };
        assert_eq!(p.authority(), "https://keyless.example");
        assert_eq!(p.vault_uri("v1"), "https://v1.vault.keyless.example/");
        let p = PublicUrl {
            host: "localhost".into(),
            port: 8443,
        };
        assert_eq!(p.resource_manager(), "https://localhost:8443/");
        assert_eq!(p.vault_resource(), "https://vault.localhost:8443");
        assert_eq!(p.issuer_v2("t"), "https://localhost:8443/t/v2.0");
    }
}
