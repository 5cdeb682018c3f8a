//! The `client_secret` grant of service principals.

use crate::grant::error::{invalid_secret, unknown_client};
use crate::grant::mint::{IssuedToken, Subject, mint};
use crate::grant::{GrantError, TokenState};
use crate::settings::Settings;
use crate::tokens::Resource;

/// Checks the secret of service principal `client_id` in `tenant` and mints.
pub(crate) fn secret_grant(
    settings: &Settings,
    state: &TokenState,
    tenant: &str,
    client_id: &str,
    secret: &str,
    resource: &Resource,
) -> Result<IssuedToken, GrantError> {
    let sp = state
        .snap
        .service_principals
        .get(&client_id.to_ascii_lowercase())
        .filter(|sp| sp.tenant_id == tenant)
        .ok_or_else(|| unknown_client(client_id, tenant))?;
    if !keyless_jose::verify_secret(secret, &sp.secret_hash) {
        return Err(invalid_secret(client_id));
    }
    mint(
        settings,
        state,
        &Subject {
            tenant_id: tenant,
            client_id: &sp.client_id,
            object_id: &sp.principal_id,
            mirid: None,
            acr: "1",
        },
        resource,
    )
}
