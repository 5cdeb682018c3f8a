//! The escalation rule of federation: a federated credential lets its subjects act
//! as the identity with every role the identity holds, so writing one is a way of
//! granting those roles. Whoever changes an identity's credentials must therefore be
//! able to grant each of its roles directly (`roleAssignments/write` where the role is
//! held); otherwise a Contributor could reach Owner by trusting their own workload on
//! an Owner identity.

use super::eval::{Grant, is_allowed};

/// The action that grants a role at a scope.
pub const ROLE_ASSIGNMENT_WRITE: &str = "Microsoft.Authorization/roleAssignments/write";

/// Whether a principal holding `caller` could have created the assignment `held`.
pub fn could_grant(caller: &[Grant], held: &Grant) -> bool {
    is_allowed(caller, &held.scope, ROLE_ASSIGNMENT_WRITE, false)
}

/// The first of the identity's roles (`identity`) that a principal holding `caller`
/// could not have granted, or `None` when it could have granted them all — in
/// particular when the identity holds no role at all.
pub fn first_ungrantable<'a>(caller: &[Grant], identity: &'a [Grant]) -> Option<&'a Grant> {
    identity.iter().find(|held| !could_grant(caller, held))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]

    use super::*;
    use crate::rbac::roles::{MANAGED_IDENTITY_CONTRIBUTOR, OWNER};

    const SUB: &str = "/subscriptions/22222222-2222-2222-2222-222222222222";
    const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
    const SECRETS_USER: &str = "4633458b-17de-408a-b874-0445c86b69e6";

    fn grant(scope: &str, role_id: &str) -> Grant {
        Grant {
            scope: scope.into(),
            role_id: role_id.into(),
        }
    }

    fn rg(name: &str) -> String {
        format!("{SUB}/resourceGroups/{name}")
    }

    #[test]
    fn an_identity_without_roles_needs_nothing_more() {
        let caller = [grant(&rg("rg1"), CONTRIBUTOR)];
        assert_eq!(first_ungrantable(&caller, &[]), None);
        assert_eq!(first_ungrantable(&[], &[]), None);
    }

    #[test]
    fn a_contributor_cannot_hand_out_an_owner_identity() {
        // The attack of issue 11: Contributor on rg1, identity Owner on the subscription.
        let caller = [grant(&rg("rg1"), CONTRIBUTOR)];
        let identity = [grant(SUB, OWNER)];
        assert_eq!(first_ungrantable(&caller, &identity), Some(&identity[0]));
        // Not even a role the Contributor holds itself: it cannot assign any role.
        let identity = [grant(&rg("rg1"), CONTRIBUTOR)];
        assert_eq!(first_ungrantable(&caller, &identity), Some(&identity[0]));
        // Managed Identity Contributor writes credentials, not role assignments.
        let caller = [grant(SUB, MANAGED_IDENTITY_CONTRIBUTOR)];
        let identity = [grant(&rg("rg1"), SECRETS_USER)];
        assert!(first_ungrantable(&caller, &identity).is_some());
    }

    #[test]
    fn an_owner_at_or_above_every_role_may() {
        let identity = [grant(&rg("rg1"), SECRETS_USER), grant(SUB, OWNER)];
        assert_eq!(first_ungrantable(&[grant(SUB, OWNER)], &identity), None);
        assert_eq!(first_ungrantable(&[grant("/", OWNER)], &identity), None);
        // Owner of rg1 covers the rg1 role but not the subscription one, and the
        // answer names the role it cannot grant.
        let found = first_ungrantable(&[grant(&rg("RG1"), OWNER)], &identity);
        assert_eq!(found, Some(&identity[1]));
        // Owner of a sibling group covers neither.
        let found = first_ungrantable(&[grant(&rg("rg2"), OWNER)], &identity);
        assert_eq!(found, Some(&identity[0]));
    }

    #[test]
    fn roles_held_below_the_callers_scope_are_grantable() {
        let vault = format!("{}/providers/Microsoft.KeyVault/vaults/v1", rg("rg1"));
        let identity = [grant(&vault, SECRETS_USER)];
        assert_eq!(
            first_ungrantable(&[grant(&rg("rg1"), OWNER)], &identity),
            None
        );
    }
}
