//! The escalation rule applied to federated credential writes (see
//! `docs/design/authorization.md`): changing who can act as an identity requires being
//! able to grant every role the identity holds.

use keyless_store::{FederatedCredentialRecord, IdentityRecord};

use super::credentials::FederatedCredentialInput;
use crate::error::{ErrorKind, ManagementError};
use crate::names::printable;
use crate::rbac::{Grant, ROLE_ASSIGNMENT_WRITE, builtin_role, first_ungrantable};
use crate::tokens::Caller;
use crate::view::Snapshot;

/// Whether `input` would leave `existing` exactly as it is: same issuer, subject,
/// audiences and claims-matching expression. Such a PUT trusts no one new, so it is not
/// a change the escalation rule has to look at.
pub(super) fn changes_nothing(
    existing: &FederatedCredentialRecord,
    input: &FederatedCredentialInput,
) -> bool {
    existing.issuer == input.issuer
        && existing.subject == input.subject
        && existing.audiences == input.audiences
        && existing.expression == input.expression
}

/// Checks, on `snap`, that `caller` could have granted every role `identity` holds.
/// `credential_id` and `action` only word the refusal.
pub(super) fn check_can_grant_identity_roles(
    snap: &Snapshot,
    caller: &Caller,
    identity: &IdentityRecord,
    credential_id: &str,
    action: &str,
) -> Result<(), ManagementError> {
    let caller_grants = snap.grants_of(&caller.object_id);
    match first_ungrantable(caller_grants, snap.grants_of(&identity.principal_id)) {
        None => Ok(()),
        Some(held) => Err(refusal(caller, identity, held, credential_id, action)),
    }
}

fn refusal(
    caller: &Caller,
    identity: &IdentityRecord,
    held: &Grant,
    credential_id: &str,
    action: &str,
) -> ManagementError {
    let role = builtin_role(&held.role_id).map_or(held.role_id.as_str(), |r| r.name);
    let scope = &held.scope;
    ManagementError::new(
        ErrorKind::Forbidden,
        "AuthorizationFailed",
        format!(
            "The client '{}' with object id '{}' does not have authorization to perform action '{action}' over scope '{credential_id}': identity '{}' has a role assignment of '{role}' at scope '{scope}', and a federated credential lets the workloads it trusts act with that role. Changing the identity's federated credentials therefore also requires '{ROLE_ASSIGNMENT_WRITE}' at scope '{scope}', which the client could not have granted. Ask someone who can assign '{role}' at that scope (an Owner there) to add the credential.",
            caller.app_id,
            caller.object_id,
            printable(&identity.name),
        ),
    )
}
