//! Role definitions (built-in, read-only) and role assignments.

use keyless_proto::arm::RoleAssignmentPutProperties;
use keyless_store::Change;
use keyless_store::RoleAssignmentRecord;

use super::group_not_found;
use crate::error::ManagementError;
use crate::ids::{CanonicalScope, InvalidScope, Scope, ScopeError, same_id, scope_contains};
use crate::keyless::Keyless;
use crate::names::{parse_guid, printable};
use crate::rbac::{BUILTIN_ROLES, RoleDefinition, builtin_role};
use crate::tokens::Caller;

const ASSIGN_READ: &str = "Microsoft.Authorization/roleAssignments/read";
const ASSIGN_WRITE: &str = "Microsoft.Authorization/roleAssignments/write";
const ASSIGN_DELETE: &str = "Microsoft.Authorization/roleAssignments/delete";
const DEFINITION_READ: &str = "Microsoft.Authorization/roleDefinitions/read";

/// A validated role assignment request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAssignmentInput {
    /// Built-in role.
    pub role: &'static RoleDefinition,
    /// Principal object id (lowercase).
    pub principal_id: String,
    /// Principal type.
    pub principal_type: String,
    /// Description.
    pub description: Option<String>,
}

fn bad(code: &str, message: impl Into<String>) -> ManagementError {
    ManagementError::bad_request(code, message)
}

impl RoleAssignmentInput {
    /// Validates the properties of a PUT.
    pub fn from_properties(
        p: Option<RoleAssignmentPutProperties>,
    ) -> Result<Self, ManagementError> {
        let p = p.ok_or_else(|| {
            bad(
                "InvalidRequestContent",
                "The 'properties' object is required.",
            )
        })?;
        let rd = p.role_definition_id.ok_or_else(|| {
            bad(
                "InvalidRoleDefinitionId",
                "The 'roleDefinitionId' property is required.",
            )
        })?;
        let guid = rd.rsplit('/').next().unwrap_or_default();
        let role = parse_guid(guid).and_then(|g| builtin_role(&g)).ok_or_else(|| {
            bad(
                "RoleDefinitionDoesNotExist",
                format!("The specified role definition with ID '{}' does not exist. List the built-in roles with GET .../providers/Microsoft.Authorization/roleDefinitions.", printable(&rd)),
            )
        })?;
        let principal_id = p
            .principal_id
            .as_deref()
            .and_then(parse_guid)
            .ok_or_else(|| {
                bad(
                    "InvalidPrincipalId",
                    "The 'principalId' property must be a GUID (the principal's object id).",
                )
            })?;
        let principal_type = p
            .principal_type
            .unwrap_or_else(|| "ServicePrincipal".into());
        if ![
            "ServicePrincipal",
            "User",
            "Group",
            "ForeignGroup",
            "Device",
        ]
        .iter()
        .any(|t| t.eq_ignore_ascii_case(&principal_type))
        {
            return Err(bad(
                "InvalidPrincipalType",
                format!(
                    "Principal type '{}' is not valid.",
                    printable(&principal_type)
                ),
            ));
        }
        if p.condition.as_ref().is_some_and(|c| !c.is_null()) {
            return Err(bad(
                "InvalidRequestContent",
                "Role assignment conditions (ABAC) are not supported; omit 'condition'.",
            ));
        }
        if p.description
            .as_ref()
            .is_some_and(|d| d.len() > 2048 || crate::names::has_control(d))
        {
            return Err(bad(
                "InvalidRequestContent",
                "The description is longer than 2048 characters.",
            ));
        }
        Ok(Self {
            role,
            principal_id,
            principal_type,
            description: p.description,
        })
    }
}

