//! Kubernetes API access, hand-written on reqwest: the webhook needs three calls on one
//! resource (LIST, WATCH and GET of ServiceAccounts), which does not justify the kube /
//! k8s-openapi dependency tree (see `docs/design/webhook.md`).

pub mod cache;
pub mod client;
pub mod config;

pub use cache::{
    CacheOptions, LookupError, ServiceAccountCache, ServiceAccountLookup, StaticServiceAccounts,
};
pub use client::{ApiClient, ClientError, WatchEvent};
pub use config::{Auth, ClusterConfig, ConfigError};
