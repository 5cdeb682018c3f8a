//! The federated `client_assertion` grant: an external OIDC token exchanged for a
//! Keyless access token through a federated identity credential.

use keyless_proto::oauth::TokenRequest;

use crate::grant::{GrantError, IssuedToken, OAuthError};
use crate::keyless::Keyless;
use crate::tokens::Resource;

impl Keyless {
    pub(crate) fn assertion_grant(
        &self,
        _tenant: &str,
        _client_id: &str,
        _req: &TokenRequest,
        _resource: &Resource,
    ) -> Result<IssuedToken, GrantError> {
        Err(GrantError::new(
            OAuthError::InvalidClient,
            70021,
            "No matching federated identity record found for presented assertion: federated credentials are not enabled on this server yet.",
        ))
    }
}