/// The 400 for a scope the role API cannot take.
impl From<InvalidScope> for ManagementError {
    fn from(e: InvalidScope) -> Self {
        match e {
            InvalidScope::Segment(ScopeError::SlashInSegment(seg)) => bad(
                "InvalidRoleAssignmentScope",
                format!(
                    "The scope segment '{}' contains '/' (an encoded %2F). Scope segments are names; give the scope as /subscriptions/{{id}}/resourceGroups/{{name}}/... without encoded slashes.",
                    printable(&seg)
                ),
            ),
            InvalidScope::Shape(scope) => bad(
                "InvalidScope",
                format!(
                    "The scope '{}' is not valid: use '/', /subscriptions/{{id}}, a resource group or a resource id.",
                    printable(&scope)
                ),
            ),
        }
    }
}

impl Keyless {
    /// Canonicalises a scope, then checks the caller may perform `action` there, and
    /// only then that the scope exists: a caller without the right gets 403 whether or
    /// not the group exists, so it cannot probe for names. (A subscription of another
    /// tenant stays 404, from [`Keyless::authorize`].)
    async fn checked_scope(
        &self,
        caller: &Caller,
        scope: &str,
        action: &str,
    ) -> Result<CanonicalScope, ManagementError> {
        let parsed = CanonicalScope::from_segments(scope.split('/'))?;
        self.authorize(caller, parsed.id(), action)?;
        if let Scope::ResourceGroup {
            subscription,
            group,
        }
        | Scope::Resource {
            subscription,
            group,
            ..
        } = parsed.shape()
            && self
                .snapshot()
                .resource_group(subscription, group)
                .is_none()
        {
            return Err(group_not_found(group));
        }
        Ok(parsed)
    }

