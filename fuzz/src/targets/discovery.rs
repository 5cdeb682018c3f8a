//! `discovery`: an issuer's OpenID discovery document and the JWKS it points to, as
//! the issuer cache fetches and checks them. Input: the discovery document, a NUL byte,
//! the JWKS; the issuer is `https://issuer.fuzz.example`.

use std::sync::{Arc, OnceLock};

use keyless_core::SystemClock;
use keyless_core::federation::{CacheSettings, FetchError, IssuerCache, MetadataFetcher};

const ISSUER: &str = "https://issuer.fuzz.example";

/// Serves the input: the discovery document at the issuer's well-known URL, the JWKS
/// anywhere else.
struct Input {
    discovery: Vec<u8>,
    jwks: Vec<u8>,
}

#[async_trait::async_trait]
impl MetadataFetcher for Input {
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        if url == format!("{ISSUER}/.well-known/openid-configuration") {
            Ok(self.discovery.clone())
        } else {
            Ok(self.jwks.clone())
        }
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let (discovery, jwks) = crate::split2(data);
    let fetcher = Arc::new(Input {
        discovery: discovery.to_vec(),
        jwks: jwks.to_vec(),
    });
    let cache = IssuerCache::new(fetcher, Arc::new(SystemClock), CacheSettings::default());
    let result = runtime().block_on(cache.keys("tenant", ISSUER, Some("k1")));
    if let Ok(keys) = result {
        assert_eq!(keys.issuer, ISSUER);
        assert!(
            keys.source.starts_with("https://issuer.fuzz.example/")
                || keys.source.starts_with("https://issuer.fuzz.example?")
                || keys.source.starts_with("https://issuer.fuzz.example#")
                || keys.source == ISSUER,
            "keys taken from another host: {}",
            keys.source
        );
    }
}
