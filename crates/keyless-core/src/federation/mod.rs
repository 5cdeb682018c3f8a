//! Federation: trusting external OIDC issuers and exchanging their tokens (client
//! assertions) for Keyless access tokens through federated identity credentials.

pub(crate) mod exchange;
pub mod explain;
pub mod fetcher;
pub mod issuer_cache;
pub mod matching;
pub(crate) mod steps;

pub use fetcher::{FetchError, MetadataFetcher};
pub use issuer_cache::{CacheSettings, IssuerCache, IssuerError};