    /// The built-in role definitions visible at a scope, optionally filtered by name.
    pub async fn list_role_definitions(
        &self,
        caller: &Caller,
        scope: &str,
        role_name: Option<&str>,
    ) -> Result<Vec<&'static RoleDefinition>, ManagementError> {
        self.checked_scope(caller, scope, DEFINITION_READ).await?;
        Ok(BUILTIN_ROLES
            .iter()
            .filter(|r| role_name.is_none_or(|n| r.name.eq_ignore_ascii_case(n)))
            .collect())
    }

    /// One built-in role definition.
    pub async fn get_role_definition(
        &self,
        caller: &Caller,
        scope: &str,
        id: &str,
    ) -> Result<&'static RoleDefinition, ManagementError> {
        self.checked_scope(caller, scope, DEFINITION_READ).await?;
        parse_guid(id)
            .and_then(|g| builtin_role(&g))
            .ok_or_else(|| {
                ManagementError::not_found(
                    "RoleDefinitionDoesNotExist",
                    format!("The role definition '{}' does not exist.", printable(id)),
                )
            })
    }

    /// Creates a role assignment at `scope`.
    pub async fn put_role_assignment(
        &self,
        caller: &Caller,
        scope: &str,
        name: &str,
        input: RoleAssignmentInput,
    ) -> Result<RoleAssignmentRecord, ManagementError> {
        let name = parse_guid(name).ok_or_else(|| {
            bad(
                "InvalidRoleAssignmentId",
                format!(
                    "The role assignment ID '{}' is not valid: it must be a GUID.",
                    printable(name)
                ),
            )
        })?;
        let scope = self.checked_scope(caller, scope, ASSIGN_WRITE).await?;
        let snap = self.snapshot();
        let principal_known =
            snap.identities_by_client
                .values()
                .any(|i| i.principal_id == input.principal_id && i.tenant_id == caller.tenant_id)
                || snap.service_principals.values().any(|s| {
                    s.principal_id == input.principal_id && s.tenant_id == caller.tenant_id
                });
        if !principal_known {
            return Err(bad(
                "PrincipalNotFound",
                format!(
                    "Principal {} does not exist in the directory {}. Use the identity's principalId (object id), not its clientId.",
                    input.principal_id, caller.tenant_id
                ),
            ));
        }
        if let Some(existing) = snap.assignment(&name) {
            let same = existing.principal_id == input.principal_id
                && same_id(&existing.scope, scope.id())
                && existing
                    .role_definition_id
                    .to_ascii_lowercase()
                    .ends_with(input.role.id);
            if same {
                // PUT is idempotent: the same assignment again is a success.
                return Ok((**existing).clone());
            }
            return Err(ManagementError::conflict(
                "RoleAssignmentUpdateNotPermitted",
                "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
            ));
        }
        let rec = RoleAssignmentRecord {
            name,
            tenant_id: caller.tenant_id.clone(),
            scope: scope.id().to_string(),
            role_definition_id: crate::ids::role_definition_id(
                scope.shape().subscription(),
                input.role.id,
            ),
            principal_id: input.principal_id,
            principal_type: input.principal_type,
            description: input.description,
            created_at: self.now(),
        };
        self.store
            .insert_role_assignment(&rec)
            .await
            .map_err(|e| match e {
                keyless_store::StoreError::Conflict(_) => ManagementError::conflict(
                    "RoleAssignmentExists",
                    "The role assignment already exists.",
                ),
                other => other.into(),
            })?;
        let change = Change::RoleAssignments {
            principal_id: rec.principal_id.clone(),
        };
        self.applied(change, rec).await
    }

    /// Role assignments relevant at `scope` (at, above or below it) in the caller's
    /// tenant, optionally only one principal's, or only those at or above the scope.
    pub async fn list_role_assignments(
        &self,
        caller: &Caller,
        scope: &str,
        principal: Option<&str>,
        at_scope_only: bool,
    ) -> Result<Vec<RoleAssignmentRecord>, ManagementError> {
        let scope = self.checked_scope(caller, scope, ASSIGN_READ).await?;
        let scope = scope.id();
        let principal = principal.map(str::to_ascii_lowercase);
        let snap = self.snapshot();
        let mut found: Vec<RoleAssignmentRecord> = snap
            .assignments
            .values()
            .filter(|a| a.tenant_id == caller.tenant_id)
            .filter(|a| {
                scope_contains(&a.scope, scope)
                    || (!at_scope_only && scope_contains(scope, &a.scope))
            })
            .filter(|a| principal.as_ref().is_none_or(|p| &a.principal_id == p))
            .map(|a| (**a).clone())
            .collect();
        // The store's order (the view's maps have none).
        found.sort_by(|a, b| (a.created_at, &a.name).cmp(&(b.created_at, &b.name)));
        Ok(found)
    }

    /// One role assignment by scope and name.
    pub async fn get_role_assignment(
        &self,
        caller: &Caller,
        scope: &str,
        name: &str,
    ) -> Result<RoleAssignmentRecord, ManagementError> {
        let scope = self.checked_scope(caller, scope, ASSIGN_READ).await?;
        self.snapshot()
            .assignment(name)
            .filter(|a| a.tenant_id == caller.tenant_id && same_id(&a.scope, scope.id()))
            .map(|a| (**a).clone())
            .ok_or_else(|| {
                ManagementError::not_found(
                    "RoleAssignmentNotFound",
                    format!("The role assignment '{}' is not found.", printable(name)),
                )
            })
    }

    /// Deletes a role assignment; `Ok(None)` when it did not exist.
    pub async fn delete_role_assignment(
        &self,
        caller: &Caller,
        scope: &str,
        name: &str,
    ) -> Result<Option<RoleAssignmentRecord>, ManagementError> {
        parse_guid(name).ok_or_else(|| {
            bad(
                "InvalidRoleAssignmentId",
                format!(
                    "The role assignment ID '{}' is not valid: it must be a GUID.",
                    printable(name)
                ),
            )
        })?;
        let scope = self.checked_scope(caller, scope, ASSIGN_DELETE).await?;
        let snap = self.snapshot();
        let Some(found) = snap
            .assignment(name)
            .filter(|a| a.tenant_id == caller.tenant_id && same_id(&a.scope, scope.id()))
        else {
            return Ok(None);
        };
        let change = Change::RoleAssignments {
            principal_id: found.principal_id.clone(),
        };
        let deleted = self.store.delete_role_assignment(&found.name).await?;
        self.applied(change, deleted).await
    }
}
