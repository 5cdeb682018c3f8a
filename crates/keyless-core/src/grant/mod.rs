//! The token endpoint: `client_credentials` with a client secret (service principals)
//! or a federated `client_assertion` (identities, see [`crate::federation`]).
//!
//! Data flows one way: the request's form ([`request`]) → one [`TokenState`] taken
//! at the start (snapshot, key ring, time) → the secret or assertion grant → [`mint`]
//! → the sign-in record. Every step reads the same state, so a write landing
//! mid-request is seen whole or not at all. Refusals come from [`error`], one
//! constructor per refusal.

pub(crate) mod error;
mod mint;
mod request;
mod secret;

use std::sync::Arc;

use keyless_proto::oauth::TokenRequest;
use keyless_store::SignInRecord;

pub use error::{GrantError, OAuthError, format_time};
use error::{no_client_credential, unknown_tenant};
pub use mint::IssuedToken;
pub(crate) use mint::{Subject, mint};
pub use request::{Endpoint, RequestContext};

use crate::keyless::Keyless;
use crate::keyring::KeyRing;
use crate::names::parse_guid;
use crate::view::Snapshot;

/// Everything one token request reads, taken once when it starts.
pub(crate) struct TokenState {
    /// The in-memory view.
    pub snap: Arc<Snapshot>,
    /// Keyless' signing keys.
    pub ring: Arc<KeyRing>,
    /// The time of the request (Unix seconds).
    pub now: i64,
}

/// Facts gathered on the way, for the sign-in log.
#[derive(Debug, Default, Clone)]
pub(crate) struct SignInFacts {
    pub issuer: Option<String>,
    pub subject: Option<String>,
    pub principal_id: Option<String>,
    /// The resolved resource (audience), once known.
    pub resource: Option<String>,
}

/// Resolves the `{tenant}` path segment to a known tenant id.
pub(crate) fn tenant_of(snap: &Snapshot, segment: &str) -> Result<String, GrantError> {
    match parse_guid(segment) {
        Some(t) if snap.tenants.contains(&t) => Ok(t),
        _ => Err(unknown_tenant(segment)),
    }
}

/// At most `n` characters of `s`: sign-in rows have bounded fields.
fn capped(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

impl Keyless {
    /// Resolves the `{tenant}` path segment to a known tenant id.
    pub fn resolve_tenant(&self, segment: &str) -> Result<String, GrantError> {
        tenant_of(&self.snapshot(), segment)
    }

    /// The state a token request reads from start to end.
    pub(crate) fn token_state(&self) -> TokenState {
        TokenState {
            snap: self.snapshot(),
            ring: self.key_ring(),
            now: self.clock.now(),
        }
    }

    /// Serves a token request for `tenant_segment` and records it in the sign-in log.
    pub async fn token_request(
        &self,
        tenant_segment: &str,
        req: &TokenRequest,
        endpoint: Endpoint,
        ctx: &RequestContext,
    ) -> Result<IssuedToken, GrantError> {
        let started = std::time::Instant::now();
        let state = self.token_state();
        let tenant = tenant_of(&state.snap, tenant_segment)?;
        let mut facts = SignInFacts::default();
        let result = self.grant(&state, &tenant, req, endpoint, &mut facts).await;
        let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let (error_code, error) = match &result {
            Ok(_) => {
                self.metrics
                    .success(req.client_assertion.is_some(), latency_us);
                (None, None)
            }
            Err(e) => {
                self.metrics.failure(e.code, latency_us);
                (Some(e.code), Some(e.for_operator()))
            }
        };
        self.signins.record(SignInRecord {
            id: 0,
            at: state.now,
            tenant_id: tenant,
            // Client ids compare case-insensitively; the log keeps one form.
            client_id: capped(req.client_id.as_deref().unwrap_or_default(), 64)
                .to_ascii_lowercase(),
            principal_id: facts.principal_id,
            issuer: facts.issuer.map(|s| capped(&s, 600)),
            subject: facts.subject.map(|s| capped(&s, 600)),
            // The resolved audience when the request got that far, else what was asked.
            resource: facts.resource.or_else(|| {
                req.scope
                    .as_deref()
                    .or(req.resource.as_deref())
                    .map(|s| capped(s, 600))
            }),
            success: result.is_ok(),
            error_code,
            error,
            client_ip: ctx.client_ip.clone(),
            correlation_id: ctx.correlation_id.clone(),
            latency_us: i64::try_from(latency_us).unwrap_or(i64::MAX),
            count: 1,
        });
        result
    }

    async fn grant(
        &self,
        state: &TokenState,
        tenant: &str,
        req: &TokenRequest,
        endpoint: Endpoint,
        facts: &mut SignInFacts,
    ) -> Result<IssuedToken, GrantError> {
        request::check_grant_type(req)?;
        let client_id = request::client_id(req)?;
        let resource = request::requested_resource(&self.settings.public, req, endpoint)?;
        facts.resource = Some(resource.audience.clone());
        if req.client_assertion.is_some() || req.client_assertion_type.is_some() {
            return self
                .assertion_grant(state, tenant, client_id, req, &resource, facts)
                .await;
        }
        let secret = req
            .client_secret
            .as_deref()
            .ok_or_else(no_client_credential)?;
        secret::secret_grant(&self.settings, state, tenant, client_id, secret, &resource)
    }
}
