//! The injected HTTP fetcher for issuer metadata. The server supplies a hardened
//! implementation (https only, no foreign redirects, timeouts, size caps, private
//! address refusal); tests supply fakes.

use async_trait::async_trait;

/// Why a fetch failed. Messages are shown to the caller of the token endpoint, so they
/// say what failed without internal detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The URL is not allowed (scheme, host, private address...).
    #[error("refused to fetch {url}: {reason}")]
    Refused {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The connection or request failed, or the status was not 200.
    #[error("fetching {url} failed: {reason}")]
    Failed {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
}

/// Fetches a small JSON document over HTTPS.
#[async_trait]
pub trait MetadataFetcher: Send + Sync + 'static {
    /// GETs `url` and returns the body (at most the implementation's size cap).
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError>;
}
