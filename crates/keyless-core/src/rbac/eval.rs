//! Evaluation: an assignment at a scope applies to it and everything below; roles add
//! up; action strings match with `*` wildcards, case-insensitively.

use super::roles::builtin_role;
use crate::glob::{GlobRules, glob_matches};
use crate::ids::scope_contains;

/// One role held at one scope (a role assignment, reduced to what evaluation needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Scope of the assignment.
    pub scope: String,
    /// Role definition GUID (the last segment of the role definition id).
    pub role_id: String,
}

/// Whether an action pattern (with `*` wildcards) matches an action, ignoring case.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    let rules = GlobRules {
        single: false,
        ignore_case: true,
    };
    glob_matches(pattern.as_bytes(), action.as_bytes(), rules)
}

/// Whether `grants` allow `action` at `scope`. `data` selects data actions (vault
/// operations) instead of management actions.
pub fn is_allowed(grants: &[Grant], scope: &str, action: &str, data: bool) -> bool {
    grants
        .iter()
        .filter(|g| scope_contains(&g.scope, scope))
        .any(|g| {
            let Some(role) = builtin_role(&g.role_id) else {
                return false;
            };
            let (allow, deny) = if data {
                (role.data_actions, role.not_data_actions)
            } else {
                (role.actions, role.not_actions)
            };
            allow.iter().any(|p| action_matches(p, action))
                && !deny.iter().any(|p| action_matches(p, action))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = "/subscriptions/22222222-2222-2222-2222-222222222222";

    #[test]
    fn wildcards() {
        assert!(action_matches("*", "Microsoft.KeyVault/vaults/read"));
        assert!(action_matches("*/read", "Microsoft.KeyVault/vaults/READ"));
        assert!(!action_matches("*/read", "Microsoft.KeyVault/vaults/write"));
        assert!(action_matches(
            "Microsoft.KeyVault/vaults/secrets/*",
            "microsoft.keyvault/vaults/secrets/getSecret/action"
        ));
        assert!(action_matches(
            "Microsoft.KeyVault/vaults/*/read",
            "Microsoft.KeyVault/vaults/secrets/read"
        ));
        assert!(!action_matches("a*b", "ac"));
        assert!(action_matches(&"*a".repeat(30), &"a".repeat(30)));
        assert!(!action_matches(&"*a".repeat(30), &"a".repeat(29)));
    }

    #[test]
    fn scopes_inherit_and_roles_add_up() {
        let user = Grant {
            scope: format!("{S}/resourceGroups/rg"),
            role_id: "4633458b-17de-408a-b874-0445c86b69e6".into(),
        };
        let vault = format!("{S}/resourceGroups/RG/providers/Microsoft.KeyVault/vaults/v1");
        let get = "Microsoft.KeyVault/vaults/secrets/getSecret/action";
        let set = "Microsoft.KeyVault/vaults/secrets/setSecret/action";
        assert!(is_allowed(std::slice::from_ref(&user), &vault, get, true));
        assert!(!is_allowed(std::slice::from_ref(&user), &vault, set, true));
        assert!(!is_allowed(std::slice::from_ref(&user), S, get, true));
        assert!(!is_allowed(std::slice::from_ref(&user), &vault, get, false));
        let officer = Grant {
            scope: vault.clone(),
            role_id: "b86a8fe4-44ce-4948-aee5-eccb2c155cd7".into(),
        };
        assert!(is_allowed(
            &[user, officer],
            &format!("{vault}/secrets/s1"),
            set,
            true
        ));
    }

    #[test]
    fn contributor_cannot_assign_roles() {
        let c = Grant {
            scope: S.into(),
            role_id: "b24988ac-6180-42a0-ab88-20f7382dd24c".into(),
        };
        let g = std::slice::from_ref(&c);
        assert!(is_allowed(
            g,
            S,
            "Microsoft.ManagedIdentity/userAssignedIdentities/write",
            false
        ));
        assert!(!is_allowed(
            g,
            S,
            "Microsoft.Authorization/roleAssignments/write",
            false
        ));
        assert!(is_allowed(
            g,
            S,
            "Microsoft.Authorization/roleAssignments/read",
            false
        ));
    }
}
