//! The federated `client_assertion` grant: the steps of [`super::steps`] in the order
//! of the hot path, then mint. No database access; the only await is an issuer-cache
//! miss.

use keyless_proto::oauth::TokenRequest;

use super::steps;
use crate::grant::{GrantError, IssuedToken, SignInFacts, Subject, TokenState, mint};
use crate::keyless::Keyless;
use crate::tokens::Resource;

impl Keyless {
    pub(crate) async fn assertion_grant(
        &self,
        state: &TokenState,
        tenant: &str,
        client_id: &str,
        req: &TokenRequest,
        resource: &Resource,
        facts: &mut SignInFacts,
    ) -> Result<IssuedToken, GrantError> {
        let snap = &*state.snap;
        let raw = steps::raw_assertion(req)?;
        let a = steps::read_claims(steps::parse_token(raw)?)?;
        facts.issuer = Some(a.claims.iss.clone());
        facts.subject = Some(a.claims.sub.clone());
        steps::refuse_own_token(&self.settings.public, &state.ring, &a)?;
        let identity = steps::identity(snap, tenant, client_id)?;
        facts.principal_id = Some(identity.principal_id.clone());
        let all = steps::credentials_of(snap, identity);
        let creds = steps::trusted_credentials(all, &a.claims.iss)?;
        let keys =
            steps::issuer_keys(snap, &self.issuers, tenant, &a.claims.iss, a.jwt.kid()).await?;
        let key = steps::signing_key(&keys, &a.jwt)?;
        steps::verify_signature(&a.jwt, key)?;
        steps::check_times(&a.claims, state.now, self.settings.clock_leeway_secs)?;
        let matched = steps::match_credential(snap, &creds, &a)?;
        tracing::debug!(credential = %matched.name, "federated credential matched");
        mint(
            &self.settings,
            state,
            &Subject {
                tenant_id: tenant,
                client_id: &identity.client_id,
                object_id: &identity.principal_id,
                mirid: Some(crate::ids::identity_id(
                    &identity.subscription_id,
                    &identity.resource_group,
                    &identity.name,
                )),
                acr: "2",
            },
            resource,
        )
    }
}
