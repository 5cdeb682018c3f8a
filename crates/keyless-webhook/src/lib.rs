//! Keyless' Kubernetes mutating admission webhook, compatible with manifests written for
//! the `azure.workload.identity/*` labels and annotations.
//!
//! Pods labelled `azure.workload.identity/use: "true"` get the four `AZURE_*` variables
//! the Azure SDKs read and a projected service-account token volume; the token is what
//! they present to Keyless' token service. The pieces, from the pure core outwards:
//!
//! - [`keys`]: the label, annotation and environment variable names.
//! - [`config`]: what the operator configures ([`MutationConfig`], [`TokenLayout`],
//!   [`CaTrust`]).
//! - [`annotations`]: parsing and validation of the annotations.
//! - [`identity_endpoint`]: the managed-identity sidecar (`keyless imds`), in the
//!   reference's proxy mode or Keyless' native-sidecar mode.
//! - [`mutate`]: the mutation, a pure function from the raw pod JSON and its
//!   ServiceAccount to RFC 6902 operations ([`patch`]); never round-trips the pod
//!   through typed structs, so no field is ever lost.
//! - [`review`]: `AdmissionReview` (`admission.k8s.io/v1`) decoding and the response
//!   (with the patch base64-encoded, as the API server expects).
//! - [`admission`]: one review in, one verdict out: selection, ServiceAccount lookup,
//!   mutation, metrics.
//! - [`kube`]: a small Kubernetes API client (kubeconfig / in-cluster) and the
//!   ServiceAccount watch cache with a direct-read fallback.
//! - [`server`], [`metrics`]: the HTTPS endpoint (certificate hot reload from
//!   [`keyless_tls::reload`]), health and Prometheus metrics.
//! - [`certs`], [`manifests`], [`jwks`]: what the CLI helpers generate.
#![warn(missing_docs)]

pub mod admission;
pub mod annotations;
pub mod certs;
pub mod config;
pub mod error;
pub mod identity_endpoint;
pub mod jwks;
pub mod keys;
pub mod kube;
pub mod manifests;
pub mod metrics;
pub mod mutate;
pub mod patch;
pub mod pod;
pub mod review;
pub mod server;
pub mod service_account;
pub mod yaml;

pub use config::{CaTrust, IdentityEndpoint, MutationConfig, TokenLayout};
pub use error::Rejection;
pub use service_account::ServiceAccount;
